"""torch.* functions and the Tensor methods composed from our primitives (shapes, linear algebra,
logsumexp, logic, Python protocols), against PyTorch: hypothesis over shapes and arguments, the
same float64 inputs through both libraries, values and gradients compared; each differentiable
one also checked at first and second order against central differences."""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")


def arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(-3.0, 3.0))


shapes_2d = st.tuples(st.integers(1, 4), st.integers(1, 4))
shapes_any = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


class Case(NamedTuple):
    """call(lib, *tensors) runs the function in either library; `example` draws its inputs."""
    example: st.SearchStrategy
    call: Callable


@st.composite
def one(draw, shapes=shapes_any):
    return (draw(arrays(draw(shapes))),)


@st.composite
def matrices(draw, batch: bool = False):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    lead = (draw(st.integers(1, 3)),) if batch else ()
    return draw(arrays(lead + (n, k))), draw(arrays(lead + (k, m)))


@st.composite
def vectors(draw, same_length: bool):
    n = draw(st.integers(1, 5))
    return draw(arrays((n,))), draw(arrays((n if same_length else draw(st.integers(1, 5)),)))


@st.composite
def with_dim(draw):
    x = draw(arrays(draw(shapes_any)))
    return x, draw(st.integers(-x.ndim, x.ndim - 1))


def sum_of(pieces):
    """Several outputs as a list: `run` sums them all into one loss."""
    return list(pieces)


CASES = {
    "t": Case(one(shapes_2d), lambda lib, x: x.t()),
    "mm": Case(matrices(), lambda lib, x, y: lib.mm(x, y)),
    "bmm": Case(matrices(batch=True), lambda lib, x, y: x.bmm(y)),
    "dot": Case(vectors(same_length=True), lambda lib, x, y: lib.dot(x, y)),
    "outer": Case(vectors(same_length=False), lambda lib, x, y: lib.outer(x, y)),
    "logsumexp": Case(with_dim().map(lambda xd: (xd[0],)), lambda lib, x: lib.logsumexp(x, -1)),
    "logsumexp_keepdim": Case(one(), lambda lib, x: x.logsumexp(0, keepdim=True)),
    "flip": Case(one(), lambda lib, x: lib.flip(x, (0, -1) if x.ndim > 1 else (0,))),
    "repeat": Case(one(), lambda lib, x: x.repeat(2, *([1] * (x.ndim - 1)), 3)),
    "tril": Case(one(shapes_2d), lambda lib, x: lib.tril(x, -1)),
    "triu": Case(one(shapes_2d), lambda lib, x: x.triu(1)),
    "split": Case(one(), lambda lib, x: sum_of(lib.split(x, 2, 0))),
    "split_sizes": Case(one(st.just((5, 2))), lambda lib, x: sum_of(x.split([1, 3, 1], 0))),
    "chunk": Case(one(), lambda lib, x: sum_of(x.chunk(3, -1))),
    "unbind": Case(one(), lambda lib, x: sum_of(lib.unbind(x, 0))),
    "view_as": Case(one(st.just((2, 6))), lambda lib, x: x.view_as(lib.zeros(3, 4))),
    "unflatten": Case(one(st.just((2, 6))), lambda lib, x: x.unflatten(1, (3, 2))),
    "max_dim": Case(one(), lambda lib, x: lib.max(x, 0).values),
    "amax": Case(one(), lambda lib, x: lib.amax(x, -1)),
    "norm": Case(one(), lambda lib, x: lib.norm(x + 5.0)),  # away from 0, where our gradient is NaN
}


def run(lib, case: Case, arrays_in):
    """The function's outputs and the gradients of sum(output * weights) w.r.t. each input, as NumPy."""
    inputs = [lib.tensor(a, requires_grad=True) for a in arrays_in]
    out = case.call(lib, *inputs)
    outs = out if isinstance(out, list) else [out]
    rng = np.random.default_rng(0)
    total = sum((o * lib.tensor(rng.standard_normal(tuple(o.shape)))).sum() for o in outs)
    grads = lib.autograd.grad(total, inputs, allow_unused=True)
    return [o.detach().numpy() for o in outs], [None if g is None else g.numpy() for g in grads]


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=25)
@given(data=st.data())
def test_matches_torch_and_finite_differences(name, data):
    case = CASES[name]
    arrays_in = data.draw(case.example, label="inputs")
    (ours, our_grads), (theirs, their_grads) = run(tg, case, arrays_in), run(torch, case, arrays_in)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(np.zeros_like(b) if a is None else a, b, rtol=1e-10, atol=1e-12)
    fn = (lambda *xs: case.call(tg, *xs))
    inputs = [tg.tensor(a, requires_grad=True) for a in arrays_in]
    if name not in ("max_dim", "amax"):  # ties make max's finite differences one-sided
        assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)


