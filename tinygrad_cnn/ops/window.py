"""Sliding-window primitives for convolution and pooling on (N, C, H, W) arrays.

A window of size (KH, KW) with `stride` and `dilation` visits OH x OW positions. Each
kernel offset (i, j) sees a strided slice of the input: `x[..., i*dh :: sh, j*dw :: sw]`
(cut to OH x OW). Every op here is a loop over those KH*KW slices, never over pixels,
and each op's VJP is its adjoint among them:

    Im2col  <->  Col2im                          conv2d, avg_pool2d
    WindowMax -> WindowScatter <-> WindowGather  max_pool2d
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd import Function

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


# ---------------------------------------------------------------- im2col: every window copied out
# The textbook im2col copies each kernel offset's OH x OW window positions: (N, C, KH, KW, OH, OW).
# But a window row of a small image is short (LeNet's second conv: 10 numbers), and copying or
# adding millions of numbers in runs of 10 costs more in NumPy's row stepping than in arithmetic
# (1.5 ms of a 6.6 ms LeNet-5 step, measured). So here the columns span whole image rows: output position (p, q) reads the flattened zero-padded image at
# (p*sh + i*dh) * PW + q*sw + j*dw for q < Q = ceil(PW / sw), not only q < OW. The extra "run-on"
# columns q >= OW read into the next image row (the padded image has one more zero row at the
# bottom, so they never leave it); conv2d computes them and drops them. With stride 1, each kernel
# offset then copies (or adds back) ONE contiguous run of OH*PW numbers per (n, c): 2-4x faster for
# LeNet's shapes, for (PW - OW) / PW more arithmetic in the matrix products.

def _im2col_geometry(input_size: Pair, kernel_size: Pair, padding: tuple[int, int, int, int], stride: Pair,
                     dilation: Pair) -> tuple[int, int, int, int]:
    """(PH, PW, OH, Q): padded height and width, output rows, columns per output row (run-on ones included)."""
    left, right, top, bottom = padding
    ph, pw = input_size[0] + top + bottom, input_size[1] + left + right
    return ph, pw, output_size(ph, kernel_size[0], stride[0], dilation[0]), -(-pw // stride[1])


def _columns_view(image: np.ndarray, kernel_size: Pair, out_rows: int, q: int, stride: Pair, dilation: Pair,
                  writeable: bool) -> np.ndarray:
    """The columns (N, C, KH, KW, OH, Q) as a strided view of the padded `image` (N, C, PH + 1, PW).
    Windows overlap, so the view as a whole must not be written to; one kernel offset's part
    [:, :, i, j] may."""
    *lead, s_h, s_w = image.strides
    return as_strided(image, image.shape[:2] + (*kernel_size, out_rows, q),
                      (*lead, dilation[0] * s_h, dilation[1] * s_w, stride[0] * s_h, stride[1] * s_w),
                      writeable=writeable)


class Im2col(Function):
    """The windows of zero-padded x, with run-on columns (see above):
    (N, C, H, W) -> (N, C, KH, KW, OH, Q), Q = ceil(PW / sw), PW = left + W + right.
    cols[n, c, i, j, p, q] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw] for q < OW; for q >= OW the
    position runs on into the next padded row (zeros below the last one).  dL/dx = Col2im(g)."""

    @staticmethod
    def forward(ctx, x, *, kernel_size, padding, stride, dilation):
        if x.ndim != 4:
            raise ValueError(f"im2col: expected an input of shape (N, C, H, W), got {x.shape}")
        left, _, top, _ = padding
        ph, pw, oh, q = _im2col_geometry(x.shape[-2:], kernel_size, padding, stride, dilation)
        image = np.zeros(x.shape[:2] + (ph + 1, pw), dtype=x.dtype)
        image[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
        return np.ascontiguousarray(_columns_view(image, kernel_size, oh, q, stride, dilation, writeable=False))

    @staticmethod
    def backward(ctx, g):
        return Col2im.apply(g, input_size=ctx.inputs[0].shape[-2:], **ctx.kwargs)


class Col2im(Function):
    """The adjoint of Im2col: columns (N, C, KH, KW, OH, Q) added back into an image (N, C, H, W)
    (overlapping windows add up; what lands in the padding is dropped).  dL/dcols = Im2col(g)."""

    @staticmethod
    def forward(ctx, cols, *, input_size, kernel_size, padding, stride, dilation):
        n, c, kh, kw, oh, q = cols.shape
        ph, pw, *expected = _im2col_geometry(input_size, kernel_size, padding, stride, dilation)
        if (kh, kw) != tuple(kernel_size) or (oh, q) != tuple(expected):
            raise ValueError(f"col2im: columns of shape {cols.shape} do not fit an input of size {tuple(input_size)} "
                             f"with kernel_size={tuple(kernel_size)}, padding={padding}, stride={stride}, "
                             f"dilation={dilation}")
        left, _, top, _ = padding
        image = np.zeros((n, c, ph + 1, pw), dtype=cols.dtype)
        view = _columns_view(image, kernel_size, oh, q, stride, dilation, writeable=True)
        for i in range(kh):
            for j in range(kw):
                view[:, :, i, j] += cols[:, :, i, j]
        return image[:, :, top:top + input_size[0], left:left + input_size[1]]

    @staticmethod
    def backward(ctx, g):
        kw = {k: v for k, v in ctx.kwargs.items() if k != "input_size"}
        return Im2col.apply(g, **kw)


# ---------------------------------------------------------------- max pooling

class WindowMax(Function):
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
        best = x[first].copy()
        winner = np.zeros(best.shape, dtype=offset_type)
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
        ctx.save_for_backward(winner)
        return best

    @staticmethod
    def backward(ctx, g):
        winner, = ctx.saved
        kw = ctx.kwargs
        return WindowScatter.apply(g, index=winner, input_size=ctx.inputs[0].shape[-2:], **kw)


class WindowScatter(Function):
    """g (N, C, OH, OW) placed in zeros (N, C, H, W) at the offset `index` picks in each window
    (added where windows overlap).  dL/dg = WindowGather(g') at the same offsets."""

    @staticmethod
    def forward(ctx, g, *, index, input_size, kernel_size, stride, dilation):
        offsets = _offset_slices(kernel_size, stride, dilation, g.shape[-2:], index.dtype.type)
        tiled = dilation == (1, 1) and tuple(stride) == tuple(kernel_size) and \
            tuple(input_size) == (g.shape[-2] * stride[0], g.shape[-1] * stride[1])
        if tiled:  # every input element lies in exactly one window: write each slice once, no zero fill
            out = np.empty(g.shape[:-2] + tuple(input_size), dtype=g.dtype)
            for k, where in offsets:
                np.multiply(g, index == k, out=out[where])
        else:
            out = np.zeros(g.shape[:-2] + tuple(input_size), dtype=g.dtype)
            for k, where in offsets:
                out[where] += g * (index == k)  # a mask product: faster than np.where
        return out

    @staticmethod
    def backward(ctx, g):
        kw = {k: v for k, v in ctx.kwargs.items() if k != "input_size"}
        return WindowGather.apply(g, **kw)


class WindowGather(Function):
    """From each window, the element at the offset `index` picks: (N, C, H, W) -> (N, C, OH, OW).
    dL/dx = WindowScatter(g) at the same offsets."""

    @staticmethod
    def forward(ctx, x, *, index, kernel_size, stride, dilation):
        out = np.zeros(index.shape, dtype=x.dtype)
        for k, where in _offset_slices(kernel_size, stride, dilation, index.shape[-2:], index.dtype.type):
            out += x[where] * (index == k)
        return out

    @staticmethod
    def backward(ctx, g):
        return WindowScatter.apply(g, input_size=ctx.inputs[0].shape[-2:], **ctx.kwargs)
