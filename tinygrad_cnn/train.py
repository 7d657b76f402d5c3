"""Training and evaluation of the models in `models.MODELS` (LeNet-5 on 28x28 digits, VGG and ResNet-20
on 32x32 CIFAR-10 images), and the metrics of a run.

    train_images, train_labels = load_split(None, train=True)      # the embedded digits
    test_images, test_labels = load_split(None, train=False)
    run = TrainingRun(TrainConfig(epochs=20), train_images, train_labels)
    test_inputs = run.inputs(test_images)
    for _ in range(20):
        print(run.run_epoch(test_inputs, test_labels))

Inputs: pixels scaled to [0, 1] (uint8 digits (N, H, W) divided by 255, given a channel; CIFAR-10's
float32 (N, 3, 32, 32) as they are), then standardised with the mean and std of all the training
split's pixels (about 0.131 / 0.309 for the embedded digits, MNIST's are 0.1307 / 0.3081), as
float32 (N, C, H, W). The test split is only ever evaluated, never trained or selected on.

Metrics of an epoch (`EpochMetrics`; `write_metrics` saves `{"epochs": [...]}`), accuracies as fractions:
    train_loss, train_accuracy  mean cross-entropy and accuracy over the epoch's batches, each taken
                                as the batch was trained on (the running values of the progress bar)
    test_loss, test_accuracy    on the test split after the epoch, in eval mode
    seconds                     wall time of the epoch: training and test evaluation
    images_per_second           training images per second of the training pass
    lr                          the learning rate of the epoch (None in the metrics of older checkpoints)
"""
from __future__ import annotations

import json
import math
import os
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import numpy as np
from tqdm import tqdm

from . import functional as F
from .autograd import no_grad
from .checkpoint import CheckpointError, atomic_write
from .data import DataLoader, TensorDataset, load_cifar10_dataset, load_digits, load_idx_dataset
from .data.cifar import is_cifar10_dir, safe_loads
from .models import MODELS
from .nn import Module
from .optim import SGD, Adam, Optimizer
from .optim.lr_scheduler import CosineAnnealingLR
from .rng import get_generator, manual_seed
from .tensor import Tensor

NUM_CLASSES = 10
DEFAULT_LR = {"adam": 2e-3, "sgd": 0.05}
DEFAULT_SGD_MOMENTUM = 0.9
EVAL_BATCH_SIZE = 500


# ---------------------------------------------------------------- data

DIGIT_CLASSES = tuple("0123456789")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")  # the ten hiragana, romanised


class ImageShapeError(ValueError):
    """Images of another size or number of channels than the model takes."""


@dataclass(frozen=True)
class DataSource:
    """Where a run's images come from, as its checkpoint records them: the embedded digits (`path` None)
    or a directory of MNIST-style IDX or CIFAR-10 batch files (`path` absolute), and the class names."""

    path: str | None = None
    classes: tuple[str, ...] = DIGIT_CLASSES

    @classmethod
    def of(cls, data: str | os.PathLike | None) -> DataSource:
        """The source that `load_split(data, ...)` reads, with its class names: CIFAR-10's from its
        `batches.meta`; for IDX files, whose labels are bare numbers, a guess from the directory's path
        (Fashion-MNIST's names when it contains 'fashion', KMNIST's for 'kmnist' or 'kuzushiji'); else the
        digits."""
        if data is None:
            return cls()
        path = Path(data).expanduser().absolute()
        if is_cifar10_dir(path):
            return cls(str(path), _cifar10_classes(path))
        lowered = str(path).lower()
        if "fashion" in lowered:
            return cls(str(path), FASHION_MNIST_CLASSES)
        if "kmnist" in lowered or "kuzushiji" in lowered:
            return cls(str(path), KMNIST_CLASSES)
        return cls(str(path))

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> DataSource | None:
        """The source a checkpoint records; None for checkpoints of older versions, which record none."""
        saved = state.get("data")
        try:
            return None if saved is None else cls(saved["path"], tuple(saved["classes"]))
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"the checkpoint's data record is damaged ({e!r})") from None

    def state_dict(self) -> dict[str, Any]:
        return {"path": self.path, "classes": list(self.classes)}

    @property
    def name(self) -> str:
        """A short name: 'digits' for the embedded ones, else the directory's name."""
        return "digits" if self.path is None else Path(self.path).name or "data"

    def __str__(self) -> str:
        return "the embedded digits" if self.path is None else self.path


