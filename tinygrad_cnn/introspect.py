"""Seeing inside a backward pass: a step-by-step trace, anomaly detection and module hooks.

    with trace_backward() as trace:      # every node's VJP, in the order it runs
        loss.backward()
    print(trace)                         # op, gradient shapes and norms, time
    trace.to_graph()                     # the same as a graphviz Digraph

    with detect_anomaly():               # RuntimeError at the first op making NaN/Inf,
        loss = model(x).sum()            # naming the op and the line of user code that made it
        loss.backward()

autograd.py only holds the switches (one flag test per op while they are off); what runs
when they are on is here, beside what users call. Module hooks (`register_forward_hook`,
`register_full_backward_hook`) are installed by nn.Module and run by `call_module` below.
"""
from __future__ import annotations

import contextlib
import linecache
import os
import sys
import sysconfig
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from . import autograd
from .autograd import Context, Function
from .scopes import Scope
from .tensor import Tensor

if TYPE_CHECKING:
    import graphviz


def norm(t: Tensor) -> float:
    """The Euclidean norm of all of t's elements, summed in float64."""
    return float(np.sqrt(np.sum(np.square(t.data, dtype=np.float64))))


def parameter_names(params: Any, op: str) -> dict[int, tuple[str, Tensor]]:
    """{id(tensor): (name, tensor)} from a Module (its named_parameters) or a name -> Tensor
    mapping; the tensors are kept so their ids stay theirs while the result is alive."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    if not isinstance(params, Mapping):
        raise TypeError(f"{op}: params must be a Module or a dict of name -> Tensor, got {type(params).__name__}")
    names = {}
    for name, t in params.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: params[{name!r}] is a {type(t).__name__}, not a Tensor")
        names[id(t)] = (str(name), t)
    return names


# ---------------------------------------------------------------- the engine's side
# autograd.run_backward and Function.apply call these only while a hook, a trace or anomaly
# mode is active (see the switches at the end of autograd.py).

_in_observed_vjp = 0  # > 0 while observed_vjp runs a VJP: its ops are checked as a backward step


def run_tensor_hooks(t: Tensor, g: Tensor) -> Tensor:
    """Pass g through t's hooks in the order they were registered; a returned Tensor replaces g."""
    for hook in list(t._hooks.values()):
        new = hook(g)
        if new is None:
            continue
        if not isinstance(new, Tensor) or new.shape != g.shape:
            got = f"shape {new.shape}" if isinstance(new, Tensor) else type(new).__name__
            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned {got} for a gradient of "
                               f"shape {g.shape}: a hook must return None or a Tensor of the gradient's shape")
        g = new
    return g


def observed_vjp(t: Tensor, ctx: Context, g: Tensor) -> tuple[Tensor | None, ...]:
    """One node's VJP while anomaly mode or a trace is on: timed, checked and reported."""
    global _in_observed_vjp
    start = time.perf_counter()
    _in_observed_vjp += 1
    try:
        input_grads = ctx.fn.backward(ctx, g)
    finally:
        _in_observed_vjp -= 1
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    input_grads = tuple(autograd._fit_gradient(gx, x, ctx) if needed and gx is not None else None
                        for x, needed, gx in zip(ctx.inputs, ctx.needs_input_grad, input_grads))
    seconds = time.perf_counter() - start
    if autograd.is_anomaly_enabled() and _all_finite(g.data):  # a non-finite g was blamed on the node that made it
        for i, gx in enumerate(input_grads):
            if gx is not None and not _all_finite(gx.data):
                raise RuntimeError(
                    f"detect_anomaly: {_op_name(ctx.name, ctx.scope)} returned {_nan_or_inf(gx.data)} in the "
                    f"gradient of its input {i} (shape {gx.shape}) from a finite incoming gradient of shape "
                    f"{g.shape}; {_made_at(ctx.created_at)}")
    for observer in autograd._backward_observers:
        observer.record(t, ctx, g, input_grads, seconds)
    return input_grads


