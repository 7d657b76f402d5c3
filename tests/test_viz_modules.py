"""Graphs grouped by module: module-call scopes on nodes, the module tree (viz/modules.py), depth,
folding identical blocks, and draw_graph's group_modules/depth/fold. Expectations are worked out by
hand from the models' code."""
from __future__ import annotations

import gc
import re
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn import functional as F
from tinygrad_cnn.autograd.engine import topological_order
from tinygrad_cnn.autograd.function import Context
from tinygrad_cnn.autograd.grad_mode import modes
from tinygrad_cnn.models import BasicBlock, LeNet5
from tinygrad_cnn.scopes import ModuleCall, composite
from tinygrad_cnn.viz import STYLES, ModuleView, draw_graph, fold_runs, module_names, module_tree


def recorded(*roots) -> list[Context]:
    return [c for c in reversed(topological_order([r.grad_fn for r in roots])) if isinstance(c, Context)]


def tree(loss, params=None):
    return module_tree(recorded(loss), module_names(params))


def paths(group) -> list[str]:
    return [g.path for g in group.walk()][1:]  # the root's path is ''


class SmallResNet(nn.Module):
    """A stem, two stages of a strided first block and three identical ones, a linear head."""

    def __init__(self, widths=((4, 4), (4, 8)), stage1=None, stage2=None) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.stage1 = stage1 or nn.Sequential(BasicBlock(4, 4, stride=2), *(BasicBlock(4, 4) for _ in range(3)))
        self.stage2 = stage2 or nn.Sequential(BasicBlock(4, 8, stride=2), *(BasicBlock(8, 8) for _ in range(3)))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.stage2(self.stage1(self.stem(x))).mean((2, 3)))


def resnet_loss(model=None):
    tg.manual_seed(0)
    model = model or SmallResNet()
    return model, F.cross_entropy(model(tg.randn(2, 1, 8, 8)), tg.tensor([0, 2]))


BLOCK = ["conv1", "bn1", "relu", "conv2", "bn2", "relu (call 2)"]  # BasicBlock.forward's calls, in order


def block_paths(prefix: str, downsample: bool) -> list[str]:
    inner = [f"{prefix}.downsample", f"{prefix}.downsample.0", f"{prefix}.downsample.1"] if downsample else []
    return [prefix, *inner, *(f"{prefix}.{name}" for name in BLOCK)]


# ================================================================ module calls are scopes

def test_lenet_nodes_point_to_their_module_calls():
    tg.manual_seed(0)
    model = LeNet5()
    loss = F.cross_entropy(model(tg.randn(2, 1, 28, 28)), tg.tensor([1, 7]))
    conv = next(c for c in recorded(loss) if c.fn.__name__ == "Conv2d")
    scope = conv.scope  # conv2d (a composite op) inside nn.Conv2d inside LeNet5
    assert (scope.kind, scope.name, scope.path, scope.outermost) == ("composite", "conv2d", "conv2d", scope)
    layer = scope.parent
    assert (layer.kind, layer.name, layer.label, layer.module) == ("module", "Conv2d", "Conv2d", model.conv1)
    assert (layer.parent.name, layer.parent.module, layer.parent.parent) == ("LeNet5", model, None)
    root = tree(loss, model)
    assert paths(root) == ["LeNet5", "conv1", "relu", "pool", "conv2", "relu (call 2)", "pool (call 2)", "flatten",
                           "fc1", "relu (call 3)", "fc2", "relu (call 4)", "fc3"]
    lenet = root.children[0]
    assert (lenet.label, lenet.level, lenet.parent) == ("LeNet5", 0, root)
    assert [g.label for g in lenet.children[:2]] == ["conv1 (Conv2d)", "relu (ReLU)"]
    assert all(g.level == 1 and g.children == [] for g in lenet.children)
    assert [c.fn.__name__ for c in lenet.children[0].nodes] == ["Conv2d"]  # one primitive, bias included
    assert root.nodes and all(composite_name(c) in ("cross_entropy", "log_softmax", "nll_loss") for c in root.nodes)


