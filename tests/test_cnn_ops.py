"""CNN ops in tinygrad_cnn.functional against references written here from the definitions.

conv2d and pooling are checked against plain loops (one output position at a time, explicit
zero padding), softmax and the losses against NumPy, and every gradient against central
differences in float64 (gradcheck) and, for second derivatives, gradgradcheck.
"""
from __future__ import annotations

import math
import re
import tracemalloc
from functools import partial

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck
from tinygrad_cnn import functional as F
from tinygrad_cnn.testing import arrays, distinct_arrays, shapes


def T(a, requires_grad: bool = True) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def as_pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def loosely(pair: tuple[int, int]):
    """A pair as a user would write it: a single int when both sides agree."""
    return pair[0] if pair[0] == pair[1] else pair


def pairs(lo: int, hi: int) -> st.SearchStrategy:
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


def ints_or_pairs(lo: int, hi: int) -> st.SearchStrategy:
    return st.integers(lo, hi) | pairs(lo, hi)


def distinct(shape) -> st.SearchStrategy:
    """Values at least 1e-3 apart: every pooling window has one clear maximum."""
    return distinct_arrays(shape, gap=1e-3)


def spans(kernel, dilation) -> tuple[int, int]:
    """How far a dilated kernel reaches: dilation * (k - 1) + 1 pixels."""
    return tuple(d * (k - 1) + 1 for k, d in zip(as_pair(kernel), as_pair(dilation)))


# ================================================================ conv2d

