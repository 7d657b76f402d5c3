"""Transposed convolution and upsampling against PyTorch in float64: F.conv_transpose2d and
F.interpolate (values, gradients for a random upstream gradient, second derivatives), gradcheck and
gradgradcheck, the layers (nn.ConvTranspose2d with its init and output_size=, nn.Upsample and the two
Upsampling*2d), their reprs, and the errors: where PyTorch raises, we raise, naming the op."""
from __future__ import annotations

import math
import re
from functools import partial

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from test_cnn_ops import ints_or_pairs
from test_cnn_torch import check_against_torch

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn import functional as F
from tinygrad_cnn.testing import arrays

LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}  # spatial dims -> the linear mode


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


def transposed_size(size, kernel, stride, padding, dilation, output_padding) -> int:
    """PyTorch's documented output size of ConvTranspose2d."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def gradchecks(fn, inputs: list[np.ndarray]) -> None:
    tensors = [Tensor(a, requires_grad=True) for a in inputs]
    assert tg.gradcheck(fn, tensors) and tg.gradgradcheck(fn, tensors)


# ================================================================ conv_transpose2d

@st.composite
def conv_transpose_configs(draw, max_side=4, max_channels=2):
    """([input, weight] or [input, weight, bias], kwargs): input (N, C, H, W) or unbatched (C, H, W), weight
    (C, O / groups, KH, KW), output_padding below stride or dilation (each dim), output at least 1 x 1."""
    groups = draw(st.sampled_from([1, 2]))
    channels, per_group = groups * draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    kernel = draw(ints_or_pairs(1, 3))
    stride, dilation, padding = draw(ints_or_pairs(1, 3)), draw(ints_or_pairs(1, 2)), draw(ints_or_pairs(0, 2))
    limits = [max(s, d) - 1 for s, d in zip(pair(stride), pair(dilation))]
    output_padding = draw(st.tuples(*(st.integers(0, limit) for limit in limits)))
    sides = draw(st.tuples(st.integers(1, max_side), st.integers(1, max_side)))
    assume(min(map(transposed_size, sides, pair(kernel), pair(stride), pair(padding), pair(dilation),
                   output_padding)) >= 1)
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    inputs = [draw(arrays(batch + (channels, *sides))), draw(arrays((channels, per_group, *pair(kernel))))]
    if draw(st.booleans()):
        inputs.append(draw(arrays((per_group * groups,))))
    return inputs, dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation)


@settings(max_examples=150)
@given(conv_transpose_configs())
def test_conv_transpose2d_matches_pytorch(config):
    inputs, kwargs = config
    check_against_torch(partial(F.conv_transpose2d, **kwargs), partial(TF.conv_transpose2d, **kwargs), inputs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 3, 4, 4), (3, 2, 4, 4), dict(stride=2, padding=1)),  # DCGAN's doubling
    ((1, 2, 3, 4), (2, 1, 2, 3), dict(dilation=3, output_padding=2)),  # output_padding >= stride, < dilation
    ((1, 2, 3, 2), (2, 2, 2, 2), dict(stride=2, output_padding=1)),  # a last row and column no tap reaches
    ((1, 1, 1, 2), (1, 2, 1, 1), dict(stride=3, padding=1, output_padding=2)),  # every tap lands in the padding
    ((4, 5, 3), (4, 3, 3, 1), dict(stride=(1, 2), padding=(2, 0), output_padding=(0, 1), groups=2)),  # unbatched
])
def test_conv_transpose2d_edge_geometries_match_pytorch(x_shape, w_shape, kwargs):
    rng = np.random.default_rng(0)
    bias = rng.standard_normal(w_shape[1] * kwargs.get("groups", 1))
    inputs = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), bias]
    check_against_torch(partial(F.conv_transpose2d, **kwargs), partial(TF.conv_transpose2d, **kwargs), inputs)


@settings(max_examples=30)
@given(conv_transpose_configs(max_side=3, max_channels=1))
def test_conv_transpose2d_gradcheck_and_gradgradcheck(config):
    inputs, kwargs = config
    gradchecks(partial(F.conv_transpose2d, **kwargs), inputs)


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    """The adjoint, on numbers: <conv2d(x, w), y> = <x, conv_transpose2d(y, w)> for all x, y, and so the
    VJP of conv2d in x is conv_transpose2d of the upstream gradient (output_padding picks x's size)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 8, 7)), rng.standard_normal((4, 3, 3, 2))
    geometry = dict(stride=2, padding=1, dilation=(1, 2))
    out = F.conv2d(Tensor(x), Tensor(w), **geometry)
    y = rng.standard_normal(out.shape)
    back = F.conv_transpose2d(Tensor(y), Tensor(w), output_padding=(1, 0), **geometry)
    assert back.shape == x.shape
    np.testing.assert_allclose((out.numpy() * y).sum(), (x * back.numpy()).sum(), rtol=1e-12)
    xt = Tensor(x, requires_grad=True)
    F.conv2d(xt, Tensor(w), **geometry).backward(Tensor(y))
    np.testing.assert_allclose(xt.grad.numpy(), back.numpy(), rtol=1e-12, atol=1e-12)


def test_conv_transpose2d_keeps_float32_and_refuses_mixed_dtypes_as_pytorch():
    x, w = np.ones((1, 2, 3, 3), np.float32), np.full((2, 1, 2, 2), 0.5, np.float32)
    assert F.conv_transpose2d(Tensor(x), Tensor(w), stride=2).dtype == np.float32
    with pytest.raises(RuntimeError):
        TF.conv_transpose2d(torch.tensor(x), torch.tensor(w, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"conv_transpose2d: expected all operands to have the same dtype"):
        F.conv_transpose2d(Tensor(x), Tensor(w.astype(np.float64)))


# ================================================================ nn.ConvTranspose2d

@pytest.mark.parametrize("args, kwargs", [
    ((16, 8, 3), {}),
    ((6, 12, (2, 4)), dict(groups=3, bias=False)),
    ((4, 2, 5), dict(stride=2, groups=2)),
])
def test_conv_transpose2d_layer_has_pytorchs_weight_layout_and_init(args, kwargs):
    """kaiming_uniform(a=sqrt(5)) with PyTorch's fan_in = weight.shape[1] * KH * KW = out_channels / groups * KH * KW
    for the transposed layout (not in_channels), so weights and bias lie in +-1/sqrt(fan_in) and reach its edge."""
    tg.manual_seed(0)
    ours, theirs = nn.ConvTranspose2d(*args, **kwargs), torch.nn.ConvTranspose2d(*args, **kwargs)
    assert ours.weight.shape == tuple(theirs.weight.shape) and ours.weight.dtype == np.float32
    assert (ours.bias is None) == (theirs.bias is None)
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(theirs.weight)
    bound = 1 / math.sqrt(fan_in)
    w = np.abs(ours.weight.detach().numpy())
    assert 0.9 * bound < w.max() <= bound
    if ours.bias is not None:
        assert np.abs(ours.bias.detach().numpy()).max() <= bound


def assert_layer_matches(ours, theirs, x: np.ndarray, **call) -> None:
    """Output and the gradients of input, weight and bias, for a random upstream gradient."""
    xs, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = ours(xs, **call), theirs(xt, **call)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(Tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), pt in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def twin_conv_transpose(*args, **kwargs):
    theirs = torch.nn.ConvTranspose2d(*args, **kwargs).double()
    ours = nn.ConvTranspose2d(*args, **kwargs).double()
    ours.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def test_conv_transpose2d_layer_matches_pytorch_for_every_output_size():
    ours, theirs = twin_conv_transpose(4, 6, (3, 2), stride=(3, 2), padding=1, groups=2, dilation=(1, 2))
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 5))
    smallest = [transposed_size(n, k, s, p, d, 0) for n, k, s, p, d in zip((3, 5), (3, 2), (3, 2), (1, 1), (1, 2))]
    sizes = [(h, w) for h in range(smallest[0], smallest[0] + 3) for w in range(smallest[1], smallest[1] + 2)]
    for size in sizes:
        assert_layer_matches(ours, theirs, x, output_size=size)
    assert_layer_matches(ours, theirs, x, output_size=(2, 6, *sizes[-1]))  # the whole output shape
    assert_layer_matches(ours, theirs, x[0], output_size=(6, *sizes[1]))  # unbatched
    assert_layer_matches(ours, theirs, x)  # no output_size: output_padding 0