def _cifar10_classes(directory: Path) -> tuple[str, ...]:
    """The label names in CIFAR-10's `batches.meta` (a pickle, read as plain data only); the numbers
    0..9 if it is missing or unreadable."""
    try:
        names = safe_loads((directory / "batches.meta").read_bytes())[b"label_names"]
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except (OSError, ValueError, TypeError, KeyError, EOFError, UnicodeDecodeError, pickle.UnpicklingError):
        return DIGIT_CLASSES
    return names if len(names) == NUM_CLASSES else DIGIT_CLASSES


def load_split(data: str | os.PathLike | None, train: bool, model: str = "lenet5") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels int64 (N,) in 0..9 of one split, checked to fit `model` (a name in `models.MODELS`).

    Args:
        data: None for the digits embedded in the package, else a directory of CIFAR-10 python batch files
            (recognised by `data_batch_1` or `test_batch`) or of MNIST-style IDX files.
        train: the training split, else the test split.
    Returns:
        images: uint8 (N, H, W) digits, or float32 (N, 3, 32, 32) in [0, 1] for CIFAR-10.
    Raises:
        FileNotFoundError: no such directory or files. ImageShapeError: images that `model` does not take.
        ValueError: corrupt files or labels.
    """
    if data is None:
        source, (images, labels) = "the embedded digits", load_digits(train)
    else:
        if not Path(data).is_dir():
            raise FileNotFoundError(f"data directory {data} does not exist")
        read = load_cifar10_dataset if is_cifar10_dir(data) else load_idx_dataset
        source, (images, labels) = str(data), read(data, train)
    split = "training" if train else "test"
    if len(images) == 0:
        raise ValueError(f"{source}: the {split} split has no images")
    expected = MODELS[model].input_shape
    if image_shape(images) != expected:
        raise ImageShapeError(f"{source}: {MODELS[model].title} needs {describe_shape(expected)} images, the {split} "
                              f"images are {describe_shape(image_shape(images))}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"{source}: {split} labels must be in 0..{NUM_CLASSES - 1}, "
                         f"found {labels.min()}..{labels.max()}")
    return images, labels


def image_shape(images: np.ndarray) -> tuple[int, ...]:
    """The (C, H, W) of one image: (1, H, W) for uint8 digits (N, H, W), else images.shape[1:]."""
    return (1, *images.shape[1:]) if images.dtype == np.uint8 else images.shape[1:]


def describe_shape(shape: tuple[int, ...]) -> str:
    """'28x28' for one channel, '3x32x32' for more."""
    return "x".join(str(d) for d in (shape[1:] if shape[0] == 1 else shape))


def input_statistics(images: np.ndarray) -> tuple[float, float]:
    """Mean and std of all pixels: of uint8 `images` scaled to [0, 1], or of float images (already in [0, 1])."""
    if images.dtype == np.uint8:
        x = images / 255.0  # float64, so 3 million terms sum without rounding drift
        return float(x.mean()), float(x.std())
    # float64 sums in slices of 1,024 images: CIFAR-10's 150 million pixels would take 1.2 GB at once
    mean = float(images.mean(dtype=np.float64))
    squares = sum(float(np.square(images[i:i + 1024].astype(np.float64) - mean).sum())
                  for i in range(0, len(images), 1024))
    return mean, math.sqrt(squares / images.size)


def to_inputs(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Standardised float32 (N, C, H, W): ((pixel / 255) - mean) / std for uint8 (N, H, W), which get a
    channel, (pixel - mean) / std for float (N, C, H, W)."""
    x = images[:, None].astype(np.float32) / np.float32(255) if images.dtype == np.uint8 else images
    return (x - np.float32(mean)) / np.float32(std)


# ---------------------------------------------------------------- evaluation

class Evaluation(NamedTuple):
    loss: float               # mean cross-entropy
    accuracy: float           # fraction correct
    predictions: np.ndarray   # (N,) predicted classes