def explicit_padding(padding, kernel, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) zeros around the input. 'same' pads dilation * (k - 1) in
    total so the output keeps the input's size; PyTorch puts an odd pixel at the bottom/right."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, as_pair(dilation))]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in as_pair(padding))


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """out[n, o, i, j] = bias[o] + sum over c, p, q of
           xpad[n, first channel of o's group + c, i * sh + p * dh, j * sw + q * dw] * weight[o, c, p, q]
    where xpad is x surrounded by explicit zeros."""
    (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
    batch, channels, h, w = x.shape
    filters, channels_per_group, kh, kw = weight.shape
    (top, bottom), (left, right) = explicit_padding(padding, (kh, kw), dilation)
    xpad = np.zeros((batch, channels, top + h + bottom, left + w + right))
    xpad[:, :, top:top + h, left:left + w] = x
    oh = (xpad.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xpad.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((batch, filters, oh, ow))
    for n, o, i, j in np.ndindex(out.shape):
        first_channel = (o // (filters // groups)) * channels_per_group
        total = 0.0 if bias is None else bias[o]
        for c, p, q in np.ndindex(channels_per_group, kh, kw):
            total += xpad[n, first_channel + c, i * sh + p * dh, j * sw + q * dw] * weight[o, c, p, q]
        out[n, o, i, j] = total
    return out


@st.composite
def conv_configs(draw, max_batch=3, max_channels=4, max_side=7, max_kernel=4, values=arrays):
    """([input, weight] or [input, weight, bias], conv2d kwargs) with
        input (N, C, H, W), weight (O, C / groups, KH, KW), bias (O,),
    and H, W large enough that the dilated kernel fits the padded input:
        dilation * (K - 1) + 1 <= H + padding."""
    groups = draw(st.sampled_from([1, 2]))
    channels = groups * draw(st.integers(1, max_channels // groups))
    filters = groups * draw(st.integers(1, max_channels // groups))
    kernel = draw(pairs(1, max_kernel))
    dilation = draw(ints_or_pairs(1, 2))
    padding = draw(st.integers(0, 2) | pairs(0, 2) | st.sampled_from(["valid", "same"]))
    stride = 1 if padding == "same" else draw(ints_or_pairs(1, 3))  # PyTorch allows 'same' with stride 1 only
    sides = []
    for span, (before, after) in zip(spans(kernel, dilation), explicit_padding(padding, kernel, dilation)):
        smallest = max(1, span - before - after)
        sides.append(draw(st.integers(smallest, max(smallest, max_side))))
    batch = draw(st.integers(1, max_batch))
    inputs = [draw(values((batch, channels, *sides))), draw(values((filters, channels // groups, *kernel)))]
    if draw(st.booleans()):
        inputs.append(draw(values((filters,))))
    return inputs, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


@settings(max_examples=150)
@given(conv_configs())
def test_conv2d_matches_reference(config):
    inputs, kwargs = config
    out = F.conv2d(*map(T, inputs), **kwargs)
    expected = conv2d_reference(*inputs, **kwargs)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-10)
    if kwargs["padding"] == "same":
        assert out.shape[-2:] == inputs[0].shape[-2:]


@settings(max_examples=60)
@given(conv_configs(max_batch=2, max_channels=2, max_side=5, max_kernel=3))
def test_conv2d_gradcheck(config):
    inputs, kwargs = config
    assert gradcheck(partial(F.conv2d, **kwargs), list(map(T, inputs)))


@settings(max_examples=25)
@given(conv_configs(max_batch=1, max_channels=2, max_side=5, max_kernel=3))
def test_conv2d_gradgradcheck(config):
    inputs, kwargs = config
    assert gradgradcheck(partial(F.conv2d, **kwargs), list(map(T, inputs)))


# ================================================================ pooling

def pool_windows(size, kernel, stride, padding, dilation, ceil_mode) -> list[list[int]]:
    """For each output position along one axis, the input coordinates its window covers (some
    negative or >= size where it lies on the padding or, in ceil_mode, hangs over the edge).
    PyTorch: out = floor-or-ceil((size + 2 * padding - span) / stride) + 1, and in ceil_mode the
    last window is dropped if it would start in the right padding."""
    span = dilation * (kernel - 1) + 1
    rounding = math.ceil if ceil_mode else math.floor
    out = rounding((size + 2 * padding - span) / stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return [[o * stride - padding + t * dilation for t in range(kernel)] for o in range(out)]


def pool_reference(x, kernel_size, stride, padding, dilation, ceil_mode, reduce_window):
    """reduce_window(values inside the input, rows, cols) for each window of each (n, c) image."""
    (kh, kw), (ph, pw), (dh, dw) = as_pair(kernel_size), as_pair(padding), as_pair(dilation)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    h, w = x.shape[-2:]
    row_windows = pool_windows(h, kh, sh, ph, dh, ceil_mode)
    col_windows = pool_windows(w, kw, sw, pw, dw, ceil_mode)
    out = np.zeros(x.shape[:2] + (len(row_windows), len(col_windows)))
    for n, c, i, j in np.ndindex(out.shape):
        rows, cols = row_windows[i], col_windows[j]
        inside = [x[n, c, r, q] for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
        out[n, c, i, j] = reduce_window(inside, rows, cols)
    return out


def max_pool2d_reference(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """The largest input value in each window (padding never wins: it is -inf)."""
    return pool_reference(x, kernel_size, stride, padding, dilation, ceil_mode,
                          lambda inside, rows, cols: max(inside, default=-np.inf))


def avg_pool2d_reference(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """The sum of the input values in each window divided by the number of taps on the input, or,
    with count_include_pad, on the input or its zero padding (the ceil_mode overhang never counts)."""
    (ph, pw), (h, w) = as_pair(padding), x.shape[-2:]

    def mean(inside, rows, cols):
        if not count_include_pad:
            return sum(inside) / len(inside)
        on_padded_input = [(r, q) for r in rows for q in cols if -ph <= r < h + ph and -pw <= q < w + pw]
        return sum(inside) / len(on_padded_input)

    return pool_reference(x, kernel_size, stride, padding, 1, ceil_mode, mean)


@st.composite
def pool_configs(draw, op, max_batch=2, max_channels=3, max_side=7, max_kernel=4, values=arrays):
    """(input (N, C, H, W), kwargs of max_pool2d or avg_pool2d) with padding <= kernel // 2 (as
    PyTorch requires) and the dilated kernel fitting the padded input."""
    kernel = draw(pairs(1, max_kernel))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = draw(pairs(1, 2)) if op == "max" else (1, 1)
    kwargs = {"kernel_size": loosely(kernel), "stride": draw(st.none() | ints_or_pairs(1, 3)),
              "padding": loosely(padding), "ceil_mode": draw(st.booleans())}
    if op == "max":
        kwargs["dilation"] = loosely(dilation)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
    sides = []
    for span, p in zip(spans(kernel, dilation), padding):
        smallest = max(1, span - 2 * p)
        sides.append(draw(st.integers(smallest, max(smallest, max_side))))
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), *sides)
    return draw(values(shape)), kwargs


POOLS = {"max": (F.max_pool2d, max_pool2d_reference), "avg": (F.avg_pool2d, avg_pool2d_reference)}


@pytest.mark.parametrize("op", POOLS)
@settings(max_examples=150)
@given(data=st.data())
def test_pool_matches_reference(op, data):
    x, kwargs = data.draw(pool_configs(op, max_batch=3, max_channels=4))
    pool, reference = POOLS[op]
    np.testing.assert_allclose(pool(T(x), **kwargs).detach().numpy(), reference(x, **kwargs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", POOLS)
@settings(max_examples=60)
@given(data=st.data())
def test_pool_gradcheck(op, data):
    x, kwargs = data.draw(pool_configs(op, values=distinct))
    pool = POOLS[op][0]
    # a dilated window can fall entirely on the padding: its -inf output has no derivative
    assume(np.isfinite(pool(T(x), **kwargs).detach().numpy()).all())
    assert gradcheck(partial(pool, **kwargs), [T(x)])


@pytest.mark.parametrize("op", POOLS)
@settings(max_examples=25)
@given(data=st.data())
def test_pool_gradgradcheck(op, data):
    x, kwargs = data.draw(pool_configs(op, max_channels=2, max_side=5, max_kernel=3, values=distinct))
    pool = POOLS[op][0]
    assume(np.isfinite(pool(T(x), **kwargs).detach().numpy()).all())
    assert gradgradcheck(partial(pool, **kwargs), [T(x)])


# ================================================================ softmax

def log_softmax_reference(x, dim):
    """x - log(sum(exp(x))), with NumPy's own stable log-sum-exp."""
    return x - np.logaddexp.reduce(x, axis=dim, keepdims=True)


@st.composite
def arrays_and_dims(draw, low=-10.0, high=10.0):
    """An array of 1 to 3 dims and one of its dims (possibly negative)."""
    shape = draw(shapes(min_dims=1, max_dims=3))
    return draw(arrays(shape, low, high)), draw(st.integers(-len(shape), len(shape) - 1))


@given(arrays_and_dims())
def test_softmax_is_a_distribution(x_dim):
    x, dim = x_dim
    probs = F.softmax(T(x), dim).detach().numpy()
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=dim), 1.0, rtol=1e-12)
    np.testing.assert_allclose(probs, np.exp(log_softmax_reference(x, dim)), rtol=1e-10, atol=1e-15)


@given(arrays_and_dims())
def test_log_softmax_matches_reference_and_log_of_softmax(x_dim):
    x, dim = x_dim
    logp = F.log_softmax(T(x), dim).detach().numpy()
    np.testing.assert_allclose(logp, log_softmax_reference(x, dim), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(logp, F.softmax(T(x), dim).log().detach().numpy(), rtol=1e-10, atol=1e-12)


@given(arrays_and_dims(low=-1e4, high=1e4), st.data())
def test_softmax_family_is_stable_for_huge_logits(x_dim, data):
    """exp(1e4) overflows; the values and the hand-derived VJPs must stay finite and right:
        d/dx <v, log_softmax(x)> = v - softmax(x) * sum(v)
        d/dx <v, softmax(x)>     = s * (v - sum(v * s)),  s = softmax(x)."""
    x, dim = x_dim
    v = data.draw(arrays(x.shape))
    s = np.exp(log_softmax_reference(x, dim))
    expected = {
        F.log_softmax: (log_softmax_reference(x, dim), v - s * v.sum(axis=dim, keepdims=True)),
        F.softmax: (s, s * (v - (v * s).sum(axis=dim, keepdims=True))),
    }
    for fn, (value, vjp) in expected.items():
        xt = T(x)
        out = fn(xt, dim)
        (gx,) = tg.grad(out, [xt], [Tensor(v)])
        assert np.isfinite(out.detach().numpy()).all() and np.isfinite(gx.numpy()).all()
        np.testing.assert_allclose(out.detach().numpy(), value, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gx.numpy(), vjp, rtol=1e-9, atol=1e-12)


# ================================================================ losses

def nll_reference(logp, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Per sample -sum_c q_c * logp_c with q the target distribution: one-hot of the class index
    (or the given probabilities), smoothed to (1 - e) * q + e / C. Samples whose target is
    ignore_index count for nothing, and 'mean' divides by the number kept (PyTorch's rules)."""
    class_dim = 0 if logp.ndim == 1 else 1
    logp = np.moveaxis(logp, class_dim, -1)
    classes = logp.shape[-1]
    if target.dtype.kind == "f":
        q, kept = np.moveaxis(target, class_dim, -1), np.ones(logp.shape[:-1], dtype=bool)
    else:
        kept = target != ignore_index
        q = np.eye(classes)[np.where(kept, target, 0)]
    q = (1 - label_smoothing) * q + label_smoothing / classes
    losses = np.where(kept, -(q * logp).sum(axis=-1), 0.0)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / kept.sum()


def cross_entropy_reference(logits, target, reduction="mean", label_smoothing=0.0, ignore_index=-100):
    return nll_reference(log_softmax_reference(logits, 0 if logits.ndim == 1 else 1), target,
                         reduction, ignore_index, label_smoothing)


TARGET_KINDS = st.sampled_from(["indices", "probabilities"])


@st.composite
def classification_configs(draw, targets=TARGET_KINDS, low=-5.0, high=5.0):
    """(logits, target, kwargs): logits (C,), (N, C) or (N, C, d) (the class dim is 1, or 0 when
    unbatched) with class-index targets (N,) / (N, d) (some equal to ignore_index) or class
    probabilities of the logits' shape; a reduction and a label smoothing."""
    classes = draw(st.integers(1, 5))
    batch_shape = draw(shapes(min_dims=0, max_dims=2, max_side=4))
    logits = draw(arrays(batch_shape[:1] + (classes,) + batch_shape[1:], low, high))
    kwargs = {"reduction": draw(st.sampled_from(["mean", "sum", "none"])),
              "label_smoothing": draw(st.just(0.0) | st.floats(0.0, 1.0))}
    if draw(targets) == "probabilities":
        return logits, draw(arrays(logits.shape, 0.0, 1.0)), kwargs
    kwargs["ignore_index"] = draw(st.just(-100) | st.integers(0, classes - 1))
    target = draw(hnp.arrays(np.int64, batch_shape,
                             elements=st.integers(0, classes - 1) | st.just(kwargs["ignore_index"])))
    # a mean over zero kept samples is 0/0 = NaN, as in PyTorch (test_losses_torch.py checks it): no value
    # for a reference or a finite difference to check
    assume(kwargs["reduction"] != "mean" or (target != kwargs["ignore_index"]).any())
    return logits, target, kwargs


@given(classification_configs())
def test_cross_entropy_matches_reference(config):
    logits, target, kwargs = config
    out = F.cross_entropy(T(logits), Tensor(target), **kwargs)
    np.testing.assert_allclose(out.detach().numpy(), cross_entropy_reference(logits, target, **kwargs),
                               rtol=1e-10, atol=1e-12)


@given(classification_configs(targets=st.just("indices")))
def test_nll_loss_matches_reference(config):
    logp, target, kwargs = config  # any numbers will do as log-probabilities
    del kwargs["label_smoothing"]
    out = F.nll_loss(T(logp), Tensor(target), **kwargs)
    np.testing.assert_allclose(out.detach().numpy(), nll_reference(logp, target, **kwargs), rtol=1e-10, atol=1e-12)


@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    arrays((n, 4), -5, 5), hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))))
def test_cross_entropy_gradient_is_softmax_minus_one_hot(logits_target):
    """d mean_i(-log softmax(x_i)[t_i]) / dx = (softmax(x) - one_hot(t)) / N."""
    logits, target = logits_target
    x = T(logits)
    F.cross_entropy(x, Tensor(target)).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), (softmax - np.eye(4)[target]) / len(target), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- gradcheck of the smooth functions

@st.composite
def softmax_calls(draw, fn):
    x, dim = draw(arrays_and_dims(-5.0, 5.0))
    return partial(fn, dim=dim), [T(x)]


@st.composite
def cross_entropy_calls(draw):
    """Probability targets are differentiable inputs too (as in PyTorch)."""
    logits, target, kwargs = draw(classification_configs())
    if target.dtype.kind == "f":
        return partial(F.cross_entropy, **kwargs), [T(logits), T(target)]
    return partial(F.cross_entropy, target=Tensor(target), **kwargs), [T(logits)]


@st.composite
def nll_loss_calls(draw):
    logp, target, kwargs = draw(classification_configs(targets=st.just("indices")))
    del kwargs["label_smoothing"]
    return partial(F.nll_loss, target=Tensor(target), **kwargs), [T(logp)]


@st.composite
def linear_calls(draw):
    """input (..., in) @ weight (out, in).T + bias (out,)"""
    lead = draw(shapes(min_dims=0, max_dims=2))
    n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    inputs = [draw(arrays(lead + (n_in,))), draw(arrays((n_out, n_in)))]
    if draw(st.booleans()):
        inputs.append(draw(arrays((n_out,))))
    return F.linear, list(map(T, inputs))


@st.composite
def elementwise_calls(draw, fn, kink=None):
    """fn on an array kept away from its kink (if any), so differences do not straddle it."""
    x = draw(arrays(shapes(), away_from=() if kink is None else (kink,)))
    return fn, [T(x)]


@st.composite
def mse_loss_calls(draw):
    shape = draw(shapes())
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return partial(F.mse_loss, reduction=reduction), [T(draw(arrays(shape))), T(draw(arrays(shape)))]


SMOOTH_CALLS = {
    "softmax": softmax_calls(F.softmax),
    "log_softmax": softmax_calls(F.log_softmax),
    "cross_entropy": cross_entropy_calls(),
    "nll_loss": nll_loss_calls(),
    "linear": linear_calls(),
    "leaky_relu": st.floats(0.0, 2.0).flatmap(
        lambda slope: elementwise_calls(partial(F.leaky_relu, negative_slope=slope), kink=0.0)),
    "relu": elementwise_calls(F.relu, kink=0.0),
    "tanh": elementwise_calls(F.tanh),
    "sigmoid": elementwise_calls(F.sigmoid),
    "mse_loss": mse_loss_calls(),
}


@pytest.mark.parametrize("calls", SMOOTH_CALLS.values(), ids=SMOOTH_CALLS.keys())
@pytest.mark.parametrize("check", [gradcheck, gradgradcheck], ids=["first order", "second order"])
@settings(max_examples=30)
@given(data=st.data())
def test_derivatives(calls, check, data):
    fn, inputs = data.draw(calls)
    assert check(fn, inputs)


# ================================================================ edge cases (hand-computed truths)

def test_conv2d_1x1_kernel_is_a_per_pixel_linear_map():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((6, 3, 1, 1)), rng.standard_normal(6)
    expected = np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]) + b[:, None, None]
    np.testing.assert_allclose(F.conv2d(T(x), T(w), T(b)).detach().numpy(), expected, rtol=1e-12)


def test_conv2d_windows_never_wrap_into_the_next_row():
    """A filter that picks the right-most tap sees only its own row, and the input gradient is the
    count of windows each pixel is in (none of them wrap around into the next image row)."""
    x = np.arange(2 * 1 * 4 * 5, dtype=np.float64).reshape(2, 1, 4, 5)
    w = np.zeros((1, 1, 2, 3))
    w[0, 0, 0, 2] = 1.0
    xt = T(x)
    out = F.conv2d(xt, T(w, requires_grad=False), stride=(1, 2))
    np.testing.assert_array_equal(out.detach().numpy(), x[:, :, 0:3, 2:5:2])
    out.sum().backward()
    expected = np.zeros_like(x)
    expected[:, :, 0:3, 2:5:2] = 1.0
    np.testing.assert_array_equal(xt.grad.numpy(), expected)


def test_conv_transpose_rejects_a_gradient_of_another_geometry():
    g, w = Tensor(np.zeros((1, 1, 3, 5))), Tensor(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"conv_transpose2d: gradient of shape \(1, 1, 3, 5\) does not fit"):
        tg.ops.ConvTranspose2d.apply(g, w, input_size=(4, 4), padding=(0, 0, 0, 0), stride=(1, 1),
                                     dilation=(1, 1), groups=1)


@pytest.mark.parametrize("out_channels", [2, 12], ids=["wide weight gradient", "tall weight gradient"])
def test_conv2d_weight_gradient_sums_the_batch_in_either_orientation(out_channels):
    """Conv2dWeightGrad computes its product with the wider side first, transposed when the filters
    outnumber the taps: both orientations must give the per-sample sum (hand-written einsum)."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((out_channels, 2, 2, 2))
    g = rng.standard_normal((3, out_channels, 3, 3))
    wt = T(w)
    F.conv2d(T(x, requires_grad=False), wt).backward(Tensor(g))
    windows = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(2, 3))  # (N, C, 3, 3, 2, 2)
    np.testing.assert_allclose(wt.grad.numpy(), np.einsum("nopq,ncpqij->ocij", g, windows), rtol=1e-12)


@pytest.mark.parametrize("channels, filters, kernel, groups, stride", [
    (16, 32, 3, 1, 1), (16, 32, 3, 2, 2), (2, 6, 5, 1, 1)], ids=["whole filters", "groups, stride 2", "by row"])
def test_conv2d_of_large_shapes_matches_the_windows_and_its_adjoints(channels, filters, kernel, groups, stride):
    """Shapes large enough for the paths small examples never take: im2col columns made in several
    blocks of output rows (the last one shorter), filter matrices multiplied whole (over 1,024
    numbers) or by output row, a transposed convolution in several blocks, and a batch (61) that
    is no multiple of the images copied at a time. Forward against NumPy's sliding windows; the
    gradients by the adjoint identities of a bilinear map: <conv(x, w), g> = <x, dL/dx> = <w, dL/dw>
    (float64)."""
    rng = np.random.default_rng(groups + kernel)
    x, w = rng.standard_normal((61, channels, 20, 20)), rng.standard_normal((filters, channels // groups, kernel, kernel))
    xt, wt = T(x), T(w)
    out = F.conv2d(xt, wt, stride=stride, padding=1, groups=groups)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (kernel, kernel),
                                                       axis=(2, 3))[:, :, ::stride, ::stride]
    by_group = windows.reshape(61, groups, channels // groups, *windows.shape[2:])  # (N, G, C/G, OH, OW, KH, KW)
    expected = np.einsum("ngcpqij,gocij->ngopq", by_group, w.reshape(groups, filters // groups, *w.shape[1:]))
    np.testing.assert_allclose(out.detach().numpy(), expected.reshape(out.shape), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    out.backward(Tensor(g))
    pairing = np.vdot(out.detach().numpy(), g)
    assert np.vdot(x, xt.grad.numpy()) == pytest.approx(pairing, rel=1e-10)
    assert np.vdot(w, wt.grad.numpy()) == pytest.approx(pairing, rel=1e-10)


def test_conv2d_never_holds_its_whole_im2col_columns():
    """The columns of a 5 x 5 convolution are 25 times its input; made a block at a time, a whole
    forward and backward pass allocates at most half that at once (measured with tracemalloc,
    which sees NumPy's allocations; keeping the columns whole peaked at 31 times the input)."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 16, 32, 32)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((16, 16, 5, 5)).astype(np.float32), requires_grad=True)
    g = Tensor(rng.standard_normal((32, 16, 32, 32)).astype(np.float32))
    tracemalloc.start()
    try:
        F.conv2d(x, w, padding=2).backward(g)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.grad is not None and w.grad is not None
    assert peak < 12.5 * x.detach().numpy().nbytes, f"peak {peak / x.detach().numpy().nbytes:.1f} times the input"


def test_stride_larger_than_kernel_skips_pixels():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 7, 8)), rng.standard_normal((3, 2, 1, 1))
    np.testing.assert_allclose(F.conv2d(T(x), T(w), stride=(2, 3)).detach().numpy(),
                               np.einsum("nchw,oc->nohw", x[..., ::2, ::3], w[:, :, 0, 0]), rtol=1e-12)
    np.testing.assert_array_equal(F.max_pool2d(T(x), 1, stride=(3, 2)).detach().numpy(), x[..., ::3, ::2])
    # 2x2 windows 3 apart: rows {0,1}, {3,4} and cols {0,1}, {3,4}, {6,7}
    block_means = np.stack([np.stack([x[..., 3 * i:3 * i + 2, 3 * j:3 * j + 2].mean(axis=(-2, -1))
                                      for j in range(3)], axis=-1) for i in range(2)], axis=-2)
    np.testing.assert_allclose(F.avg_pool2d(T(x), 2, stride=3).detach().numpy(), block_means, rtol=1e-12)


def test_kernel_as_large_as_the_padded_input_gives_one_output():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((3, 2, 5, 6))
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = F.conv2d(T(x), T(w), padding=1)
    np.testing.assert_allclose(out.detach().numpy(), np.einsum("nchw,ochw->no", xpad, w)[..., None, None], rtol=1e-12)
    assert gradcheck(partial(F.conv2d, padding=1), [T(x), T(w)])
    np.testing.assert_array_equal(F.max_pool2d(T(x), (3, 4)).detach().numpy(), x.max(axis=(2, 3), keepdims=True))
    np.testing.assert_allclose(F.avg_pool2d(T(x), (3, 4)).detach().numpy(), x.mean(axis=(2, 3), keepdims=True),
                               rtol=1e-12)
    # a 4x4 window on a 1x1 image padded by 2 on each side: one window, 16 taps, one of them real
    pixel = np.array([[[[3.0]]]])
    assert F.avg_pool2d(T(pixel), 4, padding=2).item() == pytest.approx(3.0 / 16)
    assert F.avg_pool2d(T(pixel), 4, padding=2, count_include_pad=False).item() == pytest.approx(3.0)


UNBATCHED = {
    "conv2d": lambda x: F.conv2d(x, Tensor(np.arange(24.0).reshape(4, 2, 3, 1) / 10), padding=(1, 0), stride=(2, 1)),
    "max_pool2d": lambda x: F.max_pool2d(x, (2, 3), stride=1, padding=1),
    "avg_pool2d": lambda x: F.avg_pool2d(x, (3, 2), ceil_mode=True, count_include_pad=False),
}


@pytest.mark.parametrize("fn", UNBATCHED.values(), ids=UNBATCHED.keys())
def test_a_batch_of_no_images_gives_empty_outputs_and_zero_weight_gradients(fn):
    """As PyTorch: N = 0 flows through forward and backward; the weight and bias gradients are
    sums over no images, so zero (the transposed convolution once divided by the batch size)."""
    x = T(np.zeros((0, 2, 5, 6)))
    w, b = T(np.ones((2, 2, 3, 3))), T(np.ones(2))
    out = fn(F.conv2d(x, w, b, padding=1))
    assert out.shape[0] == 0
    out.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(w.shape))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(2))


@pytest.mark.parametrize("fn", UNBATCHED.values(), ids=UNBATCHED.keys())
def test_unbatched_input_is_a_batch_of_one(fn):
    """(C, H, W) gives the same values and gradient as the (1, C, H, W) batch."""
    x = np.random.default_rng(3).permutation(2 * 5 * 6).reshape(2, 5, 6) / 7.0  # distinct values
    single, batch = T(x), T(x[None])
    out_single, out_batch = fn(single), fn(batch)
    assert out_single.shape == out_batch.shape[1:]
    np.testing.assert_array_equal(out_single.detach().numpy(), out_batch.detach().numpy()[0])
    g = np.random.default_rng(4).standard_normal(out_single.shape)
    out_single.backward(Tensor(g))
    out_batch.backward(Tensor(g[None]))
    assert single.grad.shape == x.shape
    np.testing.assert_array_equal(single.grad.numpy(), batch.grad.numpy()[0])


def test_max_pool_ties_send_the_gradient_to_the_first_max_in_row_major_order():
    x = T([[[[1, 1, 0],
             [1, 1, 2],
             [0, 2, 2]]]])
    # 2x2 windows, stride 1; the first maximum of each (row-major):
    #   top-left {1,1,1,1} -> (0,0)     top-right {1,0,1,2} -> (1,2)
    #   bottom-left {1,1,0,2} -> (2,1)  bottom-right {1,2,2,2} -> (1,2)
    out = F.max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(out.detach().numpy(), [[[[1, 2], [2, 2]]]])
    out.backward(Tensor(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])))
    np.testing.assert_array_equal(x.grad.numpy(), [[[[1, 0, 0],
                                                    [0, 0, 1010],
                                                    [0, 100, 0]]]])


def test_max_pool_with_a_window_of_more_than_127_taps():
    """A 12x13 window (156 offsets, more than an int8 numbers) over the whole image: the global
    max, and its gradient at the first of the two tied maxima."""
    x = np.zeros((1, 1, 12, 13))
    x[0, 0, 7, 2] = x[0, 0, 9, 11] = 1.0
    xt = T(x)
    out = F.max_pool2d(xt, (12, 13))
    assert out.item() == 1.0
    out.backward(Tensor(np.array([[[[5.0]]]])))
    expected = np.zeros_like(x)
    expected[0, 0, 7, 2] = 5.0
    np.testing.assert_array_equal(xt.grad.numpy(), expected)


def test_max_pool_of_a_window_zeroed_by_relu():
    """All-negative window: relu makes it all zeros, the pool's gradient goes to the window's
    first zero, and relu's zero slope there stops it."""
    x = T([[[[-1, -2, 3, 1],
             [-3, -4, 2, 5]]]])
    y = F.relu(x)
    y.retain_grad()
    out = F.max_pool2d(y, 2)
    np.testing.assert_array_equal(out.detach().numpy(), [[[[0, 5]]]])
    out.backward(Tensor(np.array([[[[7.0, 11.0]]]])))
    np.testing.assert_array_equal(y.grad.numpy(), [[[[7, 0, 0, 0], [0, 0, 0, 11]]]])
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0, 0, 0, 0], [0, 0, 0, 11]]]])


