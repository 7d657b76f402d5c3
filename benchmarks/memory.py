"""Memory over 100 training steps (LeNet-5 at batch 64 by default): it must stay flat after the first steps.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/memory.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/memory.py --model resnet20 --steps 20
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/memory.py --model resnet20 --steps 20 --torch

After steps 1, 10, 50 and 100 it prints the process's resident memory now (VmRSS) and at its
highest so far (VmHWM, the same as getrusage's ru_maxrss), and from tracemalloc (which NumPy
reports its array buffers to) the bytes still allocated after the step and the most allocated at
once during that step. A graph kept alive by mistake, or gradients piling up, would make these
grow with the step count; the script exits with status 1 if the peak grows by more than
`--tolerance-mb` from step 10 to the last step.

What a step costs in memory, comparable across libraries: the peak resident memory during the steps
minus the resident memory before the first (the model, the batch and the libraries loaded). With
`--torch` the same steps run with the model's torch.nn twin (benchmarks/torch_twins.py) instead,
in this process alone (tracemalloc does not see PyTorch's allocations: those columns stay empty).
"""
from __future__ import annotations

import argparse

import process_setup  # benchmarks/ is the script's directory, so first on sys.path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5", help="lenet5 (default), vgg or resnet20")
    parser.add_argument("--torch", action="store_true", help="run the steps with PyTorch instead")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tolerance-mb", type=float, default=1.0,
                        help="largest allowed growth of the peaks from step 10 to the end (default 1 MB)")
    process_setup.add_arguments(parser)
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    process_setup.apply(ARGS)  # before NumPy loads OpenBLAS

import gc  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import Tensor  # noqa: E402
from tinygrad_cnn import functional as F  # noqa: E402
from tinygrad_cnn.models import MODELS  # noqa: E402
from tinygrad_cnn.optim import SGD  # noqa: E402

MB = 1 << 20


def proc_status_mb(field: str) -> float:
    """A memory line of /proc/self/status (Linux), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"/proc/self/status has no {field}")


def live_tensors() -> int:
    return sum(issubclass(type(o), Tensor) for o in gc.get_objects())  # type(): no attribute lookups on torch's objects


def make_step(args: argparse.Namespace):
    """The model's training step (SGD; momentum 0.9 but for LeNet-5) in the library asked for."""
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = MODELS[args.model]()
    x = rng.standard_normal((args.batch, *model.input_shape)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    momentum = 0.0 if args.model == "lenet5" else 0.9
    if args.torch:
        import torch
        from torch_twins import TWINS
        twin = TWINS[args.model]()
        twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
        optimizer, loss_fn, x, y = (torch.optim.SGD(twin.parameters(), lr=0.01, momentum=momentum),
                                    torch.nn.functional.cross_entropy, torch.from_numpy(x), torch.from_numpy(y))
        model = twin
    else:
        optimizer, loss_fn, x, y = SGD(model.parameters(), lr=0.01, momentum=momentum), F.cross_entropy, Tensor(x), \
            Tensor(y)

    def step() -> None:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def main(args: argparse.Namespace) -> int:
    process_setup.warn_about_openblas_variables()
    if args.model not in MODELS:
        raise SystemExit(f"--model must be one of {', '.join(MODELS)}")
    step = make_step(args)
    checkpoints = sorted({1, 10, 50, 100, args.steps} & set(range(1, args.steps + 1)))
    library = "PyTorch" if args.torch else "tinygrad_cnn"

    print(process_setup.describe(args))
    print(f"{MODELS[args.model].title} with {library}, batch {args.batch}, SGD; tracemalloc on\n")
    print("| after step | VmRSS (MB) | VmHWM = ru_maxrss (MB) | tracemalloc: allocated after the step (MB) "
          "| tracemalloc: peak during the step (MB) | live Tensors |")
    print("|---:|---:|---:|---:|---:|---:|")
    gc.collect()
    before = proc_status_mb("VmRSS")
    tracemalloc.start()
    rows = {}
    for number in range(1, args.steps + 1):
        tracemalloc.reset_peak()
        step()
        if number in checkpoints:
            _, peak = tracemalloc.get_traced_memory()
            gc.collect()  # what is still allocated once any garbage cycles are gone
            current, _ = tracemalloc.get_traced_memory()
            rows[number] = (proc_status_mb("VmRSS"), proc_status_mb("VmHWM"), current / MB, peak / MB, live_tensors())
            traced = " | ".join(f"{v:.1f}" for v in rows[number][2:4]) if not args.torch else " | "
            print(f"| {number} | {rows[number][0]:.1f} | {rows[number][1]:.1f} | {traced} | {rows[number][4]} |")

    first = min(s for s in checkpoints if s >= 10) if args.steps >= 10 else checkpoints[0]
    growth = {"VmHWM": rows[args.steps][1] - rows[first][1], "tracemalloc peak": rows[args.steps][3] - rows[first][3]}
    flat = all(g <= args.tolerance_mb for g in growth.values()) and rows[args.steps][4] == rows[first][4]
    print(f"\nfrom step {first} to step {args.steps}: " + ", ".join(f"{k} {v:+.2f} MB" for k, v in growth.items())
          + f", live Tensors {rows[args.steps][4] - rows[first][4]:+d}: {'flat' if flat else 'GROWING'}")
    print(f"a step's memory: peak resident {rows[args.steps][1]:.1f} MB - {before:.1f} MB before the first step "
          f"= {rows[args.steps][1] - before:.1f} MB")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main(ARGS))
