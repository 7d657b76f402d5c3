"""Pooling: max_pool2d, avg_pool2d and their adaptive forms (window primitives, or a convolution of ones)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import ops
from ..checks import pair_argument
from ..scopes import composite
from ..tensor import Tensor, cat
from .convolution import IntPair, _batched, pad


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
