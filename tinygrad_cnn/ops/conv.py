"""Convolution as three primitives whose VJPs are made of one another (as PyTorch's
convolution, conv_transpose2d and convolution_backward):

    Conv2d(x, w[, b])        y  = x * w (+ b): every filter slid over the zero-padded image
    ConvTranspose2d(g, w)    dx = the adjoint of x -> x * w: each g sent back through the filters
    Conv2dWeightGrad(x, g)   dw = the correlation of the image x with the output gradient g

All three are bilinear, so each VJP is one of the three with other arguments:

    Conv2d            dx = ConvTranspose2d(g, w)   dw = Conv2dWeightGrad(x, g)   db = g summed
    ConvTranspose2d   dg = Conv2d(h, w)            dw = Conv2dWeightGrad(h, g)
    Conv2dWeightGrad  dx = ConvTranspose2d(g, h)   dg = Conv2d(x, h)

and derivatives of any order need no more code. The geometry arguments are the same for
all three: padding (left, right, top, bottom), stride (h, w), dilation (h, w), groups.

Memory layout. The arrays have PyTorch's (N, C, H, W) shapes, but what these ops return lies
in memory as (C, H, W, N), batch innermost (a transposed NumPy view). In that layout a window
row of every image is one run of OW*N numbers, so im2col and the transposed convolution copy
and add long runs instead of rows of 10 (LeNet's second conv), and a convolution's output
already is the (O, OH*OW*N) result of its matrix product: no transpose between layers. NumPy's elementwise
ops and our pooling keep an input's layout, so it flows through ReLU and pooling to the next
convolution; any other layout is accepted and copied once.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd import Function
from .window import output_size

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]


def _batch_last(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> a (C, H, W, N) view."""
    return x.transpose(1, 2, 3, 0)


def _output_hw(input_hw: Pair, kernel_size: Pair, padding: Padding, stride: Pair, dilation: Pair) -> Pair:
    left, right, top, bottom = padding
    return (output_size(input_hw[0] + top + bottom, kernel_size[0], stride[0], dilation[0]),
            output_size(input_hw[1] + left + right, kernel_size[1], stride[1], dilation[1]))


