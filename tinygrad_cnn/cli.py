"""The `tinygrad-cnn` command (also `python -m tinygrad_cnn`): train LeNet-5 on digits (or VGG or ResNet-20
on CIFAR-10), evaluate it, draw its graph, export it.

    tinygrad-cnn train                      # 20 epochs on the 4,000 embedded MNIST digits, offline: out/lenet5/
    tinygrad-cnn train --data ~/mnist       # MNIST-style IDX files (train-images-idx3-ubyte, ...): out/lenet5-mnist/
    tinygrad-cnn train --resume --epochs 30 # continue the run in out/lenet5/
    tinygrad-cnn evaluate                   # the model in out/lenet5/ on the data it was trained on
    tinygrad-cnn graph --expanded           # lenet5-graph.svg: every primitive op in its layer's frame
    tinygrad-cnn graph --html               # lenet5-graph.html: the explorer, to step through the backward pass
    tinygrad-cnn graph --model resnet20 --depth 2 --fold   # ResNet-20's blocks as nodes, identical ones as one x3
    tinygrad-cnn train --model resnet20 --data ~/cifar-10-batches-py   # CIFAR-10's python batch files
    tinygrad-cnn export --output lenet5.safetensors   # the weights of out/lenet5/'s model, for PyTorch
    tinygrad-cnn export --format onnx                 # out/lenet5/model.onnx, for ONNX Runtime

`--model` (lenet5, vgg or resnet20; default lenet5, or with --resume and `evaluate` the checkpoint's) must
fit the data: LeNet-5 takes 1x28x28 digits, VGG and ResNet-20 3x32x32 CIFAR-10 images.

A run's outputs stay together in one directory, `out/MODEL` for the embedded digits and `out/MODEL-DATA` for a
data directory DATA (--out DIR chooses another): `checkpoint.npz` and `metrics.json`, rewritten after every
epoch, `graph.svg` (the graph of one forward pass and its loss) before training, `plots/` after it. Each can
be sent elsewhere with its own option. Every location is checked before training starts. `train` will not
replace the checkpoint of another run (other model, hyperparameters or data) unless given --force; the
checkpoint records its data, which `evaluate` uses unless given --data. When matplotlib or Graphviz's `dot`
program is missing, the default plots are skipped and the graph is written as DOT text (graph.gv), with a
note; asked for by name, they are an error.

Each subcommand is two functions: `add_<name>_parser(subparsers)` declares its arguments and sets
`run=run_<name>`; `run_<name>(args)` does the work and returns the exit code. SUBCOMMANDS lists the
first. Problems the user can fix (a missing file, corrupt data, a missing extra) end with one
`error: ...` line and exit code 1; arguments argparse rejects, with its usage message and code 2;
Ctrl-C, with one line saying what was saved and code 130.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__
from . import functional as F
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .models import MODELS
from .nn import Module
from .onnx import export as export_onnx
from .plots import require_matplotlib, save_plots
from .safetensors_io import save_safetensors
from .tensor import Tensor
from .train import (DEFAULT_LR, DEFAULT_SGD_MOMENTUM, DataSource, ImageShapeError, TrainConfig, TrainingRun,
                    checkpoint_model, describe_shape, evaluate, input_statistics, load_model_state, load_split,
                    normalization_from_checkpoint, to_inputs, write_metrics)
from .viz import FORMATS as GRAPH_FORMATS
from .viz import draw_graph, explore, render

OUT = Path("out")
DEFAULT_MODEL = "lenet5"
# The files of a run, in its directory
CHECKPOINT_FILE, METRICS_FILE, PLOTS_DIR, GRAPH_FILE = "checkpoint.npz", "metrics.json", "plots", "graph.svg"
EXPLORER_FILE = "graph.html"  # train --explore
# a graph is drawn in the format its path's extension names; .html is the explorer page (viz.explore)
GRAPH_SUFFIXES = (*GRAPH_FORMATS, ".html")
CONFIG_OPTIONS = [f.name for f in dataclasses.fields(TrainConfig)]  # each has an option: --batch-size for batch_size


def default_run_dir(model: str, data: DataSource) -> Path:
    """out/MODEL for the embedded digits, out/MODEL-DATA for a data directory named DATA."""
    return OUT / (model if data.path is None else f"{model}-{data.name}")


def default_checkpoint(model: str | None, data: DataSource | None) -> Path:
    """The checkpoint that `train --model MODEL --data DATA` writes."""
    return default_run_dir(model or DEFAULT_MODEL, data or DataSource()) / CHECKPOINT_FILE


class CommandError(Exception):
    """A problem the user can fix: printed as one `error: ...` line, exit code 1."""


class UsageError(Exception):
    """Arguments that argparse accepts one by one but that do not go together: usage message, exit code 2."""


# ---------------------------------------------------------------- argument types

def _checked(convert: Callable[[str], Any], ok: Callable[[Any], bool], description: str) -> Callable[[str], Any]:
    """An argparse `type`: `convert(text)` if it succeeds and passes `ok`, else a usage error."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}")
        return value
    return parse


positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _checked(int, lambda v: v >= 0, "a non-negative integer")
positive_float = _checked(float, lambda v: 0 < v < math.inf, "a positive number")
momentum = _checked(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
graph_path = _checked(Path, lambda p: p.suffix.lower() in GRAPH_SUFFIXES,
                      f"a path ending in {', '.join(GRAPH_SUFFIXES)}")


def _add_data_argument(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument("--data", metavar="DIR",
                        help="a directory of CIFAR-10 python batch files (data_batch_1..5, test_batch, batches.meta "
                             "for the class names; for --model vgg or resnet20) or of MNIST-style IDX files "
                             "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-..., optionally .gz; the plots "
                             "name Fashion-MNIST's classes when the path contains 'fashion', KMNIST's for 'kmnist', "
                             f"else digits); default: {default_help}")


def _add_model_argument(parser: argparse.ArgumentParser, default_help: str) -> None:
    fits = "; ".join(f"{name} takes {describe_shape(cls.input_shape)} images" for name, cls in MODELS.items())
    parser.add_argument("--model", choices=list(MODELS), help=f"{fits} (default {default_help})")


# ---------------------------------------------------------------- train

def add_train_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (LeNet-5 by default) and save it, its metrics, graph and plots",
        description="Train a model with a cosine learning-rate schedule, evaluating on the test split after "
                    "every epoch (the test split is never trained or selected on).")
    _add_model_argument(p, f"{DEFAULT_MODEL}, or with --resume the checkpoint's")
    _add_data_argument(p, "the 4,000 / 1,000 train / test split of real MNIST digits embedded in the package, "
                          "or with --resume the checkpoint's data")
    d = TrainConfig()
    hp = p.add_argument_group("hyperparameters (with --resume, the checkpoint's unless given)")
    hp.add_argument("--epochs", type=positive_int, metavar="N", help=f"total number of epochs (default {d.epochs})")
    hp.add_argument("--batch-size", type=positive_int, metavar="N", help=f"images per batch (default {d.batch_size})")
    hp.add_argument("--optimizer", choices=list(DEFAULT_LR), help=f"(default {d.optimizer})")
    hp.add_argument("--lr", type=positive_float, metavar="LR",
                    help="initial learning rate, decayed to 0 along a cosine over the epochs (default "
                         + ", ".join(f"{lr:g} for {name}" for name, lr in DEFAULT_LR.items()) + ")")
    hp.add_argument("--momentum", type=momentum, metavar="M", help=f"SGD's momentum (default {DEFAULT_SGD_MOMENTUM})")
    hp.add_argument("--seed", type=non_negative_int, metavar="N",
                    help=f"seed of the weights' initialisation and the shuffling (default {d.seed})")
    out = p.add_argument_group(
        "outputs", "A run's files stay together in one directory, checked before training starts. train will not "
                   "replace the checkpoint of another run (other model, hyperparameters or data) there without "
                   "--force.")
    out.add_argument("--out", type=Path, metavar="DIR",
                     help="the run's directory (default out/MODEL for the embedded digits, out/MODEL-DATA for a "
                          "--data directory named DATA, e.g. out/lenet5, out/lenet5-fashion-mnist)")
    out.add_argument("--checkpoint", type=Path, metavar="PATH",
                     help=f"the .npz checkpoint with the model, optimizer, RNG state and the data's description, "
                          f"rewritten after every epoch (default DIR/{CHECKPOINT_FILE}; when given, the other "
                          "files default to its directory)")
    out.add_argument("--resume", action="store_true",
                     help="continue the run saved in the checkpoint, on its data unless --data is given. With a "
                          "larger --epochs the learning rate does not jump back up: the epochs added follow a new "
                          "cosine from the last epoch's lr to 0, so a finished run (lr near 0) fine-tunes at that "
                          "small lr; train a new run for a longer schedule from the start")
    out.add_argument("--force", action="store_true",
                     help="replace the checkpoint of another run at the checkpoint's path (and its files)")
    out.add_argument("--metrics", type=Path, metavar="PATH",
                     help=f"per-epoch metrics as JSON, rewritten after every epoch (default DIR/{METRICS_FILE})")
    out.add_argument("--plots", type=Path, metavar="DIR",
                     help=f"directory for the PNG plots (default DIR/{PLOTS_DIR}; needs matplotlib)")
    out.add_argument("--graph", type=graph_path, metavar="PATH",
                     help=f"the graph of one forward pass and its loss: {', '.join(GRAPH_SUFFIXES)} "
                          f"(default DIR/{GRAPH_FILE}; .svg, .png and .pdf need Graphviz's dot program; .html is "
                          "the explorer page)")
    out.add_argument("--explore", action="store_true",
                     help=f"also write DIR/{EXPLORER_FILE}, the explorer: one HTML page to click through the graph "
                          "of one training step and step through its backward pass (see docs/visualization.md)")
    p.set_defaults(run=run_train, parser=p)


def run_train(args: argparse.Namespace) -> int:
    given_data = None if args.data is None else DataSource.of(args.data)
    checkpoint = args.checkpoint or (args.out / CHECKPOINT_FILE if args.out else
                                     default_checkpoint(args.model, given_data))
    saved = _load_checkpoint(checkpoint, args.checkpoint is not None) if args.resume else None
    config = _train_config(args, saved, checkpoint)
    model = _train_model(args.model, saved, checkpoint)
    data = given_data or _recorded_data(saved, checkpoint) or DataSource()
    train_images, train_labels = _read_data(data, True, model)
    test_images, test_labels = _read_data(data, False, model)

    run_dir = args.out or checkpoint.parent
    metrics = args.metrics or run_dir / METRICS_FILE
    plots_dir = _output_path(args.plots, run_dir / PLOTS_DIR, _plots_problem)
    graph = _output_path(args.graph, run_dir / GRAPH_FILE, lambda path: _graph_problem(path, "--graph"),
                         fallback=run_dir / Path(GRAPH_FILE).with_suffix(".gv"))  # without `dot`: DOT, to render later
    explorer = run_dir / EXPLORER_FILE if args.explore else None
    run = TrainingRun(config, train_images, train_labels, model)
    if saved is None:
        _refuse_to_replace_another_run(checkpoint, run, data, args.force)
    outputs = [(checkpoint, "after every epoch"), (metrics, "after every epoch"), (graph, "now"), (explorer, "now"),
               (plots_dir, "at the end")]
    for path, _ in outputs:
        if path is not None:
            _check_writable(path, directory=path == plots_dir)

    print(f"{MODELS[model].title} on {data}: {len(train_images):,} training and {len(test_images):,} test images; "
          f"{config.describe()}")
    if saved is not None:
        _resume(run, saved, checkpoint)
    print("writing " + _listing([(path, when) for path, when in outputs if path is not None], run_dir))
    test_inputs = run.inputs(test_images)
    batch = slice(0, config.batch_size)
    graph_inputs = run.inputs(train_images[batch]) if graph is not None or explorer is not None else None
    for path in (graph, explorer):  # before training, so that a problem with it shows at once
        if path is not None:
            save_graph(run.model, graph_inputs, train_labels[batch], path)

    first_epoch = saved_epoch = run.epoch
    stage = "training"
    try:
        while run.epoch < config.epochs:
            print(run.run_epoch(test_inputs, test_labels), flush=True)
            save_checkpoint(checkpoint, {**run.state_dict(), "data": data.state_dict()})
            saved_epoch = run.epoch
            write_metrics(metrics, run.history)
        if plots_dir is not None:
            stage = "plots"
            predictions = evaluate(run.model, test_inputs, test_labels).predictions
            save_plots(run.model, run.history, test_inputs, test_labels, predictions, plots_dir,
                       class_names=data.classes)
    except KeyboardInterrupt:
        if stage == "plots":
            message = f"while drawing the plots: the checkpoint and metrics are saved; the plots in {plots_dir} " \
                      "may be incomplete (--resume draws them again)"
        else:
            message = f"during epoch {saved_epoch + 1}: " + (f"--resume continues after epoch {saved_epoch}, saved "
                                                            f"in {checkpoint}" if saved_epoch else "no epoch was saved")
        print(f"\ninterrupted {message}", file=sys.stderr)
        return 130
    written = ([checkpoint, metrics] if run.epoch > first_epoch else []) + [graph, explorer, plots_dir]
    print("wrote " + _listing([(path, "") for path in written if path is not None], run_dir))
    print(_accuracy_line(run.history[-1].test_accuracy, len(test_labels)))
    return 0


def _listing(paths: list[tuple[Path, str]], run_dir: Path) -> str:
    """'out/lenet5/: checkpoint.npz (after every epoch), plots/ (at the end)': the files in `run_dir` by name,
    the others by path, each followed by `when` (if not empty)."""
    def name(path: Path) -> str:
        return (path.name if path.parent == run_dir else str(path)) + ("/" if path.is_dir() else "")
    entries = ", ".join(name(path) + (f" ({when})" if when else "") for path, when in paths)
    return f"{run_dir}/: {entries}"


def _recorded_data(saved: dict[str, Any] | None, checkpoint: Path) -> DataSource | None:
    """The data a resumed run was trained on, as its checkpoint records it; None when not resuming or for
    checkpoints of older versions, which record none."""
    if saved is None:
        return None
    try:
        data = DataSource.from_checkpoint(saved)
    except CheckpointError as e:
        raise CommandError(f"{checkpoint}: {e}") from None
    if data is not None and data.path is not None and not Path(data.path).is_dir():
        raise CommandError(f"{checkpoint} was trained on {data.path}, which is not there any more: give its new "
                           "place with --data DIR")
    return data


def _refuse_to_replace_another_run(checkpoint: Path, run: TrainingRun, data: DataSource, force: bool) -> None:
    """A CommandError if `checkpoint` holds a run other than `run` (another model, config or training images),
    unless `force`. Training the same run again replaces it, with a note."""
    if not checkpoint.exists():
        return
    if force:
        print(f"note: replacing {checkpoint} (--force)", file=sys.stderr)
        return
    try:
        other = load_checkpoint(checkpoint)
        same = (other.get("model_name") == type(run.model).__name__
                and other.get("config") == dataclasses.asdict(run.config)
                and normalization_from_checkpoint(other) == (run.mean, run.std))
    except (CheckpointError, OSError) as e:
        raise CommandError(f"{checkpoint} exists but is not a readable checkpoint ({e}): replace it with --force, "
                           "or give this run another place with --out DIR") from None
    if same:
        print(f"note: replacing {checkpoint}, a run with the same model, settings and data", file=sys.stderr)
        return
    raise CommandError(f"{checkpoint} holds another run ({_describe_run(other)}); this one, on {data}, would "
                       "replace it: give this run another place with --out DIR, continue that one with --resume, "
                       "or replace it with --force")


def _describe_run(state: dict[str, Any]) -> str:
    """'LeNet-5, adam, lr 0.002 (cosine to 0), ..., 20 epochs, seed 0; 20 epochs done, test accuracy 0.9850'."""
    try:
        what = f"{MODELS[checkpoint_model(state)].title}, {TrainConfig(**state['config']).describe()}"
        done = f"{state['epoch']} epochs done, test accuracy {state['history'][-1]['test_accuracy']:.4f}"
        recorded = DataSource.from_checkpoint(state)
        return f"{what}; {done}" + ("" if recorded is None else f"; on {recorded}")
    except (CheckpointError, KeyError, IndexError, TypeError, ValueError):
        return "one this tinygrad_cnn cannot describe"


def _check_writable(path: Path, directory: bool = False) -> None:
    """Fail before training, not after it, if `path` (a file, or with `directory` a directory) cannot be
    written: create the directory it goes in, and a temporary file there."""
    folder = path if directory else path.parent
    if not directory and path.is_dir():
        raise CommandError(f"cannot write {path}: it is a directory; give the path of a file")
    in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        raise CommandError(f"cannot write {path}: {in_the_way} is a file, not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        where = f" ({e.filename})" if e.filename not in (None, str(folder)) else ""
        raise CommandError(f"cannot write {path}: {e.strerror or e}{where}") from None


def _resume(run: TrainingRun, saved: dict[str, Any], checkpoint: Path) -> None:
    try:
        run.load_state_dict(saved)
    except CheckpointError as e:
        raise CommandError(f"cannot resume from {checkpoint}: {e}") from None
    if run.epoch > run.config.epochs:
        raise CommandError(f"{checkpoint} has trained {run.epoch} epochs, more than --epochs {run.config.epochs}")
    saved_epochs = saved["config"]["epochs"]
    if run.config.epochs == saved_epochs:
        print(f"resuming {checkpoint} after epoch {run.epoch} of {saved_epochs}")
    elif run.epoch < run.config.epochs:
        print(f"resuming {checkpoint} after epoch {run.epoch} of {saved_epochs}, now of {run.config.epochs}: the lr "
              f"goes from the last epoch's, {run.optimizer.param_groups[0]['lr']:.3g}, along a new cosine to 0")
    else:
        print(f"resuming {checkpoint} after epoch {run.epoch}: nothing left to train")


def _train_model(given: str | None, saved: dict[str, Any] | None, checkpoint: Path) -> str:
    """The model to train: --model, else the checkpoint's when resuming, else the default."""
    if saved is None:
        return given or DEFAULT_MODEL
    try:
        model = checkpoint_model(saved)
    except CheckpointError as e:
        raise CommandError(f"cannot resume from {checkpoint}: {e}") from None
    if given is not None and given != model:
        raise CommandError(f"--resume continues the checkpoint's run, but --model {given} (the checkpoint's run has "
                           f"{model}): leave it out, or start a new run without --resume")
    return model


def _train_config(args: argparse.Namespace, saved: dict[str, Any] | None, checkpoint: Path) -> TrainConfig:
    """The config from the options given, and for the others the checkpoint's (when resuming) or the defaults."""
    given = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k) is not None}
    if saved is not None:
        saved_config = saved.get("config")
        if not isinstance(saved_config, dict):
            raise CommandError(f"{checkpoint}: the checkpoint has no training config to resume")
        conflicts = [f"--{k.replace('_', '-')} {v} (the checkpoint's run has {saved_config.get(k)})"
                     for k, v in given.items() if k != "epochs" and v != saved_config.get(k)]
        if conflicts:
            raise CommandError("--resume continues the checkpoint's run, but " + "; ".join(conflicts)
                               + ": leave these out, or start a new run without --resume")
        given = {**{k: saved_config[k] for k in CONFIG_OPTIONS if k in saved_config}, **given}
    if args.momentum is not None and given.get("optimizer", TrainConfig.optimizer) != "sgd":
        raise UsageError("--momentum applies to --optimizer sgd only")
    try:
        return TrainConfig(**given)
    except (TypeError, ValueError) as e:  # only a checkpoint's config can get here: argparse checked the options
        raise CommandError(f"{checkpoint}: bad training config in the checkpoint ({e})") from None


