"""In-place semantics checked against PyTorch on random programs, and the memory a kept `loss` holds.

1. Random programs. A program is data (drawn by hypothesis): two or three float64 leaves and a list
   of steps acting on a running non-leaf tensor `h`, such as

       h = leaf0 * 1.0
       h.add_(leaf1)
       saved.append(h)
       h = h.clamp(-2.9, 2.9).exp()
       saved[0].mul_(1.5)
       h[1] = leaf2[0] * 2.0

   `run_program(lib, program)` interprets it with `lib` = torch or tinygrad_cnn. Both libraries
   must agree on the final `h` (value, dtype, `_version`), on the earlier tensors the program kept,
   on the gradient of `loss = (h * weights).sum()` w.r.t. the leaves (first order) and on the
   gradient of `sum(g * v)` w.r.t. the leaves, g taken with create_graph=True (second order).
   A program may change in place a tensor some op saved for backward; PyTorch then raises
   RuntimeError, and so do we in the same phase, or else our gradients must be right: some of our
   ops keep a mask or a copy where PyTorch keeps the tensor itself (relu's mask, the result of
   exp_), so a later change does not touch what their VJP reads. Right means equal to central
   differences of the program, run by torch without recording (which cannot judge a program with
   a change under no_grad: that is, by design, not differentiated).
   Programs never change a *view* in place while recording (we raise there, PyTorch does not: the
   documented difference); `h[idx] = value` changes `h` itself and is used freely.

2. Memory. A LeNet-5 training loop that keeps every step's loss must not keep every step's
   activations: after backward a loss's graph keeps its structure only (tracemalloc sees NumPy's
   allocations).

    TG_ORACLE_SELFTEST=1 python -m pytest tests/test_inplace_programs.py

runs the programs with torch on both sides (a check of the programs and the harness themselves)
and skips the memory test, which is about our library alone.
"""
from __future__ import annotations

import dataclasses
import gc
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from test_semantics_torch import ours_only, tg  # noqa: E402  (tg is torch itself with TG_ORACLE_SELFTEST=1)

RTOL, ATOL = 1e-7, 1e-9  # float64 on both sides

# Kinks moved off the values a program makes: relu and abs see h + 0.37, exp sees h clamped to
# [-2.9, 2.9] (and cannot overflow), so neither the leaves (+-[0.5, 2]), the constants (+-[0.5, 2.5])
# nor the fill values land on a kink or a clamp edge.
OFFSET, BOUND = 0.37, 2.9
FILL_VALUES = (0.5, 1.0, -0.75)


# ---------------------------------------------------------------- programs as data
# Every step knows how to print itself as the line of Python it runs, so that hypothesis shows a
# falsifying program as code, and how to run itself on an environment of one library.

class Env:
    """What a running program sees: the library, its leaves, the running tensor h, kept tensors."""

    def __init__(self, lib, leaves) -> None:
        self.lib, self.leaves = lib, leaves
        self.h = leaves[0] * 1.0  # a non-leaf from the start: in-place ops on it are recorded
        self.saved: list = []


@dataclass(frozen=True)
class Leaf:
    k: int

    def __repr__(self) -> str: return f"leaf{self.k}"
    def get(self, env: Env): return env.leaves[self.k]


@dataclass(frozen=True)
class Const:
    c: float

    def __repr__(self) -> str: return repr(self.c)
    def get(self, env: Env): return self.c


@dataclass(frozen=True)
class Saved:
    s: int

    def __repr__(self) -> str: return f"saved[{self.s}]"
    def get(self, env: Env): return env.saved[self.s]


BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
INPLACE_METHOD = {"+": "add_", "-": "sub_", "*": "mul_", "/": "div_"}


def _iadd(a, b):
    a += b
    return a


def _isub(a, b):
    a -= b
    return a


def _imul(a, b):
    a *= b
    return a


def _idiv(a, b):
    a /= b
    return a


AUGMENTED = {"+": _iadd, "-": _isub, "*": _imul, "/": _idiv}

# out-of-place unary steps, each kept away from its kinks (and exp from overflow)
UNARY = {
    "h = h.tanh()": lambda h: h.tanh(),
    "h = h.sigmoid()": lambda h: h.sigmoid(),
    f"h = h.clamp({-BOUND}, {BOUND}).exp()": lambda h: h.clamp(-BOUND, BOUND).exp(),
    f"h = (h + {OFFSET}).relu()": lambda h: (h + OFFSET).relu(),
    f"h = (h + {OFFSET}).abs()": lambda h: (h + OFFSET).abs(),
    f"h = (h * h + {OFFSET}).sqrt()": lambda h: (h * h + OFFSET).sqrt(),
    "h = -h": lambda h: -h,
}

