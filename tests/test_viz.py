"""Graph drawing: the structure of the DOT graph for small graphs counted by hand, LeNet-5 drawn
collapsed and expanded, targets apart from inputs, edges into frames, the legend, gradients on the
nodes, rendering, and errors."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn import functional as F
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.autograd.graph import AccumulateGrad
from tinygrad_cnn.scopes import composite
from tinygrad_cnn.viz import CLUSTER_STYLE, STYLES, WARNING_STYLE, draw_graph, render

ROOT = Path(__file__).resolve().parent.parent
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")


VALUE = r'("(?:[^"\\]|\\.)*"|[^\s\]]+)'  # quoted, or a plain word
LABEL = "label=" + VALUE


def unquote(label: str) -> str:
    return label.strip('"').replace("\\n", "\n")


def attributes(text: str) -> dict[str, str]:
    return {m[1]: unquote(m[2]) for m in re.finditer(r"(\w+)=" + VALUE, text)}


def statements(graph, legend: bool = False) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict]]]:
    """({node: attributes}, [(tail, head, attributes)]) of the nodes and edges in the DOT text;
    those of the legend (named legend_...) only if `legend`."""
    shown = lambda name: legend or not name.startswith("legend_")  # noqa: E731
    nodes = {m[1]: attributes(m[2]) for m in re.finditer(r"^\s*(\w+) \[(.*)\]$", graph.source, re.M)
             if m[1] not in ("graph", "node", "edge") and shown(m[1])}
    edges = [(m[1], m[2], attributes(m[3] or "")) for m in re.finditer(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$",
                                                                       graph.source, re.M) if shown(m[1])]
    return nodes, edges


def parse(graph) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]]]:
    """({node: (label, fillcolor)}, [(tail, head)]) of the graph drawn, the legend left out."""
    nodes, edges = statements(graph)
    return {name: (a["label"], a["fillcolor"]) for name, a in nodes.items()}, [(t, h) for t, h, _ in edges]


def kinds(nodes) -> dict[str, int]:
    by_colour = {style["fillcolor"]: kind for kind, style in STYLES.items()}
    counts: dict[str, int] = {}
    for _, colour in nodes.values():
        counts[by_colour[colour]] = counts.get(by_colour[colour], 0) + 1
    return counts


def labelled(nodes, first_line: str) -> str:
    """The node whose label starts with `first_line`."""
    (name,) = [n for n, (label, _) in nodes.items() if label.split("\n")[0] == first_line]
    return name


# ================================================================ small graphs, counted by hand

def test_small_graph_nodes_edges_and_labels():
    """loss = sum(a * b + a): leaves a (a parameter) and b (an input), ops Mul, Add, Sum, one output;
    edges a->Mul, b->Mul, Mul->Add, a->Add, Add->Sum, Sum->output."""
    a = Tensor(np.ones(3), requires_grad=True)  # float64: one dtype, so no Cast of a mixed product
    b = Tensor(np.ones(3), requires_grad=True)
    loss = (a * b + a).sum()
    nodes, edges = parse(draw_graph(loss, params={"a": a}))
    assert kinds(nodes) == {"parameter": 1, "input": 1, "op": 3, "output": 1}
    a_, b_, mul, add = labelled(nodes, "a"), labelled(nodes, "input"), labelled(nodes, "Mul"), labelled(nodes, "Add")
    total, out = labelled(nodes, "Sum dim=None keepdim=False"), labelled(nodes, "output")
    assert sorted(edges) == sorted([(a_, mul), (b_, mul), (mul, add), (a_, add), (add, total), (total, out)])
    assert nodes[a_][0] == "a\n(3,) float64" and nodes[b_][0] == "input\n(3,) float64"
    assert nodes[mul][0] == "Mul\n(3,)" and nodes[out][0] == "output\n() float64"


def test_reused_tensor_gives_one_edge_and_numbers_are_left_out():
    a = Tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse(draw_graph((a + a) * 2.0))  # 2.0 becomes a 0-d constant: not drawn
    assert kinds(nodes) == {"input": 1, "op": 2, "output": 1}
    assert len(edges) == 3


def test_equal_ops_are_never_merged():
    """200 Muls of the same shapes: 200 nodes (nodes are keyed by identity, kept alive while drawing)."""
    w = Tensor(np.ones(2, np.float32), requires_grad=True)
    total = sum((w * float(i + 1) for i in range(200)), start=Tensor(np.zeros(2, np.float32)))
    nodes, _ = parse(draw_graph(total, show_shapes=False))
    assert sum(label == "Mul" for label, _ in nodes.values()) == 200


def test_deep_graph_needs_no_recursion():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    nodes, edges = parse(draw_graph(y, show_shapes=False))
    assert len(nodes) == 5000 + 2 and len(edges) == 5000 + 1


def test_several_roots_and_shapes_off():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    h = x.relu()
    nodes, edges = parse(draw_graph(h.sum(), h.mean(), show_shapes=False))
    assert kinds(nodes) == {"input": 1, "op": 4, "output": 2}  # Relu, Sum, Sum, Mul (the mean's 1/n)
    assert not any(re.search(r"\(2, 3\)|\(\)|float32", label) for label, _ in nodes.values())


# ================================================================ composite ops

def lenet_loss(batch: int = 4):
    tc.manual_seed(0)
    model = LeNet5()
    x, y = tc.randn(batch, 1, 28, 28), Tensor(np.arange(batch) % 10)
    return model, F.cross_entropy(model(x), y)


def count_nodes_of_graph(root: Tensor) -> int:
    """Recorded op nodes (contexts, not the leaves' AccumulateGrad) reachable from root, by a walk of our own."""
    seen, stack = set(), [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen and not isinstance(node, AccumulateGrad):
            seen.add(node)
            stack.extend(n for n, _ in node.next_functions)
    return len(seen)


def test_lenet_collapsed_has_one_node_per_layer():
    """2 conv2d, 4 Relu, 2 max_pool2d, 1 Reshape (flatten), 3 linear, cross_entropy = 13 ops;
    10 parameters, the images and the targets; the loss."""
    model, loss = lenet_loss()
    nodes, edges = parse(draw_graph(loss, params=model))
    assert kinds(nodes) == {"op": 5, "nn_op": 8, "parameter": 10, "input": 1, "target": 1, "output": 1}
    assert len(edges) == 10 + 2 + 13  # parameters and inputs into ops, the chain of 13 ops to the loss
    labels = {label for label, _ in nodes.values()}
    assert {"conv1.weight\n(6, 1, 5, 5) float32", "fc3.bias\n(10,) float32", "input\n(4, 1, 28, 28) float32",
            "target\n(4,) int64", "conv2d stride=1 padding=2\n(4, 6, 28, 28)",
            "conv2d stride=1 padding=0\n(4, 16, 10, 10)",
            "max_pool2d kernel_size=2 stride=2\n(4, 16, 5, 5)", "linear\n(4, 120)", "cross_entropy\n()"} <= labels
    assert "cluster_" not in draw_graph(loss, params=model, legend=False).source


def frames(source: str) -> tuple[list[tuple[str, str, int]], dict[str, list[str]]]:
    """Read from the nesting of the DOT braces: (name, label, depth) of each cluster but the legend,
    and {node: the names of the clusters it is in, outermost first}."""
    found, where, stack = [], {}, []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("subgraph "):
            stack.append(line.split()[1])
        elif line == "}" and stack:
            stack.pop()
        elif stack and line.startswith("graph ["):
            if stack[-1] != "cluster_legend":
                found.append((stack[-1], unquote(re.search(LABEL, line)[1]), len(stack)))
        elif re.match(r"\w+ \[", line) and "->" not in line:
            where[line.split()[0]] = list(stack)
    return found, where


def cluster_tree(source: str) -> list[tuple[str, int]]:
    """(label, depth) of each cluster but the legend."""
    return [(label, depth) for _, label, depth in frames(source)[0]]


def test_lenet_expanded_shows_primitives_inside_nested_clusters():
    model, loss = lenet_loss()
    graph = draw_graph(loss, params=model, collapse=False)
    nodes, _ = parse(graph)
    assert kinds(nodes)["op"] == count_nodes_of_graph(loss)
    tree = cluster_tree(graph.source)
    assert sorted(label for label, _ in tree) == sorted(
        ["conv2d stride=1 padding=2", "conv2d stride=1 padding=0"] + ["max_pool2d kernel_size=2 stride=2"] * 2
        + ["linear"] * 3 + ["cross_entropy", "log_softmax dim=1", "nll_loss"])
    depth = dict(tree)
    assert depth["cross_entropy"] == 1 and depth["log_softmax dim=1"] == depth["nll_loss"] == 2


def test_composite_labels_show_non_default_arguments():
    x = Tensor(np.ones((1, 2, 9, 9), np.float32))
    w = Tensor(np.ones((4, 1, 3, 3), np.float32), requires_grad=True)
    out = F.conv2d(x, w, stride=2, dilation=2, groups=2)
    out = F.avg_pool2d(F.leaky_relu(out, 0.2), 2, count_include_pad=False)
    nodes, _ = parse(draw_graph(out.sum()))
    labels = {label.split("\n")[0] for label, _ in nodes.values()}
    assert {"conv2d stride=2 padding=0 dilation=2 groups=2", "leaky_relu negative_slope=0.2",
            "avg_pool2d kernel_size=2 stride=None count_include_pad=False"} <= labels


def test_scopes_nest_and_are_not_recorded_without_a_graph():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    loss = F.cross_entropy(x, Tensor([0, 1]))
    assert loss.grad_fn.scope.path == "cross_entropy/nll_loss"
    assert F.linear(x, x).grad_fn.scope.label == "linear"
    with tc.no_grad():
        assert F.linear(x, x).grad_fn is None
    assert (x * 2).grad_fn.scope is None  # outside every composite call


# ================================================================ gradients on the nodes

def test_show_grads_gives_shape_and_norm_and_flags_vanished_gradients():
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    dead = Tensor(np.array([1.0, 1.0]), requires_grad=True)
    h = w * 2
    h.retain_grad()
    loss = (h + dead * 0.0).sum()
    loss.backward()
    graph = draw_graph(loss, params={"w": w, "dead": dead}, show_grads=True)
    nodes, _ = parse(graph)
    assert nodes[labelled(nodes, "w")][0].endswith("grad (2,) |g|=2.83")  # dL/dw = (2, 2)
    muls = sorted(label for label, _ in nodes.values() if label.startswith("Mul"))
    assert muls == ["Mul\n(2,)", "Mul\n(2,)\ngrad (2,) |g|=1.41"]  # h's retained gradient (1, 1)
    dead_line = next(line for line in graph.source.splitlines() if line.strip().startswith(labelled(nodes, "dead")))
    assert "|g|=0" in dead_line and f'color="{WARNING_STYLE["color"]}"' in dead_line
    assert "grad" not in draw_graph(loss, params={"w": w}, legend=False).source


# ================================================================ rendering and errors

@needs_dot
def test_render_svg_is_valid_and_labelled(tmp_path):
    model, loss = lenet_loss(2)
    path = render(draw_graph(loss, params=model), tmp_path / "lenet.SVG")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    texts = {t.text for t in root.iter() if t.tag.endswith("text")}
    assert {"conv1.weight", "conv2d stride=1 padding=2", "cross_entropy"} <= texts


def test_render_dot_text_needs_no_program(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot anywhere
    x = Tensor([1.0], requires_grad=True)
    path = render(x * 2, tmp_path / "g.gv", collapse=False)
    assert path.read_text().startswith("digraph")
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz.*brew install graphviz"):
        render(x * 2, tmp_path / "g.png")


@pytest.mark.parametrize("call, error, words", [
    (lambda x: draw_graph(), ValueError, "at least one Tensor"),
    (lambda x: draw_graph(x * 2, 3), TypeError, "root 1 is a int"),
    (lambda x: draw_graph(x), RuntimeError, r"root 0 \(shape \(1,\)\) has no graph"),
    (lambda x: draw_graph(Tensor([1.0]) * 2), RuntimeError, "has no graph"),
    (lambda x: draw_graph(x * 2, rankdir="down"), ValueError, "rankdir must be one of TB, LR, BT, RL"),
    (lambda x: draw_graph(x * 2, collapse="yes"), TypeError, "collapse must be True or False"),
    (lambda x: draw_graph(x * 2, params=[x]), TypeError, "params must be a Module or a dict"),
    (lambda x: draw_graph(x * 2, params={"x": 1.0}), TypeError, r"params\['x'\] is a float"),
    (lambda x: draw_graph(x * 2, colour="red"), TypeError, "colour"),
    (lambda x: render(x * 2, "graph.jpeg"), ValueError, "cannot tell the format of 'graph.jpeg'"),
    (lambda x: render("graph", "graph.svg"), TypeError, "expected a graphviz Digraph or Tensors"),
    (lambda x: render(draw_graph(x * 2), "g.svg", collapse=False), TypeError, "apply only when drawing Tensors"),
])
def test_bad_input_is_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call(Tensor([1.0], requires_grad=True))


def test_module_params_name_parameters():
    layer = nn.Linear(3, 2)
    nodes, _ = parse(draw_graph(layer(Tensor(np.ones((1, 3), np.float32))).sum(), params=layer))
    assert {"weight", "bias"} <= {label.split("\n")[0] for label, _ in nodes.values()}


# ================================================================ the scripts that use it

def run_script(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def svg_texts(path: Path) -> list[str]:
    """The text of an SVG, which (unlike the coordinates) does not depend on Graphviz's version."""
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return sorted(t.text or "" for t in root.iter() if t.tag.endswith("text"))


@needs_dot
def test_doc_images_script_makes_the_committed_pictures(tmp_path):
    """The script behind docs/images writes the same files, valid SVGs saying what the committed
    ones say (so a change to the drawing that leaves the pictures stale fails here)."""
    run_script("make_doc_images.py", str(tmp_path), cwd=tmp_path)
    made = sorted(p.name for p in tmp_path.glob("*.svg"))
    assert made == sorted(p.name for p in (ROOT / "docs" / "images").glob("*.svg")) and made
    for name in made:
        assert svg_texts(tmp_path / name) == svg_texts(ROOT / "docs" / "images" / name), name


@needs_dot
def test_visualize_graph_example(tmp_path):
    out = run_script("visualize_graph.py", str(tmp_path / "pictures"), "--batch-size", "2", cwd=tmp_path)
    assert {p.name for p in (tmp_path / "pictures").iterdir()} == {"lenet5_collapsed.svg", "lenet5_expanded.svg"}
    assert f"wrote {Path('pictures') / 'lenet5_collapsed.svg'}: 26 nodes" in out.replace(str(tmp_path) + "/", "")


@needs_dot
def test_visualize_graph_example_writes_into_out_by_default(tmp_path):
    """Without a directory it writes next to `tinygrad-cnn train`'s outputs, ./out, and says so."""
    out = run_script("visualize_graph.py", "--batch-size", "2", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lenet5_collapsed.svg", "lenet5_expanded.svg"]
    assert [line.split(":")[0] for line in out.splitlines()] == [
        f"wrote {Path('out') / 'lenet5_collapsed.svg'}", f"wrote {Path('out') / 'lenet5_expanded.svg'}"]
    assert not any(p.suffix == ".svg" for p in tmp_path.iterdir())


# ================================================================ the command line

@pytest.mark.parametrize("mode, clusters", [([], False), (["--collapse"], False), (["--expanded"], True)])
def test_cli_graph_writes_the_lenet_graph(tmp_path, capsys, mode, clusters):
    from tinygrad_cnn.cli import main

    path = tmp_path / "out" / "lenet.dot"
    assert main(["graph", "--model", "lenet5", "--batch-size", "3", "--output", str(path), *mode]) == 0
    text = path.read_text()
    assert bool(re.search(r"subgraph cluster_\d", text)) == clusters
    assert "subgraph cluster_legend" in text  # the command's pictures carry their legend
    assert '"input\\n(3, 1, 28, 28) float32"' in text and "conv1.weight" in text
    assert f"wrote {path}" in capsys.readouterr().out


def test_cli_graph_show_grads_and_missing_dot(tmp_path, monkeypatch, capsys):
    from tinygrad_cnn.cli import main

    assert main(["graph", "--show-grads", "--output", str(tmp_path / "g.gv")]) == 0
    assert "grad (6, 1, 5, 5) |g|=" in (tmp_path / "g.gv").read_text()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["graph", "--output", str(tmp_path / "g.svg")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["graph", "--collapse", "--expanded"])


def test_data_into_a_frame_is_drawn_once():
    """Data needs no gradient. Into linear, where a recorded MatMul takes x itself, x is drawn into
    that op only, with no edge to the frame's border."""
    flat = Tensor(np.ones((2, 3), np.float32))
    weight = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    graph = draw_graph(F.linear(flat, weight).sum(), params={"weight": weight}, collapse=False)
    nodes, edges = parse(graph)
    data = labelled(nodes, "input")
    assert [e for e in edges if e[0] == data] == [(data, labelled(nodes, "MatMul"))] and "lhead" not in graph.source


# ================================================================ targets, edges into frames, the legend

def node_kind(attrs: dict[str, str]) -> str:
    """The kind whose style (STYLES) a node's attributes carry."""
    (kind,) = [k for k, style in STYLES.items() if all(attrs.get(a) == v for a, v in style.items())]
    return kind


@pytest.mark.parametrize("collapse", [True, False])
def test_the_loss_target_is_drawn_apart_from_the_data(collapse):
    """LeNet-5's labels (the `target` of cross_entropy) are a target node; the images stay an input."""
    model, loss = lenet_loss()
    nodes, _ = statements(draw_graph(loss, params=model, collapse=collapse))
    leaves = {a["label"]: node_kind(a) for a in nodes.values() if a["label"].startswith(("input", "target"))}
    assert leaves == {"input\n(4, 1, 28, 28) float32": "input", "target\n(4,) int64": "target"}
    assert STYLES["target"]["shape"] != STYLES["input"]["shape"]
    assert STYLES["target"]["fillcolor"] != STYLES["input"]["fillcolor"]


@composite("my_loss")
def my_loss(scores, labels):
    return F.cross_entropy(scores, labels)


@pytest.mark.parametrize("loss_of", [
    lambda x, y: F.mse_loss(x, y),                     # a float target, positional
    lambda x, y: F.l1_loss(x, target=y),               # by keyword
    lambda x, y: F.cross_entropy(x, y.argmax(1)),      # class indices
    lambda x, y: my_loss(x, y.argmax(1)),              # named `labels` by the outer call, `target` by the inner one
])
def test_a_target_is_what_a_loss_gets_as_its_target_argument(loss_of):
    """The rule is the argument's name (PyTorch's losses all call it `target`), not its dtype."""
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = Tensor(np.eye(2, 3))
    for collapse in (True, False):
        nodes, _ = statements(draw_graph(loss_of(x, y), collapse=collapse))
        drawn = [node_kind(a) for a in nodes.values()]
        targets = [a["label"] for a in nodes.values() if node_kind(a) == "target"]
        assert len(targets) == 1 and targets[0].startswith("target\n(2,") and "input" in drawn


def test_data_without_a_loss_stays_an_input():
    """A hand-written loss names no target: both tensors are inputs."""
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = Tensor(np.zeros((2, 3)))
    nodes, _ = statements(draw_graph(((x - y) ** 2).mean()))
    assert sorted(node_kind(a) for a in nodes.values() if a["label"].startswith("input")) == ["input", "input"]


def inside(where: dict[str, list[str]], node: str, frame: str) -> bool:
    return frame in where.get(node, [])


def test_expanded_lenet_edges_end_at_the_nodes_that_take_the_data():
    """No edge ends at a frame's border: every edge into a frame ends at a node inside it. The class
    targets, which no op takes (nll_loss makes one-hot constants of them), point at those constants,
    and they at ops in nll_loss's frame."""
    model, loss = lenet_loss()
    graph = draw_graph(loss, params=model, collapse=False)
    nodes, edges = statements(graph)
    assert "lhead" not in graph.source and "compound" not in graph.source
    assert all(tail in nodes and head in nodes for tail, head, _ in edges)
    found, where = frames(graph.source)
    nll = next(name for name, label, _ in found if label == "nll_loss")
    (target,) = [n for n, a in nodes.items() if a["label"] == "target\n(4,) int64"]
    made = [head for tail, head, _ in edges if tail == target]
    assert made and all(node_kind(nodes[n]) == "constant" and nodes[n]["label"].split("\n")[1].startswith("(4, 10)")
                        and where[n][-1] == nll for n in made)
    consumers = [head for tail, head, _ in edges if tail in made]
    assert consumers and all(node_kind(nodes[n]) == "op" and where[n][-1] == nll for n in consumers)
    (images,) = [n for n, a in nodes.items() if a["label"] == "input\n(4, 1, 28, 28) float32"]
    assert [nodes[head]["label"].split()[0] for tail, head, _ in edges if tail == images] == ["Conv2d"]


def test_a_smoothed_target_points_at_each_constant_made_from_it():
    """With label_smoothing, cross_entropy itself makes a constant of the targets too (how many count, (N,)),
    besides nll_loss's one-hot ones; the targets point at both, and at nothing else."""
    logits = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    graph = draw_graph(F.cross_entropy(logits, Tensor(np.array([0, 2])), label_smoothing=0.1), collapse=False)
    nodes, edges = statements(graph)
    found, where = frames(graph.source)
    frame = {label: name for name, label, _ in found}
    (target,) = [n for n, a in nodes.items() if node_kind(a) == "target"]
    made = [head for tail, head, _ in edges if tail == target]
    assert all(node_kind(nodes[n]) == "constant" for n in made)
    assert {where[n][-1] for n in made} == {frame["nll_loss"], frame["cross_entropy label_smoothing=0.1"]}
    assert [nodes[n]["label"] for n in made if where[n][-1] == frame["cross_entropy label_smoothing=0.1"]] == [
        "constant\n(2,) float32"]
    assert "lhead" not in graph.source


def test_data_no_op_reads_enters_the_frame_border():
    """BatchNorm's running statistics while training are given to batch_norm but only updated: no
    op or constant inside comes from them, so their edges end at the frame's border (lhead)."""
    layer = nn.BatchNorm2d(2)
    graph = draw_graph(layer(Tensor(np.arange(16.0).reshape(2, 2, 2, 2), requires_grad=True)).sum(),
                       params=layer, collapse=False)
    nodes, edges = statements(graph)
    (frame,) = [name for name, label, _ in frames(graph.source)[0] if label.startswith("batch_norm")]
    bordered = [(nodes[tail]["label"], attrs["lhead"]) for tail, _, attrs in edges if "lhead" in attrs]
    assert bordered == [("input\n(2,) float32", frame)] * 2 and "compound=true" in graph.source


def legend_of(graph) -> dict[str, dict[str, str]]:
    nodes, _ = statements(graph, legend=True)
    return {name.removeprefix("legend_"): attrs for name, attrs in nodes.items() if name.startswith("legend_")}


@pytest.mark.parametrize("collapse", [True, False])
def test_the_legend_shows_each_kind_drawn_in_its_style(collapse):
    """One legend node per kind of node in the drawing, styled as the nodes of that kind are (their
    fill colours and shapes read back from the DOT), plus the frame when there are frames."""
    model, loss = lenet_loss()
    graph = draw_graph(loss, params=model, collapse=collapse)
    nodes, _ = statements(graph)
    legend = legend_of(graph)
    drawn: dict[str, set[tuple[str, str]]] = {}
    for attrs in nodes.values():
        drawn.setdefault(node_kind(attrs), set()).add((attrs["fillcolor"], attrs["shape"]))
    expected = set(drawn) | ({"frame"} if not collapse else set())
    assert set(legend) == expected
    assert expected == ({"input", "target", "parameter", "op", "output"}
                        | ({"nn_op"} if collapse else {"constant", "frame"}))
    for kind, looks in drawn.items():
        assert looks == {(legend[kind]["fillcolor"], legend[kind]["shape"])}, kind
        assert legend[kind]["label"].split("\n")[0] == kind.replace("_", " ")
    if not collapse:
        assert all(legend["frame"][a] == v for a, v in CLUSTER_STYLE.items() if a != "fontcolor")
    legend_edges = [edge for edge in statements(graph, legend=True)[1] if edge[0].startswith("legend_")]
    assert all(attrs == {"style": "invis"} for *_, attrs in legend_edges) and len(legend_edges) == len(legend) - 1
    assert "subgraph cluster_legend" in graph.source
    assert legend_of(draw_graph(loss, params=model, collapse=collapse, legend=False)) == {}


def test_the_legend_explains_the_red_border_only_when_one_is_drawn():
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (w * 0.0).sum().backward()
    loss = (w * 0.0).sum()
    legend = legend_of(draw_graph(loss, params={"w": w}, show_grads=True))
    assert legend["warning"]["color"] == WARNING_STYLE["color"] and legend["warning"]["label"].startswith("red border")
    w.grad = None
    assert "warning" not in legend_of(draw_graph(loss, params={"w": w}, show_grads=True))
