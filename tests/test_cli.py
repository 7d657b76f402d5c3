"""The tinygrad-cnn command on a tiny IDX dataset: what train leaves behind (metrics, checkpoint,
plots, graph, together in the run's directory), evaluate agreeing with it on the data the checkpoint
records, resume continuing bit for bit (and with more epochs, the lr never jumping up), runs kept apart,
outputs checked before training, Ctrl-C, and every kind of mistake ending in argparse's usage message
or one `error:` line."""
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

METRIC_KEYS = {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "images_per_second",
               "lr"}
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
    """`tinygrad-cnn train` for 1 epoch with the default outputs, run in an empty directory: the run's
    directory (out/lenet5-<data directory's name>), stdout and stderr."""
    workdir = tmp_path_factory.mktemp("run")
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        code, out, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "16")
    finally:
        os.chdir(cwd)
    assert code == 0, err
    assert [p.name for p in (workdir / "out").iterdir()] == [f"lenet5-{data_dir.name}"]
    return workdir / "out" / f"lenet5-{data_dir.name}", out, err


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
    assert set(epoch) == METRIC_KEYS and epoch["epoch"] == 1 and epoch["lr"] == 2e-3
    for key in ("train_accuracy", "test_accuracy"):
        assert 0 <= epoch[key] <= 1
    assert epoch["test_accuracy"] * 32 == round(epoch["test_accuracy"] * 32)  # a fraction of the 32 test images
    assert all(epoch[key] > 0 for key in ("train_loss", "test_loss", "seconds", "images_per_second"))
    lines = stdout.strip().splitlines()
    assert lines[-1] == f"test accuracy {epoch['test_accuracy']:.4f} ({round(epoch['test_accuracy'] * 32)}/32)"
    assert any(line.startswith("epoch   1  train loss") for line in lines)


def test_train_says_where_everything_went(trained):
    out_dir, stdout, _ = trained
    run_dir = f"out/{out_dir.name}/"
    assert f"writing {run_dir}: checkpoint.npz (after every epoch), metrics.json (after every epoch), graph." in stdout
    wrote = next(line for line in stdout.splitlines() if line.startswith("wrote "))
    assert wrote.startswith(f"wrote {run_dir}: checkpoint.npz, metrics.json, graph.")
    for name in ("checkpoint.npz", "metrics.json"):
        assert (out_dir / name).is_file()


def test_train_writes_checkpoint(trained, data_dir):
    out_dir, _, _ = trained
    state = load_checkpoint(out_dir / "checkpoint.npz")
    assert state["data"] == {"path": str(data_dir), "classes": list("0123456789")}
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
    code, stdout, err = run_cli("evaluate", "--checkpoint", str(out_dir / "checkpoint.npz"))  # on its data
    assert code == 0, err
    assert f"on {data_dir} (the checkpoint's training data): 32 test images" in stdout and "warning" not in err
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
    svg = (out_dir / "graph.svg").read_text()
    assert "<svg" in svg and "conv1.weight" in svg and "fc3.bias" in svg


def test_without_dot_the_default_graph_is_dot_text(in_tmp, data_dir, monkeypatch):
    """A fresh machine may lack Graphviz's `dot`: the main command still leaves the graph, as DOT text."""
    import tinygrad_cnn.cli as cli
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "32")
    assert code == 0, err
    assert f"writing out/lenet5-{data_dir.name}/graph.gv instead" in err
    source = (in_tmp / "out" / f"lenet5-{data_dir.name}" / "graph.gv").read_text()
    assert source.startswith("digraph") and "conv1.weight" in source and "cross_entropy" in source
    code, _, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--graph", "g.svg")
    assert code == 1 and "error: rendering the graph needs Graphviz's `dot` program" in err


# ================================================================ resume

def interrupt_epoch(monkeypatch, n: int) -> None:
    """Ctrl-C during the n-th epoch that train runs from now on."""
    import tinygrad_cnn.cli as cli
    real, calls = cli.TrainingRun.run_epoch, []

    def run_epoch(self, *args):
        calls.append(None)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(self, *args)
    monkeypatch.setattr(cli.TrainingRun, "run_epoch", run_epoch)


