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
already is the (O, OH*OW*N) result of its matrix product: no transpose between layers. NumPy's
elementwise ops and our pooling keep an input's layout, so it flows through ReLU and pooling to
the next convolution; any other layout is accepted and copied once.

Blocks. The im2col columns (KH*KW times the image) are never built whole: the forward and the
weight gradient copy those of a few output rows into a small buffer and multiply them while they
are in the cache (_im2col), and the transposed convolution makes and adds back its own a
few output rows at a time (_sent_back). A convolution needs the memory of its input, output and
gradients only.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd.forward_ad import levels as dual_levels
from ..autograd.forward_ad import multilinear_jvp, tangent_sum
from ..autograd.function import Primitive
from ..autograd.grad_mode import is_anomaly_enabled, is_grad_enabled
from .threads import both, in_parallel
from .window import output_size

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]


def _batch_last(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> a (C, H, W, N) view."""
    return x.transpose(1, 2, 3, 0)


def _batch_last_copy(x: np.ndarray, padding: Padding = (0, 0, 0, 0)) -> np.ndarray:
    """(N, C, H, W) -> a C-contiguous (C, H + top + bottom, W + left + right, N) copy, zeros around.
    From (N, C, H, W) memory it copies a few images at a time, so that each position's numbers
    written are one 64-byte cache line (faster than one transposing copy); from memory already
    batch-innermost (our ops' outputs), whole rows at once. Only the border is zeroed."""
    n, c, h, w = x.shape
    left, right, top, bottom = padding
    out = np.empty((c, h + top + bottom, w + left + right, n), dtype=x.dtype)
    out[:, :top] = out[:, top + h:] = 0
    out[:, top:top + h, :left] = out[:, top:top + h, left + w:] = 0
    inside, source = out[:, top:top + h, left:left + w], _batch_last(x)
    step = max(1, n if x.strides[0] == x.itemsize else 64 // x.itemsize)
    for start in range(0, n, step):
        inside[..., start:start + step] = source[..., start:start + step]
    return out


def _output_hw(input_hw: Pair, kernel_size: Pair, padding: Padding, stride: Pair, dilation: Pair) -> Pair:
    left, right, top, bottom = padding
    return (output_size(input_hw[0] + top + bottom, kernel_size[0], stride[0], dilation[0]),
            output_size(input_hw[1] + left + right, kernel_size[1], stride[1], dilation[1]))


def _padded(x: np.ndarray, padding: Padding) -> np.ndarray:
    """(N, C, H, W) -> the zero-padded image as a C-contiguous (C, PH, PW, N) array: a view of x
    when it lies so in memory and needs no padding, else a copy."""
    image = _batch_last(x)
    return image if image.flags.c_contiguous and not any(padding) else _batch_last_copy(x, padding)


def _windows(image: np.ndarray, kernel_size: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """A padded image (C, PH, PW, N) -> a read-only (C, KH, KW, OH, OW, N) view:
    windows[c, i, j, p, q, n] = image[c, p*sh + i*dh, q*sw + j*dw, n] is what kernel tap (i, j)
    of channel c sees at output position (p, q)."""
    c, ph, pw, n = image.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh, ow = _output_hw((ph, pw), kernel_size, (0, 0, 0, 0), stride, dilation)
    s_c, s_h, s_w, s_n = image.strides
    return as_strided(image, (c, kh, kw, oh, ow, n), (s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, s_n),
                      writeable=False)


def _row_blocks(rows: int, numbers_per_row: int, numbers_per_block: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of equal blocks of `rows` output rows, as many as there are `numbers_per_block`
    in all of them (at least one)."""
    step = -(-rows // max(1, rows * numbers_per_row // numbers_per_block))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


COLUMN_BLOCK = 1 << 19  # numbers in one block of im2col columns: 2 MB in float32 (measured best here of 1-8 MB)


# Rows of the per-block buffers (im2col's columns, the transposed convolution's products) lie this many
# numbers further apart than a block is long: BLAS reads or writes a matrix whose rows are a power of two
# apart (4096 numbers: two output rows of a (64, 16, 32, 32) batch) at half speed, its rows competing for
# the same cache sets (measured).
ROW_PADDING = 16


def _row_buffer(rows: tuple[int, ...], length: int, dtype: np.dtype) -> np.ndarray:
    """An uninitialised (*rows, length) array whose rows lie ROW_PADDING numbers further apart than
    `length`: a thread makes one for its first (largest) block and uses `[..., :length]` of it for each."""
    return np.empty((*rows, length + ROW_PADDING), dtype=dtype)[..., :length]


def _column_blocks(windows: np.ndarray) -> list[tuple[int, int]]:
    """The blocks of output rows (start, stop) in which im2col copies the columns of `windows`."""
    c, kh, kw, oh, ow, n = windows.shape
    return list(_row_blocks(oh, c * kh * kw * ow * n, COLUMN_BLOCK))


def _im2col(windows: np.ndarray, blocks: list[tuple[int, int]], use: Callable[[int, int, int, np.ndarray], None]) -> None:
    """im2col, a block of output rows at a time: use(i, start, stop, columns) for each block i of `blocks`, with
    columns (C*KH*KW, stop - start, OW*N) copied out of `windows` (C, KH, KW, OH, OW, N). The whole columns are
    KH*KW times the image (38 MB for a (64, 16, 32, 32) input and a 3 x 3 kernel); made and used a block at a
    time, in a buffer that each thread reuses, they stay in the cache and cost no memory (docs/benchmarks.md
    has the timings). The blocks are shared out among threads (threads.py), each thread copying and
    multiplying its own."""
    c, kh, kw, oh, ow, n = windows.shape

    def run(first: int, last: int) -> None:
        buffer = None
        for i in range(first, last):
            start, stop = blocks[i]
            block = windows[:, :, :, start:stop]
            length = (stop - start) * ow * n
            if buffer is None:
                buffer = _row_buffer((c * kh * kw,), length, windows.dtype)
            columns = buffer[:, :length]
            np.copyto(columns.reshape(block.shape), block)
            use(i, start, stop, columns.reshape(c * kh * kw, stop - start, ow * n))

    in_parallel(run, len(blocks), 2, blas=True)  # a thread's share: two blocks at least (measured on LeNet-5)


def _grad_rows(g: np.ndarray) -> np.ndarray:
    """An output gradient (N, O, OH, OW) as (O, OH, OW*N): free when it lies batch-last in memory
    (what our ops pass back), else copied once."""
    n, o, oh, ow = g.shape
    batch_last = _batch_last(g)
    return (batch_last if batch_last.flags.c_contiguous else _batch_last_copy(g)).reshape(o, oh, ow * n)


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


def _sent_back(rows: np.ndarray, w: np.ndarray, groups: int, grad_shape: tuple, input_hw: Pair, padding: Padding,
               stride: Pair, dilation: Pair) -> np.ndarray:
    """The transposed convolution of an output gradient of shape `grad_shape` (N, O, OH, OW),
    given as `rows` (O, OH, OW*N) -> (N, C, H, W):
    the filters transposed times the gradient give, for each kernel tap (i, j), what goes back to
    the pixels that tap read; those are added in place (overlapping windows add up, what lands
    in the padding is dropped). A loop over taps, never over pixels, and over blocks of output
    rows, so each block's columns are added back while they are still in the CPU's cache (2x
    faster than all at once for a (64, 16, 32, 32) input, measured); blocks are made long enough
    that each tap's add has at least ~32K numbers, NumPy's cost per call being small beside that."""
    (kh, kw), (sh, sw), (dh, dw) = w.shape[-2:], stride, dilation
    left, right, top, bottom = padding
    (h, width), (batch, o, oh, ow) = input_hw, grad_shape
    c = w.shape[1] * groups
    image = np.zeros((c, h + top + bottom, width + left + right, batch), dtype=np.result_type(rows, w))
    filters = w.reshape(groups, o // groups, math.prod(w.shape[1:])).swapaxes(1, 2)  # (G, C/G*KH*KW, O/G)
    blocks = list(_row_blocks(oh, c * ow * batch, 1 << 15))
    taps_per_channel = kh * kw

    def send_back(first: int, last: int) -> None:
        # the channels first:last (with one group), or the groups first:last, through every block
        if groups == 1:
            part, channels, group = filters[:, first * taps_per_channel:last * taps_per_channel], slice(first, last), 0
        else:
            per_group = c // groups
            part, channels, group = filters[first:last], slice(first * per_group, last * per_group), slice(first, last)
        buffer = None
        for start, stop in blocks:
            length = (stop - start) * ow * batch
            if buffer is None:
                buffer = _row_buffer(part.shape[:-1], length, image.dtype)
            grads = rows[:, start:stop].reshape(groups, o // groups, length)[group]
            taps = np.matmul(part, grads, out=buffer[..., :length])
            taps = taps.reshape(channels.stop - channels.start, kh, kw, stop - start, ow, batch)
            for i in range(kh):
                for j in range(kw):
                    image[channels, start * sh + i * dh:(stop - 1) * sh + i * dh + 1:sh,
                          j * dw:j * dw + sw * (ow - 1) + 1:sw] += taps[:, i, j]

    # a thread's share: at least a block of columns' worth of numbers (LeNet's 6 channels stay whole)
    per_unit = taps_per_channel * oh * ow * batch * (1 if groups == 1 else c // groups)
    in_parallel(send_back, c if groups == 1 else groups, -(-COLUMN_BLOCK // max(1, per_unit)), blas=True)
    return image[:, top:top + h, left:left + width].transpose(3, 0, 1, 2)


def _batch_last_layout(a: np.ndarray) -> np.ndarray:
    """a (N, C, H, W), lying batch-last in memory: as it is if it does, else copied so."""
    return a if _batch_last(a).flags.c_contiguous else _batch_last_copy(a).transpose(3, 0, 1, 2)


def _geometry(kwargs: dict) -> dict:
    """The arguments all three convolutions share, out of one's keyword arguments."""
    return {k: kwargs[k] for k in ("padding", "stride", "dilation", "groups")}


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


def _convolve(image: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: Pair, dilation: Pair,
              groups: int) -> np.ndarray:
    """The convolution of a padded batch-last image (C, PH, PW, N) with w (O, C/G, KH, KW) (+ b):
    (N, O, OH, OW), lying batch-last in memory. One product per block of im2col columns."""
    windows = _windows(image, w.shape[-2:], stride, dilation)
    *_, oh, ow, n = windows.shape
    filters = w.reshape(groups, w.shape[0] // groups, math.prod(w.shape[1:]))  # (G, O/G, C/G*KH*KW)
    by_row = _by_row(*filters.shape[1:])
    y = np.empty((w.shape[0], oh, ow * n), dtype=np.result_type(image, w, *(() if b is None else (b,))))

    def multiply(i: int, start: int, stop: int, columns: np.ndarray) -> None:
        np.matmul(filters[:, None], _per_group(columns, groups, by_row), out=_per_group(y[:, start:stop], groups, by_row))

    _im2col(windows, _column_blocks(windows), multiply)
    if b is not None:
        y += b[:, None, None]
    return y.reshape(w.shape[0], oh, ow, n).transpose(3, 0, 1, 2)


def _flipped(w: np.ndarray, groups: int) -> np.ndarray:
    """w (O, C/G, KH, KW) -> (C, O/G, KH, KW), each filter turned by 180 degrees and the channels swapped
    within each group: the weight of the convolution that is the stride-1 transposed convolution by w."""
    o, c_per_group, kh, kw = w.shape
    per_group = w[:, :, ::-1, ::-1].reshape(groups, o // groups, c_per_group, kh, kw)
    return np.ascontiguousarray(per_group.transpose(0, 2, 1, 3, 4)).reshape(groups * c_per_group, o // groups, kh, kw)


class Conv2d(Primitive):
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
        image = _padded(x, padding)
        y = _convolve(image, w, b, stride, dilation, groups)
        need_x, need_w = ctx.needs_input_grad[:2]
        # the weight gradient needs x, and its image padded and batch-last (made already)
        ctx.save_for_backward(x if need_w else None, image if need_w else None, w if need_x else None,
                              x.shape, w.shape)
        return y

    @staticmethod
    def backward(ctx, g):
        x, image, w, x_shape, w_shape = ctx.saved_tensors
        need_x, need_w, *need_b = ctx.needs_input_grad
        geometry = weight_geometry = ctx.kwargs
        plain = not is_grad_enabled() and not dual_levels
        if plain and (need_x or need_w):
            # Fast path of a plain backward, where no gradient has to be a graph (nor carry a forward-AD
            # tangent): both products get the gradient laid out batch-last (copied at most once), and
            # the weight gradient is taken from the image the forward has padded and laid out already.
            g = g._wrap(_batch_last_layout(g.detach().numpy()))
            if need_w:
                x, weight_geometry = g._wrap(image.transpose(3, 0, 1, 2)), {**geometry, "padding": (0, 0, 0, 0)}

        def input_grad():
            return ConvTranspose2d.apply(g, w, input_size=x_shape[-2:], **geometry) if need_x else None

        def weight_grad():
            return Conv2dWeightGrad.apply(x, g, kernel_size=w_shape[-2:], **weight_geometry) if need_w else None

        # The two are independent: in a plain backward each runs on a core of its own (threads.both); in
        # anomaly mode, whose checks of each op belong to this thread, one after the other.
        together = plain and need_x and need_w and not is_anomaly_enabled()
        dx, dw = both(input_grad, weight_grad) if together else (input_grad(), weight_grad())
        if not need_b:
            return dx, dw
        return dx, dw, g.sum((0, 2, 3)) if need_b[0] else None

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        (x, w, *_), (tx, tw, *tb) = primals, tangents  # bilinear in (x, w), plus the bias
        geometry = _geometry(ctx.kwargs)
        return tangent_sum(None if tx is None else Conv2d.apply(tx, w, **geometry),
                           None if tw is None else Conv2d.apply(x, tw, **geometry),
                           None if not tb or tb[0] is None else tb[0].reshape(-1, 1, 1))


class ConvTranspose2d(Primitive):
    """g (N, O, OH, OW), w (O, C/G, KH, KW) -> (N, C, H, W) with (H, W) = input_size: the adjoint
    of Conv2d in its input, dx[n, c, p*sh + i*dh, q*sw + j*dw] += g[n, o, p, q] * w[o, c, i, j]
    (positions in the padding dropped)."""

    @staticmethod
    def forward(ctx, g, w, *, input_size, padding, stride, dilation, groups):
        _check_rank("conv_transpose2d", grad=g, weight=w)
        _check_fit("conv_transpose2d", (g.shape[0], w.shape[1] * groups, *input_size), w.shape, g.shape, padding,
                   stride, dilation, groups)
        need_g, need_w = ctx.needs_input_grad
        ctx.save_for_backward(g if need_w else None, w if need_g else None, w.shape)
        (kh, kw), (dh, dw) = w.shape[-2:], dilation
        left, right, top, bottom = padding
        full = (dw * (kw - 1) - left, dw * (kw - 1) - right, dh * (kh - 1) - top, dh * (kh - 1) - bottom)
        copied, added = w.shape[0] * math.prod(input_size), 2 * w.shape[1] * groups * math.prod(g.shape[2:])
        if stride == (1, 1) and min(full) >= 0 and copied <= added:
            # Fast path: with stride 1 the transposed convolution is a convolution of g, padded to the
            # "full" size, with the flipped, channel-swapped filters: one product per block of columns
            # instead of a product and KH*KW strided adds. Its im2col copies O*KH*KW numbers per pixel
            # of dx where the adds touch C*KH*KW per pixel of g, each touch a read and a write: it pays
            # when O*H*W <= 2*C*OH*OW (ResNet-20's layers; not LeNet's second convolution, 16 -> 6 with
            # a 10 x 10 output: docs/benchmarks.md).
            return _convolve(_padded(g, full), _flipped(w, groups), None, stride, dilation, groups)
        return _sent_back(_grad_rows(g), w, groups, g.shape, input_size, padding, stride, dilation)

    @staticmethod
    def backward(ctx, h):
        g, w, w_shape = ctx.saved_tensors
        need_g, need_w = ctx.needs_input_grad
        geometry = _geometry(ctx.kwargs)
        return (Conv2d.apply(h, w, **geometry) if need_g else None,
                Conv2dWeightGrad.apply(h, g, kernel_size=w_shape[-2:], **geometry) if need_w else None)

    jvp = staticmethod(multilinear_jvp)


class Conv2dWeightGrad(Primitive):
    """x (N, C, H, W), g (N, O, OH, OW) -> (O, C/G, KH, KW) with (KH, KW) = kernel_size:
    dw[o, c, i, j] = sum over n, p, q of x_padded[n, c, p*sh + i*dh, q*sw + j*dw] * g[n, o, p, q]."""

    @staticmethod
    def forward(ctx, x, g, *, kernel_size, padding, stride, dilation, groups):
        _check_rank("conv2d_weight_grad", input=x, grad=g)
        _check_fit("conv2d_weight_grad", x.shape, (g.shape[1], x.shape[1] // groups, *kernel_size), g.shape, padding,
                   stride, dilation, groups)
        need_x, need_g = ctx.needs_input_grad
        ctx.save_for_backward(x if need_g else None, g if need_x else None, x.shape)
        windows = _windows(_padded(x, padding), kernel_size, stride, dilation)
        grad_rows = _grad_rows(g)
        o, c_per_group = g.shape[1], x.shape[1] // groups
        taps_per_group = c_per_group * kernel_size[0] * kernel_size[1]
        by_row = _by_row(o // groups, taps_per_group)
        blocks = _column_blocks(windows)
        # one product per block, summed at the end in block order: the same sum whatever thread made each
        products = np.empty((len(blocks), groups, o // groups, taps_per_group), dtype=np.result_type(x, g))

        def multiply(i: int, start: int, stop: int, columns: np.ndarray) -> None:
            outs, taps = _per_group(grad_rows[:, start:stop], groups, by_row), _per_group(columns, groups, by_row)
            # (G, rows or 1, O/G or C/G*KH*KW, L) each; products summed over the pieces; the wider
            # side first runs faster (OpenBLAS, measured)
            if taps.shape[2] >= outs.shape[2]:
                products[i] = np.matmul(taps, outs.swapaxes(-1, -2)).sum(axis=1).swapaxes(-1, -2)
            else:
                products[i] = np.matmul(outs, taps.swapaxes(-1, -2)).sum(axis=1)

        _im2col(windows, blocks, multiply)
        return products.sum(axis=0).reshape(o, c_per_group, *kernel_size)

    @staticmethod
    def backward(ctx, h):
        x, g, x_shape = ctx.saved_tensors
        need_x, need_g = ctx.needs_input_grad
        geometry = _geometry(ctx.kwargs)
        return (ConvTranspose2d.apply(g, h, input_size=x_shape[-2:], **geometry) if need_x else None,
                Conv2d.apply(x, h, **geometry) if need_g else None)

    jvp = staticmethod(multilinear_jvp)
