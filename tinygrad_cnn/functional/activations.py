"""Activations, softmax and the simple layers (linear, flatten, one_hot, dropout)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..rng import get_generator
from ..checks import probability_argument
from ..scopes import composite
from ..tensor import Tensor


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); gradient 0 at 0. With `inplace`, written into `input` (see Tensor.relu_)."""
    return input.relu_() if inplace else input.relu()


@composite("leaky_relu", keys=("negative_slope",))
def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (slope used at 0, as PyTorch)."""
    return input.where(input > 0, input * negative_slope)


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def _apply(fn: Callable[[Tensor], Tensor], input: Tensor, inplace: bool) -> Tensor:
    """fn(input), or with `inplace` written into `input` (as PyTorch's in-place activations). fn then runs on
    a clone: the values its nodes save for the gradient must not be the ones the write replaces."""
    return input.copy_(fn(input.clone())) if inplace else fn(input)


@composite("elu", keys=("alpha",))
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha (exp(x) - 1); gradient 1, else alpha exp(x)."""
    def elu_(x: Tensor) -> Tensor:
        negative = x <= 0
        # exp only of the non-positive part: a large x would overflow, and 0 * inf in the unused branch is NaN
        return x.where(~negative, (x.where(negative, 0.0).exp() - 1) * alpha)
    return _apply(elu_, input, inplace)


@composite("silu")
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x); gradient sigmoid(x) (1 + x (1 - sigmoid(x)))."""
    return _apply(lambda x: x * x.sigmoid(), input, inplace)


@composite("softplus", keys=("beta", "threshold"))
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (as PyTorch); gradient sigmoid(beta x), else 1."""
    scaled = input * beta
    return input.where(scaled > threshold, _softplus(scaled) * (1.0 / beta))


@composite("hardtanh", keys=("min_val", "max_val"))
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); gradient 1 strictly between them, else 0."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return input.clamp_(min_val, max_val) if inplace else input.clamp(min_val, max_val)


@composite("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else w x with one w per channel (dim 1) or one for all; gradient 1, else w (x w.r.t. w)."""
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels):
        raise RuntimeError(f"prelu: weight of shape {weight.shape} must hold 1 value or one per channel "
                           f"({channels}), input {input.shape}")
    if weight.numel() == 1:
        slope = weight.reshape((1,) * input.ndim)
    else:
        slope = weight.reshape((1, channels) + (1,) * (input.ndim - 2))
    return input.where(input > 0, input * slope)


@composite("gelu", keys=("approximate",))
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or with approximate='tanh'
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); differentiated through erf or tanh."""
    if approximate == "none":
        return input * 0.5 * ((input * (1 / math.sqrt(2))).erf() + 1)
    if approximate != "tanh":
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
    return input * 0.5 * (inner.tanh() + 1)


@composite("linear")
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias: (..., in) -> (..., out) with weight (out, in), bias (out,)."""
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} does not fit weight of shape {weight.shape} "
                         "(expected input (..., in) and weight (out, in))")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    Tensor._check_same_dtype("linear", input, weight, bias)
    out = input @ weight.T
    return out if bias is None else out + bias


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (...,) as int64 one-hot rows (..., num_classes); num_classes=-1 takes the
    largest index + 1. No gradient (the input is integer)."""
    if tensor.dtype != np.int64:
        raise RuntimeError(f"one_hot: expects an int64 tensor of class indices, got dtype {tensor.dtype}")
    indices = tensor.numpy()
    if indices.size and indices.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(indices.min())}")
    if num_classes == -1:
        num_classes = int(indices.max()) + 1 if indices.size else 0
    if indices.size and indices.max() >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes={num_classes}, got "
                           f"{int(indices.max())}")
    return Tensor((indices[..., None] == np.arange(num_classes)).astype(np.int64))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one (as torch.flatten; nn.Flatten starts at 1)."""
    return input.flatten(start_dim, end_dim)


@composite("dropout", keys=("p",))
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not training).
    With `inplace`, the result is written into `input`."""
    p = probability_argument(p, "p", "dropout")
    if not training or p == 0.0:
        return input
    keep = get_generator().random(input.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(input.dtype)
    return input.mul_(mask) if inplace else input * mask


@composite("dropout2d", keys=("p",))
def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each whole channel (N, C, ...) with probability p and scale the rest by 1/(1-p) (identity when not
    training); gradient the same mask. A 3-D input is (N, C, L), as PyTorch today."""
    p = probability_argument(p, "p", "dropout2d")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W) or (N, C, L), got {input.shape}")
    if not training or p == 0.0:
        return input
    keep = get_generator().random(input.shape[:2] + (1,) * (input.ndim - 2)) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(input.dtype)
    return input.mul_(mask) if inplace else input * mask


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) without overflow: x + log(1 + exp(-x)) for x > 0. `where` picks one exact formula on
    each side, so the gradient, sigmoid(x), is right at x = 0 too (relu(x) + log(1 + exp(-|x|)) gives 0 there)."""
    positive = x > 0
    return x.where(positive, 0.0) + (x.where(~positive, -x).exp() + 1).log()


# ---------------------------------------------------------------- softmax

@composite("log_softmax", keys=("dim",))
def log_softmax(input: Tensor, dim: int) -> Tensor:
    """log(softmax(x)) computed stably (see Tensor.log_softmax)."""
    return input.log_softmax(dim)


@composite("softmax", keys=("dim",))
def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed stably (see Tensor.softmax)."""
    return input.softmax(dim)
