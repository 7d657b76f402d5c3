"""What the explorer page shows, as plain JSON-ready Python, computed without a browser.

`explorer_data(roots, params, run_backward, depth)` collects the graph as `draw_graph(collapse=False)`
does (viz/graph.py's Drawing: the same nodes, kinds, labels and edges), adds each node's values,
what it saves for backward and where it was made, then (with `run_backward`) runs the backward
pass under `trace_backward` and records each step. The result (page.py embeds it as JSON, and
static/explorer.js reads it):

    nodes   [{id, kind, label, name, op, doc, args, inputs, outputs, stats, grad, saved, saved_bytes,
              created_at, group}]: kind as draw_graph's (input, target, parameter, constant, op,
            output); label its lines as draw_graph prints them; inputs/outputs [{shape, dtype}];
            stats/grad one statistics dict (see `statistics`) per output, None where unknown;
            saved [{kind, shape, dtype, bytes}] (kinds of autograd.graph.held_arrays); group the
            innermost group holding the node, or None
    edges   [[source, target]]: data flows from node source to node target
    groups  [{id, kind, label, parent, level, collapsed, members, shapes, fold}]: one per
            composite-op call ("composite") or module call ("module") met; level a module call's
            (draw_graph's depth: 0 for the model's own call, 1 for its children), None for a
            composite call; collapsed whether it starts as one node (every composite call, as
            draw_graph's default; the module calls at level >= depth); members the nodes directly
            inside; shapes those of the values leaving it; fold {count, hidden: [group ids]} when
            the group is the first of a run of identical sibling module calls (viz/modules.py's
            fold_runs: ResNet's residual blocks), drawn as one node 'xN' until unfolded, else None
    depth   the level from which module calls start collapsed (explore's depth), None: none do
    trace   {ran, held_before, steps: [{node, op, sent, held, us}]}: the steps in the order the
            engine ran them; node the node whose VJP ran (None if not drawn; the gradient that
            arrived is that node's `grad`), sent the statistics of the gradient passed to each
            input, held the bytes the graph still holds once the step has run (each buffer once,
            as memory_report), us its time
    docs    the docstrings of the ops met (a node's `doc` indexes it): shapes and VJP formula
    notes   sentences for the page's banner (an already backwarded graph, how to see code lines)
"""
from __future__ import annotations

import inspect
import linecache
from typing import Any, Sequence

import numpy as np

from ...autograd.engine import topological_order
from ...autograd.function import Context
from ...autograd.graph import Node, Recomputed, base_buffer, held_arrays, saved_bytes
from ...introspect import parameter_names, trace_backward
from ...introspect.trace import BackwardTrace
from ...scopes import Scope
from ...tensor import Tensor
from ..graph import CLUSTER_STYLE, LEGEND, MODULE_CLUSTER_STYLE, STYLES, WARNING_STYLE, Drawing, short_argument
from ..modules import fold_runs, module_names, module_tree
from .values import Output, forward_values

HISTOGRAM_BINS = 16
DIGITS = 6  # significant digits kept of each statistic (the page shows 4): a lighter page


def statistics(value: Any, histogram: bool = True) -> dict[str, Any]:
    """{min, max, mean, norm, nan, inf[, histogram]} of an array or Tensor: min, max, mean and the
    Euclidean norm are of the finite elements (None if there are none), nan and inf count the
    others; histogram {range: [lo, hi], counts} spreads the finite elements over HISTOGRAM_BINS
    equal bins. (The page takes shapes and dtypes from the nodes' inputs and outputs.)"""
    a = np.asarray(value._array if isinstance(value, Tensor) else value)
    x = a.astype(np.float64).ravel()
    finite = x[np.isfinite(x)]
    stats: dict[str, Any] = {"min": None, "max": None, "mean": None, "norm": None, "nan": int(np.isnan(x).sum()),
                             "inf": int(np.isinf(x).sum())}
    if finite.size:
        stats.update(min=_rounded(finite.min()), max=_rounded(finite.max()), mean=_rounded(finite.mean()),
                     norm=_rounded(np.sqrt(np.sum(np.square(finite)))))
    if histogram:
        counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS) if finite.size else (np.zeros(0, int), [0, 0])
        stats["histogram"] = {"range": [_rounded(edges[0]), _rounded(edges[-1])], "counts": counts.tolist()}
    return stats


