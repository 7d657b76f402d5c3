"""Normalisation (batch, layer and group norm) and vector norms and distances."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import ops
from ..autograd.grad_mode import no_grad
from ..scopes import composite
from ..tensor import Tensor


def _normalize(x: Tensor, dims: tuple[int, ...], eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over `dims`, with the biased variance (as every PyTorch norm)."""
    centered = x - x.mean(dims, keepdim=True)
    return centered / ((centered * centered).mean(dims, keepdim=True) + eps).sqrt()


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    """x * weight + bias, each reshaped to `shape` to broadcast."""
    if weight is not None:
        x = x * weight.reshape(shape)
    return x if bias is None else x + bias.reshape(shape)


def _check_param(tensor: Tensor | None, shape: tuple[int, ...], name: str, op: str, input: Tensor) -> None:
    if tensor is not None and tuple(tensor.shape) != shape:
        raise RuntimeError(f"{op}: {name} must have shape {shape}, got {tensor.shape} (input {input.shape})")


@composite("batch_norm", extra_keys=("training", "momentum", "eps"))
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias per channel (dim 1); gradient through the batch statistics.

    Training uses the batch's mean and biased variance over every dim but 1, and moves running_mean and
    running_var (if given) towards them by `momentum`, in place, the variance unbiased (n / (n - 1)), as PyTorch;
    otherwise running_mean and running_var are the statistics."""
    op = "batch_norm"
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    channels, shape = input.shape[1], (1, input.shape[1]) + (1,) * (input.ndim - 2)
    for name, tensor in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                         ("bias", bias)):
        _check_param(tensor, (channels,), name, op, input)
    dims = (0,) + tuple(range(2, input.ndim))
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var are needed when not training")
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
        return _affine(out, weight, bias, shape)
    count = input.numel() // max(channels, 1)
    if count == 1:
        raise ValueError(f"{op}: training needs more than 1 value per channel, got input {input.shape}")
    if not count or input.dtype.kind != "f":  # nothing to normalise (NaN statistics) or PyTorch's dtype error
        _update_running(input, running_mean, running_var, dims, momentum)
        return _affine(_normalize(input, dims, eps), weight, bias, shape)
    # Fast path: the plain definition above, `_affine(_normalize(...))`, is a dozen ops, each a pass over
    # the activations with a VJP of its own; ops.BatchNorm does the same in a few NumPy passes with the
    # closed-form VJP (see ops/normalization.py). The batch statistics are computed once, for both.
    mean, variance, invstd = ops.batch_statistics(input._array, eps)
    if running_mean is not None and running_var is not None:
        with no_grad():  # the running statistics are state, not part of the graph
            running_mean.mul_(1 - momentum).add_(Tensor._wrap(mean.reshape(-1)) * momentum)
            unbiased = variance.reshape(-1) * (count / (count - 1))
            running_var.mul_(1 - momentum).add_(Tensor._wrap(unbiased) * momentum)
    weight = weight if weight is not None else Tensor._wrap(np.ones(channels, input.dtype))
    bias = bias if bias is not None else Tensor._wrap(np.zeros(channels, input.dtype))
    return ops.BatchNorm.apply(input, weight, bias, mean=mean, invstd=invstd, eps=eps)


def _update_running(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, dims: tuple[int, ...],
                    momentum: float) -> None:
    """Move the running estimates towards the batch's mean and unbiased variance (an empty batch moves nothing)."""
    if running_mean is not None and running_var is not None and input.numel():
        with no_grad():  # the running statistics are state, not part of the graph
            batch = input.detach()
            running_mean.mul_(1 - momentum).add_(batch.mean(dims) * momentum)
            running_var.mul_(1 - momentum).add_(batch.var(dims, correction=1) * momentum)


@composite("layer_norm", keys=("normalized_shape",), extra_keys=("eps",))
def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) dims of each sample;
    gradient through the sample's statistics."""
    op = "layer_norm"
    normalized = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized:
        raise RuntimeError(f"{op}: input {input.shape} must end in normalized_shape {list(normalized)}")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_param(tensor, normalized, name, op, input)
    dims = tuple(range(input.ndim - k, input.ndim))
    return _affine(_normalize(input, dims, eps), weight, bias, normalized)


@composite("group_norm", keys=("num_groups",), extra_keys=("eps",))
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over each group of C / num_groups channels (and all positions) of each
    sample, then * weight + bias per channel; gradient through the group's statistics."""
    op = "group_norm"
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    n, channels = input.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or channels % num_groups:
        raise RuntimeError(f"{op}: expected the number of channels ({channels}) to be divisible by "
                           f"num_groups={num_groups} (input {input.shape})")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_param(tensor, (channels,), name, op, input)
    grouped = input.reshape(n, num_groups, input.numel() // max(n * num_groups, 1))
    out = _normalize(grouped, (2,), eps).reshape(*input.shape)
    return _affine(out, weight, bias, (1, channels) + (1,) * (input.ndim - 2))


# ---------------------------------------------------------------- vector norms and distances

@composite("normalize", keys=("p", "dim"))
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(|x|_p, eps) along `dim`: vectors of unit p-norm (p as Tensor.norm takes it). A vector shorter
    than eps is divided by eps, so at 0 the gradient is g / eps (the norm's own gradient is 0 there)."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


@composite("cosine_similarity", keys=("dim",))
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) along `dim`, x1 and x2 broadcast together (as PyTorch,
    each vector is normalised before the product, so a vector shorter than eps counts as that vector / eps)."""
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise RuntimeError(f"cosine_similarity: x1 {x1.shape} and x2 {x2.shape} cannot be broadcast together") from None
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    return (normalize(x1, 2, dim, eps) * normalize(x2, 2, dim, eps)).sum(dim)


@composite("pairwise_distance", keys=("p",))
def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """|x1 - x2 + eps|_p over the last dim, x1 and x2 broadcast together (eps keeps the norm off its kink at 0)."""
    return (x1 - x2 + eps).norm(p, -1, keepdim)
