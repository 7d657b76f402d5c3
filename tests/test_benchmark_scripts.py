"""The scripts of benchmarks/ still run against the library as it is now: each once, as small as
its options allow. They time nothing here; docs/benchmarks.md has what they measure."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_cnn_compares_all_three_contestants():
    pytest.importorskip("torch")
    out = run("bench_cnn.py", "--cases", "lenet16,conv,conv_nchw,pool", "--repeat", "1", "--warmup", "0",
              "--settle", "1", "--threads", "1")
    assert "| LeNet-5 training step, batch 16 |" in out and "| max_pool2d 2x2 fwd+bwd (64,32,32,32) |" in out
    assert "| conv2d fwd+bwd (64, 16, 32, 32) * (32, 16, 3, 3), stride 1, padding 1 |" in out
    assert "| conv2d fwd+bwd (64, 16, 32, 32) * (32, 16, 3, 3), stride 1, padding 1, gradient given (N,C,H,W) |" in out
    assert "each contestant timed after 1 untimed runs" in out


def test_bench_cnn_times_the_cifar_models_and_the_resnet_ops():
    """The VGG-style and ResNet-20 steps against their torch.nn twins (same weights: the first losses agree,
    or the script refuses to time), at a small batch here; the ResNet's conv and BatchNorm shapes alone."""
    pytest.importorskip("torch")
    out = run("bench_cnn.py", "--cases", "vgg2,resnet2,conv1x1s2,bn", "--repeat", "1", "--warmup", "0",
              "--settle", "0", "--threads", "1")
    assert "| VGG-style net training step, batch 2 |" in out and "| ResNet-20 training step, batch 2 |" in out
    assert "| conv2d fwd+bwd (64, 16, 32, 32) * (32, 16, 1, 1), stride 2, padding 0 |" in out
    assert "| BatchNorm2d(32) training fwd+bwd (64,32,32,32) |" in out


def test_memory_reports_the_steps_and_whether_memory_stays_flat():
    out = run("memory.py", "--steps", "12", "--batch", "8")
    assert "| 10 |" in out and "from step 10 to step 12" in out and "a step's memory: peak resident" in out
    out = run("memory.py", "--model", "resnet20", "--steps", "11", "--batch", "2")
    assert "ResNet-20 with tinygrad_cnn, batch 2" in out


def test_memory_runs_the_same_steps_in_pytorch():
    pytest.importorskip("torch")
    out = run("memory.py", "--model", "vgg", "--steps", "11", "--batch", "2", "--torch")
    assert "VGG with PyTorch, batch 2" in out and "a step's memory" in out


def test_profile_step_counts_the_ops_of_a_step():
    out = run("profile_step.py", "--steps", "2", "--batch", "8", "--top", "3")
    assert "LeNet-5 training step, batch 8" in out and "28 ops in the forward pass" in out and "Conv2d" in out
    out = run("profile_step.py", "--model", "resnet20", "--steps", "1", "--batch", "2", "--top", "3")
    assert "ResNet-20 training step, batch 2" in out and "Conv2dWeightGrad" in out


def test_overhead_times_one_op():
    pytest.importorskip("torch")
    out = run("overhead.py", "--number", "100", "--repeat", "1")
    assert "`a + b`" in out
