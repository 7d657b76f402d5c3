"""Forward-mode autodiff against PyTorch's torch.autograd.forward_ad: the same primals and tangents
through both, in float64; values and tangents agree to 1e-6 (random compositions of our ops, the
pieces of a CNN, custom Functions), and the API behaves as PyTorch's (levels, errors)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn.autograd import forward_ad as fw
from tinygrad_cnn.testing import arrays, distinct_arrays

torch = pytest.importorskip("torch")
tfw = torch.autograd.forward_ad
TF = torch.nn.functional


def dual_outputs(f: Callable, fwd, tensor: Callable, primals: list[np.ndarray], tangents: list[np.ndarray]):
    """(value, tangent) of f's output for dual inputs, as NumPy arrays (the tangent None if the
    output does not depend on the inputs), with either library."""
    with fwd.dual_level():
        out = f(*[fwd.make_dual(tensor(p), tensor(t)) for p, t in zip(primals, tangents)])
        value, tangent = fwd.unpack_dual(out)
        return value.detach().numpy(), None if tangent is None else tangent.detach().numpy()


def assert_same_jvp(ours: Callable, theirs: Callable, primals: list[np.ndarray], tangents: list[np.ndarray]) -> None:
    value, tangent = dual_outputs(ours, fw, tg.tensor, primals, tangents)
    expected_value, expected_tangent = dual_outputs(theirs, tfw, torch.tensor, primals, tangents)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tangent, expected_tangent, rtol=1e-6, atol=1e-6)


def tangents_for(data, primals: list[np.ndarray]) -> list[np.ndarray]:
    return [data.draw(arrays(p.shape), label="tangent") for p in primals]


# ================================================================ random compositions

UNARY = {  # name: (ours, PyTorch's), each defined on all of R
    "exp_tanh": (lambda x: x.tanh().exp(), lambda x: x.tanh().exp()),
    "log_square": (lambda x: (x * x + 1).log(), lambda x: (x * x + 1).log()),
    "sin": (lambda x: x.sin(), lambda x: x.sin()),
    "cos": (lambda x: x.cos(), lambda x: x.cos()),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "relu": (lambda x: x.relu(), lambda x: x.relu()),
    "abs": (abs, abs),
    "sqrt": (lambda x: (x * x + 0.5).sqrt(), lambda x: (x * x + 0.5).sqrt()),
    "pow": (lambda x: (x * x + 1) ** 1.5, lambda x: (x * x + 1) ** 1.5),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7)),
    "erf": (lambda x: x.erf(), lambda x: x.erf()),
    "mean_rows": (lambda x: x - x.mean(1, keepdim=True), lambda x: x - x.mean(1, keepdim=True)),
    "amax_cols": (lambda x: x * x.amax(0, keepdim=True), lambda x: x * x.amax(0, keepdim=True)),
    "cumsum": (lambda x: x.cumsum(1), lambda x: x.cumsum(1)),
    "flip_transpose": (lambda x: x.T.flip(0).T, lambda x: x.T.flip(0).T),
    "softmax": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    "pad_slice": (lambda x: F.pad(x, (1, 1))[:, 2:], lambda x: TF.pad(x, (1, 1))[:, 2:]),
    "gram": (lambda x: x @ x.T @ x * 0.1, lambda x: x @ x.T @ x * 0.1),
    "where": (lambda x: tg.where(x > 0, x * 2, x.exp()), lambda x: torch.where(x > 0, x * 2, x.exp())),
}
BINARY = {
    "add": (lambda x, y: x + y, lambda x, y: x + y),
    "sub": (lambda x, y: x - y, lambda x, y: x - y),
    "mul": (lambda x, y: x * y, lambda x, y: x * y),
    "div": (lambda x, y: x / (y * y + 1), lambda x, y: x / (y * y + 1)),
    "maximum": (lambda x, y: x.maximum(y), lambda x, y: x.maximum(y)),
    "cat_half": (lambda x, y: tg.cat([x[:, :2], y[:, 2:]], 1), lambda x, y: torch.cat([x[:, :2], y[:, 2:]], 1)),
    "einsum": (lambda x, y: tg.einsum("ij,kj->ik", x, y) @ x * 0.1,
               lambda x, y: torch.einsum("ij,kj->ik", x, y) @ x * 0.1),
}
SHAPE = (3, 4)


@st.composite
def programs(draw) -> list[tuple[str, int]]:
    """3-6 steps; each applies a unary op to the last value, or a binary op to the last value and
    an earlier one (an input or an intermediate), so values are reused along several paths."""
    steps = []
    for i in range(draw(st.integers(3, 6))):
        name = draw(st.sampled_from(sorted(UNARY) + sorted(BINARY)))
        steps.append((name, draw(st.integers(0, i + 1))))  # values 0, 1 are the two inputs
    return steps


def run(program: list[tuple[str, int]], library: int) -> Callable:
    def f(x, y):
        values = [x, y]
        for name, other in program:
            if name in UNARY:
                values.append(UNARY[name][library](values[-1]))
            else:
                values.append(BINARY[name][library](values[-1], values[other]))
        return values[-1]
    return f


@given(program=programs(), data=st.data())
def test_random_compositions_match_pytorch(program, data):
    primals = [data.draw(arrays(SHAPE), label="x"), data.draw(arrays(SHAPE), label="y")]
    assert_same_jvp(run(program, 0), run(program, 1), primals, tangents_for(data, primals))


@given(program=programs(), data=st.data())
def test_a_tangent_on_one_input_only(program, data):
    """Only x is dual: y's terms of every product rule are skipped, the result is still PyTorch's."""
    x, y, t = data.draw(arrays(SHAPE)), data.draw(arrays(SHAPE)), data.draw(arrays(SHAPE))
    _, ours = dual_outputs(lambda x: run(program, 0)(x, tg.tensor(y)), fw, tg.tensor, [x], [t])
    _, theirs = dual_outputs(lambda x: run(program, 1)(x, torch.tensor(y)), tfw, torch.tensor, [x], [t])
    assert (ours is None) == (theirs is None)  # None when the result does not depend on x
    if ours is not None:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


# ================================================================ CNN pieces

@given(stride=st.integers(1, 2), padding=st.integers(0, 1), groups=st.sampled_from([1, 2]),
       bias=st.booleans(), data=st.data())
def test_conv2d(stride, padding, groups, bias, data):
    primals = [data.draw(arrays((2, 2, 4, 4))), data.draw(arrays((2, 2 // groups, 3, 3)))]
    primals += [data.draw(arrays((2,)))] if bias else []
    assert_same_jvp(lambda *a: F.conv2d(*a, stride=stride, padding=padding, groups=groups),
                    lambda *a: TF.conv2d(*a, stride=stride, padding=padding, groups=groups),
                    primals, tangents_for(data, primals))


@given(kernel=st.integers(2, 3), stride=st.integers(1, 2), padding=st.integers(0, 1), data=st.data())
def test_max_pool2d(kernel, stride, padding, data):
    primals = [data.draw(distinct_arrays((2, 2, 5, 5)))]  # no ties: one clear maximum per window
    assert_same_jvp(lambda x: F.max_pool2d(x, kernel, stride, padding),
                    lambda x: TF.max_pool2d(x, kernel, stride, padding), primals, tangents_for(data, primals))


@given(training=st.booleans(), data=st.data())
def test_batch_norm(training, data):
    """Training: the batch statistics' own tangents flow in; evaluation: the running ones are constants."""
    primals = [data.draw(arrays((4, 3, 2, 2))), data.draw(arrays((3,))), data.draw(arrays((3,)))]
    mean, var = data.draw(arrays((3,))), data.draw(arrays((3,), low=0.5))

    def call(functional, tensor):
        return lambda x, w, b: functional.batch_norm(x, tensor(mean.copy()), tensor(var.copy()), w, b,
                                                     training=training)
    assert_same_jvp(call(F, tg.tensor), call(TF, torch.tensor), primals, tangents_for(data, primals))