def _output_path(given: Path | None, default: Path, problem: Callable[[Path], str | None],
                 fallback: Path | None = None) -> Path | None:
    """Where to write an output that needs an optional dependency: `given`, or `default` if None.
    If `problem(path)` reports the dependency missing, an explicit path is an error; instead of the
    default, the `fallback` is written (or nothing), with a note."""
    path = default if given is None else given
    reason = problem(path)
    if reason is None:
        return path
    if given is not None:
        raise CommandError(reason)
    instead = f"writing {fallback} instead" if fallback is not None else "skipping it"
    print(f"note: {reason}; {instead}", file=sys.stderr)
    return fallback


def _plots_problem(path: Path) -> str | None:
    try:
        require_matplotlib()
    except ImportError as e:
        return str(e)
    return None


def _graph_problem(path: Path, option: str) -> str | None:
    """What stops `path` being written (the graph's `option` named the path), if anything."""
    if GRAPH_FORMATS.get(path.suffix.lower()) is not None and shutil.which("dot") is None:
        return ("rendering the graph needs Graphviz's `dot` program, which is not on PATH: install Graphviz "
                f"(e.g. `apt-get install graphviz`), or give {option} a .dot path")
    return None


def save_graph(model: Module, inputs: np.ndarray, labels: np.ndarray, path: Path, collapse: bool = True,
               show_grads: bool = False, group_modules: bool = False, depth: int | None = None,
               fold: bool = False) -> None:
    """Draw the graph of `model`'s forward pass on `inputs` and the cross-entropy loss into `path`,
    in the format its extension names (see `viz.render`); with `show_grads`, after a backward;
    group_modules, depth and fold as draw_graph's. An .html path gets the explorer page (viz.explore,
    which runs the backward, with module calls from `depth` on collapsed; collapse, show_grads, the
    grouping and folding are the page's to choose). The model's buffers (BatchNorm's running
    statistics, which a training-mode pass updates) and its parameters' gradients are restored."""
    buffers = {name: buffer.detach().numpy().copy() for name, buffer in model.named_buffers()}
    grads = [(p, p.grad) for p in model.parameters()]
    loss = F.cross_entropy(model(Tensor(inputs)), Tensor(labels))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if Path(path).suffix.lower() == ".html":
        explore(loss, params=model, path=path, depth=depth)
    else:
        if show_grads:
            loss.backward()
        render(draw_graph(loss, params=model, collapse=collapse, show_grads=show_grads, group_modules=group_modules,
                          depth=depth, fold=fold), path)
    model.load_state_dict(buffers, strict=False)
    for p, g in grads:
        p.grad = g


