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
    module     blue 3-d box        a module call as one node ('layer1 (Sequential)'), group_modules with depth
    module frame  blue frame       the ops of one module call ('layer1.0 (BasicBlock)'), group_modules=True
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
from ..autograd.grad_mode import composite_scope
from ..autograd.graph import AccumulateGrad, RetainGrad, format_bytes, saved_bytes
from ..introspect import grad_text, norm, parameter_names
from ..scopes import Scope, compact
from ..tensor import Tensor
from .modules import ModuleGroup, ModuleView, module_names, module_tree

STYLES: dict[str, dict[str, str]] = {
    "input": {"shape": "box", "style": "filled,rounded", "fillcolor": "#fff2cc"},
    "target": {"shape": "note", "style": "filled", "fillcolor": "#e4d7f5"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#cfe2f3"},
    "constant": {"shape": "box", "style": "filled,rounded", "fillcolor": "#ffffff"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#eeeeee"},
    "nn_op": {"shape": "ellipse", "style": "filled", "fillcolor": "#d9ead3"},
    "output": {"shape": "octagon", "style": "filled", "fillcolor": "#f4cccc"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#c9daf8"},
}
CLUSTER_STYLE = {"style": "dashed,rounded", "color": "#6aa84f", "fontcolor": "#38761d"}
MODULE_CLUSTER_STYLE = {"style": "rounded", "color": "#3c78d8", "fontcolor": "#1c4587"}
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
    "module": ("module", "a module call as one node", STYLES["module"]),
    "frame": ("frame", "the primitives of one call", {"shape": "box", **CLUSTER_STYLE}),
    "module_frame": ("module frame", "the ops of one module call", {"shape": "box", **MODULE_CLUSTER_STYLE}),
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
               legend: bool = True, group_modules: bool = False, depth: int | None = None,
               fold: bool = False) -> graphviz.Digraph:
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
        group_modules: draw each module call (nn.Module.__call__) as a frame labelled by the
            module's name in `params` and its class ('layer1.0 (BasicBlock)'), nested as the modules
            nest (see viz/modules.py).
        depth: with group_modules, draw the calls nested `depth` deep (0: the top-level ones, the
            model) as single nodes standing for everything inside them; None draws every call.
        fold: with group_modules, draw a run of identical consecutive sibling calls (ResNet's residual
            blocks) as the first one, labelled 'x3'; edges of the others go to it.
    """
    check_roots(roots, "draw_graph")
    for option, value in (("show_shapes", show_shapes), ("show_grads", show_grads), ("show_saved", show_saved),
                          ("collapse", collapse), ("legend", legend), ("group_modules", group_modules),
                          ("fold", fold)):
        if not isinstance(value, bool):
            raise TypeError(f"draw_graph: {option} must be True or False, got {value!r}")
    check_depth(depth, "draw_graph")
    if not group_modules and (depth is not None or fold):
        raise ValueError(f"draw_graph: depth={depth!r} and fold={fold!r} apply to module groups; pass "
                         "group_modules=True too")
    graph = graph_template("graph", rankdir)
    drawing = Drawing(parameter_names(params, "draw_graph"), show_shapes, show_grads, show_saved, collapse)
    if group_modules:
        drawing.group_modules(module_names(params), depth, fold)
    drawing.collect(roots)
    drawing.emit(graph, legend)
    return graph


def check_depth(depth: Any, op: str) -> None:
    """Fail unless `depth` (how deep module calls are drawn) is an int >= 0 or None."""
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)):
        raise TypeError(f"{op}: depth must be an int >= 0 or None, got {depth!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"{op}: depth must be an int >= 0 or None, got {depth}")


def check_roots(roots: Sequence[Any], op: str) -> None:
    """Fail unless `roots` are Tensors with a graph (`op` names the caller in the message)."""
    if not roots:
        raise ValueError(f"{op}: give at least one Tensor to draw the graph of")
    for i, root in enumerate(roots):
        if not isinstance(root, Tensor):
            raise TypeError(f"{op}: root {i} is a {type(root).__name__}, not a Tensor")
        if root.grad_fn is None:
            raise RuntimeError(f"{op}: root {i} (shape {root.shape}) has no graph (it is a leaf, grad_fn is "
                               "None); draw a tensor computed from tensors that require grad, outside no_grad")


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
    """One node to draw: a leaf, a primitive op (a Context), a composite call (a Scope), a module
    call (a ModuleGroup, with depth) or an output. `cluster` is the frame it is drawn in: a composite
    call's (a Scope), a module call's (a ModuleGroup) or None."""

    __slots__ = ("name", "kind", "obj", "tensors", "shapes", "cluster", "contexts")

    def __init__(self, name: str, kind: str, obj: Any, cluster: Scope | ModuleGroup | None) -> None:
        self.name, self.kind, self.obj, self.cluster = name, kind, obj, cluster
        self.tensors: list[Tensor] = []  # the tensors it stands for that are alive: their gradients are shown
        self.shapes: list[tuple] = []  # the shapes of what it computes
        self.contexts: list[Context] = []  # the recorded nodes it draws (several for a composite op)


class Drawing:
    """The nodes and edges of one drawing. Nodes are keyed by the identity of the object they
    stand for; each node holds that object, so no id can be reused while the drawing is made.
    (The explorer, viz/explorer, collects its nodes with one too.)"""

    def __init__(self, names: dict[int, tuple[str, Tensor]], show_shapes: bool, show_grads: bool, show_saved: bool,
                 collapse: bool) -> None:
        self.names, self.show_shapes, self.show_grads, self.collapse = names, show_shapes, show_grads, collapse
        self.show_saved = show_saved
        self.nodes: dict[int, _Node] = {}
        self.edges: dict[tuple[str, str], dict[str, str]] = {}  # ordered, without repeats, with attributes
        self.scopes: dict[int, Scope] = {}  # the composite calls met, nested ones too
        self.targets: dict[int, Tensor] = {}  # tensors given to a composite call as its `target`
        self.frame_inputs: list[tuple[_Node, Scope]] = []  # data going into a call's frame (collapse=False)
        self.grouping: tuple[dict, int | None, bool] | None = None  # module names, depth, fold: see group_modules
        self.view: ModuleView | None = None  # the module calls, made by collect when grouping

    def group_modules(self, names: dict[int, tuple[str, Any]], depth: int | None, fold: bool) -> None:
        """Draw module calls as frames (viz/modules.py), those `depth` deep as nodes, runs of identical
        ones folded; `names` from modules.module_names. Call before collect."""
        self.grouping = (names, depth, fold)

    def node(self, obj: Any, kind: str, cluster: Scope | ModuleGroup | None = None) -> _Node:
        found = self.nodes.get(id(obj))
        if found is None:
            found = self.nodes[id(obj)] = _Node(f"n{len(self.nodes)}", kind, obj, cluster)
        return found

    def op_node(self, ctx: Context) -> _Node:
        """The node drawing ctx: its outermost composite call when collapsing, else its own. With
        module groups: that of its stand-in if it is in a folded call, or the node of the call at
        `depth` holding it; drawn in the frame of its module call."""
        frame = None
        if self.view is not None:
            ctx = self.view.stand_in(ctx)
            merged = self.view.merged(ctx)
            if merged is not None:
                node = self.node(merged, "module", self.module_frame(merged.parent))
                self.scope_met(composite_scope(ctx.scope), node)
                return node
            frame = self.module_frame(self.view.group(ctx))
        scope = composite_scope(ctx.scope)
        if self.collapse and scope is not None:
            node = self.node(scope.outermost, "nn_op", frame)
            self.scope_met(scope, node)
            return node
        self.scope_met(scope, None)
        return self.node(ctx, "op", frame if scope is None else scope)

    def scope_met(self, scope: Scope | None, node: _Node | None) -> None:
        """Note the targets given to scope and its enclosing composite calls, and the data of the
        outermost one, drawn into `node` (None: into its frame)."""
        while scope is not None and scope.kind == "composite" and id(scope) not in self.scopes:
            self.scopes[id(scope)] = scope
            self.targets.update((id(x), x) for name, x in scope.named_inputs if name == TARGET_ARGUMENT)
            if scope is scope.outermost:
                self.call_met(scope, node)
            scope = scope.parent

    def call_met(self, call: Scope, node: _Node | None) -> None:
        """Data a composite op was called with (the images given to conv2d, say) has no node of its
        own in the graph when it needs no gradient: only the call's recorded ops are there. Draw it
        as an input of the call: of `node` (its own, or the module's holding it), or of an op in its
        frame (see `frame_input_edges`)."""
        for x in call.inputs:
            if node is not None and node.kind == "module" and self.view.holds(node.obj, x):
                continue  # the module's own buffer (BatchNorm's running mean): its node stands for it
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
        if self.view is not None:  # a node in a folded call: its stand-in's output is shown
            ctx = self.view.stand_in(ctx)
        for hook in (ctx.pre_hooks or {}).get(nr, {}).values():  # a tensor kept by retain_grad() shows its grad
            t = hook.tensor() if isinstance(hook, RetainGrad) else None
            if t is not None and not any(t is u for u in node.tensors):
                node.tensors.append(t)
        if (ctx, nr) not in node.shapes:
            node.shapes.append((ctx, nr))

    def collect(self, roots: Sequence[Tensor]) -> None:
        order = [ctx for ctx in reversed(topological_order([root.grad_fn for root in roots]))  # inputs first
                 if isinstance(ctx, Context)]
        if self.grouping is not None:
            names, depth, fold = self.grouping
            self.view = ModuleView(module_tree(order, names), depth, fold)
        for ctx in order:
            dst = self.op_node(ctx)
            dst.contexts.append(ctx)
            if dst.kind == "op":
                for nr in range(ctx.num_outputs):
                    self.add_output(dst, ctx, nr)
            for i, (source, nr) in enumerate(ctx.next_functions):
                if isinstance(source, Context):
                    src = self.op_node(source)
                    if src is dst or (self.view is not None and self.view.crosses_fold(source, ctx)):
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
        if self.view is not None:
            self.place_parameters()

    def shows_leaf(self, x: Tensor, consumer: Context) -> bool:
        """Parameters, inputs and data are drawn; 0-d constants (lifted Python numbers) are not,
        nor, when collapsing, the constants a composite op makes for itself. With module groups, nothing
        a hidden call of a folded run takes, nor the parameters and buffers of a call drawn as one node."""
        merged = self.merged(consumer)
        if self.view is not None and (self.view.is_hidden(consumer) or merged and self.view.holds(merged, x)):
            return False
        if x.requires_grad or id(x) in self.names:
            return True
        if x.ndim == 0:
            return False
        scope = composite_scope(consumer.scope)
        if (self.collapse or merged) and scope is not None:
            return any(x is y for y in scope.outermost.inputs)
        return True

    def merged(self, ctx: Context) -> ModuleGroup | None:
        """The module call whose node ctx is drawn in (group_modules with depth), if any."""
        return None if self.view is None else self.view.merged(self.view.stand_in(ctx))

    def leaf_node(self, x: Tensor, consumer: Context) -> _Node:
        # a tensor made inside a composite call (not given to it) is drawn inside its frame
        scope = composite_scope(consumer.scope)
        inside = scope is not None and not any(x is y for y in scope.outermost.inputs)
        cluster = scope if inside and not self.collapse and self.merged(consumer) is None else None
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
        for frame, sub in sorted(clusters.values(), key=lambda c: -self.frame_depth(c[0])):
            parent = self.frame_parent(frame)
            (graph if parent is None else clusters[id(parent)][1]).subgraph(sub)
        for (src, dst), attrs in self.edges.items():
            graph.edge(src, dst, **attrs)
        if legend:
            used = {node.kind for node in self.nodes.values()}
            kinds = {type(frame) for frame, _ in clusters.values()}
            used |= {extra for extra, drawn in (("frame", Scope in kinds), ("module_frame", ModuleGroup in kinds),
                                                ("warning", warned)) if drawn}
            graph.subgraph(_legend([kind for kind in LEGEND if kind in used]))

    def frame_input_edges(self, clusters: dict[int, tuple[Scope, graphviz.Digraph]]) -> bool:
        """Edges for the data given to a call drawn as a frame, where no op inside takes it itself:
        nll_loss turns class targets into a one-hot constant, so the targets point at the constants
        made in the calls that were given them. Data that no constant comes from either (BatchNorm's
        running statistics while training, which it only updates) points at the frame's border;
        returns whether any edge does."""
        border = False
        for leaf, call in self.frame_inputs:
            inside = [n for n in self.nodes.values() if isinstance(n.cluster, Scope) and n.cluster.outermost is call]
            if any((leaf.name, n.name) in self.edges for n in inside):
                continue
            made = [n for n in inside if n.kind == "constant" and any(leaf.obj is y for y in n.cluster.inputs)]
            for n in made:
                self.edges[(leaf.name, n.name)] = {}
            if not made:
                self.edges[(leaf.name, inside[0].name)] = {"lhead": clusters[id(call)][1].name}
                border = True
        return border

    def clusters(self) -> dict[int, tuple[Scope | ModuleGroup, graphviz.Digraph]]:
        """A `cluster_k` subgraph for every composite call or module call holding a node, and for
        the calls around it."""
        clusters: dict[int, tuple[Scope | ModuleGroup, graphviz.Digraph]] = {}
        for node in self.nodes.values():
            frame = node.cluster
            while frame is not None and id(frame) not in clusters:
                attrs = {"label": frame.label, **CLUSTER_STYLE} if isinstance(frame, Scope) else \
                    {"label": self.view.label(frame), **MODULE_CLUSTER_STYLE}
                clusters[id(frame)] = (frame, graphviz.Digraph(f"cluster_{len(clusters)}", graph_attr=attrs))
                frame = self.frame_parent(frame)
        return clusters

    def module_frame(self, group: ModuleGroup | None) -> ModuleGroup | None:
        """The frame of a module call: none for the root (the whole graph)."""
        return None if group is None or group.parent is None else group

    def frame_parent(self, frame: Scope | ModuleGroup) -> Scope | ModuleGroup | None:
        """The frame around a frame: a composite call's enclosing composite call, else (with module
        groups) the frame of the module call it was made in; a module call's enclosing call."""
        if isinstance(frame, ModuleGroup):
            return self.module_frame(frame.parent)
        if frame.parent is not None and frame.parent.kind == "composite":
            return frame.parent
        return None if self.view is None else self.module_frame(self.view.call_group(frame.parent))

    def frame_depth(self, frame: Scope | ModuleGroup) -> int:
        depth = 0
        while (frame := self.frame_parent(frame)) is not None:
            depth += 1
        return depth

    def place_parameters(self) -> None:
        """With module frames, a parameter (or a module's buffer) goes in the innermost frame around every
        op that takes it (a conv's weight in the conv's frame; one shared by two layers in a frame around both)."""
        by_name = {node.name: node for node in self.nodes.values()}
        takers: dict[str, list[_Node]] = {}
        for src, dst in self.edges:
            takers.setdefault(src, []).append(by_name[dst])
        for node in self.nodes.values():
            held = node.kind == "input" and any(self.view.holds(g, node.obj) for g in self.view.root.children)
            if (node.kind == "parameter" or held) and node.name in takers:
                chains = [self.module_frames(taker) for taker in takers[node.name]]
                common = [frames[0] for frames in zip(*chains) if all(f is frames[0] for f in frames)]
                node.cluster = common[-1] if common else None

    def module_frames(self, node: _Node) -> list[ModuleGroup]:
        """The module frames a node is drawn in, outermost first."""
        frames, frame = [], node.cluster
        while frame is not None:
            if isinstance(frame, ModuleGroup):
                frames.append(frame)
            frame = self.frame_parent(frame)
        return frames[::-1]

    def label(self, node: _Node) -> list[str]:
        lines = []
        if node.kind in ("parameter", "input", "target", "constant", "output"):
            t = node.tensors[0]
            title = self.names[id(t)][0] if node.kind == "parameter" else node.kind
            lines.append(title + (f"\\n{tuple(t.shape)} {t.dtype}" if self.show_shapes else ""))
        elif node.kind == "nn_op":
            lines.append(node.obj.label)
        elif node.kind == "module":
            lines.append(self.view.label(node.obj))
        else:
            args = [f"{k}={short_argument(v)}" for k, v in node.obj.kwargs.items()]
            lines.append(" ".join([node.obj.fn.__name__] + args))
        if self.show_shapes and node.kind in ("op", "nn_op", "module"):
            lines.append(", ".join(str(tuple(ctx.output_meta[nr][0])) for ctx, nr in node.shapes))
        if self.show_saved and node.kind in ("op", "nn_op", "module"):
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


def short_argument(value: Any, limit: int = 28) -> str:
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
