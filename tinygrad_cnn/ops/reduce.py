"""Reductions: sum, max and min, sum_to_size (the adjoint of broadcasting) and the running sum cumsum.
mean, var, prod, cumprod and friends are composed from these in tensor.py."""
from __future__ import annotations

import numpy as np

from ..autograd.forward_ad import linear_jvp
from ..autograd.function import Primitive
from ..shapes import normalize_dims


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def check_nonempty_dims(shape: tuple[int, ...], axes: tuple[int, ...], op: str) -> None:
    """max, min and their arg- forms have no value over a dim of size 0 (sum has 0): IndexError, as PyTorch.
    Over the other dims of an empty tensor the result is empty."""
    for axis in axes:
        if shape[axis] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {axis} to have non-zero size (tensor of shape {shape})")


class Sum(Primitive):
    """Sum over `dim` (None = all).  dL/dx = g broadcast back over the summed dims."""

    @staticmethod
    def forward(ctx, x, *, dim=None, keepdim=False):
        axes = normalize_dims(dim, x.ndim, "sum", x.shape)
        ctx.save_for_backward(x.shape, axes)
        return x.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        shape, axes = ctx.saved_tensors
        return g.reshape(_kept_shape(shape, axes)).expand(shape)

    jvp = staticmethod(linear_jvp)


class Max(Primitive):
    """Largest value over `dim` (None = all).

    dL/dx = g * w, where w picks the maximum: with `spread_ties` the gradient is split
    evenly among equal maxima (PyTorch's amax and max()); otherwise it goes to the
    first maximum along the single `dim` (PyTorch's max(dim), which returns that index).
    """

    # the ufunc whose reduce finds the extreme value, and the function that finds its first index: Min swaps them
    extreme, arg_extreme = np.maximum, staticmethod(np.argmax)

    @classmethod
    def forward(cls, ctx, x, *, dim=None, keepdim=False, spread_ties=True):
        op = cls.__name__.lower()
        axes = normalize_dims(dim, x.ndim, op, x.shape)
        check_nonempty_dims(x.shape, axes, op)
        top = cls.extreme.reduce(x, axis=axes, keepdims=True)
        if spread_ties or not axes:  # a 0-d tensor has no axis to pick along, and no ties
            picked = x == top
            w = picked / picked.sum(axis=axes, keepdims=True)
        else:
            (axis,) = axes
            w = np.zeros(x.shape, dtype=bool)
            np.put_along_axis(w, cls.arg_extreme(x, axis=axis, keepdims=True), True, axis=axis)
        ctx.save_for_backward(w.astype(x.dtype, copy=False), axes)
        return top if keepdim else top.reshape([n for i, n in enumerate(top.shape) if i not in axes])

    @staticmethod
    def backward(ctx, g):
        w, axes = ctx.saved_tensors
        return g.reshape(_kept_shape(w.shape, axes)) * w

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        w, axes = ctx.saved_tensors
        return Sum.apply(tangents[0] * w, dim=axes, keepdim=ctx.kwargs.get("keepdim", False))


class Min(Max):
    """Smallest value over `dim` (None = all): Max with NumPy's minimum and argmin, the same gradient rule
    (dL/dx = g * w, w picking the minima)."""

    extreme, arg_extreme = np.minimum, staticmethod(np.argmin)


class SumToSize(Primitive):
    """Sum a broadcast array back down to `shape`: the adjoint of expand.  dL/dx = g expanded."""

    @staticmethod
    def forward(ctx, x, *, shape):
        lead = x.ndim - len(shape)
        if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, x.shape[lead:])):
            raise ValueError(f"sum_to_size: shape {x.shape} cannot be summed to {tuple(shape)}")
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 != x.shape[lead + i])
        ctx.save_for_backward(x.shape)
        return x.sum(axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        shape, = ctx.saved_tensors
        return g.expand(shape)

    jvp = staticmethod(linear_jvp)


class Cumsum(Primitive):
    """Running sum along `dim` (normalized): out[..., i, ...] = sum over j <= i of x[..., j, ...], same shape.
    dL/dx[i] = sum over j >= i of g[j]: g's running sum taken from the end, flip(cumsum(flip(g)))."""

    @staticmethod
    def forward(ctx, x, *, dim):
        # a 0-d tensor is its own running sum; NumPy wants an axis to run along
        return np.cumsum(x.reshape(x.shape or (1,)), axis=dim).reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        dim = ctx.kwargs["dim"]
        return g.flip(dim).cumsum(dim).flip(dim)

    jvp = staticmethod(linear_jvp)
