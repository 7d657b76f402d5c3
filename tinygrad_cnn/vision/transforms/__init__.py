"""`torchvision.transforms` on NumPy images and Tensors: the classes (from `.transforms`) and,
as in torchvision, the operations behind them in `transforms.functional`."""
from . import functional
from .functional import InterpolationMode
from .transforms import (Compose, Lambda, Normalize, Pad, RandomAffine, RandomCrop, RandomHorizontalFlip,
                         RandomRotation, RandomVerticalFlip, ToTensor)

__all__ = ["Compose", "InterpolationMode", "Lambda", "Normalize", "Pad", "RandomAffine", "RandomCrop",
           "RandomHorizontalFlip", "RandomRotation", "RandomVerticalFlip", "ToTensor", "functional"]