# the functions PyTorch also offers as Tensor methods
METHODS = {
    "softmax": ((1,), {}),
    "log_softmax": ((-1,), {}),
    "relu": ((), {}),
    "sigmoid": ((), {}),
    "tanh": ((), {}),
    "flatten": ((1,), {}),
}


@pytest.mark.parametrize("name", METHODS)
def test_tensor_methods_are_the_functions(name):
    x = np.random.default_rng(5).standard_normal((2, 1, 3, 4))
    args, kwargs = METHODS[name]
    args = [T(a) if isinstance(a, np.ndarray) else a for a in args]
    np.testing.assert_array_equal(getattr(T(x), name)(*args, **kwargs).detach().numpy(),
                                  getattr(F, name)(T(x), *args, **kwargs).detach().numpy())


FLOAT32_CALLS = {
    "conv2d": lambda x: F.conv2d(x, Tensor(np.ones((2, 3, 3, 3), dtype=np.float32)), padding="same"),
    "max_pool2d": lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    "log_softmax": lambda x: F.log_softmax(x, 1),
    "cross_entropy": lambda x: F.cross_entropy(x.flatten(1), Tensor(np.array([0, 5]))),
    "dropout": lambda x: F.dropout(x, 0.3),
}


@pytest.mark.parametrize("fn", FLOAT32_CALLS.values(), ids=FLOAT32_CALLS.keys())
def test_float32_stays_float32(fn):
    """PyTorch's default dtype: values and gradients must not be promoted to float64."""
    x = Tensor(np.random.default_rng(8).standard_normal((2, 3, 5, 6)).astype(np.float32), requires_grad=True)
    out = fn(x)
    out.backward(Tensor(np.ones(out.shape, dtype=np.float32)))
    assert out.dtype == np.float32 and x.grad.dtype == np.float32


