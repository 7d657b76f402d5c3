"""The image datasets of `torchvision.datasets`, read from files already on disk (nothing is downloaded).

    MNIST, FashionMNIST, KMNIST   the four IDX files (gzipped or not), in root/<ClassName>/raw/ (torchvision's
                                  layout) or in root itself
    CIFAR10                       the python batch files data_batch_1..5 and test_batch, in
                                  root/cifar-10-batches-py/ (torchvision's layout) or in root itself

An item is (image, target): the image a uint8 NumPy array, (H, W) for the MNIST-likes and (H, W, 3) for
CIFAR-10, where torchvision gives a PIL image (the transforms take both), and the target an int.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..creation import from_numpy
from ..data.cifar import read_cifar10_batches
from ..data.dataset import Dataset
from ..data.idx import load_idx_dataset


class VisionDataset(Dataset):
    """A dataset of images under `root`, whose items pass through `transform` (image) and
    `target_transform` (target)."""
    classes: list[str] = []

    def __init__(self, root: str | os.PathLike, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        self.root = os.path.expanduser(root) if isinstance(root, str) else root
        self.transform, self.target_transform = transform, target_transform

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def _read(self, reader: Callable[[Path, bool], tuple[np.ndarray, np.ndarray]], folders: list[Path],
              files: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
        """`reader(folder, train)` from the first folder holding the files."""
        for folder in folders:
            try:
                return reader(folder, self.train)
            except FileNotFoundError:
                continue
        raise RuntimeError(f"Dataset not found: {type(self).__name__} needs {files} in "
                           f"{' or '.join(str(f) for f in folders)}: put them in one of those folders "
                           f"(tinygrad_cnn does not download datasets"
                           f"{'; download=True only uses files already there' if download else ''})")

    def _item(self, image: np.ndarray, target: int) -> tuple[Any, Any]:
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train else 'Test'}"

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}", f"Root location: {self.root}", *self.extra_repr().splitlines()]
        body += [f"{name}: {t!r}".replace("\n", "\n" + " " * (len(name) + 2))
                 for name, t in (("Transform", self.transform), ("Target transform", self.target_transform))
                 if t is not None]
        return "\n".join([f"Dataset {type(self).__name__}"] + ["    " + line for line in body])


class MNIST(VisionDataset):
    """MNIST handwritten digits, 60,000 training and 10,000 test images of 28 x 28.

    Reads train-images-idx3-ubyte and train-labels-idx1-ubyte (t10k-... when `train=False`), each
    possibly .gz, from root/<ClassName>/raw or root. `data` is a uint8 Tensor (N, 28, 28), `targets`
    an int64 Tensor (N,), as torchvision; assigning others (e.g. `data[:1000]`) changes the items.
    `download=True` is accepted when the files are there and raises RuntimeError when not.
    """
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, download: bool = False) -> None:
        super().__init__(root, transform, target_transform)
        self.train = train
        prefix = "train" if train else "t10k"
        images, labels = self._read(load_idx_dataset, [Path(self.raw_folder), Path(self.root)],
                                    f"{prefix}-images-idx3-ubyte and {prefix}-labels-idx1-ubyte (or .gz)", download)
        self.data, self.targets = from_numpy(images), from_numpy(labels)

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, type(self).__name__, "raw")

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """(image, target): a uint8 array (H, W) and an int, after the transforms."""
        return self._item(np.array(self.data[index]), int(self.targets[index]))

    def __len__(self) -> int:
        return len(self.data)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28 x 28 images of clothes in MNIST's format (see MNIST)."""
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


class KMNIST(MNIST):
    """Kuzushiji-MNIST: 28 x 28 images of cursive Japanese characters in MNIST's format (see MNIST)."""
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images of 32 x 32 in 10 classes.

    Reads data_batch_1 ... data_batch_5 (those present, at least the first) or test_batch from
    root/cifar-10-batches-py or root, without running code from the files (see
    tinygrad_cnn.data.cifar). `data` is a uint8 array (N, 32, 32, 3), `targets` a list of ints, as
    torchvision. `download=True` is accepted when the files are there and raises RuntimeError when not.
    """
    base_folder = "cifar-10-batches-py"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root: str | os.PathLike, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, download: bool = False) -> None:
        super().__init__(root, transform, target_transform)
        self.train = train
        images, labels = self._read(read_cifar10_batches, [Path(self.root) / self.base_folder, Path(self.root)],
                                    "data_batch_1 (to data_batch_5)" if train else "test_batch", download)
        self.data = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.targets = labels.tolist()

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """(image, target): a uint8 array (32, 32, 3) and an int, after the transforms."""
        return self._item(np.array(self.data[index]), self.targets[index])

    def __len__(self) -> int:
        return len(self.data)
