"""The training plots: classes named on the confusion matrix and the feature maps, the feature
maps' colour scale (shared or not, as their title says), and bad class names. The figures are
caught as `plots` saves them and read back from matplotlib's objects."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import Tensor, plots  # noqa: E402
from tinygrad_cnn.models import LeNet5  # noqa: E402
from tinygrad_cnn.train import EpochMetrics  # noqa: E402

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture
def figures(monkeypatch) -> dict[str, object]:
    """{file name: Figure} of every figure saved while the test runs (nothing is written)."""
    saved: dict[str, object] = {}

    def keep(fig, path: Path) -> Path:
        saved[Path(path).name] = fig
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def tick_texts(labels) -> list[str]:
    return [label.get_text() for label in labels]


def cell_counts(ax) -> dict[tuple[int, int], int]:
    """{(true, predicted): count} from the numbers written in the cells."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}


def test_confusion_matrix_names_the_classes(figures):
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    plots.plot_confusion_matrix(labels, predictions, Path("cm.png"), class_names=["cat", "dog", "bird"])
    ax = figures["cm.png"].axes[0]
    assert tick_texts(ax.get_xticklabels()) == tick_texts(ax.get_yticklabels()) == ["cat", "dog", "bird"]
    assert cell_counts(ax) == {(0, 0): 1, (0, 1): 1, (1, 1): 1, (2, 2): 2, (2, 0): 1}  # counted by hand
    assert ax.get_title() == "confusion matrix, test accuracy 0.6667"  # 4 of 6 on the diagonal


def test_confusion_matrix_defaults_to_digits_and_slants_long_names(figures):
    labels = np.arange(10)
    plots.plot_confusion_matrix(labels, labels, Path("digits.png"))
    plots.plot_confusion_matrix(labels, labels, Path("fashion.png"), class_names=FASHION)
    digits, fashion = figures["digits.png"].axes[0], figures["fashion.png"].axes[0]
    assert tick_texts(digits.get_xticklabels()) == [str(c) for c in range(10)]
    assert tick_texts(fashion.get_xticklabels()) == tick_texts(fashion.get_yticklabels()) == FASHION
    assert {t.get_rotation() for t in digits.get_xticklabels()} == {0.0}
    assert {t.get_rotation() for t in fashion.get_xticklabels()} == {45.0}  # words side by side would overlap


@pytest.mark.parametrize("names, error, words", [
    (["a", "b"], ValueError, r"plot_confusion_matrix: labels hold class 2, but class_names names 2 classes"),
    ("abc", TypeError, "class_names must be a sequence of strings"),
    ([0, 1, 2], TypeError, "class_names must be a sequence of strings"),
    ([], ValueError, "class_names is empty"),
])
def test_bad_class_names_are_clear_errors(figures, names, error, words):
    with pytest.raises(error, match=words):
        plots.plot_confusion_matrix(np.array([0, 2]), np.array([0, 1]), Path("cm.png"), class_names=names)
    assert not figures


def lenet_and_image() -> tuple[LeNet5, np.ndarray]:
    tg.manual_seed(0)
    return LeNet5(), np.random.default_rng(0).standard_normal((1, 28, 28)).astype(np.float32)


def map_images(fig) -> list:
    """The image of each channel's panel (titled 'channel i'), in channel order."""
    return [ax.images[0] for ax in fig.axes if ax.get_title().startswith("channel ")]


def test_feature_maps_share_one_colour_scale_and_say_so(figures):
    model, image = lenet_and_image()
    plots.plot_feature_maps(model, image, 9, Path("."), class_names=FASHION)
    conv1 = model.conv1(Tensor(image[None])).detach().numpy()[0]  # the maps, computed apart from the plot
    fig = figures["feature_maps_conv1.png"]
    assert fig.get_suptitle() == "conv1 output for one test image: 6 maps of 28x28, one colour scale for all maps"
    shown = map_images(fig)
    assert len(shown) == 6
    for channel, im in zip(conv1, shown):
        np.testing.assert_allclose(im.get_array(), channel, rtol=1e-6)
        np.testing.assert_allclose(im.get_clim(), (conv1.min(), conv1.max()), rtol=1e-6)
    assert len(fig.axes) == 8 + 8 + 1  # 2 rows of 8 panels and the shared scale's colour bar
    assert [ax.get_title() for ax in fig.axes if ax.get_title().startswith("input")] == ["input (Ankle boot)"]
    assert "one colour scale for all maps" in figures["feature_maps_conv2.png"].get_suptitle()


def test_feature_maps_each_on_its_own_scale(figures):
    model, image = lenet_and_image()
    plots.plot_feature_maps(model, image, 3, Path("."), shared_scale=False)
    conv1 = model.conv1(Tensor(image[None])).detach().numpy()[0]
    fig = figures["feature_maps_conv1.png"]
    assert fig.get_suptitle().endswith(", each map on its own colour scale")
    for channel, im in zip(conv1, map_images(fig), strict=True):
        np.testing.assert_allclose(im.get_clim(), (channel.min(), channel.max()), rtol=1e-6)
    assert len(fig.axes) == 8 + 8  # no colour bar: there is no one scale to show
    assert [ax.get_title() for ax in fig.axes if ax.get_title().startswith("input")] == ["input (3)"]


def test_save_plots_passes_the_class_names_on(figures, tmp_path):
    model, image = lenet_and_image()
    history = [EpochMetrics(1, 2.0, 0.3, 1.9, 0.35, 1.0, 100.0), EpochMetrics(2, 1.0, 0.6, 1.1, 0.55, 1.0, 100.0)]
    labels, predictions = np.array([7, 1]), np.array([7, 2])
    plots.save_plots(model, history, np.stack([image, image]), labels, predictions, tmp_path, class_names=FASHION)
    assert tick_texts(figures["confusion_matrix.png"].axes[0].get_yticklabels()) == FASHION
    assert "input (Sneaker)" in [ax.get_title() for ax in figures["feature_maps_conv1.png"].axes]
    with pytest.raises(ValueError, match="save_plots: class_names is empty"):
        plots.save_plots(model, history, image[None], labels, predictions, tmp_path / "none", class_names=[])
    assert not (tmp_path / "none").exists()  # checked before anything is written
