"""einsum, scatter_reduce (and scatter's reduce=), normalize / cosine_similarity / pairwise_distance, max
pooling's indices and Size, against PyTorch in float64: values, first and second derivatives, and the
errors. Where our gradient differs from PyTorch's on purpose, the test says why and checks it by hand."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, nn  # noqa: E402
from tinygrad_cnn.testing import arrays, broadcastable_shapes, distinct_arrays  # noqa: E402

from test_indexing_torch import _np, gather_case, matches_torch  # noqa: E402

few = settings(max_examples=25, deadline=None)
rng = np.random.default_rng(0)


# ================================================================ einsum

EQUATIONS = {
    "matmul": ("ij,jk->ik", [(2, 3), (3, 4)]),
    "matmul implicit": ("ij,jk", [(2, 3), (3, 4)]),
    "bmm": ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    "outer": ("i,j->ij", [(3,), (4,)]),
    "dot": ("i,i->", [(3,), (3,)]),
    "dot implicit": ("i,i", [(3,), (3,)]),
    "trace": ("ii", [(3, 3)]),
    "diagonal": ("ii->i", [(3, 3)]),
    "batch diagonal": ("...ii->...i", [(2, 3, 3)]),
    "repeated thrice": ("iii->i", [(2, 2, 2)]),
    "diagonal times matrix": ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
    "transpose": ("ij->ji", [(2, 3)]),
    "implicit sorted (A-Z before a-z)": ("bA", [(2, 3)]),
    "sum all": ("ij->", [(2, 3)]),
    "sum some": ("ijk->j", [(2, 3, 4)]),
    "batch matmul, ellipses broadcast": ("...ij,...jk", [(2, 1, 2, 3), (5, 3, 4)]),
    "ellipsis summed": ("i...->i", [(2, 3, 4)]),
    "ellipsis kept": ("i...->...", [(2, 3, 4)]),
    "bilinear": ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    "three vectors": ("i,j,k->ijk", [(2,), (3,), (2,)]),
    "chain of four": ("ab,bc,cd,de->ae", [(2, 3), (3, 2), (2, 4), (4, 2)]),
    "scalar operand": (",i->i", [(), (3,)]),
    "size 1 broadcasts": ("i,i->i", [(3,), (1,)]),
    "size 1 broadcasts, summed": ("ij,jk", [(2, 1), (3, 4)]),
    "size 1 both ways": ("ij,ij->ij", [(1, 3), (2, 1)]),
    "summed in one operand alone": ("ij,k->ik", [(2, 3), (4,)]),
    "spaces": ("i j , j k -> i k", [(2, 3), (3, 4)]),
}


@pytest.mark.parametrize("name", EQUATIONS)
def test_einsum_matches_torch(name):
    """Values, gradients and second derivatives (through sin) for each kind of equation."""
    equation, shapes = EQUATIONS[name]
    arrays_ = [rng.standard_normal(s) for s in shapes]
    matches_torch(lambda *xs: tg.einsum(equation, *xs), lambda *ts: torch.einsum(equation, *ts), *arrays_)


def test_einsum_takes_its_operands_as_one_list_too():
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    matches_torch(lambda x, y: tg.einsum("ij,jk", [x, y]), lambda x, y: torch.einsum("ij,jk", [x, y]), a, b)


def test_einsum_of_integers_stays_integer():
    out = tg.einsum("ij->j", tg.tensor([[1, 2], [3, 4]]))
    assert out.dtype == tg.int64 and out.tolist() == [4, 6]


@st.composite
def einsum_with_broadcasting(draw):
    """An equation over 1-3 operands whose letters may have size 1 in some operands (broadcast), with an
    optional leading '...' and an explicit or implicit output; the operands' arrays."""
    sizes = dict(zip("abcd", draw(st.lists(st.integers(2, 3), min_size=4, max_size=4))))
    n = draw(st.integers(1, 3))
    terms = ["".join(draw(st.lists(st.sampled_from("abcd"), max_size=3, unique=True))) for _ in range(n)]
    dots = draw(st.sampled_from(["", "..."]))
    batches = draw(broadcastable_shapes(n, max_dims=2, max_side=2)) if dots else [()] * n
    letters = sorted(set("".join(terms)))
    output = "".join(draw(st.permutations(letters))[:draw(st.integers(0, len(letters)))])
    equation = ",".join(dots + t for t in terms) + draw(st.sampled_from(["", "->" + dots + output]))
    shapes = [b + tuple(1 if draw(st.integers(0, 3)) == 0 else sizes[c] for c in t) for b, t in zip(batches, terms)]
    return equation, [draw(arrays(s)) for s in shapes]


