"""Activation, normalisation and adaptive-pooling functions and layers against torch in float64: values,
gradients (input and parameters) and second derivatives; gradcheck/gradgradcheck; running statistics;
module parameter names and state_dict keys; PyTorch's exception types."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from test_cnn_ops import distinct
from test_cnn_torch import check_against_torch

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn import functional as F

TOL = dict(rtol=1e-8, atol=1e-10)


def shapes(min_dims: int = 1, max_dims: int = 4) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=4)


def values(shape, away_from: tuple[float, ...] = (), low: float = -4.0, high: float = 4.0) -> st.SearchStrategy:
    """float64 arrays with every element at least 1e-3 from the kinks `away_from`."""
    elements = st.floats(low, high).filter(lambda v: all(abs(v - k) > 1e-3 for k in away_from))
    return hnp.arrays(np.float64, shape, elements=elements)


def gradchecks(fn, *arrays: np.ndarray) -> None:
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    assert tg.gradcheck(fn, inputs) and tg.gradgradcheck(fn, inputs)


# ================================================================ activations

@settings(max_examples=40, deadline=None)
@given(data=st.data(), alpha=st.floats(0.1, 3.0))
def test_elu(data, alpha):
    x = data.draw(values(data.draw(shapes()), away_from=(0.0,)))
    check_against_torch(partial(F.elu, alpha=alpha), partial(TF.elu, alpha=alpha), [x], **TOL)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_silu_and_gelu(data):
    x = data.draw(values(data.draw(shapes()), low=-8, high=8))
    check_against_torch(F.silu, TF.silu, [x], **TOL)
    check_against_torch(F.gelu, TF.gelu, [x], **TOL)
    check_against_torch(partial(F.gelu, approximate="tanh"), partial(TF.gelu, approximate="tanh"), [x], **TOL)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), beta=st.sampled_from([0.5, 1.0, 2.0]), threshold=st.sampled_from([1.0, 5.0, 20.0]))
def test_softplus(data, beta, threshold):
    x = data.draw(values(data.draw(shapes()), away_from=(threshold / beta,), low=-30, high=30))
    check_against_torch(partial(F.softplus, beta=beta, threshold=threshold),
                        partial(TF.softplus, beta=beta, threshold=threshold), [x], **TOL)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), bounds=st.tuples(st.floats(-2, 0.5), st.floats(0.1, 2)))
def test_hardtanh(data, bounds):
    lo, hi = bounds[0], bounds[0] + bounds[1]
    x = data.draw(values(data.draw(shapes()), away_from=(lo, hi)))
    check_against_torch(partial(F.hardtanh, min_val=lo, max_val=hi), partial(TF.hardtanh, min_val=lo, max_val=hi),
                        [x], **TOL)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), per_channel=st.booleans())
def test_prelu(data, per_channel):
    shape = data.draw(shapes(min_dims=2))
    x = data.draw(values(shape, away_from=(0.0,)))
    w = data.draw(values((shape[1] if per_channel else 1,), low=-1, high=1))
    check_against_torch(F.prelu, TF.prelu, [x, w], **TOL)


@pytest.mark.parametrize("inplace", [F.elu, F.silu, F.hardtanh], ids=["elu", "silu", "hardtanh"])
def test_inplace_activations_write_into_the_input(inplace):
    a = np.array([[-1.5, -0.5, 0.3, 2.0]])
    x = Tensor(a, requires_grad=True)
    y = x * 1.0  # a non-leaf: in-place on a leaf that requires grad is an error, as PyTorch
    out = inplace(y, inplace=True)
    assert out is y
    out.sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    getattr(TF, inplace.__name__)(tx * 1.0, inplace=True).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), getattr(TF, inplace.__name__)(torch.tensor(a)).numpy(), **TOL)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **TOL)


def test_activation_gradchecks():
    x = np.array([[-2.1, -0.7, 0.4, 1.3], [0.2, -0.3, 2.5, -1.1]])
    gradchecks(partial(F.elu, alpha=0.7), x)
    gradchecks(F.silu, x)
    gradchecks(partial(F.softplus, beta=2.0, threshold=3.0), x)
    gradchecks(partial(F.hardtanh, min_val=-1.0, max_val=1.0), x)
    gradchecks(partial(F.gelu, approximate="tanh"), x)
    gradchecks(F.gelu, x)
    gradchecks(F.prelu, x, np.array([0.25]))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_modules(dim):
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    check_against_torch(nn.Softmax(dim), torch.nn.Softmax(dim), [x], **TOL)
    check_against_torch(nn.LogSoftmax(dim), torch.nn.LogSoftmax(dim), [x], **TOL)


def test_softmax_without_dim_warns_and_picks_pytorchs_dim():
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        ours = nn.Softmax()(Tensor(x)).numpy()
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(ours, torch.nn.Softmax()(torch.tensor(x)).numpy(), **TOL)


def test_identity_and_unflatten():
    x = Tensor(np.arange(24.0).reshape(2, 12))
    assert nn.Identity(3, key="ignored")(x) is x
    assert nn.Unflatten(1, (3, 4))(x).shape == tuple(torch.nn.Unflatten(1, (3, 4))(torch.zeros(2, 12)).shape)


# ================================================================ normalisation

@settings(max_examples=40, deadline=None)
@given(data=st.data(), affine=st.booleans(), eps=st.sampled_from([1e-5, 0.1]))
def test_batch_norm_training(data, affine, eps):
    shape = data.draw(shapes(min_dims=2).filter(lambda s: np.prod(s) // s[1] > 1))
    x = data.draw(distinct(shape))
    params = [data.draw(values((shape[1],), low=0.5, high=2)) for _ in range(2)] if affine else []

    def run(bn, *args):
        return bn(args[0], None, None, *args[1:], training=True, eps=eps)
    check_against_torch(partial(run, F.batch_norm), partial(run, TF.batch_norm), [x] + params, rtol=1e-7, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_batch_norm_eval(data):
    shape = data.draw(shapes(min_dims=2))
    c = (shape[1],)
    x, mean, weight, bias = (data.draw(values(s)) for s in (shape, c, c, c))
    var = data.draw(values(c, low=0.1, high=3))

    def run(bn, x, weight, bias):
        lift = Tensor if bn is F.batch_norm else torch.tensor
        return bn(x, lift(mean), lift(var), weight, bias, training=False)
    check_against_torch(partial(run, F.batch_norm), partial(run, TF.batch_norm), [x, weight, bias], **TOL)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), k=st.integers(1, 2), affine=st.booleans())
def test_layer_norm(data, k, affine):
    shape = data.draw(shapes(min_dims=k, max_dims=4).filter(lambda s: np.prod(s[-k:]) > 1))
    x = data.draw(distinct(shape))
    params = [data.draw(values(shape[-k:])) for _ in range(2)] if affine else []
    normalized = shape[-k:]
    check_against_torch(lambda x, *p: F.layer_norm(x, normalized, *p), lambda x, *p: TF.layer_norm(x, normalized, *p),
                        [x] + params, rtol=1e-7, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), groups=st.integers(1, 3), per_group=st.integers(1, 3), affine=st.booleans())
def test_group_norm(data, groups, per_group, affine):
    shape = (data.draw(st.integers(1, 3)), groups * per_group) + data.draw(shapes(min_dims=0, max_dims=2))
    if np.prod(shape[2:]) * per_group == 1:
        shape = shape + (2,)
    x = data.draw(distinct(shape))  # no constant group, where the second derivative is rounding noise
    params = [data.draw(values(shape[1:2])) for _ in range(2)] if affine else []
    check_against_torch(lambda x, *p: F.group_norm(x, groups, *p), lambda x, *p: TF.group_norm(x, groups, *p),
                        [x] + params, rtol=1e-7, atol=1e-9)


def test_normalisation_gradchecks():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 4, 2)), rng.standard_normal(4), rng.standard_normal(4)
    gradchecks(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)
    mean, var = Tensor(rng.standard_normal(4)), Tensor(rng.random(4) + 0.5)
    gradchecks(lambda x, w, b: F.batch_norm(x, mean, var, w, b), x, w, b)
    gradchecks(lambda x, w, b: F.group_norm(x, 2, w, b), x, w, b)
    gradchecks(lambda x, w, b: F.layer_norm(x, (2,), w, b), x, w[:2], b[:2])


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6)])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("cls", ["BatchNorm1d", "BatchNorm2d"])
def test_batchnorm_running_stats_and_eval(cls, shape, momentum):
    if cls == "BatchNorm2d":
        shape = shape + (2,) * (4 - len(shape))
    rng = np.random.default_rng(2)
    ours = getattr(nn, cls)(3, momentum=momentum).double()
    theirs = getattr(torch.nn, cls)(3, momentum=momentum).double()
    for step in range(4):
        x = rng.standard_normal(shape) * (step + 1) + step
        tx, ox = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
        g = rng.standard_normal(shape)
        (theirs(tx) * torch.tensor(g)).sum().backward()
        (ours(ox) * Tensor(g)).sum().backward()
        np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), rtol=1e-7, atol=1e-9)
        for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-7, atol=1e-9, err_msg=name)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].detach().numpy(), value.numpy(), **TOL, err_msg=key)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(ours(Tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), **TOL)


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval():
    x = np.random.default_rng(3).standard_normal((4, 3))
    ours = nn.BatchNorm1d(3, track_running_stats=False).eval()
    theirs = torch.nn.BatchNorm1d(3, track_running_stats=False).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.double()(Tensor(x)).detach().numpy(),
                               theirs.double()(torch.tensor(x)).detach().numpy(), **TOL)


# ================================================================ pooling, padding, dropout

@settings(max_examples=60, deadline=None)
@given(data=st.data(), op=st.sampled_from(["avg", "max"]))
def test_adaptive_pooling(data, op):
    n, c, h, w = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)),
                  data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7)))
    size = data.draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 5) | st.none(), st.integers(1, 5))))
    unbatched = data.draw(st.booleans())
    x = data.draw(distinct((c, h, w) if unbatched else (n, c, h, w)))
    ours, theirs = {"avg": (F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d),
                    "max": (F.adaptive_max_pool2d, TF.adaptive_max_pool2d)}[op]
    check_against_torch(partial(ours, output_size=size), partial(theirs, output_size=size), [x], **TOL)


def test_adaptive_pooling_gradchecks():
    x = np.random.default_rng(4).standard_normal((1, 2, 5, 4))
    for fn in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
        gradchecks(partial(fn, output_size=(3, 2)), x)  # 5 -> 3 uneven, 4 -> 2 even
        gradchecks(partial(fn, output_size=(5, 2)), x)  # both even: ordinary pooling


@pytest.mark.parametrize("padding", [1, (1, 0, 2, 3)])
def test_zero_pad2d(padding):
    x = np.random.default_rng(5).standard_normal((2, 1, 3, 4))
    check_against_torch(nn.ZeroPad2d(padding), torch.nn.ZeroPad2d(padding), [x], **TOL)


@pytest.mark.parametrize("shape", [(8, 6, 3, 2), (8, 6, 5)])
def test_dropout2d_drops_whole_channels(shape):
    tg.manual_seed(0)
    x = Tensor(np.ones(shape), requires_grad=True)
    out = F.dropout2d(x, p=0.4)
    values_per_channel = out.detach().numpy().reshape(shape[0], shape[1], -1)
    assert set(np.unique(values_per_channel)) <= {0.0, 1 / 0.6}
    assert (values_per_channel.min(2) == values_per_channel.max(2)).all()  # each channel kept or dropped whole
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.detach().numpy())
    layer = nn.Dropout2d(0.4).eval()
    assert layer(x) is x and F.dropout2d(x, 1.0).detach().numpy().max() == 0.0


def test_gradient_flows_through_a_cnn_with_the_new_layers():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.SiLU(), nn.Dropout2d(0.2), nn.ZeroPad2d(1),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.LayerNorm(16), nn.PReLU(), nn.Linear(16, 3))
    out = model(Tensor(np.random.default_rng(6).standard_normal((2, 1, 7, 7)).astype(np.float32)))
    out.sum().backward()
    assert out.shape == (2, 3) and all(p.grad is not None for p in model.parameters())


# ================================================================ modules: parameters, state, errors

MODULES = {
    "Identity": lambda m: m.Identity(),
    "Unflatten": lambda m: m.Unflatten(1, (2, 3)),
    "Softmax": lambda m: m.Softmax(1),
    "LogSoftmax": lambda m: m.LogSoftmax(1),
    "ELU": lambda m: m.ELU(0.5),
    "SiLU": lambda m: m.SiLU(),
    "Softplus": lambda m: m.Softplus(2.0, 10.0),
    "Hardtanh": lambda m: m.Hardtanh(-2.0, 3.0),
    "PReLU": lambda m: m.PReLU(),
    "PReLU(3)": lambda m: m.PReLU(3, 0.1),
    "GELU": lambda m: m.GELU(),
    "BatchNorm1d": lambda m: m.BatchNorm1d(3),
    "BatchNorm1d(no stats, no affine)": lambda m: m.BatchNorm1d(3, affine=False, track_running_stats=False),
    "BatchNorm2d": lambda m: m.BatchNorm2d(3),
    "LayerNorm": lambda m: m.LayerNorm((2, 3)),
    "LayerNorm(no bias)": lambda m: m.LayerNorm(3, bias=False),
    "LayerNorm(no affine)": lambda m: m.LayerNorm(3, elementwise_affine=False),
    "GroupNorm": lambda m: m.GroupNorm(3, 6),
    "AdaptiveAvgPool2d": lambda m: m.AdaptiveAvgPool2d((2, None)),
    "AdaptiveMaxPool2d": lambda m: m.AdaptiveMaxPool2d(3),
    "ZeroPad2d": lambda m: m.ZeroPad2d(2),
    "Dropout2d": lambda m: m.Dropout2d(0.3),
}


@pytest.mark.parametrize("name", MODULES)
def test_module_parameters_and_state_dict_match_torch(name):
    ours, theirs = MODULES[name](nn), MODULES[name](torch.nn)
    assert [(k, tuple(p.shape)) for k, p in ours.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].detach().numpy(), value.numpy(), err_msg=key)


ERRORS = {
    "prelu weight size": lambda f, t: f.prelu(t(np.zeros((2, 3))), t(np.zeros(2))),
    "layer_norm shape": lambda f, t: f.layer_norm(t(np.zeros((2, 3))), (2,)),
    "layer_norm weight": lambda f, t: f.layer_norm(t(np.zeros((2, 3))), (3,), t(np.zeros(2))),
    "group_norm groups": lambda f, t: f.group_norm(t(np.zeros((2, 3, 2))), 2),
    "batch_norm one value": lambda f, t: f.batch_norm(t(np.zeros((1, 3))), None, None, training=True),
    "batch_norm running_mean": lambda f, t: f.batch_norm(t(np.zeros((2, 3))), t(np.zeros(2)), t(np.ones(2))),
    "gelu approximate": lambda f, t: f.gelu(t(np.zeros(2)), approximate="exact"),
    "BatchNorm1d dims": lambda f, t: (f is F and nn or torch.nn).BatchNorm1d(3)(t(np.zeros((2, 3, 2, 2)))),
    "GroupNorm channels": lambda f, t: (f is F and nn or torch.nn).GroupNorm(4, 6),
    "dropout2d p": lambda f, t: f.dropout2d(t(np.zeros((2, 3, 2, 2))), p=1.5),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_have_pytorchs_types(case):
    with pytest.raises(Exception) as theirs:
        ERRORS[case](TF, torch.tensor)
    with pytest.raises(theirs.type):
        ERRORS[case](F, Tensor)




@pytest.mark.parametrize("indices, num_classes", [([0, 2, 1], 4), ([[0, 2]], -1), ([], 3), ([[1], [0]], 2)])
def test_one_hot_matches_torch(indices, num_classes):
    ours = F.one_hot(Tensor(np.array(indices, dtype=np.int64)), num_classes)
    theirs = TF.one_hot(torch.tensor(indices, dtype=torch.int64), num_classes)
    assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("indices, num_classes", [([0.5], -1), ([3], 2), ([-1], 2)])
def test_one_hot_errors_as_torch(indices, num_classes):
    dtype = np.float64 if isinstance(indices[0], float) else np.int64
    with pytest.raises(RuntimeError):
        TF.one_hot(torch.tensor(np.array(indices, dtype=dtype)), num_classes)
    with pytest.raises(RuntimeError, match="one_hot"):
        F.one_hot(Tensor(np.array(indices, dtype=dtype)), num_classes)