@given(label_smoothing=st.sampled_from([0.0, 0.1]), reduction=st.sampled_from(["mean", "sum", "none"]),
       data=st.data())
def test_cross_entropy(label_smoothing, reduction, data):
    primals = [data.draw(arrays((5, 4)))]
    labels = data.draw(st.lists(st.integers(0, 3), min_size=5, max_size=5))
    assert_same_jvp(
        lambda z: F.cross_entropy(z, tg.tensor(labels), label_smoothing=label_smoothing, reduction=reduction),
        lambda z: TF.cross_entropy(z, torch.tensor(labels), label_smoothing=label_smoothing, reduction=reduction),
        primals, tangents_for(data, primals))


@given(dim=st.integers(-2, 1), data=st.data())
def test_softmax_and_log_softmax(dim, data):
    primals = [data.draw(arrays((3, 5)))]
    tangents = tangents_for(data, primals)
    assert_same_jvp(lambda z: F.softmax(z, dim), lambda z: TF.softmax(z, dim), primals, tangents)
    assert_same_jvp(lambda z: F.log_softmax(z, dim), lambda z: TF.log_softmax(z, dim), primals, tangents)


@given(data=st.data())
def test_a_small_cnn_end_to_end(data):
    """conv -> relu -> max pool -> flatten -> linear -> cross-entropy, every input dual."""
    primals = [data.draw(arrays((2, 1, 6, 6))), data.draw(arrays((3, 1, 3, 3))), data.draw(arrays((3,))),
               data.draw(arrays((4, 12))), data.draw(arrays((4,)))]
    labels = [1, 3]

    def net(functional, tensor):
        def f(x, w, b, fc, fb):
            h = functional.max_pool2d(functional.relu(functional.conv2d(x, w, b)), 2)
            return functional.cross_entropy(functional.linear(h.flatten(1), fc, fb), tensor(labels))
        return f
    assert_same_jvp(net(F, tg.tensor), net(TF, torch.tensor), primals, tangents_for(data, primals))


