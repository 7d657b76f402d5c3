"""Batch normalisation in training mode as one primitive: the fast path of F.batch_norm.

Its plain definition is a composition of a dozen elementwise ops and reductions (functional/normalization.py's
`_affine(_normalize(x, dims, eps), weight, bias)`), each a pass over the activations and each with a
VJP of its own; here the forward is a few NumPy passes and the VJP is the closed form:

    xhat = (x - mean) * invstd             per channel c, over the m = N*H*W values of c
    y    = xhat * weight + bias
    dL/dweight = sum(g * xhat),  dL/dbias = sum(g)
    dL/dx = invstd * (d - mean(d) - xhat * mean(d * xhat)),   d = g * weight

(the last two terms are the gradient through the batch mean and variance).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..autograd.function import Primitive
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.forward_ad import levels as dual_levels
from .threads import in_parallel


def _channel_dims(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


def _is_batch_last(a: np.ndarray) -> bool:
    return a.ndim > 2 and a.transpose(1, *range(2, a.ndim), 0).flags.c_contiguous


def _by_channel(a: np.ndarray, batch_last: bool) -> np.ndarray:
    """(N, C, ...) -> a (P, C, Q) array whose dims 0 and 2 hold each channel's values: (1, C, ...*N) in
    batch-last order (our convolutions' layout), or (N, C, ...); a view where a lies so in memory."""
    if batch_last:
        return a.transpose(1, *range(2, a.ndim), 0).reshape(1, a.shape[1], -1)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _rows(values: np.ndarray, part: slice) -> np.ndarray:
    """The channels `part` of `values` (P, C, Q) as (c, P*Q): each channel's numbers in one run, as NumPy's
    loops run fastest. A view when P = 1 (batch-last); in (N, C, ...) order a copy of the slice, which
    stays in the cache and spares each pass N short runs of Q."""
    if values.shape[0] == 1:
        return values[0, part]
    return np.ascontiguousarray(values[:, part].swapaxes(0, 1)).reshape(part.stop - part.start, -1)


def _rows_out(out: np.ndarray, part: slice) -> np.ndarray:
    """Where to compute the channels `part` of `out` (P, C, Q) as (c, P*Q): a view of it when P = 1, else a
    buffer that `_store` copies back."""
    return out[0, part] if out.shape[0] == 1 else np.empty((part.stop - part.start, out.shape[0] * out.shape[2]),
                                                              out.dtype)


def _store(out: np.ndarray, part: slice, rows: np.ndarray) -> None:
    if out.shape[0] != 1:
        out[:, part] = rows.reshape(rows.shape[0], out.shape[0], out.shape[2]).swapaxes(0, 1)


def _empty_like(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """An uninitialised array of a's shape, batch-last in memory if a is, else C-contiguous: _by_channel
    of it (in the same order) is a view to write into."""
    if _is_batch_last(a):
        return np.empty((*a.shape[1:], a.shape[0]), dtype).transpose(a.ndim - 1, *range(a.ndim - 1))
    return np.empty(a.shape, dtype)


SLICE = 1 << 17  # values in one slice of channels: the temporaries of its passes stay in a core's cache


def _by_slices(work: Callable[[slice], None], channels: int, values_per_channel: int) -> None:
    """work(channels) for consecutive slices of channels of ~SLICE values each, so that a slice's
    passes reuse what the previous pass left in the cache; the slices are shared out among threads
    (threads.py). They are the same whatever the number of threads, and so are the results."""
    step = max(1, SLICE // max(1, values_per_channel))
    slices = [slice(first, min(channels, first + step)) for first in range(0, channels, step)]

    def run(first: int, last: int) -> None:
        for part in slices[first:last]:
            work(part)

    in_parallel(run, len(slices))


def batch_statistics(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-channel mean, biased variance and 1 / sqrt(variance + eps) of x (N, C, ...), each
    (1, C, 1, ...), the variance from the centred values (two passes: as accurate as NumPy's var).
    Channels are split among threads (threads.py)."""
    values = _by_channel(x, _is_batch_last(x))
    channels, count = values.shape[1], values.shape[0] * values.shape[2]
    mean, variance = np.empty(channels, x.dtype), np.empty(channels, x.dtype)

    def statistics(part: slice) -> None:
        rows = _rows(values, part)
        mean[part] = rows.sum(axis=1) / count
        centred = rows - mean[part, None]
        variance[part] = np.einsum("cq,cq->c", centred, centred) / count

    _by_slices(statistics, channels, count)
    invstd = (1.0 / np.sqrt(variance + eps)).astype(x.dtype, copy=False)
    shape = _channel_shape(x.ndim)
    return mean.reshape(shape), variance.reshape(shape), invstd.reshape(shape)


def _channel_shape(ndim: int) -> tuple[int, ...]:
    """How a per-channel vector (C,) broadcasts against an input of `ndim` dims (N, C, ...)."""
    return (1, -1) + (1,) * (ndim - 2)


def _normalized(x, dims: tuple[int, ...], eps: float):
    """(x - mean) * invstd and invstd, in Tensor ops on x (so differentiable again)."""
    centred = x - x.mean(dims, keepdim=True)
    invstd = ((centred * centred).mean(dims, keepdim=True) + eps) ** -0.5
    return centred * invstd, invstd


def _batch_norm_vjp(x: np.ndarray, g: np.ndarray, weight: np.ndarray, mean: np.ndarray, invstd: np.ndarray,
                    need_x: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """BatchNorm's VJP in NumPy: (dL/dx or None, dL/dweight, dL/dbias) from the input x, the output gradient
    g and the per-channel weight, mean and invstd (C,)."""
    batch_last = _is_batch_last(x)
    values, grads = _by_channel(x, batch_last), _by_channel(g, batch_last)
    channels, count = values.shape[1], values.shape[0] * values.shape[2]
    dtype = np.result_type(g, weight)
    dw, db = np.empty(channels, dtype), np.empty(channels, dtype)
    dx = _empty_like(x, dtype) if need_x else None
    dx_values = None if dx is None else _by_channel(dx, batch_last)

    def vjp(part: slice) -> None:
        gp = _rows(grads, part)
        centred = _rows(values, part) - mean[part, None]
        db[part] = gp.sum(axis=1)
        dw[part] = np.einsum("cq,cq->c", gp, centred) * invstd[part]
        if dx_values is not None:
            a = invstd[part] * weight[part]
            np.multiply(centred, (-a * invstd[part] * dw[part] / count)[:, None], out=centred)
            centred -= (a * db[part] / count)[:, None]
            dx_rows = _rows_out(dx_values, part)
            np.multiply(gp, a[:, None], out=dx_rows)
            dx_rows += centred
            _store(dx_values, part, dx_rows)

    _by_slices(vjp, channels, count)
    return dx, dw, db


class BatchNorm(Primitive):
    """x (N, C, ...), weight (C,), bias (C,) -> (x - mean) * invstd * weight + bias, where mean and
    invstd (each (1, C, 1, ...), from `batch_statistics(x, eps)`) are x's own batch statistics, which
    the caller also needs for the running estimates: the VJP and JVP differentiate through them."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, mean, invstd, eps):
        # y = x * scale + shift per channel, scale = invstd * weight and shift = bias - mean * scale (as
        # PyTorch computes it): two passes, split among threads; only x is saved, xhat is remade in the VJP
        scale = invstd.reshape(-1) * weight
        shift = bias - mean.reshape(-1) * scale
        batch_last = _is_batch_last(x)
        values, y = _by_channel(x, batch_last), _empty_like(x, np.result_type(x, scale, shift))
        out = _by_channel(y, batch_last)

        def transform(part: slice) -> None:
            rows = _rows_out(out, part)
            np.multiply(_rows(values, part), scale[part, None], out=rows)
            rows += shift[part, None]
            _store(out, part, rows)

        _by_slices(transform, values.shape[1], values.shape[0] * values.shape[2])
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if not is_grad_enabled() and not dual_levels:
            # Fast path of a plain backward (no gradient has to be a graph): the closed form in NumPy, a piece
            # of the channels per thread, with d = g * weight and centred = x - mean = xhat / invstd:
            #   dL/dx = invstd * weight * (g - sum(g) / m) - centred * invstd**2 * weight * dL/dweight / m
            dx, dw, db = _batch_norm_vjp(x.detach().numpy(), g.detach().numpy(), weight.detach().numpy(),
                                         ctx.kwargs["mean"].reshape(-1), ctx.kwargs["invstd"].reshape(-1), need_x)
            wrap = g._wrap
            return (None if dx is None else wrap(dx), wrap(dw) if need_w else None, wrap(db) if need_b else None)
        # The same closed form in Tensor ops, with the statistics recomputed from x so that the
        # gradient is itself differentiable (create_graph=True, gradients of gradients).
        dims, shape = _channel_dims(x.ndim), _channel_shape(x.ndim)
        xh, inv = _normalized(x, dims, ctx.kwargs["eps"])
        d = g * weight.reshape(shape)
        dx = inv * (d - d.mean(dims, keepdim=True) - xh * (d * xh).mean(dims, keepdim=True)) if need_x else None
        return (dx, (g * xh).sum(dims) if need_w else None, g.sum(dims) if need_b else None)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        (x, weight, _), (tx, tw, tb) = primals, tangents
        dims, shape = _channel_dims(x.ndim), _channel_shape(x.ndim)
        xh, inv = _normalized(x, dims, ctx.kwargs["eps"])
        result = None
        if tx is not None:  # xhat's tangent, through the statistics too, scaled by the weight
            txh = inv * (tx - tx.mean(dims, keepdim=True) - xh * (tx * xh).mean(dims, keepdim=True))
            result = txh * weight.reshape(shape)
        for term in (None if tw is None else xh * tw.reshape(shape), None if tb is None else tb.reshape(shape)):
            if term is not None:
                result = term if result is None else result + term
        return result
