"""The explorer page in a real browser: headless Chromium from the OS packages (/usr/bin/chromium;
never downloaded), driven by Playwright's Python package. The page loads from a file with no
error and no request; what it shows is checked against the graph (node counts against draw_graph,
shapes and statistics against the tensors with NumPy, backward steps against an independent
trace_backward of a twin graph); collapsing, expanding and unfolding change what is drawn; a
screenshot is not blank. One browser for the module."""
from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.introspect import trace_backward
from tinygrad_cnn.models import LeNet5, ResNet20
from tinygrad_cnn.viz import draw_graph, explore
from tinygrad_cnn.viz.explorer import read_page_data

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed at /usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
LOAD_TIMEOUT_MS = 20_000  # a bound for a hung page, not a timing test


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        launched.close()


class Opened:
    """A page opened from a file, with the console errors and requests seen while it loaded."""

    def __init__(self, browser, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        start = time.perf_counter()
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready]", timeout=LOAD_TIMEOUT_MS)
        self.seconds = time.perf_counter() - start
        self.url = path.resolve().as_uri()

    def drawn(self) -> int:
        return int(self.page.get_attribute("#node-count", "data-drawn"))

    def total(self) -> int:
        return int(self.page.get_attribute("#node-count", "data-total"))

    def stat(self, table: str, name: str) -> str:
        return self.page.inner_text(f"#{table} [data-stat={name}]")


def node_count(graph) -> int:
    """The nodes of a draw_graph drawing (n0, n1...), not the legend's."""
    return len(re.findall(r"^\s*n\d+ \[label=", graph.source, re.M))


def lenet_loss():
    tg.manual_seed(0)
    model = LeNet5()
    images, labels = tg.randn(4, 1, 28, 28), tg.tensor(np.arange(4) % 10)
    return model, F.cross_entropy(model(images), labels)


