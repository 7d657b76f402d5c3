"""Gradient clipping and flat parameter vectors, as torch.nn.utils.

    loss.backward()
    total = clip_grad_norm_(model.parameters(), max_norm=1.0)  # the norm before clipping
    optimizer.step()

The clipping functions change each parameter's `.grad` in place (under `no_grad()`) and skip
parameters whose `.grad` is None. `foreach` is accepted for PyTorch scripts and has no effect:
NumPy has no fused multi-tensor kernels to choose.
"""
from __future__ import annotations

import types
import warnings
from typing import Iterable, Union

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, cat

TensorOrTensors = Union[Tensor, Iterable[Tensor]]

# Added to the total norm before dividing by it, as PyTorch does, so a zero norm divides safely.
_EPS = 1e-6


def _tensor_list(tensors: TensorOrTensors, op: str, name: str = "parameters") -> list[Tensor]:
    """`tensors` (one Tensor or an iterable of them) as a list; an empty generator is warned about,
    as PyTorch does, since it is usually `model.parameters()` already consumed."""
    if isinstance(tensors, Tensor):
        return [tensors]
    if not isinstance(tensors, Iterable):
        raise TypeError(f"{op}: {name} must be a Tensor or an iterable of Tensors, got {type(tensors).__name__}")
    is_generator = isinstance(tensors, types.GeneratorType)
    tensors = list(tensors)
    if is_generator and not tensors:
        warnings.warn(f"{op}: `{name}` is an empty generator, nothing will be done", stacklevel=3)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name}[{i}] must be a Tensor, got {type(t).__name__}")
    return tensors


def _float_norm_type(norm_type: float | str, op: str) -> float:
    try:
        return float(norm_type)  # as PyTorch: 'inf' is accepted too
    except (TypeError, ValueError) as e:
        raise type(e)(f"{op}: norm_type must be a number such as 2.0 or inf, got {norm_type!r}") from None


def _vector_norm(array: np.ndarray, p: float) -> np.ndarray:
    """The p-norm of all elements (p = inf: largest |x|, p = 0: number of non-zeros), in the array's dtype."""
    return np.asarray(np.linalg.norm(array.ravel(), ord=p))


def _total_norm(tensors: list[Tensor], norm_type: float | str, error_if_nonfinite: bool, op: str) -> Tensor:
    p = _float_norm_type(norm_type, op)
    if not tensors:
        return Tensor(0.0)
    # the norm of the per-tensor norms, stacked with dtype promotion as torch.stack does
    total = _vector_norm(np.stack([_vector_norm(t.detach().numpy(), p) for t in tensors]), p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"{op}: the total norm of order {p} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return Tensor._wrap(total)


def get_total_norm(tensors: TensorOrTensors, norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The `norm_type`-norm of all elements of `tensors` together (as if concatenated), as a 0-d Tensor.

    Raises RuntimeError if it is NaN or infinite and `error_if_nonfinite`. No tensors give 0.
    """
    return _total_norm(_tensor_list(tensors, "get_total_norm", "tensors"), norm_type, error_if_nonfinite,
                       "get_total_norm")


def clip_grads_with_norm_(parameters: TensorOrTensors, max_norm: float, total_norm: Tensor | float,
                          foreach: bool | None = None) -> None:
    """Scale the gradients by max_norm / (total_norm + 1e-6) when that is below 1 (as PyTorch)."""
    params = _tensor_list(parameters, "clip_grads_with_norm_")
    total = total_norm.detach().numpy() if isinstance(total_norm, Tensor) else np.asarray(total_norm, np.float64)
    scale = float(np.minimum(float(max_norm) / (total + _EPS), 1.0))  # NaN stays NaN, as in PyTorch
    with no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)


def clip_grad_norm_(parameters: TensorOrTensors, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Rescale the gradients of `parameters` so that their total `norm_type`-norm is at most `max_norm`.

    Args:
        parameters: a Tensor or an iterable of them (e.g. `model.parameters()`).
        max_norm: the largest total norm allowed.
        norm_type: p of the p-norm: 2.0, 1.0, inf (largest |grad|), or any other real.
        error_if_nonfinite: raise RuntimeError instead of clipping when the total norm is NaN or inf.

    Returns:
        The total norm of the gradients before clipping, a 0-d Tensor.
    """
    params = _tensor_list(parameters, "clip_grad_norm_")
    total = _total_norm([p.grad for p in params if p.grad is not None], norm_type, error_if_nonfinite,
                        "clip_grad_norm_")
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient element of `parameters` into [-clip_value, clip_value]."""
    params = _tensor_list(parameters, "clip_grad_value_")
    clip_value = float(clip_value)
    with no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All `parameters` flattened and concatenated into one 1-D Tensor (differentiable, as PyTorch)."""
    params = _tensor_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: expected at least one parameter")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Set `parameters` to consecutive slices of the 1-D `vec`, reshaped (the inverse of parameters_to_vector).

    As PyTorch, this replaces each parameter's `.data`: afterwards the parameters are views of
    `vec`'s memory and take its dtype; autograd does not record it.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, but got {type(vec).__name__}")
    params = _tensor_list(parameters, "vector_to_parameters")
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != needed:
        raise ValueError(f"vector_to_parameters: vec must be 1-D with {needed} elements (as many as the "
                         f"parameters), got shape {vec.shape}")
    flat = vec.detach().numpy()
    offset = 0
    for p in params:
        p.data = Tensor._wrap(flat[offset:offset + p.numel()].reshape(p.shape))
        offset += p.numel()