# their in-place versions (chained: each in-place method returns the tensor it changed)
INPLACE_UNARY = {
    "h.tanh_()": lambda h: h.tanh_(),
    "h.sigmoid_()": lambda h: h.sigmoid_(),
    f"h.clamp_({-BOUND}, {BOUND}).exp_()": lambda h: h.clamp_(-BOUND, BOUND).exp_(),
    f"h.add_({OFFSET}).relu_()": lambda h: h.add_(OFFSET).relu_(),
    f"h.add_({OFFSET}).abs_()": lambda h: h.add_(OFFSET).abs_(),
    f"h.pow_(2).add_({OFFSET}).sqrt_()": lambda h: h.pow_(2).add_(OFFSET).sqrt_(),
    "h.neg_()": lambda h: h.neg_(),
}

# in-place changes of a tensor kept earlier (which an op may have saved for backward)
SAVED_INPLACE = {
    "mul_(1.5)": lambda t: t.mul_(1.5),
    "add_(0.25)": lambda t: t.add_(0.25),
    "sigmoid_()": lambda t: t.sigmoid_(),
    "zero_()": lambda t: t.zero_(),
}


@dataclass(frozen=True)
class Binary:
    """h = h op y"""
    op: str
    y: Leaf | Const | Saved

    def __repr__(self) -> str: return f"h = h {self.op} {self.y!r}"
    def run(self, env: Env) -> None: env.h = BINARY[self.op](env.h, self.y.get(env))


@dataclass(frozen=True)
class Reflected:
    """h = y op h (never y / h: h may be near 0)"""
    op: str
    y: Leaf | Const | Saved

    def __repr__(self) -> str: return f"h = {self.y!r} {self.op} h"
    def run(self, env: Env) -> None: env.h = BINARY[self.op](self.y.get(env), env.h)


@dataclass(frozen=True)
class Unary:
    source: str

    def __repr__(self) -> str: return self.source
    def run(self, env: Env) -> None: env.h = UNARY[self.source](env.h)


@dataclass(frozen=True)
class InplaceBinary:
    """h.add_(y) or h += y (and -, *, /)"""
    op: str
    y: Leaf | Const | Saved
    augmented: bool

    def __repr__(self) -> str:
        return f"h {self.op}= {self.y!r}" if self.augmented else f"h.{INPLACE_METHOD[self.op]}({self.y!r})"

    def run(self, env: Env) -> None:
        y = self.y.get(env)
        if self.augmented:
            env.h = AUGMENTED[self.op](env.h, y)  # what `h op= y` does: h = h.__iop__(y)
        else:
            getattr(env.h, INPLACE_METHOD[self.op])(y)


@dataclass(frozen=True)
class InplaceUnary:
    source: str

    def __repr__(self) -> str: return self.source
    def run(self, env: Env) -> None: INPLACE_UNARY[self.source](env.h)


@dataclass(frozen=True)
class MaskedFill:
    threshold: float
    value: float

    def __repr__(self) -> str: return f"h.masked_fill_(h > {self.threshold!r}, {self.value!r})"
    def run(self, env: Env) -> None: env.h.masked_fill_(env.h > self.threshold, self.value)


@dataclass(frozen=True)
class SetRow:
    """h[i] = leaf_k[j] * c: item assignment of a differentiable value"""
    i: int
    k: int
    j: int
    c: float

    def __repr__(self) -> str: return f"h[{self.i}] = leaf{self.k}[{self.j}] * {self.c!r}"
    def run(self, env: Env) -> None: env.h[self.i] = env.leaves[self.k][self.j] * self.c


@dataclass(frozen=True)
class SetMasked:
    """h[h > threshold] = value: item assignment through a boolean mask"""
    threshold: float
    value: float

    def __repr__(self) -> str: return f"h[h > {self.threshold!r}] = {self.value!r}"
    def run(self, env: Env) -> None: env.h[env.h > self.threshold] = self.value


@dataclass(frozen=True)
class Fill:
    value: float

    def __repr__(self) -> str: return f"h.fill_({self.value!r})"
    def run(self, env: Env) -> None: env.h.fill_(self.value)


@dataclass(frozen=True)
class CopyFrom:
    k: int
    c: float

    def __repr__(self) -> str: return f"h.copy_(leaf{self.k} * {self.c!r})"
    def run(self, env: Env) -> None: env.h.copy_(env.leaves[self.k] * self.c)


