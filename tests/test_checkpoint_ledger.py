"""Activation checkpointing (tinygrad_cnn.utils.checkpoint) and the memory ledger
(autograd.graph.memory_report).

Truths: checkpointed gradients equal the plain run's bit for bit (the recomputation does the same
float operations), and PyTorch's torch.utils.checkpoint in float64 to 1e-6; the ledger's bytes equal
the NumPy memory tracemalloc sees freed when the graph goes; hand-computed byte counts and peaks.
"""
from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn import functional as F
from tinygrad_cnn.autograd.graph import memory_report, saved_bytes
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential
from tinygrad_cnn.viz import draw_graph

rng = np.random.default_rng(0)


def small_cnn(dropout: float = 0.0) -> nn.Sequential:
    """conv-BN-ReLU, (dropout), conv-ReLU, a linear head: 8x8 RGB images in, 5 logits out (float64)."""
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()]
    layers += [nn.Dropout(dropout)] if dropout else []
    layers += [nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)]
    return nn.Sequential(*layers).double()


def images(n: int = 3) -> Tensor:
    return Tensor(rng.standard_normal((n, 3, 8, 8)), requires_grad=True)


def gradients(model: nn.Module, x: Tensor, forward, seed: int = 1) -> list[np.ndarray]:
    """The gradients of sum(forward(x)) for the model's parameters and x, from a fresh start and seed."""
    model.zero_grad()
    x.grad = None
    tg.manual_seed(seed)
    forward(x).sum().backward()
    return [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]


def assert_identical(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------- checkpoint: the same gradients

@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpointed_gradients_equal_the_plain_run_exactly_with_dropout(use_reentrant):
    """Dropout draws its mask again in the recomputation, from the forward's random state: same mask."""
    model, x = small_cnn(dropout=0.4), images()
    plain = gradients(model, x, model)
    checkpointed = gradients(model, x, lambda t: checkpoint(model, t, use_reentrant=use_reentrant))
    assert_identical(plain, checkpointed)


def test_without_preserve_rng_state_the_recomputation_draws_another_mask():
    model, x = small_cnn(dropout=0.5), images()
    plain = gradients(model, x, model)
    fresh = gradients(model, x, lambda t: checkpoint(model, t, use_reentrant=False, preserve_rng_state=False))
    assert not all(np.array_equal(u, v) for u, v in zip(plain, fresh))


def test_the_global_generator_goes_on_as_without_checkpoint():
    """The recomputation rewinds the generator and puts it back: later draws are those of a plain run."""
    model, x = small_cnn(dropout=0.5), images()
    gradients(model, x, model)
    after_plain = tg.rand(4).numpy()
    gradients(model, x, lambda t: checkpoint(model, t, use_reentrant=False))
    np.testing.assert_array_equal(tg.rand(4).numpy(), after_plain)


@settings(max_examples=8)
@given(depth=st.integers(1, 6), segments=st.integers(1, 4), use_reentrant=st.booleans())
def test_checkpoint_sequential_equals_the_plain_run(depth, segments, use_reentrant):
    segments = min(segments, 2 * depth)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(6, 6), nn.Tanh()]
    model = nn.Sequential(*layers).double()
    x = Tensor(rng.standard_normal((4, 6)), requires_grad=True)
    plain = gradients(model, x, model)
    split = gradients(model, x, lambda t: checkpoint_sequential(model, segments, t, use_reentrant=use_reentrant))
    assert_identical(plain, split)


