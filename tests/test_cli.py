"""The tinygrad-cnn command on a tiny IDX dataset: what train leaves behind (metrics, checkpoint,
plots, graph), evaluate agreeing with it, resume continuing bit for bit, and every kind of mistake
ending in argparse's usage message or one `error:` line."""
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_cnn.cli import main
from tinygrad_cnn.data import load_digits, write_idx
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.plots import conv_feature_maps
from tinygrad_cnn.tensor import Tensor

METRIC_KEYS = {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "images_per_second"}
PLOTS = ["loss_curves.png", "accuracy_curves.png", "conv1_filters.png", "feature_maps_conv1.png",
         "feature_maps_conv2.png", "confusion_matrix.png"]


def write_digits(directory: Path, train: int, test: int) -> Path:
    """The first `train` / `test` embedded digits as MNIST's four IDX files (the test labels gzipped)."""
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, split, count in (("train", True, train), ("t10k", False, test)):
        images, labels = load_digits(split)
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images[:count])
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{'.gz' if prefix == 't10k' else ''}",
                  labels[:count].astype(np.uint8))
    return directory


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `tinygrad-cnn argv...` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_digits(tmp_path_factory.mktemp("idx"), train=64, test=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """`tinygrad-cnn train` for 1 epoch with the default outputs, run in an empty directory."""
    workdir = tmp_path_factory.mktemp("run")
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        code, out, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "16")
    finally:
        os.chdir(cwd)
    assert code == 0, err
    return workdir / "out", out, err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ================================================================ what train leaves behind

def test_train_writes_metrics(trained):
    out_dir, stdout, _ = trained
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert list(metrics) == ["epochs"] and len(metrics["epochs"]) == 1
    epoch = metrics["epochs"][0]
    assert set(epoch) == METRIC_KEYS and epoch["epoch"] == 1
    for key in ("train_accuracy", "test_accuracy"):
        assert 0 <= epoch[key] <= 1
    assert epoch["test_accuracy"] * 32 == round(epoch["test_accuracy"] * 32)  # a fraction of the 32 test images
    assert all(epoch[key] > 0 for key in ("train_loss", "test_loss", "seconds", "images_per_second"))
    lines = stdout.strip().splitlines()
    assert lines[-1] == f"test accuracy {epoch['test_accuracy']:.4f} ({round(epoch['test_accuracy'] * 32)}/32)"
    assert any(line.startswith("epoch   1  train loss") for line in lines)


def test_train_writes_checkpoint(trained):
    out_dir, _, _ = trained
    state = load_checkpoint(out_dir / "lenet5.npz")
    assert state["model_name"] == "LeNet5" and state["epoch"] == 1
    assert state["model"]["conv1.weight"].shape == (6, 1, 5, 5) and state["model"]["fc3.bias"].shape == (10,)
    assert sorted(state["optimizer"]["state"]) == list(range(10))
    assert all(s["step"] == 4 for s in state["optimizer"]["state"].values())  # 64 images in batches of 16
    assert state["config"] == {"epochs": 1, "batch_size": 16, "optimizer": "adam", "lr": 2e-3, "momentum": None,
                               "seed": 0}
    assert state["loader"]["epoch"] == 1 and state["rng"]["bit_generator"] == "PCG64"
    assert state["scheduler"]["last_epoch"] == 1


def test_evaluate_reproduces_the_final_test_accuracy(trained, data_dir):
    out_dir, train_stdout, _ = trained
    code, stdout, err = run_cli("evaluate", "--checkpoint", str(out_dir / "lenet5.npz"), "--data", str(data_dir))
    assert code == 0, err
    accuracy = json.loads((out_dir / "metrics.json").read_text())["epochs"][-1]["test_accuracy"]
    assert stdout.strip().splitlines()[-1] == train_stdout.strip().splitlines()[-1]
    assert f"test accuracy {accuracy:.4f}" in stdout


def test_train_writes_plots(trained):
    pytest.importorskip("matplotlib")
    out_dir, _, _ = trained
    assert sorted(p.name for p in (out_dir / "plots").iterdir()) == sorted(PLOTS)
    for name in PLOTS:
        assert (out_dir / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_feature_maps_are_the_conv_outputs():
    tg.manual_seed(0)
    model = LeNet5()
    image = np.random.default_rng(0).standard_normal((1, 28, 28)).astype(np.float32)
    (name1, maps1), (name2, maps2) = conv_feature_maps(model, image)
    conv1 = model.conv1(Tensor(image[None]))
    conv2 = model.conv2(model.pool(conv1.relu()))
    assert (name1, name2) == ("conv1", "conv2")
    np.testing.assert_array_equal(maps1, conv1.detach().numpy()[0])
    np.testing.assert_array_equal(maps2, conv2.detach().numpy()[0])
    assert len(conv_feature_maps(model, image)) == 2  # the recording hooks of the first call are gone


def test_train_writes_graph(trained):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    out_dir, _, _ = trained
    svg = (out_dir / "lenet5-graph.svg").read_text()
    assert "<svg" in svg and "conv1.weight" in svg and "fc3.bias" in svg


def test_without_dot_the_default_graph_is_dot_text(in_tmp, data_dir, monkeypatch):
    """A fresh machine may lack Graphviz's `dot`: the main command still leaves the graph, as DOT text."""
    import tinygrad_cnn.cli as cli
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "32")
    assert code == 0, err
    assert "writing out/lenet5-graph.gv instead" in err
    source = (in_tmp / "out" / "lenet5-graph.gv").read_text()
    assert source.startswith("digraph") and "conv1.weight" in source and "cross_entropy" in source
    code, _, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--graph", "g.svg")
    assert code == 1 and "error: rendering the graph needs Graphviz's `dot` program" in err


