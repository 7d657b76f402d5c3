"""A graph's nodes grouped by the module call that made them, for drawings (graph.py) and the explorer.

While grad mode is on, `nn.Module.__call__` makes each call a scope (`scopes.ModuleCall`), and
every node recorded inside points to its innermost scope; this module turns those chains into a
tree of calls, names them after `params`, cuts the tree at a depth and folds identical repeated
blocks. Pure Python on the recorded nodes: no Graphviz here.

The data:

    ModuleGroup                  one module call; the root (path '', call None) is the whole graph
        path         'layer1.0.conv2': the module's name in params.named_modules(), the root module
                     of params by its class name ('ResNet20'), a module outside params by its class
                     name ('Linear'); a module's k-th call in the graph gets ' (call k)' ('fc (call 2)').
                     Paths of modules outside params can repeat: key groups by identity, not path.
        class_name   'BasicBlock'
        call         the scopes.ModuleCall (None for the root)
        parent       the enclosing group (the root for top-level calls; None for the root)
        children     the calls made directly inside, in call order
        level        how many calls enclose it: 0 for a top-level call (the model), -1 for the root
        nodes        the recorded nodes (autograd Contexts) made in this call and in no child call,
                     in the order given (graph order); a node made in a composite op (conv2d) inside
                     the call belongs to the call
        signature    what the call computed, not what it is named: its class, its parameters' shapes,
                     each node's composite op, primitive, arguments (arrays by shape) and shapes, and
                     its children's signatures in call order. Equal signatures: identical blocks.
        descriptors  one string per node of `nodes`, what the signature says of it

    Fold                         a run of N >= 2 consecutive sibling calls with equal signatures
        shown        the first call, which a drawing shows, marked "xN"
        hidden       the N - 1 others, in call order (a viewer unfolds the run by showing them)
        stand_in     {id(node): node}: each node of a hidden call -> the node at the same place in
                     `shown` (the blocks are identical, so their nodes pair up one to one)

    ModuleView(root, depth, fold)  what a drawing shows
        merged(ctx)  the call drawn as one node that holds ctx: a call at level `depth`
        stand_in(ctx), crosses_fold(src, dst), label(group), frames ...

How edges are redirected when folding: an edge into or out of a hidden call's node is drawn to
or from its stand-in in the shown call (the last block of a folded run feeds the next stage from
the shown block); an edge between two members of one run (block 1's output into block 2) is
dropped, as it would loop back into the shown block. A hidden call's parameters are not drawn.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from ..autograd.function import Context
from ..scopes import ModuleCall


@dataclass(eq=False)
class ModuleGroup:
    """One module call and the nodes made in it (see the module docstring)."""

    path: str
    class_name: str
    call: ModuleCall | None
    parent: ModuleGroup | None
    level: int
    nodes: list[Context] = field(default_factory=list)
    children: list[ModuleGroup] = field(default_factory=list)
    descriptors: list[str] = field(default_factory=list)
    signature: tuple = ()

    @property
    def label(self) -> str:
        """'layer1.0 (BasicBlock)'; a module named by its class is shown once ('Linear')."""
        return self.path if self.path.split(" (call ")[0] == self.class_name else f"{self.path} ({self.class_name})"

    def walk(self) -> Iterator[ModuleGroup]:
        """This group and every group inside, parents before children, in call order."""
        stack = [self]
        while stack:
            group = stack.pop()
            yield group
            stack.extend(reversed(group.children))

    def all_nodes(self) -> list[Context]:
        """The nodes of this call and of every call inside, in canonical order: each call's nodes
        sorted by descriptor, then its children's. Identical blocks list matching nodes at the same places."""
        nodes = []
        for group in self.walk():
            nodes += [ctx for _, _, ctx in sorted(zip(group.descriptors, range(len(group.nodes)), group.nodes),
                                                  key=lambda d: d[:2])]
        return nodes


@dataclass(eq=False)
class Fold:
    """A run of identical consecutive sibling calls, drawn as the first one marked "xN"."""

    shown: ModuleGroup
    hidden: list[ModuleGroup]
    stand_in: dict[int, Context]

    @property
    def count(self) -> int:
        return 1 + len(self.hidden)


def module_names(params: Any) -> dict[int, tuple[str, Any]]:
    """{id(module): (path, module)} for `params` a Module: its named_modules() paths
    ('layer1.0.conv2'), itself by its class name. Empty for None or a dict of tensors (nothing
    names modules then). The modules are kept so their ids stay theirs while the result is alive."""
    if params is None or not hasattr(params, "named_modules"):
        return {}
    return {id(m): (path or type(m).__name__, m) for path, m in params.named_modules()}