def test_nested_checkpoints_and_no_grad_inside():
    """An inner checkpoint inside an outer one; a part computed under no_grad inside the function
    (a constant factor: no gradient flows through it, in both runs)."""
    w = Tensor(rng.standard_normal(5), requires_grad=True)

    def inner(t):
        return (t * w).tanh().exp()

    def outer(t):
        with tg.no_grad():
            scale = t.sin() + 2
        return checkpoint(inner, t * scale, use_reentrant=False).sin() * w

    def run(f):
        x = Tensor(np.linspace(-1, 1, 5), requires_grad=True)
        w.grad = None
        f(x).sum().backward()
        return [x.grad.numpy().copy(), w.grad.numpy().copy()]

    plain = run(lambda t: (((t * (t.detach().sin() + 2)) * w).tanh().exp()).sin() * w)
    assert_identical(plain, run(outer))
    assert_identical(plain, run(lambda t: checkpoint(outer, t, use_reentrant=False)))


def test_grad_keyword_arguments_several_outputs_and_retain_graph():
    x = Tensor(rng.standard_normal(4), requires_grad=True)

    def f(t, *, power):
        return t.exp() ** power, t.sin()

    a, b = checkpoint(f, x, use_reentrant=False, power=3)
    g_ck, = tg.autograd.grad((a * b).sum(), x, retain_graph=True)
    g_again, = tg.autograd.grad((a * b).sum(), x)  # the checkpoint recomputes once more
    a0, b0 = f(x, power=3)
    g_plain, = tg.autograd.grad((a0 * b0).sum(), x)
    np.testing.assert_array_equal(g_ck.numpy(), g_plain.numpy())
    np.testing.assert_array_equal(g_again.numpy(), g_plain.numpy())


def test_batchnorm_running_statistics_move_twice_as_in_pytorch():
    """The recomputation runs BatchNorm's forward again: running stats and num_batches_tracked move
    twice, in PyTorch too."""
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(3).double()
    theirs = torch.nn.BatchNorm2d(3).double()
    data = rng.standard_normal((4, 3, 5, 5))
    for use_reentrant in (False, True):
        y = checkpoint(ours, Tensor(data, requires_grad=True), use_reentrant=use_reentrant)
        y.sum().backward()
        t = torch.utils.checkpoint.checkpoint(theirs, torch.tensor(data, requires_grad=True),
                                              use_reentrant=use_reentrant)
        t.sum().backward()
    assert int(ours.num_batches_tracked.item()) == int(theirs.num_batches_tracked) == 4
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_gradients_equal_pytorch_checkpoint_on_a_small_cnn(use_reentrant):
    torch = pytest.importorskip("torch")
    model, x = small_cnn(), images()
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 8 * 8, 5)).double()
    reference.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in model.state_dict().items()})
    ours = gradients(model, x, lambda t: checkpoint_sequential(model, 2, t, use_reentrant=use_reentrant))
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    torch.utils.checkpoint.checkpoint(lambda t: reference(t), xt, use_reentrant=use_reentrant).sum().backward()
    theirs = [p.grad.numpy() for p in reference.parameters()] + [xt.grad.numpy()]
    for u, v in zip(ours, theirs):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- checkpoint: arguments and errors

