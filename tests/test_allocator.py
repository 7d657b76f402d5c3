"""keep_freed_memory: memory a step frees is reused by the next one without page faults."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from tinygrad_cnn.allocator import keep_freed_memory
    assert keep_freed_memory()

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
def test_freed_memory_is_reused_without_page_faults():
    # 5 steps touch 120 MB: up to 30,000 fresh 4 KiB pages if each step's memory goes back to the kernel
    default, kept = minor_page_faults("default"), minor_page_faults("keep")
    assert default > 1_000  # glibc's own thresholds hand most of it back (5,525 seen)
    assert kept < default / 10  # 0 seen
