"""Drawing the graph of a computation with graphviz.

    from tinygrad_cnn.viz import draw_graph, render
    loss = F.cross_entropy(model(x), y)
    dot = draw_graph(loss, params=model)   # a graphviz.Digraph; dot.source is the DOT text
    render(dot, "graph.svg")               # .svg/.png/.pdf need Graphviz's `dot` program

Data flows down the page: inputs and parameters at the top, the loss at the bottom.
Legend (`STYLES`):

    input      yellow rounded box  a leaf that is not a parameter (data, or a tensor made with requires_grad)
    parameter  blue box            a leaf named by `params` ('conv1.weight')
    op         grey ellipse        a primitive op (Add, MatMul, Conv2d): its arguments and output shape
    nn_op      green ellipse       a composite op as one node ('conv2d stride=1 padding=2'), collapse=True
    output     red octagon         a tensor given to draw_graph (the loss)
    cluster    green dashed frame  the primitives of one composite call, collapse=False
    red border                     with show_grads: a gradient that is all zero or not finite

Python numbers lifted to 0-d tensors are left out, and so, with collapse=True, are the
constants a composite op makes for itself (a one-hot target, say).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import graphviz
import numpy as np

from .autograd.engine import topological_order
from .autograd.function import Context
from .autograd.graph import AccumulateGrad, RetainGrad
from .introspect import grad_text, norm, parameter_names
from .scopes import Scope, compact
from .tensor import Tensor

STYLES: dict[str, dict[str, str]] = {
    "input": {"shape": "box", "style": "filled,rounded", "fillcolor": "#fff2cc"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#cfe2f3"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#eeeeee"},
    "nn_op": {"shape": "ellipse", "style": "filled", "fillcolor": "#d9ead3"},
    "output": {"shape": "octagon", "style": "filled", "fillcolor": "#f4cccc"},
}
CLUSTER_STYLE = {"style": "dashed,rounded", "color": "#6aa84f", "fontcolor": "#38761d"}
WARNING_STYLE = {"color": "#cc0000", "penwidth": "2"}
RANKDIRS = ("TB", "LR", "BT", "RL")
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}


def graph_template(name: str, rankdir: str) -> graphviz.Digraph:
    """An empty Digraph with this module's fonts and the given direction."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    font = {"fontname": "Helvetica", "fontsize": "10"}
    return graphviz.Digraph(name, graph_attr={"rankdir": rankdir, **font}, node_attr=font,
                            edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "#555555"})


def draw_graph(*roots: Tensor, params: Any = None, show_shapes: bool = True, show_grads: bool = False,
               collapse: bool = True, rankdir: str = "TB") -> graphviz.Digraph:
    """The graph that computed `roots`, as a graphviz Digraph.

    Args:
        roots: tensors with a graph (a loss, say); each gets an output node.
        params: a Module (its named_parameters) or a name -> Tensor dict, to name parameters.
        show_shapes: print shapes (and dtypes of leaves) on the nodes.
        show_grads: after a backward, print the shape and norm of each gradient available:
            leaves' `.grad`, and that of non-leaves which called `retain_grad()`.
        collapse: one node per composite op (conv2d, cross_entropy...); False draws the
            primitives of each call inside a frame (a `cluster_` subgraph).
        rankdir: 'TB' (top to bottom), 'LR', 'BT' or 'RL'.
    """
    if not roots:
        raise ValueError("draw_graph: give at least one Tensor to draw the graph of")
    for i, root in enumerate(roots):
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: root {i} is a {type(root).__name__}, not a Tensor")
        if root.grad_fn is None:
            raise RuntimeError(f"draw_graph: root {i} (shape {root.shape}) has no graph (it is a leaf, grad_fn is "
                               "None); draw a tensor computed from tensors that require grad, outside no_grad")
    for option, value in (("show_shapes", show_shapes), ("show_grads", show_grads), ("collapse", collapse)):
        if not isinstance(value, bool):
            raise TypeError(f"draw_graph: {option} must be True or False, got {value!r}")
    graph = graph_template("graph", rankdir)
    drawing = _Drawing(parameter_names(params, "draw_graph"), show_shapes, show_grads, collapse)
    drawing.collect(roots)
    drawing.emit(graph)
    return graph


