"""Neural-network functions on Tensors, mirroring torch.nn.functional (import as F).

Everything here is composed from the primitives in `ops/`, so each function is
differentiable twice with no gradient code of its own:

    conv2d      = Conv2d, whose VJPs are ConvTranspose2d and Conv2dWeightGrad (ops/conv.py)
    max_pool2d  = pad with -inf -> WindowMax
    avg_pool2d  = Conv2d with one filter of ones per channel / window size
    log_softmax = shifted logits - log(sum(exp(shifted logits)))
    cross_entropy = nll_loss(log_softmax(logits))
    binary_cross_entropy_with_logits = p y softplus(-z) + (1 - y) softplus(z), softplus by `where` so
                  exp never overflows

`@composite` marks each function made of several primitives as one NN op, so a graph
drawing (tinygrad_cnn.viz) can show one `max_pool2d` box instead of its Pad and WindowMax.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import ops
from .autograd.grad_mode import no_grad
from .rng import get_generator
from .checks import pair_argument, probability_argument, takes_tensors
from .scopes import composite
from .tensor import Tensor, cat

IntPair = int | tuple[int, int]

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d", "cosine_similarity", "cross_entropy",
           "dropout", "dropout2d", "elu", "flatten", "gelu", "group_norm", "hardtanh", "huber_loss", "interpolate",
           "kl_div", "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
           "nll_loss", "normalize", "one_hot", "pad", "pairwise_distance", "prelu", "relu", "sigmoid", "silu",
           "smooth_l1_loss", "softmax", "softplus", "tanh"]


def _batched(input: Tensor, op: str) -> tuple[Tensor, bool]:
    """(N, C, H, W) as is, or an unbatched (C, H, W) with a batch dim of 1 added."""
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected input of shape (N, C, H, W) or (C, H, W), got {input.shape}")
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


# ---------------------------------------------------------------- padding

def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding. `pad` lists (before, after) amounts from the last dim backwards,
    as PyTorch: (left, right) pads the last dim, (left, right, top, bottom) the last two."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding {pad} must have an even length of at most 2 * {input.ndim} "
                         f"for a tensor of shape {input.shape}")
    if any(not isinstance(p, int) or p < 0 for p in pad):
        raise ValueError(f"pad: padding {pad} must be non-negative ints")
    if not any(pad):
        return input
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
    pad_width = tuple([(0, 0)] * (input.ndim - len(pairs)) + pairs[::-1])
    return ops.Pad.apply(input, pad_width=pad_width, value=value)


# ---------------------------------------------------------------- convolution

def _conv_padding(padding: IntPair | str, kernel: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom). 'same' puts an odd extra pixel on the right/bottom, as PyTorch."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1, got stride {stride}")
        total_h, total_w = (d * (k - 1) for d, k in zip(dilation, kernel))
        return (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2)
    if isinstance(padding, str):
        raise ValueError(f"conv2d: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    ph, pw = pair_argument(padding, "padding", "conv2d", 0)
    return (pw, pw, ph, ph)


def _check_channels(op: str, input: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int,
                    transposed: bool) -> None:
    """Check that the batched input x (N, C, H, W), the weight and the bias fit one convolution: weight
    (O, C/groups, KH, KW), bias (O,); or, transposed, the weight of the convolution it is the adjoint of,
    (C, O/groups, KH, KW), bias (O,)."""
    if weight.ndim != 4:
        layout = "(C, O/groups, KH, KW)" if transposed else "(O, C/groups, KH, KW)"
        raise ValueError(f"{op}: weight must have shape {layout}, got {weight.shape}")
    c, shapes = x.shape[1], f"input {input.shape}, weight {weight.shape}"
    # weight.shape[0] is O for a convolution and C for a transposed one: groups must divide it either way
    if not isinstance(groups, int) or groups < 1 or c % groups or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c}) and weight.shape[0] "
                         f"({weight.shape[0]}) ({shapes})")
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if c != expected:
        raise ValueError(f"{op}: input has {c} channels but weight expects {expected} ({shapes}, groups={groups})")
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")


@composite("conv2d", keys=("stride", "padding"), extra_keys=("dilation", "groups"))
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch): every filter slides over the image.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        weight: (O, C / groups, KH, KW): O filters; O is the output depth.
        bias: (O,) or None.
        stride, dilation: an int or (h, w). padding: an int, (h, w), 'valid' or 'same'.
        groups: split channels into groups convolved separately (C and O divisible by it).
    Returns:
        (N, O, OH, OW) with OH = floor((H + pad_h - dilation*(KH-1) - 1) / stride) + 1.
    """
    x, unbatched = _batched(input, "conv2d")
    stride, dilation = pair_argument(stride, "stride", "conv2d", 1), pair_argument(dilation, "dilation", "conv2d", 1)
    _check_channels("conv2d", input, x, weight, bias, groups, transposed=False)
    Tensor._check_same_dtype("conv2d", input, weight, bias)
    _, _, h, w = x.shape
    kh, kw = weight.shape[-2:]
    if kh == 0 or kw == 0:
        raise RuntimeError(f"conv2d: kernel size should be greater than zero, but got kernel_height: {kh} "
                           f"kernel_width: {kw} (weight {weight.shape})")
    left, right, top, bottom = _conv_padding(padding, (kh, kw), stride, dilation)
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if span_h > h + top + bottom or span_w > w + left + right:
        raise ValueError(f"conv2d: kernel spans {span_h}x{span_w} (with dilation) but the padded input is only "
                         f"{h + top + bottom}x{w + left + right} (input {input.shape}, weight {weight.shape})")

    tensors = (x, weight) if bias is None else (x, weight, bias)
    out = ops.Conv2d.apply(*tensors, padding=(left, right, top, bottom), stride=stride, dilation=dilation,
                           groups=groups)
    return out.squeeze(0) if unbatched else out