def module_tree(nodes: Iterable[Context], names: dict[int, tuple[str, Any]]) -> ModuleGroup:
    """The tree of module calls that made `nodes` (Contexts, e.g. from autograd.engine.topological_order;
    other nodes are skipped), named by `names` (from module_names), with signatures."""
    root = ModuleGroup("", "", None, None, -1)
    groups: dict[int, ModuleGroup] = {}  # id(ModuleCall) -> its group; the calls are held by the groups

    def group_of(call: ModuleCall | None) -> ModuleGroup:
        if call is None:
            return root
        group = groups.get(id(call))
        if group is None:
            parent = group_of(_enclosing_call(call.parent))
            group = groups[id(call)] = ModuleGroup("", call.name, call, parent, parent.level + 1)
            parent.children.append(group)
        return group

    for ctx in nodes:
        if isinstance(ctx, Context):
            group_of(_enclosing_call(ctx.scope)).nodes.append(ctx)
    calls_made: dict[int, int] = {}  # id(module) -> calls named so far
    for group in sorted(groups.values(), key=lambda g: g.call.index):
        group.children.sort(key=lambda g: g.call.index)
        module = group.call.module
        base = names[id(module)][0] if id(module) in names else group.class_name
        key = id(group) if module is None else id(module)  # a module gone since: its calls are not counted
        calls_made[key] = k = calls_made.get(key, 0) + 1
        group.path = base if k == 1 else f"{base} (call {k})"
    root.children.sort(key=lambda g: g.call.index)
    for group in reversed(list(root.walk())):  # children before parents
        group.descriptors = [_describe(ctx) for ctx in group.nodes]
        group.signature = (group.class_name, _parameter_shapes(group.call), tuple(sorted(group.descriptors)),
                           tuple(child.signature for child in group.children))
    return root


def fold_runs(root: ModuleGroup, depth: int | None = None) -> list[Fold]:
    """Every run of >= 2 consecutive sibling calls with equal signatures, down to level `depth`
    (None: all levels), outside the hidden members of other runs; in call order."""
    folds, stack = [], [root]
    while stack:
        group = stack.pop()
        if depth is not None and group.level >= depth:  # drawn as one node: nothing inside is shown
            continue
        children, i = group.children, 0
        while i < len(children):
            j = i + 1
            while j < len(children) and children[j].signature == children[i].signature:
                j += 1
            if j - i > 1:
                shown = children[i].all_nodes()
                stand_in = {id(ctx): twin for member in children[i + 1:j]
                            for ctx, twin in zip(member.all_nodes(), shown)}
                folds.append(Fold(children[i], children[i + 1:j], stand_in))
            stack.append(children[i])
            i = j
    return sorted(folds, key=lambda f: f.shown.call.index)