@dataclass(frozen=True)
class Keep:
    """keep a reference to the current h (the same tensor: h's later in-place changes reach it)"""

    def __repr__(self) -> str: return "saved.append(h)"
    def run(self, env: Env) -> None: env.saved.append(env.h)


@dataclass(frozen=True)
class ChangeSaved:
    s: int
    change: str

    def __repr__(self) -> str: return f"saved[{self.s}].{self.change}"
    def run(self, env: Env) -> None: SAVED_INPLACE[self.change](env.saved[self.s])


@dataclass(frozen=True)
class NoGradScale:
    c: float

    def __repr__(self) -> str: return f"with no_grad(): h.mul_({self.c!r})"

    def run(self, env: Env) -> None:
        with env.lib.no_grad():
            env.h.mul_(self.c)


@dataclass(frozen=True, eq=False)
class Program:
    leaves: tuple[np.ndarray, ...]
    weights: np.ndarray  # loss = (h * weights).sum()
    directions: tuple[np.ndarray, ...]  # v: second order differentiates sum(g * v)
    steps: tuple

    def __repr__(self) -> str:
        lines = [f"leaf{k} = tensor({a.tolist()!r}, requires_grad=True)" for k, a in enumerate(self.leaves)]
        lines += ["h = leaf0 * 1.0", "saved = []"] + [repr(s) for s in self.steps]
        lines += [f"loss = (h * {self.weights.tolist()!r}).sum()",
                  f"v = {[d.tolist() for d in self.directions]!r}"]
        return "\n    " + "\n    ".join(lines) + "\n"

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # how hypothesis prints a falsifying example
        printer.text(repr(self))


# ---------------------------------------------------------------- strategies

def shapes() -> st.SearchStrategy:
    """(n,) or (m, n), sides 1..4"""
    return hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4)


def magnitudes(low: float, high: float) -> st.SearchStrategy:
    """floats x with low <= |x| <= high: safe divisors, far from every kink of the steps"""
    return st.floats(low, high).flatmap(lambda x: st.sampled_from([x, -x]))


def leaf_values(shape: tuple[int, ...]) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=magnitudes(0.5, 2.0))


def constants() -> st.SearchStrategy:
    return magnitudes(0.5, 2.5)


def thresholds() -> st.SearchStrategy:
    return st.floats(-1.0, 1.0)


def operands(n_leaves: int, n_saved: int, divisor: bool = False) -> st.SearchStrategy:
    """a leaf, a constant, or (not as a divisor: it may be near 0) a tensor kept earlier"""
    options = [st.builds(Leaf, st.integers(0, n_leaves - 1)), st.builds(Const, constants())]
    if n_saved and not divisor:
        options.append(st.builds(Saved, st.integers(0, n_saved - 1)))
    return st.one_of(options)


@st.composite
def binary_steps(draw, cls, n_leaves: int, n_saved: int, ops: str = "+-*/"):
    op = draw(st.sampled_from(ops))
    return cls(op, draw(operands(n_leaves, n_saved, divisor=op == "/")))


@st.composite
def inplace_binary_steps(draw, n_leaves: int, n_saved: int):
    op = draw(st.sampled_from("+-*/"))
    return InplaceBinary(op, draw(operands(n_leaves, n_saved, divisor=op == "/")), draw(st.booleans()))


def steps(shape: tuple[int, ...], leaf_shapes: list[tuple[int, ...]], n_saved: int) -> st.SearchStrategy:
    """One step, given h's shape, the leaves' shapes and how many tensors are kept so far."""
    n_leaves = len(leaf_shapes)
    set_row = st.integers(0, n_leaves - 1).flatmap(lambda k: st.builds(
        SetRow, st.integers(0, shape[0] - 1), st.just(k), st.integers(0, leaf_shapes[k][0] - 1), constants()))
    options = [
        binary_steps(Binary, n_leaves, n_saved),
        binary_steps(Reflected, n_leaves, n_saved, ops="-*"),
        st.builds(Unary, st.sampled_from(sorted(UNARY))),
        inplace_binary_steps(n_leaves, n_saved),
        st.builds(InplaceUnary, st.sampled_from(sorted(INPLACE_UNARY))),
        st.builds(MaskedFill, thresholds(), st.sampled_from(FILL_VALUES)),
        set_row,
        st.builds(SetMasked, thresholds(), st.sampled_from(FILL_VALUES)),
        st.builds(Fill, st.sampled_from(FILL_VALUES)),
        st.builds(CopyFrom, st.integers(0, n_leaves - 1), constants()),
        st.just(Keep()),
        st.builds(NoGradScale, constants()),
    ]
    if n_saved:
        options.append(st.builds(ChangeSaved, st.integers(0, n_saved - 1), st.sampled_from(sorted(SAVED_INPLACE))))
    return st.one_of(options)