def test_use_reentrant_left_out_warns_and_means_true_as_pytorch():
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning, match="use_reentrant"):
        checkpoint(lambda t: t.exp(), images())
    with pytest.warns(UserWarning, match="use_reentrant"):
        torch.utils.checkpoint.checkpoint(lambda t: t.exp(), torch.ones(2, requires_grad=True))
    with pytest.warns(UserWarning, match="use_reentrant"):
        checkpoint_sequential([nn.ReLU(), nn.ReLU()], 2, images())
    with pytest.raises(ValueError, match="Unexpected keyword arguments: power"):  # reentrant takes no kwargs
        checkpoint(lambda t, power: t ** power, images(), use_reentrant=True, power=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint(lambda t: t.exp(), images(), use_reentrant=False)


def test_bad_arguments_raise_as_pytorch():
    x = images()
    with pytest.raises(ValueError, match="context_fn"):
        checkpoint(lambda t: t, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="determinism_check"):
        checkpoint(lambda t: t, x, use_reentrant=False, determinism_check="strict")
    with pytest.raises(ValueError, match="Unexpected keyword arguments"):
        checkpoint_sequential([nn.ReLU()], 1, x, use_reentrant=False, early_stop=True)
    with pytest.raises(ValueError, match="segments must be between 1 and the number of functions \\(2\\), got 3"):
        checkpoint_sequential([nn.ReLU(), nn.ReLU()], 3, x, use_reentrant=False)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        checkpoint(lambda t: t.exp(), Tensor(np.ones(2)), use_reentrant=True)


def test_a_function_that_saves_other_shapes_when_recomputed_raises_checkpoint_error():
    """Both PyTorch's checks: other shapes, and another number of saved tensors."""
    torch = pytest.importorskip("torch")
    for lib, ours in ((tg, True), (torch, False)):
        calls = [0, 0]

        def grows(t):
            calls[0] += 1
            return t[:calls[0] + 2].exp().sum()

        def shrinks(t):
            calls[1] += 1
            return t.exp().exp().sum() if calls[1] == 1 else t.exp().sum()
        for f, match in ((grows, "different"), (shrinks, "different number")):
            x = lib.ones(6, requires_grad=True) if not ours else Tensor(np.ones(6), requires_grad=True)
            y = (checkpoint if ours else torch.utils.checkpoint.checkpoint)(f, x, use_reentrant=False)
            error = CheckpointError if ours else torch.utils.checkpoint.CheckpointError
            with pytest.raises(error, match=match):
                y.backward()


def test_early_stop_off_and_debug():
    """early_stop=False runs the whole function again (same gradients); debug=True lists what each pass saved."""
    x = Tensor(np.linspace(0, 1, 4), requires_grad=True)
    g_full, = tg.autograd.grad(checkpoint(lambda t: t.exp().sin().sum(), x, use_reentrant=False,
                                          early_stop=False), x)
    g_plain, = tg.autograd.grad(x.exp().sin().sum(), x)
    np.testing.assert_array_equal(g_full.numpy(), g_plain.numpy())
    calls = [0]

    def shrinks(t):
        calls[0] += 1
        return t.exp().exp().sum() if calls[0] == 1 else t.exp().sum()
    y = checkpoint(shrinks, x, use_reentrant=False, debug=True)
    listed = r"saved in the forward \(shape, dtype\): \[\(\(4,\), dtype\('float64'\)\)"
    with pytest.raises(CheckpointError, match=listed):
        y.backward()


def test_an_input_changed_in_place_before_backward_raises():
    x = Tensor(np.ones(3), requires_grad=True)
    a = x * 2
    y = checkpoint(lambda t: t.exp(), a, use_reentrant=False)
    with tg.no_grad():
        a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_context_fn_wraps_the_forward_and_the_recomputation():
    entered = []

    class Mark:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            entered.append(self.name)

        def __exit__(self, *exc):
            return False
    x = images()
    y = checkpoint(lambda t: t.exp(), x, use_reentrant=False, context_fn=lambda: (Mark("forward"), Mark("recompute")))
    assert entered == ["forward"]
    y.sum().backward()
    assert entered == ["forward", "recompute"]


# ---------------------------------------------------------------- the ledger

def numpy_bytes() -> int:
    """The bytes of NumPy array memory allocated now, as tracemalloc sees them."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


def lenet_graph(batch: int = 4, checkpointed: bool = False):
    """LeNet-5's loss graph on random digits, with nothing else left holding its arrays: its root node."""
    model = LeNet5()
    x = Tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), requires_grad=True)
    y = Tensor(np.arange(batch) % 10)
    if checkpointed:  # a Module, not a closure over the model: the ledger sees the parameters it holds
        features = nn.Sequential(model.conv1, model.relu, model.pool, model.conv2, model.relu, model.pool)
        features = checkpoint(features, x, use_reentrant=False)
        logits = model.fc3(model.relu(model.fc2(model.relu(model.fc1(model.flatten(features))))))
    else:
        logits = model(x)
    return F.cross_entropy(logits, y).grad_fn