def _rounded(x: float) -> float:
    return float(f"{float(x):.{DIGITS}g}")


def explorer_data(roots: Sequence[Tensor], params: Any = None, run_backward: bool = True,
                  depth: int | None = None) -> dict[str, Any]:
    """The page's data for the graph behind `roots` (see the module docstring). With `run_backward`,
    runs `roots[0].backward()` (so the leaves' `.grad` fill, and the graph is freed as usual); module
    calls at level `depth` and below start collapsed."""
    names = parameter_names(params, "explore")
    drawing = Drawing(names, show_shapes=True, show_grads=False, show_saved=False, collapse=False)
    drawing.collect(roots)
    drawing.frame_input_edges(drawing.clusters())  # data given to a composite call, into its frame
    order = topological_order([root.grad_fn for root in roots])
    released = any(isinstance(node, Context) and node.released for node in order)
    ids = {name: i for i, name in enumerate(node.name for node in drawing.nodes.values())}
    groups = _Groups(order, params)
    docs: dict[type, int] = {}
    values = forward_values(order, roots)
    nodes = [_node_record(ids[node.name], node, drawing, values, groups, docs) for node in drawing.nodes.values()]
    edges = [[ids[src], ids[dst]] for src, dst in drawing.edges]
    data: dict[str, Any] = {
        "nodes": nodes, "edges": edges, "groups": groups.records(nodes, edges, depth), "depth": depth,
        "docs": [_doc(fn) for fn in docs], "notes": [],
        "styles": STYLES, "cluster_style": CLUSTER_STYLE, "module_cluster_style": MODULE_CLUSTER_STYLE,
        "warning_style": WARNING_STYLE,
        "legend": {kind: [title, meaning, style] for kind, (title, meaning, style) in LEGEND.items()},
    }
    # what the graph holds, per node and in all, before backward frees it
    buffers = {node: _buffers(node) for node in order}
    trace = None
    if released:
        data["notes"].append("This graph was already backwarded: the values its nodes had saved are freed, so "
                             "some statistics are missing, and its backward pass cannot be stepped through. Call "
                             "explore on a graph before calling backward() on it.")
    elif run_backward:
        with trace_backward(params) as trace:
            roots[0].backward()
    data["trace"] = _trace_record(trace, drawing, ids, buffers)
    for record, grads in zip(nodes, _grads(drawing, trace)):
        record["grad"] = grads
    if not any(node["created_at"] for node in nodes):
        data["notes"].append("To see the line of code that made each op, build the graph inside "
                             "tinygrad_cnn.autograd.detect_anomaly().")
    return data


def check_backward_root(root: Tensor) -> None:
    """run_backward starts from roots[0] with a gradient of 1: it must hold one element."""
    if root.numel() != 1:
        raise RuntimeError(f"explore: run_backward=True runs roots[0].backward(), which needs a scalar (one element), "
                           f"but roots[0] has shape {tuple(root.shape)}; pass a loss first, or run_backward=False")


# ---------------------------------------------------------------- nodes

