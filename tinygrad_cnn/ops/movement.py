"""Movement primitives: they rearrange, select or pad elements without arithmetic.
Each VJP is the adjoint movement (reshape back, inverse permutation, sum over
broadcast, scatter into zeros, crop)."""
from __future__ import annotations

import numpy as np

from ..autograd.forward_ad import linear_jvp
from ..autograd.function import Primitive


class Reshape(Primitive):
    """x viewed with a new shape (one -1 allowed).  dL/dx = g reshaped back."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.save_for_backward(x.shape)
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) "
                             f"as shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, g):
        shape, = ctx.saved_tensors
        return g.reshape(shape)

    jvp = staticmethod(linear_jvp)


class Permute(Primitive):
    """x with its dims reordered: out.shape[i] = x.shape[dims[i]].  dL/dx = g permuted back."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, *, dims):
        if sorted(dims) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the "
                             f"{x.ndim} dims of shape {x.shape}")
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.permute(*np.argsort(ctx.kwargs["dims"]).tolist())

    jvp = staticmethod(linear_jvp)


class Expand(Primitive):
    """x broadcast to `shape` (a read-only view, no copy).  dL/dx = g summed back to x's shape."""

    returns_view = True

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.save_for_backward(x.shape)
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {x.shape} cannot be expanded to {tuple(shape)} "
                             "(only dims of size 1 can grow, and new dims go in front)") from None

    @staticmethod
    def backward(ctx, g):
        shape, = ctx.saved_tensors
        return g.sum_to_size(shape)

    jvp = staticmethod(linear_jvp)


def _has_int_array(index: tuple) -> bool:
    """An integer-array index may pick an element twice, so its adjoint must add, not assign."""
    return any(isinstance(i, np.ndarray) and i.dtype.kind in "iu" for i in index)


class GetItem(Primitive):
    """x[index] with ints, slices, None, Ellipsis, integer or boolean arrays.
    dL/dx = g scattered (added) into zeros of x's shape at `index`."""

    returns_view = True  # with basic indices (ints, slices)

    @staticmethod
    def forward(ctx, x, *, index):
        ctx.save_for_backward(x.shape)
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, g):
        shape, = ctx.saved_tensors
        return IndexAdd.apply(g, index=ctx.kwargs["index"], shape=shape)

    jvp = staticmethod(linear_jvp)


class IndexAdd(Primitive):
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

    jvp = staticmethod(linear_jvp)


class Pad(Primitive):
    """x padded with a constant: `pad_width` is one (before, after) pair per dim.
    dL/dx = g with the padding cropped off."""

    @staticmethod
    def forward(ctx, x, *, pad_width, value=0.0):
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        crop = tuple(slice(before, n - after) for (before, after), n in zip(ctx.kwargs["pad_width"], g.shape))
        return g[crop]

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return Pad.apply(tangents[0], pad_width=ctx.kwargs["pad_width"])  # the padding is constant: tangent 0


class Cat(Primitive):
    """Inputs joined along `dim` (already normalized).  dL/dx_i = the slice of g that x_i filled."""

    @staticmethod
    def forward(ctx, *xs, dim):
        ctx.save_for_backward(*[x.shape[dim] for x in xs])
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        sizes, lead = ctx.saved_tensors, (slice(None),) * ctx.kwargs["dim"]
        ends = np.cumsum(sizes).tolist()
        return tuple(g[lead + (slice(end - size, end),)] if needed else None
                     for size, end, needed in zip(sizes, ends, ctx.needs_input_grad))

    jvp = staticmethod(linear_jvp)


class SetItem(Primitive):
    """x with `values` written at `index` (broadcast, as NumPy assigns): out = x; out[index] = values.
    dL/dx = g with zeros at `index`; dL/dvalues = g[index] (summed back to values' shape by the engine)."""

    @staticmethod
    def forward(ctx, x, values, *, index):
        out = x.copy()
        try:
            out[index] = values
        except IndexError as e:
            raise IndexError(f"setitem: {e} (tensor of shape {x.shape})") from None
        except ValueError as e:
            raise RuntimeError(f"setitem: {e} (tensor of shape {x.shape}, values of shape {values.shape})") from None
        return out

    @staticmethod
    def backward(ctx, g):
        index, (dx, dvalues) = ctx.kwargs["index"], ctx.needs_input_grad
        zero = g._wrap(np.zeros((), g.dtype))
        return (SetItem.apply(g, zero, index=index) if dx else None), (g[index] if dvalues else None)

    jvp = staticmethod(linear_jvp)