def small_graph(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    w = tg.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    h = x @ w
    loss = (h.relu() * h).sum()
    return {"x": x, "w": w, "h": h}, loss


@pytest.fixture(scope="module")
def lenet(browser, tmp_path_factory):
    """LeNet-5's page, with draw_graph's node counts of the same graph (drawn before backward)."""
    model, loss = lenet_loss()
    counts = {collapse: node_count(draw_graph(loss, params=model, collapse=collapse)) for collapse in (True, False)}
    path = explore(loss, params=model, path=tmp_path_factory.mktemp("lenet") / "lenet.html")
    return Opened(browser, path), counts, read_page_data(path.read_text(encoding="utf-8"))


def test_the_page_loads_from_a_file_with_no_error_and_no_request(lenet):
    opened, _, _ = lenet
    assert opened.errors == []
    assert opened.requests == [opened.url]  # the file itself, nothing else
    assert opened.page.title().startswith("tinygrad_cnn explorer")


def test_node_counts_are_the_graphs(lenet):
    """All nodes as draw_graph(collapse=False) draws them; at first one node per composite call, as
    draw_graph's default; collapsing all leaves the model as one node with the loss after it."""
    opened, counts, data = lenet
    page = opened.page
    assert opened.total() == len(data["nodes"]) == counts[False]
    assert opened.drawn() == counts[True]
    page.click("#expand-all")
    assert opened.drawn() == counts[False]
    assert page.locator(".node").count() == counts[False]
    page.click("#collapse-all")
    # LeNet5 (its parameters and the images inside it), the target, cross_entropy and the output
    assert opened.drawn() == 4
    assert sorted(page.locator(".node").all_text_contents()) == sorted(
        ["LeNet5(4, 10)", "target(4,) int64", "cross_entropy()", "output() float32"])


def test_double_click_expands_and_collapses_groups(lenet):
    opened, counts, data = lenet
    page = opened.page
    page.click("#collapse-all")
    page.dblclick(".node:has-text('LeNet5')")  # the model's module calls appear, each one node
    modules_open = opened.drawn()
    assert modules_open > 4 and page.locator(".frame text", has_text="LeNet5").count() == 1
    page.locator(".node", has_text="conv1 (Conv2d)").dblclick()
    # the call's node gives way to its conv2d and what only it used: its two parameters and the images
    assert opened.drawn() == modules_open + 3
    conv = page.locator(".node", has_text="conv2d stride=1 padding=2")
    conv.dblclick()
    assert opened.drawn() == modules_open + 3  # the primitive Conv2d alone replaces conv2d's node
    assert page.locator(".frame text", has_text="conv2d stride=1 padding=2").count() == 1
    assert page.locator(".node", has_text="Conv2d padding=(2, 2, 2, 2)").count() == 1
    page.click(".frame:has-text('conv2d stride=1 padding=2') text")
    assert page.inner_text("#detail-title") == "conv2d stride=1 padding=2"
    page.click("#toggle-group")
    assert page.locator(".node", has_text="conv2d stride=1 padding=2").count() == 1
    assert page.locator(".frame text", has_text="conv2d stride=1 padding=2").count() == 0


def test_search_finds_and_selects_a_parameter(lenet):
    opened, _, _ = lenet
    page = opened.page
    page.click("#expand-all")
    page.fill("#search", "fc3.bias")
    assert page.get_attribute("#search-count", "data-count") == "1"
    page.press("#search", "Enter")
    assert page.inner_text("#detail-title") == "fc3.bias"
    assert page.inner_text("#detail-shape") == "(10,) float32"
    page.fill("#search", "relu")
    assert int(page.get_attribute("#search-count", "data-count")) == 4  # four ReLU calls
    page.fill("#search", "")


def test_the_screenshot_is_not_blank(lenet, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    opened, _, _ = lenet
    opened.page.click("#fit")
    png = opened.page.screenshot()
    pixels = image.imread(io.BytesIO(png), format="png")[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert pixels.shape[:2] == (900, 1400)
    assert len(colours) > 50  # text, the node colours, edges: not one flat colour
    assert (pixels.min(axis=2) < 0.9).mean() > 0.02  # some of the page is drawn on


# ---------------------------------------------------------------- a node's details, the backward steps

@pytest.fixture(scope="module")
def small(browser, tmp_path_factory):
    tensors, loss = small_graph()
    twin_tensors, twin = small_graph()
    with trace_backward() as trace:
        twin.backward()
    path = explore(loss, params={"w": tensors["w"]}, path=tmp_path_factory.mktemp("small") / "small.html")
    return Opened(browser, path), tensors, read_page_data(path.read_text(encoding="utf-8")), trace


def test_clicking_a_node_shows_its_shape_and_statistics(small):
    opened, t, data, _ = small
    page = opened.page
    page.click("#fit")
    h = t["h"].detach().numpy().astype(np.float64)
    node = next(n for n in data["nodes"] if n["op"] == "MatMul")
    page.click(f".node[data-key=n{node['id']}]")
    assert page.inner_text("#detail-title") == "MatMul"
    assert page.inner_text("#detail-shape") == "(4, 5) float32"
    for name, want in (("min", h.min()), ("max", h.max()), ("mean", h.mean()), ("norm", np.linalg.norm(h))):
        assert float(opened.stat("value-stats", name)) == pytest.approx(want, rel=1e-3), name
    assert opened.stat("value-stats", "nonfinite") == "0 / 0"
    # loss = sum(relu(h) * h): dL/dh = 2h where h > 0, else 0 (Mul sends h to relu(h) and relu(h) to h)
    g = np.where(h > 0, 2 * h, 0.0)
    for name, want in (("min", g.min()), ("max", g.max()), ("norm", np.linalg.norm(g))):
        assert float(opened.stat("grad-stats", name)) == pytest.approx(want, rel=1e-3), name
    w = t["w"].detach().numpy()
    page.click(f".node[data-key=n{next(n['id'] for n in data['nodes'] if n['name'] == 'w')}]")
    assert page.inner_text("#detail-shape") == "(3, 5) float32"
    assert float(opened.stat("value-stats", "max")) == pytest.approx(w.max(), rel=1e-3)
    assert page.locator("#details .doc").count() == 0  # a leaf has no VJP
    page.click(f".node[data-key=n{node['id']}]")
    assert "dL/dx" in page.inner_text("#details .doc")


def test_stepping_visits_every_node_in_the_traces_order(small):
    """Step after step, the node lit and the op named are those an independent trace_backward of a
    twin graph ran, in its order; at the end the graph holds nothing."""
    opened, _, data, trace = small
    page = opened.page
    page.click("#step-reset")
    assert page.get_attribute("#step-info", "data-index") == "-1"
    lit, ops = [], []
    for k in range(len(trace)):
        page.click("#step")
        assert page.get_attribute("#step-info", "data-index") == str(k)
        lit.append(int(page.get_attribute(".node.current", "data-key")[1:]))
        ops.append(re.match(r"step \d+: (\w+)", page.inner_text("#step-panel h2"))[1])
    assert ops == [s.op for s in trace]
    assert lit == [s["node"] for s in data["trace"]["steps"]]
    names = {n["id"]: n["op"] or n["name"] for n in data["nodes"]}
    assert [names[i] for i in lit] == ["w" if s.op == "AccumulateGrad" else s.op[:-len("Backward")] for s in trace]
    assert page.locator(".node.done").count() == len(set(lit[:-1]) - {lit[-1]})
    assert "graph holds 0 B" in page.inner_text("#step-info")
    page.click("#step")  # past the end: stays at the last step
    assert page.get_attribute("#step-info", "data-index") == str(len(trace) - 1)
    page.click("#step-back")
    assert page.get_attribute("#step-info", "data-index") == str(len(trace) - 2)
    assert int(page.get_attribute(".node.current", "data-key")[1:]) == lit[-2]


def test_play_runs_to_the_end(small):
    opened, _, data, _ = small
    page = opened.page
    page.click("#step-reset")
    page.click("#play")
    last = str(len(data["trace"]["steps"]) - 1)
    page.wait_for_function(f"document.getElementById('step-info').dataset.index === '{last}'", timeout=20_000)


# ---------------------------------------------------------------- folds, notes, a long chain

@pytest.fixture(scope="module")
def resnet_pages(tmp_path_factory):
    """ResNet-20's page as explore writes it by default (every module call expanded) and at depth 1."""
    folder = tmp_path_factory.mktemp("resnet")
    pages = {}
    for depth in (None, 1):
        tg.manual_seed(0)
        model = ResNet20()
        loss = F.cross_entropy(model(tg.randn(1, *ResNet20.input_shape)), tg.tensor(np.array([3])))
        pages[depth] = explore(loss, params=model, path=folder / f"resnet-{depth}.html", depth=depth)
    return pages


def test_a_folded_run_of_blocks_is_drawn_once_and_unfolds(browser, resnet_pages):
    """ResNet-20's layer1 holds three identical BasicBlocks: drawn as one node 'x3' until unfolded."""
    opened = Opened(browser, resnet_pages[None])
    page = opened.page
    assert opened.errors == []
    folded = page.locator(".node", has_text="layer1.0 (BasicBlock) \u00d73")
    assert folded.count() == 1
    assert page.locator(".frame text", has_text="layer1.1 (BasicBlock)").count() == 0
    before = opened.drawn()
    folded.click()
    page.click("#fold-group")
    assert opened.drawn() > before
    assert page.locator(".node", has_text="\u00d73").count() == 0
    for block in ("layer1.0", "layer1.1", "layer1.2"):
        assert page.locator(".frame text", has_text=f"{block} (BasicBlock)").count() == 1
    page.click("#fold-group")
    assert opened.drawn() == before


def first_lines(page) -> list[str]:
    """The first line of each node drawn (its name), sorted."""
    return sorted(page.eval_on_selector_all(".node", "nodes => nodes.map(n => n.querySelector('text').textContent)"))


# counted by hand from ResNet20.forward at depth 1: the 7 module calls it makes (conv1, bn1, relu,
# layer1, layer2, layer3, fc), each one node with the parameters (and for conv1 the images) only it
# uses; the 2 ops of its own global average pool x.mean((2, 3)) (Sum, then Mul by 1/64); outside
# the model the labels, cross_entropy and the loss
RESNET_DEPTH_1 = sorted(["conv1 (Conv2d)", "bn1 (BatchNorm2d)", "relu (ReLU)", "layer1 (Sequential)",
                         "layer2 (Sequential)", "layer3 (Sequential)", "fc (Linear)", "Sum dim=(2, 3) keepdim=False",
                         "Mul", "target", "cross_entropy", "output"])


def test_the_depth_control_collapses_module_calls_from_a_level_on(browser, resnet_pages):
    everything = Opened(browser, resnet_pages[None])
    expanded = everything.drawn()  # module calls expanded, composite ops collapsed, runs folded
    assert everything.page.input_value("#depth") == "all"
    opened = Opened(browser, resnet_pages[1])
    page = opened.page
    assert opened.errors == []
    # all, then each level: 'layer2.0.downsample.0' nests 4 deep
    assert page.locator("#depth option").all_text_contents() == ["all", "0", "1", "2", "3", "4"]
    assert page.input_value("#depth") == "1"
    assert opened.drawn() == len(RESNET_DEPTH_1) == 12 and first_lines(page) == RESNET_DEPTH_1
    assert page.locator(".frame text").all_text_contents() == ["ResNet20"]
    page.select_option("#depth", "all")
    assert opened.drawn() == expanded and page.locator(".node").count() == expanded
    page.select_option("#depth", "0")  # the model as one node
    assert first_lines(page) == sorted(["ResNet20", "target", "cross_entropy", "output"])
    page.select_option("#depth", "1")
    assert first_lines(page) == RESNET_DEPTH_1
    # a double-click still opens one call: layer1's three identical blocks, collapsed (level 2), fold to one node
    page.locator(".node", has_text="layer1 (Sequential)").dblclick()
    assert first_lines(page) == sorted("layer1.0 (BasicBlock) \u00d73" if name == "layer1 (Sequential)" else name
                                       for name in RESNET_DEPTH_1)
    assert page.locator(".frame text", has_text="layer1 (Sequential)").count() == 1
    page.select_option("#depth", "all")
    assert opened.drawn() == expanded and opened.errors == []


def test_a_depth_past_the_deepest_call_collapses_none(browser, lenet, tmp_path):
    """LeNet-5's layers are 1 deep: at depth 2 every module call is open, as by default."""
    _, counts, _ = lenet
    model, loss = lenet_loss()
    opened = Opened(browser, explore(loss, params=model, path=tmp_path / "lenet.html", depth=2))
    assert opened.page.locator("#depth option").all_text_contents() == ["all", "0", "1"]
    assert opened.page.input_value("#depth") == "all" and opened.drawn() == counts[True]


def test_a_page_without_modules_has_no_depth_control(small):
    opened, _, data, _ = small
    assert not any(g["kind"] == "module" for g in data["groups"])
    assert opened.page.is_hidden("#depth-control")


def test_a_graph_already_backwarded_says_so(browser, tmp_path):
    _, loss = small_graph()
    loss.backward()
    opened = Opened(browser, explore(loss, path=tmp_path / "done.html"))
    assert "already backwarded" in opened.page.inner_text("#notes")
    assert opened.page.is_disabled("#step") and opened.errors == []


def test_a_10000_op_chain_loads(browser, tmp_path):
    x = tg.ones(3, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    path = explore(y.sum(), path=tmp_path / "chain.html")
    opened = Opened(browser, path)
    assert opened.errors == [] and opened.total() == opened.drawn() == 10_003
    opened.page.click("#step")
    assert opened.page.get_attribute("#step-info", "data-index") == "0"
    print(f"10,000-op chain: {path.stat().st_size / 2 ** 20:.1f} MiB page loaded in {opened.seconds:.2f} s")


def test_the_example_writes_the_page_and_the_doc_picture(tmp_path):
    """examples/explore_lenet.py makes docs/images/explorer_lenet.png: a browser's screenshot is not
    byte-stable, so the picture is checked for what it is (a non-blank PNG of the page's size), not
    compared byte for byte."""
    image = pytest.importorskip("matplotlib.image")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "explore_lenet.py"), str(tmp_path), "--batch-size",
                           "2", "--screenshot", str(tmp_path / "shot.png")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "lenet5_explorer.html: 43 nodes, 38 backward steps" in done.stdout
    for png in (tmp_path / "shot.png", ROOT / "docs" / "images" / "explorer_lenet.png"):
        pixels = image.imread(str(png))[..., :3]
        assert pixels.shape[:2] == (860, 1400), png
        assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50, png