# ---------------------------------------------------------------- errors, logic and protocols

@pytest.mark.parametrize("call, error, words", [
    (lambda lib: lib.mm(lib.ones(2, 3), lib.ones(3)), RuntimeError, "mm"),
    (lambda lib: lib.ones(2, 3, 4).bmm(lib.ones(3, 4, 2)), RuntimeError, "bmm"),
    (lambda lib: lib.dot(lib.ones(2), lib.ones(2, 1)), RuntimeError, "dot"),
    (lambda lib: lib.ones(2, 2, 2).t(), RuntimeError, "t"),
    (lambda lib: lib.tril(lib.ones(3)), RuntimeError, "tril"),
    (lambda lib: lib.ones(5).split([2, 2], 0), RuntimeError, "split"),
    (lambda lib: lib.ones(5).split(0), RuntimeError, "split"),
    (lambda lib: lib.ones(5).chunk(0), RuntimeError, "chunk"),
    (lambda lib: lib.ones(2, 6).unflatten(1, (4, 2)), RuntimeError, "unflatten"),
    (lambda lib: lib.ones(2, 3).repeat(2), RuntimeError, "repeat"),
    (lambda lib: [0, 1][lib.tensor([0.5])], TypeError, "index"),
])
def test_errors_as_pytorch(call, error, words):
    for lib in (torch, tg):
        with pytest.raises(error):
            call(lib)
    with pytest.raises(error, match=words):
        call(tg)


@given(x=arrays((3, 4)))
def test_logic_and_comparisons_match_torch(x):
    x = np.where(np.abs(x) < 0.5, np.nan, x)  # some NaN
    x[0, 0] = np.inf
    for name in ("isnan", "isinf", "isfinite"):
        np.testing.assert_array_equal(getattr(tg, name)(tg.tensor(x)).numpy(),
                                      getattr(torch, name)(torch.tensor(x)).numpy())
    finite = np.nan_to_num(x, nan=0.0, posinf=1.0)
    ours, theirs = tg.tensor(finite), torch.tensor(finite)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        np.testing.assert_array_equal(getattr(ours, name)(0.0).numpy(), getattr(theirs, name)(0.0).numpy())
    mask_ours, mask_theirs = ours > 0, theirs > 0
    for dim in (None, 0, 1):
        for name in ("all", "any"):
            a = getattr(mask_ours, name)() if dim is None else getattr(mask_ours, name)(dim)
            b = getattr(mask_theirs, name)() if dim is None else getattr(mask_theirs, name)(dim)
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(mask_ours.logical_not().numpy(), mask_theirs.logical_not().numpy())


def test_logsumexp_is_stable_and_handles_all_minus_inf():
    x = np.array([[1000.0, 1000.0], [-np.inf, -np.inf], [-1000.0, 0.0]])
    ours, theirs = tg.logsumexp(tg.tensor(x), 1).numpy(), torch.logsumexp(torch.tensor(x), 1).numpy()
    np.testing.assert_allclose(ours, theirs)
    assert np.isneginf(ours[1])


def test_python_protocols():
    """A one-element integer tensor is an index; a 0-d tensor formats as its number."""
    assert [10, 20, 30][tg.tensor(2)] == 30 and list(range(tg.tensor([3]))) == [0, 1, 2]
    assert f"{tg.tensor(3.14159):.2f}" == "3.14" and f"{tg.tensor(7):>3}" == "  7"
    assert f"{tg.ones(2)}" == repr(tg.ones(2))
    x = tg.ones(2, 3)
    assert x.contiguous() is x


# ---------------------------------------------------------------- creation

