"""The backward graph: nodes, the edges between them, and what a node saves for its VJP.

A recorded op is a `Node`. Its `next_functions[i]` is the edge `(node, output_nr)` along which
the gradient for its input i travels: to the node that made that input, to the `AccumulateGrad`
node of a leaf, or nowhere, `(None, 0)`, for an input that needs no gradient. The graph is made
of nodes only; a node keeps no Tensor but those its VJP reads (`SavedTensor`), and drops those
after a backward pass, so a kept `loss` keeps only the graph's structure. `memory_report(loss)`
lists what the nodes hold, in bytes, and the most they will hold at once during backward.

Everything here is written against what a tensor offers (`grad_fn`, `requires_grad`, its edge
`_edge`, its `_version_counter`, `detach()`), never against the Tensor class, which builds on
this module.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .grad_mode import composite_scope, modes


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


def topological_order(roots: Sequence[Node]) -> list[Node]:
    """Every node reachable from `roots`, each before the nodes it sends gradient to (so roots
    come first). Iterative depth-first search: no recursion limit on a 100,000-op chain."""
    order: list[Node] = []
    visited: set[Node] = set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            stack.extend([(n, False) for n, _ in reversed(node.next_functions) if n is not None and n not in visited])
    order.reverse()
    return order


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
    cycle), or a Tensor packed by saved_tensors_hooks. Other saved Tensors are kept as they are.
    `array`: the value is an array a primitive saved for itself (a mask), packed as a Tensor around
    it and handed back to the VJP as the array."""

    __slots__ = ("_value", "output_nr", "unpack_hook", "array")

    def __init__(self, t: Any, output_nr: int | None, hooks: tuple[Callable, Callable] | None,
                 array: bool = False) -> None:
        value = t if output_nr is None else t.detach()
        self._value = value if hooks is None else hooks[0](value)
        self.output_nr, self.unpack_hook, self.array = output_nr, None if hooks is None else hooks[1], array

    def unpack(self, node: Node) -> Any:
        if self.unpack_hook is not None:
            value = self.unpack_hook(self._value)
            return value._array if self.array else value
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
    Arrays a primitive op saves for itself (masks, a padded copy of the input) are packed too, as
    Tensors around them, as PyTorch's ops save such things as tensors."""
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


# ---------------------------------------------------------------- what the graph holds in memory

class Recomputed:
    """What a saved_tensors_hooks pack hook may return instead of the data: a promise that the value
    is recomputed when backward first unpacks any member of its `group` (utils.checkpoint's handles
    are Recomputed). `buffer` names the memory it will occupy: members with the same buffer share it.
    The group's `held` (SavedTensors or Tensors, read as a node's) is what it keeps to recompute from."""

    __slots__ = ("group", "buffer", "shape", "dtype", "nbytes")

    def __init__(self, group: Any, buffer: int, shape: tuple, dtype: Any, nbytes: int) -> None:
        self.group, self.buffer, self.shape, self.dtype, self.nbytes = group, buffer, shape, dtype, nbytes


@dataclass(frozen=True)
class HeldArray:
    """One array a node keeps alive. `nbytes` is the array's own size; `held` the bytes of the buffer
    it keeps alive that no row before it does (a view keeps its whole base alive; a second reference
    to memory already counted holds 0). A `checkpoint` row holds nothing until backward recomputes it."""

    node: Node
    kind: str  # see memory_report
    shape: tuple
    dtype: Any
    nbytes: int
    held: int