def check_forward(ctx: Context, data: np.ndarray) -> None:
    """Anomaly mode: note the user code making this node, and fail if the forward produced NaN
    or Inf that neither its inputs nor its arguments had (padding with -inf is on purpose)."""
    ctx.created_at = _user_frame()
    if _in_observed_vjp or data.dtype.kind != "f" or _all_finite(data):
        return
    if all(_all_finite(x.data) for x in ctx.inputs) and all(
            _all_finite(v) for v in ctx.kwargs.values() if isinstance(v, float)):
        shapes = ", ".join(str(x.shape) for x in ctx.inputs)
        raise RuntimeError(f"detect_anomaly: {_op_name(ctx.fn.__name__, autograd.current_scope())} produced {_nan_or_inf(data)} in "
                           f"its forward pass from finite inputs (inputs {shapes}, output {data.shape}); "
                           f"{_made_at(ctx.created_at)}")


def _all_finite(data: Any) -> bool:
    return bool(np.isfinite(data).all())


def _nan_or_inf(data: np.ndarray) -> str:
    return "NaN" if np.isnan(data).any() else "Inf"


def _op_name(name: str, scope: Scope | None) -> str:
    return name if scope is None else f"{name} (in {scope.path})"


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB_DIR = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def _user_frame() -> tuple[str, int] | None:
    """(file, line) of the innermost caller outside this package and the standard library."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith((_PACKAGE_DIR, _STDLIB_DIR)):
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def _made_at(site: tuple[str, int] | None) -> str:
    if site is None:
        return "build the graph inside detect_anomaly() to see where the op was created"
    code = linecache.getline(*site).strip()
    return f"the op was created at {site[0]}:{site[1]}" + (f": {code}" if code else "")





# ---------------------------------------------------------------- backward trace

@dataclass
class BackwardStep:
    """One step of a backward pass: a node's VJP, or a leaf's gradient landing in `.grad`.

    `tensor` is the tensor whose gradient arrived (the node's output), `grad_output` that
    gradient (dL/d tensor), `grad_inputs` what the VJP sent to each input of the node (None
    where none was needed); `sources` are the indices of the steps that sent gradient here.
    """

    index: int
    op: str  # 'MulBackward', or 'AccumulateGrad' for a leaf
    scope: str  # the composite op the node was made in ('conv2d', 'cross_entropy/log_softmax') or ''
    name: str  # the parameter's name for a named leaf, else ''
    tensor: Tensor
    grad_output: Tensor
    grad_inputs: tuple[Tensor | None, ...]
    seconds: float
    sources: tuple[int, ...]

    @property
    def node(self) -> Context | None:
        return self.tensor.grad_fn


class BackwardTrace:
    """What `trace_backward` records: `steps` in the order they ran (several backward passes
    in one block follow each other). It keeps the tensors and gradients it saw alive: drop it
    to free them."""

    def __init__(self, params: Any = None) -> None:
        self.steps: list[BackwardStep] = []
        self._names = parameter_names(params, "trace_backward")
        self._senders: dict[int, list[int]] = {}  # id(tensor) -> steps that sent it gradient

    # autograd.run_backward calls these two
    def start_pass(self) -> None:
        self._senders = {}

    def record(self, t: Tensor, ctx: Context | None, g: Tensor, grad_inputs: tuple, seconds: float) -> None:
        index = len(self.steps)
        scope = "" if ctx is None or ctx.scope is None else ctx.scope.path
        name = self._names.get(id(t), ("", None))[0]
        sources = tuple(self._senders.pop(id(t), ()))
        self.steps.append(BackwardStep(index, "AccumulateGrad" if ctx is None else ctx.name, scope, name, t, g,
                                       grad_inputs, seconds, sources))
        if ctx is not None:
            for x, gx in zip(ctx.inputs, grad_inputs):
                senders = self._senders.setdefault(id(x), [])
                if gx is not None and (not senders or senders[-1] != index):  # x * x sends twice: one edge
                    senders.append(index)

    # reading it
    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[BackwardStep]:
        return iter(self.steps)

    def __getitem__(self, i: int) -> BackwardStep:
        return self.steps[i]

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def __str__(self) -> str:
        """A table: one row per step, gradients as 'shape |g|=norm'; 'where' is the composite op
        the node was made in, or the parameter's name."""
        rows = [("step", "op", "where", "grad_output", "grad_inputs", "time")]
        for s in self.steps:
            outs = ", ".join("-" if gx is None else _grad_text(gx) for gx in s.grad_inputs)
            where = s.name or s.scope
            time = f"{s.seconds * 1e6:.0f} us" if s.node is not None else ""
            rows.append((str(s.index), s.op, where, _grad_text(s.grad_output), outs or "-> .grad", time))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        total = f"{len(self.steps)} steps, {self.total_seconds * 1e3:.2f} ms in VJPs"
        return "\n".join(lines + [total])

    def __repr__(self) -> str:
        return f"<BackwardTrace of {len(self.steps)} steps>"

    def to_graph(self, rankdir: str = "TB", show_times: bool = True) -> graphviz.Digraph:
        """The steps as a graph, gradient flowing from the loss down to the leaves: one node per
        step (op, its composite op, the norm of the gradient it received and, with `show_times`,
        its time), one edge per gradient sent (labelled with its shape and norm)."""
        from .viz import STYLES, graph_template  # graphviz is imported only when drawing

        graph = graph_template("backward_trace", rankdir)
        for s in self.steps:
            lines = [f"#{s.index} {s.op}"] + [s.name or s.scope] * bool(s.name or s.scope)
            lines.append(f"grad {_grad_text(s.grad_output)}")
            if show_times and s.node is not None:
                lines.append(f"{s.seconds * 1e6:.0f} us")
            style = STYLES["parameter" if s.name else "input" if s.node is None else "op"]
            graph.node(f"s{s.index}", "\\n".join(lines), **style)
        for s in self.steps:
            for src in s.sources:
                sender = self.steps[src]
                sent = [g for x, g in zip(sender.node.inputs, sender.grad_inputs) if x is s.tensor and g is not None]
                graph.edge(f"s{src}", f"s{s.index}", label=_grad_text(sum(sent[1:], sent[0])))
        return graph


def _grad_text(g: Tensor) -> str:
    return f"{tuple(g.shape)} |g|={norm(g):.3g}"


@contextlib.contextmanager
def trace_backward(params: Any = None) -> Iterator[BackwardTrace]:
    """`with trace_backward() as trace:` records every backward step run inside the block.

    Args:
        params: a Module or a name -> Tensor dict, to name the parameters' AccumulateGrad steps.
    """
    trace = BackwardTrace(params)
    autograd._backward_observers.append(trace)
    try:
        yield trace
    finally:
        autograd._backward_observers.remove(trace)


# ---------------------------------------------------------------- anomaly detection

class detect_anomaly(contextlib.ContextDecorator):
    """`with detect_anomaly():` (or as a decorator): raise RuntimeError at the first op whose
    forward or backward makes NaN or Inf from finite values, naming the op, the composite op
    around it and the line of user code that created it. Slow: every op's result is checked
    and every node records the stack, so use it to find a bug, not to train."""

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(autograd.is_anomaly_enabled())
        autograd.set_anomaly_enabled(True)

    def __exit__(self, *exc: object) -> None:
        autograd.set_anomaly_enabled(self._saved.pop())


# ---------------------------------------------------------------- module hooks

class BackwardHookFunction(Function):
    """Identity (y = x, dL/dx = g): marks a module's inputs and outputs in the graph so a
    full backward hook can see the gradients that cross the module's boundary."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g


class _BackwardHookCall:
    """The full backward hooks of one module call. The gradients w.r.t. the call's outputs are
    kept as they arrive; the hooks run once those w.r.t. its inputs are complete (or, if no input
    requires grad, once the outputs' are), as PyTorch's `register_full_backward_hook`."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def wrap_inputs(self, args: tuple) -> tuple:
        """Positional Tensor args that require grad pass through an identity node with a hook."""
        args = list(args)
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.grad_inputs: list[Tensor | None] = [None] * len(positions)
        self.inputs_expected = frozenset(k for k, i in enumerate(positions) if args[i].requires_grad)
        self.inputs_waiting = set(self.inputs_expected)
        for k in self.inputs_expected:
            args[positions[k]] = BackwardHookFunction.apply(args[positions[k]])
            args[positions[k]].register_hook(self._input_hook(k))
        return tuple(args)

    def wrap_outputs(self, output: Any) -> Any:
        outputs = list(output) if isinstance(output, tuple) else [output]
        self.grad_outputs: list[Tensor | None] = [None] * len(outputs)
        self.outputs_expected = frozenset(k for k, y in enumerate(outputs)
                                          if isinstance(y, Tensor) and y.requires_grad)
        self.outputs_waiting = set(self.outputs_expected)
        for k in self.outputs_expected:
            outputs[k] = BackwardHookFunction.apply(outputs[k])
            outputs[k].register_hook(self._output_hook(k))
        return tuple(outputs) if isinstance(output, tuple) else outputs[0]

    def _output_hook(self, k: int):
        def hook(g: Tensor) -> None:
            self.grad_outputs[k] = g
            self.outputs_waiting.discard(k)
            if not self.inputs_expected and not self.outputs_waiting:
                self._run_hooks()
        return hook

    def _input_hook(self, k: int):
        def hook(g: Tensor) -> Tensor | None:
            self.grad_inputs[k] = g
            self.inputs_waiting.discard(k)
            if self.inputs_waiting:
                return None
            replaced = self._run_hooks()
            return None if replaced is None else replaced[k]
        return hook

    def _run_hooks(self) -> tuple[Tensor | None, ...] | None:
        """Run the module's hooks in order, each seeing the grad_input the previous one returned;
        then forget the gradients, ready for another backward pass through the same graph."""
        grad_input, grad_output = tuple(self.grad_inputs), tuple(self.grad_outputs)
        replaced = None
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grad_input, grad_output)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
            if len(result) != len(grad_input):
                raise RuntimeError(f"full backward hook of {type(self.module).__name__}: returned {len(result)} "
                                   f"gradients for {len(grad_input)} tensor inputs")
            grad_input = replaced = result
        if replaced is not None:
            self._check_replacement(replaced)
        self.grad_inputs = [None] * len(self.grad_inputs)
        self.grad_outputs = [None] * len(self.grad_outputs)
        self.inputs_waiting, self.outputs_waiting = set(self.inputs_expected), set(self.outputs_expected)
        return replaced

    def _check_replacement(self, replaced: tuple) -> None:
        # when the hooks run, the gradients of all inputs but the last to arrive have flowed on
        # already, so only a module's one input that requires grad can get a new gradient
        for k, (old, new) in enumerate(zip(self.grad_inputs, replaced)):
            if new is not old and not (len(self.inputs_expected) == 1 and k in self.inputs_expected):
                raise RuntimeError(
                    f"full backward hook of {type(self.module).__name__}: returned a new grad_input[{k}], but a "
                    "replacement is supported only for the input of a module with one tensor input that "
                    "requires grad")


def call_module(module: Any, args: tuple, kwargs: dict) -> Any:
    """module(*args, **kwargs) with its hooks: full backward hooks mark the inputs, forward runs,
    forward hooks see (module, args, output) and may replace the output, then the outputs are
    marked for the backward hooks (the same order as PyTorch)."""
    backward = None
    if module._backward_hooks and autograd.is_grad_enabled():
        backward = _BackwardHookCall(module)
        args = backward.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hook in list(module._forward_hooks.values()):
        result = hook(module, args, output)
        if result is not None:
            output = result
    if backward is not None:
        output = backward.wrap_outputs(output)
    return output
