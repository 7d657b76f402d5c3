"""DataLoader: batches of a dataset, optionally reshuffled every epoch, reproducibly.

Randomness. With `seed=n` the loader owns a generator `np.random.default_rng(n)`; with
`seed=None` it draws from the global generator that `tinygrad_cnn.manual_seed` sets (as
torch's DataLoader draws from torch's global RNG). Each `iter(loader)` starts an epoch and,
if `shuffle`, draws one permutation, so consecutive epochs differ and the same seed gives
the same sequence of epochs.

Checkpointing. `state_dict()` holds the loader's generator state, the number of epochs
started and, when taken in the middle of an epoch, that epoch's order and how many batches
were already yielded; `load_state_dict()` on a loader built the same way makes the next
`iter()` continue exactly there (the rest of that epoch, then fresh epochs as the original
run would have drawn them). With `seed=None` the generator is the global one, which is not
the loader's to save: checkpoint `tinygrad_cnn.rng.get_generator().bit_generator.state`
alongside it.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any, Iterator

import numpy as np

from ..rng import get_generator
from ..tensor import Tensor
from .dataset import TensorDataset

_STATE_KEYS = {"seed", "epoch", "generator", "num_samples", "order", "position"}


class DataLoader:
    """Iterate over `dataset` in batches, as torch.utils.data.DataLoader (single process).

    Args:
        dataset: a TensorDataset, or any object with `__getitem__(int)` and `__len__()`.
        batch_size: samples per batch (the last batch may be smaller unless `drop_last`).
        shuffle: visit the samples in a new random order every epoch.
        drop_last: drop the last batch if it is smaller than `batch_size`.
        seed: seed of the loader's own generator; None uses the global generator.

    Batches: for a TensorDataset, a tuple with one Tensor per dataset tensor, taken by indexing
    each array with the batch's indices at once. For another dataset the items are collated:
    tuples/lists field by field, dicts key by key, and Tensors, arrays and numbers are stacked
    along a new first dim (Python floats give float32, ints int64, as `tinygrad_cnn.tensor`).
    Batches are fresh arrays that never require grad, whatever the dataset's tensors do.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None) -> None:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must define __getitem__ and __len__, "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be a bool, got {flag!r}")
        if seed is not None:
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
                raise TypeError(f"DataLoader: seed must be an int or None, got {seed!r}")
            if seed < 0:
                raise ValueError(f"DataLoader: seed must be non-negative, got {seed}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = None if seed is None else int(seed)
        self._generator = None if seed is None else np.random.default_rng(self.seed)
        self._epoch = 0
        # The epoch in progress, as seen by the most recent iterator: its order and batches yielded.
        self._order: np.ndarray | None = None
        self._position: int | None = None
        self._resume: tuple[np.ndarray, int] | None = None  # set by load_state_dict for the next iter()
        self._iterator_id = 0

    # ------------------------------------------------------------ sizes and iteration

    def _num_batches(self, num_samples: int) -> int:
        full, rest = divmod(num_samples, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __len__(self) -> int:
        return self._num_batches(len(self.dataset))

    @property
    def generator(self) -> np.random.Generator:
        """The generator the next shuffle draws from (the global one when seed is None)."""
        return self._generator if self._generator is not None else get_generator()

    def __iter__(self) -> Iterator[Any]:
        if self._resume is not None:
            order, start = self._resume
            self._resume = None
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else np.arange(n)
            start = 0
            self._epoch += 1
        self._order, self._position = order, start
        self._iterator_id += 1
        return self._batches(order, start, self._iterator_id)

    def _batches(self, order: np.ndarray, start: int, iterator_id: int) -> Iterator[Any]:
        for b in range(start, self._num_batches(len(order))):
            batch = self._fetch(order[b * self.batch_size:(b + 1) * self.batch_size])
            if iterator_id == self._iterator_id:  # only the newest iterator is the one checkpointed
                self._position = b + 1
            yield batch
        if iterator_id == self._iterator_id:
            self._order = self._position = None

    def _fetch(self, indices: np.ndarray) -> Any:
        ds = self.dataset
        # Fast path only when __getitem__ is TensorDataset's own: a subclass may transform items.
        if isinstance(ds, TensorDataset) and type(ds).__getitem__ is TensorDataset.__getitem__:
            return tuple(Tensor._make(t.detach().numpy()[indices]) for t in ds.tensors)
        return _collate([ds[int(i)] for i in indices])

    def __repr__(self) -> str:
        return (f"DataLoader(batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
                f"seed={self.seed}, {len(self)} batches)")

    # ------------------------------------------------------------ checkpointing

    def state_dict(self) -> dict[str, Any]:
        """The loader's position in its sequence of epochs, as plain Python/NumPy data."""
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
        if not isinstance(state, dict) or set(state) != _STATE_KEYS:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"DataLoader.load_state_dict: expected a dict with keys {sorted(_STATE_KEYS)}, got {got}")
        if (state["generator"] is None) != (self._generator is None):
            saved = ("has no generator of its own (saved by a loader with seed=None)" if state["generator"] is None
                     else f"holds the generator of a loader with seed={state['seed']!r}")
            raise ValueError(f"DataLoader.load_state_dict: the state {saved}, but this loader has "
                             f"seed={self.seed!r}; build it as the saved one was")
        n = len(self.dataset)
        if state["num_samples"] != n:
            raise ValueError(f"DataLoader.load_state_dict: the state is for a dataset of {state['num_samples']} "
                             f"samples, this one has {n}")
        resume = None
        if state["position"] is not None:
            position = int(state["position"])
            if not 0 <= position <= self._num_batches(n):
                raise ValueError(f"DataLoader.load_state_dict: position {position} is out of range for "
                                 f"{self._num_batches(n)} batches")
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


def _collate(items: list[Any]) -> Any:
    """Stack a list of samples into a batch, structure by structure (as torch's default_collate)."""
    first = items[0]
    if isinstance(first, (tuple, list)):
        if any(not isinstance(it, (tuple, list)) or len(it) != len(first) for it in items):
            raise ValueError("DataLoader: every item must be a tuple/list of the same length to be collated")
        fields = [_collate(list(field)) for field in zip(*items)]
        if isinstance(first, tuple):
            return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)  # namedtuples too
        return fields
    if isinstance(first, dict):
        if any(not isinstance(it, dict) or it.keys() != first.keys() for it in items):
            raise ValueError("DataLoader: every item must be a dict with the same keys to be collated")
        return {k: _collate([it[k] for it in items]) for k in first}
    # np.generic before numbers.Number: np.float64 is a Python float but should keep its dtype.
    if isinstance(first, (Tensor, np.ndarray, np.generic)):
        arrays = [np.asarray(it.detach().numpy() if isinstance(it, Tensor) else it) for it in items]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"DataLoader: cannot stack items of different shapes {sorted(shapes)} into a batch")
        return Tensor(np.stack(arrays))
    if isinstance(first, numbers.Number):
        return Tensor(items)  # Python scalars as tinygrad_cnn.tensor reads them: float -> float32, int -> int64
    return items  # e.g. strings: left as a list, as torch does
