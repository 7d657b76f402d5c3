"""The image operations behind the transforms, as `torchvision.transforms.functional`: deterministic,
no randomness (the transforms draw the parameters and call these).

An image is a NumPy array (H, W) or (H, W, C), as the datasets give them (where torchvision has a PIL
image), or a Tensor (..., C, H, W). Every operation returns the kind of image it was given, with the
same dtype. Tensors go through NumPy: the result is a new Tensor without autograd history.

Geometry is in pixel units with x to the right and y down; pixel (i, j) covers [j, j + 1) x [i, i + 1),
so the centre of an H x W image is (W / 2, H / 2). Rotation and affine warps map every output pixel's
centre back into the input and sample it there: NEAREST takes the pixel that point falls in, BILINEAR
blends the four nearest pixel centres; input points outside the image take `fill`.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Union

import numpy as np

from ...tensor import Tensor

Image = Union[np.ndarray, Tensor]
Fill = Union[float, Sequence[float], None]
PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


class InterpolationMode(Enum):
    """How warped images are sampled (torchvision also has bicubic, box, hamming and lanczos)."""
    NEAREST = "nearest"
    BILINEAR = "bilinear"


def check_interpolation(interpolation: Any, op: str) -> InterpolationMode:
    if not isinstance(interpolation, InterpolationMode):
        raise TypeError(f"{op}: interpolation should be an InterpolationMode (NEAREST or BILINEAR), "
                        f"got {interpolation!r}")
    return interpolation


# ---------------------------------------------------------------- image kinds

def _as_planes(img: Any, op: str) -> tuple[np.ndarray, Callable[[np.ndarray], Image]]:
    """`img` as an array (..., H, W) (channels, if any, in dim -3) and the function that turns such an
    array back into an image of `img`'s kind. One code path then serves arrays and Tensors."""
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise TypeError(f"{op}: a Tensor image must have at least 2 dims (..., H, W), got shape {img.shape}")
        return img.detach().numpy(), Tensor
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            return img, np.ascontiguousarray
        if img.ndim == 3:
            return img.transpose(2, 0, 1), lambda planes: np.ascontiguousarray(planes.transpose(1, 2, 0))
        raise ValueError(f"{op}: a NumPy image must be (H, W) or (H, W, C), got shape {img.shape}")
    raise TypeError(f"{op}: img should be a NumPy array (H, W) or (H, W, C) or a Tensor (..., C, H, W), "
                    f"got {type(img).__name__}")


def get_dimensions(img: Image) -> list[int]:
    """[channels, height, width] of an image (1 channel for a 2-d one)."""
    planes, _ = _as_planes(img, "get_dimensions")
    return [planes.shape[-3] if planes.ndim >= 3 else 1, *planes.shape[-2:]]


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in an image's dtype: integers are rounded and clipped to the dtype's range."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), info.min, info.max)
    return values.astype(dtype)


def _fill_values(fill: Fill, planes: np.ndarray, op: str) -> np.ndarray:
    """`fill` (one value or one per channel) in the image's dtype, shaped to broadcast over (..., C, H, W)."""
    values = np.asarray(0 if fill is None else fill, dtype=np.float64).reshape(-1)
    channels = planes.shape[-3] if planes.ndim >= 3 else 1
    if values.size not in (1, channels):
        raise ValueError(f"{op}: fill has {values.size} values but the image has {channels} channels")
    return _cast(values.reshape(channels, 1, 1) if values.size > 1 else values.reshape(()), planes.dtype)


# ---------------------------------------------------------------- tensor conversion

def to_tensor(pic: np.ndarray) -> Tensor:
    """A NumPy image (H, W) or (H, W, C) as a Tensor (C, H, W): uint8 becomes float32 in [0, 1]
    (divided by 255), any other dtype is kept with its values, as torchvision does for arrays."""
    if not isinstance(pic, np.ndarray):
        raise TypeError(f"to_tensor: pic should be a NumPy array (H, W) or (H, W, C), got {type(pic).__name__}")
    if pic.ndim not in (2, 3):
        raise ValueError(f"to_tensor: pic should be 2 or 3 dimensional (H, W) or (H, W, C), got shape {pic.shape}")
    chw = np.ascontiguousarray((pic[:, :, None] if pic.ndim == 2 else pic).transpose(2, 0, 1))
    return Tensor(chw.astype(np.float32) / np.float32(255) if chw.dtype == np.uint8 else chw)