def composite_name(ctx) -> str:
    return ctx.scope.outermost.name


def test_a_module_call_holds_its_module_weakly():
    layer = nn.Linear(2, 2)
    y = layer(tg.randn(1, 2))
    call = y.grad_fn.scope.parent
    assert call.module is layer and call.kind == "module"
    del layer
    gc.collect()
    assert call.module is None and call.name == "Linear"


def test_small_resnet_paths_and_the_scope_chain():
    model, loss = resnet_loss()
    root = tree(loss, model)
    expected = ["SmallResNet", "stem", "stage1", *block_paths("stage1.0", True)]
    expected += [p for i in (1, 2, 3) for p in block_paths(f"stage1.{i}", False)]
    expected += ["stage2", *block_paths("stage2.0", True)]
    expected += [p for i in (1, 2, 3) for p in block_paths(f"stage2.{i}", False)]
    assert paths(root) == expected + ["head"]
    # a node in stage2.1's second conv: conv2d, Conv2d, BasicBlock, Sequential, SmallResNet
    conv = next(c for c in root.children[0].children[2].children[1].children[3].nodes)
    chain, scope = [], conv.scope
    while scope is not None:
        chain.append((scope.kind, scope.name))
        scope = scope.parent
    assert chain == [("composite", "conv2d"), ("module", "Conv2d"), ("module", "BasicBlock"),
                     ("module", "Sequential"), ("module", "SmallResNet")]
    assert conv.scope.parent.module is model.stage2[1].conv2


def test_no_grad_makes_no_scopes_and_the_scope_is_restored():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(modes.scope)
            if x.shape[0] == 3:
                raise ValueError("probe")
            return x * 2

    probe = Probe()
    with tg.no_grad():
        probe(tg.randn(2))
    assert seen == [None]
    y = probe(tg.randn(2, requires_grad=True))
    assert isinstance(seen[-1], ModuleCall) and seen[-1].parent is None and y.grad_fn.scope is seen[-1]
    with pytest.raises(ValueError, match="probe"):
        probe(tg.randn(3))
    assert modes.scope is None


def test_hooked_modules_record_scopes_too():
    layer = nn.Linear(3, 3)
    layer.register_forward_hook(lambda module, inputs, output: output * 2)  # the hook's Mul is in the call
    layer.register_full_backward_hook(lambda module, gi, go: None)  # identity nodes mark the call's edges
    model = nn.Sequential(layer, nn.ReLU())
    loss = model(tg.randn(2, 3, requires_grad=True)).sum()
    root = tree(loss, model)
    assert paths(root) == ["Sequential", "0", "1"]
    hooked = root.children[0].children[0]
    own = sorted(c.fn.__name__ for c in hooked.nodes if c.scope.kind == "module")  # not made in F.linear
    assert own == ["BackwardHookFunction", "BackwardHookFunction", "Mul"]
    assert all(c.scope.parent.module is layer for c in recorded(loss) if c.fn.__name__ in ("MatMul", "Add"))


