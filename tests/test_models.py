"""VGG and ResNet-20 against the same models written in torch.nn (state_dict names and shapes, float64
logits and gradients), the CIFAR-10 reader on tiny batch files in the real layout (and refusing pickles
that name a global), and the command line training, evaluating and refusing models that do not fit."""
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn.checkpoint import load_checkpoint
from tinygrad_cnn.data import load_cifar10_dataset
from tinygrad_cnn.models import MODELS, VGG, ResNet20
from tinygrad_cnn.tensor import Tensor

from benchmark_modules import load
from test_cli import assert_one_error_line, run_cli, write_digits

tnn = torch.nn


# ================================================================ the same models in torch.nn

torch_twins = load("torch_twins")  # the same models written with torch.nn
PAIRS = {"vgg": (VGG, torch_twins.VGG), "resnet20": (ResNet20, torch_twins.ResNet20)}


def as_numpy(value) -> np.ndarray:
    return value.detach().numpy() if isinstance(value, Tensor) else np.asarray(value)


def double_pair(name: str):
    """Our model and torch's in float64 with the same weights, and random running statistics (so that
    eval mode does not normalise by the initial 0 / 1)."""
    tg.manual_seed(0)
    ours, theirs = PAIRS[name][0]().double(), PAIRS[name][1]().double()
    rng = np.random.default_rng(1)
    state = {k: as_numpy(v) for k, v in ours.state_dict().items()}
    for key in state:
        if key.endswith("running_mean"):
            state[key] = rng.normal(0, 0.1, state[key].shape)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, state[key].shape)
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return ours, theirs