def normalize(tensor: Tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> Tensor:
    """(tensor - mean[c]) / std[c] for every channel c of a float Tensor (..., C, H, W), in its dtype.

    A Tensor op, so gradients flow through it: dL/dx = g / std[c].
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"normalize: img should be a Tensor image (..., C, H, W), got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"normalize: input tensor should be a float tensor, got {tensor.dtype}")
    if tensor.ndim < 3:
        raise ValueError(f"normalize: expected a tensor image of size (..., C, H, W), got shape {tensor.shape}")
    mean_a, std_a = (np.asarray(v, dtype=tensor.dtype).reshape(-1, 1, 1) for v in (mean, std))
    if (std_a == 0).any():
        raise ValueError(f"normalize: std evaluated to zero after conversion to {tensor.dtype}, leading to "
                         f"division by zero (std={std})")
    channels = tensor.shape[-3]
    for name, values in (("mean", mean_a), ("std", std_a)):
        if len(values) not in (1, channels):
            raise RuntimeError(f"normalize: {name} has {len(values)} values but the tensor has {channels} channels "
                               f"(shape {tensor.shape})")
    if inplace:
        return tensor.sub_(Tensor(mean_a)).div_(Tensor(std_a))
    return (tensor - Tensor(mean_a)) / Tensor(std_a)


# ---------------------------------------------------------------- padding, cropping, flipping

def _pad_planes(planes: np.ndarray, left: int, top: int, right: int, bottom: int, fill: Fill, mode: str,
                op: str) -> np.ndarray:
    """Pad the last two dims; a negative amount cuts that many pixels off instead."""
    height, width = planes.shape[-2:]
    planes = planes[..., max(-top, 0):height - max(-bottom, 0), max(-left, 0):width - max(-right, 0)]
    top, bottom, left, right = (max(p, 0) for p in (top, bottom, left, right))
    if mode != "constant":
        widths = [(0, 0)] * (planes.ndim - 2) + [(top, bottom), (left, right)]
        return np.pad(planes, widths, mode=mode)
    h, w = planes.shape[-2:]
    out = np.empty((*planes.shape[:-2], top + h + bottom, left + w + right), dtype=planes.dtype)
    out[...] = _fill_values(fill, planes, op)
    out[..., top:top + h, left:left + w] = planes
    return out


def _padding_amounts(padding: int | Sequence[int], op: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from an int, or 1, 2 (left/right, top/bottom) or 4 ints."""
    if isinstance(padding, numbers.Integral):
        padding = [int(padding)]
    if not isinstance(padding, (list, tuple)) or not all(isinstance(p, numbers.Integral) for p in padding):
        raise TypeError(f"{op}: padding should be an int or a sequence of ints, got {padding!r}")
    if len(padding) not in (1, 2, 4):
        raise ValueError(f"{op}: padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} "
                         f"element tuple")
    left, top, right, bottom = (list(padding) * 4)[:4] if len(padding) == 1 else (list(padding) * 2)[:4]
    return int(left), int(top), int(right), int(bottom)


def pad(img: Image, padding: int | Sequence[int], fill: Fill = 0, padding_mode: str = "constant") -> Image:
    """Pad every side of an image: `padding` is one int for all sides, (left/right, top/bottom) or
    (left, top, right, bottom); negative amounts crop. `padding_mode` is constant (with `fill`, one value
    or one per channel), edge, reflect (mirror without repeating the edge) or symmetric (with it)."""
    if not isinstance(fill, (numbers.Number, list, tuple)):
        raise TypeError(f"pad: fill should be a number or a sequence of numbers, got {type(fill).__name__}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"pad: padding_mode should be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    planes, back = _as_planes(img, "pad")
    return back(_pad_planes(planes, *_padding_amounts(padding, "pad"), fill, padding_mode, "pad"))


def crop(img: Image, top: int, left: int, height: int, width: int) -> Image:
    """The height x width window whose top-left pixel is (top, left); parts outside the image are 0."""
    planes, back = _as_planes(img, "crop")
    h, w = planes.shape[-2:]
    return back(_pad_planes(planes, -left, -top, left + width - w, top + height - h, 0, "constant", "crop"))


def hflip(img: Image) -> Image:
    """Mirror left to right."""
    planes, back = _as_planes(img, "hflip")
    return back(planes[..., ::-1])


def vflip(img: Image) -> Image:
    """Mirror top to bottom."""
    planes, back = _as_planes(img, "vflip")
    return back(planes[..., ::-1, :])


# ---------------------------------------------------------------- warps

def affine_matrix(angle: float, scale: float, shear: Sequence[float]) -> np.ndarray:
    """The 2x2 linear part of torchvision's affine map, in (x right, y down) pixel coordinates:
    scale * rotation(angle) @ shear_y(shear[1]) @ shear_x(shear[0]), angles in degrees, a positive angle
    turning clockwise on screen; shear_x(s) = [[1, -tan s], [0, 1]], shear_y(s) = [[1, 0], [-tan s, 1]]."""
    a, sx, sy = np.radians([angle, shear[0], shear[1]])
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return scale * rotation @ np.array([[1.0, 0.0], [-np.tan(sy), 1.0]]) @ np.array([[1.0, -np.tan(sx)], [0.0, 1.0]])


def _sample(planes: np.ndarray, x: np.ndarray, y: np.ndarray, interpolation: InterpolationMode,
            fill: np.ndarray) -> np.ndarray:
    """The image at continuous points (x, y) of shape (oh, ow), points outside taking `fill`."""
    height, width = planes.shape[-2:]

    def pixels(i: np.ndarray, j: np.ndarray) -> np.ndarray:  # fill where (i, j) is off the image
        inside = (i >= 0) & (i < height) & (j >= 0) & (j < width)
        values = planes[..., np.clip(i, 0, height - 1), np.clip(j, 0, width - 1)].astype(np.float64)
        return np.where(inside, values, fill)

    if interpolation is InterpolationMode.NEAREST:
        return pixels(np.floor(y).astype(np.intp), np.floor(x).astype(np.intp))
    # bilinear between the pixel centres at (i + 0.5, j + 0.5)
    x, y = x - 0.5, y - 0.5
    j0, i0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    wx, wy = x - j0, y - i0
    return ((1 - wy) * ((1 - wx) * pixels(i0, j0) + wx * pixels(i0, j0 + 1))
            + wy * ((1 - wx) * pixels(i0 + 1, j0) + wx * pixels(i0 + 1, j0 + 1)))


def _warp(img: Image, linear: np.ndarray, translate: Sequence[float], center: Sequence[float] | None,
          interpolation: InterpolationMode, fill: Fill, expand: bool, op: str) -> Image:
    """Move every point p of the image to center + translate + linear @ (p - center); `expand` grows the
    output to hold the whole turned image (about its centre, as torchvision assumes then)."""
    check_interpolation(interpolation, op)
    if center is not None and (not isinstance(center, (list, tuple)) or len(center) != 2):
        raise TypeError(f"{op}: center should be a sequence (x, y), got {center!r}")
    planes, back = _as_planes(img, op)
    height, width = planes.shape[-2:]
    out_h, out_w = height, width
    if expand:
        halves = np.array([[width / 2], [height / 2]])
        corners = linear @ (np.array([[-1, -1, 1, 1], [-1, 1, 1, -1]]) * halves) + halves
        # round off float noise (cos(90 deg) is 6e-17, not 0) before ceil/floor, as torchvision does
        hi, lo = np.ceil(np.round(corners.max(axis=1), 4)), np.floor(np.round(corners.min(axis=1), 4))
        out_w, out_h = (int(s) for s in hi - lo)
    # coordinates relative to the image centre (the output's for output points)
    pivot = np.zeros(2) if center is None else np.asarray(center, dtype=np.float64) - [width / 2, height / 2]
    xs, ys = np.meshgrid(np.arange(out_w) + 0.5 - out_w / 2, np.arange(out_h) + 0.5 - out_h / 2)
    points = np.stack([xs.ravel(), ys.ravel()]) - (pivot + np.asarray(translate, dtype=np.float64))[:, None]
    source = np.linalg.solve(linear, points) + (pivot + [width / 2, height / 2])[:, None]
    fill_values = _fill_values(fill, planes, op).astype(np.float64)
    warped = _sample(planes, source[0].reshape(out_h, out_w), source[1].reshape(out_h, out_w), interpolation,
                     fill_values)
    return back(_cast(warped, planes.dtype))


def rotate(img: Image, angle: float, interpolation: InterpolationMode = InterpolationMode.NEAREST,
           expand: bool = False, center: Sequence[float] | None = None, fill: Fill = None) -> Image:
    """Turn the image by `angle` degrees counter-clockwise about `center` (x, y) in pixels (default the
    image centre). `expand` enlarges the output to hold the whole turned image."""
    if not isinstance(angle, numbers.Real):
        raise TypeError(f"rotate: angle should be int or float, got {type(angle).__name__}")
    return _warp(img, affine_matrix(-angle, 1.0, (0.0, 0.0)), (0.0, 0.0), center, interpolation, fill, expand,
                 "rotate")


def affine(img: Image, angle: float, translate: Sequence[float], scale: float, shear: float | Sequence[float],
           interpolation: InterpolationMode = InterpolationMode.NEAREST, fill: Fill = None,
           center: Sequence[float] | None = None) -> Image:
    """Turn the image `angle` degrees clockwise, scale it, shear it (`shear` in degrees: x only, or (x, y))
    about `center` (default the image centre), then move it by `translate` (dx, dy) pixels; see
    `affine_matrix` for the map."""
    if not isinstance(angle, numbers.Real):
        raise TypeError(f"affine: angle should be int or float, got {type(angle).__name__}")
    if not isinstance(translate, (list, tuple)) or len(translate) != 2:
        raise TypeError(f"affine: translate should be a sequence of length 2, got {translate!r}")
    if not isinstance(scale, numbers.Real) or scale <= 0:
        raise ValueError(f"affine: scale should be positive, got {scale!r}")
    shear = [shear, 0.0] if isinstance(shear, numbers.Real) else list(shear)
    if len(shear) == 1:
        shear = shear * 2
    if len(shear) != 2:
        raise ValueError(f"affine: shear should be a number or a sequence of two values, got {shear}")
    return _warp(img, affine_matrix(angle, scale, shear), translate, center, interpolation, fill, False, "affine")
