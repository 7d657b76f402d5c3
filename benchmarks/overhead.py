"""The fixed cost of one op: what recording the graph adds to a tiny `a + b` and `a * b`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/overhead.py

On 2-element float32 tensors the arithmetic is free, so the time is the framework's: argument
handling, the NumPy call's own overhead, and, when an input requires grad, the Context node and
its bookkeeping. The same op under `no_grad()`, on tensors that do not require grad, on bare NumPy
arrays and in PyTorch give the scale. The backward row is the cost per node of a backward sweep
over a long chain, so a step's fixed cost is about (ops recorded) x (forward + backward per op).
"""
from __future__ import annotations

import argparse
import operator
import timeit
from typing import Callable

import numpy as np
import torch

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor

CHAIN = 1000


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Median over `repeat` runs of the time of one call, in microseconds."""
    fn()
    return 1e6 * float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number


def backward_per_node_us(repeat: int) -> tuple[float, float]:
    """(tinygrad_cnn, PyTorch) time of backward() over a chain of CHAIN multiplications, per node."""
    def chain(x, c):
        for _ in range(CHAIN):
            x = x * c
        return x.sum()

    ours_x, ours_c = Tensor(np.ones(2, np.float32), requires_grad=True), Tensor(np.ones(2, np.float32))
    torch_x, torch_c = torch.ones(2, requires_grad=True), torch.ones(2)
    results = []
    for x, c in ((ours_x, ours_c), (torch_x, torch_c)):
        times = []
        for _ in range(repeat):
            loss = chain(x, c)  # the forward is not timed
            start = timeit.default_timer()
            loss.backward()
            times.append(timeit.default_timer() - start)
            x.grad = None
        results.append(1e6 * float(np.median(times)) / CHAIN)
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per timing run (default 20000)")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs, the median is kept (default 7)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a 2-element op must not wake a thread pool

    a_np, b_np = np.ones(2, np.float32), np.full(2, 2.0, np.float32)
    rows = []
    for symbol, op in (("+", operator.add), ("*", operator.mul)):
        a, b = Tensor(a_np, requires_grad=True), Tensor(b_np, requires_grad=True)
        a_const, b_const = Tensor(a_np), Tensor(b_np)
        ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)

        with tg.no_grad():
            ours_no_grad = per_call_us(lambda: op(a, b), args.number, args.repeat)
        with torch.no_grad():
            torch_no_grad = per_call_us(lambda: op(ta, tb), args.number, args.repeat)
        rows.append((f"a {symbol} b", per_call_us(lambda: op(a, b), args.number, args.repeat), ours_no_grad,
                     per_call_us(lambda: op(a_const, b_const), args.number, args.repeat),
                     per_call_us(lambda: op(a_np, b_np), args.number, args.repeat),
                     per_call_us(lambda: op(ta, tb), args.number, args.repeat), torch_no_grad))
    ours_bwd, torch_bwd = backward_per_node_us(args.repeat)

    print("Time per call in microseconds (median of runs), 2-element float32 tensors, 1 thread.\n")
    print("| op | requires_grad (records a node) | under `no_grad()` | inputs without requires_grad | NumPy arrays "
          "| PyTorch, requires_grad | PyTorch, under `no_grad()` |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, *values in rows:
        print(f"| `{name}` | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    print(f"\nbackward() over a chain of {CHAIN} multiplications, per node: "
          f"tinygrad_cnn {ours_bwd:.2f} us, PyTorch {torch_bwd:.2f} us")


if __name__ == "__main__":
    main()