# ---------------------------------------------------------------- evaluate

def add_evaluate_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a trained checkpoint on the test split",
                              description="Evaluate the model saved in a checkpoint on a test split: by default "
                                          "that of the data it was trained on, which the checkpoint records.")
    p.add_argument("--checkpoint", type=Path, metavar="PATH",
                   help=f"a checkpoint written by train (default the one `train` with the same --model and --data "
                        f"writes: out/MODEL/{CHECKPOINT_FILE}, or out/MODEL-DATA/{CHECKPOINT_FILE} with --data)")
    _add_model_argument(p, "the checkpoint's")
    _add_data_argument(p, "the data the checkpoint was trained on (the embedded digits for checkpoints of older "
                          "versions, which do not record it)")
    p.set_defaults(run=run_evaluate, parser=p)


def run_evaluate(args: argparse.Namespace) -> int:
    given_data = None if args.data is None else DataSource.of(args.data)
    checkpoint = args.checkpoint or default_checkpoint(args.model, given_data)
    state = _load_checkpoint(checkpoint, args.checkpoint is not None)
    name, model = _saved_model(state, checkpoint, args.model)
    try:
        mean, std = normalization_from_checkpoint(state)
        recorded = DataSource.from_checkpoint(state)
    except CheckpointError as e:
        raise CommandError(f"{checkpoint}: {e}") from None
    if given_data is None and recorded is not None and recorded.path is not None and not Path(recorded.path).is_dir():
        raise CommandError(f"{checkpoint} was trained on {recorded.path}, which is not there any more: give its "
                           "new place, or other data, with --data DIR")
    data = given_data or recorded or DataSource()
    whose = " (given by --data)" if given_data else " (the checkpoint's training data)" if recorded else \
        " (the checkpoint does not record its data: it was written by an older version; give it with --data)"
    images, labels = _read_data(data, False, name)
    print(f"{MODELS[name].title} of {checkpoint} (epoch {state.get('epoch')}) on {data}{whose}: "
          f"{len(images):,} test images")
    trained_on = input_statistics(_read_data(data, True, name)[0])
    if not np.allclose(trained_on, (mean, std), rtol=1e-6, atol=0):
        print(f"warning: {checkpoint} was trained on other images than the training split of {data} (pixel mean/std "
              f"{mean:.4f}/{std:.4f}, these have {trained_on[0]:.4f}/{trained_on[1]:.4f}), so this measures it on "
              "a task it was not trained for" + ("" if recorded is None else f"; it was trained on {recorded}"),
              file=sys.stderr)
    result = evaluate(model, to_inputs(images, mean, std), labels)
    print(f"test loss {result.loss:.4f}")
    print(_accuracy_line(result.accuracy, len(labels)))
    return 0


