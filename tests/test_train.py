"""Training loop, evaluation and checkpoints: inputs and metrics against hand-computed values, one
epoch against the same steps in PyTorch, checkpoints round-tripped, damaged and interrupted, and a
resumed run against a straight one, bit for bit."""
import io
import math
import pickle

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_cnn.data import write_idx
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.rng import get_generator
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.train import (FASHION_MNIST_CLASSES, DataSource, TrainConfig, TrainingRun, confusion_matrix, evaluate,
                                input_statistics, load_model_state, load_split, to_inputs)


@pytest.fixture(scope="module")
def digits():
    """A small slice of the embedded digits: 128 training and 32 test images."""
    train_images, train_labels = load_split(None, train=True)
    test_images, test_labels = load_split(None, train=False)
    return train_images[:128], train_labels[:128], test_images[:32], test_labels[:32]


# ================================================================ data and metrics

def test_embedded_splits():
    train_images, train_labels = load_split(None, train=True)
    test_images, test_labels = load_split(None, train=False)
    assert train_images.shape == (4000, 28, 28) and test_images.shape == (1000, 28, 28)
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.int64
    assert np.bincount(train_labels).tolist() == [400] * 10
    assert np.bincount(test_labels).tolist() == [100] * 10


def test_inputs_are_scaled_and_standardised():
    images = np.array([[[0, 255], [255, 0]]], dtype=np.uint8)  # half black, half white
    mean, std = input_statistics(images)
    assert (mean, std) == (0.5, 0.5)
    x = to_inputs(np.array([[[0, 51, 255]]], dtype=np.uint8), mean=0.1307, std=0.3081)
    assert x.shape == (1, 1, 1, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x.ravel(), [-0.1307 / 0.3081, (0.2 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081],
                               rtol=1e-6)


def test_load_split_rejects_missing_and_unsuitable_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_split(tmp_path / "nowhere", train=True)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 8, 8), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="28x28 images, the training images are 8x8"):
        load_split(tmp_path, train=True)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([3, 12], np.uint8))
    with pytest.raises(ValueError, match=r"labels must be in 0..9, found 3..12"):
        load_split(tmp_path, train=False)


def test_evaluate_matches_loss_and_accuracy_by_hand():
    tg.manual_seed(0)
    model = LeNet5()
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((7, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 7)
    logits = model(Tensor(inputs)).detach().numpy().astype(np.float64)
    log_z = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    expected_loss = np.mean(log_z - logits[np.arange(7), labels])
    result = evaluate(model, inputs, labels, batch_size=3)  # batches of 3, 3 and 1
    assert not model.training
    np.testing.assert_allclose(result.loss, expected_loss, rtol=1e-5)
    np.testing.assert_array_equal(result.predictions, logits.argmax(1))
    assert result.accuracy == np.mean(logits.argmax(1) == labels)


def test_confusion_matrix_counts_true_against_predicted():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    expected = np.zeros((10, 10), np.int64)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 0] = 1
    expected[2, 2] = 2
    np.testing.assert_array_equal(confusion_matrix(labels, predictions), expected)


def test_config_defaults_follow_the_optimizer():
    assert (TrainConfig().lr, TrainConfig().momentum) == (2e-3, None)
    assert (TrainConfig(optimizer="sgd").lr, TrainConfig(optimizer="sgd").momentum) == (0.05, 0.9)
    with pytest.raises(ValueError, match="momentum applies to the sgd optimizer"):
        TrainConfig(momentum=0.5)
    with pytest.raises(ValueError, match="optimizer must be one of adam, sgd"):
        TrainConfig(optimizer="rmsprop")


# ================================================================ one epoch against PyTorch

