"""The Tensor API as a PyTorch user meets it: construction, dtypes, creation functions,
operators, movement, reductions and error messages, checked against NumPy."""
import operator
import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import arrays, shapes


def assert_matches(t: Tensor, expected) -> None:
    """Same shape and (nearly) the same values as the NumPy reference."""
    expected = np.asarray(expected)
    assert isinstance(t, Tensor)
    assert t.shape == expected.shape
    np.testing.assert_allclose(t.detach().numpy(), expected, rtol=1e-6, atol=1e-12)


def mentions(*words: str) -> str:
    """A regex matching a message that contains every one of `words`, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(w)})" for w in words)


A = np.arange(24.0).reshape(2, 3, 4)  # a fixed array for the movement tests


# ---------------------------------------------------------------- construction and dtypes

@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32),
    ([1.0, 2.0], np.float32),
    ([[1, 2.5]], np.float32),
    (np.array([1.0, 2.0]), np.float64),
    (np.array([1.0], dtype=np.float32), np.float32),
    (np.float64(1.5), np.float64),
    (3, np.int64),
    ([1, 2], np.int64),
    (True, np.bool_),
    ([True, False], np.bool_),
])
def test_constructor_dtypes(data, dtype):
    """Python floats -> float32, NumPy keeps its dtype, ints -> int64, bools -> bool."""
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


@pytest.mark.parametrize("make", [
    lambda: Tensor([1, 2], dtype=np.float64),
    lambda: tg.tensor([1, 2], dtype=tg.float64),
    lambda: Tensor(np.array([1.0, 2.0], dtype=np.float32), dtype="float64"),
])
def test_dtype_argument_converts(make):
    t = make()
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


@pytest.mark.parametrize("make", [
    lambda: Tensor([1, 2], requires_grad=True),
    lambda: Tensor([True], requires_grad=True),
    lambda: tg.tensor([1.5], dtype=tg.int64, requires_grad=True),
    lambda: tg.zeros(2, dtype=tg.int64, requires_grad=True),
    lambda: tg.arange(3, requires_grad=True),
])
def test_only_float_tensors_require_grad(make):
    with pytest.raises(RuntimeError, match="floating point"):
        make()


def test_constructor_copies_numpy_input():
    a = np.array([1.0, 2.0])
    t = Tensor(a)
    a[0] = 5.0
    assert t.numpy()[0] == 1.0


def test_data_is_a_detached_tensor_on_the_same_memory_and_sgd_updates_through_it():
    p = Tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    data = p.data
    assert isinstance(data, Tensor) and not data.requires_grad and data.grad_fn is None
    assert np.shares_memory(data.numpy(), p.detach().numpy())
    p.data -= 0.1 * p.grad  # p <- p - 0.1 * 2p, in place: p stays the same leaf
    assert p.is_leaf and p.requires_grad
    np.testing.assert_allclose(p.detach().numpy(), [0.8, 1.6], rtol=1e-6)
    assert (p * 1.0)[1].item() == pytest.approx(1.6)  # the next forward sees the update
    p.data = Tensor([7.0])  # swaps the storage, the shape may change
    assert p.shape == (1,) and p.requires_grad


def test_numpy_item_tolist():
    t = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert np.shares_memory(t.numpy(), t.detach().numpy())
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t[1, 0].item() == 3.0 and type(t[1, 0].item()) is float
    assert type(Tensor(3).item()) is int and type(Tensor(True).item()) is bool
    with pytest.raises(RuntimeError, match=mentions("item", "(2, 2)")):
        t.item()


def test_shape_queries():
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dim() == 3
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.numel() == 24 and len(t) == 2
    with pytest.raises(IndexError, match=mentions("size", "(2, 3, 4)")):
        t.size(3)
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_iteration_yields_rows_and_carries_gradients():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert len(rows) == 3
    for row, expected in zip(rows, x.detach().numpy()):
        assert_matches(row, expected)
    sum(rows).sum().backward()  # Python's sum: 0 + row0 + row1 + row2
    assert_matches(x.grad, np.ones((3, 2)))


def test_bool_of_one_element_vs_many():
    assert Tensor([2.0]) and not Tensor(0.0) and Tensor([[True]])
    with pytest.raises(RuntimeError, match=mentions("ambiguous", "(2,)")):
        bool(Tensor([1.0, 2.0]))


def test_repr_shows_shape_dtype_and_grad_fn():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    assert all(w in repr(x) for w in ("(2, 3)", "float32", "requires_grad=True"))
    assert all(w in repr(x * 2.0) for w in ("(2, 3)", "float32", "grad_fn=<MulBackward>"))
    assert "grad" not in repr(Tensor([1, 2]))


# ---------------------------------------------------------------- creation functions

@pytest.mark.parametrize("factory", [tg.zeros, tg.ones, tg.rand, tg.randn])
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([2, 3],)], ids=["f(2, 3)", "f((2, 3))", "f([2, 3])"])
def test_factories_take_sizes_both_ways(factory, size):
    t = factory(*size)
    assert t.shape == (2, 3) and t.dtype == np.float32 and t.is_leaf and not t.requires_grad


@pytest.mark.parametrize("factory, fill", [(tg.zeros, 0.0), (tg.ones, 1.0)])
def test_zeros_ones(factory, fill):
    np.testing.assert_array_equal(factory(2, 3).numpy(), np.full((2, 3), fill))
    t = factory(3, dtype=tg.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


@pytest.mark.parametrize("fill, dtype", [(1.5, np.float32), (7, np.int64), (True, np.bool_)])
def test_full_follows_the_fill_value(fill, dtype):
    t = tg.full((2, 3), fill)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), fill))
    assert tg.full((2,), fill, dtype=tg.float64).dtype == np.float64


@pytest.mark.parametrize("factory, fill", [(tg.zeros_like, 0), (tg.ones_like, 1)])
def test_like_factories_keep_shape_and_dtype(factory, fill):
    for src in (Tensor(np.zeros((2, 3))), Tensor([[5, 6]])):
        t = factory(src)
        assert t.shape == src.shape and t.dtype == src.dtype
        np.testing.assert_array_equal(t.numpy(), np.full(src.shape, fill))
    assert factory(Tensor([1, 2]), dtype=tg.float32).dtype == np.float32


@pytest.mark.parametrize("args, kwargs, dtype, expected", [
    ((5,), {}, np.int64, [0, 1, 2, 3, 4]),
    ((1, 4), {}, np.int64, [1, 2, 3]),
    ((6, 0, -2), {}, np.int64, [6, 4, 2]),
    ((0, 1, 0.25), {}, np.float32, [0.0, 0.25, 0.5, 0.75]),
    ((1.0, 4), {}, np.float32, [1.0, 2.0, 3.0]),
    ((3,), {"dtype": tg.float64}, np.float64, [0.0, 1.0, 2.0]),
    ((np.int64(3),), {}, np.int64, [0, 1, 2]),  # e.g. arange(np.prod(shape)), as torch
], ids=["5", "1, 4", "6, 0, -2", "0, 1, 0.25", "1.0, 4", "3, float64", "np.int64(3)"])
def test_arange(args, kwargs, dtype, expected):
    t = tg.arange(*args, **kwargs)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), expected)


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2)])
def test_eye(args):
    t = tg.eye(*args)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.eye(*args))


def test_tensor_function():
    t = tg.tensor([[1.0, 2.0]], requires_grad=True)
    assert t.shape == (1, 2) and t.dtype == np.float32 and t.requires_grad and t.is_leaf


@pytest.mark.parametrize("factory", [tg.rand, tg.randn])
def test_manual_seed_makes_random_tensors_reproducible(factory):
    tg.manual_seed(1234)
    first = factory(5).numpy()
    tg.manual_seed(1234)
    np.testing.assert_array_equal(factory(5).numpy(), first)
    assert not np.array_equal(factory(5).numpy(), first)  # the stream moves on
    tg.manual_seed(99)
    assert not np.array_equal(factory(5).numpy(), first)


def test_random_distributions():
    tg.manual_seed(0)
    u = tg.rand(20_000).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01  # std of the mean is 0.29 / sqrt(20000) = 0.002
    z = tg.randn(20_000).numpy()
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03


# ---------------------------------------------------------------- operators

X = np.array([0.5, 1.5, 2.0])
ARITHMETIC = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


@pytest.mark.parametrize("op", ARITHMETIC)
@pytest.mark.parametrize("other", [2, 2.5, np.array([1.0, 0.5, 3.0])], ids=["int", "float", "ndarray"])
@pytest.mark.parametrize("tensor_on_left", [True, False])
def test_operators_with_numbers_and_arrays_on_either_side(op, other, tensor_on_left):
    """`x - 2`, `2 - x`, `np.ones(3) * x`: always a Tensor, values as NumPy, gradient to x."""
    x = Tensor(X, requires_grad=True)
    out, expected = (op(x, other), op(X, other)) if tensor_on_left else (op(other, x), op(other, X))
    assert_matches(out, expected)
    out.sum().backward()
    assert x.grad.shape == X.shape


@pytest.mark.parametrize("op, other, dtype", [
    (operator.mul, 2, np.int64), (operator.add, 2, np.int64), (operator.mul, 0.5, np.float32),
    (operator.add, 0.5, np.float32), (operator.truediv, 0.5, np.float32), (operator.truediv, 2, np.float32),
])
def test_int_tensor_with_python_number(op, other, dtype):
    """As PyTorch: arange(3) * 2 stays int64, arange(3) * 0.5 and arange(3) / 2 are float32 (not float64)."""
    out = op(tg.arange(3), other)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), op(np.arange(3.0), other))


@pytest.mark.parametrize("op", [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne])
@pytest.mark.parametrize("other", [1.5, np.array([0.5, 2.0, 2.0])], ids=["number", "ndarray"])
def test_comparisons_give_bool_tensors_without_grad(op, other):
    x = Tensor(X, requires_grad=True)
    for out in (op(x, other), op(x, Tensor(other))):
        assert out.dtype == np.bool_ and not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.numpy(), op(X, other))


def test_tensors_hash_by_identity():
    """== is elementwise, so tensors hash by identity: equal values are still distinct keys."""
    x, y = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    params = {x: "x", y: "y"}
    assert params[x] == "x" and params[y] == "y"
    assert len({x, y, x}) == 2


# ---------------------------------------------------------------- movement

@given(arrays(shapes(max_dims=4)), st.data())
def test_reshape_round_trips(a, data):
    """reshape to any factorisation (with a -1) agrees with NumPy and reshaping back restores x."""
    x = Tensor(a)
    flat = x.reshape(-1)
    assert_matches(flat, a.ravel())
    target = data.draw(st.permutations(a.shape)).copy() if a.ndim else []
    if target:
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    assert_matches(x.view(*target), a.reshape(target))
    assert_matches(flat.reshape(a.shape), a)


@pytest.mark.parametrize("start, end, shape", [
    (0, -1, (24,)), (1, 2, (2, 12)), (-2, -1, (2, 12)), (0, 1, (6, 4)), (1, 1, (2, 3, 4)),
])
def test_flatten(start, end, shape):
    assert_matches(Tensor(A).flatten(start, end), A.reshape(shape))


@given(arrays(shapes(max_dims=4)), st.data())
def test_permute_matches_numpy_and_inverts(a, data):
    perm = data.draw(st.permutations(range(a.ndim)))
    y = Tensor(a).permute(*perm)
    assert_matches(y, a.transpose(perm))
    assert_matches(y.permute(*np.argsort(perm).tolist()), a)


@pytest.mark.parametrize("dim0, dim1", [(0, 1), (0, -1), (-1, -2), (1, 1)])
def test_transpose(dim0, dim1):
    assert_matches(Tensor(A).transpose(dim0, dim1), np.swapaxes(A, dim0, dim1))


def test_T_and_mT():
    assert_matches(Tensor(A).T, A.T)  # all dims reversed
    assert_matches(Tensor(A).mT, np.swapaxes(A, -1, -2))
    assert_matches(Tensor(A[0]).T, A[0].T)


@pytest.mark.parametrize("sizes, shape", [
    ((3, 4), (3, 4)), ((-1, 4), (3, 4)), ((2, 3, 4), (2, 3, 4)), ((2, -1, -1), (2, 3, 1)), ((3, 1), (3, 1)),
])
def test_expand(sizes, shape):
    """A (3, 1) tensor expanded; its gradient sums the copies: numel(shape) / 3 per element."""
    a = np.array([[1.0], [2.0], [3.0]])
    x = Tensor(a, requires_grad=True)
    y = x.expand(*sizes)
    assert_matches(y, np.broadcast_to(a, shape))
    y.sum().backward()
    assert_matches(x.grad, np.full((3, 1), np.prod(shape) / 3))


@pytest.mark.parametrize("dim, shape", [
    (None, (3, 2)), (0, (3, 1, 2)), (-2, (1, 3, 2)), (1, (1, 3, 1, 2)), ((0, 2), (3, 2)), ((0, -1), (3, 1, 2)),
])
def test_squeeze(dim, shape):
    """Dims of size 1 go; naming a dim of another size is a no-op, as PyTorch."""
    a = np.arange(6.0).reshape(1, 3, 1, 2)
    x = Tensor(a)
    assert_matches(x.squeeze() if dim is None else x.squeeze(dim), a.reshape(shape))


@pytest.mark.parametrize("dim", range(-4, 4))
def test_unsqueeze(dim):
    assert_matches(Tensor(A).unsqueeze(dim), np.expand_dims(A, dim))


@pytest.mark.parametrize("index", [
    1, -1, slice(1, None), (slice(None), 0), (Ellipsis, 1), (None, 0), (0, slice(None, None, 2), -1),
    [1, 0, 1], np.array([True, False]), (1, [0, 2], slice(1, 3)), Tensor(np.array([1, 0])),
], ids=repr)
def test_getitem_forms(index):
    reference = index.numpy() if isinstance(index, Tensor) else np.array(index) if isinstance(index, list) else index
    assert_matches(Tensor(A)[index], A[reference])


def test_getitem_gradient_adds_repeated_picks():
    """x[[0, 2, 0]].sum(): element 0 is picked twice, element 1 never."""
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    x[[0, 2, 0]].sum().backward()
    assert_matches(x.grad, [2.0, 0.0, 1.0])


@pytest.mark.parametrize("dim", range(-3, 3))
def test_cat_and_stack(dim):
    parts = [A, A + 100, A * 2]
    assert_matches(tg.cat([Tensor(p) for p in parts], dim), np.concatenate(parts, dim))
    for stack_dim in (dim, dim - 1 if dim < 0 else dim + 1):  # stack takes dims in [-4, 3]
        assert_matches(tg.stack([Tensor(p) for p in parts], stack_dim), np.stack(parts, stack_dim))


@pytest.mark.parametrize("pad, width", [
    ((1, 2), ((0, 0), (0, 0), (1, 2))),
    ((1, 2, 3, 0), ((0, 0), (3, 0), (1, 2))),
    ((0, 0, 0, 1, 2, 0), ((2, 0), (0, 1), (0, 0))),
])
def test_pad_lists_the_last_dim_first(pad, width):
    assert_matches(F.pad(Tensor(A), pad, value=-1.0), np.pad(A, width, constant_values=-1.0))


# ---------------------------------------------------------------- reductions

@st.composite
def array_and_dim(draw, values=arrays):
    """An array with >= 1 dims and a `dim` as PyTorch takes it: None, an int or a tuple, signs mixed."""
    a = draw(values(shapes(min_dims=1, max_dims=4)))
    axes = draw(st.lists(st.integers(0, a.ndim - 1), min_size=1, unique=True))
    signed = tuple(ax - a.ndim if draw(st.booleans()) else ax for ax in axes)
    return a, draw(st.sampled_from([None, signed[0], signed]))


def reduced_count(a: np.ndarray, dim) -> int:
    return a.size // max(np.sum(a, axis=dim, keepdims=True).size, 1)


@given(array_and_dim(), st.booleans())
def test_sum_and_mean_match_numpy(a_dim, keepdim):
    a, dim = a_dim
    assert_matches(Tensor(a).sum(dim, keepdim=keepdim), a.sum(axis=dim, keepdims=keepdim))
    assert_matches(Tensor(a).mean(dim, keepdim=keepdim), a.mean(axis=dim, keepdims=keepdim))


@given(array_and_dim(), st.booleans(), st.sampled_from([0, 1]))
def test_var_and_std_match_numpy(a_dim, keepdim, correction):
    a, dim = a_dim
    assume(reduced_count(a, dim) > correction)  # no degrees of freedom: see the test below
    x = Tensor(a)
    assert_matches(x.var(dim, correction=correction, keepdim=keepdim), a.var(axis=dim, ddof=correction, keepdims=keepdim))
    assert_matches(x.std(dim, correction=correction, keepdim=keepdim), a.std(axis=dim, ddof=correction, keepdims=keepdim))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("reduce", ["var", "std"])
def test_var_without_degrees_of_freedom_is_nan(reduce):
    """One sample, correction 1: NaN (as NumPy and PyTorch), not a crash; PyTorch's warning."""
    a = np.array([[1.0], [2.0]])
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        out = getattr(Tensor(a), reduce)(1)
    np.testing.assert_array_equal(out.numpy(), getattr(a, reduce)(axis=1, ddof=1))


