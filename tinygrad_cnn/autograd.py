"""Reverse-mode autodiff: the op base class, the recorded graph, and the backward sweep.

Every op is a `Function` subclass with a NumPy `forward` and a `backward` (its
vector-Jacobian product) written in Tensor operations. `Function.apply` runs the
forward and, when an input needs a gradient, returns a Tensor whose `grad_fn` is
a `Context`: the op, its input Tensors and whatever the forward saved. Those
contexts are the nodes of the graph; `run_backward` walks them in reverse
topological order (iteratively, so a 100,000-op chain is fine).

Because VJPs are Tensor operations, running them with recording on
(`create_graph=True`) yields gradients that are graphs themselves: second and
higher derivatives need no second code path.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import linecache
import os
import sys
import sysconfig
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

# ---------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


def _set_mode(mode: bool) -> None:
    global _grad_enabled
    _grad_enabled = mode


class _GradMode(contextlib.ContextDecorator):
    """Recording switched to `mode` inside a `with` block or a decorated function, then restored."""

    mode = True

    def __new__(cls, func: Any = None):
        # a bare `@no_grad` (no parentheses) gets the function itself: decorate it, as PyTorch 2
        if callable(func):
            return cls()(func)
        return super().__new__(cls)

    def __init__(self) -> None:
        self._saved: list[bool] = []  # a stack, so one instance can be entered again (recursion)

    def __enter__(self) -> None:
        self._saved.append(_grad_enabled)
        _set_mode(self.mode)

    def __exit__(self, *exc: object) -> None:
        _set_mode(self._saved.pop())


class no_grad(_GradMode):
    """`with no_grad():`, `@no_grad()` or `@no_grad`: ops run without recording a graph."""

    mode = False


class enable_grad(_GradMode):
    """Re-enable recording inside a `no_grad` region."""

    mode = True


class set_grad_enabled(_GradMode):
    """`with set_grad_enabled(mode):` or a decorator; called on its own, `set_grad_enabled(False)`
    switches the mode at once until it is changed again (as PyTorch)."""

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.mode, self._before_call = bool(mode), _grad_enabled
        _set_mode(self.mode)

    def __call__(self, func: Any) -> Any:
        _set_mode(self._before_call)  # used as a decorator: only calls of `func` change the mode
        return super().__call__(func)

    def __enter__(self) -> None:
        self._saved.append(self._before_call)  # restore what was there before the constructor switched it
        _set_mode(self.mode)


# ---------------------------------------------------------------- graph nodes

class Context:
    """A node of the graph: one op applied to some input Tensors.

    `inputs` are the Tensors the op was applied to (the edges of the graph);
    `kwargs` its non-tensor arguments; `needs_input_grad[i]` tells whether input
    i wants a gradient. The forward stores what its VJP needs with
    `save_for_backward`; `release()` drops that after a backward. A recorded node
    also knows the composite op it was made in (`scope`, for drawings and traces)
    and, in anomaly mode, the user code that made it (`created_at`).
    """

    scope: Scope | None = None
    created_at: tuple[str, int] | None = None

    def __init__(self, fn: type[Function], inputs: tuple[Tensor, ...], kwargs: dict[str, Any]) -> None:
        self.fn = fn
        self.inputs = inputs
        self.kwargs = kwargs
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        self.released = False
        self.saved: tuple = ()
        self._output: weakref.ref | None = None

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays or Tensors for the VJP in `saved`; they are freed after backward."""
        self.saved = values

    @property
    def output(self) -> Tensor:
        """The Tensor this op produced (held weakly: a node must not keep its own output alive)."""
        return self._output()

    def release(self) -> None:
        """Free what the forward saved; the graph's structure (inputs, kwargs) stays for drawing."""
        self.released, self.saved, self._output = True, (), None

    @property
    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Function:
    """Base class of every op: `forward` on NumPy arrays, `backward` in Tensor ops.

    forward(ctx, *arrays, **kwargs) -> array
    backward(ctx, grad) -> one gradient (Tensor or None) per input, a tuple if more than one.
    Gradients may have the broadcast output shape; the engine sums them back.
    """

    registry: dict[str, type[Function]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Function.registry[f"{cls.__module__}.{cls.__qualname__}"] = cls  # a user's `Sigmoid` must not replace ours

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad: Tensor) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """Run the op on Tensors; record a node if grad mode is on and an input requires grad."""
        ctx = Context(cls, inputs, kwargs)
        data = cls.forward(ctx, *[t.data for t in inputs], **kwargs)
        if type(data) is not np.ndarray:  # NumPy turns 0-d results into scalars
            data = np.asarray(data)
        if _anomaly_mode:
            _check_forward(ctx, data)
        if _grad_enabled and True in ctx.needs_input_grad:
            out = tensor_module.Tensor._make(data, True, ctx)
            ctx._output = weakref.ref(out)
            ctx.scope = _scope
            return out
        return tensor_module.Tensor._make(data, False, None)


