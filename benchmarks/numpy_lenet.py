"""A LeNet-5 training step written by hand in NumPy: the baseline a framework on NumPy is measured by.

No autodiff and no framework: the forward pass keeps what the backward pass needs, and the
backward pass is the chain rule written out layer by layer. It is tuned as one would tune it by
hand, free of PyTorch's (N, C, H, W) convention:

- Activations are stored as (C, H, W, N): the batch is the innermost, contiguous dim. Each
  convolution is then ONE matrix product (O, C*KH*KW) @ (C*KH*KW, OH*OW*N) whose result is already
  the next layer's (C, H, W, N) input, its weight gradient is one product too, and the flattened
  (400, N) features are a free reshape. No per-sample loop, no transpose between layers.
- im2col copies a strided view once, in runs of OW*N contiguous numbers; its adjoint (col2im)
  adds the KH*KW kernel offsets back with slices: a loop over offsets, never over pixels.
- 2x2 max pooling reads the four offsets as strided slices; the backward writes each offset's
  slice once (no zero fill), the gradient going to the first maximum in row-major order, as
  PyTorch does.
- ReLU, the bias additions and the SGD update work in place.

Parameters are a dict of arrays named as in `tinygrad_cnn.models.LeNet5` (conv1.weight, ...),
so the same weights can be loaded into both. Everything follows the parameters' dtype.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

Params = dict[str, np.ndarray]


def im2col(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """(C, H, W, N) -> (C*KH*KW, OH*OW*N): row (c, i, j) holds what kernel tap (i, j) of channel c
    sees at every output position (stride 1, no padding)."""
    c, h, w, n = x.shape
    oh, ow = h - kh + 1, w - kw + 1
    sc, sh, sw, sn = x.strides
    windows = as_strided(x, (c, kh, kw, oh, ow, n), (sc, sh, sw, sh, sw, sn), writeable=False)
    return windows.reshape(c * kh * kw, oh * ow * n)  # the reshape makes the one copy


def col2im(cols: np.ndarray, shape: tuple[int, int, int, int], kh: int, kw: int) -> np.ndarray:
    """The adjoint of im2col: (C*KH*KW, OH*OW*N) -> (C, H, W, N), overlapping windows adding up."""
    c, h, w, n = shape
    oh, ow = h - kh + 1, w - kw + 1
    cols = cols.reshape(c, kh, kw, oh, ow, n)
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, i:i + oh, j:j + ow] += cols[:, i, j]
    return out


def _corners(x: np.ndarray) -> list[np.ndarray]:
    """The four taps of 2x2 windows with stride 2 over (C, H, W, N), as strided views, row-major."""
    return [x[:, i::2, j::2] for i in (0, 1) for j in (0, 1)]


def max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(C, H, W, N) -> (C, H/2, W/2, N), and for each tap a mask of the windows it wins."""
    corners = _corners(x)
    out = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    masks, free = [], np.ones(out.shape, dtype=bool)
    for corner in corners[:-1]:
        won = (corner == out) & free  # ties go to the first maximum
        free &= ~won
        masks.append(won)
    masks.append(free)
    return out, masks