def _transposed_size(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    """conv_transpose2d's output size along one axis, the input size of the convolution it is the adjoint of:
    (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _sent_back_rows(size: int, kernel: int, stride: int, padding: int, dilation: int, out: int) -> tuple[int, int, int]:
    """Which of conv_transpose2d's rows (along one axis) ops.ConvTranspose2d computes: (start, stop, behind).

    Unpadded, the taps reach rows 0 .. full - 1; the output is rows [padding, padding + out) of those, zeros
    past full - 1. The primitive returns rows [start, stop) of an image padded with `start` rows in front and
    `behind` at the back, as long as its convolution then has `size` outputs: stop + behind within
    [full, full + stride - 1]. start = padding and stop = padding + out do, but where output_padding >= stride
    (allowed by a larger dilation) or the padding swallows every tap; then the caller crops and adds zeros."""
    full = _transposed_size(size, kernel, stride, 0, dilation, 0)
    start, stop = min(padding, full - 1), min(padding + out, full + stride - 1)
    return start, stop, max(0, full - stop)


@composite("conv_transpose2d", keys=("stride", "padding"), extra_keys=("output_padding", "groups", "dilation"))
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """Transposed convolution: the adjoint of conv2d in its input, that is conv2d's input gradient
    (ops.ConvTranspose2d). Each input pixel adds its value times the filter into the output window it would
    be read from: out[n, o, p*s + i*d - pad, q*s + j*d - pad] += x[n, c, p, q] * weight[c, o, i, j].

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        weight: (C, O / groups, KH, KW): the weight of the conv2d it is the adjoint of (O -> C channels).
        bias: (O,) or None.
        stride, padding, dilation: those of that conv2d; an int or (h, w).
        output_padding: rows and columns added at the bottom and right, which a strided conv2d's input may
            have without its output changing; smaller than stride or dilation.
        groups: split channels into groups (C divisible by it).
    Returns:
        (N, O, OH, OW) with OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1.
        Its gradients are a conv2d (input) and conv2d's weight gradient (weight), see ops/conv.py.
    """
    op = "conv_transpose2d"
    x, unbatched = _batched(input, op)
    stride, dilation = pair_argument(stride, "stride", op, 1), pair_argument(dilation, "dilation", op, 1)
    padding = pair_argument(padding, "padding", op, 0)
    output_padding = pair_argument(output_padding, "output_padding", op, 0)
    _check_channels(op, input, x, weight, bias, groups, transposed=True)
    Tensor._check_same_dtype(op, input, weight, bias)
    if any(extra >= s and extra >= d for extra, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either stride {stride} "
                         f"or dilation {dilation}")
    axes = list(zip(x.shape[-2:], weight.shape[-2:], stride, padding, dilation))
    out_h, out_w = (_transposed_size(*axis, extra) for axis, extra in zip(axes, output_padding))
    if min(out_h, out_w) < 1:
        raise ValueError(f"{op}: output size {(out_h, out_w)} is too small (input {input.shape}, weight "
                         f"{weight.shape}, stride={stride}, padding={padding}, dilation={dilation})")
    (top, stop_h, bottom), (left, stop_w, right) = (_sent_back_rows(*axis, out)
                                                     for axis, out in zip(axes, (out_h, out_w)))
    out = ops.ConvTranspose2d.apply(x, weight, input_size=(stop_h - top, stop_w - left),
                                    padding=(left, right, top, bottom), stride=stride, dilation=dilation, groups=groups)
    if (top, left) != padding:
        out = out[:, :, padding[0] - top:, padding[1] - left:]
    out = pad(out, (0, out_w - out.shape[3], 0, out_h - out.shape[2]))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------- pooling

def _pool_geometry(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                   dilation: IntPair, ceil_mode: bool, op: str):
    """Checked kernel, stride, dilation, and the (left, right, top, bottom) padding, where
    ceil_mode adds room on the right/bottom for a last, partial window."""
    kernel = pair_argument(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == [] else pair_argument(stride, "stride", op, 1)
    padding, dilation = pair_argument(padding, "padding", op, 0), pair_argument(dilation, "dilation", op, 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    extra = []
    for size, k, s, p, d in zip(x.shape[-2:], kernel, stride, padding, dilation):
        span = d * (k - 1) + 1
        # PyTorch's count: ceil_mode rounds up, so a last window may start inside the input (or the left
        # padding: no later) and span past it, even one wider than the whole padded input
        out = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        if out < 1:
            raise ValueError(f"{op}: kernel spans {span} (with dilation) but the padded input is only "
                             f"{size + 2 * p} (input {x.shape}, kernel_size={kernel_size}, padding={padding})")
        extra.append(max(0, (out - 1) * s + span - size - 2 * p))
    return kernel, stride, dilation, (padding[1], padding[1] + extra[1], padding[0], padding[0] + extra[0])


@composite("max_pool2d", keys=("kernel_size", "stride"), extra_keys=("padding", "dilation", "ceil_mode"))
def max_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The largest value in each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.
    The gradient goes to each window's first maximum (row-major), as PyTorch, so ties match. With
    `return_indices`, also where that maximum is: its flat index row * W + col in its (H, W) plane, int64."""
    x, unbatched = _batched(input, "max_pool2d")
    kernel, stride, dilation, pads = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    padded = pad(x, pads, value=-np.inf)
    out = ops.WindowMax.apply(padded, kernel_size=kernel, stride=stride, dilation=dilation)
    if not return_indices:
        return out.squeeze(0) if unbatched else out
    indices = Tensor(_max_pool_indices(padded._array, kernel, stride, dilation, pads, x.shape[-2:]))
    return (out.squeeze(0), indices.squeeze(0)) if unbatched else (out, indices)


def _first_max(rows: np.ndarray) -> np.ndarray:
    """The position of each row's first maximum along the last axis, or of its last NaN if it has one
    (PyTorch's pooling: a NaN counts as the maximum, and a later one replaces an earlier one)."""
    k = rows.argmax(-1)
    nan = np.isnan(rows)
    if nan.any():
        k = np.where(nan.any(-1), rows.shape[-1] - 1 - nan[..., ::-1].argmax(-1), k)
    return k


def _max_pool_indices(padded: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                      dilation: tuple[int, int], pads: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """For each window of max_pool2d over the padded (N, C, H', W') input, the flat index in the unpadded
    (H, W) = `size` plane of its first maximum; a window whose values are all -inf points at its first tap
    inside the input (where PyTorch's search starts), not into the padding."""
    (kh, kw), (sh, sw), (dh, dw), (h, w) = kernel, stride, dilation, size
    left, top = pads[0], pads[2]
    windows = sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(-2, -1))
    windows = windows[..., ::sh, ::sw, ::dh, ::dw]
    k = _first_max(windows.reshape(windows.shape[:4] + (kh * kw,)))
    starts_h, starts_w = np.arange(k.shape[-2])[:, None] * sh - top, np.arange(k.shape[-1]) * sw - left
    rows, cols = starts_h + (k // kw) * dh, starts_w + (k % kw) * dw
    # the first tap at or after each window's start that lies inside the input
    first_rows = starts_h + (-np.minimum(starts_h, 0) + dh - 1) // dh * dh
    first_cols = starts_w + (-np.minimum(starts_w, 0) + dw - 1) // dw * dw
    outside = (rows < 0) | (rows >= h) | (cols < 0) | (cols >= w)
    rows, cols = np.where(outside, first_rows, rows), np.where(outside, first_cols, cols)
    return (rows * w + cols).astype(np.int64)


def _window_counts(size: int, lo: int, hi: int, out: int, kernel: int, stride: int) -> np.ndarray:
    """For each of `out` windows along one axis, how many of its taps fall in [lo, hi)."""
    taps = np.arange(out)[:, None] * stride + np.arange(kernel)[None, :]
    return ((taps >= lo) & (taps < hi)).sum(axis=1)


@composite("avg_pool2d", keys=("kernel_size", "stride"), extra_keys=("padding", "ceil_mode", "count_include_pad"))
def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """The mean of each window: (N, C, H, W) -> (N, C, OH, OW). With `count_include_pad` the zero
    padding counts towards the mean (PyTorch's default); the ceil_mode overhang never does."""
    x, unbatched = _batched(input, "avg_pool2d")
    kernel, stride, _, pads = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    c, (h, w) = x.shape[1], x.shape[-2:]
    # the window sums are a convolution of each channel with a filter of ones
    ones = Tensor(np.ones((c, 1) + kernel, dtype=x.dtype))
    sums = ops.Conv2d.apply(x, ones, padding=pads, stride=stride, dilation=(1, 1), groups=c)
    oh, ow = sums.shape[-2:]
    (left, _, top, _), (ph, pw) = pads, (pads[2], pads[0])
    lo_h, hi_h = (0, h + 2 * ph) if count_include_pad else (top, top + h)
    lo_w, hi_w = (0, w + 2 * pw) if count_include_pad else (left, left + w)
    counts = np.outer(_window_counts(h, lo_h, hi_h, oh, kernel[0], stride[0]),
                      _window_counts(w, lo_w, hi_w, ow, kernel[1], stride[1]))
    out = sums * (1.0 / counts).astype(x.dtype)
    return out.squeeze(0) if unbatched else out


def _adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's windows of adaptive pooling along one axis: [floor(i size / out), ceil((i + 1) size / out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_output_size(input: Tensor, output_size: int | None | tuple[int | None, int | None],
                          op: str) -> tuple[int, int]:
    """The checked (OH, OW) of adaptive pooling; None in output_size keeps that input size."""
    sizes = input.shape[-2:]
    pair = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(pair) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(size if o is None else o for size, o in zip(sizes, pair))
    if not all(isinstance(o, int) and o >= 1 for o in out) or min(sizes) < 1:
        raise ValueError(f"{op}: output_size {output_size!r} must be positive and the input non-empty, "
                         f"got input {input.shape}")
    return out


def _adaptive_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None], op: str,
                     pool: Callable[..., Tensor], reduce: Callable[[Tensor, int], Tensor]) -> Tensor:
    """Adaptive pooling: `pool` with kernel = stride = size / out when both sizes divide, else `reduce`
    over each window, one axis after the other (a window is a rectangle, so both reductions separate)."""
    x, unbatched = _batched(input, op)
    sizes, out = x.shape[-2:], _adaptive_output_size(input, output_size, op)
    if sizes[0] % out[0] == 0 and sizes[1] % out[1] == 0:
        kernel = (sizes[0] // out[0], sizes[1] // out[1])
        x = pool(x, kernel, kernel)
    else:
        for axis, (size, n) in zip((2, 3), zip(sizes, out)):
            windows = [x[(slice(None),) * axis + (slice(lo, hi),)] for lo, hi in _adaptive_bounds(size, n)]
            x = cat([reduce(window, axis) for window in windows], dim=axis)
    return x.squeeze(0) if unbatched else x


@composite("adaptive_avg_pool2d", keys=("output_size",))
def adaptive_avg_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None]) -> Tensor:
    """Mean over PyTorch's adaptive windows (start floor(i H / OH), end ceil((i+1) H / OH)) to (N, C, OH, OW);
    gradient g / window size to each element of the window. None in output_size keeps that input size."""
    return _adaptive_pool2d(input, output_size, "adaptive_avg_pool2d", avg_pool2d,
                            lambda window, axis: window.mean(axis, keepdim=True))


