"""Losses: mse, l1, smooth l1, huber, kl_div, binary cross-entropy (with logits), nll and cross-entropy."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..scopes import composite
from ..tensor import Tensor
from .activations import _softplus, log_softmax


#
# Each loss is made of Tensor ops, so its gradient and second derivatives come from theirs. Arguments
# that PyTorch keeps after a deprecated one (size_average, reduce) are keyword-only here: a call that
# passes them by position means something else in PyTorch, so it fails rather than differs.

def _reduce(loss: Tensor, reduction: str, op: str, count: Tensor | float | None = None) -> Tensor:
    """'none': the loss as is; 'sum'; 'mean': the sum divided by `count`, by default the number of elements."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction != "mean":
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if float(loss.numel() if count is None else count) == 0:
        # PyTorch's 0 / 0 (every target ignored, an empty batch) is NaN, with the gradient of the empty
        # sum, 0: dividing by the zero count would send 1/0 into the backward pass and make it NaN too
        return loss.sum() + math.nan
    return loss.mean() if count is None else loss.sum() / count


def _check_same_shape(input: Tensor, target: Tensor, op: str) -> None:
    # PyTorch broadcasts some of these with a warning; (N, 1) against (N,) then silently makes an N x N loss
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} must have the same shape")


def _check_float_target(target: Tensor, op: str) -> None:
    if target.dtype.kind != "f":
        raise RuntimeError(f"{op}: target must be a floating point tensor of probabilities, got dtype {target.dtype}")


def _weighted(loss: Tensor, weight: Tensor | None, name: str, op: str) -> Tensor:
    """loss * weight, for a weight that broadcasts to the loss's shape without growing it (as PyTorch)."""
    if weight is None:
        return loss
    try:
        fits = np.broadcast_shapes(weight.shape, loss.shape) == loss.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: {name} of shape {weight.shape} does not broadcast to the input's shape {loss.shape}")
    return loss * weight


def _pointwise_loss(pointwise: Callable[[Tensor], Tensor], input: Tensor, target: Tensor, reduction: str,
                    op: str) -> Tensor:
    """A loss of the difference input - target, element by element, then reduced."""
    _check_same_shape(input, target, op)
    return _reduce(pointwise(input - target), reduction, op)


def _huber(diff: Tensor, delta: float) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta * (|d| - delta / 2): both pieces meet with slope delta."""
    size = abs(diff)
    return (diff * diff * 0.5).where(size < delta, (size - 0.5 * delta) * delta)


def _log_clamped(x: Tensor) -> Tensor:
    """max(log x, -100), as PyTorch's BCE, so that y * log x is finite at x = 0. log is only evaluated where it
    is above -100; elsewhere the value is -100 and the gradient 0 (log 0 = -inf would make the gradient NaN)."""
    above = x > math.exp(-100)
    return x.where(above, 1.0).log().where(above, -100.0)


@composite("mse_loss", extra_keys=("reduction",))
def mse_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """(x - y)^2 per element, then reduced; gradient 2 (x - y) (/ numel for 'mean')."""
    return _pointwise_loss(lambda diff: diff * diff, input, target, reduction, "mse_loss")


@composite("l1_loss", extra_keys=("reduction",))
def l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """|x - y| per element, then reduced; gradient sign(x - y) (0 at x == y, as PyTorch)."""
    return _pointwise_loss(abs, input, target, reduction, "l1_loss")


@composite("smooth_l1_loss", extra_keys=("reduction", "beta"))
def smooth_l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """d = x - y: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2; gradient d / beta, else sign(d).

    beta = 0 is l1_loss."""
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    pointwise = abs if beta == 0 else (lambda diff: _huber(diff, beta) * (1.0 / beta))
    return _pointwise_loss(pointwise, input, target, reduction, "smooth_l1_loss")


@composite("huber_loss", extra_keys=("reduction", "delta"))
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """d = x - y: 0.5 d^2 where |d| < delta, else delta (|d| - delta / 2); gradient d, else delta sign(d).

    It is delta * smooth_l1_loss with beta = delta."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss: delta must be positive, got {delta}")
    return _pointwise_loss(lambda diff: _huber(diff, delta), input, target, reduction, "huber_loss")