# ---------------------------------------------------------------- graph

def add_graph_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "graph", help="draw the computation graph of a model's training loss",
        description="Draw the graph of a model's forward pass and cross-entropy loss on a batch of random "
                    "images of the model's input size: one node per layer (--collapse, the default) or every "
                    "primitive op inside its layer's frame (--expanded). See docs/visualization.md for the legend.")
    p.add_argument("--model", choices=list(MODELS), default=DEFAULT_MODEL, help="(default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="(default %(default)s)")
    p.add_argument("--output", type=graph_path, metavar="PATH",
                   help=f"{', '.join(GRAPH_SUFFIXES)} (default MODEL-graph.svg, or MODEL-graph.html with --html; "
                        ".svg, .png and .pdf need Graphviz's dot program; .html is the explorer page)")
    p.add_argument("--html", action="store_true",
                   help="write the explorer instead: one HTML page to click through the graph, collapse and expand "
                        "its layers, and step through the backward pass (see docs/visualization.md)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--collapse", dest="collapse", action="store_true", default=True,
                      help="one node per layer (default)")
    mode.add_argument("--expanded", dest="collapse", action="store_false", help="every primitive op")
    p.add_argument("--show-grads", action="store_true", help="run backward first and show each gradient's norm")
    modules = p.add_argument_group(
        "module groups", "The explorer (--html) always frames module calls and folds identical blocks (a click "
                         "unfolds them); of these options it takes --depth.")
    modules.add_argument("--group-modules", action="store_true",
                         help="frame each module call's ops, labelled by its name and class ('layer1.0 (BasicBlock)')")
    modules.add_argument("--depth", type=non_negative_int, metavar="N",
                         help="draw the module calls nested N deep as single nodes: 0 the model, 1 its children "
                              "('layer1 (Sequential)'); implies --group-modules. With --html, those calls and the "
                              "ones inside them start collapsed (default: every call drawn)")
    modules.add_argument("--fold", action="store_true",
                         help="draw a run of identical consecutive blocks (ResNet's) as the first one, marked x3; "
                              "implies --group-modules")
    p.set_defaults(run=run_graph, parser=p)


def run_graph(args: argparse.Namespace) -> int:
    output = args.output or Path(f"{args.model}-graph.{'html' if args.html else 'svg'}")
    if args.html and output.suffix.lower() != ".html":
        raise CommandError(f"--html writes an HTML page, but --output is {output}: give a path ending in .html")
    problem = _graph_problem(output, "--output")
    if problem is not None:
        raise CommandError(problem)
    model = MODELS[args.model]
    images = np.random.default_rng(0).standard_normal((args.batch_size, *model.input_shape)).astype(np.float32)
    group_modules = args.group_modules or args.depth is not None or args.fold
    save_graph(model(), images, np.arange(args.batch_size) % 10, output, collapse=args.collapse,
               show_grads=args.show_grads, group_modules=group_modules, depth=args.depth, fold=args.fold)
    if output.suffix.lower() == ".html":
        collapsed = "" if args.depth is None else f" (module calls {args.depth} deep and deeper collapsed)"
        print(f"wrote {output}: the explorer of {args.model}'s loss{collapsed}; open it in a browser")
    else:
        what = ["one node per layer" if args.collapse else "every primitive op"]
        if group_modules:
            what.append("grouped by module" + ("" if args.depth is None else f", calls {args.depth} deep as nodes"))
        if args.fold:
            what.append("identical blocks folded")
        print(f"wrote {output}: the graph of {args.model}'s loss, " + ", ".join(what))
    return 0


# ---------------------------------------------------------------- export

EXPORT_FILES = {"safetensors": "model.safetensors", "onnx": "model.onnx"}  # --format: the default file name


def add_export_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="write a checkpoint's model for other software: its weights (safetensors) or itself (ONNX)",
        description="Write the model saved in a checkpoint for use elsewhere. --format safetensors writes its "
                    "state_dict() (weights and buffers), which PyTorch loads into the same architecture with "
                    "safetensors.torch.load_file and load_state_dict; the file's metadata names the model and the "
                    "pixel mean and std to normalize its input images with. --format onnx writes the model in eval "
                    "mode, any batch size, for ONNX Runtime and other ONNX tools. See docs/elsewhere.md.")
    p.add_argument("--checkpoint", type=Path, metavar="PATH",
                   help=f"a checkpoint written by train (default {default_checkpoint(None, None)})")
    p.add_argument("--format", choices=list(EXPORT_FILES), default="safetensors", help="(default %(default)s)")
    p.add_argument("--output", type=Path, metavar="PATH",
                   help="the file to write (default " + " or ".join(EXPORT_FILES.values()) + ", by --format, in "
                        "the checkpoint's directory)")
    p.set_defaults(run=run_export, parser=p)


