"""Time tinygrad_cnn's CNN ops against PyTorch (CPU) and a hand-written NumPy LeNet-5, in one process.

Run from the repository root, with the OpenBLAS variables of the test environment unset:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cnn.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_cnn.py --cases conv,pool --repeat 50

Each round runs every contestant in turn (ours, PyTorch, NumPy, ours, ...), so a machine that gets
busier or quieter during the run affects all of them alike; in its turn a contestant first runs
`--settle` untimed times, then once timed, and after the warm-up rounds the median of the timed
runs is reported. The settling runs are there because the libraries' idle threads keep spinning
for a while after a call (OpenBLAS's and PyTorch's OpenMP workers): timed right after another
library, a contestant shares the second core with the other's spinning threads (up to 2x slower
with two threads, measured), which no program that uses one library meets. All contestants start
from the same weights and data (their first results are compared before timing), and each runs
in float32.
"""
from __future__ import annotations

import argparse
import re
import sys

import process_setup  # benchmarks/ is the script's directory, so first on sys.path

CASES = ("lenet64", "conv", "conv_nchw", "conv3x3s2", "conv1x1s2", "pool", "bn", "lenet16", "lenet256", "vgg64",
         "resnet64", "vgg128", "resnet128")
# The targets (the largest ratios ours / PyTorch and ours / NumPy by hand allowed) of the performance issue.
TARGETS = {"lenet64": (0.7, 1.15), "conv": (1.2, None), "conv3x3s2": (1.2, None), "conv1x1s2": (1.2, None),
           "pool": (2.0, None), "bn": (1.2, None), "vgg64": (1.0, None), "resnet64": (1.0, None),
           "vgg128": (1.0, None), "resnet128": (1.0, None)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed rounds per case (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first (default 5)")
    parser.add_argument("--settle", type=int, default=8,
                        help="untimed runs of each contestant before its timed run in a round (default 8)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {', '.join(CASES)} (default: all); a model at another "
                             "batch size is the model's name and the batch, e.g. resnet32")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to this file")
    process_setup.add_arguments(parser)
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(c for c in set(args.cases) - set(CASES) if not re.fullmatch(r"(lenet|vgg|resnet)[1-9][0-9]*", c))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if args.repeat < 1 or args.warmup < 0 or args.settle < 0:
        parser.error("--repeat must be at least 1, --warmup and --settle at least 0")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    process_setup.apply(ARGS)  # before NumPy loads OpenBLAS

import resource  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import numpy_lenet  # noqa: E402
from torch_twins import TWINS  # noqa: E402
import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import Tensor  # noqa: E402
from tinygrad_cnn import functional as F  # noqa: E402
from tinygrad_cnn.models import MODELS  # noqa: E402
from tinygrad_cnn.optim import SGD  # noqa: E402

LR = 0.01
Runner = Callable[[], object]


# ---------------------------------------------------------------- the contestants of each case

def model_case(name: str, batch: int, rng: np.random.Generator) -> dict[str, Runner]:
    """One training step (zero_grad, forward, cross-entropy, backward, SGD update) of a model of
    tinygrad_cnn.models and its torch.nn twin (benchmarks/torch_twins.py) from the same weights; SGD
    with momentum 0.9 but for LeNet-5, whose case also has the hand-written NumPy step."""
    model = MODELS[name]()
    x = rng.standard_normal((batch, *model.input_shape)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    twin = TWINS[name]()
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    momentum = 0.0 if name == "lenet5" else 0.9
    optimizer, twin_optimizer = SGD(model.parameters(), lr=LR, momentum=momentum), \
        torch.optim.SGD(twin.parameters(), lr=LR, momentum=momentum)
    x_ours, y_ours, x_torch, y_torch = Tensor(x), Tensor(y), torch.from_numpy(x), torch.from_numpy(y)
    params = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    def ours() -> float:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_ours), y_ours)
        loss.backward()
        optimizer.step()
        return loss.item()

    def pytorch() -> float:
        twin_optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(twin(x_torch), y_torch)
        loss.backward()
        twin_optimizer.step()
        return loss.item()

    runners = {"ours": ours, "PyTorch": pytorch}
    if name == "lenet5":
        runners["NumPy by hand"] = lambda: numpy_lenet.train_step(params, x, y, LR)
    return runners


def conv_case(rng: np.random.Generator, input_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride: int,
              padding: int, nchw_gradient: bool = False) -> dict[str, Runner]:
    """conv2d forward and backward for a given upstream gradient: gradients of the input, the weight and
    the bias. Each library gets the upstream gradient laid out in memory as its own conv2d output is, as
    the layer after a convolution hands it back in a network (PyTorch: (N, C, H, W); ours: batch
    innermost), or, with `nchw_gradient`, both get it in (N, C, H, W) order, which ours copies once."""
    arrays = [rng.standard_normal(s).astype(np.float32) for s in (input_shape, weight_shape, weight_shape[:1])]
    ours_in = [Tensor(a, requires_grad=True) for a in arrays]
    torch_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_shape = F.conv2d(*ours_in, stride=stride, padding=padding).shape
    upstream = rng.standard_normal(out_shape).astype(np.float32)
    if not nchw_gradient:
        like_output = np.empty_like(F.conv2d(*ours_in, stride=stride, padding=padding).detach().numpy())
        like_output[...] = upstream  # keeps our output's memory order
        upstream = like_output
    g_ours, g_torch = Tensor(upstream), torch.from_numpy(np.ascontiguousarray(upstream))

    def ours() -> np.ndarray:
        for t in ours_in:
            t.grad = None
        out = F.conv2d(*ours_in, stride=stride, padding=padding)
        out.backward(g_ours)
        return out.detach().numpy()

    def pytorch() -> np.ndarray:
        for t in torch_in:
            t.grad = None
        out = torch.nn.functional.conv2d(*torch_in, stride=stride, padding=padding)
        out.backward(g_torch)
        return out.detach().numpy()

    return {"ours": ours, "PyTorch": pytorch}


def batch_norm_case(rng: np.random.Generator) -> dict[str, Runner]:
    """BatchNorm2d(32) in training mode on (64, 32, 32, 32), forward and backward for a given upstream
    gradient (running statistics updated as in a training step)."""
    x = rng.standard_normal((64, 32, 32, 32)).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    layer, twin = tg.nn.BatchNorm2d(32), torch.nn.BatchNorm2d(32)
    x_ours, x_torch = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g_ours, g_torch = Tensor(upstream), torch.from_numpy(upstream)

    def ours() -> np.ndarray:
        x_ours.grad = None
        out = layer(x_ours)
        out.backward(g_ours)
        return out.detach().numpy()

    def pytorch() -> np.ndarray:
        x_torch.grad = None
        out = twin(x_torch)
        out.backward(g_torch)
        return out.detach().numpy()

    return {"ours": ours, "PyTorch": pytorch}


def pool_case(rng: np.random.Generator) -> dict[str, Runner]:
    """2x2 max pooling of (64, 32, 32, 32), forward and backward for a given upstream gradient."""
    x = rng.standard_normal((64, 32, 32, 32)).astype(np.float32)
    upstream = rng.standard_normal((64, 32, 16, 16)).astype(np.float32)
    x_ours, x_torch = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g_ours, g_torch = Tensor(upstream), torch.from_numpy(upstream)

    def ours() -> np.ndarray:
        x_ours.grad = None
        out = F.max_pool2d(x_ours, 2)
        out.backward(g_ours)
        return out.detach().numpy()

    def pytorch() -> np.ndarray:
        x_torch.grad = None
        out = torch.nn.functional.max_pool2d(x_torch, 2)
        out.backward(g_torch)
        return out.detach().numpy()

    return {"ours": ours, "PyTorch": pytorch}


CONV_CASES = {  # input, weight, stride, padding
    "conv": ((64, 16, 32, 32), (32, 16, 3, 3), 1, 1),
    "conv_nchw": ((64, 16, 32, 32), (32, 16, 3, 3), 1, 1),
    "conv3x3s2": ((64, 16, 32, 32), (32, 16, 3, 3), 2, 1),  # a ResNet stage's first convolution
    "conv1x1s2": ((64, 16, 32, 32), (32, 16, 1, 1), 2, 0),  # its shortcut
}
MODEL_CASES = {"lenet": ("lenet5", "LeNet-5"), "vgg": ("vgg", "VGG-style net"), "resnet": ("resnet20", "ResNet-20")}


def build(case: str, rng: np.random.Generator) -> tuple[str, dict[str, Runner]]:
    if case in CONV_CASES:
        input_shape, weight_shape, stride, padding = CONV_CASES[case]
        nchw = case == "conv_nchw"
        title = (f"conv2d fwd+bwd {input_shape} * {weight_shape}, stride {stride}, padding {padding}"
                 + ", gradient given (N,C,H,W)" * nchw)
        return title, conv_case(rng, input_shape, weight_shape, stride, padding, nchw)
    if case == "bn":
        return "BatchNorm2d(32) training fwd+bwd (64,32,32,32)", batch_norm_case(rng)
    if case == "pool":
        return "max_pool2d 2x2 fwd+bwd (64,32,32,32)", pool_case(rng)
    prefix = case.rstrip("0123456789")
    name, title = MODEL_CASES[prefix]
    batch = int(case[len(prefix):])
    return f"{title} training step, batch {batch}", model_case(name, batch, rng)


# ---------------------------------------------------------------- timing

def check_agreement(title: str, runners: dict[str, Runner]) -> None:
    """The contestants compute the same thing: their first results agree to float32 accuracy."""
    results = {name: np.asarray(run()) for name, run in runners.items()}
    reference = results["PyTorch"]
    for name, value in results.items():
        if not np.allclose(value, reference, rtol=1e-4, atol=1e-4):
            raise SystemExit(f"{title}: {name} disagrees with PyTorch (max difference "
                             f"{np.max(np.abs(value - reference)):.3g}); not timing different computations")


def time_interleaved(runners: dict[str, Runner], repeat: int, warmup: int,
                     settle: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall time (ms) of each runner over `repeat` rounds, each round running every runner
    `settle` times untimed and then once timed, and its mean number of minor page faults per timed
    run (memory the kernel had to hand out anew)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    faults = dict.fromkeys(runners, 0)
    for round_ in range(warmup + repeat):
        for name, run in runners.items():
            for _ in range(settle):
                run()
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if round_ >= warmup:
                times[name].append(elapsed)
                faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    return ({name: 1e3 * float(np.median(t)) for name, t in times.items()},
            {name: count / repeat for name, count in faults.items()})


# ---------------------------------------------------------------- report

def verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f" ({'meets' if ratio <= target else 'MISSES'} <= {target:g})"


def table(rows: list[tuple[str, str, dict[str, float], dict[str, float]]]) -> str:
    lines = ["| case | ours (ms) | PyTorch (ms) | NumPy by hand (ms) | ours / PyTorch | ours / NumPy by hand "
             "| page faults per run: ours / PyTorch / NumPy |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for case, title, ms, faults in rows:
        torch_target, numpy_target = TARGETS.get(case, (None, None))
        numpy_ms = ms.get("NumPy by hand")
        vs_torch = ms["ours"] / ms["PyTorch"]
        cells = [title, f"{ms['ours']:.2f}", f"{ms['PyTorch']:.2f}",
                 "" if numpy_ms is None else f"{numpy_ms:.2f}",
                 f"{vs_torch:.2f}{verdict(vs_torch, torch_target)}",
                 "" if numpy_ms is None else f"{ms['ours'] / numpy_ms:.2f}{verdict(ms['ours'] / numpy_ms, numpy_target)}",
                 " / ".join(f"{faults[name]:.0f}" for name in ms)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def setup_line(args: argparse.Namespace) -> str:
    return (f"NumPy {np.__version__}, PyTorch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"tinygrad_cnn {tg.__version__}; {process_setup.describe(args)}; median of {args.repeat} "
            f"rounds after {args.warmup} warm-up rounds, each contestant timed after {args.settle} untimed runs")


def main(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    process_setup.warn_about_openblas_variables()
    rows = []
    for case in args.cases:
        tg.manual_seed(0)
        torch.manual_seed(0)
        title, runners = build(case, np.random.default_rng(0))
        check_agreement(title, runners)
        rows.append((case, title, *time_interleaved(runners, args.repeat, args.warmup, args.settle)))
        print(f"done: {title}", file=sys.stderr)
    text = table(rows)
    print(setup_line(args) + "\n\n" + text, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(setup_line(args) + "\n\n" + text)


if __name__ == "__main__":
    main(ARGS)