@composite("binary_cross_entropy", extra_keys=("reduction",))
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                         reduction: str = "mean") -> Tensor:
    """-w (y log x + (1 - y) log(1 - x)), each log at least -100; gradient w (x - y) / (x (1 - x)).

    x and y are probabilities (PyTorch's checks: both in [0, 1]); `weight` w broadcasts to their shape.
    Where a log is clamped, its term's gradient is 0 (PyTorch's backward divides by max(x (1 - x), 1e-12)
    instead). From logits, binary_cross_entropy_with_logits is exact where sigmoid rounds to 0 or 1."""
    op = "binary_cross_entropy"
    _check_same_shape(input, target, op)
    _check_float_target(target, op)
    for name, tensor in (("input", input), ("target", target)):
        values = tensor.detach().numpy()
        outside = ~((values >= 0) & (values <= 1))  # NaN is outside too
        if outside.any():
            raise RuntimeError(f"{op}: all elements of {name} should be between 0 and 1, "
                               f"got {values[outside].flat[0]} (shape {tensor.shape})")
    loss = -(target * _log_clamped(input) + (1 - target) * _log_clamped(1 - input))
    return _reduce(_weighted(loss, weight, "weight", op), reduction, op)


@composite("binary_cross_entropy_with_logits", extra_keys=("reduction",))
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """w (p y softplus(-z) + (1 - y) softplus(z)); gradient w ((1 - y) sigmoid(z) - p y sigmoid(-z)).

    BCE of sigmoid(z) from the logits z, as log sigmoid(z) = -softplus(-z): softplus(z) = log(1 + e^z) is
    computed without overflow for any z. `weight` w and `pos_weight` p (1 when None), which scales the
    positive term, broadcast to the input's shape: p of shape (C,) weighs each class of an (N, C) input."""
    op = "binary_cross_entropy_with_logits"
    _check_same_shape(input, target, op)
    _check_float_target(target, op)
    positive = _weighted(target, pos_weight, "pos_weight", op)
    loss = positive * _softplus(-input) + (1 - target) * _softplus(input)
    return _reduce(_weighted(loss, weight, "weight", op), reduction, op)


