"""Datasets as in torch.utils.data: anything with `__getitem__(i)` and `__len__()`."""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

from ..tensor import Tensor


class Dataset(abc.ABC):
    """A map-style dataset: `dataset[i]` is sample i, for i in range(len(dataset)).

    Subclass it and define both methods; `__getitem__` should raise IndexError past the end
    (so plain `for item in dataset` stops) and usually returns a tuple such as (image, label).
    """

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Any:
        ...

    @abc.abstractmethod
    def __len__(self) -> int:
        ...


class TensorDataset(Dataset):
    """Samples are slices of tensors along their first dim: item i is `(t[i] for t in tensors)`.

    Args:
        *tensors: tinygrad_cnn Tensors or NumPy arrays (wrapped as Tensors, dtype kept),
            all with the same size in dim 0.

    The DataLoader batches a TensorDataset by indexing these arrays with a whole batch of
    indices at once, so prefer it to a hand-written Dataset when the data fits in memory.
    """

    def __init__(self, *tensors: Tensor | np.ndarray) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        converted = []
        for position, t in enumerate(tensors):
            if isinstance(t, np.ndarray):
                t = Tensor(t)
            elif not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {position} must be a Tensor or a NumPy array, "
                                f"got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {position} is 0-d; every tensor needs a first dim "
                                 f"to index samples along")
            converted.append(t)
        shapes = [t.shape for t in converted]
        if len({s[0] for s in shapes}) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors: all first dims must be equal, "
                             f"got shapes {shapes}")
        self.tensors: tuple[Tensor, ...] = tuple(converted)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{t.shape} {t.dtype}" for t in self.tensors)
        return f"TensorDataset({len(self)} samples: {shapes})"