def evaluate(model: Module, inputs: np.ndarray, labels: np.ndarray, batch_size: int = EVAL_BATCH_SIZE) -> Evaluation:
    """Loss, accuracy and predictions of `model` (put in eval mode) on inputs (N, C, H, W), labels (N,)."""
    model.eval()
    total_loss, predictions = 0.0, []
    with no_grad(), tqdm(total=len(inputs), desc="test", unit="img", leave=False) as bar:
        for start in range(0, len(inputs), batch_size):
            x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
            logits = model(Tensor(x))
            total_loss += F.cross_entropy(logits, Tensor(y), reduction="sum").item()
            predictions.append(logits.detach().numpy().argmax(axis=1))
            bar.update(len(x))
    predictions = np.concatenate(predictions)
    return Evaluation(total_loss / len(labels), float(np.mean(predictions == labels)), predictions)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted class."""
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


# ---------------------------------------------------------------- training

@dataclass
class TrainConfig:
    """A run's hyperparameters. The learning rate falls from `lr` to 0 along a cosine over `epochs`
    (CosineAnnealingLR, stepped once per epoch). `lr` defaults by optimizer (Adam 2e-3, SGD 0.05);
    `momentum` is SGD's (default 0.9) and must stay None for Adam."""

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in DEFAULT_LR:
            raise ValueError(f"TrainConfig: optimizer must be one of {', '.join(DEFAULT_LR)}, got {self.optimizer!r}")
        if self.momentum is not None and self.optimizer != "sgd":
            raise ValueError(f"TrainConfig: momentum applies to the sgd optimizer, not {self.optimizer}")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        if self.optimizer == "sgd" and self.momentum is None:
            self.momentum = DEFAULT_SGD_MOMENTUM

    def describe(self) -> str:
        opt = f"sgd (momentum {self.momentum})" if self.optimizer == "sgd" else self.optimizer
        return (f"{opt}, lr {self.lr:g} (cosine to 0), batch size {self.batch_size}, {self.epochs} epochs, "
                f"seed {self.seed}")


def make_optimizer(config: TrainConfig, params: Iterable[Tensor]) -> Optimizer:
    if config.optimizer == "sgd":
        return SGD(params, lr=config.lr, momentum=config.momentum)
    return Adam(params, lr=config.lr)


