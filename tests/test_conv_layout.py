"""Memory layout is invisible in the values: the convolution ops keep their results batch-innermost
in memory (ops/conv.py), pooling and elementwise ops keep their input's order, and any input
order gives the same numbers and gradients as a C-contiguous array."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import Tensor
from tinygrad_cnn import functional as F

ORDERS = list(itertools.permutations(range(4)))  # every memory order of a 4-D array


def laid_out(a: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The values of `a` in an array whose dims lie in memory in `order` (outermost first)."""
    return np.ascontiguousarray(a.transpose(order)).transpose(np.argsort(order))


def batch_innermost(a: np.ndarray) -> bool:
    return a.strides[0] == a.itemsize and a.transpose(1, 2, 3, 0).flags.c_contiguous


LAYERS = {
    "conv2d": lambda x, w: F.conv2d(x, w, padding=1),
    "conv2d stride 2, groups 2": lambda x, w: F.conv2d(x, w[:, :2], stride=2, groups=2),
    "max_pool2d": lambda x, w: F.max_pool2d(x, 2),
    "avg_pool2d": lambda x, w: F.avg_pool2d(x, 3, stride=1, padding=1),
    "conv, relu, pool, conv": lambda x, w: F.conv2d(F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2), w),
}


@pytest.mark.parametrize("layer", LAYERS)
@settings(max_examples=24, deadline=None)
@given(order=st.sampled_from(ORDERS), grad_order=st.sampled_from(ORDERS), seed=st.integers(0, 2**16))
def test_any_input_layout_gives_the_same_values_and_gradients(layer, order, grad_order, seed):
    """Inputs and upstream gradients in each of the 24 memory orders, against C-contiguous ones
    (float64: the two must agree to rounding)."""
    rng = np.random.default_rng(seed)
    x_np, w_np = rng.standard_normal((3, 4, 6, 6)), rng.standard_normal((4, 4, 3, 3))
    results = []
    for x_order in ((0, 1, 2, 3), order):
        x, w = Tensor(laid_out(x_np, x_order), requires_grad=True), Tensor(w_np, requires_grad=True)
        out = LAYERS[layer](x, w)
        g = np.random.default_rng(seed + 1).standard_normal(out.shape)
        out.backward(Tensor(laid_out(g, grad_order if x_order == order else (0, 1, 2, 3))))
        results.append((out.detach().numpy(), x.grad.numpy(), w.grad.numpy() if w.grad is not None else None))
    (out_a, dx_a, dw_a), (out_b, dx_b, dw_b) = results
    np.testing.assert_allclose(out_b, out_a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_b, dx_a, rtol=1e-12, atol=1e-12)
    if dw_a is not None:
        np.testing.assert_allclose(dw_b, dw_a, rtol=1e-12, atol=1e-12)


def test_a_convolution_hands_its_batch_innermost_layout_on_through_relu_and_pooling():
    """The layout the speed depends on: conv2d's output lies (C, H, W, N) in memory, ReLU and
    max pooling keep that order, and so does the gradient max pooling sends back even when the
    gradient reaching it (here through flatten) is C-contiguous."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 1, 12, 12)).astype(np.float32))
    w = Tensor(rng.standard_normal((6, 1, 5, 5)).astype(np.float32), requires_grad=True)
    conv = F.conv2d(x, w, padding=2)
    relu = F.relu(conv)
    pooled = F.max_pool2d(relu, 2)
    assert conv.shape == (8, 6, 12, 12) and all(batch_innermost(t.detach().numpy()) for t in (conv, relu, pooled))
    seen = []
    relu.register_hook(lambda g: seen.append(g.numpy()))
    pooled.flatten(1).sum().backward()
    assert len(seen) == 1 and batch_innermost(seen[0])
