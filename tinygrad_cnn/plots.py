"""Pictures of a training run, drawn with matplotlib (the optional `plots` extra) into PNG files.

    save_plots(run.model, run.history, test_inputs, test_labels, predictions, "out/plots")

writes
    loss_curves.png           train and test loss per epoch
    accuracy_curves.png       train and test accuracy per epoch
    conv1_filters.png         the first conv layer's learned filters
    feature_maps_conv1.png    the output of each conv layer for one test image
    feature_maps_conv2.png
    confusion_matrix.png      true class against predicted class on the test split

Classes are named by `class_names` (Fashion-MNIST's 'T-shirt/top', 'Trouser'...; by default the
digits '0'..'9').

Figures are drawn on matplotlib's Agg canvas directly, without pyplot, so nothing here opens a
window or changes the backend of a session that imports it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .autograd import no_grad
from .nn import Conv2d, Module
from .tensor import Tensor
from .train import NUM_CLASSES, EpochMetrics, confusion_matrix

INSTALL_HINT = "pip install 'tinygrad_cnn[plots]'"


def require_matplotlib() -> None:
    """Raise ImportError with the install command if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from None


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _class_names(class_names: Sequence[str] | None, op: str) -> list[str]:
    """The name of each class: the given ones, or the digits '0'..'9'."""
    if class_names is None:
        return [str(c) for c in range(NUM_CLASSES)]
    if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
        raise TypeError(f"{op}: class_names must be a sequence of strings, one per class, got {class_names!r}")
    if len(class_names) == 0:
        raise ValueError(f"{op}: class_names is empty")
    return list(class_names)


def _check_classes(values: np.ndarray, names: list[str], what: str, op: str) -> None:
    outside = values[(values < 0) | (values >= len(names))]
    if outside.size:
        raise ValueError(f"{op}: {what} hold class {int(outside.flat[0])}, but class_names names "
                         f"{len(names)} classes (0..{len(names) - 1})")


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    return path