@pytest.mark.parametrize("checkpointed", [False, True])
def test_ledger_total_equals_the_numpy_memory_freed_with_the_graph(checkpointed):
    tracemalloc.start()
    try:
        node = lenet_graph(checkpointed=checkpointed)
        total = memory_report(node).total
        before = numpy_bytes()
        del node
        assert before - numpy_bytes() == total
    finally:
        tracemalloc.stop()


def test_shared_memory_is_counted_once_by_hand():
    """exp saves its output y, sin its input y (the same array), the reshape view of it too."""
    x = Tensor(np.ones(1000), requires_grad=True)
    y = x.exp()
    loss = y.sin().sum() + y.reshape(10, 100).cos().sum()
    report = memory_report(loss)
    arrays = [r for r in report.rows if r.shape in ((1000,), (10, 100))]
    assert sorted(r.kind for r in arrays) == ["output", "tensor", "tensor"]
    assert sum(r.held for r in arrays) == 8000 and sorted(r.held for r in arrays) == [0, 0, 8000]
    assert report.total == 8000
    assert "8000" in str(report) and "7.8 KiB" in str(report)


def test_simulated_peak_by_hand():
    """y = exp(x), z = exp(y), sum(z), x of 1000 float64 (8000 bytes): held 16000 (both outputs); the peak is
    at z's exp: 16000 held + its incoming gradient 8000 + the gradient it sends 8000."""
    x = Tensor(np.ones(1000), requires_grad=True)
    loss = x.exp().exp().sum()
    report = memory_report(loss)
    assert (report.total, report.peak, report.nodes) == (16000, 32000, 4)


def test_released_nodes_hold_nothing_and_retain_graph_keeps_them():
    node = lenet_graph()
    assert memory_report(node).total > 0
    x = Tensor(np.ones(5), requires_grad=True)
    loss = x.exp().sum()
    loss.backward(retain_graph=True)
    assert memory_report(loss).total == 40
    loss.backward()
    report = memory_report(loss)
    assert report.total == 0 and all(r.held == 0 for r in report.rows)
    assert report.node_bytes(loss.grad_fn.next_functions[0][0]) == 0


def conv_blocks(n: int) -> list[nn.Module]:
    return [nn.Sequential(nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1), nn.ReLU()) for i in range(n)]


def run_blocks(blocks: list[nn.Module], checkpointed: bool):
    """sum(blocks(x)) on 4x3x16x16 float32 images, each block checkpointed or not: the ledger before
    backward, and the NumPy memory at its highest during forward and backward, from before the forward.
    One thread: with two, a conv's input and weight gradients (each with its column buffer) are alive at
    once or in turn as the threads happen to run, which moves the measured peak by a fifth."""
    threads = tg.get_num_threads()
    tg.set_num_threads(1)
    tracemalloc.start()
    try:
        base = numpy_bytes()
        x = Tensor(rng.standard_normal((4, 3, 16, 16)).astype(np.float32), requires_grad=True)
        for block in blocks:
            x = checkpoint(block, x, use_reentrant=False) if checkpointed else block(x)
        loss = x.sum()
        report = memory_report(loss)
        loss.backward()
        return report, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        tg.set_num_threads(threads)


def test_checkpointing_lowers_the_ledger_and_the_measured_peak():
    """Ten conv-ReLU blocks, each checkpointed: the graph keeps only each block's input (4x3x16x16 for
    the first, 4x8x16x16 for the others) and parameters (8x3x3x3 and 9 of 8x8x3x3 weights, 10 biases of 8),
    float32; all else is recomputed."""
    blocks = conv_blocks(10)
    plain, plain_peak = run_blocks(blocks, False)
    ck, ck_peak = run_blocks(blocks, True)
    assert ck.total == 4 * (4 * 3 * 16 * 16 + 9 * 4 * 8 * 16 * 16 + 8 * 3 * 3 * 3 + 9 * 8 * 8 * 3 * 3 + 10 * 8)
    assert {r.kind for r in ck.rows if r.held} == {"checkpoint input"}
    assert plain.recomputed == 0 and ck.recomputed >= plain.total - ck.total
    # the measured peaks include what the simulation leaves out: conv's im2col blocks, in forward and backward
    assert ck.total < plain.total / 2 and ck.peak < 0.6 * plain.peak and ck_peak < 0.8 * plain_peak


