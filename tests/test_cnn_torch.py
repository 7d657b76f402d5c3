"""tinygrad_cnn.functional against torch.nn.functional in float64: values, gradients for a random
upstream gradient, and second derivatives, on the configurations test_cnn_ops.py draws."""
from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# the same strategies as the reference tests (pytest puts tests/ on sys.path)
from test_cnn_ops import (
    arrays_and_dims,
    classification_configs,
    conv_configs,
    distinct,
    max_pool2d_reference,
    pool_configs,
)

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn import functional as F
from tinygrad_cnn.testing import arrays


def as_numpy(t, shape: tuple[int, ...]) -> np.ndarray:
    """A value or gradient as an array: None (nothing reached it) and PyTorch's ZeroTensor (a
    second derivative that is 0 everywhere, with no numpy()) are zeros."""
    if t is None or (isinstance(t, torch.Tensor) and t._is_zerotensor()):
        return np.zeros(shape)
    return t.detach().numpy()


def assert_close(ours, theirs, what: str, shape: tuple[int, ...], rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Equal to float64 rounding (by default)."""
    np.testing.assert_allclose(as_numpy(ours, shape), as_numpy(theirs, shape), rtol=rtol, atol=atol, err_msg=what)


def check_against_torch(ours, theirs, inputs: list[np.ndarray], second_order: bool = True, seed: int = 0,
                        rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """ours(*Tensors) and theirs(*torch tensors) on the same float64 arrays x_i must agree on
        the value y = f(x),
        the VJPs  g^T dy/dx_i  for a random upstream gradient g,
        and (second_order) the gradients of  sum_i <VJP_i, v_i>  (random v_i) with respect to
        every x_i and g: the second derivatives, and the VJPs' linearity in g."""
    rng = np.random.default_rng(seed)
    xs = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    txs = [torch.tensor(a, requires_grad=True) for a in inputs]
    y, ty = ours(*xs), theirs(*txs)
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty, "value", y.shape, rtol, atol)

    g = rng.standard_normal(y.shape)
    gt, tgt = Tensor(g, requires_grad=True), torch.tensor(g, requires_grad=True)
    vjps = tg.grad(y, xs, gt, create_graph=second_order)
    tvjps = torch.autograd.grad(ty, txs, tgt, create_graph=second_order)
    for i, (a, b) in enumerate(zip(vjps, tvjps)):
        assert_close(a, b, f"gradient of input {i}", inputs[i].shape, rtol, atol)
    if not second_order:
        return

    vs = [rng.standard_normal(a.shape) for a in inputs]
    sum((vjp * Tensor(v)).sum() for vjp, v in zip(vjps, vs)).backward()
    sum((vjp * torch.tensor(v)).sum() for vjp, v in zip(tvjps, vs)).backward()
    for i, (a, b) in enumerate(zip(xs, txs)):
        assert_close(a.grad, b.grad, f"second derivative through input {i}", inputs[i].shape, rtol, atol)
    assert_close(gt.grad, tgt.grad, "derivative of the VJPs by the upstream gradient", g.shape, rtol, atol)


def assume_every_window_sees_the_input(op, x, kwargs):
    """A dilated max-pooling window can fall on the padding alone; PyTorch then records an index
    outside the input and its backward aborts the process, so such windows are left out."""
    if op == "max":
        assume(np.isfinite(max_pool2d_reference(x, **kwargs)).all())


def small_integers(shape) -> st.SearchStrategy:
    """Whole numbers in [-2, 2]: pooling windows full of ties."""
    return hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float))


# ================================================================ convolution and pooling

@settings(max_examples=200)
@given(conv_configs())
def test_conv2d(config):
    inputs, kwargs = config
    with warnings.catch_warnings():  # torch notes that some 'same' paddings copy the input
        warnings.simplefilter("ignore", UserWarning)
        check_against_torch(partial(F.conv2d, **kwargs), partial(TF.conv2d, **kwargs), inputs)


TORCH_POOLS = {"max": (F.max_pool2d, TF.max_pool2d), "avg": (F.avg_pool2d, TF.avg_pool2d)}


@pytest.mark.parametrize("op", TORCH_POOLS)
@settings(max_examples=150)
@given(data=st.data())
def test_pooling(op, data):
    # distinct values: max pooling's winner is then unambiguous (ties have their own test)
    x, kwargs = data.draw(pool_configs(op, max_batch=3, max_channels=4, values=distinct))
    assume_every_window_sees_the_input(op, x, kwargs)
    ours, theirs = TORCH_POOLS[op]
    check_against_torch(partial(ours, **kwargs), partial(theirs, **kwargs), [x])


@pytest.mark.parametrize("relu", [False, True], ids=["integers", "relu'd integers"])
@settings(max_examples=150)
@given(config=pool_configs("max", max_batch=3, max_channels=4, values=small_integers))
def test_max_pool2d_ties(relu, config):
    """With ties the gradient must reach the same element as in PyTorch (the first maximum)."""
    x, kwargs = config
    assume_every_window_sees_the_input("max", x, kwargs)
    check_against_torch(lambda x: F.max_pool2d(F.relu(x) if relu else x, **kwargs),
                        lambda x: TF.max_pool2d(TF.relu(x) if relu else x, **kwargs), [x])