@composite("adaptive_max_pool2d", keys=("output_size",))
def adaptive_max_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None],
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over PyTorch's adaptive windows (as adaptive_avg_pool2d); the gradient goes to each window's first
    maximum (row-major), as PyTorch. With `return_indices`, also where that maximum is: its flat index
    row * W + col in its (H, W) plane, int64.

    Windows that tile the input are max_pool2d's; others are searched one window at a time in NumPy, and
    the maxima gathered from the input at the indices found."""
    op = "adaptive_max_pool2d"
    x, unbatched = _batched(input, op)
    (h, w), out = x.shape[-2:], _adaptive_output_size(input, output_size, op)
    if h % out[0] == 0 and w % out[1] == 0 and not return_indices:
        values = max_pool2d(x, (h // out[0], w // out[1]))
        return values.squeeze(0) if unbatched else values
    n, c = x.shape[:2]
    indices = np.empty((n, c) + out, np.int64)
    for i, (top, bottom) in enumerate(_adaptive_bounds(h, out[0])):
        for j, (left, right) in enumerate(_adaptive_bounds(w, out[1])):
            k = _first_max(x._array[..., top:bottom, left:right].reshape(n, c, -1))
            indices[..., i, j] = (top + k // (right - left)) * w + left + k % (right - left)
    values = x.reshape(n, c, h * w).gather(2, indices.reshape(n, c, -1)).reshape(n, c, *out)
    if not return_indices:
        return values.squeeze(0) if unbatched else values
    indices = Tensor(indices)
    return (values.squeeze(0), indices.squeeze(0)) if unbatched else (values, indices)


# ---------------------------------------------------------------- upsampling
#
# interpolate resizes one spatial axis after the other: each output position reads one input position
# (nearest) or two, weighted (linear), with indices and weights computed in NumPy by PyTorch's formulas.
# The reads are index_select gathers, so the gradient (each output's gradient added back to the pixels it
# read, times their weights) and second derivatives come from those of GetItem and Mul.

_LINEAR_MODES = {3: "linear", 4: "bilinear", 5: "trilinear"}  # input dims -> its linear mode


def _per_axis(value: object, name: str, spatial: tuple[int, ...]) -> tuple:
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * len(spatial)
    if len(values) != len(spatial):
        raise ValueError(f"interpolate: {name} {value!r} must have one entry per spatial dim of the input, "
                         f"whose spatial sizes are {spatial}")
    return values


def _interpolation_sizes(input: Tensor, size: int | Sequence[int] | None, scale_factor: float | Sequence[float] | None,
                         recompute_scale_factor: bool | None) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """The output's spatial sizes, and per axis the scale factor the source positions use (None: the sizes'
    ratio): a given scale_factor is kept, as PyTorch, unless recompute_scale_factor is True."""
    spatial = input.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
        sizes = _per_axis(size, "size", spatial)
        if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in sizes):
            raise TypeError(f"interpolate: size must be an int or a sequence of ints, got {size!r}")
        sizes, scales = tuple(int(n) for n in sizes), (None,) * len(spatial)
    elif scale_factor is not None:
        scales = _per_axis(scale_factor, "scale_factor", spatial)
        if not all(isinstance(s, (int, float, np.number)) and not isinstance(s, bool) for s in scales):
            raise TypeError(f"interpolate: scale_factor must be a number or a sequence of numbers, "
                            f"got {scale_factor!r}")
        scales = tuple(float(s) for s in scales)
        sizes = tuple(int(n * s) for n, s in zip(spatial, scales))  # truncated, as PyTorch
        if recompute_scale_factor:
            scales = (None,) * len(spatial)
    else:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if min(spatial) < 1 or min(sizes) < 1:
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, got input {spatial} "
                         f"and output {sizes}")
    return sizes, scales


def _source_step(size_in: int, size_out: int, scale: float | None, dtype: type) -> np.floating:
    """Input positions per output position, in PyTorch's precision `dtype`: 1 / scale_factor, or size_in / size_out."""
    return dtype(1.0 / scale) if scale is not None and scale > 0 else dtype(size_in) / dtype(size_out)


