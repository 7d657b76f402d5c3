"""Seeing inside autodiff: tensor and module hooks (against PyTorch), the backward trace
(against gradients worked out by hand) and anomaly detection (the op and the line it names)."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, nn
from tinygrad_cnn import functional as F
from tinygrad_cnn.introspect.hooks import BackwardHookFunction
from tinygrad_cnn.testing import tensors

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
rng = np.random.default_rng(0)


def here() -> int:
    """The line number of the caller's next line."""
    return inspect.currentframe().f_back.f_lineno + 1


# ================================================================ tensor hooks

@given(tensors())
def test_the_identity_op_marking_module_boundaries_has_exact_gradients(x):
    """BackwardHookFunction (y = x) sits in every hooked module's graph: first and second order."""
    assert gradcheck(BackwardHookFunction.apply, [x])
    assert gradgradcheck(BackwardHookFunction.apply, [x])


def test_tensor_hooks_match_pytorch():
    """Hooks on a leaf used twice and on a non-leaf: each runs once per backward with the summed
    gradient; replacements chain in registration order and reach .grad, retained grads and the
    rest of the pass, as in PyTorch."""
    torch = pytest.importorskip("torch")
    data = rng.standard_normal(4)

    def run(lib, make):
        seen = []
        x = make(data)
        y = x * x + x  # x is used twice: its hook sees 2x + 1 once
        y.retain_grad()
        x.register_hook(lambda g: seen.append(("x", g.numpy().copy())))
        y.register_hook(lambda g: seen.append(("y1", g.numpy().copy())) or g * 3)
        y.register_hook(lambda g: seen.append(("y2", g.numpy().copy())))  # sees y1's replacement
        (y * y).sum().backward()
        return seen, x.grad.numpy(), y.grad.numpy()

    ours = run(tc, lambda a: Tensor(a, requires_grad=True))
    theirs = run(torch, lambda a: torch.tensor(a, requires_grad=True))
    assert [name for name, _ in ours[0]] == [name for name, _ in theirs[0]] == ["y1", "y2", "x"]
    for (_, a), (_, b) in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-12)


def test_tensor_hook_handle_removes_and_context_manager():
    x = Tensor([1.0, 2.0], requires_grad=True)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2).sum().backward()
    handle.remove()
    (x * 2).sum().backward()
    assert calls == [1]
    with x.register_hook(lambda g: g * 0):
        x.grad = None
        (x * 2).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    x.grad = None
    (x * 2).sum().backward()  # removed at the end of the with block
    assert x.grad.tolist() == [2.0, 2.0]


def test_tensor_hook_with_grad_and_create_graph():
    """autograd.grad returns the hooked gradient; under create_graph the hook gets a graph."""
    x = Tensor([3.0], requires_grad=True)
    y = x * x
    y.register_hook(lambda g: g * 10)
    (gx,) = tc.grad(y.sum(), x, create_graph=True)
    assert gx.tolist() == [60.0]  # 10 * 2x
    (ggx,) = tc.grad(gx.sum(), x)
    assert ggx.tolist() == [20.0]


@pytest.mark.parametrize("make, hook, error, words", [
    (lambda: Tensor([1.0]), lambda g: g, RuntimeError, "does not require grad"),
    (lambda: Tensor([1.0], requires_grad=True), "not callable", TypeError, "callable"),
])
def test_register_hook_errors(make, hook, error, words):
    with pytest.raises(error, match=words):
        make().register_hook(hook)


def test_hook_returning_the_wrong_shape_is_named():
    x = Tensor([1.0, 2.0], requires_grad=True)

    def bad_hook(g):
        return g.sum()

    x.register_hook(bad_hook)
    with pytest.raises(RuntimeError, match=r"bad_hook.*shape \(\).*shape \(2,\)"):
        (x * 2).sum().backward()


# ================================================================ module hooks

def twin_models(torch):
    """The same Linear-ReLU-Linear network in both libraries, with equal weights."""
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        p.data = Tensor(rng.standard_normal(p.shape))
        with torch.no_grad():
            q.copy_(torch.tensor(p.detach().numpy()))
    return ours, theirs


def record_hooks(model, events, *, replace_in: str | None = None):
    """Forward and full backward hooks on every module, recording (kind, name, values)."""
    handles = []
    for name, module in model.named_modules():
        name = name or "model"

        def forward_hook(module, inputs, output, name=name):
            events.append(("forward", name, [inputs[0].detach().numpy().copy()], [output.detach().numpy().copy()]))

        def backward_hook(module, grad_input, grad_output, name=name):
            events.append(("backward", name, [None if g is None else g.numpy().copy() for g in grad_input],
                           [g.numpy().copy() for g in grad_output]))
            if name == replace_in:
                return tuple(g * 0.5 for g in grad_input)

        handles += [module.register_forward_hook(forward_hook), module.register_full_backward_hook(backward_hook)]
    return handles


