"""Samplers as in torch.utils.data: iterables over dataset indices, which decide the order a
DataLoader visits samples in (and, for a batch sampler, how they are grouped into batches).

Randomness. A random sampler draws from the generator passed as `generator` (a
tinygrad_cnn.Generator or a numpy.random.Generator), or, when it is None, from the global
generator that `tinygrad_cnn.manual_seed` sets, looked up at each `iter()` (so seeding after
building the sampler still counts). Every `iter()` draws afresh.
"""
from __future__ import annotations

import abc
import itertools
import numbers
from typing import Any, Generic, Iterable, Iterator, Sequence, Sized, TypeVar

import numpy as np

from ..generator import Generator, check_generator, numpy_generator

T_co = TypeVar("T_co", covariant=True)

# Indices drawn with replacement come in chunks of this many (PyTorch draws 32 at a time), so a huge num_samples
# needs no huge array up front.
_CHUNK = 1024


def is_int(x: Any) -> bool:
    """An integer, but not a bool (which Python counts as one)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


class Sampler(abc.ABC, Generic[T_co]):
    """Base class of samplers: define `__iter__` (and `__len__` when the length is known).

    `data_source` is accepted for code written against older PyTorch, and ignored (PyTorch
    deprecates it too).
    """

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    @abc.abstractmethod
    def __iter__(self) -> Iterator[T_co]:
        ...


class SequentialSampler(Sampler[int]):
    """Indices 0, 1, ..., len(data_source) - 1, in order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Random indices into `data_source`: a fresh permutation per `iter()`, or independent draws.

    Args:
        data_source: anything with `__len__` (its length is read at each `iter()`).
        replacement: draw each index independently (repeats possible) instead of permuting.
        num_samples: how many indices to yield (default len(data_source)). Without replacement,
            more than len(data_source) gives whole permutations one after another, then part of one.
        generator: a tinygrad_cnn.Generator or numpy.random.Generator; None draws from the global generator.

    Unlike PyTorch, an empty data_source with the default num_samples is allowed (and yields nothing).
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | np.random.Generator | None = None) -> None:
        if not isinstance(replacement, (bool, np.bool_)):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, "
                            f"but got replacement={replacement!r}")
        if num_samples is not None and not (is_int(num_samples) and num_samples > 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer value, "
                             f"but got num_samples={num_samples!r}")
        check_generator(generator, "RandomSampler")
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = None if num_samples is None else int(num_samples)
        self.generator = generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, count = len(self.data_source), self.num_samples
        if n == 0 and count > 0:
            raise ValueError(f"RandomSampler: cannot draw num_samples={count} indices from an empty data_source")
        generator = numpy_generator(self.generator, "RandomSampler")
        if self.replacement:
            for start in range(0, count, _CHUNK):
                yield from generator.integers(0, n, size=min(_CHUNK, count - start)).tolist()
            return
        for _ in range(count // n if n else 0):
            yield from generator.permutation(n).tolist()
        if n and count % n:  # no draw when nothing of it is used, so num_samples=n costs one permutation
            yield from generator.permutation(n)[:count % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given `indices` in a fresh random order per `iter()` (each exactly once)."""

    def __init__(self, indices: Sequence[int], generator: Generator | np.random.Generator | None = None) -> None:
        check_generator(generator, "SubsetRandomSampler")
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        generator = numpy_generator(self.generator, "SubsetRandomSampler")
        for i in generator.permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """`num_samples` indices in [0, len(weights)), index i drawn with probability weights[i] / sum(weights):
    independently (`replacement=True`, repeats possible) or without repeats. The usual cure for an
    unbalanced dataset: weight each sample by 1 / (its class's count)."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Generator | np.random.Generator | None = None) -> None:
        if not (is_int(num_samples) and num_samples > 0):
            raise ValueError(f"WeightedRandomSampler: num_samples should be a positive integer value, "
                             f"but got num_samples={num_samples!r}")
        if not isinstance(replacement, (bool, np.bool_)):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, "
                             f"but got replacement={replacement!r}")
        check_generator(generator, "WeightedRandomSampler")
        weights = np.asarray(weights.detach().numpy() if hasattr(weights, "detach") else weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights must be a 1-D sequence, got shape {weights.shape}")
        if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise RuntimeError("WeightedRandomSampler: weights must be finite, non-negative and not all zero")
        if not replacement and num_samples > np.count_nonzero(weights):
            raise RuntimeError(f"WeightedRandomSampler: cannot draw num_samples={num_samples} samples without "
                               f"replacement from {np.count_nonzero(weights)} non-zero weights")
        self.weights, self.num_samples, self.replacement = weights, int(num_samples), bool(replacement)
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        generator = numpy_generator(self.generator, "WeightedRandomSampler")
        p = self.weights / self.weights.sum()
        yield from generator.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Group the indices of `sampler` (any iterable) into lists of `batch_size`; the last one is
    shorter, or dropped if `drop_last`.

        list(BatchSampler(SequentialSampler(range(5)), 2, drop_last=False))  # [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool) -> None:
        # ValueError for wrong types too, as PyTorch's BatchSampler
        if not (is_int(batch_size) and batch_size > 0):
            raise ValueError(f"BatchSampler: batch_size should be a positive integer value, "
                             f"but got batch_size={batch_size!r}")
        if not isinstance(drop_last, (bool, np.bool_)):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, but got drop_last={drop_last!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1
