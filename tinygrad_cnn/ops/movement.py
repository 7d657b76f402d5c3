"""Movement primitives: they rearrange, select or pad elements without arithmetic.
Each VJP is the adjoint movement (reshape back, inverse permutation, sum over
broadcast, scatter into zeros, crop)."""
from __future__ import annotations

import numpy as np

from ..autograd import Function


class Reshape(Function):
    """x viewed with a new shape (one -1 allowed).  dL/dx = g reshaped back."""

    @staticmethod
    def forward(ctx, x, *, shape):
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) "
                             f"as shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.inputs[0].shape)


class Permute(Function):
    """x with its dims reordered: out.shape[i] = x.shape[dims[i]].  dL/dx = g permuted back."""

    @staticmethod
    def forward(ctx, x, *, dims):
        if sorted(dims) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the "
                             f"{x.ndim} dims of shape {x.shape}")
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.permute(*np.argsort(ctx.kwargs["dims"]).tolist())


class Expand(Function):
    """x broadcast to `shape` (a read-only view, no copy).  dL/dx = g summed back to x's shape."""

    @staticmethod
    def forward(ctx, x, *, shape):
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {x.shape} cannot be expanded to {tuple(shape)} "
                             "(only dims of size 1 can grow, and new dims go in front)") from None

    @staticmethod
    def backward(ctx, g):
        return g.sum_to_size(ctx.inputs[0].shape)


def _has_int_array(index: tuple) -> bool:
    """An integer-array index may pick an element twice, so its adjoint must add, not assign."""
    return any(isinstance(i, np.ndarray) and i.dtype.kind in "iu" for i in index)


class GetItem(Function):
    """x[index] with ints, slices, None, Ellipsis, integer or boolean arrays.
    dL/dx = g scattered (added) into zeros of x's shape at `index`."""

    @staticmethod
    def forward(ctx, x, *, index):
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, index=ctx.kwargs["index"], shape=ctx.inputs[0].shape)


class IndexAdd(Function):
    """zeros(shape) with `values` added at `index`: the adjoint of GetItem.  dL/dvalues = g[index]."""

    @staticmethod
    def forward(ctx, values, *, index, shape):
        out = np.zeros(shape, dtype=values.dtype)
        if _has_int_array(index):
            np.add.at(out, index, values)
        else:
            out[index] = values
        return out

    @staticmethod
    def backward(ctx, g):
        return g[ctx.kwargs["index"]]


class Pad(Function):
    """x padded with a constant: `pad_width` is one (before, after) pair per dim.
    dL/dx = g with the padding cropped off."""

    @staticmethod
    def forward(ctx, x, *, pad_width, value=0.0):
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        crop = tuple(slice(before, n - after) for (before, after), n in zip(ctx.kwargs["pad_width"], g.shape))
        return g[crop]


class Cat(Function):
    """Inputs joined along `dim` (already normalized).  dL/dx_i = the slice of g that x_i filled."""

    @staticmethod
    def forward(ctx, *xs, dim):
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        dim = ctx.kwargs["dim"]
        ends = np.cumsum([x.shape[dim] for x in ctx.inputs]).tolist()
        lead = (slice(None),) * dim
        return tuple(g[lead + (slice(end - x.shape[dim], end),)] if needed else None
                     for x, end, needed in zip(ctx.inputs, ends, ctx.needs_input_grad))