@pytest.mark.parametrize("op", ["conv2d", "max", "avg"])
@settings(max_examples=30)
@given(data=st.data())
def test_unbatched_input(op, data):
    """(C, H, W) input, as PyTorch accepts it."""
    if op == "conv2d":
        (x, *params), kwargs = data.draw(conv_configs(max_batch=1))
        ours, theirs = partial(F.conv2d, **kwargs), partial(TF.conv2d, **kwargs)
    else:
        x, kwargs = data.draw(pool_configs(op, max_batch=1, values=distinct))
        assume_every_window_sees_the_input(op, x, kwargs)
        params = []
        ours, theirs = (partial(fn, **kwargs) for fn in TORCH_POOLS[op])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_against_torch(ours, theirs, [x[0], *params], second_order=False)


# ================================================================ softmax and losses

@pytest.mark.parametrize("ours, theirs", [(F.log_softmax, TF.log_softmax), (F.softmax, TF.softmax)],
                         ids=["log_softmax", "softmax"])
@settings(max_examples=60)
@given(x_dim=arrays_and_dims())
def test_softmax_family(ours, theirs, x_dim):
    x, dim = x_dim
    check_against_torch(partial(ours, dim=dim), partial(theirs, dim=dim), [x])


def check_cross_entropy(config, second_order=True):
    """Probability targets are differentiable inputs too; class indices are constants."""
    logits, target, kwargs = config
    if target.dtype.kind == "f":
        check_against_torch(partial(F.cross_entropy, **kwargs), partial(TF.cross_entropy, **kwargs),
                            [logits, target], second_order)
    else:
        check_against_torch(partial(F.cross_entropy, target=Tensor(target), **kwargs),
                            partial(TF.cross_entropy, target=torch.tensor(target), **kwargs), [logits], second_order)


@settings(max_examples=150)
@given(classification_configs())
def test_cross_entropy(config):
    check_cross_entropy(config)


@settings(max_examples=80)
@given(classification_configs(low=-1e4, high=1e4))
def test_cross_entropy_with_huge_logits(config):
    """exp(1e4) overflows: both must stay finite and agree."""
    check_cross_entropy(config)


@settings(max_examples=80)
@given(classification_configs(targets=st.just("indices")))
def test_nll_loss(config):
    logp, target, kwargs = config
    del kwargs["label_smoothing"]
    check_against_torch(partial(F.nll_loss, target=Tensor(target), **kwargs),
                        partial(TF.nll_loss, target=torch.tensor(target), **kwargs), [logp])


@settings(max_examples=60)
@given(shapes_and_slope=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.floats(0.0, 2.0)),
       data=st.data())
def test_linear_leaky_relu_and_mse_loss(shapes_and_slope, data):
    """A small layer: mse_loss(leaky_relu(linear(x, W, b)), y)."""
    n, n_in, n_out, slope = shapes_and_slope
    x, w, b, y = (data.draw(arrays(s)) for s in [(n, n_in), (n_out, n_in), (n_out,), (n, n_out)])
    check_against_torch(lambda x, w, b, y: F.mse_loss(F.leaky_relu(F.linear(x, w, b), slope), y),
                        lambda x, w, b, y: TF.mse_loss(TF.leaky_relu(TF.linear(x, w, b), slope), y), [x, w, b, y])


# ================================================================ unusual inputs

@pytest.mark.parametrize("x, kernel_size", [
    (np.array([[[[1.0, np.nan, 5.0], [3.0, 2.0, 4.0]]]]), 2),
    (np.array([[[[np.nan, 1.0, np.nan, 0.0], [2.0, np.nan, 3.0, 4.0]]]]), (1, 4)),
], ids=["one NaN", "several NaNs in a window"])
def test_max_pool2d_treats_nan_as_the_maximum(x, kernel_size):
    """PyTorch propagates a NaN and sends the window's gradient to it (to the last of several)."""
    check_against_torch(partial(F.max_pool2d, kernel_size=kernel_size, stride=1),
                        partial(TF.max_pool2d, kernel_size=kernel_size, stride=1), [x], second_order=False)


@pytest.mark.parametrize("ours, theirs", [(F.log_softmax, TF.log_softmax), (F.softmax, TF.softmax)],
                         ids=["log_softmax", "softmax"])
def test_softmax_family_of_an_empty_tensor(ours, theirs):
    """Nothing to normalise along either dim of an empty tensor: an empty result, as in PyTorch,
    and no NumPy warning (such as log(0) of an empty sum)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dim, shape in ((0, (0, 3)), (1, (3, 0))):
            check_against_torch(partial(ours, dim=dim), partial(theirs, dim=dim), [np.zeros(shape)],
                                second_order=False)