def test_conv_transpose2d_layer_with_output_padding_matches_pytorch():
    ours, theirs = twin_conv_transpose(3, 2, 4, stride=2, padding=1, output_padding=1, bias=False)
    assert_layer_matches(ours, theirs, np.random.default_rng(2).standard_normal((1, 3, 4, 3)))


@pytest.mark.parametrize("args, kwargs", [
    ((2, 4, 3), dict(stride=2, padding=1, output_padding=1, groups=2, dilation=2, bias=False)),
    ((2, 4, (3, 2)), {}),
    ((3, 3, 1), dict(padding=(0, 2), dilation=(2, 1))),
])
def test_conv_transpose2d_layer_repr_is_pytorchs(args, kwargs):
    assert repr(nn.ConvTranspose2d(*args, **kwargs)) == repr(torch.nn.ConvTranspose2d(*args, **kwargs))


# ================================================================ interpolate

SCALES = st.sampled_from([0.5, 0.75, 1.0, 1.05, 1.25, 1.5, 2.0, 2.5, 3.0, 1 / 3, 0.3]) | st.floats(0.2, 4.0)


@st.composite
def interpolate_configs(draw, max_side=5):
    """(input, kwargs): input (N, C, *spatial) with 1 to 3 spatial dims, a mode that fits, and a size or a
    scale_factor (per dim or one for all) giving an output of at least 1 per dim."""
    dims = draw(st.integers(1, 3))
    sides = draw(st.tuples(*[st.integers(1, max_side if dims < 3 else 3)] * dims))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", LINEAR[dims]]))
    kwargs = {"mode": mode}
    if mode == LINEAR[dims]:
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]))
    if draw(st.booleans()):
        sizes = draw(st.tuples(*[st.integers(1, 9 if dims < 3 else 5)] * dims))
        kwargs["size"] = sizes if dims > 1 or draw(st.booleans()) else sizes[0]
    else:
        scales = draw(st.tuples(*[SCALES] * dims))
        kwargs["scale_factor"] = scales if draw(st.booleans()) else scales[0]
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
        scales = kwargs["scale_factor"] if isinstance(kwargs["scale_factor"], tuple) else scales[:1] * dims
        assume(all(int(n * s) >= 1 for n, s in zip(sides, scales)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *sides)
    return draw(arrays(shape)), kwargs


def pytorch_backward_disagrees_with_its_forward(shape: tuple[int, ...], kwargs: dict) -> bool:
    """PyTorch's 1-D and 3-D 'nearest' kernels read floor(j / scale_factor) for every output size, but their
    backward copies where the output size equals the input's and takes j // 2 where it doubles (as the 2-D
    kernel does both ways). Where a scale_factor meets those sizes, PyTorch's gradient is not that of its values."""
    scale = kwargs.get("scale_factor")
    if kwargs["mode"] != "nearest" or len(shape) == 4 or scale is None or kwargs.get("recompute_scale_factor"):
        return False
    scales = scale if isinstance(scale, tuple) else (scale,) * (len(shape) - 2)
    return any(int(n * s) in (n, 2 * n) for n, s in zip(shape[2:], scales))


@settings(max_examples=200)
@given(interpolate_configs())
def test_interpolate_matches_pytorch(config):
    x, kwargs = config
    ours, theirs = partial(F.interpolate, **kwargs), partial(TF.interpolate, **kwargs)
    if pytorch_backward_disagrees_with_its_forward(x.shape, kwargs):  # values only; gradcheck checks ours
        np.testing.assert_array_equal(ours(Tensor(x)).numpy(), theirs(torch.tensor(x)).numpy())
    else:
        check_against_torch(ours, theirs, [x])


@pytest.mark.parametrize("shape", [(1, 2, 10), (1, 1, 10, 3, 2)])
@pytest.mark.parametrize("scale_factor", [1.05, 2.05])
def test_nearest_follows_pytorchs_values_where_its_backward_disagrees(shape, scale_factor):
    """The case above: our values are PyTorch's, and our gradient is their adjoint (<P x, g> = <x, P^T g>),
    which PyTorch's is not (if this starts failing, PyTorch fixed it: compare gradients there too)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    xs, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = F.interpolate(xs, scale_factor=scale_factor), TF.interpolate(xt, scale_factor=scale_factor)
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    g = rng.standard_normal(y.shape)
    y.backward(Tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose((y.detach().numpy() * g).sum(), (x * xs.grad.numpy()).sum(), rtol=1e-12)
    assert not np.allclose((yt.detach().numpy() * g).sum(), (x * xt.grad.numpy()).sum())


@settings(max_examples=30)
@given(interpolate_configs(max_side=3))
def test_interpolate_gradcheck_and_gradgradcheck(config):
    x, kwargs = config
    gradchecks(partial(F.interpolate, **kwargs), [x])


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("nearest-exact", None), ("bilinear", False),
                                                 ("bilinear", True)])
@pytest.mark.parametrize("side, kwargs", [
    (10, dict(scale_factor=1.05)),  # output 10 = input: PyTorch copies in 'nearest' and linear modes
    (10, dict(scale_factor=1.05, recompute_scale_factor=True)),
    (7, dict(scale_factor=2.0)),  # output twice the input: 'nearest' takes j // 2
    (7, dict(scale_factor=2.1)),  # output 14 again, but the positions use 1 / 2.1
    (9, dict(scale_factor=1 / 3)),
    (6, dict(size=(1, 13))),
])
def test_interpolate_scale_factor_semantics_match_pytorch(mode, align_corners, side, kwargs):
    x = np.random.default_rng(side).standard_normal((1, 2, side, side + 1))
    kwargs = dict(kwargs, mode=mode, align_corners=align_corners)
    check_against_torch(partial(F.interpolate, **kwargs), partial(TF.interpolate, **kwargs), [x])


def test_bilinear_by_hand():
    """2 x 2 -> 3 x 3 with align_corners: corners kept, edges' midpoints, the centre is the mean;
    without, (2 x 2 -> 4 x 4) source positions (j + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25."""
    x = Tensor(np.array([[[[0.0, 4.0], [8.0, 12.0]]]]))
    expected = [[0.0, 2.0, 4.0], [4.0, 6.0, 8.0], [8.0, 10.0, 12.0]]
    assert F.interpolate(x, size=3, mode="bilinear", align_corners=True)[0, 0].tolist() == expected
    assert nn.UpsamplingBilinear2d(size=3)(x)[0, 0].tolist() == expected
    row = F.interpolate(x, scale_factor=2, mode="bilinear")[0, 0, 0].tolist()
    assert row == [0.0, 1.0, 3.0, 4.0]
    assert nn.UpsamplingNearest2d(scale_factor=2)(x)[0, 0, :, 0].tolist() == [0.0, 0.0, 8.0, 8.0]


def test_interpolate_keeps_float32_and_returns_a_new_tensor():
    x = tg.ones(1, 1, 2, 3)
    for mode in ("nearest", "bilinear"):
        assert F.interpolate(x, scale_factor=2, mode=mode).dtype == np.float32
    assert F.interpolate(x.double(), size=(3, 4), mode="bilinear").dtype == np.float64
    same = F.interpolate(x, size=(2, 3), mode="bilinear")
    assert same is not x and same.tolist() == x.tolist()


def test_interpolate_in_float32_matches_pytorch():
    """In float32 PyTorch computes source positions and weights in float32: the same indices here."""
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 5)).astype(np.float32)
    for mode in ("nearest", "nearest-exact", "bilinear"):
        for scale in (0.3, 1.7, 2.9):
            ours = F.interpolate(Tensor(x), scale_factor=scale, mode=mode).numpy()
            theirs = TF.interpolate(torch.tensor(x), scale_factor=scale, mode=mode).numpy()
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6, err_msg=f"{mode} {scale}")


# ================================================================ nn.Upsample

@pytest.mark.parametrize("make", [
    lambda nn: nn.Upsample(scale_factor=2),
    lambda nn: nn.Upsample(size=(3, 4), mode="bilinear"),
    lambda nn: nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=True),
    lambda nn: nn.Upsample(size=5, mode="nearest-exact"),
    lambda nn: nn.Upsample(scale_factor=1.5, recompute_scale_factor=True),
    lambda nn: nn.UpsamplingNearest2d(scale_factor=2),
    lambda nn: nn.UpsamplingBilinear2d(size=(4, 7)),
])
def test_upsample_layers_match_pytorch(make):
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    assert (ours.size, ours.scale_factor, ours.mode, ours.align_corners, ours.recompute_scale_factor) == \
        (theirs.size, theirs.scale_factor, theirs.mode, theirs.align_corners, theirs.recompute_scale_factor)
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 5))
    check_against_torch(ours, theirs, [x])


def test_upsample_in_a_model_trains():
    """A conv, an upsampling and a transposed conv in one Sequential: every parameter gets a gradient."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Upsample(scale_factor=2, mode="bilinear"),
                          nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1))
    out = model(tg.ones(2, 1, 4, 4))
    assert out.shape == (2, 1, 16, 16) and out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