@few
@given(einsum_with_broadcasting())
def test_einsum_with_broadcast_dims_matches_torch(case):
    """Size-1 dims broadcast against the same letter elsewhere (NumPy's einsum, the table's reference,
    does not promise this); the gradient of a broadcast operand is summed back to its size."""
    equation, arrays_ = case
    matches_torch(lambda *xs: tg.einsum(equation, *xs), lambda *ts: torch.einsum(equation, *ts), *arrays_)


@few
@given(einsum_with_broadcasting())
def test_einsum_with_broadcast_dims_passes_gradcheck(case):
    equation, arrays_ = case
    xs = [Tensor(a, requires_grad=True) for a in arrays_]
    assert gradcheck(lambda *xs: tg.einsum(equation, *xs), xs)
    assert gradgradcheck(lambda *xs: tg.einsum(equation, *xs), xs)


def test_einsum_gradient_of_a_trace_is_the_identity():
    """By hand: d tr(A) / dA = I, and d diag(A) . v / dA puts v on the diagonal."""
    a = tg.randn(3, 3, dtype=tg.float64, requires_grad=True)
    tg.einsum("ii", a).backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.eye(3))
    a.grad = None
    tg.einsum("ii->i", a).backward(tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64))
    np.testing.assert_array_equal(a.grad.numpy(), np.diag([1.0, 2.0, 3.0]))


EINSUM_ERRORS = {
    "fewer operands": ("ij,jk", [(2, 3)]),
    "more operands": ("ij", [(2, 3), (3, 4)]),
    "more subscripts than dims": ("ijk,jk", [(2, 3), (3, 4)]),
    "fewer subscripts than dims": ("i,jk", [(2, 3), (3, 4)]),
    "subscripts exceed dims with an ellipsis": ("i...jk", [(2, 3)]),
    "sizes differ": ("ij,ik", [(2, 3), (3, 4)]),
    "repeated subscript, sizes differ": ("ii", [(2, 3)]),
    "ellipsis dims do not broadcast": ("...ij,...jk", [(2, 2, 3), (5, 3, 4)]),
    "output subscript twice": ("ij,jk->iik", [(2, 3), (3, 4)]),
    "output subscript from nowhere": ("ij,jk->iz", [(2, 3), (3, 4)]),
    "not a letter": ("i1,jk->ik", [(2, 3), (3, 4)]),
    "two arrows": ("ij->ij->", [(2, 3)]),
    "dots that are no ellipsis": ("..i", [(2, 3)]),
    "two ellipses": ("i...j...", [(2, 3)]),
}


@pytest.mark.parametrize("name", EINSUM_ERRORS)
def test_einsum_errors_as_torch(name):
    """The same error type as PyTorch, with PyTorch's message (which names the operand and subscript)."""
    equation, shapes = EINSUM_ERRORS[name]
    with pytest.raises(Exception) as theirs:
        torch.einsum(equation, *[torch.ones(s) for s in shapes])
    with pytest.raises(type(theirs.value)) as ours:
        tg.einsum(equation, *[tg.ones(s) for s in shapes])
    assert str(ours.value).replace(" ", "") == str(theirs.value).replace(" ", "")


def test_einsum_rejects_mixed_dtypes_and_no_operands():
    with pytest.raises(RuntimeError, match="float32.*float64"):
        tg.einsum("ij,jk", tg.ones(2, 3), tg.ones(3, 4, dtype=tg.float64))
    with pytest.raises(ValueError, match="at least one operand"):
        tg.einsum("ij")
    with pytest.raises(TypeError, match="operand 1"):
        tg.einsum("i,i", tg.ones(2), np.ones(2))