def _node_record(i: int, node: Any, drawing: Drawing, values: dict[Output, np.ndarray], groups: _Groups,
                 docs: dict[type, int]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": i, "kind": node.kind, "label": [part for line in drawing.label(node) for part in line.split("\\n")],
        "name": "", "op": "", "doc": None, "args": {}, "inputs": [], "outputs": [], "stats": [], "grad": [],
        "saved": [], "saved_bytes": 0, "created_at": None,
        # an op is in the innermost call it was made in (a composite op or a module); a constant in its frame
        "group": groups.of(node.obj.scope if node.kind == "op" else node.cluster),
    }
    if node.kind == "op":
        ctx: Context = node.obj
        record.update(op=ctx.fn.__name__, doc=docs.setdefault(ctx.fn, len(docs)),
                      args={k: short_argument(v) for k, v in ctx.kwargs.items()},
                      inputs=[_input_meta(ctx, i) for i in range(len(ctx.next_functions))],
                      outputs=[_meta(*ctx.output_meta[nr]) for _, nr in node.shapes],
                      saved=[_held(kind, a) for kind, a in held_arrays(ctx)], saved_bytes=saved_bytes([ctx]),
                      created_at=_code_line(ctx.created_at))
        record["stats"] = [_value_stats(values.get((ctx, nr))) for _, nr in node.shapes]
    else:  # a leaf, or a root drawn as an output: the tensor itself
        t = node.tensors[0]
        if node.kind == "parameter":
            record["name"] = drawing.names[id(t)][0]
        record.update(outputs=[_meta(t.shape, t.dtype)], stats=[statistics(t)])
    return record


def _meta(shape: tuple, dtype: Any) -> dict[str, Any]:
    return {"shape": list(shape), "dtype": str(np.dtype(dtype))}


def _input_meta(ctx: Context, i: int) -> dict[str, Any] | None:
    source, nr = ctx.next_functions[i]
    if source is not None:
        return _meta(*source.output_meta[nr])
    t = ctx.constant_input(i)
    return None if t is None else _meta(t.shape, t.dtype)


def _value_stats(value: np.ndarray | None) -> dict[str, Any] | None:
    return None if value is None else statistics(value)


def _held(kind: str, a: Any) -> dict[str, Any]:
    return {"kind": kind, "shape": list(a.shape), "dtype": str(np.dtype(a.dtype)), "bytes": int(a.nbytes)}


def _code_line(site: tuple[str, int] | None) -> dict[str, Any] | None:
    if site is None:
        return None
    return {"file": site[0], "line": site[1], "code": linecache.getline(*site).strip()}


def _doc(fn: type) -> str:
    """The first paragraph of an op's docstring: its shapes and VJP formula (dL/dx = ...)."""
    return (inspect.getdoc(fn) or "").split("\n\n")[0]


# ---------------------------------------------------------------- groups

class _Groups:
    """The composite-op and module calls met (scopes.Scope, scopes.ModuleCall), numbered as met,
    parents first. Module calls are named and folded by viz/modules.py's tree of the graph's calls."""

    def __init__(self, order: Sequence[Node], params: Any) -> None:
        self.scopes: dict[int, tuple[int, Scope]] = {}  # id(scope) -> (group id, scope)
        self.tree = module_tree([n for n in order if isinstance(n, Context)], module_names(params))
        self.calls = {id(g.call): g for g in self.tree.walk() if g.call is not None}  # id(ModuleCall) -> group

    def of(self, scope: Scope | None) -> int | None:
        """The group id of `scope` (numbering it and its parents if new), or None."""
        if scope is None:
            return None
        if id(scope) not in self.scopes:
            self.of(scope.parent)
            self.scopes[id(scope)] = (len(self.scopes), scope)
        return self.scopes[id(scope)][0]

    def label(self, scope: Scope) -> str:
        """'conv2d stride=1 padding=2' for a composite call, 'layer1.0 (BasicBlock)' for a module call."""
        call = self.calls.get(id(scope))
        return scope.label if call is None else call.label

    def folds(self) -> dict[int, dict[str, Any]]:
        """{group id of the first call of a run of identical sibling module calls: {count, hidden}},
        hidden the group ids of the others (viz/modules.py's fold_runs)."""
        folds = {}
        for fold in fold_runs(self.tree):
            hidden = [self.scopes[id(g.call)][0] for g in fold.hidden if id(g.call) in self.scopes]
            if id(fold.shown.call) in self.scopes and hidden:
                folds[self.scopes[id(fold.shown.call)][0]] = {"count": 1 + len(hidden), "hidden": hidden}
        return folds

    def level(self, scope: Scope) -> int | None:
        """A module call's level in the module tree (0: the model's own call), None for a composite call."""
        call = self.calls.get(id(scope))
        return None if call is None else call.level

    def records(self, nodes: list[dict[str, Any]], edges: list[list[int]], depth: int | None) -> list[dict[str, Any]]:
        folds = self.folds()
        groups = []
        for gid, scope in self.scopes.values():
            kind, level = scope.kind, self.level(scope)
            collapsed = kind == "composite" or (depth is not None and level is not None and level >= depth)
            groups.append({"id": gid, "kind": kind, "label": self.label(scope), "parent": self.of(scope.parent),
                           "level": level, "collapsed": collapsed, "members": [], "shapes": [],
                           "fold": folds.get(gid)})
        for node in nodes:
            if node["group"] is not None:
                groups[node["group"]]["members"].append(node["id"])
        for src, dst in edges:  # a value leaving a group: its shape shows on the group's node
            outside = set(self.chain(groups, nodes[dst]["group"]))
            shapes = [tuple(out["shape"]) for out in nodes[src]["outputs"]]
            for gid in self.chain(groups, nodes[src]["group"]):
                if gid not in outside:
                    groups[gid]["shapes"] += [list(s) for s in shapes if list(s) not in groups[gid]["shapes"]]
        return groups

    @staticmethod
    def chain(groups: list[dict[str, Any]], gid: int | None) -> list[int]:
        """gid and its enclosing groups."""
        chain = []
        while gid is not None:
            chain.append(gid)
            gid = groups[gid]["parent"]
        return chain