# ================================================================ errors

# name -> (call(F, T), our exception, message), T(*shape) a float64 tensor of ones; PyTorch raises on each call too
ERRORS = {
    "output_padding >= stride and dilation": (
        lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), output_padding=1), ValueError,
        r"conv_transpose2d: output_padding \(1, 1\) must be smaller than either stride \(1, 1\) or dilation \(1, 1\)"),
    "negative output_padding": (
        lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), output_padding=-1), ValueError,
        r"conv_transpose2d: output_padding must be at least 0, got -1"),
    "zero stride": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), stride=0), ValueError,
                    r"conv_transpose2d: stride must be at least 1, got 0"),
    "negative padding": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), padding=(0, -1)), ValueError,
                         r"conv_transpose2d: padding must be at least 0, got \(0, -1\)"),
    "float stride": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), stride=1.5), TypeError,
                     r"conv_transpose2d: stride must be an int or a pair of ints, got 1.5"),
    "string padding": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), padding="same"), TypeError,
                       r"conv_transpose2d: padding must be an int or a pair of ints, got 'same'"),
    "channels": (lambda F, T: F.conv_transpose2d(T(1, 3, 5, 5), T(4, 2, 3, 3)), ValueError,
                 r"conv_transpose2d: input has 3 channels but weight expects 4 \(input \(1, 3, 5, 5\), "
                 r"weight \(4, 2, 3, 3\), groups=1\)"),
    "groups": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), groups=3), ValueError,
               r"conv_transpose2d: groups=3 must divide both the input channels \(4\) and weight.shape\[0\] \(4\)"),
    "zero groups": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), groups=0), ValueError,
                    r"conv_transpose2d: groups=0 must divide"),
    "bias": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), T(3)), ValueError,
             r"conv_transpose2d: bias must have shape \(2,\), got \(3,\)"),
    "grouped bias": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3, 3), T(2), groups=2), ValueError,
                     r"conv_transpose2d: bias must have shape \(4,\), got \(2,\)"),
    "2-D input": (lambda F, T: F.conv_transpose2d(T(5, 5), T(4, 2, 3, 3)), ValueError,
                  r"conv_transpose2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(5, 5\)"),
    "3-D weight": (lambda F, T: F.conv_transpose2d(T(1, 4, 5, 5), T(4, 2, 3)), ValueError,
                   r"conv_transpose2d: weight must have shape \(C, O/groups, KH, KW\), got \(4, 2, 3\)"),
    "output too small": (lambda F, T: F.conv_transpose2d(T(1, 4, 1, 2), T(4, 2, 1, 1), padding=1), ValueError,
                         r"conv_transpose2d: output size \(-1, 0\) is too small"),
    "size and scale_factor": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=3, scale_factor=2), ValueError,
                              r"interpolate: only one of size or scale_factor should be defined"),
    "no size": (lambda F, T: F.interpolate(T(1, 1, 4, 4)), ValueError,
                r"interpolate: either size or scale_factor should be defined"),
    "align_corners with nearest": (
        lambda F, T: F.interpolate(T(1, 1, 4, 4), size=3, align_corners=False), ValueError,
        r"interpolate: align_corners can only be set with the interpolating modes .* got mode='nearest'"),
    "size per dim": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=(3, 3, 3)), ValueError,
                     r"interpolate: size \(3, 3, 3\) must have one entry per spatial dim of the input, whose "
                     r"spatial sizes are \(4, 4\)"),
    "scale_factor per dim": (lambda F, T: F.interpolate(T(1, 1, 4), scale_factor=(2, 2)), ValueError,
                             r"interpolate: scale_factor \(2, 2\) must have one entry per spatial dim"),
    "float size": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=(3.0, 3)), TypeError,
                   r"interpolate: size must be an int or a sequence of ints, got \(3.0, 3\)"),
    "recompute with size": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=3, recompute_scale_factor=True),
                            ValueError, r"interpolate: recompute_scale_factor is not meaningful with an explicit size"),
    "empty output": (lambda F, T: F.interpolate(T(1, 1, 4, 4), scale_factor=0.2), ValueError,
                     r"interpolate: input and output sizes should be greater than 0, got input \(4, 4\) and "
                     r"output \(0, 0\)"),
    "empty input": (lambda F, T: F.interpolate(T(1, 1, 0, 4), size=3), ValueError,
                    r"interpolate: input and output sizes should be greater than 0"),
    "antialias with nearest": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=3, antialias=True), ValueError,
                               r"interpolate: antialias is restricted to .* got mode='nearest'"),
    "bilinear on 3-D input": (lambda F, T: F.interpolate(T(1, 1, 4), size=3, mode="bilinear"), NotImplementedError,
                              r"interpolate: got 3-D input, but mode 'bilinear' needs 4-D input"),
    "linear on 4-D input": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=3, mode="linear"), NotImplementedError,
                            r"interpolate: got 4-D input, but mode 'linear' needs 3-D input"),
    "unknown mode": (lambda F, T: F.interpolate(T(1, 1, 4, 4), size=3, mode="cubic"), NotImplementedError,
                     r"interpolate: mode 'cubic' is not supported"),
    "2-D input": (lambda F, T: F.interpolate(T(4, 4), size=3), NotImplementedError,
                  r"interpolate: expected 3-D, 4-D or 5-D input \(N, C, spatial...\), got \(4, 4\)"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_where_pytorch_raises(name):
    call, error, message = ERRORS[name]
    with pytest.raises(Exception):
        call(TF, lambda *shape: torch.ones(*shape, dtype=torch.float64))
    with pytest.raises(error, match=message):
        call(F, lambda *shape: tg.ones(*shape, dtype=tg.float64))


@pytest.mark.parametrize("mode, kwargs", [("bicubic", {}), ("area", {}), ("bilinear", dict(antialias=True))])
def test_pytorch_modes_left_out_raise_not_implemented_naming_them(mode, kwargs):
    """PyTorch computes these; we stop with NotImplementedError naming what is missing."""
    assert TF.interpolate(torch.ones(1, 1, 4, 4), size=3, mode=mode, **kwargs).shape == (1, 1, 3, 3)
    name = "antialias=True" if kwargs else f"mode {mode!r}"
    with pytest.raises(NotImplementedError, match=re.escape(f"interpolate: {name} is not supported")):
        F.interpolate(tg.ones(1, 1, 4, 4), size=3, mode=mode, **kwargs)


def test_interpolate_of_integers_raises_as_pytorch():
    with pytest.raises(NotImplementedError):
        TF.interpolate(torch.ones(1, 1, 2, 2, dtype=torch.int64), size=3)
    with pytest.raises(NotImplementedError, match=r"interpolate: input must be a floating point tensor, got dtype int"):
        F.interpolate(tg.ones(1, 1, 2, 2, dtype=tg.int64), size=3)


LAYER_ERRORS = {
    "padding_mode": (lambda nn: nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect"), ValueError,
                     r"ConvTranspose2d: only padding_mode='zeros' is supported, got 'reflect'"),
    "groups": (lambda nn: nn.ConvTranspose2d(2, 3, 3, groups=2), ValueError,
               r"ConvTranspose2d: groups=2 must divide in_channels=2 and out_channels=3"),
    "zero groups": (lambda nn: nn.ConvTranspose2d(2, 3, 3, groups=0), ValueError,
                    r"ConvTranspose2d: groups must be a positive integer, got 0"),
    "output_size out of range": (
        lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2)(nn_ones(nn, 1, 2, 4, 4), output_size=(12, 12)), ValueError,
        r"ConvTranspose2d: requested an output size of \(12, 12\), but valid sizes range from \(9, 9\) to \(10, 10\) "
        r"\(for an input of \(4, 4\)\)"),
    "output_size length": (
        lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2)(nn_ones(nn, 1, 2, 4, 4), output_size=(10, 10, 1)),
        ValueError, r"ConvTranspose2d: for 4-D input, output_size must have 2 or 4 elements, got \(10, 10, 1\)"),
    "Upsample without size": (lambda nn: nn.Upsample()(nn_ones(nn, 1, 1, 2, 2)), ValueError,
                              r"interpolate: either size or scale_factor should be defined"),
}


def nn_ones(module, *shape):
    return (torch if module is torch.nn else tg).ones(*shape)


@pytest.mark.parametrize("name", LAYER_ERRORS)
def test_layer_errors_where_pytorch_raises(name):
    make, error, message = LAYER_ERRORS[name]
    with pytest.raises(Exception):
        make(torch.nn)
    with pytest.raises(error, match=message):
        make(nn)