def run_export(args: argparse.Namespace) -> int:
    checkpoint = args.checkpoint or default_checkpoint(None, None)
    output = args.output or checkpoint.parent / EXPORT_FILES[args.format]
    state = _load_checkpoint(checkpoint, args.checkpoint is not None)
    name, model = _saved_model(state, checkpoint)
    try:
        mean, std = normalization_from_checkpoint(state)
    except CheckpointError as e:
        raise CommandError(f"{checkpoint}: {e}") from None
    _check_writable(output)
    model_class = MODELS[name]
    try:
        if args.format == "onnx":
            export_onnx(model, Tensor(np.zeros((1, *model_class.input_shape), np.float32)), output)
            what = f"{model_class.title} as ONNX (input (N, {', '.join(map(str, model_class.input_shape))}))"
        else:
            weights = model.state_dict()
            save_safetensors(weights, output, {
                "model": name, "input_shape": "x".join(map(str, model_class.input_shape)),
                "normalization_mean": repr(mean), "normalization_std": repr(std), "epoch": str(state.get("epoch"))})
            what = (f"the {len(weights)} tensors ({sum(t.numel() for t in weights.values()):,} numbers) of "
                    f"{model_class.title}'s state_dict, the mean and std in its metadata")
    except (ImportError, NotImplementedError) as e:  # a missing extra; an op ONNX export cannot map
        raise CommandError(str(e)) from None
    print(f"wrote {output}: {what}, from {checkpoint} (epoch {state.get('epoch')}); normalize its input images "
          f"with mean {mean:.4f}, std {std:.4f}")
    return 0