@st.composite
def programs(draw, max_steps: int = 8) -> Program:
    shape = draw(shapes())
    leaf_shapes = [shape, shape] + draw(st.sampled_from([[], [shape[-1:]]]))  # a third leaf broadcasts
    leaves = tuple(draw(leaf_values(s)) for s in leaf_shapes)
    weights = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.0, 1.0)))
    directions = tuple(draw(hnp.arrays(np.float64, s, elements=st.floats(-1.0, 1.0))) for s in leaf_shapes)
    program_steps, n_saved = [], 0
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(steps(shape, leaf_shapes, n_saved))
        n_saved += isinstance(step, Keep)
        program_steps.append(step)
    return Program(leaves, weights, directions, tuple(program_steps))


# ---------------------------------------------------------------- the interpreter

def forward(lib, program: Program) -> tuple[list, Env]:
    leaves = [lib.tensor(a, requires_grad=True) for a in program.leaves]
    env = Env(lib, leaves)
    for step in program.steps:
        step.run(env)
    return leaves, env


def loss_of(lib, program: Program, h):
    return (h * lib.tensor(program.weights)).sum()


def to_numpy(t):
    # force=True: torch may return a gradient as a ZeroTensor, which .numpy() refuses
    return None if t is None else np.array(t.detach().numpy(force=True), copy=True)


@dataclass
class Outcome:
    error: str | None = None  # the phase that raised RuntimeError, if any
    message: str = ""
    results: dict | None = None


def run_program(lib, program: Program) -> Outcome:
    """Run the program and both gradients; the results as NumPy, or the phase that raised RuntimeError."""
    results: dict = {}
    phase = "forward"
    try:
        leaves, env = forward(lib, program)
        results["h"] = to_numpy(env.h)
        results["h.dtype"] = str(np.dtype(str(env.h.dtype).replace("torch.", "")))
        results["h._version"] = env.h._version
        results["saved"] = [to_numpy(t) for t in env.saved]
        phase = "first-order grad"
        grads = lib.autograd.grad(loss_of(lib, program, env.h), leaves, allow_unused=True)
        results["grad"] = [to_numpy(g) for g in grads]

        phase = "forward (again, for second order)"
        leaves, env = forward(lib, program)
        phase = "grad with create_graph=True"
        grads = lib.autograd.grad(loss_of(lib, program, env.h), leaves, create_graph=True, allow_unused=True)
        results["grad (create_graph)"] = [to_numpy(g) for g in grads]
        phase = "second-order grad"
        terms = [(g * lib.tensor(v)).sum() for g, v in zip(grads, program.directions) if g is not None]
        s = sum(terms[1:], terms[0]) if terms else None
        if s is not None and s.requires_grad:
            second = lib.autograd.grad(s, leaves, allow_unused=True)
        else:  # sum(g * v) is a constant: the loss is (at most) linear in the leaves
            second = [None] * len(leaves)
        results["second-order grad"] = [to_numpy(g) for g in second]
    except RuntimeError as e:
        return Outcome(error=phase, message=str(e).splitlines()[0][:300])
    return Outcome(results=results)