# ---------------------------------------------------------------- backward sweep

def topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Tensors that lead to `roots` and require grad, each after every Tensor computed from it
    (so roots come first). Iterative depth-first search: no recursion limit."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack = [(root, False) for root in roots]
    while stack:
        t, children_done = stack.pop()
        if children_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t.grad_fn is not None:
            stack.extend((x, False) for x in t.grad_fn.inputs if x.requires_grad and id(x) not in visited)
    order.reverse()
    return order


def _fit_gradient(grad: Tensor, like: Tensor, ctx: Context) -> Tensor:
    """Sum a broadcast gradient back to `like`'s shape and give it `like`'s dtype: the one
    place where broadcasting is undone, so no op has to do it itself."""
    if grad.shape != like.shape:
        try:
            grad = grad.sum_to_size(like.shape)
        except ValueError:
            raise RuntimeError(f"{ctx.name} returned a gradient of shape {grad.shape} for an input "
                               f"of shape {like.shape}") from None
    if grad.dtype != like.dtype:
        grad = grad.to(like.dtype)
    return grad


def run_backward(roots: Sequence[Tensor], root_grads: Sequence[Tensor], *, retain_graph: bool,
                 create_graph: bool, inputs: Sequence[Tensor] | None = None) -> list[Tensor | None] | None:
    """Propagate `root_grads` from `roots` back through the graph.

    With `inputs=None`, gradients accumulate into the `.grad` of leaves (and of
    tensors that called `retain_grad()`); otherwise the gradient reaching each of
    `inputs` is returned and no `.grad` is touched.
    """
    grads: dict[int, Tensor] = {}
    for root, g in zip(roots, root_grads):
        grads[id(root)] = grads[id(root)] + g if id(root) in grads else g
    wanted = {id(t): None for t in inputs} if inputs is not None else None
    # the debugging tools cost two local tests per node while they are off
    hooked, observed = _tensor_hooks_used, _anomaly_mode or bool(_backward_observers)
    for observer in _backward_observers:
        observer.start_pass()

    with set_grad_enabled(create_graph):
        for t in topological_order(roots):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if hooked and t._hooks:
                g = _run_tensor_hooks(t, g)
            if wanted is not None:
                if id(t) in wanted:
                    wanted[id(t)] = g
            elif t.grad_fn is None or t._retains_grad:
                _accumulate(t, g, create_graph)
            ctx = t.grad_fn
            if ctx is None:
                if observed and wanted is None:
                    for observer in _backward_observers:
                        observer.record(t, None, g, (), 0.0)
                continue
            if ctx.released:
                raise RuntimeError(
                    f"{ctx.name}: trying to backward through the graph a second time, but its saved "
                    "values were freed after the first backward. Pass retain_graph=True to the first "
                    "backward() if you need to go through the graph again.")
            input_grads = _observed_vjp(t, ctx, g) if observed else ctx.fn.backward(ctx, g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for x, needed, gx in zip(ctx.inputs, ctx.needs_input_grad, input_grads):
                if needed and gx is not None:
                    gx = _fit_gradient(gx, x, ctx)
                    grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx
            if not retain_graph:
                ctx.release()
    return None if wanted is None else list(wanted.values())


def _accumulate(t: Tensor, g: Tensor, create_graph: bool) -> None:
    """Add g to t.grad, out of place: a .grad array is never shared with another tensor's
    gradient or with the graph, so users may change `p.grad.data` in place."""
    if create_graph:  # keep .grad a graph so it can be differentiated again
        t.grad = g.clone() if t.grad is None else t.grad + g
    elif t.grad is None:
        t.grad = tensor_module.Tensor._make(np.array(g.data, copy=True), False, None)
    else:
        t.grad = tensor_module.Tensor._make(t.grad.data + g.data, False, None)


# ---------------------------------------------------------------- public entry points

def _as_tensor_grads(outputs: Sequence[Tensor], grads: Sequence[Any] | None, op: str) -> list[Tensor]:
    """The seed gradients: given ones converted to Tensors, or ones for one-element outputs."""
    Tensor = tensor_module.Tensor
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(f"{op}: a tensor of shape {out.shape} does not require grad and has no "
                               "grad_fn (did you set requires_grad=True on an input, or run under no_grad?)")
    if grads is None:
        grads = [None] * len(outputs)
    if len(grads) != len(outputs):
        raise ValueError(f"{op}: got {len(grads)} gradients for {len(outputs)} outputs")
    seeds = []
    for out, g in zip(outputs, grads):
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for one-element outputs, "
                                   f"got shape {out.shape}; pass a gradient of that shape")
            g = Tensor._make(np.ones(out.shape, dtype=out.dtype), False, None)
        g = g.to(out.dtype) if isinstance(g, Tensor) else Tensor(np.asarray(g, dtype=out.dtype))
        if g.shape != out.shape:
            raise RuntimeError(f"{op}: gradient of shape {g.shape} does not match output of shape {out.shape}")
        seeds.append(g)
    return seeds


