"""Elementwise primitives. Binary ops broadcast as NumPy does; the engine sums each
gradient back to its input's shape, so the VJPs below ignore broadcasting. Each JVP is
the sum over inputs of tangent * partial derivative, the VJP's partials with g replaced by
the tangent (forward_ad broadcasts it to the output's shape)."""
from __future__ import annotations

import math

import numpy as np

from ..autograd.forward_ad import multilinear_jvp, tangent_sum
from ..autograd.function import Context, Primitive

# Forwards that can meet a pole or leave their domain (log(-1), 1/0, exp(1000)) give NaN or inf as
# IEEE says, silently as PyTorch: no NumPy RuntimeWarning reaches the user.
_silent = np.errstate(all="ignore")


# ---------------------------------------------------------------- binary

class Add(Primitive):
    """x + y.  dL/dx = g, dL/dy = g."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangent_sum(*tangents)


class Sub(Primitive):
    """x - y.  dL/dx = g, dL/dy = -g."""

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        tx, ty = tangents
        return tangent_sum(tx, None if ty is None else -ty)


class Mul(Primitive):
    """x * y.  dL/dx = g * y, dL/dy = g * x."""

    @staticmethod
    def forward(ctx, x, y):
        dx, dy = ctx.needs_input_grad
        ctx.save_for_backward(x if dy else None, y if dx else None)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return (None if y is None else g * y), (None if x is None else g * x)

    jvp = staticmethod(multilinear_jvp)  # tx * y + x * ty


class Div(Primitive):
    """x / y.  dL/dx = g / y, dL/dy = -g * x / y**2 = -(g / y) * (x / y)."""

    @staticmethod
    @_silent
    def forward(ctx, x, y):
        # the inputs, not the output (x / y): as PyTorch, so changing the output in place is fine
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, y)
        return x / y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        g_over_y = g / y
        return g_over_y, (None if x is None else -g_over_y * (x / y))

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        (_, y), (tx, ty) = primals, tangents
        return tangent_sum(tx, None if ty is None else -(ty * out)) / y  # (tx - ty * x / y) / y


class Pow(Primitive):
    """x ** y.  dL/dx = g * y * x**(y-1), 0 where y == 0 (x**0 is constant, also at x = 0, as PyTorch);
    dL/dy = g * out * log(x), taken as 0 where x == 0 (as PyTorch: the limit for y > 0)."""

    @staticmethod
    @_silent
    def forward(ctx, x, y):
        out = x ** y
        ctx.save_for_backward(x, y, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved_tensors
        return (g * Pow.d_base(x, y) if ctx.needs_input_grad[0] else None,
                None if out is None else g * Pow.d_exponent(x, out))

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        (x, y), (tx, ty) = primals, tangents
        return tangent_sum(None if tx is None else tx * Pow.d_base(x, y),
                           None if ty is None else ty * Pow.d_exponent(x, out))

    @staticmethod
    def d_base(x, y):
        """d(x ** y)/dx = y * x ** (y - 1), 0 where y == 0."""
        # at x == y == 0 the factor y is 0: an exponent of 1 there keeps 0 ** -1 = inf out of the product
        both_zero = (x._array == 0) & (y._array == 0)
        power = (y - 1) if not both_zero.any() else y.where(x._wrap(~both_zero), 1.0) - 1
        return y * x ** power

    @staticmethod
    def d_exponent(x, out):
        """d(x ** y)/dy = out * log(x), 0 where x == 0."""
        # log of 1 where x == 0, so neither the value nor its own derivative is inf/nan
        return out * x.where(x != 0, 1.0).log()


class Remainder(Primitive):
    """x - q * y, q the quotient x / y rounded toward 0 (mode="fmod", C's %) or toward -inf
    (mode="remainder", Python's %): broadcast shape.  q is a step function of x and y, so
    dL/dx = g, dL/dy = -g * q (as PyTorch; at the steps the derivative does not exist)."""

    functions = {"fmod": np.fmod, "remainder": np.remainder}

    @staticmethod
    @_silent
    def forward(ctx, x, y, *, mode):
        if y.dtype.kind in "biu" and x.dtype.kind in "biu" and not np.all(y):
            raise RuntimeError(f"ZeroDivisionError: {mode} of an integer tensor by 0")
        out = Remainder.functions[mode](x, y)
        ctx.save_for_backward(Remainder.quotient(x, y, out) if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    @_silent
    def quotient(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        # (x - out) / y is a whole number up to rounding: round it, so that q is exact
        return np.round((x - out) / y)

    @staticmethod
    def backward(ctx, g):
        q, = ctx.saved_tensors
        return g, (None if q is None else -g * q)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        (x, y), (tx, ty) = primals, tangents
        return tangent_sum(tx, None if ty is None else -ty * Remainder.quotient(x._array, y._array, out._array))


class Maximum(Primitive):
    """max(x, y), NaN if either is NaN.  dL/dx = g * wx, dL/dy = g * wy, as PyTorch: each side gets g
    unless it loses (x < y for x), 1/2 at ties; so where one is NaN both get g."""

    loses = staticmethod(np.less)  # x loses to y: Minimum swaps it
    combine = staticmethod(np.maximum)

    @classmethod
    def forward(cls, ctx, x, y):
        out = cls.combine(x, y)
        if True in ctx.needs_input_grad:
            ctx.save_for_backward(*cls.weights(x, y, out.dtype))
        return out

    @classmethod
    def weights(cls, x: np.ndarray, y: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """(wx, wy): d out/dx and d out/dy, 1 for the winner, 0 for the loser, 1/2 each at a tie."""
        half_tie = 0.5 * (x == y)
        wx, wy = (np.logical_not(cls.loses(a, b)) - half_tie for a, b in ((x, y), (y, x)))
        return wx.astype(dtype, copy=False), wy.astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        wx, wy = ctx.saved_tensors
        return g * wx, g * wy

    @classmethod
    def jvp(cls, ctx, primals, tangents, out):
        (x, y), (tx, ty) = primals, tangents
        wx, wy = cls.weights(x._array, y._array, out.dtype)
        return tangent_sum(None if tx is None else tx * wx, None if ty is None else ty * wy)


class Minimum(Maximum):
    """min(x, y), NaN if either is NaN: Maximum with the comparison turned round (x loses where x > y)."""

    loses = staticmethod(np.greater)
    combine = staticmethod(np.minimum)


class Where(Primitive):
    """condition ? x : y, with a boolean `condition` (no gradient).
    dL/dx = g where condition else 0; dL/dy = the rest."""

    @staticmethod
    def forward(ctx, condition, x, y):
        ctx.save_for_backward(condition)
        return np.where(condition, x, y)

    @staticmethod
    def backward(ctx, g):
        condition, = ctx.saved_tensors
        _, dx, dy = ctx.needs_input_grad
        return None, (g.where(condition, 0.0) if dx else None), (g.where(~condition, 0.0) if dy else None)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        condition, (_, tx, ty) = primals[0], tangents
        if tx is None:
            return ty.where(~condition, 0.0)
        return tx.where(condition, 0.0 if ty is None else ty)


# ---------------------------------------------------------------- unary

class Neg(Primitive):
    """-x.  dL/dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return -tangents[0]


class Exp(Primitive):
    """exp(x).  dL/dx = g * out."""

    @staticmethod
    @_silent
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return g * out

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] * out


class Log(Primitive):
    """log(x).  dL/dx = g / x."""

    @staticmethod
    @_silent
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g / x

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] / primals[0]


