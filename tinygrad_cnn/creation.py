"""Tensor factories with PyTorch's names and defaults: sizes as f(2, 3) or f((2, 3)),
float32 unless a dtype is given."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .device import to_device
from .rng import get_generator
from .shapes import size_args
from .tensor import DEFAULT_FLOAT, Tensor


def _new(data: np.ndarray, requires_grad: bool, device: Any = None) -> Tensor:
    to_device(device, "tensor creation")
    return Tensor._make(data).requires_grad_(requires_grad)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def zeros(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(size_args(size), dtype=dtype or DEFAULT_FLOAT), requires_grad, device)


def ones(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(size_args(size), dtype=dtype or DEFAULT_FLOAT), requires_grad, device)


def full(size: tuple[int, ...], fill_value: bool | int | float, dtype: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Filled with `fill_value`; the dtype follows it (float -> float32, int -> int64) unless given."""
    value = Tensor(fill_value, dtype=dtype)
    return _new(np.full(size_args((size,)), value.numpy(), dtype=value.dtype), requires_grad, device)


def empty(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uninitialised in PyTorch; zeros here (NumPy's empty would show stale memory to a learner)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad, device)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad, device)


def rand(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from the generator `manual_seed` sets."""
    dtype = np.dtype(dtype or DEFAULT_FLOAT)
    return _new(get_generator().random(size_args(size)).astype(dtype), requires_grad, device)


def randn(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal, from the generator `manual_seed` sets."""
    dtype = np.dtype(dtype or DEFAULT_FLOAT)
    return _new(get_generator().standard_normal(size_args(size)).astype(dtype), requires_grad, device)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """[start, end) by `step`; int64 if all are ints, else float32 (as PyTorch)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    all_ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    dtype = dtype or (np.int64 if all_ints else DEFAULT_FLOAT)
    return _new(np.arange(start, end, step).astype(dtype), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.eye(n, m, dtype=dtype or DEFAULT_FLOAT), requires_grad, device)
