"""The backward graph as the engine builds it: nodes and edges, what a node saves and frees,
in-place changes and their version checks, observers, and the pruning of `grad()`. Every
expected gradient is worked out by hand (the PyTorch comparisons are in test_semantics_torch)."""
import gc

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.autograd.graph import AccumulateGrad, register_backward_observer


def leaf(*values: float) -> Tensor:
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def nodes_of(t: Tensor) -> list:
    """Every node reachable from t.grad_fn, iteratively."""
    seen, stack, found = set(), [t.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        found.append(node)
        stack.extend(n for n, _ in node.next_functions)
    return found


# ---------------------------------------------------------------- edges

def test_edges_lead_to_the_nodes_that_made_the_inputs():
    """z = x * y + x: AddBackward's edges go to MulBackward and to x's AccumulateGrad, which is the
    same node MulBackward's first edge reaches (one per leaf); a constant gets no edge."""
    x, y = leaf(1.0), leaf(2.0)
    z = x * y + x
    (mul, zero), (acc, nr) = z.grad_fn.next_functions
    assert mul.name() == "MulBackward" and zero == 0 and nr == 0
    assert isinstance(acc, AccumulateGrad) and acc.variable is x
    assert mul.next_functions[0][0] is acc
    assert (x * 2.0).grad_fn.next_functions[1] == (None, 0)


def test_the_graph_holds_no_leaf_alive():
    """AccumulateGrad holds its leaf weakly: a leaf nobody holds is freed with its array."""
    x = leaf(1.0, 2.0)
    y = (x * 3.0).sum()
    acc = y.grad_fn.next_functions[0][0].next_functions[0][0]
    del x
    gc.collect()
    assert acc.variable is None
    y.backward()  # the gradient has nowhere to go, and nothing fails


# ---------------------------------------------------------------- what a node keeps

def test_a_node_saves_only_what_its_vjp_reads():
    """x * y saves both factors; x + y nothing; exp its output; relu a mask (not its input)."""
    x, y = Tensor(np.ones((2, 3)), requires_grad=True), Tensor(np.ones((2, 3)), requires_grad=True)
    assert [i.kind for i in (x * y).grad_fn.saved_tensors_info] == ["tensor", "tensor"]
    assert (x + y).grad_fn.saved_tensors_info == ()
    (info,) = x.exp().grad_fn.saved_tensors_info
    assert (info.kind, info.shape, info.nbytes) == ("output", (2, 3), 48)
    (mask,) = x.relu().grad_fn.saved_tensors_info
    assert (mask.kind, mask.dtype, mask.nbytes) == ("array", np.dtype(bool), 6)
    only_x_needs = x * Tensor(np.ones((2, 3)))  # x's gradient needs the constant, not x
    assert len(only_x_needs.grad_fn.saved_tensors_info) == 1


def test_backward_frees_every_saved_value_but_keeps_the_edges():
    x = Tensor(np.random.default_rng(0).standard_normal((4, 4)), requires_grad=True)
    loss = ((x @ x).tanh() * x).sum()
    before = [len(n.next_functions) for n in nodes_of(loss)]
    loss.backward()
    nodes = nodes_of(loss)
    assert all(getattr(n, "saved_tensors_info", ()) == () for n in nodes)
    assert [len(n.next_functions) for n in nodes] == before
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_a_saved_output_comes_back_in_the_graph():
    """exp saves its output; unpacked, it is a tensor of exp's node, so the second derivative of
    exp(x) flows through it: d2/dx2 exp(x) = exp(x)."""
    x = leaf(0.5)
    (g,) = tg.autograd.grad(x.exp().sum(), x, create_graph=True)
    (gg,) = tg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.exp([0.5]))


# ---------------------------------------------------------------- in place

def test_an_inplace_product_keeps_the_value_it_overwrites():
    """h = 3x; h *= y: d(sum h)/dy = 3x, d/dx = 3y; the old h is kept for y's gradient."""
    x, y = leaf(1.0, 2.0), leaf(5.0, 7.0)
    h = x * 3.0
    h *= y
    assert h._version == 1 and h.grad_fn.name() == "MulBackward"
    h.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 6.0])
    np.testing.assert_allclose(x.grad.numpy(), [15.0, 21.0])