def assert_same_events(ours, theirs):
    assert [e[:2] for e in ours] == [e[:2] for e in theirs]
    for a, b in zip(ours, theirs):
        for xs, ys in ((a[2], b[2]), (a[3], b[3])):
            assert [x is None for x in xs] == [y is None for y in ys], a[:2]
            for x, y in zip(xs, ys):
                if x is not None:
                    np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, err_msg=str(a[:2]))


@pytest.mark.parametrize("input_requires_grad", [False, True])
@pytest.mark.parametrize("replace_in", [None, "1"])
def test_module_hooks_match_pytorch(input_requires_grad, replace_in):
    """Call order, the tensors passed to the hooks, a replaced grad_input and the resulting
    parameter gradients: as PyTorch, with the input requiring grad or not (then the model's
    own backward hook runs first, as soon as its output's gradient is known)."""
    torch = pytest.importorskip("torch")
    ours, theirs = twin_models(torch)
    data = rng.standard_normal((5, 3))
    events_ours, events_theirs = [], []
    record_hooks(ours, events_ours, replace_in=replace_in)
    record_hooks(theirs, events_theirs, replace_in=replace_in)
    ours(Tensor(data, requires_grad=input_requires_grad)).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs(torch.tensor(data, requires_grad=input_requires_grad)).sum().backward()
    assert_same_events(events_ours, events_theirs)
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10)


def test_forward_hook_replaces_output_and_handles_remove():
    layer = nn.Linear(2, 2)
    x = Tensor([[1.0, 2.0]])
    plain = layer(x).detach().numpy().copy()
    handle = layer.register_forward_hook(lambda module, inputs, output: output * 2)
    np.testing.assert_allclose(layer(x).detach().numpy(), 2 * plain)
    handle.remove()
    np.testing.assert_allclose(layer(x).detach().numpy(), plain)
    calls = []
    back = layer.register_full_backward_hook(lambda *args: calls.append(1))
    layer(x).sum().backward()
    back.remove()
    layer(x).sum().backward()
    assert calls == [1]


def test_backward_hook_runs_again_when_the_graph_is_retained():
    layer = nn.Linear(2, 1)
    norms = []
    layer.register_full_backward_hook(lambda m, gi, go: norms.append(float(go[0].sum().item())))
    out = layer(Tensor([[1.0, 2.0]], requires_grad=True)).sum()
    out.backward(retain_graph=True)
    out.backward()
    assert norms == [1.0, 1.0]


def test_backward_hook_replacement_errors():
    class Two(nn.Module):
        def forward(self, a, b):
            return a * b

    two = Two()
    two.register_full_backward_hook(lambda m, gi, go: tuple(g * 2 for g in gi))
    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Two: returned a new grad_input\[0\]"):
        two(a, b).sum().backward()
    layer = nn.Linear(1, 1)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="returned 2 gradients for 1 tensor inputs"):
        layer(Tensor([[1.0]], requires_grad=True)).sum().backward()


def test_module_with_two_inputs_gets_both_gradients():
    class Product(nn.Module):
        def forward(self, a, b):
            return a * b

    seen = []
    product = Product()
    product.register_full_backward_hook(lambda m, gi, go: seen.append([g.tolist() for g in gi]))
    a, b = Tensor([2.0], requires_grad=True), Tensor([5.0], requires_grad=True)
    product(a, b).sum().backward()
    assert seen == [[[5.0], [2.0]]]


# ================================================================ backward trace

def test_trace_records_each_step_with_hand_computed_gradients():
    """loss = sum(x * w): SumBackward receives 1 and sends ones; MulBackward receives the ones and
    sends (w, x); then each leaf's gradient lands in .grad."""
    x, w = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([4.0, 5.0, 6.0], requires_grad=True)
    with tc.trace_backward(params={"w": w}) as trace:
        (x * w).sum().backward()
    assert [s.op for s in trace] == ["SumBackward", "MulBackward", "AccumulateGrad", "AccumulateGrad"]
    total, product, first, second = trace
    assert total.grad_output.item() == 1.0 and total.grad_inputs[0].tolist() == [1.0, 1.0, 1.0]
    assert product.grad_output.tolist() == [1.0, 1.0, 1.0]
    assert [g.tolist() for g in product.grad_inputs] == [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]
    assert {first.tensor is x, second.tensor is x} == {True, False}
    assert {first.name, second.name} == {"", "w"}
    assert product.sources == (0,) and first.sources == second.sources == (1,)
    assert all(s.seconds >= 0 for s in trace)


