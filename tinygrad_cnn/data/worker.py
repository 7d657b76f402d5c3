"""Worker processes for `DataLoader(num_workers > 0)`, as torch.utils.data's: the main process
draws the batches' indices, workers turn them into batches (dataset[i] and collate_fn), and
the batches come back in the sampler's order.

Processes. Workers start with the loader's `multiprocessing_context`, by default the
platform's start method, as PyTorch: 'fork' on Linux (Python < 3.14), fast, and the dataset and
functions need not be picklable; 'spawn' on macOS and Windows, where everything the workers get
(dataset, collate_fn, worker_init_fn) must be picklable and importable. Forking a process that
runs threads is unsafe (a lock held by another thread stays locked in the child forever), so
the main process starts no threads of its own here, apart from the feeder thread of each
index queue, which only writes to its pipe.

Channels. Each worker reads tasks (iteration, batch number, indices) from its own queue and
answers on its own pipe; the main process waits on all pipes and on the processes' sentinels at
once, so a worker that dies is noticed at once. Batches are pickled with Tensors as NumPy arrays
plus their requires_grad flag (the graph cannot cross processes: a non-leaf that requires grad
is an error, as in PyTorch). Each worker also watches its parent and exits when it is gone, so
no worker outlives a main process that was killed.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import random
import signal
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any, Callable, Iterator

import numpy as np

from .. import rng
from ..tensor import Tensor

# Seconds a worker waits between checks that its parent is alive, and that shutdown waits for workers to exit
# before terminating them.
_WATCHDOG_INTERVAL = 1.0
_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info()` tells code running in a worker: its `id` (0 .. num_workers-1), the
    `num_workers`, the `seed` its generators were seeded with and its copy of the `dataset`."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process, its WorkerInfo; in the main process, None."""
    return _worker_info


# ------------------------------------------------------------ batches across processes

def _rebuild_tensor(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor._wrap(array).requires_grad_(requires_grad)


class _BatchPickler(pickle.Pickler):
    """Pickles Tensors anywhere in a batch as their array and requires_grad flag."""

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, Tensor):
            return NotImplemented
        if not obj.is_leaf:
            raise RuntimeError("DataLoader worker: a batch holds a Tensor that requires grad and is not a leaf; "
                               "autograd graphs cannot cross processes. Call .detach() on it in the dataset or "
                               "collate_fn to send only its data")
        return _rebuild_tensor, (obj.detach().numpy(), obj.requires_grad)


def _dumps(message: Any) -> bytes:
    buffer = io.BytesIO()
    _BatchPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


class _ReprIsText(str):
    def __repr__(self) -> str:
        return str(self)


@dataclass
class _Failure:
    """An exception raised in a worker, sent to the main process to be raised there."""

    kind: type | None  # None when the exception's class cannot be pickled (e.g. defined in __main__ under spawn)
    kind_name: str
    text: str  # "Caught ... in DataLoader worker process k.\nOriginal Traceback ..."

    @staticmethod
    def here(worker_id: int, error: BaseException) -> _Failure:
        kind = type(error)
        try:
            pickle.dumps(kind)
        except Exception:
            kind = None
        text = (f"Caught {type(error).__name__} in DataLoader worker process {worker_id}.\n"
                f"Original {''.join(traceback.format_exception(error)).rstrip()}")
        return _Failure(kind, type(error).__name__, text)

    def reraise(self) -> None:
        """Raise the worker's exception type with the worker's traceback as its message (RuntimeError when that
        type cannot be made from a message alone), as PyTorch does."""
        # KeyError shows its argument's repr: give it a string whose repr is itself, so the traceback stays readable
        message = _ReprIsText(self.text) if self.kind is KeyError else self.text
        try:
            error = self.kind(message) if self.kind is not None else None
        except Exception:
            error = None
        raise error if isinstance(error, BaseException) else RuntimeError(self.text)


# ------------------------------------------------------------ in the worker

def _seed_worker(base_seed: int, worker_id: int) -> int:
    """Seed this worker's generators (the tinygrad_cnn one, NumPy's legacy np.random and Python's random) from
    the epoch's base seed and the worker id, as PyTorch seeds its workers; return the worker's seed."""
    seed = base_seed + worker_id
    rng.manual_seed(seed)
    random.seed(seed)
    np.random.seed(np.random.SeedSequence([base_seed, worker_id]).generate_state(4))
    return seed