# ================================================================ dropout

@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True), (1.0, False)])
def test_dropout_is_the_identity_when_not_training_or_p_is_0(p, training):
    x = T(np.random.default_rng(6).standard_normal((3, 4)))
    out = F.dropout(x, p, training=training)
    np.testing.assert_array_equal(out.detach().numpy(), x.detach().numpy())
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4)))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_about_1_minus_p_and_rescales_them(p):
    n = 40_000
    tg.manual_seed(0)
    x = T(np.random.default_rng(7).uniform(1.0, 2.0, n))  # never 0, so a dropped element is visible
    out = F.dropout(x, p, training=True)
    kept = out.detach().numpy() != 0
    # the kept count is Binomial(n, 1 - p): within 5 standard deviations
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out.detach().numpy()[kept], x.detach().numpy()[kept] / (1 - p), rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-12)


def test_dropout_with_p_1_drops_everything():
    assert not F.dropout(T(np.ones(100)), 1.0).detach().numpy().any()


def test_manual_seed_makes_dropout_reproducible():
    def masks(seed):
        tg.manual_seed(seed)
        return F.dropout(T(np.ones(1000)), 0.5).detach().numpy()

    np.testing.assert_array_equal(masks(42), masks(42))
    assert (masks(42) != masks(43)).any()


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        F.dropout(T(np.ones(3)), p)