class ModuleView:
    """What a drawing shows of a module tree: calls down to level `depth` (None: all), those at
    level `depth` as single nodes, and with `fold` each run of identical blocks as its first one."""

    def __init__(self, root: ModuleGroup, depth: int | None = None, fold: bool = False) -> None:
        self.root, self.depth = root, depth
        self.folds = fold_runs(root, depth) if fold else []
        self.group_of: dict[int, ModuleGroup] = {}  # id(ctx) -> the call it was made in directly
        self.merged_into: dict[int, ModuleGroup] = {}  # id(ctx) -> the call at level depth holding it
        self.groups: dict[int, ModuleGroup] = {}  # id(ModuleCall) -> its group
        self._held: dict[int, set[int]] = {}  # id(group) -> ids of its module's parameters and buffers
        for group in root.walk():
            self.groups[id(group.call)] = group
            for ctx in group.nodes:
                self.group_of[id(ctx)] = group
        if depth is not None:
            for group in root.walk():
                if group.level == depth:
                    for inner in group.walk():
                        self.merged_into.update((id(ctx), group) for ctx in inner.nodes)
        self.count: dict[int, int] = {id(f.shown): f.count for f in self.folds}
        self.hidden_groups = {id(g) for f in self.folds for g in f.hidden}
        self.stand_ins: dict[int, Context] = {k: v for f in self.folds for k, v in f.stand_in.items()}
        # id(ctx) -> {fold: member}: the members of runs a node is in (runs nest), to drop edges between members
        self.member: dict[int, dict[int, int]] = {}
        for k, f in enumerate(self.folds):
            for m, group in enumerate([f.shown, *f.hidden]):
                for inner in group.walk():
                    for ctx in inner.nodes:
                        self.member.setdefault(id(ctx), {})[k] = m

    def stand_in(self, ctx: Context) -> Context:
        """ctx, or the node at its place in the shown call if it is in a hidden one (again if that
        one is hidden in a run folded inside the shown call)."""
        while id(ctx) in self.stand_ins:
            ctx = self.stand_ins[id(ctx)]
        return ctx

    def is_hidden(self, ctx: Context) -> bool:
        return id(ctx) in self.stand_ins

    def merged(self, ctx: Context) -> ModuleGroup | None:
        """The call at level `depth` drawn as one node that holds ctx (after stand_in), if any."""
        return self.merged_into.get(id(ctx))

    def group(self, ctx: Context) -> ModuleGroup:
        """The call ctx was made in directly (the root if none)."""
        return self.group_of.get(id(ctx), self.root)

    def holds(self, group: ModuleGroup, x: Any) -> bool:
        """Whether tensor x is a parameter or buffer of group's module (or of one inside it): a node
        standing for the call stands for it too."""
        held = self._held.get(id(group))
        if held is None:
            module = None if group.call is None else group.call.module
            tensors = [] if module is None else [*module.parameters(), *module.buffers()]
            held = self._held[id(group)] = {id(t) for t in tensors}
        return id(x) in held

    def call_group(self, call: ModuleCall | None) -> ModuleGroup:
        """The group of a module call (the root for None)."""
        return self.groups[id(call)]

    def crosses_fold(self, src: Context, dst: Context) -> bool:
        """An edge between two members of one folded run: not drawn."""
        a, b = self.member.get(id(src), {}), self.member.get(id(dst), {})
        return any(k in b and b[k] != m for k, m in a.items())

    def frames(self) -> list[ModuleGroup]:
        """The calls drawn as frames: above level `depth`, not hidden, not the root."""
        return [g for g in self.root.walk() if g.parent is not None and not self.is_hidden_group(g)
                and (self.depth is None or g.level < self.depth)]

    def is_hidden_group(self, group: ModuleGroup) -> bool:
        """Whether group is a hidden member of a fold, or inside one."""
        while group is not None:
            if id(group) in self.hidden_groups:
                return True
            group = group.parent
        return False

    def label(self, group: ModuleGroup) -> str:
        """'layer1.1 (BasicBlock) x2' for the shown call of a folded run, else group.label."""
        count = self.count.get(id(group))
        return group.label if count is None else f"{group.label} x{count}"


def _enclosing_call(scope: Any) -> ModuleCall | None:
    """The innermost module call around a scope (itself if it is one), past composite calls."""
    while scope is not None and scope.kind != "module":
        scope = scope.parent
    return scope


def _composite_path(scope: Any) -> str:
    """'cross_entropy/log_softmax stride=...': the composite calls a node is in, up to its module call."""
    labels = []
    while scope is not None and scope.kind == "composite":
        labels.append(scope.label)
        scope = scope.parent
    return "/".join(reversed(labels))


def _describe(ctx: Context) -> str:
    """What a node computed, without values: 'conv2d stride=1 padding=1: Conv2d(stride=(1, 1), ...)
    (8, 3, 8, 8) (4, 3, 3, 3) -> (8, 4, 8, 8) float32'."""
    inputs = []
    for i, (source, nr) in enumerate(ctx.next_functions):
        if source is not None:
            inputs.append(str(tuple(source.output_meta[nr][0])))
        else:
            x = ctx.constant_input(i)
            inputs.append("-" if x is None else str(tuple(x.shape)))
    arguments = ", ".join(f"{k}={_shape_of(v)}" for k, v in sorted(ctx.kwargs.items()))
    outputs = " ".join(f"{tuple(shape)} {np.dtype(dtype)}" for shape, dtype in ctx.output_meta)
    return f"{_composite_path(ctx.scope)}: {ctx.fn.__name__}({arguments}) {' '.join(inputs)} -> {outputs}"


def _shape_of(value: Any) -> str:
    """An argument as text, arrays by their shape and dtype (two masks of one shape are alike)."""
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shape_of(v) for v in value) + ")"
    return repr(value)


def _parameter_shapes(call: ModuleCall | None) -> tuple:
    """(name, shape, dtype) of the module's own parameters (its children's are in their signatures)."""
    module = None if call is None else call.module
    if module is None:
        return ()
    return tuple((name, tuple(p.shape), str(p.dtype)) for name, p in module._parameters.items() if p is not None)
