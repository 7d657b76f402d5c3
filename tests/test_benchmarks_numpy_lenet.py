"""The hand-written NumPy LeNet-5 of benchmarks/ computes what tinygrad_cnn computes, so the
benchmark that times one against the other compares equal work and its baseline is known-correct."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn import functional as F
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.optim import SGD

from benchmark_modules import load

numpy_lenet = load("numpy_lenet")


def model_and_batch(seed: int, batch: int) -> tuple[LeNet5, np.ndarray, np.ndarray]:
    """A float64 LeNet-5 with PyTorch's default initialisation and a batch of digits-sized inputs."""
    tg.manual_seed(seed)
    model = LeNet5().double()
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((batch, 1, 28, 28)), rng.integers(0, 10, batch)


def weights_of(model: LeNet5) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("seed, batch", [(0, 1), (1, 7), (2, 32)])
def test_loss_and_gradients_equal_tinygrad_cnn(seed, batch):
    model, x, y = model_and_batch(seed, batch)
    loss = F.cross_entropy(model(Tensor(x)), Tensor(y))
    loss.backward()

    hand_loss, grads = numpy_lenet.forward_backward(weights_of(model), x, y)

    assert hand_loss == pytest.approx(loss.item(), rel=1e-12)
    assert set(grads) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        assert grads[name].shape == p.shape
        assert grads[name].dtype == np.float64
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_train_steps_follow_tinygrad_cnn_sgd():
    """Three SGD steps on three batches leave both with the same weights."""
    model, _, _ = model_and_batch(3, 16)
    optimizer = SGD(model.parameters(), lr=0.1)
    params = weights_of(model)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x, y = rng.standard_normal((16, 1, 28, 28)), rng.integers(0, 10, 16)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), Tensor(y))
        loss.backward()
        optimizer.step()
        assert numpy_lenet.train_step(params, x, y, lr=0.1) == pytest.approx(loss.item(), rel=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(params[name], p.detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), c> == <x, col2im(c)> for every x and c: the backward of the copy is its transpose."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 9, 8, 2))
    c = rng.standard_normal((3 * 4 * 3, 6 * 6 * 2))
    assert np.vdot(numpy_lenet.im2col(x, 4, 3), c) == pytest.approx(np.vdot(x, numpy_lenet.col2im(c, x.shape, 4, 3)))


def test_max_pool_sends_the_gradient_to_the_first_maximum_of_a_tie():
    """One channel, one sample: windows of four equal values, and of two tied maxima."""
    image = np.array([[1.0, 1.0, 0.0, 2.0],
                      [1.0, 1.0, 2.0, 0.0]])
    out, masks = numpy_lenet.max_pool_2x2(image[None, :, :, None])
    np.testing.assert_array_equal(out[0, :, :, 0], [[1.0, 2.0]])
    dx = numpy_lenet.max_pool_2x2_backward(np.array([[[[5.0], [7.0]]]]), masks)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[5.0, 0.0, 0.0, 7.0],
                                                   [0.0, 0.0, 0.0, 0.0]])