def _nearest_source(size_in: int, size_out: int, scale: float | None, exact: bool, shortcuts: bool) -> np.ndarray:
    """The input index each output position j reads: floor(j * step) ('nearest'), floor((j + 0.5) * step)
    ('nearest-exact'), at most size_in - 1. In float32, as PyTorch, so that positions on a boundary fall the
    same way. With `shortcuts`, 'nearest' copies when the sizes are equal and takes j // 2 when they double,
    whatever the scale_factor: PyTorch's 2-D kernel does (its 1-D and 3-D ones do not, but their backward does)."""
    j = np.arange(size_out)
    if shortcuts and not exact and size_out in (size_in, 2 * size_in):
        return j * size_in // size_out
    step = _source_step(size_in, size_out, scale, np.float32)
    at = (j + 0.5) * np.float64(step) if exact else j.astype(np.float32) * step
    return np.minimum(np.floor(at.astype(np.float32)).astype(np.int64), size_in - 1)


def _linear_source(size_in: int, size_out: int, scale: float | None, align_corners: bool,
                   dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, w0, w1): output position j is w0 * x[i0] + w1 * x[i1], the linear interpolation at source
    position j * (size_in - 1) / (size_out - 1) with align_corners (the corner pixels meet), else
    (j + 0.5) * step - 0.5 (pixel centres meet), clamped at 0. i1 = i0 + 1 but at the last pixel. As PyTorch:
    in float32 for float32 input, float64 for float64, and the floor taken in float32."""
    t = np.result_type(dtype, np.float32).type
    j = np.arange(size_out).astype(t)
    if align_corners:
        at = j * (t(size_in - 1) / t(size_out - 1) if size_out > 1 else t(0))
    else:
        at = np.maximum((j + t(0.5)) * _source_step(size_in, size_out, scale, t) - t(0.5), t(0))
    i0 = np.minimum(np.floor(at.astype(np.float32)).astype(np.int64), size_in - 1)
    w1 = np.clip(at - i0.astype(t), t(0), t(1))
    return i0, i0 + (i0 < size_in - 1), (t(1) - w1).astype(dtype), w1.astype(dtype)


def _resample_axis(x: Tensor, axis: int, size_out: int, scale: float | None, mode: str,
                   align_corners: bool) -> Tensor:
    size_in = x.shape[axis]
    if mode in ("nearest", "nearest-exact"):
        index = _nearest_source(size_in, size_out, scale, mode == "nearest-exact", shortcuts=x.ndim == 4)
        return x if np.array_equal(index, np.arange(size_in)) else x.index_select(axis, index)
    if size_out == size_in:  # PyTorch copies, whatever the scale_factor
        return x
    i0, i1, w0, w1 = _linear_source(size_in, size_out, scale, align_corners, x.dtype)
    along = (-1,) + (1,) * (x.ndim - 1 - axis)
    return x.index_select(axis, i0) * w0.reshape(along) + x.index_select(axis, i1) * w1.reshape(along)


@composite("interpolate", keys=("mode",), extra_keys=("size", "scale_factor", "align_corners"))
def interpolate(input: Tensor, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, L), (N, C, H, W) or (N, C, D, H, W) input to `size`, or by
    `scale_factor` (output size floor(size * scale_factor)), one axis after the other.

    Modes: 'nearest' reads input index floor(j * step), 'nearest-exact' floor((j + 0.5) * step), where
    step = input size / output size, or 1 / scale_factor when one is given (and recompute_scale_factor is not
    True), as PyTorch. 'linear', 'bilinear', 'trilinear' (for 3-, 4-, 5-D input) interpolate linearly between
    the two pixels around source position (j + 0.5) * step - 0.5, or j * (in - 1) / (out - 1) with
    align_corners=True. Gradient: each output's gradient goes back to the pixels it read, times their weights.
    """
    op = "interpolate"
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners can only be set with the interpolating modes linear, bilinear, "
                             f"bicubic and trilinear, got mode={mode!r}")
    elif align_corners is None:
        align_corners = False
    if not 3 <= input.ndim <= 5:
        raise NotImplementedError(f"{op}: expected 3-D, 4-D or 5-D input (N, C, spatial...), got {input.shape}")
    sizes, scales = _interpolation_sizes(input, size, scale_factor, recompute_scale_factor)
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError(f"{op}: antialias is restricted to the bilinear, bicubic and lanczos modes and 4-D input, "
                         f"got mode={mode!r} and input {input.shape}")
    if mode not in ("nearest", "nearest-exact", _LINEAR_MODES[input.ndim]):
        dims = {name: ndim for ndim, name in _LINEAR_MODES.items()}
        if mode in dims:
            raise NotImplementedError(f"{op}: got {input.ndim}-D input, but mode {mode!r} needs {dims[mode]}-D input")
        raise NotImplementedError(f"{op}: mode {mode!r} is not supported (supported: 'nearest', 'nearest-exact', "
                                  f"'linear', 'bilinear', 'trilinear')")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not supported")
    if input.dtype.kind != "f":
        raise NotImplementedError(f"{op}: input must be a floating point tensor, got dtype {input.dtype}")
    x = input
    for axis, (size_out, scale) in enumerate(zip(sizes, scales), start=2):
        x = _resample_axis(x, axis, size_out, scale, mode, align_corners)
    return input.clone() if x is input else x  # a new tensor, as PyTorch, even when nothing was resized