def _exit_with_parent(parent_pid: int) -> None:
    """Exit this worker as soon as its parent is gone (it may be blocked sending a batch nobody will read)."""
    while os.getppid() == parent_pid:
        time.sleep(_WATCHDOG_INTERVAL)
    os._exit(1)


def _worker_loop(worker_id: int, num_workers: int, base_seed: int, dataset: Any,
                 fetch: Callable[[list[Any]], Any], worker_init_fn: Callable[[int], None] | None,
                 tasks: Any, results: connection.Connection, stop: Any, parent_pid: int) -> None:
    global _worker_info
    # Ctrl-C reaches every process of the terminal's group: the main process alone handles it and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    _worker_info = WorkerInfo(worker_id, num_workers, _seed_worker(base_seed, worker_id), dataset)
    init_failure = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception as error:  # reported with the first batch asked for, as PyTorch
        init_failure = _Failure.here(worker_id, error)
    while (task := tasks.get()) is not None and not stop.is_set():
        iteration, number, indices = task
        answer = init_failure
        if answer is None:
            try:
                answer = fetch(indices)
            except Exception as error:
                answer = _Failure.here(worker_id, error)
        try:
            message = _dumps((iteration, number, answer))
        except Exception as error:  # e.g. a batch that cannot be pickled
            message = _dumps((iteration, number, _Failure.here(worker_id, error)))
        try:
            results.send_bytes(message)
        except OSError:  # the main process closed our pipe: it is shutting down
            return


# ------------------------------------------------------------ in the main process

