"""The backward graph: nodes, the edges between them, and what a node saves for its VJP.

A recorded op is a `Node`. Its `next_functions[i]` is the edge `(node, output_nr)` along which
the gradient for its input i travels: to the node that made that input, to the `AccumulateGrad`
node of a leaf, or nowhere, `(None, 0)`, for an input that needs no gradient. The graph is made
of nodes only; a node keeps no Tensor but those its VJP reads (`SavedTensor`), and drops those
after a backward pass, so a kept `loss` keeps only the graph's structure.

Everything here is written against what a tensor offers (`grad_fn`, `requires_grad`, its edge
`_edge`, its `_version_counter`, `detach()`), never against the Tensor class, which builds on
this module.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from typing import Any, Callable, Iterator

from .grad_mode import modes


class Node:
    """A node of the backward graph: from the gradients of its outputs, those of its inputs."""

    next_functions: tuple[tuple[Node | None, int], ...] = ()
    output_meta: tuple[tuple[tuple, Any], ...] = ()  # (shape, dtype) of each output: gradients are fitted to it
    num_outputs = 1
    pre_hooks: dict[int, dict[int, Callable]] | None = None  # output_nr -> tensor hooks, by handle id

    def name(self) -> str:
        return type(self).__name__

    def apply(self, grads: list[Any]) -> tuple[Any, ...]:
        """The VJP: one gradient (or None) per output in, one (or None) per input out."""
        raise NotImplementedError

    def release(self) -> None:
        """Forget what the VJP needed; the edges stay, for drawings."""

    def run_pre_hooks(self, grads: list[Any]) -> list[Any]:
        """Pass each output's gradient through the hooks registered on that output, in order (those
        of retain_grad() last, so `.grad` keeps what the others made of it); a Tensor a hook returns
        replaces the gradient."""
        for nr, hooks in self.pre_hooks.items():
            ordered = sorted(hooks.values(), key=lambda hook: isinstance(hook, RetainGrad))
            for hook in ordered:
                if grads[nr] is None:
                    break
                new = hook(grads[nr])
                if new is not None:
                    if getattr(new, "shape", None) != grads[nr].shape:
                        got = f"shape {new.shape}" if hasattr(new, "shape") else type(new).__name__
                        raise RuntimeError(f"hook {getattr(hook, '__name__', hook)!r} returned {got} for a gradient "
                                           f"of shape {grads[nr].shape}: a hook must return None or a Tensor of the "
                                           "gradient's shape")
                    grads[nr] = new
        return grads

    def register_prehook(self, hook: Callable, output_nr: int = 0) -> RemovableHandle:
        """Call hook(grad) with the gradient of output `output_nr` before this node runs."""
        if self.pre_hooks is None:
            self.pre_hooks = {}
        return RemovableHandle(self.pre_hooks.setdefault(output_nr, {}), hook)

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class AccumulateGrad(Node):
    """Where a leaf's gradient ends: added to `variable.grad`. Built from the gradient of the last
    backward pass, out of place, so a `.grad` never shares memory with another tensor's. The leaf
    holds this node (one per leaf, shared by every graph it is in); the node holds the leaf weakly,
    so the two make no reference cycle (a leaf nobody holds has a `.grad` nobody can read)."""

    def __init__(self, variable: Any) -> None:
        self._variable = weakref.ref(variable)
        self._meta = ((variable.shape, variable.dtype),)

    @property
    def variable(self) -> Any:
        return self._variable()

    @property
    def output_meta(self) -> tuple:
        t = self._variable()
        return self._meta if t is None else ((t.shape, t.dtype),)

    @property
    def pre_hooks(self) -> dict | None:  # a leaf's hooks live on the leaf
        t = self._variable()
        return None if t is None or not t._hooks else {0: t._hooks}

    def apply(self, grads: list[Any]) -> tuple:
        g, = grads
        t = self._variable()
        if t is not None:
            # under create_graph, recording is on here, and .grad becomes a graph of its own
            t.grad = g.clone() if t.grad is None else t.grad + g
        return ()


class RetainGrad:
    """The hook retain_grad() puts on a non-leaf's node: its gradient is also kept in `.grad`."""

    def __init__(self, t: Any) -> None:
        self.tensor = weakref.ref(t)  # the graph must not keep the tensor alive

    def __call__(self, g: Any) -> None:
        t = self.tensor()
        if t is not None:
            t.grad = g.detach() if t.grad is None else t.grad + g.detach()


def gradient_edge(t: Any) -> tuple[Node, int]:
    """The edge along which t's gradient travels: (t.grad_fn, t.output_nr), or for a leaf
    (its AccumulateGrad, 0), made the first time the leaf is used in a graph."""
    edge = t._edge
    if edge is None:
        edge = t._edge = (AccumulateGrad(t), 0)
    return edge


# ---------------------------------------------------------------- saved tensors

