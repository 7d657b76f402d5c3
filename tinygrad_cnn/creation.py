"""Tensor factories with PyTorch's names and defaults: sizes as f(2, 3) or f((2, 3)),
float32 unless a dtype is given."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .device import to_device
from .generator import Generator, numpy_generator
from .shapes import new_shape
from .tensor import DEFAULT_FLOAT, Tensor


def _new(data: np.ndarray, requires_grad: bool, device: Any = None) -> Tensor:
    to_device(device, "tensor creation")
    return Tensor._wrap(data).requires_grad_(requires_grad)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def zeros(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(new_shape(size, "zeros"), dtype=dtype or DEFAULT_FLOAT), requires_grad, device)


def ones(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(new_shape(size, "ones"), dtype=dtype or DEFAULT_FLOAT), requires_grad, device)


def full(size: tuple[int, ...], fill_value: bool | int | float, dtype: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Filled with `fill_value`; the dtype follows it (float -> float32, int -> int64) unless given."""
    value = Tensor(fill_value, dtype=dtype)
    return _new(np.full(new_shape((size,), "full"), value.numpy(), dtype=value.dtype), requires_grad, device)


def empty(*size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uninitialised in PyTorch; zeros here (NumPy's empty would show stale memory to a learner)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad, device)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad, device)


def rand(*size: int, generator: Generator | None = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform on [0, 1), from `generator` (default: the global one `manual_seed` sets)."""
    dtype = np.dtype(dtype or DEFAULT_FLOAT)
    return _new(numpy_generator(generator, "rand").random(new_shape(size, "rand")).astype(dtype), requires_grad, device)


def randn(*size: int, generator: Generator | None = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal, from `generator` (default: the global one `manual_seed` sets)."""
    dtype = np.dtype(dtype or DEFAULT_FLOAT)
    data = numpy_generator(generator, "randn").standard_normal(new_shape(size, "randn"))
    return _new(data.astype(dtype), requires_grad, device)


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


def full_like(t: Tensor, fill_value: bool | int | float, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """`t`'s shape filled with `fill_value`, in `t`'s dtype unless given (2.7 in an int64 tensor is 2)."""
    return _new(np.full(t.shape, fill_value, dtype=dtype or t.dtype), requires_grad, device)


def empty_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros here (see `empty`)."""
    return zeros_like(t, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False, *,
              generator: Generator | None = None) -> Tensor:
    return rand(t.shape, generator=generator, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False, *,
               generator: Generator | None = None) -> Tensor:
    return randn(t.shape, generator=generator, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included; float32 unless given."""
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _new(np.linspace(start, end, steps).astype(dtype or DEFAULT_FLOAT), requires_grad, device)


def logspace(start: float, end: float, steps: int, base: float = 10.0, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """base ** linspace(start, end, steps)."""
    if steps < 0:
        raise RuntimeError(f"logspace: number of steps must be non-negative, got {steps}")
    return _new((base ** np.linspace(start, end, steps)).astype(dtype or DEFAULT_FLOAT), requires_grad, device)


def randint(low: int, high: Any = None, size: tuple[int, ...] = (), dtype: Any = None,
            device: Any = None, *, generator: Generator | None = None) -> Tensor:
    """Integers uniform on [low, high), int64 unless given; randint(high, size) starts at 0, as PyTorch."""
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"randint: expects low < high, got low={low} and high={high}")
    data = numpy_generator(generator, "randint").integers(low, high, new_shape((size,), "randint"))
    return _new(data.astype(dtype or np.int64), False, device)


def randperm(n: int, dtype: Any = None, device: Any = None, *, generator: Generator | None = None) -> Tensor:
    """A random permutation of 0 .. n-1, int64 unless given."""
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    return _new(numpy_generator(generator, "randperm").permutation(n).astype(dtype or np.int64), False, device)


def normal(mean: float, std: float, size: tuple[int, ...], dtype: Any = None, device: Any = None,
           requires_grad: bool = False, *, generator: Generator | None = None) -> Tensor:
    """Draws from N(mean, std^2) of the given size (the float-arguments form of torch.normal)."""
    if std < 0:
        raise RuntimeError(f"normal: expects std >= 0.0, got {std}")
    data = numpy_generator(generator, "normal").normal(mean, std, new_shape((size,), "normal"))
    return _new(data.astype(dtype or DEFAULT_FLOAT), requires_grad, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing memory with `array` (changes to one show in the other), its dtype kept."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor(array) if array.dtype.kind not in "biuf" else Tensor._wrap(array)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """`data` as a Tensor without a copy where it can be (a Tensor or an array of the dtype asked for)."""
    to_device(device, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return from_numpy(data)
    return Tensor(data, dtype=dtype)
