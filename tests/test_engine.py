"""The autodiff engine on its classic cases: graph shapes, grad modes, retain_graph,
`grad()`, second order, memory and dtypes. Every expected gradient is worked out by hand."""
import gc
import weakref

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled


def leaf(*values: float, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def assert_close(actual: Tensor, expected) -> None:
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------- graph shapes

def test_reused_node_counts_every_use():
    """b = a + a, c = b + b: c = 4a, so dc/da = 4 (each edge contributes, none is lost)."""
    a = leaf(3.0)
    b = a + a
    c = b + b
    c.backward(Tensor(np.ones(1)))
    assert_close(a.grad, [4.0])


def test_diamond_sums_both_branches():
    """y = x^2, z = exp(y) + log(y): dz/dx = (exp(y) + 1/y) * 2x."""
    x = leaf(0.5, 1.5)
    y = x * x
    (y.exp() + y.log()).sum().backward()
    xv = np.array([0.5, 1.5])
    assert_close(x.grad, (np.exp(xv**2) + 1 / xv**2) * 2 * xv)


def test_fan_out_to_many_consumers():
    """z = sum_k k*x + x*x for k = 1..100: dz/dx = 5050 + 2x."""
    x = leaf(0.5, -2.0)
    z = x * x
    for k in range(1, 101):
        z = z + x * float(k)
    z.sum().backward()
    assert_close(x.grad, 5050 + 2 * np.array([0.5, -2.0]))


def test_grad_accumulates_over_backward_calls():
    """Two backwards add up: d(x^2)/dx + d(3x)/dx = 2x + 3."""
    x = leaf(1.0, 2.0)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    assert_close(x.grad, [5.0, 7.0])


@pytest.mark.parametrize("create_graph", [False, True])
def test_leaf_grads_are_independent_arrays(create_graph):
    """a + b sends the same upstream gradient to both leaves; each .grad must own its array,
    so an optimizer mutating one in place leaves the other (and the seed) untouched."""
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    seed = Tensor(np.ones(2))
    (a + b).backward(seed, create_graph=create_graph)
    assert a.grad is not b.grad
    a.grad.detach().numpy()[...] += 10.0
    assert_close(b.grad, [1.0, 1.0])
    assert_close(seed, [1.0, 1.0])


# ---------------------------------------------------------------- grad modes and leaf bookkeeping

def test_no_grad_context_records_nothing_and_restores():
    x = leaf(1.0)
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert (x * 2.0).requires_grad


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), no_grad():
        1 / 0
    assert is_grad_enabled()


@pytest.mark.parametrize("decorator", [no_grad(), no_grad], ids=["no_grad()", "bare no_grad"])
def test_no_grad_as_decorator(decorator):
    """@no_grad() and, as in PyTorch 2, a bare @no_grad."""
    @decorator
    def double(t):
        return t * 2.0

    y = double(leaf(1.0))
    assert not y.requires_grad and is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf(1.0)
    with no_grad():
        with enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and y.grad_fn is not None
    assert not z.requires_grad


def test_set_grad_enabled_as_context_and_as_function():
    """As PyTorch: `with set_grad_enabled(False):` and a plain call `set_grad_enabled(False)`."""
    x = leaf(1.0)
    with set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    with enable_grad():  # restores the mode whatever the plain call below does
        set_grad_enabled(False)
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_detach_shares_data_but_not_the_graph():
    """z = x * detach(x): the detached factor is a constant, so dz/dx = x, not 2x."""
    x = leaf(2.0, 3.0)
    d = x.detach()
    assert d.grad_fn is None and not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.numpy(), x.detach().numpy())
    (x * d).sum().backward()
    assert_close(x.grad, [2.0, 3.0])


def test_requires_grad_():
    x = Tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    (x * x).sum().backward()
    assert_close(x.grad, [2.0, 4.0])
    with pytest.raises(RuntimeError, match="floating point"):
        Tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2.0).requires_grad_(False)


def test_retain_grad_on_a_non_leaf():
    """y = 2x, z = sum(y^2): dz/dy = 2y kept on y; the other non-leaf keeps no .grad."""
    x = leaf(1.0, 2.0)
    y = x * 2.0
    y.retain_grad()
    w = y * y
    w.sum().backward()
    assert y.retains_grad and not w.retains_grad
    assert_close(y.grad, [4.0, 8.0])
    assert w.grad is None
    assert_close(x.grad, [8.0, 16.0])


@pytest.mark.parametrize("make, is_leaf", [
    (lambda x: x, True),
    (lambda x: x * 2.0, False),
    (lambda x: x.detach() * 2.0, True),  # no input requires grad: nothing recorded
    (lambda x: x.detach(), True),
], ids=["leaf", "op on leaf", "op on constant", "detach"])
def test_is_leaf(make, is_leaf):
    assert make(leaf(1.0)).is_leaf is is_leaf