def test_resume_continues_exactly(in_tmp, data_dir, monkeypatch):
    """2 epochs straight, and 2 epochs interrupted by Ctrl-C in the second and resumed: the same checkpoint."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # no plots: faster, and tests the note
    common = ["--data", str(data_dir), "--batch-size", "16", "--lr", "0.003", "--epochs", "2"]
    code, _, err = run_cli("train", *common, "--checkpoint", "a.npz", "--metrics", "a.json", "--graph", "a.dot")
    assert code == 0, err
    assert "note: plots need matplotlib, which is not installed" in err and "; skipping it" in err
    with monkeypatch.context() as m:
        interrupt_epoch(m, 2)
        code, _, err = run_cli("train", *common, "--out", "b")
    assert code == 130 and err.strip().splitlines()[-1] == \
        "interrupted during epoch 2: --resume continues after epoch 1, saved in b/checkpoint.npz"
    # the hyperparameters and data not given again come from the checkpoint
    code, out, err = run_cli("train", "--resume", "--out", "b")
    assert code == 0, err
    assert "resuming b/checkpoint.npz after epoch 1 of 2" in out

    straight, resumed = load_checkpoint("a.npz"), load_checkpoint("b/checkpoint.npz")
    assert straight["epoch"] == resumed["epoch"] == 2
    for name, weight in straight["model"].items():
        np.testing.assert_array_equal(weight, resumed["model"][name], err_msg=name)
    for i, state in straight["optimizer"]["state"].items():
        np.testing.assert_array_equal(state["exp_avg"], resumed["optimizer"]["state"][i]["exp_avg"])
    assert straight["rng"] == resumed["rng"] and straight["loader"] == resumed["loader"]
    a, b = (json.loads(Path(f).read_text())["epochs"] for f in ("a.json", "b/metrics.json"))
    assert [(m["train_loss"], m["test_accuracy"], m["lr"]) for m in a] == \
           [(m["train_loss"], m["test_accuracy"], m["lr"]) for m in b]

    code, _, err = run_cli("train", "--resume", "--out", "b", "--lr", "0.1")
    assert code == 1 and err.startswith("error: --resume continues the checkpoint's run, but --lr 0.1")


def test_resuming_a_finished_run_with_more_epochs_never_raises_the_lr(in_tmp, data_dir, monkeypatch):
    """lr 0.004 over 2 epochs: 0.004, then 0.004 * (1 + cos(pi/2)) / 2 = 0.002. Two more epochs go along a new
    cosine from that last lr, 0.002: 0.002 * (1 + cos(0)) / 2 = 0.002 and 0.002 * (1 + cos(pi/2)) / 2 = 0.001."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run_cli("train", "--data", str(data_dir), "--batch-size", "32", "--lr", "0.004", "--epochs", "2",
                           "--graph", "g.dot")
    assert code == 0, err
    code, out, err = run_cli("train", "--data", str(data_dir), "--resume", "--epochs", "4", "--graph", "g.dot")
    assert code == 0, err
    run_dir = in_tmp / "out" / f"lenet5-{data_dir.name}"
    assert "after epoch 2 of 2, now of 4: the lr goes from the last epoch's, 0.002, along a new cosine to 0" in out
    lrs = [m["lr"] for m in json.loads((run_dir / "metrics.json").read_text())["epochs"]]
    np.testing.assert_allclose(lrs, [0.004, 0.002, 0.002, 0.001], rtol=1e-12)
    assert load_checkpoint(run_dir / "checkpoint.npz")["config"]["epochs"] == 4


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
    ["evaluate", "--checkpoint"],  # without its path
    ["graph", "--depth", "-1"],
    ["graph", "--depth", "two"],
    ["graph", "--html", "--depth", "1.5"],
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
    (lambda d: ["train", "--resume"], "no checkpoint at out/lenet5/checkpoint.npz; train writes it"),
    (lambda d: ["evaluate"], "no checkpoint at out/lenet5/checkpoint.npz; train writes it"),
    (garbage_checkpoint, "junk.npz: not a checkpoint: not an .npz"),
    (other_model_checkpoint, "other.npz: the checkpoint holds a 'ResNet' model, not LeNet5"),
], ids=["missing data dir", "empty data dir", "corrupt idx", "missing checkpoint", "resume without checkpoint",
        "evaluate without checkpoint", "corrupt checkpoint", "other model"])
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


