"""Datasets as in torch.utils.data: anything with `__getitem__(i)` and `__len__()`, and the
ways to select (`Subset`, `random_split`) and join (`ConcatDataset`, `a + b`) them."""
from __future__ import annotations

import abc
import bisect
import itertools
import math
import numbers
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from ..generator import Generator, numpy_generator
from ..tensor import Tensor


def check_dataset(dataset: Any, where: str) -> None:
    """Raise TypeError unless `dataset` is map-style (has __getitem__ and __len__); `where` names the argument."""
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise TypeError(f"{where} must define __getitem__ and __len__, got {type(dataset).__name__}")


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

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


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
        shapes = [tuple(t.shape) for t in converted]  # tuples print as (3, 2), Sizes as Size([3, 2])
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


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order: `subset[i]` is `dataset[indices[i]]`.

    A list `i` selects several at once, as PyTorch: `dataset[[indices[j] for j in i]]`. The
    DataLoader sees through plain Subsets of a TensorDataset and batches them as fast as the whole.
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        check_dataset(dataset, "Subset: dataset")
        if not (hasattr(indices, "__getitem__") and hasattr(indices, "__len__")):
            raise TypeError(f"Subset: indices must be a sequence (list, range, array), got {type(indices).__name__}")
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index: int | list[int]) -> Any:
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several datasets one after another (also written `a + b`).

    `cumulative_sizes[k]` is the number of samples in datasets 0..k. Indices may be negative;
    out of range they raise IndexError (PyTorch: ValueError for a negative one).
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for k, dataset in enumerate(self.datasets):
            check_dataset(dataset, f"ConcatDataset: datasets[{k}]")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __getitem__(self, index: int) -> Any:
        if not isinstance(index, numbers.Integral):
            raise TypeError(f"ConcatDataset: index must be an int, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} is out of range for {n} samples")
        index = int(index) % n
        k = bisect.bisect_right(self.cumulative_sizes, index)  # the first dataset that ends after `index`
        return self.datasets[k][index - (self.cumulative_sizes[k - 1] if k else 0)]

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]


def _split_lengths(n: int, lengths: list[int | float]) -> list[int]:
    """Sample counts from `lengths` (ints, or fractions summing to 1), by PyTorch's rule for fractions:
    floor(n * f) each, then the remainder handed out one by one from the first split on."""
    for i, length in enumerate(lengths):
        if isinstance(length, (bool, np.bool_)) or not isinstance(length, numbers.Real):
            raise TypeError(f"random_split: lengths[{i}] must be an int or a fraction, got {length!r}")
    total = sum(lengths)
    if not (math.isclose(total, 1) and total <= 1):
        if any(not isinstance(length, numbers.Integral) or length < 0 for length in lengths):
            raise ValueError(f"random_split: lengths must be non-negative ints, or fractions summing to 1, "
                             f"got {lengths}")
        return [int(length) for length in lengths]
    for i, fraction in enumerate(lengths):
        if not 0 <= fraction <= 1:
            raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1, got {fraction}")
    counts = [math.floor(n * fraction) for fraction in lengths]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    for i, count in enumerate(counts):
        if count == 0:
            warnings.warn(f"random_split: length of split at index {i} is 0; this might result in an empty dataset",
                          stacklevel=3)
    return counts


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: Generator | np.random.Generator | None = None) -> list[Subset]:
    """Split `dataset` into non-overlapping Subsets of the given lengths, at random.

    Args:
        dataset: a map-style dataset.
        lengths: the splits' sizes, summing to len(dataset); or fractions summing to 1, turned
            into sizes as PyTorch does (floor(len * fraction), then the remainder one by one,
            round-robin from the first split).
        generator: a tinygrad_cnn.Generator or numpy.random.Generator; None draws from the global generator
            (`manual_seed`).

    Raises ValueError if the lengths do not sum to len(dataset) or a fraction is outside [0, 1].
    """
    check_dataset(dataset, "random_split: dataset")
    shuffler = numpy_generator(generator, "random_split")
    n = len(dataset)
    counts = _split_lengths(n, list(lengths))
    if sum(counts) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(counts)}) does not equal the length of the "
                         f"input dataset ({n})")
    order = shuffler.permutation(n).tolist()
    return [Subset(dataset, order[end - count:end]) for end, count in zip(itertools.accumulate(counts), counts)]
