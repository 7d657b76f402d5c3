"""Drawing the graph of a computation with graphviz.

    from tinygrad_cnn.viz import draw_graph, render
    loss = F.cross_entropy(model(x), y)
    dot = draw_graph(loss, params=model)   # a graphviz.Digraph; dot.source is the DOT text
    render(dot, "graph.svg")               # .svg/.png/.pdf need Graphviz's `dot` program

Data flows down the page: inputs and parameters at the top, the loss at the bottom.
Legend (`STYLES`; the figure shows the kinds it uses in a frame of its own unless legend=False):

    input      yellow rounded box  a leaf that is not a parameter (data, or a tensor made with requires_grad)
    target     purple note         a leaf given to a loss as its `target` argument (the class labels)
    parameter  blue box            a leaf named by `params` ('conv1.weight')
    constant   white rounded box   a tensor a composite op made for itself (a one-hot target), collapse=False
    op         grey ellipse        a primitive op (Add, MatMul, Conv2d): its arguments and output shape
    nn_op      green ellipse       a composite op as one node ('conv2d stride=1 padding=2'), collapse=True
    output     red octagon         a tensor given to draw_graph (the loss)
    frame      green dashed frame  the primitives of one composite call, collapse=False
    red border                     with show_grads: a gradient that is all zero or not finite

Python numbers lifted to 0-d tensors are left out, and so, with collapse=True, are the
constants a composite op makes for itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import graphviz
import numpy as np

from ..autograd.engine import topological_order
from ..autograd.function import Context
from ..autograd.graph import AccumulateGrad, RetainGrad, format_bytes, saved_bytes
from ..introspect import grad_text, norm, parameter_names
from ..scopes import Scope, compact
from ..tensor import Tensor

STYLES: dict[str, dict[str, str]] = {
    "input": {"shape": "box", "style": "filled,rounded", "fillcolor": "#fff2cc"},
    "target": {"shape": "note", "style": "filled", "fillcolor": "#e4d7f5"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#cfe2f3"},
    "constant": {"shape": "box", "style": "filled,rounded", "fillcolor": "#ffffff"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#eeeeee"},
    "nn_op": {"shape": "ellipse", "style": "filled", "fillcolor": "#d9ead3"},
    "output": {"shape": "octagon", "style": "filled", "fillcolor": "#f4cccc"},
}
CLUSTER_STYLE = {"style": "dashed,rounded", "color": "#6aa84f", "fontcolor": "#38761d"}
WARNING_STYLE = {"color": "#cc0000", "penwidth": "2"}
# the legend's entries: (title, meaning, style) for each node kind, then the frame and the red border
LEGEND: dict[str, tuple[str, str, dict[str, str]]] = {
    "input": ("input", "data, or another leaf", STYLES["input"]),
    "target": ("target", "a loss's target (labels)", STYLES["target"]),
    "parameter": ("parameter", "a leaf named by params", STYLES["parameter"]),
    "constant": ("constant", "made inside a composite op", STYLES["constant"]),
    "op": ("op", "a primitive op", STYLES["op"]),
    "nn_op": ("nn op", "one call of a composite op", STYLES["nn_op"]),
    "output": ("output", "a tensor drawn (the loss)", STYLES["output"]),
    "frame": ("frame", "the primitives of one call", {"shape": "box", **CLUSTER_STYLE}),
    "warning": ("red border", "gradient all 0, NaN or Inf", {"shape": "box", "style": "rounded", **WARNING_STYLE}),
}
# PyTorch's losses call what the prediction is compared with `target`: a leaf given as this argument to a
# composite op (cross_entropy, nll_loss, mse_loss...) is drawn as a target, not as an input
TARGET_ARGUMENT = "target"
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
               show_saved: bool = False, collapse: bool = True, rankdir: str = "TB",
               legend: bool = True) -> graphviz.Digraph:
    """The graph that computed `roots`, as a graphviz Digraph.

    Args:
        roots: tensors with a graph (a loss, say); each gets an output node.
        params: a Module (its named_parameters) or a name -> Tensor dict, to name parameters.
        show_shapes: print shapes (and dtypes of leaves) on the nodes.
        show_grads: after a backward, print the shape and norm of each gradient available:
            leaves' `.grad`, and that of non-leaves which called `retain_grad()`.
        show_saved: print on each op the memory its nodes keep for backward ('saved 1.2 MiB', each
            buffer once; see autograd.graph.memory_report); 'saved 0 B' once backward has freed it.
        collapse: one node per composite op (conv2d, cross_entropy...); False draws the
            primitives of each call inside a frame (a `cluster_` subgraph).
        rankdir: 'TB' (top to bottom), 'LR', 'BT' or 'RL'.
        legend: add a frame `cluster_legend` with one sample node for each kind of node drawn
            (nodes `legend_<kind>`, styled as the kind), the frame and the red border if any.
    """
    if not roots:
        raise ValueError("draw_graph: give at least one Tensor to draw the graph of")
    for i, root in enumerate(roots):
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: root {i} is a {type(root).__name__}, not a Tensor")
        if root.grad_fn is None:
            raise RuntimeError(f"draw_graph: root {i} (shape {root.shape}) has no graph (it is a leaf, grad_fn is "
                               "None); draw a tensor computed from tensors that require grad, outside no_grad")
    for option, value in (("show_shapes", show_shapes), ("show_grads", show_grads), ("show_saved", show_saved),
                          ("collapse", collapse), ("legend", legend)):
        if not isinstance(value, bool):
            raise TypeError(f"draw_graph: {option} must be True or False, got {value!r}")
    graph = graph_template("graph", rankdir)
    drawing = _Drawing(parameter_names(params, "draw_graph"), show_shapes, show_grads, show_saved, collapse)
    drawing.collect(roots)
    drawing.emit(graph, legend)
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

    __slots__ = ("name", "kind", "obj", "tensors", "shapes", "cluster", "contexts")

    def __init__(self, name: str, kind: str, obj: Any, cluster: Scope | None) -> None:
        self.name, self.kind, self.obj, self.cluster = name, kind, obj, cluster
        self.tensors: list[Tensor] = []  # the tensors it stands for that are alive: their gradients are shown
        self.shapes: list[tuple] = []  # the shapes of what it computes
        self.contexts: list[Context] = []  # the recorded nodes it draws (several for a composite op)


class _Drawing:
    """The nodes and edges of one drawing. Nodes are keyed by the identity of the object they
    stand for; each node holds that object, so no id can be reused while the drawing is made."""

    def __init__(self, names: dict[int, tuple[str, Tensor]], show_shapes: bool, show_grads: bool, show_saved: bool,
                 collapse: bool) -> None:
        self.names, self.show_shapes, self.show_grads, self.collapse = names, show_shapes, show_grads, collapse
        self.show_saved = show_saved
        self.nodes: dict[int, _Node] = {}
        self.edges: dict[tuple[str, str], dict[str, str]] = {}  # ordered, without repeats, with attributes
        self.scopes: dict[int, Scope] = {}  # the composite calls met, nested ones too
        self.targets: dict[int, Tensor] = {}  # tensors given to a composite call as its `target`
        self.frame_inputs: list[tuple[_Node, Scope]] = []  # data going into a call's frame (collapse=False)

    def node(self, obj: Any, kind: str, cluster: Scope | None = None) -> _Node:
        found = self.nodes.get(id(obj))
        if found is None:
            found = self.nodes[id(obj)] = _Node(f"n{len(self.nodes)}", kind, obj, cluster)
        return found

    def op_node(self, ctx: Context) -> _Node:
        """The node drawing ctx: its outermost composite call when collapsing, else its own."""
        if ctx.scope is not None:
            self.scope_met(ctx.scope)
        if self.collapse and ctx.scope is not None:
            return self.node(ctx.scope.outermost, "nn_op")
        return self.node(ctx, "op", None if self.collapse else ctx.scope)

    def scope_met(self, scope: Scope | None) -> None:
        """Note the targets given to scope and its enclosing calls, and the data of the outermost one."""
        while scope is not None and id(scope) not in self.scopes:
            self.scopes[id(scope)] = scope
            self.targets.update((id(x), x) for name, x in scope.named_inputs if name == TARGET_ARGUMENT)
            if scope.parent is None:
                self.call_met(scope)
            scope = scope.parent

    def call_met(self, call: Scope) -> None:
        """Data a composite op was called with (the images given to conv2d, say) has no node of its
        own in the graph when it needs no gradient: only the call's recorded ops are there. Draw it
        as an input of the call: of its node, or of an op in its frame (see `frame_input_edges`)."""
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
            dst.contexts.append(ctx)
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
        for node in self.nodes.values():  # a leaf may be drawn before the call that names it a target is met
            if node.kind == "input" and id(node.obj) in self.targets:
                node.kind = "target"

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
        # a tensor made inside a composite call (not given to it) is drawn inside its frame
        inside = consumer.scope is not None and not any(x is y for y in consumer.scope.outermost.inputs)
        cluster = consumer.scope if inside and not self.collapse else None
        kind = "parameter" if id(x) in self.names else "input" if cluster is None else "constant"
        node = self.node(x, kind, cluster)
        node.tensors = [x]
        return node

    # ------------------------------------------------------------ emitting DOT

    def emit(self, graph: graphviz.Digraph, legend: bool) -> None:
        clusters = self.clusters()
        warned = False
        for node in self.nodes.values():
            frame = graph if node.cluster is None else clusters[id(node.cluster)][1]
            attrs = dict(STYLES[node.kind])
            if self.show_grads and any(_bad_grad(t) for t in node.tensors):
                attrs.update(WARNING_STYLE)
                warned = True
            frame.node(node.name, "\\n".join(self.label(node)), **attrs)
        if self.frame_input_edges(clusters):
            graph.attr(compound="true")  # lets an edge end at a frame's border
        # inner frames go into their parents first, so attach the deepest ones first
        for scope, sub in sorted(clusters.values(), key=lambda c: -_depth(c[0])):
            (graph if scope.parent is None else clusters[id(scope.parent)][1]).subgraph(sub)
        for (src, dst), attrs in self.edges.items():
            graph.edge(src, dst, **attrs)
        if legend:
            used = {node.kind for node in self.nodes.values()}
            used |= {extra for extra, drawn in (("frame", clusters), ("warning", warned)) if drawn}
            graph.subgraph(_legend([kind for kind in LEGEND if kind in used]))

    def frame_input_edges(self, clusters: dict[int, tuple[Scope, graphviz.Digraph]]) -> bool:
        """Edges for the data given to a call drawn as a frame, where no op inside takes it itself:
        nll_loss turns class targets into a one-hot constant, so the targets point at the constants
        made in the calls that were given them. Data that no constant comes from either (BatchNorm's
        running statistics while training, which it only updates) points at the frame's border;
        returns whether any edge does."""
        border = False
        for leaf, call in self.frame_inputs:
            inside = [n for n in self.nodes.values() if n.cluster is not None and n.cluster.outermost is call]
            if any((leaf.name, n.name) in self.edges for n in inside):
                continue
            made = [n for n in inside if n.kind == "constant" and any(leaf.obj is y for y in n.cluster.inputs)]
            for n in made:
                self.edges[(leaf.name, n.name)] = {}
            if not made:
                self.edges[(leaf.name, inside[0].name)] = {"lhead": clusters[id(call)][1].name}
                border = True
        return border

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
        if node.kind in ("parameter", "input", "target", "constant", "output"):
            t = node.tensors[0]
            title = self.names[id(t)][0] if node.kind == "parameter" else node.kind
            lines.append(title + (f"\\n{tuple(t.shape)} {t.dtype}" if self.show_shapes else ""))
        elif node.kind == "nn_op":
            lines.append(node.obj.label)
        else:
            lines.append(" ".join([node.obj.fn.__name__] + [f"{k}={_short(v)}" for k, v in node.obj.kwargs.items()]))
        if self.show_shapes and node.kind in ("op", "nn_op"):
            lines.append(", ".join(str(tuple(ctx.output_meta[nr][0])) for ctx, nr in node.shapes))
        if self.show_saved and node.kind in ("op", "nn_op"):
            lines.append(f"saved {format_bytes(saved_bytes(node.contexts))}")
        if self.show_grads:
            lines.extend(_grad_line(t) for t in node.tensors if t.grad is not None or node.kind == "parameter")
        return lines


def _legend(kinds: Sequence[str]) -> graphviz.Digraph:
    """The legend's frame: a sample node per kind, `title` over `meaning`, stacked by invisible edges."""
    legend = graphviz.Digraph("cluster_legend", graph_attr={"label": "legend", "style": "rounded", "color": "#999999"})
    for kind in kinds:
        title, meaning, style = LEGEND[kind]
        legend.node(f"legend_{kind}", f"{title}\\n{meaning}", **style)
    for above, below in zip(kinds, kinds[1:]):
        legend.edge(f"legend_{above}", f"legend_{below}", style="invis")
    return legend


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