def test_trace_table_and_graph():
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with tc.trace_backward() as trace:
        F.log_softmax(x, dim=1).sum().backward()
    text = str(trace)
    lines = text.splitlines()
    assert lines[0].split() == ["step", "op", "where", "grad_output", "grad_inputs", "saved", "time"]
    assert len(lines) == len(trace) + 3  # header, rule, one line per step, total
    assert "log_softmax" in text and f"{len(trace)} steps" in lines[-1]
    source = trace.to_graph().source
    assert len(re.findall(r"^\s*s\d+ \[label=", source, re.M)) == len(trace)
    assert source.count("->") == sum(len(s.sources) for s in trace)


def test_trace_covers_every_pass_in_its_block_and_nothing_after():
    x = Tensor([2.0], requires_grad=True)
    with tc.trace_backward() as trace:
        (x * x).sum().backward()
        (x * 3).sum().backward()
    (x * x).sum().backward()
    assert [s.op for s in trace] == ["SumBackward", "MulBackward", "AccumulateGrad"] * 2
    assert trace[5].sources == (4,)  # the second pass links to its own steps only
    assert autograd.graph.backward_observers == {}


# ================================================================ anomaly detection

def test_anomaly_forward_names_op_and_line():
    x = Tensor([1.0, -1.0], requires_grad=True)
    with tc.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(RuntimeError) as error:
            line = here()
            x.log()
    message = str(error.value)
    assert "Log produced NaN in its forward pass" in message
    assert f"{__file__}:{line}" in message and "x.log()" in message


def test_anomaly_backward_names_op_and_the_line_that_created_it():
    """sqrt(0) is fine forward, but its gradient 1 / (2 sqrt(0)) is Inf."""
    x = Tensor([0.0, 4.0], requires_grad=True)
    with tc.detect_anomaly(), np.errstate(divide="ignore"):
        line = here()
        y = x.sqrt()
        loss = y.sum()
        with pytest.raises(RuntimeError) as error:
            loss.backward()
    message = str(error.value)
    assert "SqrtBackward returned Inf in the gradient of its input 0" in message
    assert f"{__file__}:{line}" in message


def test_anomaly_names_the_composite_op():
    big = Tensor(np.full(3, 1e30, dtype=np.float32), requires_grad=True)
    with tc.detect_anomaly(), np.errstate(over="ignore"):
        with pytest.raises(RuntimeError, match=r"Mul \(in mse_loss\) produced Inf"):
            F.mse_loss(big, Tensor(np.zeros(3, np.float32)))


def test_anomaly_mode_accepts_a_healthy_cnn_and_intended_infinities():
    """Max pooling pads with -inf on purpose: that is not an anomaly."""
    tc.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3)
    with tc.detect_anomaly():
        out = F.max_pool2d(conv(tc.randn(2, 1, 8, 8)), 3, stride=2, padding=1)
        F.cross_entropy(out.flatten(1), Tensor([0, 1])).backward()
    assert np.isfinite(conv.weight.grad.numpy()).all()


def test_anomaly_mode_is_restored_and_records_nothing_outside():
    assert not autograd.is_anomaly_enabled()
    with pytest.raises(ValueError):
        with tc.detect_anomaly():
            assert autograd.is_anomaly_enabled()
            raise ValueError
    assert not autograd.is_anomaly_enabled()
    y = Tensor([1.0], requires_grad=True) * 2
    assert y.grad_fn.created_at is None


def test_anomaly_without_creation_site_says_how_to_get_it():
    x = Tensor([0.0], requires_grad=True)
    loss = x.sqrt().sum()  # built outside anomaly mode
    with tc.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(RuntimeError, match="build the graph inside detect_anomaly"):
            loss.backward()


# ================================================================ the walkthrough example

def test_autodiff_walkthrough_runs_and_checks_itself(tmp_path):
    """The example asserts each traced step against the chain rule worked out with NumPy."""
    done = subprocess.run([sys.executable, str(EXAMPLES / "autodiff_walkthrough.py"), "--graph", "trace.dot"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "grad_output" in done.stdout and "every step matches the chain rule by hand (13 steps)" in done.stdout
    assert (tmp_path / "trace.dot").read_text().startswith("digraph backward_trace")