@composite("kl_div", extra_keys=("reduction", "log_target"))
def kl_div(input: Tensor, target: Tensor, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """t (log t - x) per element, 0 where t = 0; gradient -t w.r.t. x, log t + 1 - x w.r.t. t.

    x = input is log-probabilities, t = target probabilities, or log-probabilities with log_target (then
    e^t (t - x)). 'batchmean' divides the sum by the batch size input.shape[0]: the KL divergence
    KL(target || exp(input)) per sample; 'mean' (PyTorch's default) divides it by the number of elements."""
    op = "kl_div"
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    _check_same_shape(input, target, op)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # t log t is 0 at t = 0, as PyTorch's xlogy; log is not evaluated there (log 0 = -inf would give NaN)
        nonzero = target != 0
        loss = target * target.where(nonzero, 1.0).log() - target * input
    if reduction == "batchmean":
        return _reduce(loss, "mean", op, count=input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, op)


def _class_dim(input: Tensor, op: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{op}: input needs a class dim, got shape {input.shape}")
    return 0 if input.ndim == 1 else 1


def _class_weight(weight: Tensor | None, input: Tensor, dim: int, op: str) -> Tensor | None:
    """The per-class weight (C,) shaped to broadcast along the class dim of input."""
    if weight is None:
        return None
    classes = input.shape[dim]
    if weight.shape != (classes,):
        raise RuntimeError(f"{op}: weight must hold one value per class, shape ({classes},), got {weight.shape} "
                           f"(input {input.shape})")
    return weight.reshape((classes,) + (1,) * (input.ndim - dim - 1))


def _one_hot(input: Tensor, target: Tensor, ignore_index: int, dim: int, op: str) -> np.ndarray:
    """Checked class indices as one-hot rows along the class dim of input; all zeros where ignore_index."""
    classes = input.shape[dim]
    target = target.numpy() if isinstance(target, Tensor) else np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != input.shape[:dim] + input.shape[dim + 1:]:
        raise ValueError(f"{op}: target of shape {target.shape} does not fit input of shape {input.shape}")
    kept = target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"{op}: target {int(target[bad][0])} is out of range for {classes} classes "
                         f"(input {input.shape})")
    arange = np.arange(classes).reshape((classes,) + (1,) * (input.ndim - dim - 1))
    return (np.expand_dims(np.where(kept, target, -1), dim) == arange).astype(input.dtype)


def _picked(rows: np.ndarray | Tensor, class_weight: Tensor | None) -> np.ndarray | Tensor:
    """Target rows (one-hot, or probabilities) scaled by the class weights: what each log-probability is
    multiplied by. For one-hot rows their sum is 'mean''s count, PyTorch's summed weight of the kept targets."""
    return rows if class_weight is None else class_weight * rows


@composite("nll_loss", extra_keys=("ignore_index", "reduction"))
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-w[t] input[t] per sample with class index t; gradient -w[t] at input[t], 0 at the other classes.

    A target equal to ignore_index counts for nothing; 'mean' divides the sum by the summed w[t] of the
    targets kept (NaN when there are none, as PyTorch).

    Args:
        input: log-probabilities (N, C) (or (C,), or (N, C, d1, ...)).
        target: class indices (N,) (or (), or (N, d1, ...)).
        weight: a weight per class (C,), 1 when None.
    """
    dim = _class_dim(input, "nll_loss")
    rows = _one_hot(input, target, ignore_index, dim, "nll_loss")
    class_weight = _class_weight(weight, input, dim, "nll_loss")
    picked = _picked(rows, class_weight)
    # input[t] picked by `where`, not by a product with the one-hot rows: a masked class's -inf times 0 is NaN
    chosen = input.where(Tensor._wrap(rows != 0), 0.0)
    if class_weight is not None:
        chosen = chosen * picked
    return _reduce(-chosen.sum(dim), reduction, "nll_loss", count=picked.sum())


@composite("cross_entropy", extra_keys=("ignore_index", "reduction", "label_smoothing"))
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """-sum_c w_c q_c log softmax(x)_c per sample; gradient w_t (softmax(x) - one_hot(t)) for a class index t.

    The target distribution q is the one-hot of a class index, or the given class probabilities (a float
    target of the input's shape); label_smoothing e makes it (1 - e) q + e / C. 'mean' divides by the summed
    weight w_t of the kept class indices (ignore_index counts for nothing, as in nll_loss), and by the number
    of samples for probability targets, as PyTorch."""
    op = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    dim = _class_dim(input, op)
    classes = input.shape[dim]
    class_weight = _class_weight(weight, input, dim, op)
    logp = log_softmax(input, dim)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"{op}: probability targets must have the input's shape {input.shape}, "
                             f"got {target.shape}")
        if ignore_index >= 0:
            raise RuntimeError(f"{op}: ignore_index={ignore_index} is not supported for probability targets")
        probs = target * (1 - label_smoothing) + label_smoothing / classes
        with np.errstate(invalid="ignore"):  # a masked class (-inf) with probability 0 gives NaN, as PyTorch
            return _reduce(-(logp * _picked(probs, class_weight)).sum(dim), reduction, op)
    loss = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return loss
    # the uniform part e / C of q, on the kept samples, with nll_loss's count (PyTorch's smoothing term)
    one_hot = _one_hot(logp, target, ignore_index, dim, op)
    uniform = -(logp if class_weight is None else logp * class_weight).sum(dim) * one_hot.sum(dim)
    uniform = _reduce(uniform, reduction, op, count=_picked(one_hot, class_weight).sum())
    return loss * (1 - label_smoothing) + uniform * (label_smoothing / classes)