class Log1p(Primitive):
    """log(1 + x), exact for small x.  dL/dx = g / (1 + x)."""

    @staticmethod
    @_silent
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g / (x + 1)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] / (primals[0] + 1)


class Expm1(Primitive):
    """exp(x) - 1, exact for small x.  dL/dx = g * (out + 1)."""

    @staticmethod
    @_silent
    def forward(ctx, x):
        out = np.expm1(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return g * (out + 1)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] * (out + 1)


class Sin(Primitive):
    """sin(x).  dL/dx = g * cos(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * x.cos()

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] * primals[0].cos()


class Cos(Primitive):
    """cos(x).  dL/dx = -g * sin(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return -(g * x.sin())

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return -(tangents[0] * primals[0].sin())


class Erf(Primitive):
    """erf(x) = 2/sqrt(pi) * integral of exp(-t^2) from 0 to x.  dL/dx = g * 2/sqrt(pi) * exp(-x^2).
    NumPy has no erf: the forward calls Python's math.erf per element (exact, not fast)."""

    _erf = np.vectorize(math.erf, otypes=[np.float64])

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return Erf._erf(x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * Erf.derivative(x)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] * Erf.derivative(primals[0])

    @staticmethod
    def derivative(x):
        return (x * x).neg().exp() * (2 / math.sqrt(math.pi))


class Rounding(Primitive):
    """floor, ceil, round (half to even, as PyTorch), trunc or sign of x: a step function.
    dL/dx = 0 everywhere (as PyTorch; at the steps the derivative does not exist)."""

    functions = {"floor": np.floor, "ceil": np.ceil, "round": np.round, "trunc": np.trunc, "sign": np.sign}

    @staticmethod
    def forward(ctx, x, *, fn):
        return Rounding.functions[fn](x)

    @staticmethod
    def backward(ctx, g):
        return g._wrap(np.zeros(g.shape, g.dtype))

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return out._wrap(np.zeros(out.shape, out.dtype))


class Sqrt(Primitive):
    """sqrt(x).  dL/dx = g / (2 * out)."""

    @staticmethod
    @_silent
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return g / (out * 2)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] / (out * 2)