# ================================================================ runs kept apart, data remembered

def test_a_run_never_silently_replaces_another(in_tmp, data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    first = ["train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "32", "--graph", "g.dot"]
    assert run_cli(*first)[0] == 0
    checkpoint = in_tmp / "out" / f"lenet5-{data_dir.name}" / "checkpoint.npz"
    before = checkpoint.read_bytes()
    code, out, err = run_cli(*first, "--lr", "0.01")  # other hyperparameters, the same place
    assert_one_error_line(code, out, err, rf"out/lenet5-{data_dir.name}/checkpoint.npz holds another run \(LeNet-5, "
                                          r"adam, lr 0.002 .* 1 epochs done, test accuracy .*\); this one, .* would "
                                          r"replace it: give this run another place with --out DIR, continue that "
                                          r"one with --resume, or replace it with --force")
    assert "epoch   1" not in out and checkpoint.read_bytes() == before
    code, _, err = run_cli(*first, "--lr", "0.01", "--out", "out/other")
    assert code == 0, err
    assert load_checkpoint("out/other/checkpoint.npz")["config"]["lr"] == 0.01 and checkpoint.read_bytes() == before
    code, _, err = run_cli(*first)  # the same run again replaces it
    assert code == 0 and "note: replacing" in err and "a run with the same model, settings and data" in err
    code, _, err = run_cli(*first, "--lr", "0.01", "--force")
    assert code == 0, err
    assert load_checkpoint(checkpoint)["config"]["lr"] == 0.01


def test_evaluate_uses_and_checks_the_checkpoints_data(trained, data_dir, tmp_path):
    out_dir, train_stdout, _ = trained
    checkpoint = str(out_dir / "checkpoint.npz")
    other = write_digits(tmp_path / "other", train=64, test=32)  # other images: the digits in negative
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (other / name).write_bytes((other / name).read_bytes()[:16] + bytes(255 - b for b in
                                                                             (other / name).read_bytes()[16:]))
    code, stdout, err = run_cli("evaluate", "--checkpoint", checkpoint, "--data", str(other))
    assert code == 0, err
    assert f"on {other} (given by --data): 32 test images" in stdout
    (warning,) = [line for line in err.splitlines() if "warning" in line]  # the rest is progress bars
    assert warning.startswith(f"warning: {checkpoint} was trained on other images than the training split of {other}")
    assert warning.endswith(f"a task it was not trained for; it was trained on {data_dir}")

    moved = tmp_path / "moved.npz"
    state = load_checkpoint(checkpoint)
    save_checkpoint(moved, {**state, "data": {**state["data"], "path": str(tmp_path / "gone")}})
    assert_one_error_line(*run_cli("evaluate", "--checkpoint", str(moved)),
                          r"moved.npz was trained on .*gone, which is not there any more: give its new place, or "
                          r"other data, with --data DIR")
    old = tmp_path / "old.npz"  # a checkpoint of an older version, which does not record its data
    save_checkpoint(old, {k: v for k, v in state.items() if k != "data"})
    code, stdout, err = run_cli("evaluate", "--checkpoint", str(old))
    assert code == 0 and "on the embedded digits (the checkpoint does not record its data" in stdout
    assert "warning: " in err and "trained on other images than the training split of the embedded digits" in err
    code, stdout, err = run_cli("evaluate", "--checkpoint", str(old), "--data", str(data_dir))
    assert code == 0 and "warning" not in err
    assert stdout.strip().splitlines()[-1] == train_stdout.strip().splitlines()[-1]


def test_evaluate_defaults_to_the_checkpoint_train_writes(trained, data_dir, monkeypatch):
    out_dir, train_stdout, _ = trained
    monkeypatch.chdir(out_dir.parent.parent)
    code, stdout, err = run_cli("evaluate", "--data", str(data_dir))
    assert code == 0, err
    assert stdout.startswith(f"LeNet-5 of out/{out_dir.name}/checkpoint.npz (epoch 1) on {data_dir}")
    assert_one_error_line(*run_cli("evaluate"), rf"no checkpoint at out/lenet5/checkpoint.npz; out/ has "
                                                rf"out/{out_dir.name}/checkpoint.npz: choose one with --checkpoint")


def test_the_plots_get_the_datas_class_names(tmp_path, monkeypatch):
    import tinygrad_cnn.cli as cli
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(cli, "save_plots", lambda *args, **kwargs: calls.append(kwargs["class_names"]))
    fashion = write_digits(tmp_path / "Fashion-MNIST", train=32, test=16)
    code, _, err = run_cli("train", "--data", str(fashion), "--epochs", "1", "--batch-size", "32", "--graph", "g.dot")
    assert code == 0, err
    assert calls == [("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot")]
    assert load_checkpoint("out/lenet5-Fashion-MNIST/checkpoint.npz")["data"]["classes"][9] == "Ankle boot"


# ================================================================ outputs checked first, Ctrl-C

@pytest.mark.parametrize("option, make_bad", [
    ("--checkpoint", lambda d: d / "a-file" / "run.npz"),
    ("--metrics", lambda d: d / "a-directory"),
    ("--plots", lambda d: d / "a-file"),
    ("--graph", lambda d: d / "a-file" / "graph.dot"),
    ("--out", lambda d: d / "a-file"),
])
def test_unwritable_outputs_are_found_before_training(in_tmp, data_dir, option, make_bad):
    if option == "--plots":
        pytest.importorskip("matplotlib")
    (in_tmp / "a-file").write_text("in the way")
    (in_tmp / "a-directory").mkdir()
    bad = make_bad(in_tmp)
    code, stdout, stderr = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "32", option,
                                   str(bad))
    reason = "it is a directory; give the path of a file" if option == "--metrics" else \
        f"{in_tmp / 'a-file'} is a file, not a directory"
    assert_one_error_line(code, stdout, stderr, rf"cannot write {bad}.*: {re.escape(reason)}$")
    assert "epoch" not in stdout and ".tmp" not in stderr


def test_ctrl_c_while_the_plots_are_drawn_is_one_line(in_tmp, data_dir, monkeypatch):
    import tinygrad_cnn.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "save_plots", interrupted)
    monkeypatch.setattr(cli, "_plots_problem", lambda path: None)  # as if matplotlib were installed
    code, _, err = run_cli("train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "32", "--graph", "g.dot")
    assert code == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"interrupted while drawing the plots: the checkpoint and metrics are "
                                           f"saved; the plots in out/lenet5-{data_dir.name}/plots may be incomplete "
                                           f"(--resume draws them again)")
    assert load_checkpoint(f"out/lenet5-{data_dir.name}/checkpoint.npz")["epoch"] == 1