class WorkerPool:
    """`num_workers` processes that turn index lists into batches; one pool per epoch, or one for all
    epochs with persistent_workers. `iteration` names the epoch whose answers are wanted: answers to
    tasks of an abandoned epoch are dropped."""

    def __init__(self, context: Any, num_workers: int, base_seed: int, dataset: Any,
                 fetch: Callable[[list[Any]], Any], worker_init_fn: Callable[[int], None] | None) -> None:
        self.iteration = 0
        self._tasks, self._results, self._processes = [], [], []
        self._stop = context.Event()
        self._finalize = weakref.finalize(self, _shutdown, self._processes, self._tasks, self._results, self._stop)
        for worker_id in range(num_workers):
            tasks = context.Queue()
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker_loop, daemon=True, name=f"DataLoader worker {worker_id}",
                args=(worker_id, num_workers, base_seed, dataset, fetch, worker_init_fn, tasks, writer, self._stop,
                      os.getpid()))
            self._tasks.append(tasks)
            self._results.append(reader)
            self._processes.append(process)
            process.start()
            writer.close()  # the worker's end: ours would keep the pipe open after the worker is gone

    @property
    def num_workers(self) -> int:
        return len(self._processes)

    @property
    def closed(self) -> bool:
        return not self._finalize.alive

    def send(self, worker_id: int, number: int, indices: list[Any]) -> None:
        self._tasks[worker_id].put((self.iteration, number, indices))

    def receive(self, timeout: float) -> tuple[int, Any]:
        """The next answer of this iteration from any worker: (batch number, batch or _Failure).

        Raises RuntimeError if no answer comes within `timeout` seconds (0: wait forever) or a worker died."""
        while True:
            sentinels = [p.sentinel for p in self._processes]
            ready = connection.wait(self._results + sentinels, timeout if timeout > 0 else None)
            if not ready:
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting for a batch from its "
                                   f"{self.num_workers} workers")
            for worker_id, (results, sentinel) in enumerate(zip(self._results, sentinels)):
                if results in ready:
                    try:
                        iteration, number, batch = pickle.loads(results.recv_bytes())
                    except EOFError:  # the worker is gone and its pipe with it
                        self._raise_dead(worker_id)
                    if iteration == self.iteration:
                        return number, batch
                elif sentinel in ready and not results.poll():  # exited, and nothing left to read from it
                    self._raise_dead(worker_id)

    def _raise_dead(self, worker_id: int) -> None:
        process = self._processes[worker_id]
        process.join(_JOIN_TIMEOUT)  # its pipes close an instant before its exit status can be read
        code = process.exitcode
        how = (f"was killed by signal {_signal_name(-code)}" if code is not None and code < 0
               else f"exited unexpectedly with exit code {code}")
        raise RuntimeError(f"DataLoader worker {worker_id} (pid {process.pid}) {how}; if it ran out of memory, "
                           f"try a smaller batch_size or fewer workers")

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers and reap them; `wait=False` (after an error) terminates them at once."""
        if self.closed:
            return
        if not wait:
            for process in self._processes:
                if process.is_alive():
                    process.terminate()
        self._finalize()


def _signal_name(signal_number: int) -> str:
    try:
        return signal.Signals(signal_number).name
    except ValueError:
        return str(signal_number)


def _shutdown(processes: list, tasks: list, results: list, stop: Any) -> None:
    """Ask the workers to stop, read (and drop) what they still send so none stays blocked on a full pipe,
    wait for them to exit, terminate any still running after _JOIN_TIMEOUT, and reap them all."""
    stop.set()
    for task_queue in tasks:
        try:
            task_queue.put(None)  # wakes a worker waiting for a task
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + _JOIN_TIMEOUT
    while any(p.is_alive() for p in processes) and (left := deadline - time.monotonic()) > 0:
        for conn in connection.wait(results + [p.sentinel for p in processes if p.is_alive()], left):
            if conn in results:
                try:
                    conn.recv_bytes()
                except (EOFError, OSError):
                    results.remove(conn)
    for process in processes:
        if process.is_alive():
            process.terminate()
        process.join()
    for task_queue in tasks:
        task_queue.cancel_join_thread()  # nothing left to deliver: do not wait for the feeder thread at exit
        task_queue.close()
    for conn in results:
        conn.close()


class WorkerBatches:
    """One epoch's batches from `pool`: `index_batches` are handed out round-robin, at most
    `prefetch_factor` per worker ahead of what was yielded, and the batches come back in the order of
    `index_batches` (or as they arrive, when not `in_order`). An error shuts the pool down."""

    def __init__(self, pool: WorkerPool, index_batches: Iterator[list[Any]], prefetch_factor: int, timeout: float,
                 in_order: bool, persistent: bool) -> None:
        pool.iteration += 1
        self._pool, self._iteration = pool, pool.iteration
        self._index_batches = index_batches
        self._timeout, self._in_order, self._persistent = timeout, in_order, persistent
        self._sent = self._yielded = 0
        self._ready: dict[int, Any] = {}
        with self._stop_on_error():
            for _ in range(prefetch_factor * pool.num_workers):
                self._send_next()

    def _send_next(self) -> None:
        indices = next(self._index_batches, None)
        if indices is not None:
            self._pool.send(self._sent % self._pool.num_workers, self._sent, indices)
            self._sent += 1

    def __iter__(self) -> WorkerBatches:
        return self

    def __next__(self) -> Any:
        if self._pool.closed or self._yielded == self._sent:
            self.close()
            raise StopIteration
        if self._pool.iteration != self._iteration:
            raise RuntimeError("DataLoader: this iterator was replaced by a newer iter() of the same loader, "
                               "whose persistent_workers serve one epoch at a time")
        with self._stop_on_error():
            batch = self._take()
            if isinstance(batch, _Failure):
                batch.reraise()
            self._send_next()
        self._yielded += 1
        return batch

    @contextlib.contextmanager
    def _stop_on_error(self) -> Iterator[None]:
        """A worker's error, a timeout, a dead worker, a failing sampler or Ctrl-C: stop every worker now."""
        try:
            yield
        except BaseException:
            self._pool.shutdown(wait=False)
            raise

    def _take(self) -> Any:
        """The next batch in order (or the first to arrive), receiving answers until it is there."""
        while True:
            number = self._yielded if self._in_order else next(iter(self._ready), None)
            if number in self._ready:
                return self._ready.pop(number)
            number, batch = self._pool.receive(self._timeout)
            self._ready[number] = batch

    def close(self) -> None:
        """The epoch is over (or abandoned): stop the workers unless they are persistent."""
        if not self._persistent:
            self._pool.shutdown()
