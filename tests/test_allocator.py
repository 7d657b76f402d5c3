"""Importing tinygrad_cnn keeps freed memory: memory a step frees is reused by the next one without
page faults; allocator.return_freed_memory() puts glibc's behaviour back."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] != "numpy only":
    import tinygrad_cnn
if sys.argv[1] == "returned":
    assert tinygrad_cnn.allocator.return_freed_memory()

def step():  # allocates 24 MB and frees it, as a training step frees its graph
    arrays = [np.ones(1 << 20) for _ in range(3)]
    return sum(float(a[0]) for a in arrays)

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_page_faults(mode: str) -> int:
    """Page faults of 5 steps after a first one, in a fresh process (the setting is process-wide)."""
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_importing_tinygrad_cnn_keeps_freed_memory_for_reuse():
    # 5 steps touch 120 MB: up to 30,000 fresh 4 KiB pages if each step's memory goes back to the kernel
    numpy_only, imported, returned = (minor_page_faults(mode) for mode in ("numpy only", "imported", "returned"))
    assert numpy_only > 1_000 and returned > 1_000  # glibc's own thresholds hand most of it back (5,525 seen)
    assert imported < numpy_only / 10  # 0 seen