def test_graph_without_dot_names_its_own_option(in_tmp, monkeypatch):
    import tinygrad_cnn.cli as cli
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    assert_one_error_line(*run_cli("graph"), r"needs Graphviz's `dot` program.*or give --output a .dot path")


def test_graph_html_writes_the_explorer_without_graphviz(in_tmp, monkeypatch):
    import tinygrad_cnn.cli as cli
    from tinygrad_cnn.viz.explorer import read_page_data
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    code, out, err = run_cli("graph", "--html", "--batch-size", "2")
    assert code == 0, err
    assert out.strip() == "wrote lenet5-graph.html: the explorer of lenet5's loss; open it in a browser"
    data = read_page_data((in_tmp / "lenet5-graph.html").read_text(encoding="utf-8"))
    assert {"conv1.weight", "fc3.bias"} <= {n["name"] for n in data["nodes"]}
    assert data["trace"]["ran"] and data["nodes"][0]["outputs"][0]["shape"] == [2, 1, 28, 28]
    code, out, err = run_cli("graph", "--output", "g.html", "--batch-size", "2")  # the extension says it too
    assert code == 0 and (in_tmp / "g.html").is_file(), err
    assert_one_error_line(*run_cli("graph", "--html", "--output", "g.svg"), r"--html writes an HTML page, but "
                                                                             r"--output is g.svg")


def module_nodes(dot: str) -> list[str]:
    """The first label line of each module node (a 3-d box) drawn, not the legend's sample."""
    return re.findall(r'^\s*n\d+ \[label="([^"\\]*)[^\n]*shape=box3d', dot, re.M)


