"""DataLoader: batches of a dataset, optionally reshuffled every epoch, reproducibly.

Order. As in torch.utils.data, a sampler yields the dataset indices of an epoch and a batch
sampler groups them into batches: by default a SequentialSampler (or, with `shuffle=True`, a
RandomSampler) and a BatchSampler of `batch_size`; pass `sampler` or `batch_sampler` to choose
your own. Each batch's samples are combined by `collate_fn` (default: `default_collate`).

Randomness. With `seed=n` the loader owns a generator `np.random.default_rng(n)`; with
`generator=g` (a numpy.random.Generator) it draws from g; with neither it draws from the global
generator that `tinygrad_cnn.manual_seed` sets (as torch's DataLoader draws from torch's global
RNG). Each `iter(loader)` starts an epoch and, if `shuffle`, draws one permutation, so
consecutive epochs differ and the same seed gives the same sequence of epochs.

Checkpointing. `state_dict()` holds the loader's generator state (its own, or g's), the number
of epochs started and, when taken in the middle of an epoch, that epoch's order and how many
batches were already yielded; `load_state_dict()` on a loader built the same way makes the next
`iter()` continue exactly there (the rest of that epoch, then fresh epochs as the original run
would have drawn them), restoring g's state too. With neither seed nor generator the generator
is the global one, which is not the loader's to save: checkpoint
`tinygrad_cnn.rng.get_generator().bit_generator.state` alongside it. A loader given its own
`sampler` or `batch_sampler` cannot be checkpointed: its order lives in that object.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..tensor import Tensor
from .dataset import Subset, TensorDataset, check_dataset
from .sampler import (BatchSampler, RandomSampler, SequentialSampler, check_generator, generator_or_global,
                      is_int)

_STATE_KEYS = {"seed", "epoch", "generator", "num_samples", "order", "position"}


class DataLoader:
    """Iterate over `dataset` in batches, as torch.utils.data.DataLoader (single process).

    Args:
        dataset: a TensorDataset, or any object with `__getitem__` and `__len__()`.
        batch_size: samples per batch (the last batch may be smaller unless `drop_last`).
        shuffle: visit the samples in a new random order every epoch (None means False).
        sampler: an iterable of dataset indices (e.g. a Sampler) giving an epoch's order;
            excludes `shuffle=True`.
        batch_sampler: an iterable of lists of indices, one list per batch; excludes
            `batch_size`, `shuffle`, `sampler` and `drop_last`.
        num_workers: must be 0: batches are loaded in this process (parallel loading is not there yet).
        collate_fn: makes a batch of a list of samples; default `default_collate`.
        pin_memory: accepted for PyTorch scripts; no effect (there is no GPU to copy to).
        drop_last: drop the last batch if it is smaller than `batch_size`.
        worker_init_fn: accepted, never called (as PyTorch's with num_workers=0).
        generator: a numpy.random.Generator to shuffle with (not a torch.Generator).
        seed: seed of the loader's own generator; excludes `generator`. With neither, shuffling
            draws from the global generator.

    Batches: with the default collate_fn and a TensorDataset (or plain Subsets of one, as
    random_split makes), a tuple with one Tensor per dataset tensor, taken by indexing each
    array with the batch's indices at once. Otherwise `default_collate` of the samples.
    Batches are fresh arrays that never require grad, whatever the dataset's tensors do.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool | None = None,
                 sampler: Iterable[Any] | None = None, batch_sampler: Iterable[list[Any]] | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list[Any]], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, *, worker_init_fn: Callable[[int], None] | None = None,
                 generator: np.random.Generator | None = None, seed: int | None = None) -> None:
        check_dataset(dataset, "DataLoader: dataset")
        if not is_int(batch_size):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        for name, flag in (("shuffle", False if shuffle is None else shuffle), ("drop_last", drop_last),
                           ("pin_memory", pin_memory)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be a bool, got {flag!r}")
        _check_num_workers(num_workers)
        for name, value, kind in (("sampler", sampler, "an iterable of indices"),
                                  ("batch_sampler", batch_sampler, "an iterable of lists of indices")):
            if value is not None and not (hasattr(value, "__iter__") or hasattr(value, "__getitem__")):
                raise TypeError(f"DataLoader: {name} must be {kind}, got {type(value).__name__}")
        for name, function in (("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn)):
            if function is not None and not callable(function):
                raise TypeError(f"DataLoader: {name} must be callable or None, got {type(function).__name__}")
        check_generator(generator, "DataLoader")
        if seed is not None:
            if not is_int(seed):
                raise TypeError(f"DataLoader: seed must be an int or None, got {seed!r}")
            if seed < 0:
                raise ValueError(f"DataLoader: seed must be non-negative, got {seed}")
            if generator is not None:
                raise ValueError("DataLoader: seed and generator are mutually exclusive (seed=n means "
                                 "generator=np.random.default_rng(n)); pass one of them")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last")
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = None if seed is None else int(seed)
        self._generator = generator if seed is None else np.random.default_rng(self.seed)
        # Only an order the loader draws itself is known to it, hence checkpointable.
        self._own_order = sampler is None and batch_sampler is None
        if sampler is None:
            sampler = RandomSampler(dataset, generator=self._generator) if self.shuffle else SequentialSampler(dataset)
        if batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
            self.batch_size: int | None = int(batch_size)
            self.drop_last = bool(drop_last)
        else:  # as PyTorch: the batch sampler alone decides the batches
            self.batch_size, self.drop_last = None, False
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.num_workers = 0
        self.pin_memory = bool(pin_memory)
        self.worker_init_fn = worker_init_fn
        self._epoch = 0
        # The epoch in progress, as seen by the most recent iterator: its order and batches yielded.
        self._order: np.ndarray | None = None
        self._position: int | None = None
        self._resume: tuple[np.ndarray, int] | None = None  # set by load_state_dict for the next iter()
        self._iterator_id = 0

    # ------------------------------------------------------------ sizes and iteration

    def __len__(self) -> int:
        return len(self.batch_sampler)

    @property
    def generator(self) -> np.random.Generator:
        """The generator the next shuffle draws from (the global one when neither seed nor generator was given)."""
        return generator_or_global(self._generator)

    def __iter__(self) -> Iterator[Any]:
        self._iterator_id += 1
        if not self._own_order:
            self._epoch += 1
            return self._batches(iter(self.batch_sampler), 0, self._iterator_id)
        if self._resume is not None:
            order, start = self._resume
            self._resume = None
        else:
            order = np.fromiter(self.sampler, dtype=np.int64, count=len(self.sampler))
            start = 0
            self._epoch += 1
        self._order, self._position = order, start
        rest = BatchSampler(order[start * self.batch_size:].tolist(), self.batch_size, self.drop_last)
        return self._batches(iter(rest), start, self._iterator_id)

    def _batches(self, index_batches: Iterator[list[Any]], start: int, iterator_id: int) -> Iterator[Any]:
        for position, indices in enumerate(index_batches, start + 1):
            batch = self._fetch(indices)
            if iterator_id == self._iterator_id:  # only the newest iterator is the one checkpointed
                self._position = position
            yield batch
        if iterator_id == self._iterator_id:
            self._order = self._position = None

    def _fetch(self, indices: list[Any]) -> Any:
        if self.collate_fn is default_collate:
            source = _tensor_rows(self.dataset, indices)
            if source is not None:
                tensors, rows = source
                return tuple(Tensor._wrap(t.detach().numpy()[rows]) for t in tensors)
        return self.collate_fn([self.dataset[i] for i in indices])

    def __repr__(self) -> str:
        if self._own_order:
            return (f"DataLoader(batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                    f"seed={self.seed}, {len(self)} batches)")
        return (f"DataLoader(batch_size={self.batch_size}, drop_last={self.drop_last}, "
                f"sampler={type(self.sampler).__name__}, batch_sampler={type(self.batch_sampler).__name__})")

    # ------------------------------------------------------------ checkpointing

    def _check_own_order(self, method: str) -> None:
        if not self._own_order:
            raise RuntimeError(f"DataLoader.{method}: this loader was given a sampler or batch_sampler, whose "
                               "state is not the loader's to save; only a loader that orders the samples itself "
                               "(batch_size, shuffle, drop_last, seed or generator) can be checkpointed")

    def state_dict(self) -> dict[str, Any]:
        """The loader's position in its sequence of epochs, as plain Python/NumPy data."""
        self._check_own_order("state_dict")
        mid_epoch = self._position is not None
        return {
            "seed": self.seed,
            "epoch": self._epoch,
            "generator": None if self._generator is None else copy.deepcopy(self._generator.bit_generator.state),
            "num_samples": len(self.dataset),
            "order": self._order.copy() if mid_epoch and self.shuffle else None,
            "position": self._position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output: the next `iter()` continues where that loader was."""
        self._check_own_order("load_state_dict")
        if not isinstance(state, dict) or set(state) != _STATE_KEYS:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"DataLoader.load_state_dict: expected a dict with keys {sorted(_STATE_KEYS)}, got {got}")
        if (state["generator"] is None) != (self._generator is None):
            raise ValueError(f"DataLoader.load_state_dict: the state was saved by a loader with "
                             f"{_randomness(state['seed'], state['generator'] is not None)}, but this loader has "
                             f"{_randomness(self.seed, self._generator is not None)}; build it as the saved one was")
        n = len(self.dataset)
        if state["num_samples"] != n:
            raise ValueError(f"DataLoader.load_state_dict: the state is for a dataset of {state['num_samples']} "
                             f"samples, this one has {n}")
        resume = None
        if state["position"] is not None:
            position = int(state["position"])
            if not 0 <= position <= len(self):
                raise ValueError(f"DataLoader.load_state_dict: position {position} is out of range for "
                                 f"{len(self)} batches")
            order = np.arange(n) if state["order"] is None else np.asarray(state["order"], dtype=np.int64)
            if (state["order"] is not None) != self.shuffle:
                raise ValueError(f"DataLoader.load_state_dict: the state was saved mid-epoch by a loader with "
                                 f"shuffle={not self.shuffle}, this loader has shuffle={self.shuffle}")
            if not np.array_equal(np.sort(order), np.arange(n)):
                raise ValueError("DataLoader.load_state_dict: the saved order is not a permutation of the dataset")
            resume = (order.copy(), position)
        if self._generator is not None:
            self._generator.bit_generator.state = copy.deepcopy(state["generator"])
        self._epoch = int(state["epoch"])
        self._resume = resume
        self._order = self._position = None


def _check_num_workers(num_workers: Any) -> None:
    if not is_int(num_workers):
        raise TypeError(f"DataLoader: num_workers must be an int, got {num_workers!r}")
    if num_workers < 0:
        raise ValueError("DataLoader: num_workers option should be non-negative; use num_workers=0 to disable "
                         "multiprocessing")
    if num_workers > 0:
        # TypeError, as for every PyTorch feature not there yet (docs/coming-from-pytorch.md)
        raise TypeError(f"DataLoader: num_workers={num_workers} is not supported yet: batches are loaded in the "
                        "main process; pass num_workers=0")


def _randomness(seed: int | None, has_generator: bool) -> str:
    """How a loader shuffles, in its constructor's words, for error messages."""
    if seed is not None:
        return f"seed={seed}"
    return "a generator passed as generator=" if has_generator else "seed=None (the global generator)"


def _tensor_rows(dataset: Any, indices: list[Any]) -> tuple[tuple[Tensor, ...], np.ndarray] | None:
    """The tensors of the TensorDataset under `dataset` and the rows of them that `indices` pick, when
    indexing those arrays gives what collating the items would: `dataset` is a TensorDataset or plain
    Subsets of one, none with a __getitem__ of its own (a subclass may transform items); else None."""
    while getattr(type(dataset), "__getitem__", None) is Subset.__getitem__:
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if getattr(type(dataset), "__getitem__", None) is not TensorDataset.__getitem__:
        return None
    return dataset.tensors, np.asarray(indices, dtype=np.int64)


def default_collate(items: list[Any]) -> Any:
    """Stack a list of samples into a batch, structure by structure, as torch's default_collate.

    Tuples/lists are collated field by field (a namedtuple stays one; PyTorch gives a list for a
    plain tuple), dicts key by key; Tensors, arrays and NumPy scalars are stacked along a new first
    dim, keeping their dtype; Python floats give float32 (PyTorch: float64), ints int64, as
    `tinygrad_cnn.tensor` reads them; anything else (e.g. strings) is left as a list.
    """
    if not items:
        raise ValueError("default_collate: expected at least one sample, got an empty batch")
    first = items[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(it, (tuple, list)) or len(it) != len(first) for it in items):
            raise ValueError("default_collate: every item must be a tuple/list of the same length to be collated")
        fields = [default_collate(list(field)) for field in zip(*items)]
        if isinstance(first, tuple):
            return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)  # namedtuples too
        return fields
    if isinstance(first, dict):
        if any(not isinstance(it, dict) or it.keys() != first.keys() for it in items):
            raise ValueError("default_collate: every item must be a dict with the same keys to be collated")
        return {k: default_collate([it[k] for it in items]) for k in first}
    # np.generic before numbers.Number: np.float64 is a Python float but should keep its dtype.
    if isinstance(first, (Tensor, np.ndarray, np.generic)):
        arrays = [np.asarray(it.detach().numpy() if isinstance(it, Tensor) else it) for it in items]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: cannot stack items of different shapes {sorted(shapes)} into a batch")
        return Tensor(np.stack(arrays))
    if isinstance(first, numbers.Number):
        return Tensor(items)  # Python scalars as tinygrad_cnn.tensor reads them: float -> float32, int -> int64
    return items  # e.g. strings: left as a list, as torch does