def small_integers(shape):
    """Few distinct values, so ties are common: indices must pick the first maximum, as NumPy."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-3, 3).map(float))


@given(array_and_dim(values=small_integers), st.booleans())
def test_amax_amin_match_numpy(a_dim, keepdim):
    a, dim = a_dim
    assert_matches(Tensor(a).amax(dim, keepdim), a.max(axis=dim, keepdims=keepdim))
    assert_matches(Tensor(a).amin(dim, keepdim), a.min(axis=dim, keepdims=keepdim))


@given(small_integers(shapes(min_dims=1, max_dims=3)), st.data(), st.booleans())
@pytest.mark.parametrize("name, values, index", [("max", np.max, np.argmax), ("min", np.min, np.argmin)])
def test_max_min_over_a_dim_return_values_and_indices(name, values, index, a, data, keepdim):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    result = getattr(Tensor(a), name)(dim, keepdim=keepdim)
    vals, idx = result  # unpacks like a tuple
    assert result.values is vals and result.indices is idx
    assert_matches(vals, values(a, axis=dim, keepdims=keepdim))
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx.numpy(), index(a, axis=dim, keepdims=keepdim))
    arg = getattr(Tensor(a), "arg" + name)
    np.testing.assert_array_equal(arg(dim, keepdim).numpy(), index(a, axis=dim, keepdims=keepdim))
    assert arg().item() == index(a)  # no dim: the index into the flattened tensor


@pytest.mark.parametrize("name, reference", [("max", np.maximum), ("min", np.minimum)])
def test_max_min_of_everything_and_of_another_tensor(name, reference):
    a, b = np.array([[1.0, 5.0], [-2.0, 3.0]]), np.array([[2.0, 4.0], [-3.0, 3.5]])
    whole = getattr(Tensor(a), name)()
    assert whole.shape == () and whole.item() == reference.reduce(a, axis=None)
    assert_matches(getattr(Tensor(a), name)(Tensor(b)), reference(a, b))


# ---------------------------------------------------------------- errors

M23, M45 = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))


ERRORS = {
    "matmul": (lambda: M23 @ M45, ValueError, ["matmul", "(2, 3)", "(4, 5)"]),
    "matmul 1-D": (lambda: Tensor(np.ones(3)) @ Tensor(np.ones(4)), ValueError, ["matmul", "(3,)", "(4,)"]),
    "add": (lambda: M23 + Tensor(np.ones(4)), ValueError, ["add", "(2, 3)", "(4,)"]),
    "mul": (lambda: M23 * M45, ValueError, ["mul", "(2, 3)", "(4, 5)"]),
    "reshape": (lambda: M23.reshape(4), ValueError, ["reshape", "(2, 3)", "(4,)"]),
    "view -1": (lambda: M23.view(-1, 4), ValueError, ["reshape", "(2, 3)"]),
    "expand": (lambda: M23.expand(4, 3), ValueError, ["expand", "(2, 3)", "(4, 3)"]),
    "permute repeated": (lambda: M23.permute(0, 0), ValueError, ["permute", "(2, 3)"]),
    "permute too many": (lambda: M23.permute(1, 0, 2), IndexError, ["permute", "(2, 3)"]),
    "permute too few": (lambda: M23.permute(0), ValueError, ["permute", "(2, 3)"]),
    "getitem": (lambda: M23[2], IndexError, ["getitem", "(2, 3)"]),
    "getitem too many": (lambda: M23[0, 0, 0], IndexError, ["getitem", "(2, 3)"]),
    "cat": (lambda: tg.cat([M23, M45]), ValueError, ["cat", "(2, 3)", "(4, 5)"]),
    "stack": (lambda: tg.stack([M23, M23.T]), ValueError, ["stack", "(2, 3)", "(3, 2)"]),
    "pad": (lambda: F.pad(M23, (1, 2, 3)), ValueError, ["pad", "(1, 2, 3)", "even"]),
    "clamp": (lambda: M23.clamp(), ValueError, ["clamp", "min", "max"]),
}


@pytest.mark.parametrize("call, error, words", ERRORS.values(), ids=ERRORS.keys())
def test_errors_name_the_op_and_the_shapes(call, error, words):
    with pytest.raises(error, match=mentions(*words)):
        call()


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "amax", "amin", "max", "min", "argmax", "argmin",
                                  "squeeze", "unsqueeze"])
def test_a_missing_dim_is_an_index_error(name):
    """The message names the method the user called and the shape."""
    with pytest.raises(IndexError, match=mentions(name, "(2, 3)")):
        getattr(M23, name)(3 if name == "unsqueeze" else 2)


def test_uniform_and_normal_fill_in_place_from_the_seeded_generator():
    t = tg.zeros(1000, dtype=np.float64)
    tg.manual_seed(3)
    assert t.uniform_(2.0, 3.0) is t and t._version == 1
    values = t.numpy().copy()
    assert 2.0 <= values.min() and values.max() < 3.0
    tg.manual_seed(3)
    np.testing.assert_array_equal(tg.zeros(1000, dtype=np.float64).uniform_(2.0, 3.0).numpy(), values)
    assert abs(t.normal_(5.0, 0.1).numpy().mean() - 5.0) < 0.02
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        tg.zeros(3, requires_grad=True).normal_()