# ---------------------------------------------------------------- shared

def _saved_model(state: dict[str, Any], checkpoint: Path, name: str | None = None) -> tuple[str, Module]:
    """The `models.MODELS` name and the model of a loaded checkpoint (of model `name` if given), with its weights."""
    try:
        name = name or checkpoint_model(state)
        model = MODELS[name]()
        load_model_state(model, state)
    except CheckpointError as e:
        raise CommandError(f"{checkpoint}: {e}") from None
    return name, model


def _read_data(data: DataSource, train: bool, model: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_split(data.path, train, model)
    except ImageShapeError as e:
        raise CommandError(f"--model {model}: {e}") from None
    except ValueError as e:  # corrupt or unsuitable files; a missing one is an OSError, reported by main
        raise CommandError(str(e)) from None


def _load_checkpoint(path: Path, given: bool) -> dict[str, Any]:
    """`load_checkpoint(path)`; if a default `path` is missing, the error lists the checkpoints there are."""
    if not given and not path.exists():
        others = sorted(str(p) for p in OUT.glob(f"*/{CHECKPOINT_FILE}"))
        hint = (f"; {OUT}/ has {', '.join(others)}: choose one with --checkpoint, or give the --model and --data "
                "it was trained with" if others else "; train writes it")
        raise CommandError(f"no checkpoint at {path}{hint}")
    return load_checkpoint(path)


def _accuracy_line(accuracy: float, count: int) -> str:
    return f"test accuracy {accuracy:.4f} ({round(accuracy * count)}/{count})"


SUBCOMMANDS: list[Callable[[Any], None]] = [add_train_parser, add_evaluate_parser, add_graph_parser,
                                               add_export_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-cnn",
        description="Train and evaluate LeNet-5 on handwritten digits (or VGG or ResNet-20 on CIFAR-10) with "
                    "tinygrad_cnn, offline.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        args.parser.error(str(e))  # exits with code 2
    except (CommandError, CheckpointError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before or after training (run_train reports what an interrupted run saved)
        print("\ninterrupted", file=sys.stderr)
        return 130