# ================================================================ scatter_reduce

REDUCTIONS = ["sum", "prod", "mean", "amax", "amin"]
few_values = st.sampled_from([-1.5, -1.0, 0.0, 0.5, 2.0])  # ties and zeros


@st.composite
def scatter_reduce_case(draw, elements=few_values):
    """(self, dim, index, src, reduce, include_self): index repeats places; values from a few (ties, zeros)."""
    shape_, dim, index = draw(gather_case())
    a = draw(hnp.arrays(np.float64, shape_.shape, elements=elements))
    src = draw(hnp.arrays(np.float64, index.shape, elements=elements))
    return a, dim, index, src, draw(st.sampled_from(REDUCTIONS)), draw(st.booleans())


def torch_counts_excluded_ties(a, dim, index, src, reduce, include_self) -> bool:
    """PyTorch's 'amax' / 'amin' backward counts self as tied where it equals the result even when
    include_self=False kept it out, so g is shared with a value that did not take part (its g then goes
    nowhere). We share g among the values that took part; the cases where the two differ are checked by hand."""
    if include_self or reduce not in ("amax", "amin"):
        return False
    out = torch.tensor(a).scatter_reduce(dim, torch.tensor(index), torch.tensor(src), reduce, include_self=False)
    hit = torch.zeros(a.shape).scatter(dim, torch.tensor(index), 1.0).bool().numpy()
    return bool((hit & (a == out.numpy())).any())


@few
@given(scatter_reduce_case())
def test_scatter_reduce_matches_torch(case):
    a, dim, index, src, reduce, include_self = case
    assume(not torch_counts_excluded_ties(*case))
    ti = torch.tensor(index)
    matches_torch(lambda x, s: x.scatter_reduce(dim, index, s, reduce, include_self=include_self),
                  lambda x, s: x.scatter_reduce(dim, ti, s, reduce, include_self=include_self), a, src,
                  second_order=bool(reduce != "prod" or (src == 0).sum() < 2))  # PyTorch: none for 2+ zeros


def test_scatter_reduce_amax_shares_g_among_the_values_that_took_part():
    """include_self=False: self's value 2 equals the result but took no part, so src's 2 takes all of g
    (PyTorch halves it, see torch_counts_excluded_ties); a real tie of two src values halves it."""
    x = Tensor(np.array([2.0, 0.0]), requires_grad=True)
    s = Tensor(np.array([2.0, 1.0, 1.0]), requires_grad=True)
    out = x.scatter_reduce(0, np.array([0, 1, 1]), s, "amax", include_self=False)
    assert out.tolist() == [2.0, 1.0]
    out.backward(Tensor(np.array([1.0, 4.0])))
    assert x.grad.tolist() == [0.0, 0.0] and s.grad.tolist() == [1.0, 2.0, 2.0]


@few
@given(scatter_reduce_case(elements=st.floats(-2, 2)), st.data())
def test_scatter_reduce_passes_gradcheck(case, data):
    """Distinct values (no ties for amax/amin), and for prod some exact zeros: each value's gradient is
    the product of the others, and the second derivatives too (where PyTorch gives none for 2+ zeros)."""
    _, dim, index, _, reduce, include_self = case
    values = data.draw(distinct_arrays((case[0].size + case[3].size,)))
    if reduce == "prod":
        values[data.draw(st.lists(st.integers(0, values.size - 1), max_size=3))] = 0.0
    x = Tensor(values[:case[0].size].reshape(case[0].shape), requires_grad=True)
    s = Tensor(values[case[0].size:].reshape(case[3].shape), requires_grad=True)
    f = lambda x, s: x.scatter_reduce(dim, index, s, reduce, include_self=include_self)  # noqa: E731
    assert gradcheck(f, [x, s])
    assert gradgradcheck(f, [x, s])


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_of_integers_as_torch(reduce, include_self):
    """Integer 'mean' rounds down (floor), as PyTorch."""
    a, index, src = np.array([-10, 2, 3, 7]), np.array([0, 0, 2, 0]), np.array([0, -1, 5, 4])
    ours = tg.scatter_reduce(tg.tensor(a), 0, tg.tensor(index), tg.tensor(src), reduce, include_self=include_self)
    theirs = torch.scatter_reduce(torch.tensor(a), 0, torch.tensor(index), torch.tensor(src), reduce,
                                  include_self=include_self)
    assert ours.dtype == tg.int64 and ours.tolist() == theirs.tolist()


