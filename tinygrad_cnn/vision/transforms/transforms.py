"""The transform classes of `torchvision.transforms`: each is called on one image (a NumPy array
(H, W) or (H, W, C), or a Tensor (..., C, H, W); see `functional`) and returns the transformed image.

The random ones draw their parameters from tinygrad_cnn's global generator (`tinygrad_cnn.rng`), so
`tinygrad_cnn.manual_seed(n)` makes them reproducible. They draw the same quantities in the same order
as torchvision, but from a NumPy generator: the same seed gives other crops and angles than torch's.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ...rng import get_generator
from ...tensor import Tensor
from . import functional as F
from .functional import Fill, Image, InterpolationMode


def _check_sequence(x: Any, name: str, sizes: tuple[int, ...]) -> None:
    lengths = " or ".join(str(s) for s in sizes)
    if not isinstance(x, Sequence):
        raise TypeError(f"{name} should be a sequence of length {lengths}, got {type(x).__name__}")
    if len(x) not in sizes:
        raise ValueError(f"{name} should be a sequence of length {lengths}, got length {len(x)}")


def _angle_range(x: float | Sequence[float], name: str, sizes: tuple[int, ...] = (2,)) -> list[float]:
    """A number d means the range (-d, d); else the sequence itself (lo, hi), or two such ranges for shear."""
    if isinstance(x, numbers.Number):
        if x < 0:
            raise ValueError(f"If {name} is a single number, it must be positive, got {x}")
        return [-float(x), float(x)]
    _check_sequence(x, name, sizes)
    return [float(d) for d in x]


def _check_fill(fill: Fill) -> Fill:
    if fill is None:
        return 0
    if not isinstance(fill, (Sequence, numbers.Number)):
        raise TypeError(f"Fill should be either a sequence or a number, got {type(fill).__name__}")
    return fill


class Compose:
    """Apply `transforms` one after the other."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = transforms

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return "Compose(" + "".join(f"\n    {t}" for t in self.transforms) + "\n)"


class ToTensor:
    """NumPy image (H, W) or (H, W, C) -> Tensor (C, H, W); uint8 becomes float32 in [0, 1]."""

    def __call__(self, pic: Any) -> Tensor:
        return F.to_tensor(pic)

    def __repr__(self) -> str:
        return "ToTensor()"


class Lambda:
    """A transform made of any function of the image."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)

    def __repr__(self) -> str:
        return "Lambda()"


class Normalize:
    """(x - mean[c]) / std[c] per channel of a float Tensor (..., C, H, W); see `functional.normalize`."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor: Tensor) -> Tensor:
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Pad:
    """Pad every side; see `functional.pad` for `padding`, `fill` and `padding_mode`."""

    def __init__(self, padding: int | Sequence[int], fill: Fill = 0, padding_mode: str = "constant") -> None:
        F._padding_amounts(padding, "Pad")  # fail here, not at the first image
        if padding_mode not in F.PADDING_MODES:
            raise ValueError(f"Pad: padding_mode should be one of {', '.join(F.PADDING_MODES)}, got {padding_mode!r}")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Image) -> Image:
        return F.pad(img, self.padding, self.fill, self.padding_mode)

    def __repr__(self) -> str:
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode})"


class RandomCrop:
    """A size (h, w) window at a uniformly random place, after padding the image by `padding` (see
    `functional.pad`); `pad_if_needed` pads a too small image by the missing amount on both sides
    (as torchvision). An int size means (size, size)."""

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: Fill = 0, padding_mode: str = "constant") -> None:
        if isinstance(size, numbers.Number):
            size = (int(size), int(size))
        elif isinstance(size, Sequence) and len(size) == 1:
            size = (size[0], size[0])
        if not isinstance(size, Sequence) or len(size) != 2:
            raise ValueError(f"RandomCrop: please provide only two dimensions (h, w) for size, got {size!r}")
        if padding is not None:
            F._padding_amounts(padding, "RandomCrop")
        self.size = tuple(size)
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img: Image, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a random crop of that size."""
        _, height, width = F.get_dimensions(img)
        th, tw = output_size
        if height < th or width < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than input image size "
                             f"{(height, width)}")
        if (height, width) == (th, tw):
            return 0, 0, height, width
        rng = get_generator()
        return int(rng.integers(0, height - th + 1)), int(rng.integers(0, width - tw + 1)), th, tw

    def __call__(self, img: Image) -> Image:
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        _, height, width = F.get_dimensions(img)
        if self.pad_if_needed and width < self.size[1]:
            img = F.pad(img, [self.size[1] - width, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and height < self.size[0]:
            img = F.pad(img, [0, self.size[0] - height], self.fill, self.padding_mode)
        return F.crop(img, *self.get_params(img, self.size))

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left to right with probability p."""
    _flip = staticmethod(F.hflip)

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Image) -> Image:
        return self._flip(img) if get_generator().random() < self.p else img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip(RandomHorizontalFlip):
    """Mirror the image top to bottom with probability p."""
    _flip = staticmethod(F.vflip)


