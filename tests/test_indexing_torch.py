"""gather/scatter/selection, sorting, scans and the remainder ops against PyTorch in float64:
values, first and second derivatives (through a sin, so each VJP's own VJP runs), and the
error types for bad dims and indices."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import arrays, distinct_arrays, shapes

few = settings(max_examples=25, deadline=None)
small_shapes = shapes(min_dims=1, max_dims=3, max_side=4)


def _np(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, (Tensor, torch.Tensor)) else np.asarray(t)


def matches_torch(ours: Callable, theirs: Callable, *inputs: np.ndarray, seed: int = 0,
                  second_order: bool = True) -> None:
    """Same values, same gradients (with a random upstream gradient) and, unless PyTorch has none,
    the same second derivatives."""
    rng = np.random.default_rng(seed)
    xs = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in inputs]
    out, expected = ours(*xs), theirs(*ts)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(_np(out), _np(expected), rtol=1e-12, atol=1e-12)
    u = rng.standard_normal(out.shape)
    v = [rng.standard_normal(a.shape) for a in inputs]
    # second order through sin(f): the gradient depends on x, so differentiating it runs f's VJP's VJP
    g = tg.grad(ours(*xs).sin(), xs, Tensor(u), create_graph=True, allow_unused=True, materialize_grads=True)
    tgr = torch.autograd.grad(theirs(*ts).sin(), ts, torch.tensor(u), create_graph=second_order, allow_unused=True,
                              materialize_grads=True)
    # gradients of a product of many factors multiply them in another order than PyTorch, and sin(f) of a
    # large product amplifies that: 2e-10 (first order) and 1.1e-9 (second) apart seen for a product of 36
    # elements near 1.7e5, float64 rounding, not a wrong rule
    for a, b in zip(g, tgr):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-8, atol=1e-12)
    if not second_order:
        return
    gg = tg.grad(sum((gi * Tensor(vi)).sum() for gi, vi in zip(g, v)), xs, allow_unused=True,
                 materialize_grads=True)
    tgg = torch.autograd.grad(sum((gi * torch.tensor(vi)).sum() for gi, vi in zip(tgr, v)), ts,
                              allow_unused=True, materialize_grads=True)
    for a, b in zip(gg, tgg):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-8, atol=1e-12)


# ================================================================ strategies

@st.composite
def gather_case(draw, unique: bool = False):
    """(x, dim, index): index no larger than x apart from dim, entries in range; with `unique`, no place
    along dim is named twice within a slice (so scatter's writes do not collide)."""
    shape = draw(small_shapes)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    axis = dim % len(shape)
    n = shape[axis]
    index_shape = tuple(draw(st.integers(1, n if unique else 4)) if d == axis else draw(st.integers(1, m))
                        for d, m in enumerate(shape))
    if unique:
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
        moved = np.moveaxis(np.empty(index_shape, np.int64), axis, -1)
        for pos in np.ndindex(moved.shape[:-1]):
            moved[pos] = rng.permutation(n)[:index_shape[axis]]
        index = np.moveaxis(moved, -1, axis)
    else:
        index = draw(hnp.arrays(np.int64, index_shape, elements=st.integers(0, n - 1)))
    return draw(arrays(shape)), dim, index


with_zeros = hnp.arrays(np.float64, small_shapes, elements=st.sampled_from([-1.5, -1.0, 0.0, 0.5, 2.0]))


# ================================================================ gather, scatter and selection

@few
@given(gather_case())
def test_gather(case):
    a, dim, index = case
    matches_torch(lambda x: x.gather(dim, index), lambda x: x.gather(dim, torch.tensor(index)), a)
    matches_torch(lambda x: tg.gather(x, dim, Tensor(index)), lambda x: torch.gather(x, dim, torch.tensor(index)), a)


@few
@given(gather_case(unique=True), st.data())
def test_scatter(case, data):
    """src of index's shape: with a larger src, PyTorch's own backward fails (a shape mismatch)."""
    a, dim, index = case
    src = data.draw(arrays(index.shape))
    ti = torch.tensor(index)
    matches_torch(lambda x, s: x.scatter(dim, index, s), lambda x, s: x.scatter(dim, ti, s), a, src)
    matches_torch(lambda x: tg.scatter(x, dim, Tensor(index), 1.5), lambda x: torch.scatter(x, dim, ti, 1.5), a)


@few
@given(gather_case(), st.data())
def test_scatter_add(case, data):
    """Repeated places add up. A src larger than index: values only (PyTorch's backward fails on it); the
    part index does not cover gets a zero gradient."""
    a, dim, index = case
    src = data.draw(arrays(index.shape))
    matches_torch(lambda x, s: tg.scatter_add(x, dim, index, s),
                  lambda x, s: torch.scatter_add(x, dim, torch.tensor(index), s), a, src)
    big = np.pad(src, [(0, 1)] * src.ndim, constant_values=7.0)
    s = Tensor(big, requires_grad=True)
    out = Tensor(a).scatter_add(dim, index, s)
    np.testing.assert_allclose(_np(out), _np(torch.tensor(a).scatter_add(dim, torch.tensor(index), torch.tensor(big))))
    out.sum().backward()
    np.testing.assert_array_equal(_np(s.grad), np.pad(np.ones(src.shape), [(0, 1)] * src.ndim))


@few
@given(gather_case(), st.data())
def test_take_along_dim(case, data):
    a, dim, index = case
    if data.draw(st.booleans()):  # broadcast: index of size 1 in a dim other than dim
        index = index[tuple(slice(0, 1) if d != dim % a.ndim else slice(None) for d in range(a.ndim))]
        matches_torch(lambda x: x.take_along_dim(index, dim), lambda x: x.take_along_dim(torch.tensor(index), dim), a)
    flat = index.reshape(-1) % a.size
    matches_torch(lambda x: tg.take_along_dim(x, flat), lambda x: torch.take_along_dim(x, torch.tensor(flat)), a)


@few
@given(arrays(small_shapes), st.data())
def test_index_select(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    index = data.draw(hnp.arrays(np.int64, st.sampled_from([(), (1,), (3,), (5,)]),
                                 elements=st.integers(0, a.shape[dim] - 1)))
    matches_torch(lambda x: tg.index_select(x, dim, Tensor(index)),
                  lambda x: torch.index_select(x, dim, torch.tensor(index)), a)


@few
@given(arrays(small_shapes), st.data())
def test_masked_select_broadcasts(a, data):
    mask = data.draw(hnp.arrays(np.bool_, st.sampled_from([a.shape, a.shape[1:], (1,) + a.shape])))
    matches_torch(lambda x: tg.masked_select(x, Tensor(mask)), lambda x: torch.masked_select(x, torch.tensor(mask)), a)


# ================================================================ sorting and scans

@few
@given(distinct_arrays(small_shapes), st.data())
def test_sort_argsort_topk(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    descending = data.draw(st.booleans())
    k = data.draw(st.integers(0, a.shape[dim]))
    matches_torch(lambda x: tg.sort(x, dim, descending).values, lambda x: torch.sort(x, dim, descending).values, a)
    matches_torch(lambda x: tg.topk(x, k, dim, descending).values, lambda x: torch.topk(x, k, dim, descending).values,
                  a)
    t = torch.tensor(a)
    np.testing.assert_array_equal(_np(tg.sort(Tensor(a), dim, descending).indices), _np(t.sort(dim, descending)[1]))
    np.testing.assert_array_equal(_np(tg.argsort(Tensor(a), dim, descending)), _np(t.argsort(dim, descending)))
    np.testing.assert_array_equal(_np(Tensor(a).topk(k, dim, descending).indices), _np(t.topk(k, dim, descending)[1]))


@few
@given(with_zeros, st.data())
def test_prod_and_cumprod_with_zeros(a, data):
    """Zeros (one or several) in the input: each gradient is the product of the others."""
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdim = data.draw(st.booleans())
    matches_torch(lambda x: tg.prod(x, dim, keepdim), lambda x: torch.prod(x, dim, keepdim), a)
    matches_torch(lambda x: x.prod(), lambda x: x.prod(), a)
    matches_torch(lambda x: tg.cumprod(x, dim), lambda x: torch.cumprod(x, dim), a)


@few
@given(arrays(small_shapes), st.data())
def test_cumsum(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    matches_torch(lambda x: tg.cumsum(x, dim), lambda x: torch.cumsum(x, dim), a)


def test_integer_scans_and_products_are_int64_as_torch():
    for dtype in (np.int8, np.int32, np.bool_):
        a = np.array([[1, 0, 1], [1, 1, 1]], dtype)
        for op in ("cumsum", "cumprod"):
            ours, theirs = getattr(Tensor(a), op)(1), getattr(torch.tensor(a), op)(1)
            assert ours.dtype == np.int64 and theirs.dtype == torch.int64
            np.testing.assert_array_equal(_np(ours), _np(theirs))
        np.testing.assert_array_equal(_np(Tensor(a).prod(0)), _np(torch.tensor(a).prod(0)))
    assert Tensor(np.ones((0, 2))).prod(0).tolist() == [1.0, 1.0]


# ================================================================ elementwise and logic

nonzero_divisors = arrays(small_shapes, away_from=(0.0,), margin=0.3)


@few
@given(arrays(small_shapes, low=-5, high=5), st.data())
def test_fmod_remainder_floor_divide(a, data):
    b = data.draw(arrays(st.sampled_from([a.shape, a.shape[1:]]), away_from=(0.0,), margin=0.3))
    # PyTorch cannot differentiate remainder's gradient (our second order: the Remainder row of
    # test_ops_properties); values and first derivatives here
    for name in ("fmod", "remainder"):
        matches_torch(getattr(tg, name), getattr(torch, name), a, b, second_order=False)
    matches_torch(lambda x, y: x % y, lambda x, y: x % y, a, b, second_order=False)
    # a number % tensor: PyTorch has no derivative for the divisor, so values only
    np.testing.assert_allclose(_np(2.5 % Tensor(b)), _np(2.5 % torch.tensor(b)), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(_np(Tensor(a) // Tensor(b)), _np(torch.tensor(a) // torch.tensor(b)))
    np.testing.assert_array_equal(_np(tg.floor_divide(Tensor(a), 0.7)), _np(torch.floor_divide(torch.tensor(a), 0.7)))
    ints = (a * 3).astype(np.int64), np.where(b > 0, 2, -3)
    for op in (lambda x, y: x % y, lambda x, y: x // y, lambda x, y: x.fmod(y)):
        np.testing.assert_array_equal(_np(op(*map(Tensor, ints))), _np(op(*map(torch.tensor, ints))))


@few
@given(hnp.arrays(np.int64, small_shapes, elements=st.integers(-1, 1)), st.data())
def test_logic_and_comparisons(a, data):
    b = data.draw(hnp.arrays(np.int64, st.sampled_from([a.shape, a.shape[1:]]), elements=st.integers(-1, 1)))
    for name in ("logical_and", "logical_or", "logical_xor"):
        np.testing.assert_array_equal(_np(getattr(tg, name)(Tensor(a), Tensor(b))),
                                      _np(getattr(torch, name)(torch.tensor(a), torch.tensor(b))))
    np.testing.assert_array_equal(_np(tg.nonzero(Tensor(a))), _np(torch.nonzero(torch.tensor(a))))
    for ours, theirs in zip(Tensor(a).nonzero(as_tuple=True), torch.tensor(a).nonzero(as_tuple=True)):
        np.testing.assert_array_equal(_np(ours), _np(theirs))
    assert tg.equal(Tensor(a), Tensor(b)) == torch.equal(torch.tensor(a), torch.tensor(b))
    f = a.astype(np.float64)
    assert tg.allclose(Tensor(f), Tensor(f + 1e-9)) == torch.allclose(torch.tensor(f), torch.tensor(f + 1e-9))
    assert tg.allclose(Tensor(f), Tensor(f + 0.1)) == torch.allclose(torch.tensor(f), torch.tensor(f + 0.1))
    assert tg.is_floating_point(Tensor(f)) and not Tensor(a).is_floating_point()


@few
@given(arrays(small_shapes), st.data())
def test_roll_and_tile(a, data):
    dims = data.draw(st.lists(st.integers(-a.ndim, a.ndim - 1), min_size=1, max_size=a.ndim, unique=True))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(dims), max_size=len(dims)))
    matches_torch(lambda x: tg.roll(x, shifts, dims), lambda x: torch.roll(x, shifts, dims), a)
    matches_torch(lambda x: x.roll(shifts[0]), lambda x: x.roll(shifts[0]), a)
    reps = tuple(data.draw(st.lists(st.integers(1, 2), min_size=1, max_size=4)))
    matches_torch(lambda x: tg.tile(x, reps), lambda x: torch.tile(x, reps), a)


# ================================================================ errors, as PyTorch raises them

x34 = np.arange(12.0).reshape(3, 4)
ERRORS = {
    "gather index out of range": lambda m, x: m.gather(x, 1, m.tensor([[5]])),
    "gather negative index": lambda m, x: m.gather(x, 1, m.tensor([[-1]])),
    "gather index of fewer dims": lambda m, x: m.gather(x, 1, m.tensor([1])),
    "gather index too large": lambda m, x: m.gather(x, 1, m.zeros((4, 1), dtype=m.int64)),
    "gather dim out of range": lambda m, x: m.gather(x, 2, m.tensor([[1]])),
    "scatter index out of range": lambda m, x: m.scatter(x, 0, m.tensor([[3]]), x),
    "scatter src too small": lambda m, x: m.scatter(x, 1, m.tensor([[1, 2]]), m.ones((1, 1), dtype=m.float64)),
    "scatter_add dim out of range": lambda m, x: m.scatter_add(x, -3, m.tensor([[1]]), x),
    "index_select out of range": lambda m, x: m.index_select(x, 1, m.tensor([4])),
    "index_select matrix index": lambda m, x: m.index_select(x, 1, m.tensor([[1]])),
    "index_select dim out of range": lambda m, x: m.index_select(x, 2, m.tensor([1])),
    "masked_select non-bool mask": lambda m, x: m.masked_select(x, m.ones(4)),
    "masked_select mask shape": lambda m, x: m.masked_select(x, m.ones(5, dtype=m.bool)),
    "topk k too large": lambda m, x: m.topk(x, 5, 1),
    "sort dim out of range": lambda m, x: m.sort(x, 2),
    "prod dim out of range": lambda m, x: m.prod(x, 2),
    "cumsum dim out of range": lambda m, x: m.cumsum(x, -3),
    "cumprod dim out of range": lambda m, x: m.cumprod(x, 2),
    "roll shifts and dims differ": lambda m, x: m.roll(x, (1, 2), (0,)),
    "roll dim out of range": lambda m, x: m.roll(x, 1, 2),
}


@pytest.mark.parametrize("call", ERRORS.values(), ids=ERRORS.keys())
def test_errors_match_torch(call):
    with pytest.raises(Exception) as theirs:
        call(torch, torch.tensor(x34))
    with pytest.raises(theirs.type) as ours:
        call(tg, Tensor(x34))
    assert ours.type is theirs.type