def plot_curves(history: Sequence[EpochMetrics], directory: Path) -> list[Path]:
    """loss_curves.png and accuracy_curves.png: train and test values per epoch."""
    from matplotlib.ticker import MaxNLocator

    epochs = [m.epoch for m in history]
    paths = []
    for name, key, ylabel in (("loss", "loss", "cross-entropy loss"), ("accuracy", "accuracy", "accuracy")):
        fig = _figure(6, 4)
        ax = fig.add_subplot()
        for split, style in (("train", "o-"), ("test", "s-")):
            ax.plot(epochs, [getattr(m, f"{split}_{key}") for m in history], style, markersize=3, label=split)
        ax.set(xlabel="epoch", ylabel=ylabel, title=f"{ylabel} per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key == "loss":
            ax.set_yscale("log")  # the loss falls over orders of magnitude; a log scale keeps the tail visible
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(_save(fig, directory / f"{name}_curves.png"))
    return paths


def plot_filters(weight: np.ndarray, path: Path, title: str) -> Path:
    """A grid of a conv layer's filters, weight (O, C, KH, KW): one row per input channel,
    one column per filter, on one colour scale centred at 0 (red positive, blue negative)."""
    out_channels, in_channels = weight.shape[:2]
    limit = float(np.abs(weight).max()) or 1.0
    fig = _figure(1.2 * out_channels + 1, 1.2 * in_channels + 0.6)
    axes = fig.subplots(in_channels, out_channels, squeeze=False)
    for c in range(in_channels):
        for o in range(out_channels):
            image = axes[c, o].imshow(weight[o, c], cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[c, o].set_axis_off()
            if c == 0:
                axes[c, o].set_title(f"filter {o}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.suptitle(title)
    return _save(fig, path)


def conv_feature_maps(model: Module, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The output of every Conv2d layer of `model` for one image (C, H, W), in the order they run:
    [(layer name, (O, OH, OW)), ...]. The model is put in eval mode."""
    maps: list[tuple[str, np.ndarray]] = []

    def recorder(name: str):
        def hook(module: Module, inputs: tuple, output: Tensor) -> None:
            maps.append((name, output.detach().numpy()[0]))
        return hook

    handles = [m.register_forward_hook(recorder(name)) for name, m in model.named_modules() if isinstance(m, Conv2d)]
    try:
        model.eval()
        with no_grad():
            model(Tensor(image[None]))
    finally:
        for handle in handles:
            handle.remove()
    return maps


def plot_feature_maps(model: Module, image: np.ndarray, label: int, directory: Path,
                      class_names: Sequence[str] | None = None, shared_scale: bool = True) -> list[Path]:
    """feature_maps_<layer>.png for each conv layer: the input image (titled with its class name), then
    each channel of the layer's output.

    With `shared_scale` (the default) all maps of a layer use one colour scale, shown by a colour bar,
    so that strong and weak channels can be told apart (a channel that barely responds stays flat
    instead of being stretched to full contrast); otherwise each map is stretched to its own range.
    The title says which."""
    names = _class_names(class_names, "plot_feature_maps")
    _check_classes(np.asarray(label), names, "label", "plot_feature_maps")
    paths = []
    for name, maps in conv_feature_maps(model, image):
        columns = 8
        rows = 1 + -(-len(maps) // columns)
        fig = _figure(1.3 * columns, 1.4 * rows)
        axes = fig.subplots(rows, columns, squeeze=False)
        for ax in axes.flat:
            ax.set_axis_off()
        axes[0, 0].imshow(image[0], cmap="gray")
        axes[0, 0].set_title(f"input ({names[label]})", fontsize=8)
        limits = {"vmin": float(maps.min()), "vmax": float(maps.max())} if shared_scale else {}
        map_axes = [axes[1 + i // columns, i % columns] for i in range(len(maps))]
        for i, (ax, channel) in enumerate(zip(map_axes, maps)):
            shown = ax.imshow(channel, cmap="viridis", **limits)
            ax.set_title(f"channel {i}", fontsize=8)
        if shared_scale:
            fig.colorbar(shown, ax=map_axes)
        scale = "one colour scale for all maps" if shared_scale else "each map on its own colour scale"
        fig.suptitle(f"{name} output for one test image: {maps.shape[0]} maps of {maps.shape[1]}x{maps.shape[2]}, "
                     f"{scale}")
        paths.append(_save(fig, directory / f"feature_maps_{name.replace('.', '_')}.png"))
    return paths


def plot_confusion_matrix(labels: np.ndarray, predictions: np.ndarray, path: Path,
                          class_names: Sequence[str] | None = None) -> Path:
    """Counts of (true class, predicted class) pairs, each cell annotated; the diagonal is correct.
    The axes are labelled with `class_names`, one per class (default the digits '0'..'9')."""
    names = _class_names(class_names, "plot_confusion_matrix")
    for what, values in (("labels", labels), ("predictions", predictions)):
        _check_classes(np.asarray(values), names, what, "plot_confusion_matrix")
    matrix = confusion_matrix(labels, predictions, len(names))
    fig = _figure(6, 5.4)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    classes = range(len(matrix))
    ax.set(xticks=classes, yticks=classes, xlabel="predicted class", ylabel="true class",
           title=f"confusion matrix, test accuracy {np.trace(matrix) / matrix.sum():.4f}")
    ax.set_yticklabels(names)
    long = max(map(len, names)) > 2  # words ('Ankle boot') would overlap side by side: slant them
    ax.set_xticklabels(names, rotation=45 if long else 0, ha="right" if long else "center")
    for t in classes:
        for p in classes:
            if matrix[t, p]:
                dark = matrix[t, p] > matrix.max() / 2
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _save(fig, path)


def save_plots(model: Module, history: Sequence[EpochMetrics], test_inputs: np.ndarray, test_labels: np.ndarray,
               predictions: np.ndarray, directory: str | os.PathLike,
               class_names: Sequence[str] | None = None) -> list[Path]:
    """Write every plot of the module docstring into `directory` (created if needed); return their paths.

    Args:
        model: the trained model; its first Conv2d's filters are drawn, and its conv outputs for test image 0.
        history: the metrics of each epoch so far.
        test_inputs: (N, 1, 28, 28) normalised test images; test_labels: (N,); predictions: (N,) the model's.
        class_names: the name of each class, for the confusion matrix and the feature maps' input
            (default the digits '0'..'9').
    """
    require_matplotlib()
    class_names = _class_names(class_names, "save_plots")  # checked before any file is written
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name, first_conv = next((n, m) for n, m in model.named_modules() if isinstance(m, Conv2d))
    paths = plot_curves(history, directory)
    paths.append(plot_filters(first_conv.weight.detach().numpy(), directory / f"{name}_filters.png",
                              f"{name} filters, learned"))
    paths += plot_feature_maps(model, test_inputs[0], int(test_labels[0]), directory, class_names)
    paths.append(plot_confusion_matrix(test_labels, predictions, directory / "confusion_matrix.png", class_names))
    return paths
