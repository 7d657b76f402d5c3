"""Both cores, shared out by us: the threads of the passes that split their work, and of BLAS.

NumPy runs an elementwise pass, a copy or a reduction on one core, but lets go of the GIL while it
runs: two Python threads working on two halves of an array run at once. `in_parallel(work, count)`
splits a range of independent pieces (BatchNorm's channels, a convolution's blocks of output rows)
into one run of pieces per thread. Each piece is computed as it would be alone, so results do not
depend on the number of threads. `both(first, second)` runs two independent jobs at once, one per
core, each splitting none of its own work (a convolution's input and weight gradients): handing
work to another thread costs tens of microseconds here, once instead of once per split.

Matrix products are OpenBLAS's, which by default keeps a thread per core of its own. Its idle
threads spin for a while after each product, and on a 2-core machine a spinning BLAS thread slows
the copies that run between the products of a convolution, and any other library in the process
(docs/benchmarks.md, "CIFAR-size networks"). So importing tinygrad_cnn holds NumPy's OpenBLAS to one
thread (`hold_blas_threads`), and the ops with large products split them among our threads instead
(a convolution by blocks of output rows, each thread copying and multiplying its own). Like the allocator
setting, this changes the whole process: NumPy products a script makes itself run on one thread;
`release_blas_threads()` gives OpenBLAS back its threads (and our ops then leave their products whole).

`set_num_threads(n)` / `get_num_threads()` are PyTorch's names for the number of our threads (by
default `OMP_NUM_THREADS` if set, as PyTorch's, else the cores this process may use).
"""
from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable

import numpy as np


def _default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else cores


_settings = {"threads": _default_threads()}
_pool: dict[int, ThreadPoolExecutor] = {}  # by process id (see _executor)


def get_num_threads() -> int:
    """The number of threads that split our work (as torch.get_num_threads)."""
    return _settings["threads"]


def set_num_threads(num_threads: int) -> None:
    """Use `num_threads` threads (>= 1) for the work that splits (as torch.set_num_threads,
    which raises RuntimeError for anything but a positive int)."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise RuntimeError(f"set_num_threads: expected an int, got {type(num_threads).__name__}")
    if num_threads < 1:
        raise RuntimeError(f"set_num_threads: expected a positive integer, got {num_threads}")
    _settings["threads"] = num_threads


def in_parallel(work: Callable[[int, int], None], count: int, minimum: int = 1, blas: bool = False) -> None:
    """work(start, stop) over [0, count) in up to get_num_threads() runs of at least `minimum`
    pieces, run at once; the calling thread takes the first. Work whose time is mostly BLAS products
    (`blas=True`) is split only while OpenBLAS is held to one thread. An exception is raised here,
    once every run has ended."""
    runs = max(1, min(get_num_threads(), count // max(1, minimum)))
    if runs == 1 or (blas and not _blas["held"]) or getattr(_alone, "on", False):
        work(0, count)
        return
    bounds = [count * i // runs for i in range(runs + 1)]
    others = [_executor().submit(work, start, stop) for start, stop in zip(bounds[1:-1], bounds[2:])]
    try:
        work(bounds[0], bounds[1])
    finally:
        wait(others)
    for done in others:
        done.result()


_alone = threading.local()  # `on` while this thread runs one of two jobs of `both`: it splits none of its work


def both(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """(first(), second()), the second run by a worker thread while this one runs the first, each alone
    on its core (work they would split with in_parallel runs whole). Two independent jobs of about the
    same size (a convolution's input and weight gradients) then take one hand-over between threads
    instead of one per split, and neither waits for the other half of a split. An exception is raised
    here, once both jobs have ended."""
    jobs, results = (first, second), [None, None]

    def run(start: int, stop: int) -> None:  # the jobs start:stop, on one thread
        was_alone, _alone.on = getattr(_alone, "on", False), True
        try:
            for i in range(start, stop):
                results[i] = jobs[i]()
        finally:
            _alone.on = was_alone

    in_parallel(run, 2)
    return results[0], results[1]


def _executor() -> ThreadPoolExecutor:
    """This process's pool of worker threads (a forked child, such as a DataLoader worker, makes its own)."""
    pool = _pool.get(os.getpid())
    if pool is None:
        pool = _pool[os.getpid()] = ThreadPoolExecutor(thread_name_prefix="tinygrad_cnn")
    return pool


# ---------------------------------------------------------------- NumPy's OpenBLAS threads

_SET_THREADS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
                "openblas_set_num_threads")
_blas: dict = {"held": False, "set": None, "before": None}


def _numpy_openblas() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """(set_num_threads, get_num_threads) of the OpenBLAS that NumPy loaded, found among the libraries
    of this process (Linux's /proc/self/maps); None elsewhere, or for another BLAS."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return None
    numpy_home = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(paths, key=lambda p: not p.startswith(numpy_home)):  # NumPy's own first, not torch's
        library = ctypes.CDLL(path)
        for name in _SET_THREADS:
            getter = getattr(library, name.replace("set_", "get_"), None)
            setter = getattr(library, name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                return setter, getter
    return None


def hold_blas_threads() -> bool:
    """Hold NumPy's OpenBLAS to one thread (done when tinygrad_cnn is imported); our ops split their
    large products among our threads. Returns False where NumPy's OpenBLAS cannot be reached."""
    if _blas["set"] is None:
        found = _numpy_openblas()
        if found is None:
            return False
        _blas["set"], get = found
        _blas["before"] = get()
    _blas["set"](1)
    _blas["held"] = True
    return True


def release_blas_threads() -> bool:
    """Undo hold_blas_threads: OpenBLAS gets back the threads it had, and our ops leave it their products."""
    if not _blas["held"]:
        return False
    _blas["set"](_blas["before"])
    _blas["held"] = False
    return True


def blas_threads_held() -> bool:
    return _blas["held"]