def render(graph: graphviz.Digraph | Tensor | Sequence[Tensor], path: str | Path, **draw_options: Any) -> Path:
    """Write a drawing to `path` in the format of its extension: .svg, .png or .pdf (made by
    Graphviz's `dot` program), or .dot/.gv (the DOT text, no program needed).

    `graph` is a Digraph, or a Tensor (or several) drawn with `draw_graph(**draw_options)`.
    """
    path = Path(path)
    if isinstance(graph, Tensor):
        graph = draw_graph(graph, **draw_options)
    elif isinstance(graph, (list, tuple)):
        graph = draw_graph(*graph, **draw_options)
    elif not isinstance(graph, (graphviz.Digraph, graphviz.Graph)):
        raise TypeError(f"render: expected a graphviz Digraph or Tensors, got {type(graph).__name__}")
    elif draw_options:
        raise TypeError(f"render: drawing options {sorted(draw_options)} apply only when drawing Tensors")
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"render: cannot tell the format of {str(path)!r} from its extension; "
                         f"use one of {', '.join(FORMATS)}")
    fmt = FORMATS[path.suffix.lower()]
    if fmt is None:
        path.write_text(graph.source, encoding="utf-8")
        return path
    try:
        data = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise RuntimeError(
            f"render: making {path.name} needs Graphviz's `dot` program, which is not installed (or not on "
            "PATH). Install it with `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
            "(macOS) or `conda install graphviz`, or save the DOT text instead: render(graph, 'graph.dot')."
        ) from None
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- building a drawing

class _Node:
    """One node to draw: a leaf, a primitive op (a Context), a composite call (a Scope) or an output."""

    __slots__ = ("name", "kind", "obj", "tensors", "shapes", "cluster")

    def __init__(self, name: str, kind: str, obj: Any, cluster: Scope | None) -> None:
        self.name, self.kind, self.obj, self.cluster = name, kind, obj, cluster
        self.tensors: list[Tensor] = []  # the tensors it stands for that are alive: their gradients are shown
        self.shapes: list[tuple] = []  # the shapes of what it computes


