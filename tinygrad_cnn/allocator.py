"""Keeping freed memory in the process, for training loops (glibc's malloc, Linux).

A training step allocates its whole graph (activations, gradients, blocks of im2col columns:
up to ~9 MB at once for LeNet-5 at batch 64) and frees it at the end. glibc may then hand the top
of its heap back to the kernel, so that the next step touches fresh pages, and the kernel
zero-fills each 4 KiB page on its first touch: up to ~2,000 minor page faults per step, more than
half of a LeNet-5 step's time (measured, see docs/benchmarks.md). Raising malloc's mmap and trim
thresholds keeps that memory for reuse.

Importing tinygrad_cnn calls `keep_freed_memory()`, so that a plain training script gets the speed
(as PyTorch's caching allocators, a training library keeps the memory it will ask for again). It
changes the whole process, every later allocation and not only ours, and resident memory stays
at its peak instead of shrinking: `return_freed_memory()` puts glibc's default thresholds back.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 1 << 30
GLIBC_DEFAULT_THRESHOLD = 128 << 10  # both thresholds' starting value in glibc


def _set_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """mallopt both thresholds; False (and nothing changed) where malloc is not glibc's."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))


def keep_freed_memory() -> bool:
    """Make malloc serve allocations below 32 MiB from its heap and trim the heap only past 1 GiB
    of free space (done when tinygrad_cnn is imported). Returns False where malloc is not glibc's."""
    return _set_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)


def return_freed_memory() -> bool:
    """Undo keep_freed_memory: glibc's starting thresholds (128 KiB), so freed memory goes back to the
    kernel again (glibc no longer adjusts them as it goes, as it does in a process that never set them)."""
    return _set_thresholds(GLIBC_DEFAULT_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)