# ================================================================ custom Functions

def scaled_product(base):
    """x * y * k with PyTorch's forward-AD Function API (save_for_forward, jvp), on either library."""
    class ScaledProduct(base):
        @staticmethod
        def forward(ctx, x, y, k):
            ctx.save_for_forward(x, y)
            ctx.k = k
            return x * y * k, x.exp()

        @staticmethod
        def jvp(ctx, tx, ty, tk):
            x, y = ctx.saved_tensors
            return (tx * y + x * ty) * ctx.k, tx * x.exp()

        @staticmethod
        def backward(ctx, g, h):
            raise AssertionError("not reached")
    return ScaledProduct


@given(data=st.data())
def test_custom_function_jvp(data):
    primals = [data.draw(arrays((3,))), data.draw(arrays((3,)))]
    tangents = tangents_for(data, primals)
    ours, theirs = scaled_product(tg.autograd.Function), scaled_product(torch.autograd.Function)
    for k in range(2):
        assert_same_jvp(lambda x, y: ours.apply(x, y, 2.0)[k], lambda x, y: theirs.apply(x, y, 2.0)[k],
                        primals, tangents)
    # an input without a tangent reaches jvp as zeros, as in PyTorch
    y = np.ones(3)
    value, tangent = dual_outputs(lambda x: ours.apply(x, tg.tensor(y), 3.0)[0], fw, tg.tensor, primals[:1],
                                  tangents[:1])
    np.testing.assert_allclose(tangent, tangents[0] * y * 3.0, rtol=1e-12)


def test_custom_function_without_jvp_raises_when_a_tangent_flows_in():
    def twice(base):
        class Twice(base):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return g * 2
        return Twice
    for library, fwd, tensor in ((tg.autograd.Function, fw, tg.tensor), (torch.autograd.Function, tfw, torch.tensor)):
        f = twice(library)
        with fwd.dual_level():
            x = fwd.make_dual(tensor(np.ones(2)), tensor(np.ones(2)))
            with pytest.raises(NotImplementedError, match="jvp"):
                f.apply(x)
            assert f.apply(tensor(np.ones(2))).tolist() == [2.0, 2.0]  # no tangent: no jvp needed


# ================================================================ reverse over forward, tangents of tangents