@dataclass
class MemoryReport:
    """What `memory_report` found: one row per array held, in the order backward visits the nodes."""

    rows: list[HeldArray]
    total: int  # bytes held by the graph, each buffer once
    recomputed: int  # bytes that checkpoints will recompute during backward
    peak: int  # the most bytes held at once during backward (saved + recomputed + gradients), simulated
    nodes: int  # nodes in the graph

    def node_bytes(self, node: Node) -> int:
        """The bytes this report counts for `node` (memory it shares with a node before it counts there)."""
        return sum(row.held for row in self.rows if row.node is node)

    def __str__(self) -> str:
        table = [("node", "kind", "shape", "dtype", "bytes", "held")]
        table += [(_node_title(r.node), r.kind, str(r.shape), str(r.dtype), str(r.nbytes), str(r.held))
                  for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        aligned = [[cell.ljust(w) for cell, w in zip(row[:4], widths)] + [cell.rjust(w) for cell, w in
                                                                          zip(row[4:], widths[4:])] for row in table]
        lines = ["  ".join(cells).rstrip() for cells in aligned]  # numbers right-aligned
        lines.insert(1, "-" * len(lines[0]))
        shared = sum(1 for r in self.rows if r.held == 0 and r.kind != "checkpoint")
        lines.append(f"{self.nodes} nodes hold {format_bytes(self.total)} in {len(self.rows)} arrays ({shared} "
                     f"sharing memory counted once); checkpoints recompute {format_bytes(self.recomputed)}; "
                     f"backward peak {format_bytes(self.peak)}")
        return "\n".join(lines)


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MiB"


def held_arrays(node: Node) -> list[tuple[str, Any]]:
    """(kind, array) for every array `node` keeps alive, or (`checkpoint`, Recomputed) for one that
    backward will recompute. Kinds, by where the node keeps it:

        tensor, output, array  what its forward saved (an input's Tensor, its own output, an array of
                               its own such as a mask), as `saved_tensors_info` names them
        packed                 what saved_tensors_hooks' pack hook returned, if an array or a Tensor
        checkpoint             a value saved inside checkpoint(): recomputed at backward
        checkpoint input       what that checkpoint() call keeps to recompute from (its inputs, and
                               its function's parameters and buffers if it is a Module)
        argument               an array among a primitive's keyword arguments (indices, masks)
        constant               an input that needs no gradient, kept for drawings until backward
        scope                  data given to a composite op (conv2d's images), kept for drawings
        attribute              a Tensor or array set on a custom Function's ctx
    """
    held: list[tuple[str, Any]] = []
    for name, value in vars(node).items():
        if name == "_saved":
            for v in value:
                held.append(_saved_kind(v))
                if isinstance(held[-1][1], Recomputed):  # and what its checkpoint() call recomputes from
                    held += [_group_input(w) for w in getattr(held[-1][1].group, "held", ())]
        elif name == "kwargs":
            held += [("argument", a) for v in value.values() for a in _arrays(v)]
        elif name == "constants":
            held += [("constant", t._array) for t in value if _is_tensor(t)]  # weakrefs after backward
        elif name == "scope":
            scope = value
            while scope is not None:  # data that needs no gradient is held; the rest weakly
                held += [("scope", t._array) for _, t in getattr(scope, "_inputs", ()) if _is_tensor(t)]
                scope = scope.parent
        elif name not in _NODE_STRUCTURE:
            held += [("attribute", a) for a in _arrays(value)]
    return [(kind, a) for kind, a in held if a is not None]


def _group_input(v: Any) -> tuple[str, Any]:
    kind, a = _saved_kind(v)
    return (kind if kind in ("checkpoint", "packed") else "checkpoint input"), a


_NODE_STRUCTURE = {"next_functions", "output_meta", "pre_hooks", "fn", "needs_input_grad", "arg_is_tensor"}


def _saved_kind(v: Any) -> tuple[str, Any]:
    if type(v) is SavedTensor:
        if v.unpack_hook is None:
            return ("tensor" if v.output_nr is None else "output"), v._value._array
        packed = v._value
        if isinstance(packed, Recomputed):
            return "checkpoint", packed
        return "packed", next(iter(_arrays(packed)), None)
    if _is_tensor(v):
        return "tensor", v._array
    return "array", v if isinstance(v, np.ndarray) else None


def _arrays(value: Any) -> list[np.ndarray]:
    """The arrays in a value: an array, a Tensor's, or those in a tuple or list of them."""
    if isinstance(value, np.ndarray):
        return [value]
    if _is_tensor(value):
        return [value._array]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    return []


def _is_tensor(x: Any) -> bool:
    return getattr(x, "_is_tensor", False)


def base_buffer(a: np.ndarray) -> np.ndarray:
    """The array that owns a's memory: a view keeps its whole base alive."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def saved_bytes(nodes: Sequence[Node]) -> int:
    """The bytes of memory these nodes keep alive, each buffer once (what checkpoints recompute is not held)."""
    buffers = {id(b): b.nbytes for node in nodes
               for b in (base_buffer(a) for kind, a in held_arrays(node) if not isinstance(a, Recomputed))}
    return sum(buffers.values())


def _grad_bytes(meta: tuple) -> int:
    shape, dtype = meta
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


_LISTED_ONCE = ("scope", "checkpoint", "checkpoint input")


def memory_report(root: Any, retain_graph: bool = False) -> MemoryReport:
    """The memory ledger of the graph behind `root` (a Tensor, or a node): every array its nodes keep
    alive (see `held_arrays` for the kinds), with shape, dtype and bytes, memory shared by several
    rows counted once, and the total.

    `peak` is the most memory held at once during `root.backward(retain_graph=retain_graph)`:
    held arrays still unreleased + checkpointed values recomputed and not yet consumed + gradients
    in flight (pending for a node, or just computed) + leaves' new `.grad`. It is simulated by
    walking the nodes in the engine's own order (`topological_order`), not measured: a report can
    be made before backward runs (to decide where to checkpoint), costs no backward pass, and counts
    exactly the memory the graph is responsible for. It leaves out what a VJP allocates for itself
    while it runs, and counts each gradient as a buffer of its own (Add sends one to both inputs).
    """
    node = root.grad_fn if _is_tensor(root) else root
    if node is None:
        raise RuntimeError(f"memory_report: the tensor (shape {tuple(root.shape)}) has no graph (grad_fn is None)")
    if not isinstance(node, Node):
        raise TypeError(f"memory_report: expected a Tensor or a graph node, got {type(root).__name__}")
    order = topological_order([node])
    rows, buffers, recomputed = [], {}, {}  # buffer id -> (buffer, its bytes); (group id, buffer) -> bytes
    keys: dict[Node, set] = {}  # the buffers each node holds, for the simulation
    listed: set[int] = set()
    for n in order:
        mine = keys[n] = set()
        for kind, a in held_arrays(n):
            # each node of a composite or checkpointed call holds the call's data: listed (and freed) once
            if kind in _LISTED_ONCE:
                if id(a) in listed:
                    continue
                listed.add(id(a))
            if kind == "checkpoint":
                key = (id(a.group), a.buffer)
                recomputed[key] = a.nbytes
                rows.append(HeldArray(n, kind, a.shape, a.dtype, a.nbytes, 0))
            else:
                b = base_buffer(a)
                key = id(b)
                new = key not in buffers
                buffers.setdefault(key, (b, b.nbytes))
                rows.append(HeldArray(n, kind, tuple(a.shape), a.dtype, a.nbytes, b.nbytes if new else 0))
            mine.add(key)
    total = sum(size for _, size in buffers.values())
    seed = (node, root.output_nr if _is_tensor(root) else 0)
    sizes = {**{k: size for k, (_, size) in buffers.items()}, **recomputed}
    peak = _simulated_peak(order, keys, sizes, set(recomputed), total, seed, retain_graph)
    return MemoryReport(rows, total, sum(recomputed.values()), peak, len(order))


def _simulated_peak(order: list[Node], keys: dict[Node, set], sizes: dict, recomputed: set, total: int,
                    seed: tuple[Node, int], retain_graph: bool) -> int:
    """The engine's backward sweep, counting bytes instead of computing (see memory_report)."""
    holders: dict[Any, int] = {}  # buffer -> nodes not yet released that hold it
    for mine in keys.values():
        for key in mine:
            holders[key] = holders.get(key, 0) + 1
    groups_done: set = set()
    held, leaf_grads = total, 0
    pending = {seed: _grad_bytes(seed[0].output_meta[seed[1]])}
    flight = pending[seed]
    peak = held + flight
    for node in order:
        incoming = [pending.pop((node, nr)) for nr in range(node.num_outputs) if (node, nr) in pending]
        if not incoming:  # the engine skips a node no gradient reached
            continue
        for group in {key[0] for key in keys[node] if key in recomputed} - groups_done:  # the first unpack
            groups_done.add(group)
            held += sum(sizes[k] for k in recomputed if k[0] == group and holders[k])
        sent = summed = 0
        for next_node, nr in node.next_functions:
            if next_node is not None:
                size = _grad_bytes(next_node.output_meta[nr])
                if (next_node, nr) in pending:  # the sum is a new buffer before the two addends go
                    summed = max(summed, size)
                else:
                    pending[next_node, nr] = size
                    sent += size
        if isinstance(node, AccumulateGrad):
            leaf_grads += sum(incoming)  # .grad is made from a copy of the gradient
        peak = max(peak, held + flight + sent + summed + leaf_grads)
        flight += sent - sum(incoming)
        for key in keys[node]:
            if retain_graph and key not in recomputed:  # recomputed values go once unpacked, in any case
                continue
            holders[key] -= 1
            if holders[key] == 0 and (key not in recomputed or key[0] in groups_done):
                held -= sizes[key]
    return peak


def _node_title(node: Node) -> str:
    scope = composite_scope(getattr(node, "scope", None))
    return node.name() if scope is None else f"{node.name()} ({scope.path})"