# ---------------------------------------------------------------- activations and layers

def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); gradient 0 at 0. With `inplace`, written into `input` (see Tensor.relu_)."""
    return input.relu_() if inplace else input.relu()


@composite("leaky_relu", keys=("negative_slope",))
def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (slope used at 0, as PyTorch)."""
    return input.where(input > 0, input * negative_slope)


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def _apply(fn: Callable[[Tensor], Tensor], input: Tensor, inplace: bool) -> Tensor:
    """fn(input), or with `inplace` written into `input` (as PyTorch's in-place activations). fn then runs on
    a clone: the values its nodes save for the gradient must not be the ones the write replaces."""
    return input.copy_(fn(input.clone())) if inplace else fn(input)


@composite("elu", keys=("alpha",))
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha (exp(x) - 1); gradient 1, else alpha exp(x)."""
    def elu_(x: Tensor) -> Tensor:
        negative = x <= 0
        # exp only of the non-positive part: a large x would overflow, and 0 * inf in the unused branch is NaN
        return x.where(~negative, (x.where(negative, 0.0).exp() - 1) * alpha)
    return _apply(elu_, input, inplace)


@composite("silu")
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x); gradient sigmoid(x) (1 + x (1 - sigmoid(x)))."""
    return _apply(lambda x: x * x.sigmoid(), input, inplace)


@composite("softplus", keys=("beta", "threshold"))
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (as PyTorch); gradient sigmoid(beta x), else 1."""
    scaled = input * beta
    return input.where(scaled > threshold, _softplus(scaled) * (1.0 / beta))


@composite("hardtanh", keys=("min_val", "max_val"))
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); gradient 1 strictly between them, else 0."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return input.clamp_(min_val, max_val) if inplace else input.clamp(min_val, max_val)


@composite("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else w x with one w per channel (dim 1) or one for all; gradient 1, else w (x w.r.t. w)."""
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels):
        raise RuntimeError(f"prelu: weight of shape {weight.shape} must hold 1 value or one per channel "
                           f"({channels}), input {input.shape}")
    if weight.numel() == 1:
        slope = weight.reshape((1,) * input.ndim)
    else:
        slope = weight.reshape((1, channels) + (1,) * (input.ndim - 2))
    return input.where(input > 0, input * slope)


@composite("gelu", keys=("approximate",))
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or with approximate='tanh'
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); differentiated through erf or tanh."""
    if approximate == "none":
        return input * 0.5 * ((input * (1 / math.sqrt(2))).erf() + 1)
    if approximate != "tanh":
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
    return input * 0.5 * (inner.tanh() + 1)


@composite("linear")
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias: (..., in) -> (..., out) with weight (out, in), bias (out,)."""
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} does not fit weight of shape {weight.shape} "
                         "(expected input (..., in) and weight (out, in))")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    Tensor._check_same_dtype("linear", input, weight, bias)
    out = input @ weight.T
    return out if bias is None else out + bias


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (...,) as int64 one-hot rows (..., num_classes); num_classes=-1 takes the
    largest index + 1. No gradient (the input is integer)."""
    if tensor.dtype != np.int64:
        raise RuntimeError(f"one_hot: expects an int64 tensor of class indices, got dtype {tensor.dtype}")
    indices = tensor.numpy()
    if indices.size and indices.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(indices.min())}")
    if num_classes == -1:
        num_classes = int(indices.max()) + 1 if indices.size else 0
    if indices.size and indices.max() >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes={num_classes}, got "
                           f"{int(indices.max())}")
    return Tensor((indices[..., None] == np.arange(num_classes)).astype(np.int64))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one (as torch.flatten; nn.Flatten starts at 1)."""
    return input.flatten(start_dim, end_dim)


@composite("dropout", keys=("p",))
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not training).
    With `inplace`, the result is written into `input`."""
    p = probability_argument(p, "p", "dropout")
    if not training or p == 0.0:
        return input
    keep = get_generator().random(input.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(input.dtype)
    return input.mul_(mask) if inplace else input * mask


@composite("dropout2d", keys=("p",))
def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each whole channel (N, C, ...) with probability p and scale the rest by 1/(1-p) (identity when not
    training); gradient the same mask. A 3-D input is (N, C, L), as PyTorch today."""
    p = probability_argument(p, "p", "dropout2d")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W) or (N, C, L), got {input.shape}")
    if not training or p == 0.0:
        return input
    keep = get_generator().random(input.shape[:2] + (1,) * (input.ndim - 2)) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(input.dtype)
    return input.mul_(mask) if inplace else input * mask