# ---------------------------------------------------------------- the backward pass

def _buffers(node: Node) -> dict[int, int]:
    """{id of a buffer: its bytes} for the memory `node` keeps alive (recomputed values are not held)."""
    return {id(b): b.nbytes for b in (base_buffer(a) for _, a in held_arrays(node) if not isinstance(a, Recomputed))}


def _trace_record(trace: BackwardTrace | None, drawing: Drawing, ids: dict[str, int],
                  buffers: dict[Node, dict[int, int]]) -> dict[str, Any]:
    """The steps of `trace` (none if None), each with the bytes the graph still holds once it ran:
    the engine releases each node right after its VJP, and a buffer is freed once no unreleased
    node holds it."""
    holders: dict[int, int] = {}
    for held in buffers.values():
        for key in held:
            holders[key] = holders.get(key, 0) + 1
    sizes = {key: size for held in buffers.values() for key, size in held.items()}
    held_bytes = held_before = sum(sizes.values())
    steps = []
    for s in trace or ():
        for key in buffers.get(s.node, {}):
            holders[key] -= 1
            if holders[key] == 0:
                held_bytes -= sizes[key]
        node = drawing.nodes.get(id(s.node if s.tensor is None else s.tensor))
        steps.append({"node": None if node is None else ids[node.name], "op": s.op,
                      "sent": [None if g is None else statistics(g, histogram=False) for g in s.grad_inputs],
                      "held": held_bytes, "us": round(s.seconds * 1e6, 1)})
    return {"ran": trace is not None, "held_before": held_before, "steps": steps}


def _grads(drawing: Drawing, trace: BackwardTrace | None) -> list[list[dict[str, Any] | None]]:
    """Each node's gradients, one per output: those that reached it in the traced backward pass
    (an output node shows the one its root started from), else (no pass traced) a leaf's `.grad`."""
    arrived: dict[int, tuple] = {}  # id of the node that ran (of the leaf, for AccumulateGrad) -> grads
    for s in trace or ():
        arrived[id(s.node if s.tensor is None else s.tensor)] = (
            s.grad_output if isinstance(s.grad_output, tuple) else (s.grad_output,))
    grads = []
    for node in drawing.nodes.values():
        if node.kind == "op":
            found = [arrived.get(id(ctx), (None,) * ctx.num_outputs)[nr] for ctx, nr in node.shapes]
        elif node.kind == "output":
            root = node.tensors[0]
            found = [arrived.get(id(root.grad_fn), (None,) * root.grad_fn.num_outputs)[root.output_nr]]
        else:
            t = node.tensors[0]
            found = [arrived[id(t)][0] if id(t) in arrived else None if trace is not None else t.grad]
        grads.append([None if g is None else statistics(g) for g in found])
    return grads
