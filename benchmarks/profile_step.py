"""Where the time of one training step goes (LeNet-5 by default, or --model vgg / resnet20).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_step.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_step.py --batch 16 --steps 50
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_step.py --model resnet20 --steps 5

Three views of the same steps (batch 64, SGD as in bench_cnn.py: with momentum 0.9 but for LeNet-5):

1. the step: median wall time, minor page faults, and how many ops it records (forward) and
   runs as VJPs (backward);
2. by op: the time spent inside each primitive's NumPy `forward`, summed per step, for the forward
   pass and for the backward pass (whose VJPs are ops too). What is left of the step is the Python
   around the ops: Primitive.apply, the backward sweep, Tensor methods, modules, the optimizer;
3. cProfile's top functions by total (own) time and by cumulative time.
"""
from __future__ import annotations

import argparse

import process_setup  # benchmarks/ is the script's directory, so first on sys.path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5", help="lenet5 (default), vgg or resnet20")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="profiled steps (default 30)")
    parser.add_argument("--top", type=int, default=15, help="rows per table (default 15)")
    process_setup.add_arguments(parser)
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    process_setup.apply(ARGS)  # before NumPy loads OpenBLAS

import cProfile  # noqa: E402
import collections  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import Tensor  # noqa: E402
from tinygrad_cnn.autograd import engine  # noqa: E402
from tinygrad_cnn.autograd.function import Primitive  # noqa: E402
from tinygrad_cnn import functional as F  # noqa: E402
from tinygrad_cnn.models import MODELS  # noqa: E402
from tinygrad_cnn.optim import SGD  # noqa: E402


def make_step(name: str, batch: int):
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = MODELS[name]()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.0 if name == "lenet5" else 0.9)
    x = Tensor(rng.standard_normal((batch, *model.input_shape)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, batch))

    def step() -> None:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


class OpTimer:
    """Wraps every op's forward to add up its time per (pass, op, output shape)."""

    def __init__(self) -> None:
        self.seconds: collections.Counter = collections.Counter()
        self.calls: collections.Counter = collections.Counter()
        self.phase = "forward"
        self._saved: dict = {}

    def __enter__(self) -> OpTimer:
        for fn in set(Primitive.registry.values()):
            if "forward" in vars(fn):
                self._saved[fn] = vars(fn)["forward"]
                fn.forward = staticmethod(self._timed(fn.__name__, fn.forward))
        self._run_backward, self._sgd_step = engine.run_backward, SGD.step
        engine.run_backward = self._in_phase("backward", engine.run_backward)
        SGD.step = self._in_phase("optimizer", SGD.step)
        return self

    def __exit__(self, *exc: object) -> None:
        for fn, forward in self._saved.items():
            fn.forward = forward
        engine.run_backward, SGD.step = self._run_backward, self._sgd_step

    def _timed(self, name, forward):
        def timed(ctx, *args, **kwargs):
            start = time.perf_counter()
            out = forward(ctx, *args, **kwargs)
            key = (self.phase, name, tuple(np.shape(out)))
            self.seconds[key] += time.perf_counter() - start
            self.calls[key] += 1
            return out
        return timed

    def _in_phase(self, phase, fn):
        def wrapped(*args, **kwargs):
            self.phase = phase
            try:
                return fn(*args, **kwargs)
            finally:
                self.phase = "forward"
        return wrapped


def main(args: argparse.Namespace) -> None:
    process_setup.warn_about_openblas_variables()
    if args.model not in MODELS:
        raise SystemExit(f"--model must be one of {', '.join(MODELS)}")
    step = make_step(args.model, args.batch)
    for _ in range(5):
        step()

    # 1. the step, unobserved
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.steps
    step_ms = 1e3 * float(np.median(times))

    # 2. by op
    with OpTimer() as timer:
        for _ in range(args.steps):
            step()
    per_step = {k: 1e3 * v / args.steps for k, v in timer.seconds.items()}
    in_ops = sum(per_step.values())
    recorded = {phase: sum(n for (p, _, _), n in timer.calls.items() if p == phase) // args.steps
                for phase in ("forward", "backward", "optimizer")}
    print(process_setup.describe(args))
    print(f"{MODELS[args.model].title} training step, batch {args.batch}: median {step_ms:.2f} ms over "
          f"{args.steps} steps, "
          f"{faults:.0f} minor page faults per step; {recorded['forward']} ops in the forward pass, "
          f"{recorded['backward']} run by the backward pass, {recorded['optimizer']} by the optimizer")
    print(f"inside the ops' NumPy code: {in_ops:.2f} ms per step (measured with timers on); "
          f"the rest, about {max(step_ms - in_ops, 0.0):.2f} ms, is Python around the ops\n")
    print("| pass | op | output shape | ms per step | share of the step |")
    print("|---|---|---|---:|---:|")
    for (phase, name, shape), ms in sorted(per_step.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| {phase} | {name} | {shape} | {ms:.3f} | {100 * ms / step_ms:.0f}% |")
    by_phase = collections.Counter()
    for (phase, name, _), ms in per_step.items():
        by_phase[phase, name] += ms
    print("\nsummed over shapes: " + ", ".join(f"{name} ({phase}) {ms:.2f} ms"
                                               for (phase, name), ms in by_phase.most_common(8)))

    # 3. cProfile
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        step()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        body = out.getvalue()
        print(f"\ncProfile, {args.steps} steps, sorted by {order}:\n" + body[body.index("ncalls"):].rstrip())


if __name__ == "__main__":
    main(ARGS)
