"""Keeping freed memory in the process, for training loops (glibc's malloc, Linux).

A training step allocates its whole graph (activations, gradients, blocks of im2col columns:
up to ~9 MB at once for LeNet-5 at batch 64) and frees it at the end. glibc may then hand the top
of its heap back to the kernel, so that the next step touches fresh pages, and the kernel
zero-fills each 4 KiB page on its first touch: up to ~2,000 minor page faults per step, more than
half of a LeNet-5 step's time (measured, see docs/benchmarks.md). Raising malloc's mmap and trim
thresholds keeps that memory for reuse.

It changes the whole process (every later allocation, not only ours), so the library never does
it on import: the `tinygrad-cnn train` command calls `keep_freed_memory()`, and so can your own
training script. The price is that resident memory stays at its peak instead of shrinking.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Make malloc serve allocations below 32 MiB from its heap and trim the heap only past 1 GiB
    of free space. Returns False (and changes nothing) where malloc is not glibc's."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