@given(data=st.data())
def test_backward_through_a_tangent(data):
    """The tangent is a graph: d(sum of the JVP)/d(primal) and /d(tangent), as PyTorch."""
    p, t = data.draw(arrays((3, 4))), data.draw(arrays((3, 4)))
    grads = []
    for lib, fwd in ((tg, fw), (torch, tfw)):
        def f(x):
            return ((x.sin() * x.exp()).tanh() @ x.T).sigmoid()
        x, v = lib.tensor(p, requires_grad=True), lib.tensor(t, requires_grad=True)
        with fwd.dual_level():
            jvp = fwd.unpack_dual(f(fwd.make_dual(x, v))).tangent
            (jvp * jvp).sum().backward()
        grads.append((x.grad.numpy(), v.grad.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@given(data=st.data())
def test_forward_over_reverse_gives_hessian_vector_products(data):
    """The tangent of a gradient (backward() run on dual tensors) is H t, as torch.func.jvp of grad:
    the VJPs see the tangents of what their ops saved, the output included, and conv's plain-backward
    fast path is not taken."""
    # distinct values: no ties in the pooling windows
    p, w, t = data.draw(distinct_arrays((1, 1, 4, 4))), data.draw(arrays((2, 1, 2, 2))), data.draw(arrays((1, 1, 4, 4)))

    def loss(functional):
        return lambda x: (functional.max_pool2d(functional.conv2d(x, w_of[functional]), 2).tanh() * x.sum()).exp().sum()
    w_of = {F: tg.tensor(w), TF: torch.tensor(w)}
    expected = torch.func.jvp(torch.func.grad(loss(TF)), (torch.tensor(p),), (torch.tensor(t),))[1].numpy()
    with fw.dual_level():
        x = fw.make_dual(tg.tensor(p, requires_grad=True), tg.tensor(t))
        (gradient,) = tg.grad(loss(F)(x), x)
        hvp = fw.unpack_dual(gradient).tangent
    np.testing.assert_allclose(hvp.numpy(), expected, rtol=1e-6, atol=1e-6)


@given(data=st.data())
def test_tangent_of_a_tangent_in_nested_levels(data):
    """Two levels (PyTorch's public API allows one; torch.func.jvp nests): the inner tangent's outer
    tangent is the second directional derivative, as torch.func.jvp of jvp gives it."""
    p, t1, t2 = (data.draw(arrays((4,))) for _ in range(3))

    def f_torch(x):
        return (x.tanh() * x.sum()).exp()

    def f_ours(x):
        return (x.tanh() * x.sum()).exp()
    inner = lambda x: torch.func.jvp(f_torch, (x,), (torch.tensor(t1),))[1]  # noqa: E731
    expected = torch.func.jvp(inner, (torch.tensor(p),), (torch.tensor(t2),))[1].numpy()
    with fw.dual_level() as outer_level:
        x = fw.make_dual(tg.tensor(p), tg.tensor(t2))
        with fw._nested_dual_level():
            y = f_ours(fw.make_dual(x, tg.tensor(t1)))
            inner_tangent = fw.unpack_dual(y).tangent
        with pytest.raises(RuntimeError, match="level"):  # the inner level is gone
            fw.unpack_dual(y, level=1)
        second = fw.unpack_dual(inner_tangent, level=outer_level).tangent
    np.testing.assert_allclose(second.numpy(), expected, rtol=1e-6, atol=1e-6)


# ================================================================ the API, as PyTorch's

def both(check: Callable) -> None:
    """Run `check(fwd, tensor)` on PyTorch's API, then on ours."""
    check(tfw, lambda a: torch.tensor(np.asarray(a, dtype=np.float64)))
    check(fw, lambda a: tg.tensor(np.asarray(a, dtype=np.float64)))


def test_one_level_at_a_time_and_tangents_dropped_on_exit():
    def check(fwd, tensor):
        with fwd.dual_level() as level:
            assert level == 0
            with pytest.raises(RuntimeError, match="Nested forward mode AD is not supported"):
                fwd.enter_dual_level()
            x = fwd.make_dual(tensor([1.0, 2.0]), tensor([3.0, 4.0]))
            y = x * x
            assert fwd.unpack_dual(y).tangent.tolist() == [6.0, 16.0]
        assert fwd.unpack_dual(y).tangent is None and fwd.unpack_dual(x).tangent is None
        assert fwd.enter_dual_level() == 0  # the number is free again
        assert fwd.unpack_dual(y).tangent is None  # a new level does not see the old tangents
        fwd.exit_dual_level()
    both(check)


def test_unpack_dual_outside_a_level_and_of_a_plain_tensor():
    def check(fwd, tensor):
        x = tensor([1.0])
        primal, tangent = fwd.unpack_dual(x)
        assert primal is x and tangent is None
        with fwd.dual_level():
            unpacked = fwd.unpack_dual(x)
            assert unpacked.tangent is None and unpacked.primal.tolist() == [1.0]
            dual = fwd.make_dual(x, tensor([2.0]))
            assert fwd.unpack_dual(x).tangent is None  # make_dual leaves its argument alone
            assert fwd.unpack_dual(dual).primal.tolist() == [1.0]
            assert fwd.unpack_dual(dual).tangent.tolist() == [2.0]
    both(check)


def test_non_float_results_have_no_tangent_and_casts_keep_it():
    def check(fwd, tensor):
        with fwd.dual_level():
            x = fwd.make_dual(tensor([1.0, -2.0]), tensor([3.0, 4.0]))
            assert fwd.unpack_dual(x > 0).tangent is None
            assert fwd.unpack_dual(x.argmax()).tangent is None
            assert fwd.unpack_dual(x.floor()).tangent.tolist() == [0.0, 0.0]
            down = fwd.unpack_dual(x.float()).tangent
            assert down.tolist() == [3.0, 4.0] and str(down.dtype).endswith("float32")
            with (torch.no_grad() if fwd is tfw else tg.no_grad()):  # no_grad does not stop forward AD
                assert fwd.unpack_dual(x * 2).tangent.tolist() == [6.0, 8.0]
    both(check)


@pytest.mark.parametrize("case, error", [
    ("no level", RuntimeError), ("tangent of another shape", RuntimeError), ("broadcastable tangent", RuntimeError),
    ("integer primal", ValueError), ("integer tangent", ValueError), ("already dual", RuntimeError),
    ("dual tangent", RuntimeError), ("bad level", RuntimeError), ("exit another level", RuntimeError)])
def test_errors_as_pytorch(case, error):
    def check(fwd, tensor):
        x, t = tensor([1.0, 2.0]), tensor([3.0, 4.0])
        if case == "no level":
            with pytest.raises(error):
                fwd.make_dual(x, t)
            return
        with fwd.dual_level():
            dual = fwd.make_dual(x, t)
            with pytest.raises(error):
                if case == "tangent of another shape":
                    fwd.make_dual(x, tensor([1.0, 2.0, 3.0]))
                elif case == "broadcastable tangent":
                    fwd.make_dual(x, tensor([1.0]))
                elif case == "integer primal":
                    fwd.make_dual(x.long() if fwd is tfw else x.to(np.int64), t)
                elif case == "integer tangent":
                    fwd.make_dual(x, t.long() if fwd is tfw else t.to(np.int64))
                elif case == "already dual":
                    fwd.make_dual(dual, t)
                elif case == "dual tangent":
                    fwd.make_dual(x, dual)
                elif case == "bad level":
                    fwd.make_dual(x, t, level=1)
                else:
                    fwd.exit_dual_level(level=3)
    both(check)


def test_make_dual_is_backward_differentiable():
    """Gradients flow through make_dual and unpack_dual to the primal, as PyTorch."""
    def check(fwd, tensor):
        x = tensor([1.0, 2.0]).requires_grad_()
        with fwd.dual_level():
            primal = fwd.unpack_dual(fwd.make_dual(x, tensor([1.0, 1.0])) * 3).primal
            primal.sum().backward()
        assert x.grad.tolist() == [3.0, 3.0]
    both(check)


def test_in_place_writes_carry_the_new_values_tangents():
    """mul_ and t[idx] = v replace a tensor's value, and so its tangent, as in PyTorch."""
    x, t = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])

    def program(lib, fwd):
        with fwd.dual_level():
            d = fwd.make_dual(lib.tensor(x), lib.tensor(t))
            y = d * 2
            y.mul_(d)                      # 2 d^2: tangent 4 d t
            z = lib.zeros(3, dtype=lib.float64)
            z[1:] = y[1:]                  # a plain tensor becomes dual where it is written
            y.fill_(1.0)                   # a constant: no tangent left (zeros in PyTorch)
            tangent_y = fwd.unpack_dual(y).tangent
            return (np.zeros(3) if tangent_y is None else np.asarray(tangent_y.tolist()),
                    np.asarray(fwd.unpack_dual(z).tangent.tolist()))

    ours, theirs = program(tg, fw), program(torch, torch.autograd.forward_ad)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
