"""DataLoader: batches of a dataset, optionally reshuffled every epoch, reproducibly, loaded in
this process or in worker processes.

Order. As in torch.utils.data, a sampler yields the dataset indices of an epoch and a batch
sampler groups them into batches: by default a SequentialSampler (or, with `shuffle=True`, a
RandomSampler) and a BatchSampler of `batch_size`; pass `sampler` or `batch_sampler` to choose
your own. Each batch's samples are combined by `collate_fn` (default: `default_collate`).

Randomness. With `seed=n` the loader owns a generator `np.random.default_rng(n)`; with
`generator=g` (a tinygrad_cnn.Generator or numpy.random.Generator) it draws from g; with neither
it draws from the global generator that `tinygrad_cnn.manual_seed` sets (as torch's DataLoader
draws from torch's global RNG). Each `iter(loader)` starts an epoch and, if `shuffle`, draws one
permutation, so consecutive epochs differ and the same seed gives the same sequence of epochs.

Workers. With `num_workers > 0` the order is drawn here exactly as without workers (same seed,
same batches), and worker processes (data/worker.py) build the batches. Each epoch's workers
are seeded from a base seed derived from the generator's state and the epoch number, read
without advancing the generator (PyTorch draws it, which would shift every later shuffle);
worker k seeds the global tinygrad_cnn generator, np.random and Python's random with
base seed + k.

Checkpointing. `state_dict()` holds the loader's generator state (its own, or g's), the number
of epochs started and, when taken in the middle of an epoch, that epoch's order and how many
batches were already yielded; `load_state_dict()` on a loader built the same way makes the next
`iter()` continue exactly there (the rest of that epoch, then fresh epochs as the original run
would have drawn them), restoring g's state too. With neither seed nor generator the generator
is the global one, which is not the loader's to save: checkpoint
`tinygrad_cnn.rng.get_generator().bit_generator.state` alongside it. A loader given its own
`sampler` or `batch_sampler` cannot be checkpointed: its order lives in that object. With workers,
the position counts the batches yielded (not those prefetched), so checkpoints work the same;
with `in_order=False` the batches come in no reproducible order and cannot be checkpointed.
"""
from __future__ import annotations

import copy
import functools
import multiprocessing
import numbers
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..generator import Generator, check_generator, numpy_generator
from ..tensor import Tensor
from .dataset import Subset, TensorDataset, check_dataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler, is_int
from .worker import WorkerBatches, WorkerPool

_STATE_KEYS = {"seed", "epoch", "generator", "num_samples", "order", "position"}