class VersionCounter:
    """How many times a tensor's memory was changed in place (`value`, PyTorch's `t._version`), and
    when last (`changed_at`, on a clock shared by all tensors). Tensors sharing memory (detach(),
    views) share one counter, so a change through any of them is seen."""

    __slots__ = ("value", "changed_at")
    clock = 0  # the number of in-place changes made so far, by any tensor

    def __init__(self) -> None:
        self.value = self.changed_at = 0

    def bump(self) -> None:
        VersionCounter.clock += 1
        self.value, self.changed_at = self.value + 1, VersionCounter.clock


def check_unchanged(t: Any, node: Node) -> Any:
    """t, which `node` saved when the clock read `node.clock`, if it was not changed in place since."""
    counter = t._version_counter
    if counter is not None and counter.changed_at > node.clock:
        raise RuntimeError(
            f"one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"{node.name()} saved a tensor of shape {tuple(t.shape)} that was changed in place afterwards (it is "
            f"now at version {counter.value}). Find the in-place change after this op (a method ending "
            "in _, +=, t[...] = ...) and make it out of place (x = x + 1), or clone() before it.")
    return t


class SavedTensor:
    """A saved value that is not kept as the Tensor itself: the node's own output (kept detached and
    given its grad_fn back when unpacked, since output -> grad_fn -> output would be a reference
    cycle), or a Tensor packed by saved_tensors_hooks. Other saved Tensors are kept as they are."""

    __slots__ = ("_value", "output_nr", "unpack_hook")

    def __init__(self, t: Any, output_nr: int | None, hooks: tuple[Callable, Callable] | None) -> None:
        value = t if output_nr is None else t.detach()
        self._value = value if hooks is None else hooks[0](value)
        self.output_nr, self.unpack_hook = output_nr, None if hooks is None else hooks[1]

    def unpack(self, node: Node) -> Any:
        if self.unpack_hook is not None:
            return self.unpack_hook(self._value)
        value = check_unchanged(self._value, node)
        return value if self.output_nr is None else value._as_output_of(node, self.output_nr)


def current_pack_hooks() -> tuple[Callable, Callable] | None:
    """The (pack, unpack) hooks of this thread's innermost saved_tensors_hooks block, if any."""
    if not _SavedHooks.open:  # the common case: no block open in any thread
        return None
    return _saved_hooks.stack[-1] if _saved_hooks.stack else None


class _SavedHooks(threading.local):
    """The (pack, unpack) pairs of this thread's open saved_tensors_hooks blocks, innermost last;
    `open` counts the blocks open in all threads, a cheap test for the common case of none."""

    open = 0

    def __init__(self) -> None:
        self.stack: list[tuple[Callable, Callable]] = []


_saved_hooks = _SavedHooks()


@contextlib.contextmanager
def saved_tensors_hooks(pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]) -> Iterator[None]:
    """Inside the block, each Tensor a node saves for backward is stored as pack_hook(tensor), and
    unpack_hook(packed) gives it back to the VJP (as torch.autograd.graph.saved_tensors_hooks).
    Arrays a primitive op saves for itself (masks, indices) are not Tensors and are not packed."""
    _saved_hooks.stack.append((pack_hook, unpack_hook))
    _SavedHooks.open += 1
    try:
        yield
    finally:
        _SavedHooks.open -= 1
        _saved_hooks.stack.pop()


class SavedTensorInfo:
    """What `node.saved_tensors_info` shows of one saved value: no data, only its description."""

    def __init__(self, kind: str, shape: tuple, dtype: Any, nbytes: int) -> None:
        self.kind, self.shape, self.dtype, self.nbytes = kind, shape, dtype, nbytes

    def __repr__(self) -> str:
        return f"<saved {self.kind} shape={self.shape} dtype={self.dtype} bytes={self.nbytes}>"


# ---------------------------------------------------------------- hooks and observers

class RemovableHandle:
    """What the register_*hook functions return: `remove()` unregisters the hook; as a context
    manager, the hook is removed at the end of the `with` block."""

    _ids = itertools.count()

    def __init__(self, hooks: dict[int, Any], hook: Any, must_be_callable: bool = True) -> None:
        if must_be_callable and not callable(hook):
            raise TypeError(f"hooks must be callable, got {type(hook).__name__}")
        self.id, self.hooks = next(RemovableHandle._ids), hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


backward_observers: dict[int, Any] = {}  # read by the engine; change it with register_backward_observer


def register_backward_observer(observer: Any) -> RemovableHandle:
    """Have `observer.start_pass()` called when a backward pass starts, and
    `observer.record(node, grads, input_grads, seconds)` after each node's VJP (introspect's
    trace_backward is one). The engine times and reports steps only while an observer is
    registered or anomaly mode is on."""
    return RemovableHandle(backward_observers, observer, must_be_callable=False)


def watching() -> bool:
    """Whether the backward pass must report each step (to observers or anomaly checks)."""
    return bool(backward_observers) or modes.anomaly