# ================================================================ errors

def _ones(*shape):
    return Tensor(np.ones(shape))


ERRORS = {
    "conv channels": (lambda: F.conv2d(_ones(1, 3, 5, 5), _ones(2, 2, 3, 3)), ValueError,
                      r"3 channels.*weight expects 2.*" + re.escape("(1, 3, 5, 5)") + ".*" + re.escape("(2, 2, 3, 3)")),
    "conv groups": (lambda: F.conv2d(_ones(1, 3, 5, 5), _ones(2, 1, 3, 3), groups=2), ValueError,
                    r"groups=2 must divide.*channels \(3\)"),
    "conv kernel too big": (lambda: F.conv2d(_ones(1, 1, 3, 3), _ones(1, 1, 4, 2)), ValueError,
                            r"kernel spans 4x2.*padded input is only 3x3"),
    "conv dilated kernel too big": (lambda: F.conv2d(_ones(1, 1, 4, 4), _ones(1, 1, 3, 3), padding=(1, 0), dilation=2),
                                    ValueError, r"kernel spans 5x5.*padded input is only 6x4"),
    "conv same stride": (lambda: F.conv2d(_ones(1, 1, 5, 5), _ones(1, 1, 3, 3), padding="same", stride=2), ValueError,
                         r"'same' needs stride 1"),
    "conv 2-D input": (lambda: F.conv2d(_ones(5, 5), _ones(1, 1, 3, 3)), ValueError,
                       r"expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(5, 5\)"),
    "conv 3-D weight": (lambda: F.conv2d(_ones(1, 1, 5, 5), _ones(1, 3, 3)), ValueError,
                        r"weight must have shape \(O, C/groups, KH, KW\), got \(1, 3, 3\)"),
    "conv bias": (lambda: F.conv2d(_ones(1, 1, 5, 5), _ones(2, 1, 3, 3), _ones(3)), ValueError,
                  r"bias must have shape \(2,\), got \(3,\)"),
    "conv padding string": (lambda: F.conv2d(_ones(1, 1, 5, 5), _ones(1, 1, 3, 3), padding="full"), ValueError,
                            r"padding must be 'valid', 'same'"),
    "max pool padding": (lambda: F.max_pool2d(_ones(1, 1, 5, 5), 3, padding=2), ValueError,
                         r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"),
    "avg pool padding": (lambda: F.avg_pool2d(_ones(1, 1, 5, 5), (4, 2), padding=(1, 2)), ValueError,
                         r"padding \(1, 2\) must be at most half the kernel size \(4, 2\)"),
    "max pool kernel too big": (lambda: F.max_pool2d(_ones(1, 1, 3, 5), 4), ValueError,
                                r"kernel spans 4.*padded input is only 3"),
    "avg pool kernel too big": (lambda: F.avg_pool2d(_ones(2, 5, 3), (6, 2), padding=(0, 1)), ValueError,
                                r"kernel spans 6.*padded input is only 5"),
    "pool 2-D input": (lambda: F.max_pool2d(_ones(4, 4), 2), ValueError, r"expected input of shape"),
    "ce target too large": (lambda: F.cross_entropy(_ones(2, 3), Tensor(np.array([0, 3]))), IndexError,
                            r"target 3 is out of range for 3 classes"),
    "ce target negative": (lambda: F.cross_entropy(_ones(2, 3), Tensor(np.array([-1, 0]))), IndexError,
                           r"target -1 is out of range for 3 classes"),
    "nll target too large": (lambda: F.nll_loss(_ones(3), Tensor(np.array(5))), IndexError,
                             r"target 5 is out of range for 3 classes"),
    "ce probabilities shape": (lambda: F.cross_entropy(_ones(2, 3), _ones(2, 4)), ValueError,
                               r"probability targets must have the input's shape \(2, 3\), got \(2, 4\)"),
    "ce target shape": (lambda: F.cross_entropy(_ones(2, 3), Tensor(np.array([0, 1, 2]))), ValueError,
                        r"target of shape \(3,\) does not fit input of shape \(2, 3\)"),
    "ce reduction": (lambda: F.cross_entropy(_ones(2, 3), Tensor(np.array([0, 1])), reduction="avg"), ValueError,
                     r"reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    "ce label smoothing": (lambda: F.cross_entropy(_ones(2, 3), Tensor(np.array([0, 1])), label_smoothing=1.5),
                           ValueError, r"label_smoothing must be in \[0, 1\]"),
    "linear shapes": (lambda: F.linear(_ones(2, 3), _ones(4, 5)), ValueError,
                      r"input of shape \(2, 3\) does not fit weight of shape \(4, 5\)"),
    "linear bias": (lambda: F.linear(_ones(2, 3), _ones(4, 3), _ones(3)), ValueError, r"bias must have shape \(4,\)"),
    "mse shapes": (lambda: F.mse_loss(_ones(2, 3), _ones(3, 2)), ValueError,
                   r"input \(2, 3\) and target \(3, 2\) must have the same shape"),
    "mse reduction": (lambda: F.mse_loss(_ones(2), _ones(2), reduction="max"), ValueError, r"reduction must be"),
}


@pytest.mark.parametrize("call, error, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


GEOMETRY = {"padding": (0, 0, 0, 0), "stride": (1, 1), "dilation": (1, 1)}
PRIMITIVE_ERRORS = {
    "Conv2d channels": (lambda: tg.ops.Conv2d.apply(_ones(1, 3, 5, 5), _ones(2, 2, 3, 3), groups=1, **GEOMETRY),
                        r"conv2d: input of shape \(1, 3, 5, 5\) and weight of shape \(2, 2, 3, 3\) "
                        r"do not fit groups=1"),
    "Conv2d groups": (lambda: tg.ops.Conv2d.apply(_ones(1, 4, 5, 5), _ones(3, 2, 3, 3), groups=2, **GEOMETRY),
                      r"conv2d: input of shape \(1, 4, 5, 5\) and weight of shape \(3, 2, 3, 3\) do not fit groups=2"),
    "Conv2d bias": (lambda: tg.ops.Conv2d.apply(_ones(1, 2, 5, 5), _ones(3, 2, 3, 3), _ones(2), groups=1, **GEOMETRY),
                    r"conv2d: bias must have shape \(3,\) for weight of shape \(3, 2, 3, 3\), got \(2,\)"),
    "Conv2d kernel": (lambda: tg.ops.Conv2d.apply(_ones(1, 2, 2, 2), _ones(3, 2, 3, 3), groups=1, **GEOMETRY),
                      r"conv2d: kernel \(3, 3\) \(dilation \(1, 1\)\) is larger than the input "
                      r"of shape \(1, 2, 2, 2\)"),
    "ConvTranspose2d channels": (
        lambda: tg.ops.ConvTranspose2d.apply(_ones(1, 4, 3, 3), _ones(3, 2, 3, 3), input_size=(5, 5), groups=1,
                                             **GEOMETRY),
        r"conv_transpose2d: gradient of shape \(1, 4, 3, 3\) does not fit input of shape \(1, 2, 5, 5\) and weight "
        r"of shape \(3, 2, 3, 3\) \(expected \(1, 3, 3, 3\)\)"),
    "Conv2dWeightGrad batch": (
        lambda: tg.ops.Conv2dWeightGrad.apply(_ones(2, 2, 5, 5), _ones(1, 3, 3, 3), kernel_size=(3, 3), groups=1,
                                              **GEOMETRY),
        r"conv2d_weight_grad: gradient of shape \(1, 3, 3, 3\) does not fit input of shape \(2, 2, 5, 5\) and weight "
        r"of shape \(3, 2, 3, 3\) \(expected \(2, 3, 3, 3\)\)"),
    "Conv2dWeightGrad groups": (
        lambda: tg.ops.Conv2dWeightGrad.apply(_ones(1, 3, 5, 5), _ones(1, 4, 3, 3), kernel_size=(3, 3), groups=2,
                                              **GEOMETRY),
        r"conv2d_weight_grad: input of shape \(1, 3, 5, 5\) and weight of shape \(4, 1, 3, 3\) do not fit groups=2"),
}


@pytest.mark.parametrize("call, message", PRIMITIVE_ERRORS.values(), ids=PRIMITIVE_ERRORS.keys())
def test_conv_primitives_name_the_shapes_that_do_not_fit(call, message):
    """The primitives are public (tinygrad_cnn.ops): called directly with shapes that do not fit
    one convolution, they say so instead of failing inside NumPy."""
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("op", [tg.ops.Conv2d, tg.ops.Conv2dWeightGrad])
def test_conv_primitives_name_themselves_for_an_input_without_channels(op):
    name = "conv2d" if op is tg.ops.Conv2d else "conv2d_weight_grad"
    kwargs = {} if op is tg.ops.Conv2d else {"kernel_size": (2, 2)}
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, C, H, W\), got \(4, 4\)"):
        op.apply(Tensor(np.zeros((4, 4))), Tensor(np.zeros((1, 1, 2, 2))), padding=(0, 0, 0, 0), stride=(1, 1),
                 dilation=(1, 1), groups=1, **kwargs)