def test_graph_groups_modules_to_a_depth_and_folds(in_tmp):
    code, out, err = run_cli("graph", "--model", "resnet20", "--batch-size", "2", "--depth", "1", "--fold",
                             "--output", "x.dot")
    assert code == 0, err
    assert out.strip() == "wrote x.dot: the graph of resnet20's loss, one node per layer, grouped by module, " \
                          "calls 1 deep as nodes, identical blocks folded"
    dot = (in_tmp / "x.dot").read_text()
    # the calls ResNet20.forward makes; the identical blocks are inside layer1..3, not drawn at depth 1
    assert module_nodes(dot) == ["conv1 (Conv2d)", "bn1 (BatchNorm2d)", "relu (ReLU)", "layer1 (Sequential)",
                                 "layer2 (Sequential)", "layer3 (Sequential)", "fc (Linear)"]
    assert "legend_module" in dot and not re.search(r"x\d\b", dot)
    code, out, err = run_cli("graph", "--model", "resnet20", "--batch-size", "2", "--depth", "2", "--fold",
                             "--output", "y.dot")
    assert code == 0, err
    # layer1's three blocks are alike; in layer2 and layer3 the first has a strided shortcut, the other two fold
    assert [n for n in module_nodes((in_tmp / "y.dot").read_text()) if "BasicBlock" in n] == [
        "layer1.0 (BasicBlock) x3", "layer2.0 (BasicBlock)", "layer2.1 (BasicBlock) x2", "layer3.0 (BasicBlock)",
        "layer3.1 (BasicBlock) x2"]
    code, out, err = run_cli("graph", "--group-modules", "--batch-size", "2", "--output", "g.dot")
    assert code == 0 and out.strip().endswith("one node per layer, grouped by module"), err
    dot = (in_tmp / "g.dot").read_text()
    assert module_nodes(dot) == [] and 'label="conv1 (Conv2d)"' in dot and "label=LeNet5" in dot  # frames


def test_graph_html_starts_at_the_depth_given(in_tmp):
    from tinygrad_cnn.viz.explorer import read_page_data
    code, out, err = run_cli("graph", "--html", "--depth", "1", "--batch-size", "2")
    assert code == 0, err
    assert out.strip() == "wrote lenet5-graph.html: the explorer of lenet5's loss (module calls 1 deep and deeper " \
                          "collapsed); open it in a browser"
    data = read_page_data((in_tmp / "lenet5-graph.html").read_text(encoding="utf-8"))
    modules = [g for g in data["groups"] if g["kind"] == "module"]
    assert data["depth"] == 1 and [g["label"] for g in modules if not g["collapsed"]] == ["LeNet5"]
    assert len(modules) == 13  # the model and the 12 calls it makes (relu 4 times, pool twice)


def test_train_explore_writes_the_page_and_trains_the_same(in_tmp, data_dir):
    """--explore adds graph.html to the run's directory; the backward it runs leaves no trace in training."""
    from tinygrad_cnn.viz.explorer import read_page_data
    common = ["train", "--data", str(data_dir), "--epochs", "1", "--batch-size", "32", "--graph", "g.dot"]
    code, out, err = run_cli(*common, "--out", "a", "--explore")
    assert code == 0, err
    assert "writing a/: checkpoint.npz (after every epoch), metrics.json (after every epoch), g.dot (now), " \
           "graph.html (now)" in out
    data = read_page_data((in_tmp / "a" / "graph.html").read_text(encoding="utf-8"))
    assert data["nodes"][0]["outputs"][0]["shape"] == [32, 1, 28, 28] and len(data["trace"]["steps"]) == 38
    code, out, err = run_cli(*common, "--out", "b")
    assert code == 0, err
    explored, plain = load_checkpoint("a/checkpoint.npz"), load_checkpoint("b/checkpoint.npz")
    for name, value in plain["model"].items():
        np.testing.assert_array_equal(explored["model"][name], value)


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


# ================================================================ export

def exported_model_inputs(run_dir: Path) -> tuple[LeNet5, np.ndarray, dict]:
    """The trained checkpoint's LeNet-5 (eval mode), 8 test digits normalized as it was trained, and the state."""
    from tinygrad_cnn.train import to_inputs
    state = load_checkpoint(run_dir / "checkpoint.npz")
    model = LeNet5()
    model.load_state_dict(state["model"])
    norm = state["normalization"]
    return model.eval(), to_inputs(load_digits(False)[0][:8], norm["mean"], norm["std"]), state


