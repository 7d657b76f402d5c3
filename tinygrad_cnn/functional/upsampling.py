"""Upsampling: interpolate (nearest, nearest-exact, (bi/tri)linear) from index gathers."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..scopes import composite
from ..tensor import Tensor


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
