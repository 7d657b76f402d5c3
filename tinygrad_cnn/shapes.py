"""Checks and arithmetic on shapes and dims, shared by the ops and the Tensor API.
Errors name the op and the shape, as a user needs them."""
from __future__ import annotations

from typing import Sequence


def normalize_dim(dim: int, ndim: int, op: str, shape: tuple[int, ...] | None = None) -> int:
    """A possibly negative `dim` as an index in range(ndim); IndexError (as PyTorch) if out of range."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        where = f" of shape {shape}" if shape is not None else ""
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor{where} with {ndim} dims "
                         f"(expected a dim in [{-max(ndim, 1)}, {max(ndim, 1) - 1}])")
    return dim % ndim if ndim else 0


def normalize_dims(dim: int | Sequence[int] | None, ndim: int, op: str,
                   shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """`dim` (None = all, an int, or a sequence of ints) as a sorted tuple of distinct axes."""
    if dim is None:
        return tuple(range(ndim))
    if not isinstance(dim, (int, list, tuple)):
        raise TypeError(f"{op}: dim must be an int or a sequence of ints, got {dim!r}")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(sorted({normalize_dim(d, ndim, op, shape) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} names the same dimension twice")
    return axes if ndim else ()


def size_args(size: tuple, op: str = "size") -> tuple[int, ...]:
    """Accept both f(2, 3) and f((2, 3)), as PyTorch does."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in size):
        raise TypeError(f"{op}: sizes must be ints, got {size!r}")
    return tuple(size)


def new_shape(size: tuple, op: str) -> tuple[int, ...]:
    """The shape of a tensor to create, from f(2, 3) or f((2, 3)): no negative sizes (PyTorch's RuntimeError)."""
    shape = size_args(size, op)
    if any(n < 0 for n in shape):
        raise RuntimeError(f"{op}: trying to create a tensor with negative dimension {min(shape)}: {list(shape)}")
    return shape
