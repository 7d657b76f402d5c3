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
import itertools
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from .scopes import Scope
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
        self.needs_input_grad = tuple([t.requires_grad for t in inputs])  # a list is faster than a generator
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
            from .introspect import check_forward  # imported here: introspect builds on this module
            check_forward(ctx, data)
        if _grad_enabled and True in ctx.needs_input_grad:
            out = tensor_module.Tensor._make(data, True, ctx)
            ctx._output = weakref.ref(out)
            ctx.scope = _scope
            return out
        return tensor_module.Tensor._make(data, False, None)


# ---------------------------------------------------------------- backward sweep

def topological_order(roots: Sequence[Tensor], constants: bool = False) -> list[Tensor]:
    """Tensors that lead to `roots` and require grad (with `constants`, the others too), each
    after every Tensor computed from it, so roots come first. Iterative depth-first search (no
    recursion limit), first inputs first."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t.grad_fn is not None:
            stack.extend((x, False) for x in reversed(t.grad_fn.inputs)
                         if (constants or x.requires_grad) and id(x) not in visited)
    order.reverse()
    return order


def _fit_gradient(grad: Tensor, like: Tensor, ctx: Context) -> Tensor:
    """Sum a broadcast gradient back to `like`'s shape and give it `like`'s dtype: the one
    place where broadcasting is undone, so no op has to do it itself."""
    if grad.data.shape != like.data.shape:  # .data: this runs for every edge, skip the properties
        try:
            grad = grad.sum_to_size(like.shape)
        except ValueError:
            raise RuntimeError(f"{ctx.name} returned a gradient of shape {grad.shape} for an input "
                               f"of shape {like.shape}") from None
    if grad.data.dtype != like.data.dtype:
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
    if hooked or observed:
        from . import introspect  # imported here: introspect builds on this module
    for observer in _backward_observers:
        observer.start_pass()

    with set_grad_enabled(create_graph):
        for t in topological_order(roots):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if hooked and t._hooks:
                g = introspect.run_tensor_hooks(t, g)
            if wanted is not None:
                if id(t) in wanted:
                    wanted[id(t)] = g
            elif t.grad_fn is None or t._retains_grad:
                _accumulate(t, g, create_graph)
            ctx = t.grad_fn
            if ctx is None:
                if observed and wanted is None:
                    introspect.report_step(t, None, g, (), 0.0)  # g landed in t.grad
                continue
            if ctx.released:
                raise RuntimeError(
                    f"{ctx.name}: trying to backward through the graph a second time, but its saved "
                    "values were freed after the first backward. Pass retain_graph=True to the first "
                    "backward() if you need to go through the graph again.")
            if observed:
                input_grads, seconds = introspect.timed_vjp(ctx, g)
            else:
                input_grads = ctx.fn.backward(ctx, g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            input_grads = tuple([_fit_gradient(gx, x, ctx) if needed and gx is not None else None
                                 for x, needed, gx in zip(ctx.inputs, ctx.needs_input_grad, input_grads)])
            if observed:
                introspect.report_step(t, ctx, g, input_grads, seconds)
            for x, gx in zip(ctx.inputs, input_grads):
                if gx is not None:
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


# ---------------------------------------------------------------- switches for seeing inside
# Hooks, backward traces and anomaly mode (introspect/) are off almost always: then
# Function.apply tests one flag, and run_backward reads the switches once per pass. The
# composite-op scope (scopes.py) is one more slot each recorded node copies.

_anomaly_mode = False
_backward_observers: list = []  # the recorders of active trace_backward blocks
_tensor_hooks_used = False  # set by the first Tensor.register_hook and never reset


def is_anomaly_enabled() -> bool:
    return _anomaly_mode


def set_anomaly_enabled(mode: bool) -> None:
    """Check every forward and backward for NaN/Inf, and record where each node was made."""
    global _anomaly_mode
    _anomaly_mode = bool(mode)


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
    _tensor_hooks_used = True  # from now on, backward passes look for hooks
    if t._hooks is None:
        t._hooks = {}
    return RemovableHandle(t._hooks, hook)


_scope: Scope | None = None  # the composite op being called now (scopes.py); recorded nodes keep it


def set_scope(scope: Scope | None) -> None:
    """Make `scope` the current composite call."""
    global _scope
    _scope = scope


def current_scope() -> Scope | None:
    return _scope


# tensor.py builds on this module; import it last so either can be imported first.
from . import tensor as tensor_module  # noqa: E402