def max_pool_2x2_backward(g: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """The gradient of max_pool_2x2: each window's g sent to its winning tap."""
    c, oh, ow, n = g.shape
    dx = np.empty((c, 2 * oh, 2 * ow, n), dtype=g.dtype)
    for corner, mask in zip(_corners(dx), masks):
        np.multiply(g, mask, out=corner)  # every element of dx lies in exactly one window
    return dx


def _conv_relu(p: Params, layer: str, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """relu(conv(x) + bias) for x (C, H, W, N): the activation (O, OH*OW*N) and the im2col columns."""
    weight = p[layer + ".weight"]
    cols = im2col(x, k, k)
    a = weight.reshape(weight.shape[0], -1) @ cols
    a += p[layer + ".bias"][:, None]
    np.maximum(a, 0, out=a)
    return a, cols


def _linear(p: Params, layer: str, x: np.ndarray, relu: bool) -> np.ndarray:
    """weight @ x + bias for features x (in, N), with ReLU in place if asked."""
    a = p[layer + ".weight"] @ x
    a += p[layer + ".bias"][:, None]
    return np.maximum(a, 0, out=a) if relu else a


def forward_backward(params: Params, x: np.ndarray, target: np.ndarray) -> tuple[float, Params]:
    """Mean cross-entropy of LeNet-5 on x (N, 1, 28, 28) with integer targets (N,), and its
    gradient with respect to every parameter (arrays shaped as the parameters)."""
    p, n = params, x.shape[0]

    # conv1 (6@5x5, padding 2) -> ReLU -> 2x2 max pool, in (C, H, W, N)
    padded = np.zeros((1, 32, 32, n), dtype=p["conv1.weight"].dtype)
    padded[0, 2:30, 2:30] = x[:, 0].transpose(1, 2, 0)
    a1, cols1 = _conv_relu(p, "conv1", padded, 5)                        # (6, 28*28*N)
    p1, masks1 = max_pool_2x2(a1.reshape(6, 28, 28, n))                  # (6, 14, 14, N)
    # conv2 (16@5x5) -> ReLU -> pool; the (16, 5, 5, N) result flattens to PyTorch's (C, H, W) order
    a2, cols2 = _conv_relu(p, "conv2", p1, 5)                            # (16, 10*10*N)
    p2, masks2 = max_pool_2x2(a2.reshape(16, 10, 10, n))
    flat = p2.reshape(400, n)
    h1 = _linear(p, "fc1", flat, relu=True)
    h2 = _linear(p, "fc2", h1, relu=True)
    logits = _linear(p, "fc3", h2, relu=False)                           # (10, N)

    # loss = mean(logsumexp(z) - z[target]); dL/dz = (softmax(z) - one_hot(target)) / N
    shifted = logits - logits.max(axis=0)
    exp = np.exp(shifted)
    total = exp.sum(axis=0)
    samples = np.arange(n)
    loss = float(np.mean(np.log(total) - shifted[target, samples]))
    d = exp / total
    d[target, samples] -= 1
    d /= n

    grads: Params = {}
    for layer, inputs in (("fc3", h2), ("fc2", h1), ("fc1", flat)):
        grads[layer + ".weight"], grads[layer + ".bias"] = d @ inputs.T, d.sum(axis=1)
        d = p[layer + ".weight"].T @ d
        if layer != "fc1":
            d *= inputs > 0  # ReLU: its output is positive exactly where its input was

    d = max_pool_2x2_backward(d.reshape(16, 5, 5, n), masks2).reshape(16, -1)
    d *= a2 > 0
    grads["conv2.weight"] = (d @ cols2.T).reshape(p["conv2.weight"].shape)
    grads["conv2.bias"] = d.sum(axis=1)
    d = col2im(p["conv2.weight"].reshape(16, 150).T @ d, (6, 14, 14, n), 5, 5)

    d = max_pool_2x2_backward(d, masks1).reshape(6, -1)
    d *= a1 > 0
    grads["conv1.weight"] = (d @ cols1.T).reshape(p["conv1.weight"].shape)
    grads["conv1.bias"] = d.sum(axis=1)
    return loss, grads


def sgd_step(params: Params, grads: Params, lr: float) -> None:
    """p -= lr * grad, in place (plain SGD: no momentum, no weight decay)."""
    for name, g in grads.items():
        g *= lr
        params[name] -= g


def train_step(params: Params, x: np.ndarray, target: np.ndarray, lr: float = 0.01) -> float:
    """One SGD step on one batch, updating `params` in place; returns the loss before the update."""
    loss, grads = forward_backward(params, x, target)
    sgd_step(params, grads, lr)
    return loss