@pytest.mark.parametrize("op, name", [
    (lambda x: x + x, "AddBackward"),
    (lambda x: x * x, "MulBackward"),
    (lambda x: x.exp(), "ExpBackward"),
    (lambda x: x.sum(), "SumBackward"),
    (lambda x: x.reshape(1, 2) @ x.reshape(2, 1), "MatMulBackward"),
    (lambda x: x[0], "GetItemBackward"),
    (lambda x: x.reshape(2, 1), "ReshapeBackward"),
])
def test_grad_fn_names(op, name):
    y = op(leaf(1.0, 2.0))
    assert y.grad_fn.name() == name
    assert name in repr(y)


# ---------------------------------------------------------------- long graphs

def test_long_chain_needs_no_recursion():
    """y = x * c applied N = 100,000 times: dy/dx = c^N (iterative sort, no recursion limit)."""
    n, c = 100_000, 1.0 + 1e-5
    x = leaf(1.0)
    y = x
    for _ in range(n):
        y = y * c
    y.backward(Tensor(np.ones(1)))
    np.testing.assert_allclose(x.grad.numpy(), [c**n], rtol=1e-9)
    del y  # freeing a 100,000-deep graph must not overflow the C stack either


# ---------------------------------------------------------------- retain_graph

def test_second_backward_through_a_freed_graph_raises():
    x = leaf(1.0, 2.0)
    y = x.exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"(?s)second time.*retain_graph=True"):
        y.backward()


@pytest.mark.parametrize("kwargs", [{"retain_graph": True}, {"create_graph": True}])
def test_retained_graph_backs_up_twice(kwargs):
    """d(sum exp x)/dx = exp(x), accumulated twice; create_graph implies retain_graph."""
    x = leaf(0.0, 1.0)
    y = x.exp().sum()
    y.backward(**kwargs)
    y.backward(**kwargs)
    assert_close(x.grad, 2 * np.exp([0.0, 1.0]))


def test_grad_with_create_graph_retains_the_graph():
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    first, = grad(y, x, create_graph=True)
    second, = grad(y, x, create_graph=True)
    assert_close(first, [2.0, 4.0])
    assert_close(second, [2.0, 4.0])


# ---------------------------------------------------------------- backward errors

@pytest.mark.parametrize("call, words", [
    (lambda x: (x * 2.0).backward(), r"scalar outputs.*\(2,\)"),
    (lambda x: x.detach().sum().backward(), r"does not require grad"),
    (lambda x: (x * 2.0).backward(Tensor(np.ones(3))), r"\(3,\).*\(2,\)"),
], ids=["non-scalar without gradient", "no grad required", "wrong gradient shape"])
def test_backward_errors(call, words):
    with pytest.raises(RuntimeError, match=words):
        call(leaf(1.0, 2.0))


# ---------------------------------------------------------------- tinygrad_cnn.grad

def test_grad_values_and_leaves_untouched():
    """f = x^2 y: df/dx = 2xy, df/dy = x^2; .grad stays None."""
    x, y = leaf(3.0), leaf(5.0)
    gx, gy = grad((x * x * y).sum(), [x, y])
    assert_close(gx, [30.0])
    assert_close(gy, [9.0])
    assert x.grad is None and y.grad is None


def test_grad_with_grad_outputs():
    """The vector-Jacobian product of x^2 with v is 2 x v."""
    x = leaf(1.0, 2.0, 3.0)
    v = Tensor(np.array([1.0, -1.0, 0.5]))
    gx, = grad(x * x, x, grad_outputs=v)
    assert_close(gx, [2.0, -4.0, 3.0])


def test_grad_unused_input():
    x, unused = leaf(1.0), leaf(2.0)
    with pytest.raises(RuntimeError, match="allow_unused"):
        grad((x * 2.0).sum(), [x, unused], retain_graph=True)
    gx, gu = grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    assert_close(gx, [2.0])
    assert gu is None


def test_grad_with_respect_to_non_leaves():
    """y = 3x, z = sum(y^2): dz/dy = 2y = 6x, dz/dx = 18x."""
    x = leaf(1.0, 2.0)
    y = x * 3.0
    gy, gx = grad((y * y).sum(), [y, x])
    assert_close(gy, [6.0, 12.0])
    assert_close(gx, [18.0, 36.0])
    assert y.grad is None and x.grad is None


# ---------------------------------------------------------------- second order

def test_hessian_vector_product():
    """f = x0^2 x1 + exp(x1): H = [[2 x1, 2 x0], [2 x0, exp(x1)]]; H v by double backward."""
    x0, x1 = 0.7, -0.4
    x = leaf(x0, x1)
    v = Tensor(np.array([1.5, -2.0]))
    f = x[0] * x[0] * x[1] + x[1].exp()
    g, = grad(f, x, create_graph=True)
    hv, = grad((g * v).sum(), x)
    hessian = np.array([[2 * x1, 2 * x0], [2 * x0, np.exp(x1)]])
    assert_close(hv, hessian @ v.numpy())