def backward(tensors: Sequence[Tensor], grad_tensors: Sequence[Any] | None = None,
             retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """Accumulate the gradients of `tensors` into the `.grad` of every leaf they depend on
    (as torch.autograd.backward). `retain_graph` defaults to `create_graph`."""
    seeds = _as_tensor_grads(list(tensors), grad_tensors, "backward")
    run_backward(list(tensors), seeds, retain_graph=create_graph if retain_graph is None else retain_graph,
                 create_graph=create_graph)


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) contracted with `grad_outputs`, returned instead of stored in
    `.grad` (as torch.autograd.grad). With `create_graph=True` the results are differentiable."""
    Tensor = tensor_module.Tensor
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError("grad: every input must be a Tensor that requires grad")
    seeds = _as_tensor_grads(outputs, grad_outputs, "grad")
    found = run_backward(outputs, seeds, retain_graph=create_graph if retain_graph is None else retain_graph,
                         create_graph=create_graph, inputs=inputs)
    for x, g in zip(inputs, found):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: an input of shape {x.shape} was not used to compute the outputs "
                               "(pass allow_unused=True to get None for it)")
    return tuple(found)


# ---------------------------------------------------------------- composite ops

class Scope:
    """One call of a composite op such as conv2d or cross_entropy: a function that records
    several primitive nodes. Each node keeps the innermost scope it was made in, so drawings
    and traces can show the NN op a user called instead of its primitives.

    The call's arguments are kept as given (cheap while recording); `args` picks the ones worth
    showing (`{"stride": 1, "padding": 2}`), `inputs` the Tensors among them. `parent` is the
    enclosing call (cross_entropy for the log_softmax it calls) or None.
    """

    __slots__ = ("name", "parent", "_signature", "_args", "_kwargs")

    def __init__(self, name: str, signature: _KeyArguments, args: tuple, kwargs: dict, parent: Scope | None) -> None:
        self.name, self.parent = name, parent
        self._signature, self._args, self._kwargs = signature, args, kwargs

    @property
    def args(self) -> dict[str, Any]:
        return self._signature.shown(self._args, self._kwargs)

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        Tensor = tensor_module.Tensor
        return tuple(a for a in (*self._args, *self._kwargs.values()) if isinstance(a, Tensor))

    @property
    def outermost(self) -> Scope:
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope

    @property
    def path(self) -> str:
        """'cross_entropy/log_softmax' for a call nested in another."""
        return self.name if self.parent is None else f"{self.parent.path}/{self.name}"

    @property
    def label(self) -> str:
        """'conv2d stride=1 padding=2': a pair of equal ints is shown as one int."""
        return " ".join([self.name] + [f"{k}={_compact(v)}" for k, v in self.args.items()])

    def __repr__(self) -> str:
        return f"<Scope {self.label}>"


def _compact(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] else value


class _KeyArguments:
    """Which arguments of a composite function to show: `keys` always, `extra_keys` when they
    differ from the function's defaults."""

    def __init__(self, fn: Callable, name: str, keys: Sequence[str], extra_keys: Sequence[str]) -> None:
        params = list(inspect.signature(fn).parameters.values())
        self.position = {p.name: (i, p.default) for i, p in enumerate(params)}
        for key in (*keys, *extra_keys):
            if key not in self.position:
                raise TypeError(f"composite {name!r}: {fn.__name__}() has no argument {key!r}")
        self.keys, self.extra_keys = tuple(keys), tuple(extra_keys)

    def value(self, key: str, args: tuple, kwargs: dict) -> Any:
        i, default = self.position[key]
        return kwargs[key] if key in kwargs else args[i] if i < len(args) else default

    def shown(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        shown = {key: self.value(key, args, kwargs) for key in self.keys}
        for key in self.extra_keys:
            value = self.value(key, args, kwargs)
            if _compact(value) != _compact(self.position[key][1]):
                shown[key] = value
        return shown


_scope: Scope | None = None  # the composite call running now, read by Function.apply


def composite(name: str, keys: Sequence[str] = (), extra_keys: Sequence[str] = ()) -> Callable:
    """Decorator marking a function built from several primitives as one NN op called `name`.

    The nodes recorded while it runs point to a `Scope` of the call, which shows the `keys`
    arguments, and the `extra_keys` ones where they differ from the function's defaults.
    Under no_grad, where no node is recorded, it only calls the function.
    """
    def decorate(fn: Callable) -> Callable:
        signature = _KeyArguments(fn, name, keys, extra_keys)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            global _scope
            if not _grad_enabled:
                return fn(*args, **kwargs)
            outer = _scope
            _scope = Scope(name, signature, args, kwargs, outer)
            try:
                return fn(*args, **kwargs)
            finally:
                _scope = outer
        return wrapper
    return decorate


# ---------------------------------------------------------------- debugging tools
# Hooks, backward traces and anomaly mode are off almost always. Function.apply tests one
# flag (`_anomaly_mode`); run_backward reads the flags once per pass, not per node.

_anomaly_mode = False
_backward_observers: list = []  # recorders of the active trace_backward blocks
_tensor_hooks_used = False  # set by the first Tensor.register_hook and never reset
_in_observed_vjp = 0  # > 0 while _observed_vjp runs a VJP: its ops are checked as a backward step


def is_anomaly_enabled() -> bool:
    return _anomaly_mode


def set_anomaly_enabled(mode: bool) -> None:
    """Check every forward and backward for NaN/Inf, and record where each node was made."""
    global _anomaly_mode
    _anomaly_mode = bool(mode)


def add_backward_observer(observer: Any) -> None:
    """`observer.start_pass()` runs when a backward pass starts and `observer.record(tensor,
    ctx, grad_output, grad_inputs, seconds)` after each step (ctx None for a leaf's .grad)."""
    _backward_observers.append(observer)


def remove_backward_observer(observer: Any) -> None:
    _backward_observers.remove(observer)


class RemovableHandle:
    """What the register_*hook methods return: `remove()` unregisters the hook; as a context
    manager, the hook is removed at the end of the `with` block."""

    _ids = itertools.count()

    def __init__(self, hooks: dict[int, Callable], hook: Callable) -> None:
        if not callable(hook):
            raise TypeError(f"hooks must be callable, got {type(hook).__name__}")
        self.id, self.hooks = next(RemovableHandle._ids), hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def add_tensor_hook(t: Tensor, hook: Callable) -> RemovableHandle:
    """Register hook(grad) on t (see Tensor.register_hook)."""
    global _tensor_hooks_used
    if t._hooks is None:
        t._hooks = {}
    _tensor_hooks_used = True
    return RemovableHandle(t._hooks, hook)


def _run_tensor_hooks(t: Tensor, g: Tensor) -> Tensor:
    """Pass g through t's hooks in the order they were registered; a returned Tensor replaces g."""
    for hook in list(t._hooks.values()):
        new = hook(g)
        if new is None:
            continue
        if not isinstance(new, tensor_module.Tensor) or new.shape != g.shape:
            got = f"shape {new.shape}" if isinstance(new, tensor_module.Tensor) else type(new).__name__
            raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned {got} for a gradient of "
                               f"shape {g.shape}: a hook must return None or a Tensor of the gradient's shape")
        g = new
    return g