def test_scatter_reduce_errors_as_torch():
    x, i = tg.zeros(3), tg.tensor([0, 1])
    with pytest.raises(RuntimeError, match="sum, prod, mean, amax or amin"):
        x.scatter_reduce(0, i, tg.ones(2), "add")
    with pytest.raises(TypeError, match="src"):
        x.scatter_reduce(0, i, 2.0, "sum")
    with pytest.raises(RuntimeError, match="dtype"):
        x.scatter_reduce(0, i, tg.ones(2, dtype=tg.float64), "sum")
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.scatter_reduce(0, tg.tensor([3]), tg.ones(1), "amax")
    with pytest.raises(IndexError):
        x.scatter_reduce(1, i, tg.ones(2), "sum")


@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_with_reduce_as_torch_and_no_derivative(reduce):
    """PyTorch's older form: values as scatter_reduce's sum / prod with self; a tensor or a number as src;
    the result requires grad, and a backward through it raises, as in PyTorch."""
    a, index, src = rng.standard_normal((2, 3)), np.array([[0, 1, 0], [0, 0, 1]]), rng.standard_normal((2, 3))
    ti = torch.tensor(index)
    x = Tensor(a, requires_grad=True)
    out = x.scatter(0, index, Tensor(src), reduce=reduce)
    np.testing.assert_allclose(_np(out), _np(torch.tensor(a).scatter(0, ti, torch.tensor(src), reduce=reduce)))
    by_value = tg.scatter(x, 0, tg.tensor(index), value=2.5, reduce=reduce)
    np.testing.assert_allclose(_np(by_value), _np(torch.tensor(a).scatter(0, ti, 2.5, reduce=reduce)))
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="not implemented"):
        out.sum().backward()
    with pytest.raises(RuntimeError, match="add or multiply"):
        x.scatter(0, index, Tensor(src), reduce="sum")


def test_inplace_scatters_as_torch():
    """scatter_, scatter_add_, scatter_reduce_ on a non-leaf: the values and the gradient to the leaf."""
    a, index, src = rng.standard_normal((3, 4)), np.array([[0, 2, 1, 0], [2, 2, 0, 1]]), rng.standard_normal((2, 4))
    ti = torch.tensor(index)
    calls = [(lambda y, s: y.scatter_(0, index, s), lambda y, s: y.scatter_(0, ti, s)),
             (lambda y, s: y.scatter_add_(0, index, s), lambda y, s: y.scatter_add_(0, ti, s)),
             (lambda y, s: y.scatter_reduce_(0, index, s, "amax", include_self=False),
              lambda y, s: y.scatter_reduce_(0, ti, s, "amax", include_self=False))]
    for ours, theirs in calls:
        matches_torch(lambda x, s: ours(x * 1.0, s), lambda x, s: theirs(x * 1.0, s), a, src, second_order=False)
    y = Tensor(a.copy()).scatter_(0, index, value=1.5, reduce="multiply")
    np.testing.assert_array_equal(y.numpy(), torch.tensor(a).scatter_(0, ti, value=1.5, reduce="multiply").numpy())
    with pytest.raises(RuntimeError, match="leaf"):
        Tensor(a, requires_grad=True).scatter_add_(0, index, Tensor(src))


# ================================================================ normalize, cosine_similarity, pairwise_distance

