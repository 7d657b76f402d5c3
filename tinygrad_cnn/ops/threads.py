"""Both cores for the passes NumPy runs on one.

NumPy runs an elementwise pass or a reduction on one core, but lets go of the GIL while it runs:
two Python threads working on two halves of an array run at once. `in_parallel(work, count)`
splits a range of independent rows (BatchNorm's channels) into one piece per thread. Each piece
is computed as it would be alone, so results do not depend on the number of threads.

`set_num_threads(n)` / `get_num_threads()` are PyTorch's names for the number of threads of such
passes (the default: the cores this process may use). Matrix products are OpenBLAS's, which keeps
threads of its own (`OPENBLAS_NUM_THREADS`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

_settings = {"threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1}
_pool: dict[int, ThreadPoolExecutor] = {}  # by process id: a forked child (a DataLoader worker) makes its own


def get_num_threads() -> int:
    """The number of threads that split NumPy passes (as torch.get_num_threads)."""
    return _settings["threads"]


def set_num_threads(num_threads: int) -> None:
    """Use `num_threads` threads (>= 1) for the passes that split their work (as torch.set_num_threads,
    which raises RuntimeError for anything but a positive int)."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise RuntimeError(f"set_num_threads: expected an int, got {type(num_threads).__name__}")
    if num_threads < 1:
        raise RuntimeError(f"set_num_threads: expected a positive integer, got {num_threads}")
    _settings["threads"] = num_threads


def in_parallel(work: Callable[[int, int], None], count: int, minimum: int = 1) -> None:
    """work(start, stop) over [0, count) in up to get_num_threads() pieces of at least `minimum` rows,
    run at once; the calling thread takes the first piece. Exceptions are raised here."""
    pieces = max(1, min(get_num_threads(), count // max(1, minimum)))
    if pieces == 1:
        work(0, count)
        return
    bounds = [count * i // pieces for i in range(pieces + 1)]
    pool = _pool.get(os.getpid())
    if pool is None:
        pool = _pool[os.getpid()] = ThreadPoolExecutor(thread_name_prefix="tinygrad_cnn")
    others = [pool.submit(work, start, stop) for start, stop in zip(bounds[1:-1], bounds[2:])]
    work(bounds[0], bounds[1])
    for done in others:
        done.result()