@dataclass
class EpochMetrics:
    """What one epoch measured (the fields are explained in the module docstring)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    images_per_second: float
    lr: float | None = None

    def __str__(self) -> str:
        lr = "" if self.lr is None else f"  lr {self.lr:.3g}"
        return (f"epoch {self.epoch:3d}  train loss {self.train_loss:.4f} acc {self.train_accuracy:.4f}  "
                f"test loss {self.test_loss:.4f} acc {self.test_accuracy:.4f}  "
                f"{self.seconds:.1f} s  {self.images_per_second:,.0f} img/s{lr}")


def write_metrics(path: str | os.PathLike, history: list[EpochMetrics]) -> None:
    """Write `{"epochs": [metrics of each epoch, ...]}` as JSON, atomically (a reader never sees half a file)."""
    text = json.dumps({"epochs": [asdict(m) for m in history]}, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


class TrainingRun:
    """A model (`model`, a name in `models.MODELS`) with its optimizer, lr schedule and shuffling loader,
    and the metrics so far.

    `state_dict()` holds all of it plus the global RNG, so a run rebuilt with the same config and
    data and given `load_state_dict()` continues exactly as the original would have: 1 epoch, save,
    load, 1 epoch gives the same weights, bit for bit, as 2 epochs straight.

    Resumed with another number of `epochs`, the learning rate never jumps back up: the epochs left
    follow a new cosine from the learning rate of the last epoch trained down to 0. A finished run
    (its lr fell to nearly 0) given more epochs therefore fine-tunes at that small lr; restarting the
    schedule from `lr` would first undo much of what the last epochs refined.
    """

    def __init__(self, config: TrainConfig, train_images: np.ndarray, train_labels: np.ndarray,
                 model: str = "lenet5") -> None:
        self.config = config
        self.mean, self.std = input_statistics(train_images)
        manual_seed(config.seed)  # the model's init and the loader's shuffles draw from the global generator
        self.model = MODELS[model](NUM_CLASSES)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.scheduler = CosineAnnealingLR(self.optimizer, T_max=config.epochs)
        dataset = TensorDataset(self.inputs(train_images), train_labels)
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True)
        self.epoch = 0
        self.history: list[EpochMetrics] = []

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """Images normalised with this run's training statistics: float32 (N, C, H, W)."""
        return to_inputs(images, self.mean, self.std)

    def run_epoch(self, test_inputs: np.ndarray, test_labels: np.ndarray) -> EpochMetrics:
        """Train one epoch (with a progress bar), step the lr schedule, evaluate on the test split."""
        self.epoch += 1
        start = time.perf_counter()
        self.model.train()
        seen, correct, loss_sum = 0, 0, 0.0
        desc = f"epoch {self.epoch}/{self.config.epochs}"
        with tqdm(total=len(self.loader.dataset), desc=desc, unit="img", leave=False) as bar:
            for x, y in self.loader:
                logits = self.model(x)
                loss = F.cross_entropy(logits, y)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                n = len(y)
                seen += n
                loss_sum += loss.item() * n
                correct += int((logits.detach().numpy().argmax(axis=1) == y.numpy()).sum())
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
                bar.update(n)
        train_seconds = time.perf_counter() - start
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        test = evaluate(self.model, test_inputs, test_labels)
        metrics = EpochMetrics(self.epoch, loss_sum / seen, correct / seen, test.loss, test.accuracy,
                               time.perf_counter() - start, seen / train_seconds, lr)
        self.history.append(metrics)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run, as `save_checkpoint` stores it."""
        return {
            "model_name": type(self.model).__name__,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "rng": get_generator().bit_generator.state,
            "loader": self.loader.state_dict(),
            "config": asdict(self.config),
            "normalization": {"mean": self.mean, "std": self.std},
            "history": [asdict(m) for m in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()` output. Raises CheckpointError if it is not of a run like this one."""
        load_model_state(self.model, state)
        saved = normalization_from_checkpoint(state)
        if saved != (self.mean, self.std):
            raise CheckpointError(f"the checkpoint was trained on other images (pixel mean/std {saved[0]:.6f}/"
                                  f"{saved[1]:.6f}, these have {self.mean:.6f}/{self.std:.6f})")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.loader.load_state_dict(state["loader"])
            get_generator().bit_generator.state = state["rng"]
            self.epoch = int(state["epoch"])
            self.history = [EpochMetrics(**m) for m in state["history"]]
            if state["config"]["epochs"] == self.config.epochs:
                self.scheduler.load_state_dict(state["scheduler"])
            else:
                self._reschedule(state["scheduler"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint does not fit this training run ({type(e).__name__}: {e})") from None

    def _reschedule(self, saved: dict[str, Any]) -> None:
        """A new cosine over the epochs left, from the lr of the last epoch trained to 0. That lr is the saved
        cosine's (`saved`, its scheduler's state dict) one epoch before the one it had reached."""
        t_max, reached = saved["T_max"], saved["last_epoch"]
        for group, base in zip(self.optimizer.param_groups, saved["base_lrs"]):
            group["lr"] = group["initial_lr"] = base * (1 + math.cos(math.pi * (reached - 1) / t_max)) / 2
        self.scheduler = CosineAnnealingLR(self.optimizer, T_max=max(1, self.config.epochs - self.epoch))


def load_model_state(model: Module, state: dict[str, Any]) -> None:
    """Copy a checkpoint's weights into `model`. Raises CheckpointError if they are another model's."""
    name = state.get("model_name")
    if name != type(model).__name__ or "model" not in state:
        raise CheckpointError(f"the checkpoint holds a {name!r} model, not {type(model).__name__}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:  # missing or unexpected weights, or other shapes
        raise CheckpointError(str(e)) from None


def checkpoint_model(state: dict[str, Any]) -> str:
    """The name in `models.MODELS` of the checkpoint's model. Raises CheckpointError for another model."""
    names = {cls.__name__: name for name, cls in MODELS.items()}
    saved = state.get("model_name")
    if not isinstance(saved, str) or saved not in names:
        classes = list(names)
        raise CheckpointError(f"the checkpoint holds a {saved!r} model, not {', '.join(classes[:-1])} or {classes[-1]}")
    return names[saved]


def normalization_from_checkpoint(state: dict[str, Any]) -> tuple[float, float]:
    """The (mean, std) of the pixels the checkpoint's model was trained on."""
    try:
        return float(state["normalization"]["mean"]), float(state["normalization"]["std"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError("the checkpoint has no input normalization (mean, std)") from None
