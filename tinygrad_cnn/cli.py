"""The `tinygrad-cnn` command (also `python -m tinygrad_cnn`): train LeNet-5 on digits (or VGG or ResNet-20
on CIFAR-10), evaluate it, draw its graph.

    tinygrad-cnn train                      # 20 epochs on the 4,000 embedded MNIST digits, offline
    tinygrad-cnn train --data ~/mnist       # MNIST-style IDX files: train-images-idx3-ubyte, t10k-...
    tinygrad-cnn train --resume             # continue the run in out/lenet5.npz where it stopped
    tinygrad-cnn evaluate --checkpoint out/lenet5.npz
    tinygrad-cnn graph --expanded           # lenet5-graph.svg: every primitive op in its layer's frame
    tinygrad-cnn train --model resnet20 --data ~/cifar-10-batches-py   # CIFAR-10's python batch files

`--model` (lenet5, vgg or resnet20; default lenet5, or with --resume and `evaluate` the checkpoint's) must
fit the data: LeNet-5 takes 1x28x28 digits, VGG and ResNet-20 3x32x32 CIFAR-10 images.

`train` writes into ./out/ unless told otherwise: the checkpoint (out/MODEL.npz, e.g. out/lenet5.npz) and
the metrics (out/metrics.json) after every epoch, the graph of one forward pass and its loss
(out/MODEL-graph.svg) before training, the plots (out/plots/) after it. When matplotlib or Graphviz's `dot` program is
missing, the default plots are skipped and the graph is written as DOT text (out/MODEL-graph.gv), with
a note; asked for by name, they are an error.

Each subcommand is two functions: `add_<name>_parser(subparsers)` declares its arguments and sets
`run=run_<name>`; `run_<name>(args)` does the work and returns the exit code. SUBCOMMANDS lists the
first. Problems the user can fix (a missing file, corrupt data, a missing extra) end with one
`error: ...` line and exit code 1; arguments argparse rejects, with its usage message and code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__
from . import functional as F
from .allocator import keep_freed_memory
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .models import MODELS
from .nn import Module
from .plots import require_matplotlib, save_plots
from .tensor import Tensor
from .train import (DEFAULT_LR, DEFAULT_SGD_MOMENTUM, ImageShapeError, TrainConfig, TrainingRun, checkpoint_model,
                    describe_shape, evaluate, load_model_state, load_split, normalization_from_checkpoint, to_inputs,
                    write_metrics)
from .viz import FORMATS as GRAPH_FORMATS
from .viz import draw_graph, render

OUT = Path("out")
DEFAULT_MODEL = "lenet5"
DEFAULT_METRICS = OUT / "metrics.json"
DEFAULT_PLOTS = OUT / "plots"


def default_checkpoint(model: str) -> Path:
    return OUT / f"{model}.npz"


def default_graph(model: str) -> Path:
    return OUT / f"{model}-graph.svg"
CONFIG_OPTIONS = [f.name for f in dataclasses.fields(TrainConfig)]  # each has an option: --batch-size for batch_size


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
graph_path = _checked(Path, lambda p: p.suffix.lower() in GRAPH_FORMATS,
                      f"a path ending in {', '.join(GRAPH_FORMATS)}")


def _add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR",
                        help="a directory of CIFAR-10 python batch files (data_batch_1..5, test_batch; for --model "
                             "vgg or resnet20) or of MNIST-style IDX files (train-images-idx3-ubyte, "
                             "train-labels-idx1-ubyte, t10k-..., optionally .gz); default: the 4,000 / 1,000 train / "
                             "test split of real MNIST digits embedded in the package")


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
    _add_data_argument(p)
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
    out = p.add_argument_group("outputs")
    out.add_argument("--checkpoint", type=Path, metavar="PATH",
                     help=f"the .npz checkpoint, rewritten after every epoch (default {default_checkpoint('MODEL')})")
    out.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    out.add_argument("--metrics", type=Path, default=DEFAULT_METRICS, metavar="PATH",
                     help="per-epoch metrics as JSON, rewritten after every epoch (default %(default)s)")
    out.add_argument("--plots", type=Path, metavar="DIR",
                     help=f"directory for the PNG plots (default {DEFAULT_PLOTS}; needs matplotlib)")
    out.add_argument("--graph", type=graph_path, metavar="PATH",
                     help=f"the graph of one forward pass and its loss: {', '.join(GRAPH_FORMATS)} "
                          f"(default {default_graph('MODEL')}; all but .dot/.gv need Graphviz's dot program)")
    p.set_defaults(run=run_train, parser=p)


def run_train(args: argparse.Namespace) -> int:
    keep_freed_memory()  # each step frees its graph; without this the next one page-faults it back in
    checkpoint = args.checkpoint or default_checkpoint(args.model or DEFAULT_MODEL)
    saved = load_checkpoint(checkpoint) if args.resume else None
    config = _train_config(args, saved, checkpoint)
    model = _train_model(args.model, saved, checkpoint)
    plots_dir = _output_path(args.plots, DEFAULT_PLOTS, _plots_problem)
    graph = _output_path(args.graph, default_graph(model), _graph_problem,
                         fallback=default_graph(model).with_suffix(".gv"))  # without `dot`: DOT text, to render later
    train_images, train_labels = _read_data(args.data, True, model)
    test_images, test_labels = _read_data(args.data, False, model)

    source = "the embedded digits" if args.data is None else args.data
    print(f"{MODELS[model].title} on {source}: {len(train_images):,} training and {len(test_images):,} test images; "
          f"{config.describe()}")
    run = TrainingRun(config, train_images, train_labels, model)
    if saved is not None:
        _resume(run, saved, checkpoint)
    test_inputs = run.inputs(test_images)
    if graph is not None:  # before training, so that a problem with it shows at once
        batch = slice(0, config.batch_size)
        save_graph(run.model, run.inputs(train_images[batch]), train_labels[batch], graph)

    written = [f"graph {graph}"] if graph is not None else []
    if run.epoch < config.epochs:
        saved_epoch = run.epoch
        try:
            while run.epoch < config.epochs:
                print(run.run_epoch(test_inputs, test_labels), flush=True)
                save_checkpoint(checkpoint, run.state_dict())
                saved_epoch = run.epoch
                write_metrics(args.metrics, run.history)
        except KeyboardInterrupt:
            then = f"--resume continues after epoch {saved_epoch}, saved in {checkpoint}" if saved_epoch else \
                "no epoch was saved"
            print(f"\ninterrupted during epoch {run.epoch}: {then}", file=sys.stderr)
            return 130
        written += [f"checkpoint {checkpoint}", f"metrics {args.metrics}"]
    if plots_dir is not None:
        predictions = evaluate(run.model, test_inputs, test_labels).predictions
        save_plots(run.model, run.history, test_inputs, test_labels, predictions, plots_dir)
        written.append(f"plots {plots_dir}/")
    if written:
        print("wrote " + ", ".join(written))
    print(_accuracy_line(run.history[-1].test_accuracy, len(test_labels)))
    return 0


def _resume(run: TrainingRun, saved: dict[str, Any], checkpoint: Path) -> None:
    try:
        run.load_state_dict(saved)
    except CheckpointError as e:
        raise CommandError(f"cannot resume from {checkpoint}: {e}") from None
    if run.epoch > run.config.epochs:
        raise CommandError(f"{checkpoint} has trained {run.epoch} epochs, more than --epochs {run.config.epochs}")
    print(f"resuming {checkpoint} after epoch {run.epoch}")


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


def _graph_problem(path: Path) -> str | None:
    if GRAPH_FORMATS[path.suffix.lower()] is not None and shutil.which("dot") is None:
        return ("rendering the graph needs Graphviz's `dot` program, which is not on PATH: install Graphviz "
                "(e.g. `apt-get install graphviz`), or give --graph a .dot path")
    return None


def save_graph(model: Module, inputs: np.ndarray, labels: np.ndarray, path: Path, collapse: bool = True,
               show_grads: bool = False) -> None:
    """Draw the graph of `model`'s forward pass on `inputs` and the cross-entropy loss into `path`,
    in the format its extension names (see `viz.render`); with `show_grads`, after a backward.
    The model's buffers (BatchNorm's running statistics, which a training-mode pass updates) are restored."""
    buffers = {name: buffer.detach().numpy().copy() for name, buffer in model.named_buffers()}
    loss = F.cross_entropy(model(Tensor(inputs)), Tensor(labels))
    if show_grads:
        loss.backward()
    model.load_state_dict(buffers, strict=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    render(draw_graph(loss, params=model, collapse=collapse, show_grads=show_grads), path)


# ---------------------------------------------------------------- evaluate

def add_evaluate_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a trained checkpoint on the test split",
                              description="Evaluate the model saved in a checkpoint on a test split.")
    p.add_argument("--checkpoint", type=Path, required=True, metavar="PATH", help="a checkpoint written by train")
    _add_model_argument(p, "the checkpoint's")
    _add_data_argument(p)
    p.set_defaults(run=run_evaluate, parser=p)


def run_evaluate(args: argparse.Namespace) -> int:
    state = load_checkpoint(args.checkpoint)
    try:
        name = args.model or checkpoint_model(state)
        model = MODELS[name]()
        load_model_state(model, state)
        mean, std = normalization_from_checkpoint(state)
    except CheckpointError as e:
        raise CommandError(f"{args.checkpoint}: {e}") from None
    images, labels = _read_data(args.data, False, name)
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
                   help=f"{', '.join(GRAPH_FORMATS)} (default MODEL-graph.svg; all but .dot/.gv need Graphviz's "
                        "dot program)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--collapse", dest="collapse", action="store_true", default=True,
                      help="one node per layer (default)")
    mode.add_argument("--expanded", dest="collapse", action="store_false", help="every primitive op")
    p.add_argument("--show-grads", action="store_true", help="run backward first and show each gradient's norm")
    p.set_defaults(run=run_graph, parser=p)


def run_graph(args: argparse.Namespace) -> int:
    output = args.output or Path(f"{args.model}-graph.svg")
    problem = _graph_problem(output)
    if problem is not None:
        raise CommandError(problem)
    model = MODELS[args.model]
    images = np.random.default_rng(0).standard_normal((args.batch_size, *model.input_shape)).astype(np.float32)
    save_graph(model(), images, np.arange(args.batch_size) % 10, output,
               collapse=args.collapse, show_grads=args.show_grads)
    print(f"wrote {output}: the graph of {args.model}'s loss, "
          + ("one node per layer" if args.collapse else "every primitive op"))
    return 0


# ---------------------------------------------------------------- shared

def _read_data(data: str | None, train: bool, model: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_split(data, train, model)
    except ImageShapeError as e:
        raise CommandError(f"--model {model}: {e}") from None
    except ValueError as e:  # corrupt or unsuitable files; a missing one is an OSError, reported by main
        raise CommandError(str(e)) from None


def _accuracy_line(accuracy: float, count: int) -> str:
    return f"test accuracy {accuracy:.4f} ({round(accuracy * count)}/{count})"


SUBCOMMANDS: list[Callable[[Any], None]] = [add_train_parser, add_evaluate_parser, add_graph_parser]


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
