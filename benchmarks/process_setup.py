"""Process settings shared by the benchmark scripts. Import this before NumPy; it imports nothing heavy.

`--threads N` sets the BLAS and OpenMP thread counts, which OpenBLAS reads once, when NumPy loads
it; OMP_NUM_THREADS is also how many threads tinygrad_cnn's ops share their work among (importing it
holds NumPy's OpenBLAS to one thread: tinygrad_cnn/ops/threads.py). One thread per core is the libraries' default, but on a machine that other jobs share, a BLAS
thread that loses its core stalls the others, and small matrix products get 10-100x slower.

Importing tinygrad_cnn makes glibc's malloc keep the memory a step frees instead of handing it back
to the kernel, so the next step does not page-fault it in again (tinygrad_cnn/allocator.py). It
changes the whole process, so the hand-written NumPy step and PyTorch in the same run get it too.
`--return-freed-memory` undoes it (`allocator.return_freed_memory()`), to measure glibc's defaults.
"""
from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int,
                        help="BLAS and PyTorch threads (default: the libraries' own, one per core)")
    parser.add_argument("--return-freed-memory", action="store_true",
                        help="(Linux, glibc) undo what importing tinygrad_cnn does: make malloc return freed "
                             "memory to the kernel, as by default (see tinygrad_cnn/allocator.py)")


def apply(args: argparse.Namespace) -> None:
    """Set up the process as `args` asks; must run before NumPy is imported."""
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("--threads must be at least 1")
        if "numpy" in sys.modules:
            raise RuntimeError("process_setup.apply must run before NumPy is imported")
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.return_freed_memory:
        import tinygrad_cnn.allocator  # imports NumPy: only after the thread counts
        if not tinygrad_cnn.allocator.return_freed_memory():
            raise SystemExit("--return-freed-memory needs glibc's mallopt (Linux)")


def describe(args: argparse.Namespace) -> str:
    """One line on the settings the numbers depend on."""
    blas_env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
                if k in os.environ}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores, load average {load}; OpenBLAS environment {blas_env or 'unset'}; "
            f"malloc {'returns freed memory (glibc defaults)' if args.return_freed_memory else 'keeps freed memory'}")


def warn_about_openblas_variables() -> None:
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"warning: {name} is set; the reference numbers are taken with "
                  "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`", file=sys.stderr)