class DataLoader:
    """Iterate over `dataset` in batches, as torch.utils.data.DataLoader.

    Args:
        dataset: a TensorDataset, or any object with `__getitem__` and `__len__()`.
        batch_size: samples per batch (the last batch may be smaller unless `drop_last`).
        shuffle: visit the samples in a new random order every epoch (None means False).
        sampler: an iterable of dataset indices (e.g. a Sampler) giving an epoch's order;
            excludes `shuffle=True`.
        batch_sampler: an iterable of lists of indices, one list per batch; excludes
            `batch_size`, `shuffle`, `sampler` and `drop_last`.
        num_workers: 0 loads batches in this process; n > 0 in n worker processes.
        collate_fn: makes a batch of a list of samples; default `default_collate`.
        pin_memory: accepted for PyTorch scripts; no effect (there is no GPU to copy to).
        drop_last: drop the last batch if it is smaller than `batch_size`.
        timeout: seconds to wait for a batch from the workers before RuntimeError; 0 waits forever.
        worker_init_fn: called as `worker_init_fn(worker_id)` in each worker after its seeding, before
            it loads anything (never with num_workers=0, as PyTorch).
        multiprocessing_context: how workers start: None (the platform's default start method),
            'fork', 'spawn', 'forkserver' or a multiprocessing context.
        generator: a tinygrad_cnn.Generator or numpy.random.Generator to shuffle with.
        prefetch_factor: batches each worker loads ahead (default 2 with workers; must be None
            without).
        persistent_workers: keep the workers between epochs (needs num_workers > 0).
        in_order: yield batches in the sampler's order (default); False yields each as it is ready.
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
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: Any = None, generator: Generator | np.random.Generator | None = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False, in_order: bool = True,
                 seed: int | None = None) -> None:
        check_dataset(dataset, "DataLoader: dataset")
        if not is_int(batch_size):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        for name, flag in (("shuffle", False if shuffle is None else shuffle), ("drop_last", drop_last),
                           ("pin_memory", pin_memory), ("persistent_workers", persistent_workers),
                           ("in_order", in_order)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be a bool, got {flag!r}")
        self.multiprocessing_context = _check_workers(num_workers, timeout, prefetch_factor, persistent_workers,
                                                      multiprocessing_context)
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
        self.num_workers = int(num_workers)
        self.prefetch_factor = None if num_workers == 0 else 2 if prefetch_factor is None else int(prefetch_factor)
        self.persistent_workers = bool(persistent_workers)
        self.timeout = timeout
        self.in_order = bool(in_order)
        self.pin_memory = bool(pin_memory)
        self.worker_init_fn = worker_init_fn
        self._pool: WorkerPool | None = None  # the persistent workers, once started
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
    def generator(self) -> Generator | np.random.Generator:
        """The generator the next shuffle draws from (the global one when neither seed nor generator was given)."""
        return self._generator if self._generator is not None else numpy_generator(None, "DataLoader")

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
        fetch = functools.partial(_fetch, self.dataset, self.collate_fn)
        batches = map(fetch, index_batches) if self.num_workers == 0 else self._from_workers(index_batches, fetch)
        try:
            for position, batch in enumerate(batches, start + 1):
                if iterator_id == self._iterator_id:  # only the newest iterator is the one checkpointed
                    self._position = position
                yield batch
        finally:  # exhausted, abandoned (closed or garbage-collected) or failed: let go of the workers
            if isinstance(batches, WorkerBatches):
                batches.close()
        if iterator_id == self._iterator_id:
            self._order = self._position = None

    def _from_workers(self, index_batches: Iterator[list[Any]], fetch: Callable[[list[Any]], Any]) -> WorkerBatches:
        """This epoch's batches from worker processes: the persistent ones, or new ones seeded for this epoch."""
        pool = self._pool
        if pool is None or pool.closed:
            base_seed = _worker_base_seed(numpy_generator(self._generator, "DataLoader"), self._epoch)
            pool = WorkerPool(self.multiprocessing_context or multiprocessing.get_context(), self.num_workers,
                              base_seed, self.dataset, fetch, self.worker_init_fn)
            if self.persistent_workers:
                self._pool = pool
        return WorkerBatches(pool, index_batches, self.prefetch_factor, self.timeout, self.in_order,
                             self.persistent_workers)

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
        if not self.in_order and self.num_workers > 0:
            raise RuntimeError(f"DataLoader.{method}: with in_order=False the workers' batches arrive in no "
                               "reproducible order, so the loader cannot be checkpointed; use in_order=True")

    def _bit_generator(self) -> np.random.BitGenerator:
        """The state behind the loader's own generator (seed or generator given), a NumPy one or a Generator's."""
        return numpy_generator(self._generator, "DataLoader").bit_generator

    def state_dict(self) -> dict[str, Any]:
        """The loader's position in its sequence of epochs, as plain Python/NumPy data."""
        self._check_own_order("state_dict")
        mid_epoch = self._position is not None
        return {
            "seed": self.seed,
            "epoch": self._epoch,
            "generator": None if self._generator is None else copy.deepcopy(self._bit_generator().state),
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
            self._bit_generator().state = copy.deepcopy(state["generator"])
        self._epoch = int(state["epoch"])
        self._resume = resume
        self._order = self._position = None


def _check_workers(num_workers: Any, timeout: Any, prefetch_factor: Any, persistent_workers: bool,
                   context: Any) -> Any:
    """Check the worker options as PyTorch does; return the multiprocessing context (None: the default)."""
    if not is_int(num_workers):
        raise TypeError(f"DataLoader: num_workers must be an int, got {num_workers!r}")
    if num_workers < 0:
        raise ValueError("DataLoader: num_workers option should be non-negative; use num_workers=0 to disable "
                         "multiprocessing")
    if isinstance(timeout, (bool, np.bool_)) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"DataLoader: timeout must be a number of seconds, got {timeout!r}")
    if timeout < 0:
        raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout}")
    if prefetch_factor is not None:
        if num_workers == 0:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing; let "
                             "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None")
        if not is_int(prefetch_factor):
            raise TypeError(f"DataLoader: prefetch_factor must be an int, got {prefetch_factor!r}")
        if prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be at least 1, got {prefetch_factor}")
    if persistent_workers and num_workers == 0:
        raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
    if context is None:
        return None
    if num_workers == 0:
        raise ValueError(f"DataLoader: multiprocessing_context can only be used with multi-process loading "
                         f"(num_workers > 0), but got num_workers={num_workers}")
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"DataLoader: multiprocessing_context option should specify a valid start method in "
                             f"{methods}, but got multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError(f"DataLoader: multiprocessing_context option should be a valid context object or a string "
                        f"specifying the start method, but got multiprocessing_context={context!r}")
    return context


def _worker_base_seed(generator: np.random.Generator, epoch: int) -> int:
    """The epoch's base seed for the workers (63 bits, as PyTorch's int64 seeds): a hash of the generator's next
    raw output, read from a copy so the shuffles stay as without workers, and of the epoch number, so that a
    loader whose generator never advances (no shuffle) still seeds each epoch's workers differently."""
    peek = int(copy.deepcopy(generator.bit_generator).random_raw())
    return int(np.random.SeedSequence([peek, epoch]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _randomness(seed: int | None, has_generator: bool) -> str:
    """How a loader shuffles, in its constructor's words, for error messages."""
    if seed is not None:
        return f"seed={seed}"
    return "a generator passed as generator=" if has_generator else "seed=None (the global generator)"


def _fetch(dataset: Any, collate_fn: Callable[[list[Any]], Any], indices: list[Any]) -> Any:
    """The batch of `dataset` at `indices` (run in a worker process when there are workers)."""
    if collate_fn is default_collate:
        source = _tensor_rows(dataset, indices)
        if source is not None:
            tensors, rows = source
            return tuple(Tensor._wrap(t.detach().numpy()[rows]) for t in tensors)
    return collate_fn([dataset[i] for i in indices])


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