class RandomRotation:
    """Turn the image counter-clockwise by an angle drawn uniformly from `degrees` (d means (-d, d));
    see `functional.rotate`."""

    def __init__(self, degrees: float | Sequence[float], interpolation: InterpolationMode = InterpolationMode.NEAREST,
                 expand: bool = False, center: Sequence[float] | None = None, fill: Fill = 0) -> None:
        self.degrees = _angle_range(degrees, "degrees")
        if center is not None:
            _check_sequence(center, "center", (2,))
        self.interpolation = F.check_interpolation(interpolation, "RandomRotation")
        self.expand, self.center, self.fill = expand, center, _check_fill(fill)

    @staticmethod
    def get_params(degrees: Sequence[float]) -> float:
        return float(get_generator().uniform(degrees[0], degrees[1]))

    def __call__(self, img: Image) -> Image:
        return F.rotate(img, self.get_params(self.degrees), self.interpolation, self.expand, self.center, self.fill)

    def __repr__(self) -> str:
        center = "" if self.center is None else f", center={self.center}"
        return (f"RandomRotation(degrees={self.degrees}, interpolation={self.interpolation.value}, "
                f"expand={self.expand}{center}, fill={self.fill})")


class RandomAffine:
    """A random affine map (see `functional.affine`): an angle from `degrees` (clockwise, as torchvision's
    affine; d means (-d, d)), a shift of up to translate = (a, b) times the width and height (rounded to
    whole pixels), a scale from scale = (lo, hi), and shear angles from `shear` (d: x in (-d, d); (lo, hi):
    x; (xlo, xhi, ylo, yhi): x and y)."""

    def __init__(self, degrees: float | Sequence[float], translate: Sequence[float] | None = None,
                 scale: Sequence[float] | None = None, shear: float | Sequence[float] | None = None,
                 interpolation: InterpolationMode = InterpolationMode.NEAREST, fill: Fill = 0,
                 center: Sequence[float] | None = None) -> None:
        self.degrees = _angle_range(degrees, "degrees")
        if translate is not None:
            _check_sequence(translate, "translate", (2,))
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translation values should be between 0 and 1, got {translate}")
        if scale is not None:
            _check_sequence(scale, "scale", (2,))
            if not all(s > 0 for s in scale):
                raise ValueError(f"RandomAffine: scale values should be positive, got {scale}")
        if center is not None:
            _check_sequence(center, "center", (2,))
        self.translate, self.scale, self.center = translate, scale, center
        self.shear = None if shear is None else _angle_range(shear, "shear", (2, 4))
        self.interpolation = F.check_interpolation(interpolation, "RandomAffine")
        self.fill = _check_fill(fill)

    @staticmethod
    def get_params(degrees: Sequence[float], translate: Sequence[float] | None, scale_ranges: Sequence[float] | None,
                   shears: Sequence[float] | None, img_size: Sequence[int]
                   ) -> tuple[float, tuple[int, int], float, tuple[float, float]]:
        """(angle, (dx, dy), scale, (shear_x, shear_y)) for an image of img_size = (width, height)."""
        rng = get_generator()
        angle = float(rng.uniform(degrees[0], degrees[1]))
        shift = (0, 0)
        if translate is not None:
            max_dx, max_dy = translate[0] * img_size[0], translate[1] * img_size[1]
            shift = (int(round(rng.uniform(-max_dx, max_dx))), int(round(rng.uniform(-max_dy, max_dy))))
        scale = 1.0 if scale_ranges is None else float(rng.uniform(scale_ranges[0], scale_ranges[1]))
        shear = [0.0, 0.0]
        if shears is not None:
            shear[0] = float(rng.uniform(shears[0], shears[1]))
            if len(shears) == 4:
                shear[1] = float(rng.uniform(shears[2], shears[3]))
        return angle, shift, scale, (shear[0], shear[1])

    def __call__(self, img: Image) -> Image:
        _, height, width = F.get_dimensions(img)
        angle, shift, scale, shear = self.get_params(self.degrees, self.translate, self.scale, self.shear,
                                                     [width, height])
        return F.affine(img, angle, list(shift), scale, list(shear), self.interpolation, self.fill, self.center)

    def __repr__(self) -> str:
        options = [f"degrees={self.degrees}"]
        options += [f"{name}={value}" for name, value in (("translate", self.translate), ("scale", self.scale),
                                                          ("shear", self.shear)) if value is not None]
        if self.interpolation is not InterpolationMode.NEAREST:
            options.append(f"interpolation={self.interpolation.value}")
        if self.fill != 0:
            options.append(f"fill={self.fill}")
        if self.center is not None:
            options.append(f"center={self.center}")
        return f"RandomAffine({', '.join(options)})"