@pytest.mark.parametrize("name", list(PAIRS))
def test_state_dict_names_and_shapes_equal_torch(name):
    ours, theirs = PAIRS[name][0](), PAIRS[name][1]()
    assert [(k, as_numpy(v).shape) for k, v in ours.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_parameter_counts():
    counts = {name: sum(p.numel() for p in cls().parameters()) for name, cls in MODELS.items()}
    assert counts == {"lenet5": 61_706, "vgg": 1_116_970, "resnet20": 272_474}


def test_resnet20_shortcuts_are_option_b():
    model = ResNet20()
    downsampled = [name for name, m in model.named_modules() if name.endswith("downsample")]
    assert downsampled == ["layer2.0.downsample", "layer3.0.downsample"]
    shortcut_conv = model.layer2[0].downsample[0]
    assert shortcut_conv.weight.shape == (32, 16, 1, 1) and shortcut_conv.stride == (2, 2)


@pytest.mark.parametrize("name", list(PAIRS))
def test_eval_logits_equal_torch(name):
    ours, theirs = double_pair(name)
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32))
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(Tensor(x)).detach().numpy(), expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", list(PAIRS))
def test_training_gradients_and_running_stats_equal_torch(name):
    ours, theirs = double_pair(name)
    ours.train()
    theirs.train()
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((4, 3, 32, 32)), np.array([3, 1, 4, 1])
    loss = F.cross_entropy(ours(Tensor(x)), Tensor(labels))
    their_loss = tnn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(labels))
    np.testing.assert_allclose(loss.item(), their_loss.item(), rtol=1e-10)
    loss.backward()
    their_loss.backward()
    their_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(as_numpy(p.grad), their_params[key].grad.numpy(), rtol=1e-7, atol=1e-10,
                                   err_msg=key)
    their_state = theirs.state_dict()
    for key, value in ours.state_dict().items():  # the running statistics the training step updated
        np.testing.assert_allclose(as_numpy(value), their_state[key].numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


# ================================================================ CIFAR-10 files

def cifar_batch(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Raw pixels (count, 3072), labels and the pickled batch, laid out as CIFAR-10's python files."""
    data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, count)
    batch = {b"batch_label": b"a tiny batch", b"labels": [int(v) for v in labels], b"data": data.tobytes(),
             b"filenames": [f"image_{i}.png".encode() for i in range(count)]}
    return data, labels, pickle.dumps(batch)


def write_cifar(directory: Path, train: int, test: int, seed: int = 0) -> Path:
    """`train` images in data_batch_1 and data_batch_2 (half each), `test` in test_batch."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, count in (("data_batch_1", train // 2), ("data_batch_2", train - train // 2), ("test_batch", test)):
        (directory / name).write_bytes(cifar_batch(rng, count)[2])
    return directory


def test_cifar_reader_layout(tmp_path):
    rng = np.random.default_rng(0)
    batches = [cifar_batch(rng, n) for n in (5, 3, 4)]
    for name, (_, _, raw) in zip(("data_batch_1", "data_batch_2", "test_batch"), batches):
        (tmp_path / name).write_bytes(raw)
    images, labels = load_cifar10_dataset(tmp_path, train=True)
    assert images.shape == (8, 3, 32, 32) and images.dtype == np.float32 and labels.dtype == np.int64
    raw = np.concatenate([batches[0][0], batches[1][0]])
    np.testing.assert_array_equal(labels, np.concatenate([batches[0][1], batches[1][1]]))
    np.testing.assert_array_equal(images * 255, raw.astype(np.float32).reshape(8, 3, 32, 32))
    assert images[6, 2, 5, 7] == np.float32(raw[6, 2 * 1024 + 5 * 32 + 7]) / 255  # blue plane, row 5, column 7
    test_images, test_labels = load_cifar10_dataset(tmp_path, train=False)
    assert test_images.shape == (4, 3, 32, 32) and 0 <= test_images.min() and test_images.max() <= 1
    np.testing.assert_array_equal(test_labels, batches[2][1])


class Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


class NumpyCall:
    def __reduce__(self):
        return np.ones, ((1, 3072),)


def test_cifar_reader_refuses_pickles_with_globals(tmp_path):
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(tmp_path / "pwned"), b"labels": [1]}))
    with pytest.raises(ValueError, match=r"test_batch: not a readable CIFAR-10 batch .*refusing to load the global "
                                         r"\w+\.mkdir"):
        load_cifar10_dataset(tmp_path, train=False)
    assert not (tmp_path / "pwned").exists()
    # of NumPy, only how an array is rebuilt: an array loads (as in the official files), a function does not
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.ones((1, 3072), np.uint8), b"labels": [1]}))
    images, labels = load_cifar10_dataset(tmp_path, train=False)
    assert images.shape == (1, 3, 32, 32) and images.min() == np.float32(1 / 255) and labels.tolist() == [1]
    # the official files: protocol 2, the array under NumPy 1's module name
    official = pickle.dumps({b"data": np.full((2, 3072), 255, np.uint8), b"labels": [3, 4]}, protocol=2)
    (tmp_path / "test_batch").write_bytes(official.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    images, labels = load_cifar10_dataset(tmp_path, train=False)
    assert images.shape == (2, 3, 32, 32) and images.min() == 1.0 and labels.tolist() == [3, 4]
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": NumpyCall(), b"labels": [1]}))
    with pytest.raises(ValueError, match=r"refusing to load the global numpy\.\w*\.?\w*ones"):
        load_cifar10_dataset(tmp_path, train=False)


def test_cifar_reader_rejects_bad_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training batch file data_batch_1"):
        load_cifar10_dataset(tmp_path, train=True)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": bytes(3072 * 2), b"labels": [1]}))
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        load_cifar10_dataset(tmp_path, train=False)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": bytes(100), b"labels": [1]}))
    with pytest.raises(ValueError, match="rows of 3072 uint8 pixels"):
        load_cifar10_dataset(tmp_path, train=False)
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable CIFAR-10 batch"):
        load_cifar10_dataset(tmp_path, train=False)


# ================================================================ the command line

@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("cifar"), train=64, test=32)


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory, cifar_dir):
    """`tinygrad-cnn train --model resnet20` for 1 epoch (without plots: one figure per conv layer is slow)."""
    workdir = tmp_path_factory.mktemp("run")
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "matplotlib", None)
            code, out, err = run_cli("train", "--model", "resnet20", "--data", str(cifar_dir), "--epochs", "1",
                                     "--batch-size", "16", "--graph", "out/resnet20-graph.dot",
                                     "--checkpoint", "out/resnet20.npz")
    finally:
        os.chdir(cwd)
    assert code == 0, err
    return workdir / "out", out


def test_train_resnet20_on_cifar(resnet_run):
    out_dir, stdout = resnet_run
    assert stdout.startswith("ResNet-20 on ") and "64 training and 32 test images" in stdout
    state = load_checkpoint(out_dir / "resnet20.npz")
    assert state["model_name"] == "ResNet20" and state["epoch"] == 1
    assert state["model"]["layer3.0.downsample.1.running_var"].shape == (64,)
    assert int(state["model"]["bn1.num_batches_tracked"]) == 4  # 64 images in batches of 16
    assert "layer1.0.conv1" in (out_dir / "resnet20-graph.dot").read_text()


def test_evaluate_rebuilds_the_checkpoints_model(resnet_run, cifar_dir):
    out_dir, train_stdout = resnet_run
    checkpoint = str(out_dir / "resnet20.npz")
    code, stdout, err = run_cli("evaluate", "--checkpoint", checkpoint, "--data", str(cifar_dir))
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == train_stdout.strip().splitlines()[-1]
    assert_one_error_line(*run_cli("evaluate", "--checkpoint", checkpoint, "--model", "vgg", "--data", str(cifar_dir)),
                          r"resnet20.npz: the checkpoint holds a 'ResNet20' model, not VGG")


def test_resume_takes_the_checkpoints_model(resnet_run, cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    checkpoint = tmp_path / "run.npz"
    checkpoint.write_bytes((resnet_run[0] / "resnet20.npz").read_bytes())
    common = ["--data", str(cifar_dir), "--checkpoint", str(checkpoint), "--metrics", str(tmp_path / "m.json"),
              "--graph", str(tmp_path / "g.dot"), "--resume"]
    assert_one_error_line(*run_cli("train", *common, "--model", "vgg"),
                          r"--resume continues the checkpoint's run, but --model vgg \(the checkpoint's run has "
                          r"resnet20\)")
    code, stdout, err = run_cli("train", *common, "--epochs", "2")
    assert code == 0, err
    assert stdout.startswith("ResNet-20 on") and "resuming" in stdout and load_checkpoint(checkpoint)["epoch"] == 2


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "vgg", "--data", "{mnist}"], "--model vgg: .*: VGG needs 3x32x32 images, the training "
                                                       "images are 28x28"),
    (["train", "--model", "resnet20"], "--model resnet20: the embedded digits: ResNet-20 needs 3x32x32 images"),
    (["train", "--data", "{cifar}"], "--model lenet5: .*: LeNet-5 needs 28x28 images, the training images are "
                                     "3x32x32"),
], ids=["vgg on mnist", "resnet20 on the embedded digits", "lenet5 on cifar"])
def test_a_model_that_does_not_fit_the_data_is_one_error_line(tmp_path, monkeypatch, cifar_dir, argv, message):
    monkeypatch.chdir(tmp_path)
    mnist = write_digits(tmp_path / "mnist", train=8, test=4)
    argv = [a.format(mnist=mnist, cifar=cifar_dir) for a in argv]
    assert_one_error_line(*run_cli(*argv), message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_draws_each_model(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli("graph", "--model", name, "--batch-size", "2", "--output", f"{name}.dot")
    assert code == 0, err
    assert stdout.startswith(f"wrote {name}.dot") and (tmp_path / f"{name}.dot").read_text().startswith("digraph")