@pytest.mark.parametrize("f, penalty_grad", [
    # f = sum x^3: g = 3x^2, P = sum 9x^4, dP/dx = 36x^3
    (lambda x: (x * x * x).sum(), lambda x: 36 * x**3),
    # f = sum tanh x: g = 1 - t^2, P = sum (1 - t^2)^2, dP/dx = -4t (1 - t^2)^2
    (lambda x: x.tanh().sum(), lambda x: -4 * np.tanh(x) * (1 - np.tanh(x) ** 2) ** 2),
], ids=["cube", "tanh"])
def test_gradient_penalty(f, penalty_grad):
    """backward of sum(grad(f(x), x)^2), as in WGAN-GP."""
    xv = np.array([-1.2, 0.3, 0.8])
    x = Tensor(xv, requires_grad=True)
    g, = grad(f(x), x, create_graph=True)
    (g**2).sum().backward()
    assert_close(x.grad, penalty_grad(xv))


# ---------------------------------------------------------------- memory

@pytest.fixture
def no_gc():
    """Only reference counting frees objects: a reference cycle would show up as a leak."""
    gc.disable()
    yield
    gc.enable()


def live_tensors() -> int:
    # issubclass(type(o)) rather than isinstance(o): isinstance reads o.__class__, which some
    # objects (torch's deprecated module aliases) answer with a warning
    return sum(issubclass(type(o), Tensor) for o in gc.get_objects())


@pytest.mark.usefixtures("no_gc")
@pytest.mark.parametrize("run_backward", [False, True])
def test_deleting_the_output_frees_the_graph(run_backward):
    x = leaf(0.1, 0.2)
    baseline = live_tensors()
    h = x
    for _ in range(20):
        h = (h * 1.1).tanh()
    middle = weakref.ref(h.grad_fn)
    out = (h.exp() * 2.0).sum()
    del h
    assert middle() is not None  # the output's graph holds its nodes
    assert live_tensors() > baseline + 20  # and what they saved: each tanh's output
    if run_backward:
        out.backward()
        assert live_tensors() == baseline + 2  # out and x.grad: backward freed every saved tensor
    del out
    assert middle() is None
    assert live_tensors() == baseline + (1 if run_backward else 0)  # x.grad


@pytest.mark.usefixtures("no_gc")
def test_a_node_does_not_keep_its_own_output_alive():
    """exp's VJP uses its output, but its node keeps only the output's values (a detached alias)."""
    x = leaf(1.0)
    y = x.exp()
    node, ref = y.grad_fn, weakref.ref(y)
    del y
    assert ref() is None
    assert node.next_functions[0][0].variable is x


def test_backward_frees_saved_values():
    x = leaf(-1.0, 2.0)
    y = x.relu()
    node = y.grad_fn
    assert node.saved_tensors_info
    y.sum().backward()
    assert node.saved_tensors_info == () and node.released
    assert x.grad.grad_fn is None  # a plain backward leaves no graph in .grad


# ---------------------------------------------------------------- dtypes

DIFFERENTIABLE = [
    lambda x: (x * x).sum(),
    lambda x: x.exp().mean(),
    lambda x: x.tanh().var(),
    lambda x: x.sigmoid().std(),
    lambda x: x @ x,
    lambda x: (x / (x + 3.0)).sum(),
    lambda x: (x**2 + 2.0**x).sum(),
    lambda x: (1.0 - x.relu()).amax(),
    lambda x: tg.functional.pad(x, (1, 1), value=1.0).log().sum(),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f", DIFFERENTIABLE)
def test_dtype_is_kept_through_ops_and_grads(f, dtype):
    x = leaf(0.5, 1.0, 2.0, dtype=dtype)
    out = f(x)
    out.backward()
    assert out.dtype == dtype
    assert x.grad.dtype == dtype


def test_mixed_precision_promotes_output_but_not_leaf_grads():
    x32, x64 = leaf(1.0, 2.0, dtype=np.float32), leaf(3.0, 4.0)
    out = x32 * x64
    assert out.dtype == np.float64
    out.sum().backward()
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    assert_close(x32.grad, [3.0, 4.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [
    lambda x: x * 2.0, lambda x: 2.0 * x, lambda x: x / 3, lambda x: 1 - x,
    lambda x: x**2, lambda x: 2.0**x, lambda x: x + True,
])
def test_python_scalars_do_not_upcast(op, dtype):
    assert op(leaf(1.0, 2.0, dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("root", [lambda x: x, lambda x: x * 2.0], ids=["leaf root", "op root"])
def test_seed_gradient_takes_the_output_dtype(root):
    """A float64 seed for a float32 output gives float32 grads (PyTorch casts it)."""
    x = leaf(1.0, 2.0, dtype=np.float32)
    root(x).backward(Tensor(np.ones(2)))
    assert x.grad.dtype == np.float32
