"""Elementwise primitives. Binary ops broadcast as NumPy does; the engine sums each
gradient back to its input's shape, so the VJPs below ignore broadcasting."""
from __future__ import annotations

import numpy as np

from ..autograd import Context, Function


# ---------------------------------------------------------------- binary

class Add(Function):
    """x + y.  dL/dx = g, dL/dy = g."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """x - y.  dL/dx = g, dL/dy = -g."""

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """x * y.  dL/dx = g * y, dL/dy = g * x."""

    @staticmethod
    def forward(ctx, x, y):
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.inputs
        dx, dy = ctx.needs_input_grad
        return (g * y if dx else None), (g * x if dy else None)


class Div(Function):
    """x / y.  dL/dx = g / y, dL/dy = -g * x / y**2 = -(g / y) * out."""

    @staticmethod
    def forward(ctx, x, y):
        return x / y

    @staticmethod
    def backward(ctx, g):
        _, y = ctx.inputs
        g_over_y = g / y
        return g_over_y, (-g_over_y * ctx.output if ctx.needs_input_grad[1] else None)


class Pow(Function):
    """x ** y.  dL/dx = g * y * x**(y-1), dL/dy = g * out * log(x), taken as 0 where x == 0
    (as PyTorch: the limit for y > 0)."""

    @staticmethod
    def forward(ctx, x, y):
        return x ** y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.inputs
        dx, dy = ctx.needs_input_grad
        gx = g * y * x ** (y - 1) if dx else None
        # log of 1 where x == 0, so neither the value nor its own derivative is inf/nan
        gy = g * ctx.output * x.where(x.data != 0, 1.0).log() if dy else None
        return gx, gy


def _tie_weights(x_wins: np.ndarray, tie: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """1 where x is picked, 1/2 where x and y tie (PyTorch splits the gradient at ties)."""
    return (x_wins + 0.5 * tie).astype(dtype, copy=False)


class Maximum(Function):
    """max(x, y).  dL/dx = g * w, dL/dy = g * (1 - w); w = 1 where x > y, 1/2 at ties."""

    @staticmethod
    def forward(ctx, x, y):
        out = np.maximum(x, y)
        ctx.save_for_backward(_tie_weights(x > y, x == y, out.dtype))
        return out

    @staticmethod
    def backward(ctx, g):
        w, = ctx.saved
        return g * w, g * (1 - w)


class Where(Function):
    """condition ? x : y, with a boolean `condition` (no gradient).
    dL/dx = g where condition else 0; dL/dy = the rest."""

    @staticmethod
    def forward(ctx, condition, x, y):
        return np.where(condition, x, y)

    @staticmethod
    def backward(ctx, g):
        condition = ctx.inputs[0].data
        _, dx, dy = ctx.needs_input_grad
        return None, (g.where(condition, 0.0) if dx else None), (g.where(~condition, 0.0) if dy else None)


# ---------------------------------------------------------------- unary

class Neg(Function):
    """-x.  dL/dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    """exp(x).  dL/dx = g * out."""

    @staticmethod
    def forward(ctx, x):
        return np.exp(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.output


class Log(Function):
    """log(x).  dL/dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.inputs[0]


class Sqrt(Function):
    """sqrt(x).  dL/dx = g / (2 * out)."""

    @staticmethod
    def forward(ctx, x):
        return np.sqrt(x)

    @staticmethod
    def backward(ctx, g):
        return g / (ctx.output * 2)


class Abs(Function):
    """|x|.  dL/dx = g * sign(x); 0 at x == 0, as PyTorch."""

    @staticmethod
    def forward(ctx, x):
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        return g * np.sign(ctx.inputs[0].data)


class Relu(Function):
    """max(x, 0).  dL/dx = g * (x > 0); 0 at x == 0, as PyTorch."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x > 0)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        positive, = ctx.saved
        # NumPy multiplies by a boolean mask directly: no Cast op, no float copy of the mask
        return Mul.apply(g, type(g)._make(positive, False, None))


class Tanh(Function):
    """tanh(x).  dL/dx = g * (1 - out**2)."""

    @staticmethod
    def forward(ctx, x):
        return np.tanh(x)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * (1 - out * out)


class Sigmoid(Function):
    """1 / (1 + exp(-x)), computed without overflow.  dL/dx = g * out * (1 - out)."""

    @staticmethod
    def forward(ctx, x):
        # exp(-|x|) never overflows; pick the form that is stable on each side of 0
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * (out * (1 - out))


class Clamp(Function):
    """min(max(x, min), max).  dL/dx = g where min <= x <= max, else 0 (bounds included, as PyTorch)."""

    @staticmethod
    def forward(ctx, x, *, min=None, max=None):
        inside = np.ones(x.shape, dtype=bool)
        if min is not None:
            inside &= x >= min
        if max is not None:
            inside &= x <= max
        ctx.save_for_backward(inside)
        return np.clip(x, min, max)

    @staticmethod
    def backward(ctx, g):
        inside, = ctx.saved
        return g * inside


class Cast(Function):
    """x converted to `dtype`.  dL/dx = g converted back to x's dtype."""

    @staticmethod
    def forward(ctx, x, *, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.to(ctx.inputs[0].dtype)