def _observed_vjp(t: Tensor, ctx: Context, g: Tensor) -> tuple[Tensor | None, ...]:
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
    input_grads = tuple(_fit_gradient(gx, x, ctx) if needed and gx is not None else None
                        for x, needed, gx in zip(ctx.inputs, ctx.needs_input_grad, input_grads))
    seconds = time.perf_counter() - start
    if _anomaly_mode and _all_finite(g.data):  # a non-finite g was blamed on the node that made it
        for i, gx in enumerate(input_grads):
            if gx is not None and not _all_finite(gx.data):
                raise RuntimeError(
                    f"detect_anomaly: {_op_name(ctx.name, ctx.scope)} returned {_nan_or_inf(gx.data)} in the "
                    f"gradient of its input {i} (shape {gx.shape}) from a finite incoming gradient of shape "
                    f"{g.shape}; {_made_at(ctx.created_at)}")
    for observer in _backward_observers:
        observer.record(t, ctx, g, input_grads, seconds)
    return input_grads


def _check_forward(ctx: Context, data: np.ndarray) -> None:
    """Anomaly mode: note the user code making this node, and fail if the forward produced NaN
    or Inf that neither its inputs nor its arguments had (padding with -inf is on purpose)."""
    ctx.created_at = _user_frame()
    if _in_observed_vjp or data.dtype.kind != "f" or _all_finite(data):
        return
    if all(_all_finite(x.data) for x in ctx.inputs) and all(
            _all_finite(v) for v in ctx.kwargs.values() if isinstance(v, float)):
        shapes = ", ".join(str(x.shape) for x in ctx.inputs)
        raise RuntimeError(f"detect_anomaly: {_op_name(ctx.fn.__name__, _scope)} produced {_nan_or_inf(data)} in "
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


# tensor.py builds on this module; import it last so either can be imported first.
from . import tensor as tensor_module  # noqa: E402