# ---------------------------------------------------------------- normalisation

def _normalize(x: Tensor, dims: tuple[int, ...], eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over `dims`, with the biased variance (as every PyTorch norm)."""
    centered = x - x.mean(dims, keepdim=True)
    return centered / ((centered * centered).mean(dims, keepdim=True) + eps).sqrt()


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    """x * weight + bias, each reshaped to `shape` to broadcast."""
    if weight is not None:
        x = x * weight.reshape(shape)
    return x if bias is None else x + bias.reshape(shape)


def _check_param(tensor: Tensor | None, shape: tuple[int, ...], name: str, op: str, input: Tensor) -> None:
    if tensor is not None and tuple(tensor.shape) != shape:
        raise RuntimeError(f"{op}: {name} must have shape {shape}, got {tensor.shape} (input {input.shape})")


@composite("batch_norm", extra_keys=("training", "momentum", "eps"))
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias per channel (dim 1); gradient through the batch statistics.

    Training uses the batch's mean and biased variance over every dim but 1, and moves running_mean and
    running_var (if given) towards them by `momentum`, in place, the variance unbiased (n / (n - 1)), as PyTorch;
    otherwise running_mean and running_var are the statistics."""
    op = "batch_norm"
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    channels, shape = input.shape[1], (1, input.shape[1]) + (1,) * (input.ndim - 2)
    for name, tensor in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                         ("bias", bias)):
        _check_param(tensor, (channels,), name, op, input)
    dims = (0,) + tuple(range(2, input.ndim))
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var are needed when not training")
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
        return _affine(out, weight, bias, shape)
    count = input.numel() // max(channels, 1)
    if count == 1:
        raise ValueError(f"{op}: training needs more than 1 value per channel, got input {input.shape}")
    if not count or input.dtype.kind != "f":  # nothing to normalise (NaN statistics) or PyTorch's dtype error
        _update_running(input, running_mean, running_var, dims, momentum)
        return _affine(_normalize(input, dims, eps), weight, bias, shape)
    # Fast path: the plain definition above, `_affine(_normalize(...))`, is a dozen ops, each a pass over
    # the activations with a VJP of its own; ops.BatchNorm does the same in a few NumPy passes with the
    # closed-form VJP (see ops/normalization.py). The batch statistics are computed once, for both.
    mean, invstd = ops.batch_statistics(input._array, eps)
    if running_mean is not None and running_var is not None:
        with no_grad():  # the running statistics are state, not part of the graph
            variance = 1.0 / (invstd.reshape(-1).astype(np.float64) ** 2) - eps
            running_mean.mul_(1 - momentum).add_(Tensor._wrap(mean.reshape(-1)) * momentum)
            running_var.mul_(1 - momentum).add_(Tensor._wrap((variance * count / (count - 1)).astype(input.dtype))
                                                * momentum)
    weight = weight if weight is not None else Tensor._wrap(np.ones(channels, input.dtype))
    bias = bias if bias is not None else Tensor._wrap(np.zeros(channels, input.dtype))
    return ops.BatchNorm.apply(input, weight, bias, mean=mean, invstd=invstd, eps=eps)


def _update_running(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, dims: tuple[int, ...],
                    momentum: float) -> None:
    """Move the running estimates towards the batch's mean and unbiased variance (an empty batch moves nothing)."""
    if running_mean is not None and running_var is not None and input.numel():
        with no_grad():  # the running statistics are state, not part of the graph
            batch = input.detach()
            running_mean.mul_(1 - momentum).add_(batch.mean(dims) * momentum)
            running_var.mul_(1 - momentum).add_(batch.var(dims, correction=1) * momentum)


@composite("layer_norm", keys=("normalized_shape",), extra_keys=("eps",))
def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) dims of each sample;
    gradient through the sample's statistics."""
    op = "layer_norm"
    normalized = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized:
        raise RuntimeError(f"{op}: input {input.shape} must end in normalized_shape {list(normalized)}")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_param(tensor, normalized, name, op, input)
    dims = tuple(range(input.ndim - k, input.ndim))
    return _affine(_normalize(input, dims, eps), weight, bias, normalized)