def nonzero_arrays(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Entries at least 0.1 from 0: no vector is near the zero vector, where the norm has its kink."""
    return arrays(shape, away_from=(0.0,), margin=0.1)


@few
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4).flatmap(nonzero_arrays), st.data())
def test_normalize_matches_torch(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    p = data.draw(st.sampled_from([1, 2]))
    matches_torch(lambda x: F.normalize(x, p=p, dim=dim), lambda x: TF.normalize(x, p=p, dim=dim), a)


def test_normalize_at_zero_vectors_as_torch():
    """A vector shorter than eps is divided by eps: the gradient there is g / eps, finite (not NaN). The
    second derivative at a zero vector is 0 here (PyTorch's is NaN: its norm's double backward divides by 0)."""
    a = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0], [1e-14, 0.0, 0.0]])
    matches_torch(lambda x: F.normalize(x), lambda x: TF.normalize(x), a, second_order=False)
    matches_torch(lambda x: F.normalize(x, p=1, dim=0, eps=1e-3), lambda x: TF.normalize(x, p=1, dim=0, eps=1e-3), a)
    x = Tensor(a, requires_grad=True)
    g, = tg.grad(F.normalize(x).sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy()[0], np.full(3, 1e12))
    gg, = tg.grad((g * g).sum(), [x])
    assert np.isfinite(gg.numpy()).all() and (gg.numpy()[0] == 0).all()


@few
@given(broadcastable_shapes(2, min_dims=1, max_dims=3, max_side=3).flatmap(
    lambda s: st.tuples(nonzero_arrays(s[0]), nonzero_arrays(s[1]))), st.data())
def test_cosine_similarity_and_pairwise_distance_match_torch(pair, data):
    a, b = pair
    ndim = max(a.ndim, b.ndim)
    dim = data.draw(st.integers(-ndim, ndim - 1))
    matches_torch(lambda x, y: F.cosine_similarity(x, y, dim=dim), lambda x, y: TF.cosine_similarity(x, y, dim=dim),
                  a, b)
    keepdim = data.draw(st.booleans())
    p = data.draw(st.sampled_from([1, 2]))
    assume(np.abs(a - b).max(-1).min() > 0.1)  # x1 - x2 near 0: the distance's kink, where rounding rules
    matches_torch(lambda x, y: F.pairwise_distance(x, y, p=p, keepdim=keepdim),
                  lambda x, y: TF.pairwise_distance(x, y, p=p, keepdim=keepdim), a, b)


def test_cosine_similarity_at_a_zero_vector_and_bad_shapes_as_torch():
    """First order only: at a zero vector PyTorch's second derivative is NaN (see normalize)."""
    a, b = np.zeros((2, 3)), rng.standard_normal((2, 3))
    matches_torch(lambda x, y: F.cosine_similarity(x, y), lambda x, y: TF.cosine_similarity(x, y), a, b,
                  second_order=False)
    with pytest.raises(RuntimeError):
        F.cosine_similarity(tg.ones(2, 3), tg.ones(4, 3))


@few
@given(hnp.array_shapes(min_dims=2, max_dims=2, max_side=4).flatmap(
    lambda s: st.tuples(nonzero_arrays(s), nonzero_arrays(s))))
def test_vector_norm_functions_pass_gradcheck(pair):
    a, b = pair
    assume(np.abs(a - b).max(-1).min() > 0.1)  # no pair of rows near equal: the distance's kink
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    for f in (lambda x: F.normalize(x, dim=0), lambda x: F.cosine_similarity(x, y),
              lambda x: F.pairwise_distance(x, y)):
        assert gradcheck(f, [x]) and gradgradcheck(f, [x])


# ================================================================ max pooling's indices

ties = st.sampled_from([0.0, 1.0, 2.0, -np.inf])


@few
@given(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 9), st.integers(1, 9)), st.data())
def test_adaptive_max_pool2d_indices_and_gradient_match_torch(shape, data):
    """With ties (and -inf) in the windows: the first maximum (row-major) gives the index and takes g."""
    a = data.draw(hnp.arrays(np.float64, shape, elements=ties))
    out = data.draw(st.tuples(st.integers(1, shape[2]), st.integers(1, shape[3]) | st.none()))
    v, i = F.adaptive_max_pool2d(Tensor(a), out, return_indices=True)
    tv, ti = TF.adaptive_max_pool2d(torch.tensor(a), out, return_indices=True)
    assert i.dtype == tg.int64
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    a = np.where(np.isinf(a), -3.0, a)  # finite for the gradients
    matches_torch(lambda x: F.adaptive_max_pool2d(x, out), lambda x: TF.adaptive_max_pool2d(x, out), a)
    matches_torch(lambda x: F.adaptive_max_pool2d(x, out, True)[0],
                  lambda x: TF.adaptive_max_pool2d(x, out, True)[0], a)


