"""Sliding-window primitives for max pooling on (N, C, H, W) arrays.

A window of size (KH, KW) with `stride` and `dilation` visits OH x OW positions. Each
kernel offset (i, j) sees a strided slice of the input: `x[..., i*dh :: sh, j*dw :: sw]`
(cut to OH x OW). Every op here is a loop over those KH*KW slices, never over pixels,
and each op's VJP is its adjoint among them:

    WindowMax -> WindowScatter <-> WindowGather

Results keep the memory layout of their input (NumPy's order='K'), so a batch-innermost
activation from a convolution (see conv.py) stays one, and each slice has runs of N numbers.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..autograd.forward_ad import linear_jvp
from ..autograd.function import Primitive

Pair = tuple[int, int]


def output_size(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Positions a window fits into `size`: floor((size - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _offset_slices(kernel_size: Pair, stride: Pair, dilation: Pair, out_hw: Pair,
                   offset_type: type = int) -> Iterator[tuple[int, tuple]]:
    """(k, index) for each kernel offset k = i*KW + j: the slice of x that offset sees.
    k comes as `offset_type`: comparing an int8 array with an np.int8 is ~10x faster than with a Python int."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel_size, stride, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield offset_type(i * kw + j), (..., slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                                            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _offset_type(kernel_size: Pair) -> type:
    """The smallest integer type that numbers the offsets of a window."""
    return np.int8 if kernel_size[0] * kernel_size[1] <= 127 else np.int32


def _in_order_of(layout: np.ndarray, a: np.ndarray) -> np.ndarray:
    """`a` in the memory order of `layout` (same shape), copied only if it is not: NumPy loops
    over operands laid out differently several times slower (a gradient coming back through
    flatten meets a batch-innermost pooling index: 0.42 -> 0.1 ms at LeNet's conv2, measured)."""
    out = np.empty_like(layout, dtype=a.dtype)
    if out.strides == a.strides:
        return a
    out[...] = a
    return out


# ---------------------------------------------------------------- max pooling

class WindowMax(Primitive):
    """The largest value in each window: (N, C, H, W) -> (N, C, OH, OW).
    dL/dx = g sent to each window's first maximum (row-major order, as PyTorch), via WindowScatter;
    a NaN counts as the maximum, and of several NaNs the last one takes g (as PyTorch)."""

    @staticmethod
    def forward(ctx, x, *, kernel_size, stride, dilation):
        oh = output_size(x.shape[-2], kernel_size[0], stride[0], dilation[0])
        ow = output_size(x.shape[-1], kernel_size[1], stride[1], dilation[1])
        offset_type = _offset_type(kernel_size)
        slices = _offset_slices(kernel_size, stride, dilation, (oh, ow), offset_type)
        _, first = next(slices)
        best = x[first].copy(order="K")
        winner = np.zeros_like(best, dtype=offset_type)
        for k, where in slices:
            # Offsets come in increasing order, so "winner = k where x > best" is a max, which NumPy
            # vectorises (np.where with a random mask is branchy and 20x slower). Strictly greater:
            # a later equal value never takes the gradient from an earlier one.
            np.maximum(winner, (x[where] > best).view(np.int8) * k, out=winner)
            np.maximum(best, x[where], out=best)
        nan_windows = np.isnan(best)
        if nan_windows.any():  # as PyTorch: a NaN is the maximum, and the window's last NaN takes the gradient
            for k, where in _offset_slices(kernel_size, stride, dilation, (oh, ow), offset_type):
                winner[nan_windows & np.isnan(x[where])] = k
        ctx.save_for_backward(winner, x.shape[-2:])
        return best

    @staticmethod
    def backward(ctx, g):
        winner, input_size = ctx.saved_tensors
        return WindowScatter.apply(g, index=winner, input_size=input_size, **ctx.kwargs)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        winner, _ = ctx.saved_tensors  # the tangent at each window's maximum
        return WindowGather.apply(tangents[0], index=winner, **ctx.kwargs)


class WindowScatter(Primitive):
    """g (N, C, OH, OW) placed in zeros (N, C, H, W) at the offset `index` picks in each window
    (added where windows overlap).  dL/dg = WindowGather(g') at the same offsets."""

    @staticmethod
    def forward(ctx, g, *, index, input_size, kernel_size, stride, dilation):
        g = _in_order_of(index, g)
        offsets = _offset_slices(kernel_size, stride, dilation, g.shape[-2:], index.dtype.type)
        tiled = dilation == (1, 1) and tuple(stride) == tuple(kernel_size) and \
            tuple(input_size) == (g.shape[-2] * stride[0], g.shape[-1] * stride[1])
        if tiled:  # every input element lies in exactly one window: write each slice once, no zero fill
            out = np.empty_like(index, dtype=g.dtype, shape=g.shape[:-2] + tuple(input_size))
            for k, where in offsets:
                np.multiply(g, index == k, out=out[where])
        else:
            out = np.zeros_like(index, dtype=g.dtype, shape=g.shape[:-2] + tuple(input_size))
            for k, where in offsets:
                out[where] += g * (index == k)  # a mask product: faster than np.where
        return out

    @staticmethod
    def backward(ctx, g):
        kw = {k: v for k, v in ctx.kwargs.items() if k != "input_size"}
        return WindowGather.apply(g, **kw)

    jvp = staticmethod(linear_jvp)


class WindowGather(Primitive):
    """From each window, the element at the offset `index` picks: (N, C, H, W) -> (N, C, OH, OW).
    dL/dx = WindowScatter(g) at the same offsets."""

    @staticmethod
    def forward(ctx, x, *, index, kernel_size, stride, dilation):
        ctx.save_for_backward(x.shape[-2:])
        out = np.zeros_like(index, dtype=x.dtype)
        for k, where in _offset_slices(kernel_size, stride, dilation, index.shape[-2:], index.dtype.type):
            out += x[where] * (index == k)
        return out

    @staticmethod
    def backward(ctx, g):
        input_size, = ctx.saved_tensors
        return WindowScatter.apply(g, input_size=input_size, **ctx.kwargs)

    jvp = staticmethod(linear_jvp)