@pytest.mark.parametrize("call", [
    lambda lib: lib.linspace(-1, 2, 7),
    lambda lib: lib.linspace(0, 1, 1),
    lambda lib: lib.logspace(0, 2, 3),
    lambda lib: lib.logspace(1, 3, 4, base=2.0, dtype=lib.float64),
    lambda lib: lib.full_like(lib.ones(2, dtype=lib.int64), 2.7),
    lambda lib: lib.full_like(lib.ones(2, 3), 0.5, dtype=lib.float64),
    lambda lib: lib.as_tensor([1.0, 2.0]),
    lambda lib: lib.as_tensor(np.arange(3)),
    lambda lib: lib.empty_like(lib.ones(2)).shape,
])
def test_deterministic_creation_matches_torch(call):
    ours, theirs = call(tg), call(torch)
    if isinstance(theirs, torch.Size):
        assert tuple(ours) == tuple(theirs)
        return
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_from_numpy_and_as_tensor_share_memory():
    a = np.arange(3.0)
    t = tg.from_numpy(a)
    a[0] = 9.0
    assert t.tolist() == [9.0, 1.0, 2.0] and t.dtype == np.float64
    assert tg.as_tensor(a).numpy() is a or np.shares_memory(tg.as_tensor(a).numpy(), a)
    assert not np.shares_memory(tg.as_tensor(a, dtype=tg.float32).numpy(), a)
    with pytest.raises(TypeError, match="from_numpy"):
        tg.from_numpy([1, 2])


def test_random_creation_is_seeded_and_in_range():
    tg.manual_seed(0)
    first = (tg.randint(3, 7, (50,)), tg.randint(5, (2, 2)), tg.randperm(6), tg.normal(2.0, 0.5, (1000,)),
             tg.rand_like(tg.ones(4, dtype=tg.float64)), tg.randn_like(tg.ones(3)))
    tg.manual_seed(0)
    again = (tg.randint(3, 7, (50,)), tg.randint(5, (2, 2)), tg.randperm(6), tg.normal(2.0, 0.5, (1000,)),
             tg.rand_like(tg.ones(4, dtype=tg.float64)), tg.randn_like(tg.ones(3)))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    ints, small, perm, normal, uniform, gauss = first
    assert ints.dtype == np.int64 and ints.numpy().min() >= 3 and ints.numpy().max() < 7 and small.shape == (2, 2)
    assert sorted(perm.tolist()) == list(range(6)) and perm.dtype == np.int64
    assert abs(normal.numpy().mean() - 2.0) < 0.1 and abs(normal.numpy().std() - 0.5) < 0.05
    assert uniform.dtype == np.float64 and gauss.dtype == np.float32
    for bad in (lambda: tg.randint(5, 5, (1,)), lambda: tg.randperm(-1), lambda: tg.normal(0.0, -1.0, (1,)),
                lambda: tg.linspace(0, 1, -1)):
        with pytest.raises(RuntimeError):
            bad()


# ---------------------------------------------------------------- elementwise math

MATH = ["sin", "cos", "tan", "erf", "log1p", "expm1", "log2", "log10", "exp2", "floor", "ceil", "round", "trunc", "frac",
        "sign", "exp", "log", "sqrt", "tanh", "sigmoid"]
STEPS = np.arange(-3.0, 3.5, 0.5)  # where the rounding functions jump: kept away from


@pytest.mark.parametrize("name", MATH)
@settings(max_examples=25)
@given(x=arrays((3, 2)).map(lambda a: np.where(np.abs(a[..., None] - STEPS).min(-1) < 0.05, 0.3, a)))
def test_elementwise_math_matches_torch(name, x):
    x = np.abs(x) + 0.1 if name in ("log2", "log10", "log", "sqrt") else np.clip(x, -0.9, None) if name == "log1p" else x
    x = np.clip(x, -1.2, 1.2) if name == "tan" else x  # away from tan's poles
    ours, theirs = tg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a, b = getattr(tg, name)(ours), getattr(torch, name)(theirs)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert gradgradcheck(lambda t: getattr(t, name)(), [tg.tensor(x, requires_grad=True)])


@pytest.mark.parametrize("name", MATH)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns of log(-2) and sqrt(-2); both give NaN
def test_elementwise_math_of_integers_has_pytorch_dtype(name):
    """Math on an integer tensor gives float32; rounding keeps it an integer tensor; frac refuses it."""
    values = np.array([-2, 0, 3])
    if name == "frac":
        for lib in (tg, torch):
            with pytest.raises(RuntimeError):
                lib.tensor(values).frac()
        return
    ours, theirs = getattr(tg.tensor(values), name)(), getattr(torch.tensor(values), name)()
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