def test_export_safetensors_loads_into_torch(trained, tmp_path):
    torch = pytest.importorskip("torch")
    safetensors = pytest.importorskip("safetensors")
    from safetensors.torch import load_file

    from benchmark_modules import load
    run_dir = trained[0]
    code, out, err = run_cli("export", "--checkpoint", str(run_dir / "checkpoint.npz"), "--format", "safetensors",
                             "--output", str(tmp_path / "lenet5.safetensors"))
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'lenet5.safetensors'}: the 10 tensors (61,706 numbers) of LeNet-5's")
    model, images, state = exported_model_inputs(run_dir)
    twin = load("torch_twins").LeNet5().eval()
    twin.load_state_dict(load_file(tmp_path / "lenet5.safetensors"))
    with torch.no_grad(), tg.no_grad():
        np.testing.assert_allclose(twin(torch.from_numpy(images)).numpy(), model(Tensor(images)).numpy(),
                                   rtol=1e-5, atol=1e-5)
    with safetensors.safe_open(tmp_path / "lenet5.safetensors", framework="np") as f:
        metadata = f.metadata()
    assert metadata["model"] == "lenet5" and metadata["input_shape"] == "1x28x28" and metadata["epoch"] == "1"
    assert float(metadata["normalization_mean"]) == state["normalization"]["mean"]
    assert float(metadata["normalization_std"]) == state["normalization"]["std"]


def test_export_onnx_runs_in_onnxruntime(trained, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    run_dir = trained[0]
    code, _, err = run_cli("export", "--checkpoint", str(run_dir / "checkpoint.npz"), "--format", "onnx",
                           "--output", str(tmp_path / "lenet5.onnx"))
    assert code == 0, err
    model, images, _ = exported_model_inputs(run_dir)
    session = onnxruntime.InferenceSession(str(tmp_path / "lenet5.onnx"))
    (logits,) = session.run(None, {session.get_inputs()[0].name: images})
    with tg.no_grad():
        np.testing.assert_allclose(logits, model(Tensor(images)).numpy(), rtol=1e-5, atol=1e-5)


def test_export_defaults_to_the_default_checkpoint_and_its_directory(trained, in_tmp):
    pytest.importorskip("safetensors")
    (in_tmp / "out" / "lenet5").mkdir(parents=True)
    shutil.copy(trained[0] / "checkpoint.npz", in_tmp / "out" / "lenet5" / "checkpoint.npz")
    code, out, err = run_cli("export")
    assert code == 0, err
    assert out.startswith("wrote out/lenet5/model.safetensors: ")
    loaded = tg.load_safetensors(in_tmp / "out" / "lenet5" / "model.safetensors")
    saved = load_checkpoint(trained[0] / "checkpoint.npz")["model"]
    assert sorted(loaded) == sorted(saved)
    assert all(np.array_equal(loaded[k].numpy(), np.asarray(saved[k])) for k in saved)


def test_export_problems_give_one_error_line(trained, in_tmp, monkeypatch):
    checkpoint = str(trained[0] / "checkpoint.npz")
    assert_one_error_line(*run_cli("export", "--checkpoint", "none.npz"), "no checkpoint at none.npz")
    assert_one_error_line(*run_cli("export"), "no checkpoint at out/lenet5/checkpoint.npz; train writes it")
    assert_one_error_line(*run_cli("export", "--checkpoint", checkpoint, "--output", str(in_tmp)),
                          "cannot write .*: it is a directory")
    assert_one_error_line(*run_cli("export", *other_model_checkpoint(in_tmp)[1:]),
                          "other.npz: the checkpoint holds a 'ResNet' model")
    monkeypatch.setitem(sys.modules, "safetensors", None)  # as if the safetensors extra were not installed
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    assert_one_error_line(*run_cli("export", "--checkpoint", checkpoint, "--output", "w.safetensors"),
                          r"need the safetensors package, which is not installed: pip install "
                          r"'tinygrad_cnn\[safetensors\]'")
    assert not (in_tmp / "w.safetensors").exists()


def test_export_rejects_an_unknown_format(in_tmp):
    code, _, err = run_cli("export", "--format", "pickle")
    assert code == 2 and err.startswith("usage: tinygrad-cnn export") and "invalid choice: 'pickle'" in err
