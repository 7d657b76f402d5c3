"""The examples in examples/ run as a user runs them and do what they say."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quickstart_gradients_pass_gradcheck(tmp_path):
    out = run("quickstart.py", cwd=tmp_path)
    assert "dL/dfilters (3, 1, 3, 3) dL/dweight (10, 48)" in out
    assert "gradcheck: analytic and numeric gradients agree" in out


def test_custom_model_learns_far_beyond_chance(tmp_path):
    """Two epochs on 512 digits: ten classes give 0.1 by chance; the model must clearly learn."""
    out = run("train_custom_model.py", "--epochs", "2", "--limit", "512", cwd=tmp_path)
    accuracies = [float(a) for a in re.findall(r"test accuracy (\d\.\d+)", out)]
    assert len(accuracies) == 2
    assert accuracies[-1] > 0.5