@pytest.mark.parametrize("checkpointed", [False, True])
@pytest.mark.parametrize("retain_graph", [False, True])
def test_simulated_peak_matches_the_measured_one_to_one_array(checkpointed, retain_graph):
    """Twenty exps of 100,000 float64 (800 kB each), in pairs checkpointed or not: exp's VJP (g * y)
    makes nothing but the gradient, so the NumPy memory at its highest during backward (less x, which
    the user holds and no node saves) is the simulated peak, to within one array."""
    size = 100_000 * 8
    tracemalloc.start()
    try:
        base = numpy_bytes()
        x = Tensor(np.linspace(-1, 1, 100_000), requires_grad=True)
        y = x
        for _ in range(10):
            y = checkpoint(lambda t: t.exp().exp(), y, use_reentrant=False) if checkpointed else y.exp().exp()
        loss = y.sum()
        report = memory_report(loss, retain_graph=retain_graph)
        assert report.total == (10 if checkpointed else 20) * size  # pair inputs (the first is x), or all outputs
        tracemalloc.reset_peak()
        loss.backward(retain_graph=retain_graph)
        measured = tracemalloc.get_traced_memory()[1] - base - size
    finally:
        tracemalloc.stop()
    assert abs(report.peak - measured) <= size


def test_bad_roots():
    with pytest.raises(RuntimeError, match="no graph"):
        memory_report(Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="Tensor or a graph node"):
        memory_report(np.ones(2))


# ---------------------------------------------------------------- in drawings and traces

def test_draw_graph_shows_each_ops_saved_bytes():
    x = Tensor(np.ones(1000), requires_grad=True)
    loss = x.exp().sum()
    source = draw_graph(loss, show_saved=True).source
    assert "saved 7.8 KiB" in source and "saved 0 B" in source  # exp keeps its output; sum keeps nothing
    assert "saved" not in draw_graph(loss).source
    loss.backward()
    assert "saved 7.8 KiB" not in draw_graph(loss, show_saved=True).source
    with pytest.raises(TypeError, match="show_saved"):
        draw_graph(loss, show_saved="yes")


def test_trace_shows_what_each_node_held_when_it_ran():
    x = Tensor(np.ones(1000), requires_grad=True)
    loss = x.exp().sin().sum()
    expected = {n.name(): saved_bytes([n]) for n in (loss.grad_fn, loss.grad_fn.next_functions[0][0])}
    with tg.trace_backward() as trace:
        loss.backward()
    by_op = {s.op: s.saved_bytes for s in trace}
    assert by_op["SinBackward"] == by_op["ExpBackward"] == 8000 and by_op["SumBackward"] == 0
    assert {k: by_op[k] for k in expected} == expected
    assert "7.8 KiB" in str(trace)


def test_recomputing_a_value_that_is_the_calls_input_or_parameter_takes_no_new_memory():
    """Linear saves its input and its weight: run again, the call hands back those very arrays, so
    the ledger counts nothing recomputed for them; the ReLU's mask after it is new memory."""
    layer = nn.Linear(8, 8)
    x = tg.randn(16, 8, requires_grad=True)
    plain = memory_report(checkpoint(layer, x, use_reentrant=False).sum())
    assert plain.recomputed == 0
    with_mask = memory_report(checkpoint(nn.Sequential(layer, nn.ReLU()), x, use_reentrant=False).sum())
    output_bytes = 16 * 8 * 4  # float32 (16, 8): the linear's output kept by the ReLU (or its mask)
    assert 0 < with_mask.recomputed <= output_bytes