class Abs(Primitive):
    """|x|.  dL/dx = g * sign(x); 0 at x == 0 and at NaN, as PyTorch."""

    @staticmethod
    def forward(ctx, x):
        sign = np.zeros_like(x)
        np.sign(x, out=sign, where=~np.isnan(x))
        ctx.save_for_backward(sign)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        sign, = ctx.saved_tensors
        return g * sign

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        sign, = ctx.saved_tensors
        return tangents[0] * sign


class Relu(Primitive):
    """max(x, 0).  dL/dx = g * not(x <= 0): 0 at x == 0, g at NaN, as PyTorch."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.logical_not(x <= 0))
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        passes, = ctx.saved_tensors
        # NumPy multiplies by a boolean mask directly: no Cast op, no float copy of the mask
        return Mul.apply(g, g._wrap(passes))

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        passes, = ctx.saved_tensors
        return Mul.apply(tangents[0], out._wrap(passes))


class Tanh(Primitive):
    """tanh(x).  dL/dx = g * (1 - out**2)."""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return g * (1 - out * out)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] * (1 - out * out)


class Sigmoid(Primitive):
    """1 / (1 + exp(-x)), computed without overflow.  dL/dx = g * out * (1 - out)."""

    @staticmethod
    def forward(ctx, x):
        # exp(-|x|) never overflows; pick the form that is stable on each side of 0
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out, = ctx.saved_tensors
        return g * (out * (1 - out))

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0] * (out * (1 - out))


class Clamp(Primitive):
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
        inside, = ctx.saved_tensors
        return g * inside

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        inside, = ctx.saved_tensors
        return tangents[0] * inside


class Cast(Primitive):
    """x converted to `dtype`.  dL/dx = g converted back to x's dtype."""

    @staticmethod
    def forward(ctx, x, *, dtype):
        ctx.save_for_backward(x.dtype)
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        dtype, = ctx.saved_tensors
        return g.to(dtype)

    @staticmethod
    def jvp(ctx, primals, tangents, out):
        return tangents[0].to(out.dtype)