def numeric_grads(program: Program, eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of the loss in every element of every leaf, the program run by torch
    without recording (so no in-place change can be refused)."""
    def loss_at(leaves: list[np.ndarray]) -> float:
        with torch.no_grad():
            _, env = forward(torch, dataclasses.replace(program, leaves=tuple(leaves)))
            return float(loss_of(torch, program, env.h))

    grads = []
    for k, leaf in enumerate(program.leaves):
        g = np.zeros_like(leaf)
        for i in np.ndindex(leaf.shape):
            shifted = [a.copy() for a in program.leaves]
            shifted[k][i] += eps
            plus = loss_at(shifted)
            shifted[k][i] -= 2 * eps
            g[i] = (plus - loss_at(shifted)) / (2 * eps)
        grads.append(g)
    return grads


def assert_same(ours, theirs, where: str) -> None:
    if isinstance(theirs, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, np.ndarray) or isinstance(ours, np.ndarray):
        # None (no path to the leaf) and zeros are the same gradient
        theirs = np.zeros_like(ours) if theirs is None else theirs
        ours = np.zeros_like(theirs) if ours is None else ours
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape}, torch {theirs.shape}"
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=where)
    else:
        assert ours == theirs, f"{where}: ours {ours!r}, torch {theirs!r}"


def all_finite(results: dict) -> bool:
    arrays = [a for v in results.values() for a in (v if isinstance(v, list) else [v])
              if isinstance(a, np.ndarray)]
    return all(np.all(np.isfinite(a)) and np.all(np.abs(a) < 1e8) for a in arrays)


@settings(max_examples=60, deadline=None)
@given(programs())
def test_random_inplace_programs_agree_with_torch(program: Program) -> None:
    theirs = run_program(torch, program)
    ours = run_program(tg, program)
    if theirs.error is not None and not (ours.error is None and "modified by an inplace" in theirs.message):
        assert ours.error == theirs.error, (
            f"torch raised RuntimeError in the {theirs.error} ({theirs.message}); ours "
            + (f"raised in the {ours.error} ({ours.message})" if ours.error else "did not raise"))
        return
    if theirs.error is not None:  # torch refused a changed saved value that our op did not read
        # a change under no_grad is, by design, not differentiated: differences cannot judge that
        assume(not any(isinstance(step, NoGradScale) for step in program.steps))
        numeric = numeric_grads(program)
        assume(all(np.all(np.isfinite(g)) and np.all(np.abs(g) < 1e6) for g in numeric))
        for k, (a, b) in enumerate(zip(ours.results["grad"], numeric)):
            np.testing.assert_allclose(np.zeros_like(b) if a is None else a, b, rtol=1e-5, atol=1e-6,
                                       err_msg=f"grad[{k}] against central differences")
        return
    assert ours.error is None, f"ours raised RuntimeError in the {ours.error} ({ours.message}); torch did not"
    assume(all_finite(theirs.results))  # a chain of squarings (h * saved[0] with saved[0] is h) may overflow
    for key, value in theirs.results.items():
        assert_same(ours.results[key], value, key)


# ---------------------------------------------------------------- memory of kept losses

def graph_nodes(root) -> list:
    """Every node reachable from `root` through next_functions (iteratively: graphs can be deep)."""
    seen, stack, nodes = set(), [root], []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return nodes


def traced(large_block: int = 4096) -> tuple[int, int]:
    """(all traced bytes, bytes in blocks of at least `large_block` bytes: NumPy arrays, not graph nodes)"""
    gc.collect()
    large = sum(t.size for t in tracemalloc.take_snapshot().traces if t.size >= large_block)
    return tracemalloc.get_traced_memory()[0], large


@ours_only
def test_kept_losses_do_not_keep_activations() -> None:
    """`losses.append(loss)` each step keeps each step's graph *structure* (PyTorch's too: a kept loss
    has a grad_fn), about 21 KiB of small Python objects for LeNet-5's 38 nodes, but none of its
    arrays: backward() frees what the nodes saved. Kept activations would cost about 380 KiB per
    step at batch 16 (measured with backward(retain_graph=True): +95 MB in blocks >= 4 KiB over
    the 280 measured steps, where this loop adds none)."""
    from tinygrad_cnn.models import LeNet5
    from tinygrad_cnn.nn import functional as F

    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = LeNet5()
    optimizer = tg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []  # the pattern that used to keep every step's activations alive
    tracemalloc.start()
    try:
        for step in range(1, 301):
            x = tg.tensor(rng.standard_normal((16, 1, 28, 28), dtype=np.float32))
            y = tg.tensor(rng.integers(0, 10, size=16))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss)
            if step == 20:
                total_20, large_20 = traced()
        total_300, large_300 = traced()
    finally:
        tracemalloc.stop()
    kib, mib, steps = 1 << 10, 1 << 20, 280
    large, total = large_300 - large_20, total_300 - total_20
    assert large < 2 * mib, f"arrays kept: blocks >= 4 KiB grew by {large / mib:.2f} MB over {steps} steps"
    assert total < steps * 48 * kib, (f"traced memory grew by {total / mib:.2f} MB over {steps} steps "
                                      f"({total / steps / kib:.1f} KiB per kept loss; a graph's structure is ~21 KiB)")

    # and each kept loss keeps the graph's structure only: no node holds a saved value
    for loss in (losses[0], losses[150], losses[-1]):
        nodes = graph_nodes(loss.grad_fn)
        with_saved = [n for n in nodes if hasattr(n, "saved_tensors_info")]  # all but AccumulateGrad
        assert len(with_saved) >= 20, sorted(n.name() for n in nodes)  # the walk went through the network
        for node in with_saved:
            assert node.saved_tensors_info == (), f"{node.name()} still holds {node.saved_tensors_info}"