def _columns(x: np.ndarray, kernel_size: Pair, padding: Padding, stride: Pair, dilation: Pair) -> np.ndarray:
    """im2col: (N, C, H, W) -> (C*KH*KW, OH, OW*N), where row (c, i, j) holds what kernel tap
    (i, j) of channel c sees: cols[(c, i, j), p, (q, n)] = x_padded[n, c, p*sh + i*dh, q*sw + j*dw]."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    left, right, top, bottom = padding
    oh, ow = _output_hw((h, w), kernel_size, padding, stride, dilation)
    image = _batch_last(x)
    if any(padding) or not image.flags.c_contiguous:  # one copy into (C, PH, PW, N), zeros around
        padded = np.zeros((c, h + top + bottom, w + left + right, n), dtype=x.dtype)
        padded[:, top:top + h, left:left + w] = image
        image = padded
    s_c, s_h, s_w, s_n = image.strides
    windows = as_strided(image, (c, kh, kw, oh, ow, n), (s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, s_n),
                         writeable=False)
    return np.ascontiguousarray(windows).reshape(c * kh * kw, oh, ow * n)


def _sent_back(rows: np.ndarray, w: np.ndarray, groups: int, batch: int, input_hw: Pair, padding: Padding,
               stride: Pair, dilation: Pair) -> np.ndarray:
    """The transposed convolution of an output gradient `rows` (O, OH, OW*N) -> (N, C, H, W):
    the filters transposed times the gradient give, for each kernel tap (i, j), what goes back to
    the pixels that tap read; those are added in place (overlapping windows add up, what lands
    in the padding is dropped). A loop over taps, never over pixels, and over blocks of output
    rows, so each block's columns are added back while they are still in the CPU's cache (2x
    faster than all at once for a (64, 16, 32, 32) input, measured); blocks are made long enough
    that each tap's add has at least ~32K numbers, NumPy's cost per call being small beside that."""
    (kh, kw), (sh, sw), (dh, dw) = w.shape[-2:], stride, dilation
    left, right, top, bottom = padding
    (h, width), (o, oh, length) = input_hw, rows.shape
    c, ow = w.shape[1] * groups, length // batch
    image = np.zeros((c, h + top + bottom, width + left + right, batch), dtype=np.result_type(rows, w))
    filters = w.reshape(groups, o // groups, -1).swapaxes(1, 2)  # (G, C/G*KH*KW, O/G)
    blocks = max(1, oh * c * length >> 15)
    block = -(-oh // blocks)  # output rows per block
    for start in range(0, oh, block):
        stop = min(oh, start + block)
        grads = rows[:, start:stop].reshape(groups, o // groups, -1)  # a view: (G, O/G, rows*OW*N)
        taps = np.matmul(filters, grads).reshape(c, kh, kw, stop - start, ow, batch)
        for i in range(kh):
            for j in range(kw):
                image[:, start * sh + i * dh:(stop - 1) * sh + i * dh + 1:sh,
                      j * dw:j * dw + sw * (ow - 1) + 1:sw] += taps[:, i, j]
    return image[:, top:top + h, left:left + width].transpose(3, 0, 1, 2)


def _rows(g: np.ndarray) -> np.ndarray:
    """An output gradient (N, O, OH, OW) as (O, OH, OW*N): free when it lies batch-last in memory."""
    n, o, oh, ow = g.shape
    return np.ascontiguousarray(_batch_last(g)).reshape(o, oh, ow * n)


def _by_row(rows: int, cols: int) -> bool:
    """Whether to multiply by a group's filter matrix (rows x cols) one output row at a time: OpenBLAS
    handles the long, thin products of a small filter matrix 2-5x faster in row-sized pieces
    (LeNet's first conv, 6 x 25), and those of larger ones faster whole, with its threads (measured)."""
    return rows * cols <= 1024


def _per_group(a: np.ndarray, groups: int, by_row: bool) -> np.ndarray:
    """(G*R, OH, L) -> a (G, OH, R, L) view, one matrix per group and output row, or
    (G, 1, R, OH*L), one per group."""
    rows, oh, length = a.shape
    if by_row:
        return a.reshape(groups, rows // groups, oh, length).transpose(0, 2, 1, 3)
    return a.reshape(groups, 1, rows // groups, oh * length)


def _filtered(cols: np.ndarray, w: np.ndarray, groups: int, dtype: np.dtype) -> np.ndarray:
    """The filters w (O, C/G, KH, KW) times the columns (C*KH*KW, OH, L), group by group -> (O, OH, L)."""
    filters = w.reshape(groups, w.shape[0] // groups, -1)  # (G, O/G, C/G*KH*KW)
    by_row = _by_row(*filters.shape[1:])
    out = np.empty((w.shape[0],) + cols.shape[1:], dtype=dtype)
    np.matmul(filters[:, None], _per_group(cols, groups, by_row), out=_per_group(out, groups, by_row))
    return out


_SHAPES = {"input": "(N, C, H, W)", "grad": "(N, O, OH, OW)", "weight": "(O, C/groups, KH, KW)"}


def _check_rank(op: str, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if a.ndim != 4:
            raise ValueError(f"{op}: expected {name} of shape {_SHAPES[name]}, got {a.shape}")


def _check_fit(op: str, input_shape: tuple, weight_shape: tuple, grad_shape: tuple | None, padding: Padding,
               stride: Pair, dilation: Pair, groups: int) -> None:
    """Raise a ValueError naming `op` and the shapes unless an input, a weight and (if given) an
    output gradient fit one convolution. Each op passes the shapes it has and those they imply."""
    n, c, *input_hw = input_shape
    o, c_per_group, *kernel_size = weight_shape
    if groups < 1 or c % groups or o % groups or c != c_per_group * groups:
        raise ValueError(f"{op}: input of shape {tuple(input_shape)} and weight of shape {tuple(weight_shape)} "
                         f"do not fit groups={groups} (input channels = weight.shape[1] * groups, both divisible)")
    out_hw = _output_hw(input_hw, kernel_size, padding, stride, dilation)
    if min(out_hw) < 1:
        raise ValueError(f"{op}: kernel {tuple(kernel_size)} (dilation {tuple(dilation)}) is larger than the input "
                         f"of shape {tuple(input_shape)} with padding {padding}")
    if grad_shape is not None and tuple(grad_shape) != (n, o, *out_hw):
        raise ValueError(f"{op}: gradient of shape {tuple(grad_shape)} does not fit input of shape "
                         f"{tuple(input_shape)} and weight of shape {tuple(weight_shape)} (expected {(n, o, *out_hw)})")


class Conv2d(Function):
    """x (N, C, H, W), w (O, C/G, KH, KW), optional b (O,) -> (N, O, OH, OW):
    y[n, o, p, q] = b[o] + sum over c, i, j of x_padded[n, c, p*sh + i*dh, q*sw + j*dw] * w[o, c, i, j]
    (c within o's group). VJPs in the module docstring."""

    @staticmethod
    def forward(ctx, x, w, b=None, *, padding, stride, dilation, groups):
        _check_rank("conv2d", input=x, weight=w)
        _check_fit("conv2d", x.shape, w.shape, None, padding, stride, dilation, groups)
        if b is not None and b.shape != (w.shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({w.shape[0]},) for weight of shape {w.shape}, "
                             f"got {b.shape}")
        cols = _columns(x, w.shape[-2:], padding, stride, dilation)
        y = _filtered(cols, w, groups, np.result_type(x, w, *(() if b is None else (b,))))
        if b is not None:
            y += b[:, None, None]
        if ctx.needs_input_grad[1]:
            ctx.save_for_backward(cols)  # the weight gradient needs the same columns
        n, (oh, ow) = x.shape[0], _output_hw(x.shape[-2:], w.shape[-2:], padding, stride, dilation)
        return y.reshape(w.shape[0], oh, ow, n).transpose(3, 0, 1, 2)

    @staticmethod
    def backward(ctx, g):
        x, w, *bias = ctx.inputs
        need_x, need_w, *need_b = ctx.needs_input_grad
        rows = _rows(g.data) if need_x or need_w else None  # copied once for both products if g is not batch-last
        dx = ConvTranspose2d.apply(g, w, input_size=x.shape[-2:], grad_rows=rows, **ctx.kwargs) if need_x else None
        dw = Conv2dWeightGrad.apply(x, g, kernel_size=w.shape[-2:], columns=ctx.saved[0], grad_rows=rows,
                                    **ctx.kwargs) if need_w else None
        if not bias:
            return dx, dw
        return dx, dw, g.sum((0, 2, 3)) if need_b[0] else None


class ConvTranspose2d(Function):
    """g (N, O, OH, OW), w (O, C/G, KH, KW) -> (N, C, H, W) with (H, W) = input_size: the adjoint
    of Conv2d in its input, dx[n, c, p*sh + i*dh, q*sw + j*dw] += g[n, o, p, q] * w[o, c, i, j]
    (positions in the padding dropped). `grad_rows`, if given, is g as (O, OH, OW*N)."""

    @staticmethod
    def forward(ctx, g, w, *, input_size, padding, stride, dilation, groups, grad_rows=None):
        _check_rank("conv_transpose2d", grad=g, weight=w)
        _check_fit("conv_transpose2d", (g.shape[0], w.shape[1] * groups, *input_size), w.shape, g.shape, padding,
                   stride, dilation, groups)
        rows = _rows(g) if grad_rows is None else grad_rows
        return _sent_back(rows, w, groups, g.shape[0], input_size, padding, stride, dilation)

    @staticmethod
    def backward(ctx, h):
        g, w = ctx.inputs
        need_g, need_w = ctx.needs_input_grad
        geometry = {k: v for k, v in ctx.kwargs.items() if k not in ("input_size", "grad_rows")}
        return (Conv2d.apply(h, w, **geometry) if need_g else None,
                Conv2dWeightGrad.apply(h, g, kernel_size=w.shape[-2:], **geometry) if need_w else None)


class Conv2dWeightGrad(Function):
    """x (N, C, H, W), g (N, O, OH, OW) -> (O, C/G, KH, KW) with (KH, KW) = kernel_size:
    dw[o, c, i, j] = sum over n, p, q of x_padded[n, c, p*sh + i*dh, q*sw + j*dw] * g[n, o, p, q].
    `columns` and `grad_rows`, if given, are x's im2col columns and g as (O, OH, OW*N), already
    made by the Conv2d it differentiates."""

    @staticmethod
    def forward(ctx, x, g, *, kernel_size, padding, stride, dilation, groups, columns=None, grad_rows=None):
        _check_rank("conv2d_weight_grad", input=x, grad=g)
        _check_fit("conv2d_weight_grad", x.shape, (g.shape[1], x.shape[1] // groups, *kernel_size), g.shape, padding,
                   stride, dilation, groups)
        cols = _columns(x, kernel_size, padding, stride, dilation) if columns is None else columns
        o, c_per_group = g.shape[1], x.shape[1] // groups
        by_row = _by_row(o // groups, cols.shape[0] // groups)
        outs = _per_group(_rows(g) if grad_rows is None else grad_rows, groups, by_row)
        taps = _per_group(cols, groups, by_row)
        # (G, OH or 1, C/G*KH*KW or O/G, L) each; summed over the pieces; the wider side first
        # runs faster (OpenBLAS, measured)
        if taps.shape[2] >= outs.shape[2]:
            dw = np.matmul(taps, outs.swapaxes(-1, -2)).sum(axis=1).swapaxes(-1, -2)
        else:
            dw = np.matmul(outs, taps.swapaxes(-1, -2)).sum(axis=1)
        return dw.reshape(o, c_per_group, *kernel_size)

    @staticmethod
    def backward(ctx, h):
        x, g = ctx.inputs
        need_x, need_g = ctx.needs_input_grad
        geometry = {k: v for k, v in ctx.kwargs.items() if k not in ("kernel_size", "columns", "grad_rows")}
        return (ConvTranspose2d.apply(g, h, input_size=x.shape[-2:], **geometry) if need_x else None,
                Conv2d.apply(x, h, **geometry) if need_g else None)