def test_threads_do_not_mix_scopes():
    barrier, results = threading.Barrier(2), {}

    def run(key):
        model = nn.Sequential(*(nn.Linear(2, 2) for _ in range(4)))
        out = tg.randn(1, 2)
        for _ in range(20):
            barrier.wait()  # both threads record at the same time
            out = model(out)
        results[key] = (model, out)

    threads = [threading.Thread(target=run, args=(k,)) for k in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for model, out in results.values():
        own = {id(m) for m in model.modules()}
        for ctx in recorded(out):
            scope = ctx.scope
            while scope is not None:
                assert scope.kind == "composite" or id(scope.module) in own
                scope = scope.parent


# ================================================================ scopes read as before

def test_composite_paths_stop_at_module_calls():
    class Inner(nn.Module):
        def forward(self, x):
            return F.softmax(x, dim=0) + x  # a composite call inside, and an op of its own

    inner = Inner()

    @composite("outer")
    def outer(x):
        return inner(x) * 3  # a module called inside a composite op

    y = outer(tg.randn(3, requires_grad=True))
    by_op = {c.fn.__name__: c.scope for c in recorded(y.sum())}
    assert (by_op["Mul"].path, by_op["Mul"].outermost) == ("outer", by_op["Mul"])
    assert by_op["Add"].kind == "module" and by_op["Add"].parent is by_op["Mul"]
    softmax = by_op["Exp"]
    assert (softmax.path, softmax.outermost.name) == ("softmax", "softmax")


def test_traces_and_anomaly_messages_name_composite_ops_only():
    class Log(nn.Module):
        def forward(self, x):
            return F.linear(x, tg.ones(2, 2)).log()

    model = nn.Sequential(Log())
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    with tg.trace_backward() as trace:
        model(x).sum().backward()
    scopes = {s.op: s.scope for s in trace.steps}
    assert scopes["LogBackward"] == "" and scopes["MatMulBackward"] == "linear"
    with tg.introspect.detect_anomaly(), pytest.raises(RuntimeError) as error:
        model(tg.tensor([[-1.0, -2.0]], requires_grad=True))
    assert re.search(r"detect_anomaly: Log produced NaN", str(error.value))


# ================================================================ the tree: names, depth, folds

def test_a_module_called_twice_is_two_calls_and_they_fold():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(self.fc(x))

    model = Twice()
    root = tree(model(tg.randn(2, 3)).sum(), model)
    first, second = root.children[0].children
    assert (first.path, second.path, second.label) == ("fc", "fc (call 2)", "fc (call 2) (Linear)")
    assert first.signature == second.signature
    (fold,) = fold_runs(root)
    assert (fold.shown, fold.hidden, fold.count) == (first, [second], 2)


def test_modules_outside_params_are_named_by_class():
    extra = nn.ReLU()

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return extra(self.fc(x))

    model = Model()
    loss = model(tg.randn(1, 2)).sum()
    assert paths(tree(loss, model)) == ["Model", "fc", "ReLU"]
    assert paths(tree(loss)) == ["Model", "Linear", "ReLU"]  # no params: every module by its class
    assert paths(tree(loss, {"w": model.fc.weight})) == ["Model", "Linear", "ReLU"]


def test_identical_blocks_fold_and_the_strided_first_does_not():
    model, loss = resnet_loss()
    root = tree(loss, model)
    folds = fold_runs(root)
    assert [(f.shown.path, [h.path for h in f.hidden], f.count) for f in folds] == [
        ("stage1.1", ["stage1.2", "stage1.3"], 3), ("stage2.1", ["stage2.2", "stage2.3"], 3)]
    stage1 = root.children[0].children[1]
    assert stage1.children[0].signature != stage1.children[1].signature
    # each hidden node stands in for the node at its place in the shown block: same op, same shapes
    for fold in folds:
        hidden = [c for g in fold.hidden for inner in g.walk() for c in inner.nodes]
        assert len(hidden) == len(fold.stand_in) == 2 * len(fold.shown.all_nodes())
        shown = set(map(id, fold.shown.all_nodes()))
        for ctx in hidden:
            twin = fold.stand_in[id(ctx)]
            assert id(twin) in shown and twin.fn is ctx.fn and twin.output_meta == ctx.output_meta


def test_another_width_or_stride_breaks_the_fold():
    wider = nn.Sequential(BasicBlock(4, 4, stride=2), BasicBlock(4, 4), BasicBlock(4, 8), BasicBlock(8, 8))
    strided = nn.Sequential(BasicBlock(8, 8, stride=2), BasicBlock(8, 8), BasicBlock(8, 8), BasicBlock(8, 8, stride=2))
    model, loss = resnet_loss(SmallResNet(stage1=wider, stage2=strided))
    folds = fold_runs(tree(loss, model))
    assert [(f.shown.path, [h.path for h in f.hidden]) for f in folds] == [("stage2.1", ["stage2.2"])]


def test_weights_of_other_values_still_fold():
    model, loss = resnet_loss()
    with tg.no_grad():
        model.stage1[2].conv1.weight.mul_(3.0)
    loss = F.cross_entropy(model(tg.randn(2, 1, 8, 8)), tg.tensor([0, 2]))
    assert [f.count for f in fold_runs(tree(loss, model))] == [3, 3]


def test_depth_merges_deeper_calls_into_their_ancestor():
    model, loss = resnet_loss()
    root = tree(loss, model)
    order = recorded(loss)
    view = ModuleView(root, depth=1)
    stage1 = root.children[0].children[1]
    conv = model.stage1[3].conv2
    deep = [c for c in order if c.scope.kind == "composite" and getattr(c.scope.parent, "module", None) is conv]
    assert deep and all(view.merged(c) is stage1 for c in deep)
    assert all(view.merged(c) is None for c in root.nodes)  # the loss is made outside the model
    top = ModuleView(root, depth=0)
    assert {id(top.merged(c)) for c in order if c not in root.nodes} == {id(root.children[0])}
    assert fold_runs(root, depth=1) == []  # the blocks are inside single nodes: nothing to fold
    assert [f.shown.path for f in fold_runs(root, depth=2)] == ["stage1.1", "stage2.1"]
    assert [g.path for g in ModuleView(root, depth=2, fold=True).frames()] == [
        "SmallResNet", "stem", "stage1", "stage2", "head"]  # the blocks, level 2, are nodes
    framed = [g.path for g in ModuleView(root, fold=True).frames()]
    assert "stage1.1.conv1" in framed and not any(p.startswith(("stage1.2", "stage1.3")) for p in framed)


# ================================================================ drawings

def test_frames_for_module_calls_with_folds():
    model, loss = resnet_loss()
    dot = draw_graph(loss, params=model, group_modules=True, fold=True).source
    assert 'label="stage1.1 (BasicBlock) x3"' in dot and 'label="stage2.1 (BasicBlock) x3"' in dot
    assert 'label="stage1.0 (BasicBlock)"' in dot and 'label="stage1.0.downsample (Sequential)"' in dot
    assert "stage1.2" not in dot and "stage1.3" not in dot  # hidden: their frames and weights are not drawn
    assert 'label="stage1.1.conv1.weight' in dot and "legend_module_frame" in dot
    plain = draw_graph(loss, params=model, group_modules=True).source
    assert "x3" not in plain and 'label="stage1.3.relu (call 2) (ReLU)"' in plain
    assert "legend_module_frame" not in draw_graph(loss, params=model).source


def test_depth_draws_module_nodes_and_edges_go_to_the_shown_block():
    model, loss = resnet_loss()
    graph = draw_graph(loss, params=model, group_modules=True, depth=2, fold=True, legend=True)
    module_node = r'^\s*(n\d+) \[label="([^"]*)".*fillcolor="' + STYLES["module"]["fillcolor"]
    nodes = {m[1]: m[2] for m in re.finditer(module_node, graph.source, re.M)}
    by_title = {label.split("\\n")[0]: name for name, label in nodes.items()}
    assert sorted(by_title) == ["stage1.0 (BasicBlock)", "stage1.1 (BasicBlock) x3", "stage2.0 (BasicBlock)",
                                "stage2.1 (BasicBlock) x3"]
    assert nodes[by_title["stage1.1 (BasicBlock) x3"]].endswith("\\n(2, 4, 4, 4)")  # its output's shape
    edges = set(re.findall(r"^\s*(n\d+) -> (n\d+)", graph.source, re.M))
    s10, s11, s20, s21 = (by_title[t] for t in sorted(by_title))
    assert {(s10, s11), (s11, s20), (s20, s21)} <= edges  # stage1.3's output leaves from the shown block
    assert (s11, s11) not in edges and all(src != dst for src, dst in edges)
    assert re.search(r"^\s*legend_module \[", graph.source, re.M)
    assert 'label="stage1 (Sequential)"' in graph.source and ".weight" in graph.source  # stem and head weights
    assert "stage1.0.conv1.weight" not in graph.source  # inside a module node
    one = draw_graph(loss, params=model, group_modules=True, depth=0).source
    assert one.count("fillcolor=\"" + STYLES["module"]["fillcolor"]) == 1 + 1  # SmallResNet, and the legend's sample
    assert 'label="SmallResNet\\n(2, 3)"' in one


@pytest.mark.parametrize("options, error, message", [
    ({"depth": 1}, ValueError, r"draw_graph: depth=1 and fold=False apply to module groups; pass group_modules=True"),
    ({"fold": True}, ValueError, r"pass group_modules=True"),
    ({"group_modules": True, "depth": -1}, ValueError, r"draw_graph: depth must be an int >= 0 or None, got -1"),
    ({"group_modules": True, "depth": "2"}, TypeError, r"draw_graph: depth must be an int >= 0 or None, got '2'"),
    ({"group_modules": True, "depth": True}, TypeError, r"depth must be an int"),
    ({"group_modules": True, "depth": 1.0}, TypeError, r"depth must be an int"),
    ({"group_modules": "yes"}, TypeError, r"draw_graph: group_modules must be True or False, got 'yes'"),
    ({"group_modules": True, "fold": 1}, TypeError, r"draw_graph: fold must be True or False, got 1"),
])
def test_bad_options(options, error, message):
    y = nn.Linear(2, 2)(tg.randn(1, 2)).sum()
    with pytest.raises(error, match=message):
        draw_graph(y, **options)


# ================================================================ any nesting: no node lost

class Scale(nn.Module):
    """y = 2 x: an op of its own."""

    def forward(self, x):
        return x * 2


class Residual(nn.Module):
    """y = inner(x) + x: a child call and an op of its own."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) + x


class Again(nn.Module):
    """y = inner(inner(x)): one module called twice."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(self.inner(x))


LEAVES = {"linear": lambda: nn.Linear(3, 3), "relu": nn.ReLU, "scale": Scale}
WRAPS = {"residual": Residual, "again": Again}

specs = st.recursive(
    st.sampled_from(sorted(LEAVES)),
    lambda inner: st.one_of(st.tuples(st.sampled_from(sorted(WRAPS)), inner),
                            st.lists(inner, min_size=1, max_size=4).map(lambda xs: ("seq", *xs))),
    max_leaves=12)


def build(spec) -> nn.Module:
    if isinstance(spec, str):
        return LEAVES[spec]()
    if spec[0] == "seq":
        return nn.Sequential(*(build(s) for s in spec[1:]))
    return WRAPS[spec[0]](build(spec[1]))


@given(specs, st.sampled_from([None, 0, 1, 2]))
def test_every_node_lands_in_one_group_and_folding_loses_none(spec, depth):
    model = build(spec)
    loss = model(tg.randn(2, 3, requires_grad=True)).sum()
    order = recorded(loss)
    root = module_tree(order, module_names(model))
    placed = [id(c) for g in root.walk() for c in g.nodes]
    assert sorted(placed) == sorted(map(id, order))  # each node in exactly one group
    assert [id(c) for c in root.nodes] == [id(c) for c in order if c.scope is None]  # the final sum
    view = ModuleView(root, depth, fold=True)
    for ctx in order:
        hiding = [f for f in view.folds for g in f.hidden for inner in g.walk() if any(c is ctx for c in inner.nodes)]
        assert len(hiding) == (1 if view.is_hidden(ctx) else 0)
        shown = view.stand_in(ctx)
        assert not view.is_hidden(shown) and shown.fn is ctx.fn and shown.output_meta == ctx.output_meta
    # drawn primitive by primitive, every node that is not hidden is one op node of its own
    graph = draw_graph(loss, params=model, group_modules=True, depth=depth, fold=True, collapse=False, legend=False)
    ops = len(re.findall(r'fillcolor="' + STYLES["op"]["fillcolor"], graph.source))
    assert ops == sum(not view.is_hidden(c) and view.merged(c) is None for c in order)
    assert len(view.folds) == len({id(f.shown) for f in view.folds})
    np.testing.assert_equal(sorted(f.count for f in view.folds), sorted(1 + len(f.hidden) for f in view.folds))
