"""The explorer's data (viz/explorer/data.py) and page (page.py), without a browser: the nodes,
edges, statistics, gradients, backward steps and memory it embeds, checked against the tensors
(statistics recomputed with NumPy), hand-derived gradients, an independent trace_backward run on
a twin graph, and the graph's own memory ledger. The page in a browser: test_explorer_browser.py."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.autograd.engine import topological_order
from tinygrad_cnn.autograd.graph import memory_report, saved_bytes
from tinygrad_cnn.introspect import trace_backward
from tinygrad_cnn.viz import draw_graph, explore
from tinygrad_cnn.viz.explorer import explorer_data, page_html, read_page_data, statistics
from tinygrad_cnn.viz.explorer.values import forward_values, held_values

ROOT = Path(__file__).resolve().parent.parent


def small_graph(seed: int = 0):
    """x (data) @ w + b, relu, squared and summed: (tensors by name, loss). Every intermediate is
    kept, so its value can be checked."""
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    w = tg.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    b = tg.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    h = x @ w
    z = h + b
    r = z.relu()
    loss = (r * r).sum()
    return {"x": x, "w": w, "b": b, "h": h, "z": z, "r": r}, loss


def arr(t) -> np.ndarray:
    return t.detach().numpy()


def by_op(data, op: str) -> dict:
    found = [n for n in data["nodes"] if n["op"] == op]
    assert len(found) == 1, op
    return found[0]


def expected_stats(a: np.ndarray) -> dict:
    """The statistics computed here with NumPy, by the definition (finite elements only)."""
    x = np.asarray(a, np.float64).ravel()
    f = x[np.isfinite(x)]
    return {"min": f.min(), "max": f.max(), "mean": f.mean(), "norm": np.sqrt((f * f).sum()),
            "nan": int(np.isnan(x).sum()), "inf": int(np.isinf(x).sum()),
            "counts": np.histogram(f, bins=16)[0].tolist()}


def assert_stats(stats: dict, a: np.ndarray) -> None:
    want = expected_stats(a)
    for key in ("min", "max", "mean", "norm"):
        assert stats[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), key
    assert (stats["nan"], stats["inf"]) == (want["nan"], want["inf"])
    assert stats["histogram"]["counts"] == want["counts"]


def assert_node_stats(node: dict, a: np.ndarray, field: str = "stats") -> None:
    """A node's value (or gradient) statistics are those of `a`, and its output has a's shape and dtype."""
    assert node["outputs"] == [{"shape": list(a.shape), "dtype": str(a.dtype)}]
    assert_stats(node[field][0], a)


# ---------------------------------------------------------------- nodes, edges, values

def test_nodes_and_edges_of_a_small_graph():
    t, loss = small_graph()
    data = explorer_data([loss], params={"w": t["w"], "b": t["b"]})
    labels = [n["label"][0] for n in data["nodes"]]
    # counted by hand: x, w, MatMul, b, Add, Relu, Mul, Sum, and the output; 2.0 and the like are left out
    assert sorted(labels) == sorted(["input", "w", "MatMul", "b", "Add", "Relu", "Mul", "Sum dim=None keepdim=False",
                                     "output"])
    kind = {n["label"][0]: n["kind"] for n in data["nodes"]}
    assert (kind["input"], kind["w"], kind["MatMul"], kind["output"]) == ("input", "parameter", "op", "output")
    name = {n["id"]: n["label"][0].split()[0] for n in data["nodes"]}
    edges = sorted((name[s], name[d]) for s, d in data["edges"])
    assert edges == sorted([("input", "MatMul"), ("w", "MatMul"), ("MatMul", "Add"), ("b", "Add"), ("Add", "Relu"),
                            ("Relu", "Mul"), ("Mul", "Sum"), ("Sum", "output")])
    assert by_op(data, "MatMul")["inputs"] == [{"shape": [4, 3], "dtype": "float32"},
                                              {"shape": [3, 5], "dtype": "float32"}]
    assert by_op(data, "Sum")["args"] == {"dim": "None", "keepdim": "False"}
    assert data["groups"] == [] and data["trace"]["ran"]


def test_statistics_of_every_node_match_numpy():
    t, loss = small_graph()
    data = explorer_data([loss], params={"w": t["w"], "b": t["b"]})
    for op, key in (("MatMul", "h"), ("Add", "z"), ("Relu", "r")):
        assert_node_stats(by_op(data, op), arr(t[key]))
    assert_node_stats(by_op(data, "Mul"), arr(t["r"]) ** 2)
    leaves = {n["label"][0]: n for n in data["nodes"]}
    assert_node_stats(leaves["w"], arr(t["w"]))
    assert_node_stats(leaves["input"], arr(t["x"]))
    assert_node_stats(leaves["output"], arr(loss))


def test_values_no_node_kept_are_replayed_exactly():
    """Add keeps nothing for backward and nothing saves its result (relu saves its own output), so
    the graph does not hold it: the explorer replays the forward, bit for bit."""
    t, loss = small_graph()
    order = topological_order([loss.grad_fn])
    assert (t["z"].grad_fn, 0) not in held_values(order, [loss])
    values = forward_values(order, [loss])
    for key in ("h", "z", "r"):
        np.testing.assert_array_equal(values[t[key].grad_fn, 0], arr(t[key]))


def test_statistics_count_nan_and_inf_apart():
    stats = statistics(np.array([1.0, np.nan, np.inf, -2.0, -np.inf], np.float32))
    assert (stats["min"], stats["max"], stats["mean"]) == (-2.0, 1.0, -0.5)
    assert stats["norm"] == pytest.approx(np.sqrt(5)) and (stats["nan"], stats["inf"]) == (1, 2)
    assert sum(stats["histogram"]["counts"]) == 2 and stats["histogram"]["range"] == [-2.0, 1.0]
    empty = statistics(np.array([np.nan]))
    assert empty["min"] is None and empty["histogram"]["counts"] == []


# ---------------------------------------------------------------- gradients and the backward trace

def test_gradients_are_those_backward_computed():
    """loss = sum(relu(z)^2): dL/d(r*r) = 1, dL/dr = 2r, dL/dz = 2r (r = 0 where z < 0), and the leaves'
    gradients are what backward left in .grad."""
    t, loss = small_graph()
    data = explorer_data([loss], params={"w": t["w"], "b": t["b"]})
    r = arr(t["r"])
    assert_node_stats(by_op(data, "Mul"), np.ones_like(r), "grad")
    assert_node_stats(by_op(data, "Relu"), 2 * r, "grad")
    leaves = {n["label"][0]: n for n in data["nodes"]}
    np.testing.assert_allclose(t["b"].grad.numpy(), (2 * r).sum(0), rtol=1e-5)  # explore ran the backward
    assert_node_stats(leaves["w"], t["w"].grad.numpy(), "grad")
    assert_node_stats(leaves["b"], t["b"].grad.numpy(), "grad")
    assert_node_stats(leaves["output"], np.ones((), np.float32), "grad")
    assert leaves["input"]["grad"] == [None]


def test_trace_steps_follow_an_independent_trace_of_a_twin_graph():
    t, loss = small_graph(seed=3)
    twin_t, twin = small_graph(seed=3)
    with trace_backward() as trace:
        twin.backward()
    data = explorer_data([loss])
    steps = data["trace"]["steps"]
    assert [s["op"] for s in steps] == [s.op for s in trace]
    for step, twin_step in zip(steps, trace):
        node = data["nodes"][step["node"]]
        if twin_step.tensor is None:
            assert step["op"] == node["op"] + "Backward"
        else:  # a leaf's AccumulateGrad: it lands on the leaf's node
            assert node["kind"] in ("parameter", "input")
            assert node["outputs"][0]["shape"] == list(twin_step.tensor.shape)
        for sent, g in zip(step["sent"], twin_step.grad_inputs):
            assert (sent is None) == (g is None)
            if g is not None:
                assert sent["norm"] == pytest.approx(float(np.linalg.norm(g.numpy())), rel=1e-5)


def test_memory_held_at_each_step_is_the_ledger_of_the_nodes_not_yet_run():
    """Before backward the graph holds memory_report's total; after each step, what the nodes that
    have not run yet keep (saved_bytes counts each buffer once), computed before backward frees it."""
    t, loss = small_graph()
    twin_t, twin = small_graph()
    twin_order = topological_order([twin.grad_fn])
    with trace_backward() as trace:
        twin.backward()
    order, _ = topological_order([loss.grad_fn]), topological_order([twin.grad_fn])
    ran = [order[twin_order.index(s.node)] for s in trace]  # the twin's nodes are in the same places
    assert [n.name() for n in ran] == [s.op for s in trace]
    expected = [saved_bytes([n for n in order if n not in ran[:k + 1]]) for k in range(len(ran))]
    total = memory_report(loss).total
    data = explorer_data([loss])
    assert data["trace"]["held_before"] == total > 0
    assert [s["held"] for s in data["trace"]["steps"]] == expected
    assert expected[-1] == 0


# ---------------------------------------------------------------- what else a node shows

def test_saved_tensors_vjp_formula_and_code_line():
    with tg.autograd.detect_anomaly():
        t, loss = small_graph()
    data = explorer_data([loss])
    mul = by_op(data, "Mul")
    r = arr(t["r"])
    # Mul(r, r) saves its two inputs: one buffer, counted once
    assert [(s["kind"], s["shape"], s["bytes"]) for s in mul["saved"]] == [("tensor", [4, 5], r.nbytes)] * 2
    assert mul["saved_bytes"] == r.nbytes
    assert "dL/dx" in data["docs"][mul["doc"]]
    site = mul["created_at"]
    assert site["file"] == small_graph.__code__.co_filename and site["code"] == "loss = (r * r).sum()"
    assert not any("detect_anomaly" in note for note in data["notes"])
    _, plain = small_graph()
    assert any("detect_anomaly" in note for note in explorer_data([plain])["notes"])


def test_composite_calls_become_groups():
    tg.manual_seed(0)
    x, w = tg.randn(2, 1, 6, 6), tg.randn(3, 1, 3, 3, requires_grad=True)
    y = tg.tensor(np.array([0, 2]))
    loss = F.cross_entropy(F.max_pool2d(F.conv2d(x, w), 2).flatten(1), y)
    # every node draw_graph draws expanded, the explorer has (drawn before backward frees the constants)
    drawn = re.findall(r"^\s*n\d+ \[label=", draw_graph(loss, params={"weight": w}, collapse=False,
                                                         legend=False).source, re.M)
    data = explorer_data([loss], params={"weight": w})
    assert len(drawn) == len(data["nodes"])
    groups = {g["label"]: g for g in data["groups"]}
    assert set(groups) >= {"conv2d stride=1 padding=0", "max_pool2d kernel_size=2 stride=None", "cross_entropy"}
    assert all(g["kind"] == "composite" and g["fold"] is None for g in groups.values())
    conv = groups["conv2d stride=1 padding=0"]
    assert conv["shapes"] == [[2, 3, 4, 4]]  # what leaves the call
    members = [data["nodes"][i]["op"] for i in conv["members"]]
    assert "Conv2d" in members and all(data["nodes"][i]["group"] == conv["id"] for i in conv["members"])
    nested = [g for g in data["groups"] if g["parent"] == groups["cross_entropy"]["id"]]
    assert nested  # cross_entropy calls log_softmax and nll_loss: groups inside it


# ---------------------------------------------------------------- module calls and depth

def model_loss(model_class):
    tg.manual_seed(0)
    model = model_class()
    images = tg.randn(2, *model_class.input_shape)
    return model, F.cross_entropy(model(images), tg.tensor(np.array([3, 5])))


def module_groups(data) -> dict[str, dict]:
    return {g["label"]: g for g in data["groups"] if g["kind"] == "module"}


# LeNet5.forward calls its children in this order; relu and pool are called again (call 2, 3...)
LENET_CALLS = ["conv1 (Conv2d)", "relu (ReLU)", "pool (MaxPool2d)", "conv2 (Conv2d)", "relu (call 2) (ReLU)",
               "pool (call 2) (MaxPool2d)", "flatten (Flatten)", "fc1 (Linear)", "relu (call 3) (ReLU)",
               "fc2 (Linear)", "relu (call 4) (ReLU)", "fc3 (Linear)"]


@pytest.mark.parametrize("depth, collapsed", [
    (None, []),
    (0, ["LeNet5", *LENET_CALLS]),
    (1, LENET_CALLS),  # the model's own call stays open, each call it makes is one node
    (2, []),  # LeNet-5's layers have no submodules: nothing is 2 deep
])
def test_depth_says_which_module_calls_start_collapsed_lenet(depth, collapsed):
    from tinygrad_cnn.models import LeNet5
    model, loss = model_loss(LeNet5)
    data = explorer_data([loss], params=model, depth=depth)
    modules = module_groups(data)
    assert data["depth"] == depth
    assert sorted(modules) == sorted(["LeNet5", *LENET_CALLS])
    assert {label: g["level"] for label, g in modules.items()} == {"LeNet5": 0, **{c: 1 for c in LENET_CALLS}}
    assert sorted(label for label, g in modules.items() if g["collapsed"]) == sorted(collapsed)
    composite = [g for g in data["groups"] if g["kind"] == "composite"]
    assert composite and all(g["collapsed"] and g["level"] is None for g in composite)  # draw_graph's default


@pytest.mark.parametrize("depth", [None, 0, 1, 2, 3, 4, 5])
def test_depth_says_which_module_calls_start_collapsed_resnet(depth):
    """A call's level is how deep its name nests in named_modules() ('layer2.0.downsample.0': 4 names,
    level 4; the model itself, 'ResNet20', level 0): those at level >= depth start collapsed."""
    from tinygrad_cnn.models import ResNet20
    model, loss = model_loss(ResNet20)
    data = explorer_data([loss], params=model, depth=depth)
    modules = module_groups(data)
    names = {name for name, _ in model.named_modules() if name}
    assert {label.split(" ")[0] for label in modules} == names | {"ResNet20"}
    for label, g in modules.items():
        path = label.split(" ")[0]
        level = 0 if path == "ResNet20" else len(path.split("."))
        assert g["level"] == level, label
        assert g["collapsed"] == (depth is not None and level >= depth), label
    if depth == 2:  # the nine residual blocks, and everything inside them
        blocks = [label for label, g in modules.items() if g["collapsed"] and g["level"] == 2]
        assert blocks == [f"layer{i}.{j} (BasicBlock)" for i in (1, 2, 3) for j in (0, 1, 2)]
    # calls by level: the model; its 7 children; 9 blocks; 6 calls in each block and 2 downsample
    # Sequentials; their 2 calls each. From a level on, all those deeper start collapsed
    per_level = [1, 7, 9, 9 * 6 + 2, 2 * 2]
    assert len(modules) == sum(per_level) == 77
    want = 0 if depth is None else sum(per_level[depth:])
    assert sum(g["collapsed"] for g in modules.values()) == want


# ---------------------------------------------------------------- a graph already backwarded, no backward

def test_a_graph_already_backwarded_is_shown_with_a_note():
    t, loss = small_graph()
    loss.backward()
    data = explorer_data([loss], params={"w": t["w"]})
    assert not data["trace"]["ran"] and data["trace"]["steps"] == []
    assert any("already backwarded" in note for note in data["notes"])
    assert len(data["nodes"]) == 9  # the forward is still all there
    # Add's value was not kept, and its array arguments... are none, but a released node is not replayed
    assert by_op(data, "Add")["stats"] == [None]
    leaves = {n["label"][0]: n for n in data["nodes"]}  # the leaves are still known
    assert_node_stats(leaves["w"], arr(t["w"]))


def test_run_backward_false_leaves_the_graph_alone():
    t, loss = small_graph()
    data = explorer_data([loss], run_backward=False)
    assert not data["trace"]["ran"] and t["w"].grad is None
    assert all(g is None for n in data["nodes"] for g in n["grad"])
    loss.backward()  # the graph was not freed
    assert t["w"].grad is not None


# ---------------------------------------------------------------- the page file

def test_the_page_is_one_file_that_embeds_the_data(tmp_path):
    t, loss = small_graph()
    twin_t, twin = small_graph()
    path = explore(loss, params={"w": t["w"], "b": t["b"]}, path=tmp_path / "g.html")
    page = path.read_text(encoding="utf-8")
    data = read_page_data(page)
    want = explorer_data([twin], params={"w": twin_t["w"], "b": twin_t["b"]})
    for step in data["trace"]["steps"] + want["trace"]["steps"]:
        step["us"] = 0  # times differ between runs
    assert data == want
    # nothing to fetch: no external script, style, image or font, no request made by the script
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    assert not re.search(r"\b(fetch|XMLHttpRequest|import\()", page)


def test_text_in_the_data_cannot_end_the_script_element(tmp_path):
    t, loss = small_graph()
    name = "</script><script>alert(1)</script><!--"
    path = explore(loss, params={name: t["w"]}, path=tmp_path / "g.html")
    page = path.read_text(encoding="utf-8")
    assert page.count("</script>") == 2  # the data's and the page script's own
    assert name in [n["name"] for n in read_page_data(page)["nodes"]]


def test_explore_writes_and_returns_the_path(tmp_path):
    _, loss = small_graph()
    path = explore(loss, path=str(tmp_path / "graph.html"))
    assert path == tmp_path / "graph.html" and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("call, error, words", [
    (lambda loss, tmp: explore(path=tmp / "g.html"), ValueError, "explore: give at least one Tensor"),
    (lambda loss, tmp: explore(np.ones(2), path=tmp / "g.html"), TypeError, "explore: root 0 is a ndarray"),
    (lambda loss, tmp: explore(tg.ones(2), path=tmp / "g.html"), RuntimeError,
     "explore: root 0 (shape (2,)) has no graph"),
    (lambda loss, tmp: explore(loss, path=tmp / "g.svg"), ValueError, "explore: path must end in .html"),
    (lambda loss, tmp: explore(loss, path=3), TypeError, "explore: path must be a str or a Path, got int"),
    (lambda loss, tmp: explore(loss, run_backward=1, path=tmp / "g.html"), TypeError,
     "run_backward must be True or False"),
    (lambda loss, tmp: explore(loss, params=[1], path=tmp / "g.html"), TypeError, "explore: params must be a Module"),
    (lambda loss, tmp: explore(loss * tg.ones(3), path=tmp / "g.html"), RuntimeError,
     "needs a scalar (one element), but roots[0] has shape (3,)"),
    (lambda loss, tmp: explore(loss, depth=-1, path=tmp / "g.html"), ValueError,
     "explore: depth must be an int >= 0 or None, got -1"),
    (lambda loss, tmp: explore(loss, depth=1.0, path=tmp / "g.html"), TypeError,
     "explore: depth must be an int >= 0 or None, got 1.0"),
    (lambda loss, tmp: explore(loss, depth=True, path=tmp / "g.html"), TypeError,
     "explore: depth must be an int >= 0 or None, got True"),
    (lambda loss, tmp: explore(loss, depth="1", path=tmp / "g.html"), TypeError,
     "explore: depth must be an int >= 0 or None, got '1'"),
])
def test_bad_input_is_a_clear_error(tmp_path, call, error, words):
    _, loss = small_graph()
    with pytest.raises(error, match=re.escape(words)):
        call(loss, tmp_path)
    assert not (tmp_path / "g.html").exists()


def test_non_scalar_roots_are_fine_without_backward(tmp_path):
    t, loss = small_graph()
    path = explore(t["r"], loss, path=tmp_path / "g.html", run_backward=False)
    data = read_page_data(path.read_text(encoding="utf-8"))
    assert sum(n["kind"] == "output" for n in data["nodes"]) == 2


def test_a_long_chain(tmp_path):
    """10,000 ops in a row: no recursion, and a page of a size a browser opens (the browser test
    loads it); the size is printed for docs/visualization.md."""
    x = tg.ones(3, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    data = explorer_data([y.sum()])
    assert len(data["nodes"]) == 10_003 and len(data["trace"]["steps"]) == 10_002
    page = page_html(data, "chain")
    print(f"10,000-op chain: page of {len(page.encode()) / 2 ** 20:.1f} MiB")


def test_the_example_writes_lenets_page(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "explore_lenet.py"), str(tmp_path / "pages"),
                           "--batch-size", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = tmp_path / "pages" / "lenet5_explorer.html"
    assert done.stdout.startswith(f"wrote {page}: 43 nodes, 38 backward steps")
    data = read_page_data(page.read_text(encoding="utf-8"))
    assert data["nodes"][0]["outputs"][0]["shape"] == [2, 1, 28, 28]
    assert all(n["created_at"]["file"].endswith("explore_lenet.py") for n in data["nodes"] if n["kind"] == "op")