def test_one_epoch_matches_pytorch(digits):
    """The same initial weights, the same batches in the same order, SGD with momentum in PyTorch:
    the weights after the epoch, the mean training loss and the scheduled lr agree."""
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    train_images, train_labels, test_images, test_labels = digits
    run = TrainingRun(TrainConfig(epochs=2, batch_size=32, optimizer="sgd", lr=0.05), train_images, train_labels)
    weights = {n: torch.tensor(p.detach().numpy().copy(), requires_grad=True) for n, p in run.model.named_parameters()}
    shuffler = np.random.default_rng()
    shuffler.bit_generator.state = get_generator().bit_generator.state  # the loader draws its order from it
    order = shuffler.permutation(128)

    metrics = run.run_epoch(run.inputs(test_images), test_labels)

    optimizer = torch.optim.SGD(weights.values(), lr=0.05, momentum=0.9)
    inputs = torch.from_numpy(run.inputs(train_images))
    losses = []
    for start in range(0, 128, 32):
        batch, w = torch.from_numpy(order[start:start + 32]), weights
        x = tF.max_pool2d(tF.conv2d(inputs[batch], w["conv1.weight"], w["conv1.bias"], padding=2).relu(), 2)
        x = tF.max_pool2d(tF.conv2d(x, w["conv2.weight"], w["conv2.bias"]).relu(), 2)
        x = tF.linear(x.flatten(1), w["fc1.weight"], w["fc1.bias"]).relu()
        x = tF.linear(x, w["fc2.weight"], w["fc2.bias"]).relu()
        loss = tF.cross_entropy(tF.linear(x, w["fc3.weight"], w["fc3.bias"]), torch.from_numpy(train_labels[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    for name, p in run.model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), weights[name].detach().numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    np.testing.assert_allclose(metrics.train_loss, np.mean(losses), rtol=1e-5)
    assert metrics.epoch == 1 and 0 <= metrics.test_accuracy <= 1
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * (1 + math.cos(math.pi / 2)) / 2)


# ================================================================ checkpoints

def test_checkpoint_round_trips_nested_state(tmp_path):
    state = {
        "weights": {"conv1.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "counts": np.array([1, 2])},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}}, "groups": [{"betas": (0.9, 0.999)}]},
        "tensor": Tensor(np.array([1.5, 2.5], np.float64)),
        "rng": {"state": 2 ** 127 + 12345, "name": "PCG64"},
        "flags": [True, None, 0.1],
    }
    save_checkpoint(tmp_path / "c.npz", state)
    loaded = load_checkpoint(tmp_path / "c.npz")
    assert loaded.keys() == state.keys()
    for name, array in state["weights"].items():
        assert loaded["weights"][name].dtype == array.dtype
        np.testing.assert_array_equal(loaded["weights"][name], array)
    optimizer = loaded["optimizer"]
    assert list(optimizer["state"]) == [0]  # an int key stays an int
    assert optimizer["state"][0]["step"] == 3
    np.testing.assert_array_equal(optimizer["state"][0]["exp_avg"], np.ones(2))
    betas = optimizer["groups"][0]["betas"]
    assert betas == (0.9, 0.999) and isinstance(betas, tuple)
    assert loaded["tensor"].dtype == np.float64 and loaded["tensor"].tolist() == [1.5, 2.5]
    assert loaded["rng"] == {"state": 2 ** 127 + 12345, "name": "PCG64"}
    assert loaded["flags"] == [True, None, 0.1]
    assert sorted(np.load(tmp_path / "c.npz").files) == ["checkpoint.json", "optimizer/state/0/exp_avg", "tensor",
                                                         "weights/conv1.weight", "weights/counts"]


def test_a_save_that_fails_half_way_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    save_checkpoint(path, {"epoch": 1, "weight": np.zeros(1000)})
    real_savez = np.savez

    def crash_half_way(file, **arrays):
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        file.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        raise OSError("simulated crash in the middle of the write")

    monkeypatch.setattr(np, "savez", crash_half_way)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, {"epoch": 2, "weight": np.ones(1000)})
    monkeypatch.undo()
    old = load_checkpoint(path)
    assert old["epoch"] == 1 and not old["weight"].any()
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # the half-written temporary file is gone


@pytest.mark.parametrize("damage", ["garbage", "truncated", "plain npz", "npy"])
def test_damaged_checkpoints_are_reported(tmp_path, damage):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"weight": np.arange(1000.0)})
    good = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a checkpoint at all")
    elif damage == "truncated":
        path.write_bytes(good[:len(good) // 2])
    elif damage == "plain npz":
        np.savez(path, weight=np.zeros(3))
    else:
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.npz")


def test_checkpoint_of_another_model_is_refused():
    tg.manual_seed(0)
    weights = LeNet5().state_dict()
    with pytest.raises(CheckpointError, match="holds a 'Net' model, not LeNet5"):
        load_model_state(LeNet5(), {"model_name": "Net", "model": weights})
    weights["fc3.weight"] = np.zeros((5, 84), np.float32)
    with pytest.raises(CheckpointError, match=r"size mismatch for fc3.weight"):
        load_model_state(LeNet5(), {"model_name": "LeNet5", "model": weights})


# ================================================================ resuming

def test_resumed_run_equals_straight_run(digits, tmp_path):
    """2 epochs straight, and 1 epoch + checkpoint + a fresh process's worth of state + 1 epoch:
    identical weights, optimizer state and metrics."""
    train_images, train_labels, test_images, test_labels = digits
    config = TrainConfig(epochs=2, batch_size=32)

    straight = TrainingRun(config, train_images, train_labels)
    test_inputs = straight.inputs(test_images)
    for _ in range(2):
        straight.run_epoch(test_inputs, test_labels)
    straight_rng = get_generator().bit_generator.state

    first = TrainingRun(config, train_images, train_labels)
    first.run_epoch(test_inputs, test_labels)
    save_checkpoint(tmp_path / "run.npz", first.state_dict())
    tg.manual_seed(12345)  # whatever happened to the global generator in between
    resumed = TrainingRun(config, train_images, train_labels)
    resumed.load_state_dict(load_checkpoint(tmp_path / "run.npz"))
    assert resumed.epoch == 1
    resumed.run_epoch(test_inputs, test_labels)

    for (name, p), q in zip(straight.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)
    for i, state in straight.optimizer.state.items():
        assert state["step"] == resumed.optimizer.state[i]["step"] == 8
        np.testing.assert_array_equal(state["exp_avg_sq"], resumed.optimizer.state[i]["exp_avg_sq"])
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    assert [(m.train_loss, m.test_loss, m.test_accuracy) for m in straight.history] == \
           [(m.train_loss, m.test_loss, m.test_accuracy) for m in resumed.history]
    assert get_generator().bit_generator.state == straight_rng  # the shuffles go on as they would have


def test_resuming_on_other_images_is_refused(digits, tmp_path):
    train_images, train_labels, _, _ = digits
    run = TrainingRun(TrainConfig(epochs=1), train_images, train_labels)
    state = run.state_dict()
    other = TrainingRun(TrainConfig(epochs=1), 255 - train_images, train_labels)
    with pytest.raises(CheckpointError, match="trained on other images"):
        other.load_state_dict(state)


def test_resuming_with_more_epochs_continues_from_the_last_lr(digits, tmp_path):
    """A finished 2-epoch run at lr 0.01 (epochs at 0.01 and 0.005) given 4 epochs: a new cosine from 0.005 over
    the 2 epochs left (0.005, 0.0025). Interrupted after epoch 3 and resumed, the extended run continues exactly."""
    train_images, train_labels, test_images, test_labels = digits
    run = TrainingRun(TrainConfig(epochs=2, batch_size=64, lr=0.01), train_images, train_labels)
    test_inputs = run.inputs(test_images)
    for _ in range(2):
        run.run_epoch(test_inputs, test_labels)
    save_checkpoint(tmp_path / "finished.npz", run.state_dict())

    def extended() -> TrainingRun:
        longer = TrainingRun(TrainConfig(epochs=4, batch_size=64, lr=0.01), train_images, train_labels)
        longer.load_state_dict(load_checkpoint(tmp_path / "finished.npz"))
        return longer

    straight = extended()
    for _ in range(2):
        straight.run_epoch(test_inputs, test_labels)
    assert [m.lr for m in straight.history] == pytest.approx([0.01, 0.005, 0.005, 0.0025], rel=1e-12)
    assert straight.optimizer.param_groups[0]["lr"] == pytest.approx(0, abs=1e-15)

    first = extended()
    first.run_epoch(test_inputs, test_labels)
    save_checkpoint(tmp_path / "extended.npz", first.state_dict())
    resumed = TrainingRun(TrainConfig(epochs=4, batch_size=64, lr=0.01), train_images, train_labels)
    resumed.load_state_dict(load_checkpoint(tmp_path / "extended.npz"))
    resumed.run_epoch(test_inputs, test_labels)
    assert [m.lr for m in resumed.history] == [m.lr for m in straight.history]
    for (name, p), q in zip(straight.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)


def test_old_metrics_without_lr_still_load(digits):
    train_images, train_labels, test_images, test_labels = digits
    run = TrainingRun(TrainConfig(epochs=1, batch_size=64), train_images, train_labels)
    run.run_epoch(run.inputs(test_images), test_labels)
    state = run.state_dict()
    state["history"] = [{k: v for k, v in m.items() if k != "lr"} for m in state["history"]]
    again = TrainingRun(TrainConfig(epochs=1, batch_size=64), train_images, train_labels)
    again.load_state_dict(state)
    assert again.history[0].lr is None and "lr" not in str(again.history[0])


# ================================================================ data sources

def test_data_source_names_the_classes(tmp_path):
    assert DataSource.of(None) == DataSource(None, tuple("0123456789")) and str(DataSource.of(None)) == \
        "the embedded digits"
    for name, first in (("fashion-mnist", "T-shirt/top"), ("KMNIST", "o"), ("mnist", "0")):
        (tmp_path / name).mkdir()
        source = DataSource.of(tmp_path / name)
        assert source.path == str(tmp_path / name) and source.classes[0] == first and source.name == name
    assert DataSource.of(tmp_path / "fashion-mnist").classes == FASHION_MNIST_CLASSES
    cifar = tmp_path / "cifar"
    cifar.mkdir()
    (cifar / "test_batch").write_bytes(b"")
    assert DataSource.of(cifar).classes == tuple("0123456789")  # no batches.meta: numbers
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (cifar / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}))
    assert DataSource.of(cifar).classes == tuple(n.decode() for n in names)
    source = DataSource.of(cifar)
    assert DataSource.from_checkpoint({"data": source.state_dict()}) == source
    assert DataSource.from_checkpoint({}) is None  # checkpoints of older versions
    with pytest.raises(CheckpointError, match="data record is damaged"):
        DataSource.from_checkpoint({"data": {"path": None}})