@composite("group_norm", keys=("num_groups",), extra_keys=("eps",))
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over each group of C / num_groups channels (and all positions) of each
    sample, then * weight + bias per channel; gradient through the group's statistics."""
    op = "group_norm"
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    n, channels = input.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or channels % num_groups:
        raise RuntimeError(f"{op}: expected the number of channels ({channels}) to be divisible by "
                           f"num_groups={num_groups} (input {input.shape})")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_param(tensor, (channels,), name, op, input)
    grouped = input.reshape(n, num_groups, input.numel() // max(n * num_groups, 1))
    out = _normalize(grouped, (2,), eps).reshape(*input.shape)
    return _affine(out, weight, bias, (1, channels) + (1,) * (input.ndim - 2))


# ---------------------------------------------------------------- vector norms and distances

@composite("normalize", keys=("p", "dim"))
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(|x|_p, eps) along `dim`: vectors of unit p-norm (p as Tensor.norm takes it). A vector shorter
    than eps is divided by eps, so at 0 the gradient is g / eps (the norm's own gradient is 0 there)."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


@composite("cosine_similarity", keys=("dim",))
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) along `dim`, x1 and x2 broadcast together (as PyTorch,
    each vector is normalised before the product, so a vector shorter than eps counts as that vector / eps)."""
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise RuntimeError(f"cosine_similarity: x1 {x1.shape} and x2 {x2.shape} cannot be broadcast together") from None
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    return (normalize(x1, 2, dim, eps) * normalize(x2, 2, dim, eps)).sum(dim)


@composite("pairwise_distance", keys=("p",))
def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """|x1 - x2 + eps|_p over the last dim, x1 and x2 broadcast together (eps keeps the norm off its kink at 0)."""
    return (x1 - x2 + eps).norm(p, -1, keepdim)


# ---------------------------------------------------------------- softmax

@composite("log_softmax", keys=("dim",))
def log_softmax(input: Tensor, dim: int) -> Tensor:
    """log(softmax(x)) computed stably (see Tensor.log_softmax)."""
    return input.log_softmax(dim)


@composite("softmax", keys=("dim",))
def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed stably (see Tensor.softmax)."""
    return input.softmax(dim)


# ---------------------------------------------------------------- losses
#
# Each loss is made of Tensor ops, so its gradient and second derivatives come from theirs. Arguments
# that PyTorch keeps after a deprecated one (size_average, reduce) are keyword-only here: a call that
# passes them by position means something else in PyTorch, so it fails rather than differs.

def _reduce(loss: Tensor, reduction: str, op: str, count: Tensor | float | None = None) -> Tensor:
    """'none': the loss as is; 'sum'; 'mean': the sum divided by `count`, by default the number of elements."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction != "mean":
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if float(loss.numel() if count is None else count) == 0:
        # PyTorch's 0 / 0 (every target ignored, an empty batch) is NaN, with the gradient of the empty
        # sum, 0: dividing by the zero count would send 1/0 into the backward pass and make it NaN too
        return loss.sum() + math.nan
    return loss.mean() if count is None else loss.sum() / count


def _check_same_shape(input: Tensor, target: Tensor, op: str) -> None:
    # PyTorch broadcasts some of these with a warning; (N, 1) against (N,) then silently makes an N x N loss
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} must have the same shape")


def _check_float_target(target: Tensor, op: str) -> None:
    if target.dtype.kind != "f":
        raise RuntimeError(f"{op}: target must be a floating point tensor of probabilities, got dtype {target.dtype}")


def _weighted(loss: Tensor, weight: Tensor | None, name: str, op: str) -> Tensor:
    """loss * weight, for a weight that broadcasts to the loss's shape without growing it (as PyTorch)."""
    if weight is None:
        return loss
    try:
        fits = np.broadcast_shapes(weight.shape, loss.shape) == loss.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: {name} of shape {weight.shape} does not broadcast to the input's shape {loss.shape}")
    return loss * weight


def _pointwise_loss(pointwise: Callable[[Tensor], Tensor], input: Tensor, target: Tensor, reduction: str,
                    op: str) -> Tensor:
    """A loss of the difference input - target, element by element, then reduced."""
    _check_same_shape(input, target, op)
    return _reduce(pointwise(input - target), reduction, op)


def _huber(diff: Tensor, delta: float) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta * (|d| - delta / 2): both pieces meet with slope delta."""
    size = abs(diff)
    return (diff * diff * 0.5).where(size < delta, (size - 0.5 * delta) * delta)


def _log_clamped(x: Tensor) -> Tensor:
    """max(log x, -100), as PyTorch's BCE, so that y * log x is finite at x = 0. log is only evaluated where it
    is above -100; elsewhere the value is -100 and the gradient 0 (log 0 = -inf would make the gradient NaN)."""
    above = x > math.exp(-100)
    return x.where(above, 1.0).log().where(above, -100.0)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) without overflow: x + log(1 + exp(-x)) for x > 0. `where` picks one exact formula on
    each side, so the gradient, sigmoid(x), is right at x = 0 too (relu(x) + log(1 + exp(-|x|)) gives 0 there)."""
    positive = x > 0
    return x.where(positive, 0.0) + (x.where(~positive, -x).exp() + 1).log()


@composite("mse_loss", extra_keys=("reduction",))
def mse_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """(x - y)^2 per element, then reduced; gradient 2 (x - y) (/ numel for 'mean')."""
    return _pointwise_loss(lambda diff: diff * diff, input, target, reduction, "mse_loss")


@composite("l1_loss", extra_keys=("reduction",))
def l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """|x - y| per element, then reduced; gradient sign(x - y) (0 at x == y, as PyTorch)."""
    return _pointwise_loss(abs, input, target, reduction, "l1_loss")


@composite("smooth_l1_loss", extra_keys=("reduction", "beta"))
def smooth_l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """d = x - y: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2; gradient d / beta, else sign(d).

    beta = 0 is l1_loss."""
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    pointwise = abs if beta == 0 else (lambda diff: _huber(diff, beta) * (1.0 / beta))
    return _pointwise_loss(pointwise, input, target, reduction, "smooth_l1_loss")


@composite("huber_loss", extra_keys=("reduction", "delta"))
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """d = x - y: 0.5 d^2 where |d| < delta, else delta (|d| - delta / 2); gradient d, else delta sign(d).

    It is delta * smooth_l1_loss with beta = delta."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss: delta must be positive, got {delta}")
    return _pointwise_loss(lambda diff: _huber(diff, delta), input, target, reduction, "huber_loss")


@composite("binary_cross_entropy", extra_keys=("reduction",))
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                         reduction: str = "mean") -> Tensor:
    """-w (y log x + (1 - y) log(1 - x)), each log at least -100; gradient w (x - y) / (x (1 - x)).

    x and y are probabilities (PyTorch's checks: both in [0, 1]); `weight` w broadcasts to their shape.
    Where a log is clamped, its term's gradient is 0 (PyTorch's backward divides by max(x (1 - x), 1e-12)
    instead). From logits, binary_cross_entropy_with_logits is exact where sigmoid rounds to 0 or 1."""
    op = "binary_cross_entropy"
    _check_same_shape(input, target, op)
    _check_float_target(target, op)
    for name, tensor in (("input", input), ("target", target)):
        values = tensor.detach().numpy()
        outside = ~((values >= 0) & (values <= 1))  # NaN is outside too
        if outside.any():
            raise RuntimeError(f"{op}: all elements of {name} should be between 0 and 1, "
                               f"got {values[outside].flat[0]} (shape {tensor.shape})")
    loss = -(target * _log_clamped(input) + (1 - target) * _log_clamped(1 - input))
    return _reduce(_weighted(loss, weight, "weight", op), reduction, op)


@composite("binary_cross_entropy_with_logits", extra_keys=("reduction",))
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """w (p y softplus(-z) + (1 - y) softplus(z)); gradient w ((1 - y) sigmoid(z) - p y sigmoid(-z)).

    BCE of sigmoid(z) from the logits z, as log sigmoid(z) = -softplus(-z): softplus(z) = log(1 + e^z) is
    computed without overflow for any z. `weight` w and `pos_weight` p (1 when None), which scales the
    positive term, broadcast to the input's shape: p of shape (C,) weighs each class of an (N, C) input."""
    op = "binary_cross_entropy_with_logits"
    _check_same_shape(input, target, op)
    _check_float_target(target, op)
    positive = _weighted(target, pos_weight, "pos_weight", op)
    loss = positive * _softplus(-input) + (1 - target) * _softplus(input)
    return _reduce(_weighted(loss, weight, "weight", op), reduction, op)


@composite("kl_div", extra_keys=("reduction", "log_target"))
def kl_div(input: Tensor, target: Tensor, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """t (log t - x) per element, 0 where t = 0; gradient -t w.r.t. x, log t + 1 - x w.r.t. t.

    x = input is log-probabilities, t = target probabilities, or log-probabilities with log_target (then
    e^t (t - x)). 'batchmean' divides the sum by the batch size input.shape[0]: the KL divergence
    KL(target || exp(input)) per sample; 'mean' (PyTorch's default) divides it by the number of elements."""
    op = "kl_div"
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    _check_same_shape(input, target, op)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # t log t is 0 at t = 0, as PyTorch's xlogy; log is not evaluated there (log 0 = -inf would give NaN)
        nonzero = target != 0
        loss = target * target.where(nonzero, 1.0).log() - target * input
    if reduction == "batchmean":
        return _reduce(loss, "mean", op, count=input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, op)


def _class_dim(input: Tensor, op: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{op}: input needs a class dim, got shape {input.shape}")
    return 0 if input.ndim == 1 else 1


def _class_weight(weight: Tensor | None, input: Tensor, dim: int, op: str) -> Tensor | None:
    """The per-class weight (C,) shaped to broadcast along the class dim of input."""
    if weight is None:
        return None
    classes = input.shape[dim]
    if weight.shape != (classes,):
        raise RuntimeError(f"{op}: weight must hold one value per class, shape ({classes},), got {weight.shape} "
                           f"(input {input.shape})")
    return weight.reshape((classes,) + (1,) * (input.ndim - dim - 1))


def _one_hot(input: Tensor, target: Tensor, ignore_index: int, dim: int, op: str) -> np.ndarray:
    """Checked class indices as one-hot rows along the class dim of input; all zeros where ignore_index."""
    classes = input.shape[dim]
    target = target.numpy() if isinstance(target, Tensor) else np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != input.shape[:dim] + input.shape[dim + 1:]:
        raise ValueError(f"{op}: target of shape {target.shape} does not fit input of shape {input.shape}")
    kept = target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"{op}: target {int(target[bad][0])} is out of range for {classes} classes "
                         f"(input {input.shape})")
    arange = np.arange(classes).reshape((classes,) + (1,) * (input.ndim - dim - 1))
    return (np.expand_dims(np.where(kept, target, -1), dim) == arange).astype(input.dtype)


def _picked(rows: np.ndarray | Tensor, class_weight: Tensor | None) -> np.ndarray | Tensor:
    """Target rows (one-hot, or probabilities) scaled by the class weights: what each log-probability is
    multiplied by. For one-hot rows their sum is 'mean''s count, PyTorch's summed weight of the kept targets."""
    return rows if class_weight is None else class_weight * rows


@composite("nll_loss", extra_keys=("ignore_index", "reduction"))
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-w[t] input[t] per sample with class index t; gradient -w[t] at input[t], 0 at the other classes.

    A target equal to ignore_index counts for nothing; 'mean' divides the sum by the summed w[t] of the
    targets kept (NaN when there are none, as PyTorch).

    Args:
        input: log-probabilities (N, C) (or (C,), or (N, C, d1, ...)).
        target: class indices (N,) (or (), or (N, d1, ...)).
        weight: a weight per class (C,), 1 when None.
    """
    dim = _class_dim(input, "nll_loss")
    rows = _one_hot(input, target, ignore_index, dim, "nll_loss")
    class_weight = _class_weight(weight, input, dim, "nll_loss")
    picked = _picked(rows, class_weight)
    # input[t] picked by `where`, not by a product with the one-hot rows: a masked class's -inf times 0 is NaN
    chosen = input.where(Tensor._wrap(rows != 0), 0.0)
    if class_weight is not None:
        chosen = chosen * picked
    return _reduce(-chosen.sum(dim), reduction, "nll_loss", count=picked.sum())


@composite("cross_entropy", extra_keys=("ignore_index", "reduction", "label_smoothing"))
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """-sum_c w_c q_c log softmax(x)_c per sample; gradient w_t (softmax(x) - one_hot(t)) for a class index t.

    The target distribution q is the one-hot of a class index, or the given class probabilities (a float
    target of the input's shape); label_smoothing e makes it (1 - e) q + e / C. 'mean' divides by the summed
    weight w_t of the kept class indices (ignore_index counts for nothing, as in nll_loss), and by the number
    of samples for probability targets, as PyTorch."""
    op = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    dim = _class_dim(input, op)
    classes = input.shape[dim]
    class_weight = _class_weight(weight, input, dim, op)
    logp = log_softmax(input, dim)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"{op}: probability targets must have the input's shape {input.shape}, "
                             f"got {target.shape}")
        if ignore_index >= 0:
            raise RuntimeError(f"{op}: ignore_index={ignore_index} is not supported for probability targets")
        probs = target * (1 - label_smoothing) + label_smoothing / classes
        with np.errstate(invalid="ignore"):  # a masked class (-inf) with probability 0 gives NaN, as PyTorch
            return _reduce(-(logp * _picked(probs, class_weight)).sum(dim), reduction, op)
    loss = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return loss
    # the uniform part e / C of q, on the kept samples, with nll_loss's count (PyTorch's smoothing term)
    one_hot = _one_hot(logp, target, ignore_index, dim, op)
    uniform = -(logp if class_weight is None else logp * class_weight).sum(dim) * one_hot.sum(dim)
    uniform = _reduce(uniform, reduction, op, count=_picked(one_hot, class_weight).sum())
    return loss * (1 - label_smoothing) + uniform * (label_smoothing / classes)


# Every function above checks its Tensor arguments at the door (checks.takes_tensors): a list or a NumPy
# array passed as `input` is a TypeError naming the function and the argument, as in PyTorch.
for _name in __all__:
    globals()[_name] = takes_tensors(globals()[_name])
