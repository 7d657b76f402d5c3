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

import numpy as np

from ..autograd.function import Primitive
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.forward_ad import levels as dual_levels


def _channel_dims(ndim: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, ndim))


def _channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """sum over every dim but 1 of a (or of a * b, without making the product), keeping dims."""
    dims = "abcdefghijklmnopqrstuvwxyz"[:a.ndim]
    subscripts = f"{dims},{dims}->b"
    total = a.sum(axis=_channel_dims(a.ndim)) if b is None else np.einsum(subscripts, a, b)
    return total.reshape((1, -1) + (1,) * (a.ndim - 2))


def batch_statistics(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-channel mean, biased variance and 1 / sqrt(variance + eps) of x (N, C, ...), each
    (1, C, 1, ...), the variance from the centred values (two passes: as accurate as NumPy's var)."""
    count = x.size // x.shape[1]
    mean = _channel_sum(x) / count
    centred = x - mean
    variance = _channel_sum(centred, centred) / count
    invstd = 1.0 / np.sqrt(variance + eps)
    return tuple(a.astype(x.dtype, copy=False) for a in (mean, variance, invstd))


def _channel_shape(ndim: int) -> tuple[int, ...]:
    """How a per-channel vector (C,) broadcasts against an input of `ndim` dims (N, C, ...)."""
    return (1, -1) + (1,) * (ndim - 2)


def _normalized(x, dims: tuple[int, ...], eps: float):
    """(x - mean) * invstd and invstd, in Tensor ops on x (so differentiable again)."""
    centred = x - x.mean(dims, keepdim=True)
    invstd = ((centred * centred).mean(dims, keepdim=True) + eps) ** -0.5
    return centred * invstd, invstd


class BatchNorm(Primitive):
    """x (N, C, ...), weight (C,), bias (C,) -> (x - mean) * invstd * weight + bias, where mean and
    invstd (each (1, C, 1, ...), from `batch_statistics(x, eps)`) are x's own batch statistics, which
    the caller also needs for the running estimates: the VJP and JVP differentiate through them."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, mean, invstd, eps):
        xhat = x - mean
        xhat *= invstd
        shape = _channel_shape(x.ndim)
        y = xhat * weight.reshape(shape)
        y += bias.reshape(shape)
        ctx.save_for_backward(x, xhat, weight)
        return y

    @staticmethod
    def backward(ctx, g):
        x, xhat, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        shape = _channel_shape(x.ndim)
        if not is_grad_enabled() and not dual_levels:
            # Fast path of a plain backward (no gradient has to be a graph): the closed form in NumPy, on
            # the saved xhat, in place where it can be.
            g_, xhat_ = g.detach().numpy(), xhat  # xhat: an array the forward made, saved as it is
            count = g_.size // g_.shape[1]
            dw = _channel_sum(g_, xhat_) if need_w or need_x else None
            db = _channel_sum(g_) if need_b or need_x else None
            dx = None
            if need_x:
                w = weight.detach().numpy().reshape(shape)
                dx = xhat_ * (dw * (w / count))  # the term through the variance ...
                dx += db * (w / count)           # ... and through the mean,
                np.subtract(g_ * w, dx, out=dx)  # taken from d = g * weight
                dx *= ctx.kwargs["invstd"]
            wrap = g._wrap
            return (None if dx is None else wrap(dx), None if not need_w else wrap(dw.reshape(-1)),
                    None if not need_b else wrap(db.reshape(-1)))
        # The same closed form in Tensor ops, with the statistics recomputed from x so that the
        # gradient is itself differentiable (create_graph=True, gradients of gradients).
        dims = _channel_dims(x.ndim)
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