def test_a_value_changed_after_it_was_saved_is_caught():
    x = leaf(1.0, 2.0)
    h = x * 1.0
    y = h.sigmoid()
    z = y * h  # saves y and h
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*MulBackward"):
        z.sum().backward()


def test_a_change_through_a_view_is_seen_by_its_base():
    x = leaf(1.0, 2.0, 3.0)
    h = x * 2.0
    z = h * h  # saves h
    with tg.no_grad():
        h[1:].add_(1.0)  # a view of h: they share one version counter
    assert h._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("change, error, words", [
    (lambda h, y: h[0:2].add_(y), RuntimeError, "view"),
    (lambda h, y: h.reshape(4).mul_(2.0), RuntimeError, "view"),
    (lambda h, y: tg.zeros(2, dtype=tg.int64).add_(1.5), RuntimeError, "can't be cast"),
    (lambda h, y: h.add_(tg.ones(3, 2, 2, dtype=tg.float64)), RuntimeError, "doesn't match the broadcast shape"),
    (lambda h, y: h.expand(3, 2, 2).mul_(2.0), RuntimeError, "view"),
    (lambda h, y: h.__setitem__((5, 0), 1.0), IndexError, "setitem"),
])
def test_inplace_errors_name_the_op(change, error, words):
    h, y = leaf(1.0, 2.0, 3.0, 4.0).reshape(2, 2) * 1.0, leaf(1.0, 1.0)
    with pytest.raises(error, match=words):
        change(h, y)


def test_inplace_under_no_grad_keeps_a_leaf_a_leaf():
    p = leaf(1.0, 2.0)
    (p * p).sum().backward()
    with tg.no_grad():
        p -= 0.1 * p.grad
        p[0] = 5.0
    assert p.is_leaf and p.requires_grad and p._version == 2
    np.testing.assert_allclose(p.detach().numpy(), [5.0, 1.6])


# ---------------------------------------------------------------- observers and pruning

class Recorder:
    def __init__(self):
        self.names = []

    def start_pass(self):
        self.names.append("|")

    def record(self, node, grads, input_grads, seconds):
        self.names.append(node.name())


def test_grad_runs_only_the_nodes_that_lead_to_its_inputs():
    """grad(loss, y) needs loss -> Mul -> y: the branch through exp(x) is never run, and no .grad
    is touched."""
    x, y = leaf(1.0), leaf(2.0)
    loss = (x.exp() * y).sum()
    recorder = Recorder()
    with register_backward_observer(recorder):
        (g,) = tg.autograd.grad(loss, y)
    assert recorder.names == ["|", "SumBackward", "MulBackward"]
    np.testing.assert_allclose(g.numpy(), np.exp([1.0]))
    assert x.grad is None and y.grad is None


def test_backward_with_inputs_fills_only_their_grad():
    x, y = leaf(1.0), leaf(2.0)
    (x * y).sum().backward(inputs=[y])
    assert x.grad is None
    np.testing.assert_allclose(y.grad.numpy(), [1.0])


def test_an_observer_is_removed_with_its_handle():
    recorder = Recorder()
    handle = register_backward_observer(recorder)
    (leaf(1.0) * 2.0).sum().backward()
    handle.remove()
    (leaf(1.0) * 2.0).sum().backward()
    assert recorder.names == ["|", "SumBackward", "MulBackward", "AccumulateGrad"]


def test_anomaly_mode_belongs_to_its_thread():
    import threading
    seen = []
    with tg.detect_anomaly():
        worker = threading.Thread(target=lambda: seen.append(tg.autograd.is_anomaly_enabled()))
        worker.start()
        worker.join()
        assert tg.autograd.is_anomaly_enabled()
    assert seen == [False] and not tg.autograd.is_anomaly_enabled()