@few
@given(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(3, 8), st.integers(3, 8)), st.data())
def test_max_pool2d_indices_match_torch(shape, data):
    """Every geometry, with ties, and windows that see only -inf (PyTorch points at their first tap in
    the input, not into the padding)."""
    a = data.draw(hnp.arrays(np.float64, shape, elements=ties))
    kernel = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    kw = dict(kernel_size=kernel, stride=data.draw(st.tuples(st.integers(1, 3), st.integers(1, 3))),
              padding=data.draw(st.tuples(st.integers(0, kernel[0] // 2), st.integers(0, kernel[1] // 2))),
              dilation=data.draw(st.tuples(st.integers(1, 2), st.integers(1, 2))), ceil_mode=data.draw(st.booleans()))
    try:
        tv, ti = TF.max_pool2d(torch.tensor(a), return_indices=True, **kw)
    except RuntimeError:  # the kernel does not fit: we raise too
        with pytest.raises(ValueError):
            F.max_pool2d(Tensor(a), return_indices=True, **kw)
        return
    v, i = F.max_pool2d(Tensor(a), return_indices=True, **kw)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_pooling_layers_return_indices_as_torch():
    a = rng.standard_normal((2, 3, 7, 6))
    for ours, theirs in [(nn.MaxPool2d(3, 2, 1, return_indices=True), torch.nn.MaxPool2d(3, 2, 1, return_indices=True)),
                         (nn.AdaptiveMaxPool2d((3, 4), True), torch.nn.AdaptiveMaxPool2d((3, 4), True))]:
        (v, i), (tv, ti) = ours(Tensor(a[0])), theirs(torch.tensor(a[0]))  # unbatched (C, H, W)
        assert v.shape == tuple(tv.shape) and np.array_equal(i.numpy(), ti.numpy())
        (v, i), (tv, ti) = ours(Tensor(a)), theirs(torch.tensor(a))
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_pooling_nan_is_the_maximum_and_the_last_one_wins_as_torch():
    a = np.array([[[[1.0, np.nan, 2.0, np.nan]]]])
    for ours, theirs in [(F.max_pool2d(Tensor(a), (1, 4), return_indices=True),
                          TF.max_pool2d(torch.tensor(a), (1, 4), return_indices=True)),
                         (F.adaptive_max_pool2d(Tensor(a), 1, return_indices=True),
                          TF.adaptive_max_pool2d(torch.tensor(a), 1, return_indices=True))]:
        assert np.isnan(ours[0].item()) and ours[1].item() == theirs[1].item() == 3


# ================================================================ Size

def test_size_behaves_as_torch_size():
    shape, theirs = tg.zeros(2, 3).shape, torch.zeros(2, 3).shape
    assert isinstance(shape, tg.Size) and isinstance(shape, tuple)
    assert repr(shape) == repr(theirs).replace("torch", "tinygrad_cnn") == "tinygrad_cnn.Size([2, 3])"
    assert shape == theirs == (2, 3) and hash(shape) == hash((2, 3))
    for op in (lambda s: s[1:], lambda s: s[::-1], lambda s: s + (4,), lambda s: (4,) + s, lambda s: s * 2,
               lambda s: 2 * s):
        assert type(op(shape)) is tg.Size and type(op(theirs)) is torch.Size and op(shape) == op(theirs)
    assert shape[0] == 2 and type(shape[0]) is int
    assert shape.numel() == theirs.numel() == 6 and tg.Size([]).numel() == torch.Size([]).numel() == 1
    assert tg.zeros(2, 3).size() == shape and tg.zeros(2, 3).size(-1) == 3
    assert pickle.loads(pickle.dumps(shape)) == shape and type(pickle.loads(pickle.dumps(shape))) is tg.Size
    assert str(shape) == "(2, 3)"  # messages that format a shape read as before