class _Drawing:
    """The nodes and edges of one drawing. Nodes are keyed by the identity of the object they
    stand for; each node holds that object, so no id can be reused while the drawing is made."""

    def __init__(self, names: dict[int, tuple[str, Tensor]], show_shapes: bool, show_grads: bool,
                 collapse: bool) -> None:
        self.names, self.show_shapes, self.show_grads, self.collapse = names, show_shapes, show_grads, collapse
        self.nodes: dict[int, _Node] = {}
        self.edges: dict[tuple[str, str], dict[str, str]] = {}  # ordered, without repeats, with attributes
        self.calls: dict[int, Scope] = {}  # the outermost composite calls met
        self.frame_inputs: list[tuple[_Node, Scope]] = []  # data going into a call's frame (collapse=False)

    def node(self, obj: Any, kind: str, cluster: Scope | None = None) -> _Node:
        found = self.nodes.get(id(obj))
        if found is None:
            found = self.nodes[id(obj)] = _Node(f"n{len(self.nodes)}", kind, obj, cluster)
        return found

    def op_node(self, ctx: Context) -> _Node:
        """The node drawing ctx: its outermost composite call when collapsing, else its own."""
        if ctx.scope is not None and id(ctx.scope.outermost) not in self.calls:
            self.call_met(ctx.scope.outermost)
        if self.collapse and ctx.scope is not None:
            return self.node(ctx.scope.outermost, "nn_op")
        return self.node(ctx, "op", None if self.collapse else ctx.scope)

    def call_met(self, call: Scope) -> None:
        """Data a composite op was called with (the images given to conv2d, say) has no node of its
        own in the graph when it needs no gradient: only the call's recorded ops are there. Draw it
        as an input of the call: of its node, or of its frame (an edge ending at the frame's border)."""
        self.calls[id(call)] = call
        node = self.node(call, "nn_op") if self.collapse else None
        for x in call.inputs:
            if x.grad_fn is None and not x.requires_grad and x.ndim > 0 and id(x) not in self.names:
                leaf = self.node(x, "input")
                leaf.tensors = [x]
                if node is not None:
                    self.edges[(leaf.name, node.name)] = {}
                else:
                    self.frame_inputs.append((leaf, call))

    def add_output(self, node: _Node, ctx: Context, nr: int) -> None:
        """Note output `nr` of ctx as drawn by `node`: its shape, and its tensor if retain_grad() keeps
        its gradient (a graph holds no tensors but what its VJPs need)."""
        for hook in (ctx.pre_hooks or {}).get(nr, {}).values():  # a tensor kept by retain_grad() shows its grad
            t = hook.tensor() if isinstance(hook, RetainGrad) else None
            if t is not None and not any(t is u for u in node.tensors):
                node.tensors.append(t)
        if (ctx, nr) not in node.shapes:
            node.shapes.append((ctx, nr))

    def collect(self, roots: Sequence[Tensor]) -> None:
        for ctx in reversed(topological_order([root.grad_fn for root in roots])):  # inputs before results
            if not isinstance(ctx, Context):
                continue
            dst = self.op_node(ctx)
            if dst.kind == "op":
                for nr in range(ctx.num_outputs):
                    self.add_output(dst, ctx, nr)
            for i, (source, nr) in enumerate(ctx.next_functions):
                if isinstance(source, Context):
                    src = self.op_node(source)
                    if src is dst:
                        continue
                    self.add_output(src, source, nr)
                else:
                    x = source.variable if isinstance(source, AccumulateGrad) else ctx.constant_input(i)
                    if x is None or not self.shows_leaf(x, ctx):
                        continue
                    src = self.leaf_node(x, ctx)
                self.edges[(src.name, dst.name)] = {}
        for root in roots:
            src = self.op_node(root.grad_fn)
            self.add_output(src, root.grad_fn, root.output_nr)
            out = self.node(root, "output")
            out.tensors = [root]
            self.edges[(src.name, out.name)] = {}

    def shows_leaf(self, x: Tensor, consumer: Context) -> bool:
        """Parameters, inputs and data are drawn; 0-d constants (lifted Python numbers) are not,
        nor, when collapsing, the constants a composite op makes for itself."""
        if x.requires_grad or id(x) in self.names:
            return True
        if x.ndim == 0:
            return False
        if self.collapse and consumer.scope is not None:
            return any(x is y for y in consumer.scope.outermost.inputs)
        return True

    def leaf_node(self, x: Tensor, consumer: Context) -> _Node:
        kind = "parameter" if id(x) in self.names else "input"
        # a constant made inside a composite call is drawn inside its frame
        inside = consumer.scope is not None and not any(x is y for y in consumer.scope.outermost.inputs)
        node = self.node(x, kind, consumer.scope if inside and not self.collapse else None)
        node.tensors = [x]
        return node

    # ------------------------------------------------------------ emitting DOT

    def emit(self, graph: graphviz.Digraph) -> None:
        clusters = self.clusters()
        for node in self.nodes.values():
            target = graph if node.cluster is None else clusters[id(node.cluster)][1]
            attrs = dict(STYLES[node.kind])
            if self.show_grads and any(_bad_grad(t) for t in node.tensors):
                attrs.update(WARNING_STYLE)
            target.node(node.name, "\\n".join(self.label(node)), **attrs)
        for leaf, call in self.frame_inputs:
            members = [n.name for n in self.nodes.values() if n.cluster is not None and n.cluster.outermost is call]
            if not any((leaf.name, m) in self.edges for m in members):  # not already drawn into an op inside
                self.edges[(leaf.name, members[0])] = {"lhead": clusters[id(call)][1].name}
        if self.frame_inputs:
            graph.attr(compound="true")  # lets an edge end at a frame's border
        # inner frames go into their parents first, so attach the deepest ones first
        for scope, sub in sorted(clusters.values(), key=lambda c: -_depth(c[0])):
            (graph if scope.parent is None else clusters[id(scope.parent)][1]).subgraph(sub)
        for (src, dst), attrs in self.edges.items():
            graph.edge(src, dst, **attrs)

    def clusters(self) -> dict[int, tuple[Scope, graphviz.Digraph]]:
        """A `cluster_k` subgraph for every composite call holding a node, and for its enclosing calls."""
        clusters: dict[int, tuple[Scope, graphviz.Digraph]] = {}
        for node in self.nodes.values():
            scope = node.cluster
            while scope is not None and id(scope) not in clusters:
                sub = graphviz.Digraph(f"cluster_{len(clusters)}", graph_attr={"label": scope.label, **CLUSTER_STYLE})
                clusters[id(scope)] = (scope, sub)
                scope = scope.parent
        return clusters

    def label(self, node: _Node) -> list[str]:
        lines = []
        if node.kind in ("parameter", "input", "output"):
            t = node.tensors[0]
            title = self.names[id(t)][0] if node.kind == "parameter" else "constant" if node.cluster else node.kind
            lines.append(title + (f"\\n{tuple(t.shape)} {t.dtype}" if self.show_shapes else ""))
        elif node.kind == "nn_op":
            lines.append(node.obj.label)
        else:
            lines.append(" ".join([node.obj.fn.__name__] + [f"{k}={_short(v)}" for k, v in node.obj.kwargs.items()]))
        if self.show_shapes and node.kind in ("op", "nn_op"):
            lines.append(", ".join(str(tuple(ctx.output_meta[nr][0])) for ctx, nr in node.shapes))
        if self.show_grads:
            lines.extend(_grad_line(t) for t in node.tensors if t.grad is not None or node.kind == "parameter")
        return lines


def _depth(scope: Scope) -> int:
    depth = 0
    while scope.parent is not None:
        scope, depth = scope.parent, depth + 1
    return depth


def _short(value: Any, limit: int = 28) -> str:
    """A primitive's argument, short: arrays as their shape, long reprs cut."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value):
        text = "(" + ", ".join(f"array{v.shape}" if isinstance(v, np.ndarray) else repr(v) for v in value) + ")"
    else:
        text = str(compact(value))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _grad_line(t: Tensor) -> str:
    if t.grad is None:
        return "grad None"
    return f"grad {grad_text(t.grad)}"


def _bad_grad(t: Tensor) -> bool:
    """A gradient that vanished (all zero) or exploded (NaN/Inf)."""
    if t.grad is None:
        return False
    n = norm(t.grad)
    return n == 0.0 or not np.isfinite(n)