# ================================================================ resume

def test_resume_continues_exactly(in_tmp, data_dir, monkeypatch):
    """1 epoch, then --resume to 2 epochs, gives the checkpoint that 2 epochs straight give."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # no plots: faster, and tests the note
    common = ["--data", str(data_dir), "--batch-size", "16", "--lr", "0.003"]
    code, _, err = run_cli("train", *common, "--epochs", "2", "--checkpoint", "a.npz", "--metrics", "a.json",
                           "--graph", "a.dot")
    assert code == 0, err
    assert "note: plots need matplotlib, which is not installed" in err and "; skipping it" in err
    code, _, err = run_cli("train", *common, "--epochs", "1", "--checkpoint", "b.npz", "--metrics", "b.json",
                           "--graph", "b.dot")
    assert code == 0, err
    # the hyperparameters not given again come from the checkpoint
    code, out, err = run_cli("train", "--data", str(data_dir), "--epochs", "2", "--resume", "--checkpoint", "b.npz",
                             "--metrics", "b.json", "--graph", "b.dot")
    assert code == 0, err
    assert "resuming b.npz after epoch 1" in out

    straight, resumed = load_checkpoint("a.npz"), load_checkpoint("b.npz")
    assert straight["epoch"] == resumed["epoch"] == 2
    for name, weight in straight["model"].items():
        np.testing.assert_array_equal(weight, resumed["model"][name], err_msg=name)
    for i, state in straight["optimizer"]["state"].items():
        np.testing.assert_array_equal(state["exp_avg"], resumed["optimizer"]["state"][i]["exp_avg"])
    assert straight["rng"] == resumed["rng"] and straight["loader"] == resumed["loader"]
    a, b = (json.loads(Path(f).read_text())["epochs"] for f in ("a.json", "b.json"))
    assert [(m["train_loss"], m["test_accuracy"]) for m in a] == [(m["train_loss"], m["test_accuracy"]) for m in b]

    code, _, err = run_cli("train", "--data", str(data_dir), "--resume", "--checkpoint", "b.npz", "--lr", "0.1")
    assert code == 1 and err.startswith("error: --resume continues the checkpoint's run, but --lr 0.1")


# ================================================================ mistakes

@pytest.mark.parametrize("argv", [
    [],
    ["fit"],
    ["train", "--epochs", "0"],
    ["train", "--epochs", "two"],
    ["train", "--batch-size", "-4"],
    ["train", "--lr", "-0.1"],
    ["train", "--lr", "nan"],
    ["train", "--optimizer", "rmsprop"],
    ["train", "--momentum", "1.5", "--optimizer", "sgd"],
    ["train", "--momentum", "0.5"],  # Adam has no momentum option
    ["train", "--graph", "graph.jpg"],
    ["train", "--unknown"],
    ["evaluate"],  # --checkpoint is required
])
def test_bad_arguments_give_the_usage_message(in_tmp, argv):
    code, _, err = run_cli(*argv)
    assert code == 2
    assert err.startswith("usage: tinygrad-cnn") and "error:" in err and "Traceback" not in err
    assert not (in_tmp / "out").exists()


def corrupt_idx(directory: Path) -> list[str]:
    path = write_digits(directory, train=8, test=4) / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    return ["train", "--data", str(directory)]


def other_model_checkpoint(directory: Path) -> list[str]:
    save_checkpoint(directory / "other.npz", {"model_name": "ResNet", "model": {"w": np.zeros(3)}})
    return ["evaluate", "--checkpoint", str(directory / "other.npz")]


def garbage_checkpoint(directory: Path) -> list[str]:
    (directory / "junk.npz").write_bytes(b"\x00" * 100)
    return ["evaluate", "--checkpoint", str(directory / "junk.npz")]


@pytest.mark.parametrize("make_argv, message", [
    (lambda d: ["train", "--data", str(d / "missing")], "data directory .*missing does not exist"),
    (lambda d: ["train", "--data", str(d)], "no training images file in"),
    (corrupt_idx, "train-images-idx3-ubyte: truncated data"),
    (lambda d: ["evaluate", "--checkpoint", str(d / "none.npz")], "no checkpoint at .*none.npz"),
    (lambda d: ["train", "--resume"], "no checkpoint at out/lenet5.npz"),
    (garbage_checkpoint, "junk.npz: not a checkpoint: not an .npz"),
    (other_model_checkpoint, "other.npz: the checkpoint holds a 'ResNet' model, not LeNet5"),
], ids=["missing data dir", "empty data dir", "corrupt idx", "missing checkpoint", "resume without checkpoint",
        "corrupt checkpoint", "other model"])
def test_runtime_problems_give_one_error_line(in_tmp, make_argv, message):
    assert_one_error_line(*run_cli(*make_argv(in_tmp)), message)


def test_plots_without_matplotlib_give_one_error_line(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plots extra were not installed
    assert_one_error_line(*run_cli("train", "--plots", "pictures"),
                          "plots need matplotlib, which is not installed: pip install 'tinygrad_cnn\\[plots\\]'")


def assert_one_error_line(code: int, stdout: str, stderr: str, message: str) -> None:
    assert code == 1
    # notes about skipped default outputs (no matplotlib or dot installed) may come first
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert re.search(message, lines[0]), lines[0]


# ================================================================ entry points

def test_python_m_help_runs():
    result = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tinygrad-cnn") and "train" in result.stdout and "evaluate" in result.stdout


def test_console_script_is_installed():
    script = shutil.which("tinygrad-cnn", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed with its console script in this environment")
    result = subprocess.run([script, "train", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--resume" in result.stdout
