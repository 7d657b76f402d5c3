"""Process settings shared by the benchmark scripts. Import this before NumPy; it imports nothing heavy.

`--threads N` sets the BLAS and OpenMP thread counts, which OpenBLAS reads once, when NumPy loads
it. One thread per core is the libraries' default, but on a machine that other jobs share, a BLAS
thread that loses its core stalls the others, and small matrix products get 10-100x slower.

`--keep-freed-memory` is an experiment on glibc's malloc. By default glibc returns memory to the
kernel when the free space at the top of the heap exceeds a threshold (M_TRIM_THRESHOLD) and
serves large requests with fresh mmap()s (M_MMAP_THRESHOLD). A training step frees most of what it
allocated (the whole graph), so the next step gets fresh pages, which the kernel zero-fills on
first touch: a minor page fault per 4 KiB, microseconds each in a virtual machine. Raising both
thresholds keeps the memory in the process for reuse. It changes the process, not the library.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses larger values on 64-bit systems
TRIM_THRESHOLD = 1 << 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int,
                        help="BLAS and PyTorch threads (default: the libraries' own, one per core)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="experiment (Linux, glibc): make malloc keep freed memory for reuse instead of "
                             "returning it to the kernel (see benchmarks/process_setup.py)")


def apply(args: argparse.Namespace) -> None:
    """Set up the process as `args` asks; must run before NumPy is imported."""
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("--threads must be at least 1")
        if "numpy" in sys.modules:
            raise RuntimeError("process_setup.apply must run before NumPy is imported")
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.keep_freed_memory:
        keep_freed_memory()


def keep_freed_memory() -> None:
    """Serve allocations below 32 MiB from the heap and trim it only past 1 GiB of free space."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallopt"):
        raise SystemExit("--keep-freed-memory needs glibc's mallopt (Linux)")
    if not (libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        raise SystemExit("--keep-freed-memory: mallopt refused the settings")


def describe(args: argparse.Namespace) -> str:
    """One line on the settings the numbers depend on."""
    blas_env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
                if k in os.environ}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores, load average {load}; OpenBLAS environment {blas_env or 'unset'}; "
            f"malloc {'keeps freed memory' if args.keep_freed_memory else 'defaults'}")


def warn_about_openblas_variables() -> None:
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"warning: {name} is set; the reference numbers are taken with "
                  "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`", file=sys.stderr)
