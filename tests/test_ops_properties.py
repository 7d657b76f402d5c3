"""Every primitive op in one table, and the properties every op must have.

Each row of `TABLE` names a `Primitive` of `tinygrad_cnn.ops` and says
  - how to draw its inputs and op arguments (hypothesis),
  - how to call it through the public API,
  - what a plain NumPy reference says the forward is.
Three tests walk the table: forward == NumPy, gradcheck (first order) and gradgradcheck
(second order), all in float64. A meta-test fails when an op has no row, so no op ships
without a gradient check. Targeted tests follow for what one row cannot say: broadcasting
of every binary op, matmul's 1-D rules, ties in max/min, and Cast's dtypes.
"""
from __future__ import annotations

import importlib
import itertools
import math
import operator
import pkgutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, ops
from tinygrad_cnn.autograd import forward_ad
from tinygrad_cnn.autograd.function import Primitive
from tinygrad_cnn import functional as F
from tinygrad_cnn.testing import (
    arrays,
    broadcastable_shapes,
    distinct_arrays,
    distinct_tensors,
    floats,
    shapes,
    tensors,
)

# Small inputs (at most 27 elements, most far fewer) keep the finite differences cheap.
small_shapes = shapes(max_dims=3, max_side=3)
small_pairs = broadcastable_shapes(2, max_dims=3, max_side=3)


class Example(NamedTuple):
    """One drawn call: the Tensors to differentiate and the op's constant arguments."""
    inputs: tuple[Tensor, ...]
    params: dict[str, Any]


def example(*inputs: Tensor, **params: Any) -> Example:
    return Example(inputs, params)


@dataclass(frozen=True)
class OpCase:
    """A row of the table: `call(*inputs, **params)` runs `op` through the public API and
    must equal `reference(*arrays, **params)`, written in plain NumPy."""
    name: str
    op: type[Primitive]
    example: st.SearchStrategy = field(repr=False)
    call: Callable[..., Tensor] = field(repr=False)
    reference: Callable[..., np.ndarray] = field(repr=False)


def numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


# ================================================================ NumPy helpers

def np_axes(dim: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...] | None:
    """A PyTorch `dim` as a NumPy `axis`: negative dims wrap; a 0-d tensor has nothing to reduce."""
    if ndim == 0:
        return ()
    if dim is None:
        return None
    return tuple(d % ndim for d in ((dim,) if isinstance(dim, int) else dim))


def sum_to_shape(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo broadcasting by hand: sum the extra leading dims, then every dim that was 1."""
    a = a.sum(axis=tuple(range(a.ndim - len(shape))))
    for i, n in enumerate(shape):
        if n == 1:
            a = a.sum(axis=i, keepdims=True)
    return a


def window_pixel(p: int, q: int, i: int, j: int, stride, dilation) -> tuple[int, int]:
    """The input pixel that kernel tap (i, j) of the window at output position (p, q) reads."""
    return p * stride[0] + i * dilation[0], q * stride[1] + j * dilation[1]


def taps(kernel_size, out_hw):
    """Every (p, q, i, j): output position and kernel tap."""
    return itertools.product(range(out_hw[0]), range(out_hw[1]), range(kernel_size[0]), range(kernel_size[1]))


def positions_after(size: int, kernel: int, stride: int, dilation: int) -> int:
    return (size - dilation * (kernel - 1) - 1) // stride + 1


# ================================================================ argument strategies

def pairs_of(lo: int, hi: int) -> st.SearchStrategy:
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


def dim_args(ndim: int, single: bool = False) -> st.SearchStrategy:
    """None (every dim), one dim, or a tuple of distinct dims; negative dims too."""
    n = max(ndim, 1)
    one = st.integers(-n, n - 1)
    if single:
        return one
    return st.none() | one | st.lists(one, min_size=1, max_size=n, unique_by=lambda d: d % n).map(tuple)


@st.composite
def unary_example(draw, **values) -> Example:
    return example(draw(tensors(small_shapes, **values)))


@st.composite
def binary_example(draw, x_values: dict | None = None, y_values: dict | None = None) -> Example:
    """x and y of shapes that broadcast together."""
    sx, sy = draw(small_pairs)
    return example(draw(tensors(sx, **(x_values or {}))), draw(tensors(sy, **(y_values or {}))))


@st.composite
def distinct_binary_example(draw) -> Example:
    """Broadcastable x and y with no value shared between them: maximum has no ties."""
    sx, sy = draw(small_pairs)
    values = draw(distinct_arrays((numel(sx) + numel(sy),)))
    x, y = values[:numel(sx)].reshape(sx), values[numel(sx):].reshape(sy)
    return example(Tensor(x, requires_grad=True), Tensor(y, requires_grad=True))


@st.composite
def int_power_example(draw) -> Example:
    """x ** n for a Python int n; x of either sign, kept away from 0 where x**(n-1) blows up."""
    return example(draw(tensors(small_shapes, away_from=(0.0,), margin=0.3)), exponent=draw(st.integers(-2, 3)))


@st.composite
def where_example(draw) -> Example:
    sc, sx, sy = draw(broadcastable_shapes(3, max_dims=3, max_side=3))
    return example(draw(tensors(sx)), draw(tensors(sy)), condition=draw(hnp.arrays(np.bool_, sc)))


@st.composite
def clamp_example(draw) -> Example:
    """Bounds at least 0.1 apart, and x kept away from both (clamp has a kink at each)."""
    low = draw(floats(-1.5, 1.0))
    high = low + draw(floats(0.1, 1.5))
    bounds = draw(st.sampled_from([{"min": low, "max": high}, {"min": low}, {"max": high}]))
    return example(draw(tensors(small_shapes, away_from=tuple(bounds.values()))), **bounds)


@st.composite
def reduce_example(draw, values=tensors, single_dim: bool = False, min_dims: int = 0) -> Example:
    shape = draw(shapes(min_dims, 3, max_side=3))
    return example(draw(values(shape)), dim=draw(dim_args(len(shape), single_dim)), keepdim=draw(st.booleans()))


@st.composite
def sum_to_size_example(draw) -> Example:
    """A big shape and a target it broadcasts from: a suffix of it with some dims set to 1."""
    big = draw(shapes(1, 3, max_side=3))
    lead = draw(st.integers(0, len(big)))
    size = tuple(1 if draw(st.booleans()) else n for n in big[lead:])
    assume(size != big)  # sum_to_size to its own shape returns the tensor itself, no op
    return example(draw(tensors(big)), size=size)


def prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@st.composite
def reshape_example(draw) -> Example:
    """Any other shape with as many elements: the prime factors dealt out among 0-4 dims
    (dims of 1 appear where none land), and sometimes one dim left to -1."""
    shape = draw(small_shapes)
    factors = prime_factors(numel(shape))
    target = [1] * draw(st.integers(1 if factors else 0, 4))
    for f in factors:
        target[draw(st.integers(0, len(target) - 1))] *= f
    assume(tuple(target) != shape)  # a reshape to the same shape is no op
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return example(draw(tensors(shape)), shape=tuple(target))


@st.composite
def permute_example(draw) -> Example:
    shape = draw(small_shapes)
    perm = draw(st.permutations(range(len(shape))))
    return example(draw(tensors(shape)), dims=tuple(d - len(shape) if draw(st.booleans()) else d for d in perm))


@st.composite
def expand_example(draw) -> Example:
    """New leading dims, dims of 1 grown, other dims kept (as their size or -1)."""
    shape = draw(shapes(0, 2, max_side=3))
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    kept = [draw(st.integers(1, 3)) if n == 1 and draw(st.booleans()) else draw(st.sampled_from([n, -1]))
            for n in shape]
    resolved = tuple(lead) + tuple(n if k == -1 else k for n, k in zip(shape, kept))
    assume(resolved != shape and numel(resolved) <= 36)
    return example(draw(tensors(shape)), sizes=tuple(lead) + tuple(kept))


@st.composite
def indices(draw, shape: tuple[int, ...]) -> tuple:
    """An index into `shape` as NumPy and PyTorch read it: ints (negative too), slices (any
    step, possibly empty), None, Ellipsis, and at most one integer array (a list or an array,
    with repeats); or else a boolean mask of the whole shape."""
    if shape and draw(st.sampled_from(["mixed"] * 5 + ["mask"])) == "mask":
        return (draw(hnp.arrays(np.bool_, shape)),)
    parts: list[Any] = []
    array_used = False
    for n in shape:
        kind = draw(st.sampled_from(([] if array_used else ["array"]) + ["slice", "int", "slice"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            parts.append(draw(st.slices(n)))
        else:
            array_used = True
            picks = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3))
            picks += draw(st.lists(st.sampled_from(picks), max_size=2))  # repeats: their gradients add up
            parts.append(draw(st.sampled_from([picks, np.array(picks)])))
    if draw(st.booleans()):  # an Ellipsis stands for a run (maybe empty) of dims taken whole
        start = draw(st.integers(0, len(parts)))
        stop = draw(st.integers(start, len(parts)))
        if all(isinstance(p, slice) and p == slice(None) for p in parts[start:stop]):
            parts[start:stop] = [Ellipsis]
    else:  # trailing dims left out are taken whole
        parts = parts[:draw(st.integers(0, len(parts)))]
    for _ in range(draw(st.integers(0, 2))):  # None adds a dim of size 1
        parts.insert(draw(st.integers(0, len(parts))), None)
    return tuple(parts)


@st.composite
def getitem_example(draw) -> Example:
    shape = draw(small_shapes)
    return example(draw(tensors(shape)), index=draw(indices(shape)))


@st.composite
def rounding_example(draw) -> Example:
    steps = tuple(np.arange(-2.0, 2.5, 0.5))
    return example(draw(tensors(small_shapes, away_from=steps, margin=0.05)),
                   fn=draw(st.sampled_from(["floor", "ceil", "round", "trunc", "sign"])))


@st.composite
def setitem_example(draw) -> Example:
    """x, an index that picks each element at most once (NumPy and PyTorch both leave it open
    which of two writes to one element wins), and values of x[index]'s shape or a single value."""
    shape = draw(small_shapes)
    index = draw(indices(shape))
    picked = np.arange(numel(shape)).reshape(shape)[index]
    assume(np.unique(picked).size == picked.size)
    values_shape = draw(st.sampled_from([picked.shape, ()]))
    return example(draw(tensors(shape)), draw(tensors(values_shape)), index=index)


def setitem(x: Tensor, values: Tensor, *, index: tuple) -> Tensor:
    """x with values written at index, out of place for the caller: h = x * 1; h[index] = values."""
    h = x * 1.0
    h[index] = values
    return h


def setitem_reference(a, values, *, index):
    out = a.copy()
    out[index] = values
    return out


@st.composite
def index_add_example(draw) -> Example:
    """Values of the shape x[index] has, to be added back into zeros of x's shape."""
    shape = draw(small_shapes)
    index = draw(indices(shape))
    return example(draw(tensors(np.empty(shape)[index].shape)), index=index, shape=shape)


@st.composite
def pad_example(draw) -> Example:
    """PyTorch's pad tuple: (before, after) amounts from the last dim backwards, not all 0."""
    shape = draw(shapes(1, 3, max_side=3))
    k = draw(st.integers(1, len(shape)))
    pad = tuple(draw(st.lists(st.integers(0, 2), min_size=2 * k, max_size=2 * k)))
    padded = list(shape)
    for i in range(k):
        padded[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    assume(any(pad) and numel(padded) <= 48)  # pad of all zeros returns the input itself
    return example(draw(tensors(shape)), pad=pad, value=draw(floats(-2, 2)))


@st.composite
def cat_example(draw) -> Example:
    """1-3 tensors of equal shape but along `dim` (given negative too)."""
    shape = draw(shapes(1, 3, max_side=2))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    axis = dim % len(shape)
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    return example(*[draw(tensors(shape[:axis] + (n,) + shape[axis + 1:])) for n in sizes], dim=dim)


@st.composite
def matmul_example(draw) -> Example:
    """Operands of 1 to 4 dims: vectors, matrices and batches whose batch dims broadcast."""
    n, k, m = draw(st.tuples(*[st.integers(1, 3)] * 3))
    bx, by = draw(broadcastable_shapes(2, max_dims=2, max_side=2))
    x_shape = draw(st.sampled_from([(k,), bx + (n, k)]))
    y_shape = draw(st.sampled_from([(k,), by + (k, m)]))
    return example(draw(tensors(x_shape)), draw(tensors(y_shape)))


@st.composite
def einsum_example(draw) -> Example:
    """1-3 operands of up to 3 letters from 'abcd' (each letter one size): letters shared between
    operands, repeated within one (a diagonal), or in one alone (summed); the output explicit (some of
    the letters, in any order) or implicit; sometimes a leading '...' whose dims broadcast."""
    sizes = dict(zip("abcd", draw(st.lists(st.integers(1, 3), min_size=4, max_size=4))))
    n = draw(st.integers(1, 3))
    terms = ["".join(draw(st.lists(st.sampled_from("abcd"), max_size=3))) for _ in range(n)]
    dots = draw(st.sampled_from(["", "..."]))
    batches = draw(broadcastable_shapes(n, max_dims=1, max_side=2)) if dots else [()] * n
    letters = sorted(set("".join(terms)))
    output = "".join(draw(st.permutations(letters))[:draw(st.integers(0, len(letters)))])
    arrow = draw(st.sampled_from(["", "->" + dots + output]))
    operands = [draw(tensors(b + tuple(sizes[c] for c in t))) for b, t in zip(batches, terms)]
    return example(*operands, equation=",".join(dots + t for t in terms) + arrow)


class Geometry(NamedTuple):
    batch: tuple[int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    out_hw: tuple[int, int]
    input_size: tuple[int, int]


@st.composite
def window_geometries(draw) -> Geometry:
    """A sliding window and an (H, W) it fits exactly OH x OW times: the reach of the last
    window plus 0 to stride-1 pixels no window reads. stride == kernel with no leftover
    pixels tiles the input (WindowScatter's fast path)."""
    kernel, stride, dilation, out_hw = (draw(pairs_of(1, hi)) for hi in (3, 2, 2, 2))
    size = tuple(d * (k - 1) + 1 + (o - 1) * s + draw(st.integers(0, s - 1))
                 for k, s, d, o in zip(kernel, stride, dilation, out_hw))
    batch = draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
    assume(numel(batch + size) <= 36 and numel(batch + kernel + out_hw) <= 36)
    return Geometry(batch, kernel, stride, dilation, out_hw, size)


def window_args(g: Geometry) -> dict[str, Any]:
    return {"kernel_size": g.kernel_size, "stride": g.stride, "dilation": g.dilation}


class ConvGeometry(NamedTuple):
    """A convolution: (N, C, H, W) * (O, C/groups, KH, KW) -> (N, O, OH, OW), and its op arguments."""
    input_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    output_shape: tuple[int, int, int, int]
    args: dict[str, Any]


@st.composite
def conv_geometries(draw) -> ConvGeometry:
    """A window geometry, zero padding (left, right, top, bottom) of 0 or 1 around an input
    of at least one pixel, and channels in 1 or 2 groups."""
    g = draw(window_geometries())
    padding = draw(st.tuples(*[st.integers(0, 1)] * 4))
    left, right, top, bottom = padding
    h, w = g.input_size[0] - top - bottom, g.input_size[1] - left - right
    assume(h >= 1 and w >= 1)
    groups, c_per_group, o_per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n, o = g.batch[0], groups * o_per_group
    geometry = ConvGeometry((n, groups * c_per_group, h, w), (o, c_per_group) + g.kernel_size, (n, o) + g.out_hw,
                            {"padding": padding, "stride": g.stride, "dilation": g.dilation, "groups": groups})
    assume(numel(geometry.input_shape) + numel(geometry.weight_shape) + numel(geometry.output_shape) <= 60)
    return geometry


@st.composite
def conv_example(draw) -> Example:
    g = draw(conv_geometries())
    bias = (draw(tensors((g.weight_shape[0],))),) if draw(st.booleans()) else ()
    return example(draw(tensors(g.input_shape)), draw(tensors(g.weight_shape)), *bias, **g.args)


@st.composite
def batch_norm_example(draw) -> Example:
    """x (N, C, ...) with every channel spread out (a variance near 0 makes finite differences useless),
    weight and bias (C,)."""
    channels = draw(st.integers(1, 3))
    shape = (draw(st.integers(2, 3)), channels, *draw(st.sampled_from([(), (2,), (2, 2)])))
    x = draw(tensors(shape, low=-3.0, high=3.0))
    assume(np.all(x.detach().numpy().var(axis=(0, *range(2, len(shape)))) > 0.1))
    return example(x, draw(tensors((channels,))), draw(tensors((channels,))))


def batch_norm(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return F.batch_norm(x, None, None, w, b, training=True)


def batch_norm_reference(a, w, b):
    axes, shape = (0, *range(2, a.ndim)), (1, -1) + (1,) * (a.ndim - 2)
    normalized = (a - a.mean(axes, keepdims=True)) / np.sqrt(a.var(axes, keepdims=True) + 1e-5)
    return normalized * w.reshape(shape) + b.reshape(shape)


@st.composite
def conv_transpose_example(draw) -> Example:
    g = draw(conv_geometries())
    return example(draw(tensors(g.output_shape)), draw(tensors(g.weight_shape)), input_size=g.input_shape[-2:],
                   **g.args)


@st.composite
def conv_weight_grad_example(draw) -> Example:
    g = draw(conv_geometries())
    return example(draw(tensors(g.input_shape)), draw(tensors(g.output_shape)), kernel_size=g.weight_shape[-2:],
                   **g.args)


@st.composite
def window_max_example(draw) -> Example:
    g = draw(window_geometries())
    return example(draw(distinct_tensors(g.batch + g.input_size)), **window_args(g))


@st.composite
def window_offsets(draw, g: Geometry) -> np.ndarray:
    """One kernel offset k = i * KW + j per window, in the integer types WindowMax produces."""
    dtype = draw(st.sampled_from([np.int8, np.int32]))
    return draw(hnp.arrays(dtype, g.batch + g.out_hw, elements=st.integers(0, numel(g.kernel_size) - 1)))


@st.composite
def window_scatter_example(draw) -> Example:
    g = draw(window_geometries())
    return example(draw(tensors(g.batch + g.out_hw)), index=draw(window_offsets(g)), input_size=g.input_size,
                   **window_args(g))


@st.composite
def window_gather_example(draw) -> Example:
    g = draw(window_geometries())
    return example(draw(tensors(g.batch + g.input_size)), index=draw(window_offsets(g)), **window_args(g))


@st.composite
def cumsum_example(draw) -> Example:
    x = draw(tensors(small_shapes))
    return example(x, dim=draw(dim_args(x.ndim, single=True)))


@st.composite
def remainder_example(draw) -> Example:
    """x = (q + f) * y: whole quotients q and fractions f in [0.1, 0.9] keep x / y off the steps of the
    remainder; y is broadcast against x, and kept off 0."""
    sx, sy = draw(small_pairs)
    y = draw(arrays(sy, away_from=(0.0,), margin=0.5))
    shape = np.broadcast_shapes(sx, sy)
    q = draw(hnp.arrays(np.float64, shape, elements=st.integers(-3, 3).map(float)))
    f = draw(arrays(shape, low=0.1, high=0.9))
    assume(shape == sx)  # x takes the broadcast shape, so y alone broadcasts
    return example(Tensor((q + f) * y, requires_grad=True), Tensor(y, requires_grad=True),
                   mode=draw(st.sampled_from(["fmod", "remainder"])))


# ================================================================ calls that need a helper

def getitem_vjp(g: Tensor, *, index: tuple, shape: tuple[int, ...]) -> Tensor:
    """IndexAdd through the public API: the gradient x[index] sends back to x is IndexAdd(g).
    Recording is forced on because gradcheck probes the function under no_grad."""
    with tg.enable_grad():
        x = tg.zeros(shape, dtype=np.float64, requires_grad=True)
        (gx,) = tg.grad(x[index], x, g, create_graph=True)
    return gx


def cast_round_trip(x: Tensor) -> Tensor:
    """Two Casts that lose nothing, so central differences in float64 still work: every float64
    is exactly a longdouble (80-bit here) and back. (float32 would round away the eps steps.)"""
    return x.to(np.longdouble).to(np.float64)


# ================================================================ NumPy references

def clamp_reference(a, *, min=None, max=None):  # PyTorch's names
    if min is not None:
        a = np.maximum(a, min)
    if max is not None:
        a = np.minimum(a, max)
    return a


def reduce_reference(np_fn):
    return lambda a, *, dim, keepdim: np_fn(a, axis=np_axes(dim, a.ndim), keepdims=keepdim)


def expand_reference(a, *, sizes):
    """Broadcast by multiplying with ones: a's dims line up with the last ones of `sizes`."""
    lead = len(sizes) - a.ndim
    shape = tuple(sizes[:lead]) + tuple(n if k == -1 else k for n, k in zip(a.shape, sizes[lead:]))
    return a.reshape((1,) * lead + a.shape) * np.ones(shape)


def index_add_reference(g, *, index, shape):
    """zeros(shape), each value of g added at the position index picked for it (repeats add up)."""
    out = np.zeros(numel(shape))
    picked = np.arange(out.size).reshape(shape)[index]
    for position, value in zip(picked.ravel(), g.ravel()):
        out[position] += value
    return out.reshape(shape)


def pad_reference(a, *, pad, value):
    pairs = [(0, 0)] * (a.ndim - len(pad) // 2) + [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)][::-1]
    out = np.full([n + before + after for n, (before, after) in zip(a.shape, pairs)], value)
    out[tuple(slice(before, before + n) for n, (before, _) in zip(a.shape, pairs))] = a
    return out


def cat_reference(*arrays, dim):
    axis = dim % arrays[0].ndim
    out_shape = list(arrays[0].shape)
    out_shape[axis] = sum(a.shape[axis] for a in arrays)
    out, start = np.empty(out_shape), 0
    for a in arrays:
        out[(slice(None),) * axis + (slice(start, start + a.shape[axis]),)] = a
        start += a.shape[axis]
    return out


def unfold_reference(a, *, kernel_size, stride, dilation):
    out_hw = tuple(positions_after(n, k, s, d) for n, k, s, d in zip(a.shape[-2:], kernel_size, stride, dilation))
    out = np.empty(a.shape[:-2] + tuple(kernel_size) + out_hw)
    for p, q, i, j in taps(kernel_size, out_hw):
        out[..., i, j, p, q] = a[(...,) + window_pixel(p, q, i, j, stride, dilation)]
    return out


def conv_taps(input_size, kernel_size, padding, stride, dilation, out_hw):
    """Every (p, q, i, j, y, x): tap (i, j) of the window at output (p, q) reads input pixel (y, x),
    for the taps that land inside the input (not in the zero padding)."""
    left, _, top, _ = padding
    for p, q, i, j in taps(kernel_size, out_hw):
        y, x = (v - pad for v, pad in zip(window_pixel(p, q, i, j, stride, dilation), (top, left)))
        if 0 <= y < input_size[0] and 0 <= x < input_size[1]:
            yield p, q, i, j, y, x


def by_group(a, groups):
    """(N, C, ...) -> (N, G, C/G, ...)."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def conv_reference(x, w, b=None, *, padding, stride, dilation, groups):
    """y[n, o, p, q] = b[o] + sum over the taps inside the input of x[n, c, y, x] * w[o, c, i, j]."""
    left, right, top, bottom = padding
    out_hw = tuple(positions_after(size + pads, k, s, d) for size, pads, k, s, d in zip(
        x.shape[-2:], (top + bottom, left + right), w.shape[-2:], stride, dilation))
    xg, wg = by_group(x, groups), w.reshape(groups, -1, *w.shape[1:])
    out = np.zeros((x.shape[0], groups, w.shape[0] // groups) + out_hw)
    for p, q, i, j, y, x_ in conv_taps(x.shape[-2:], w.shape[-2:], padding, stride, dilation, out_hw):
        out[..., p, q] += np.einsum("ngc,goc->ngo", xg[..., y, x_], wg[..., i, j])
    out = out.reshape(x.shape[0], w.shape[0], *out_hw)
    return out if b is None else out + b[:, None, None]


def conv_transpose_reference(g, w, *, input_size, padding, stride, dilation, groups):
    """dx[n, c, y, x] = sum of g[n, o, p, q] * w[o, c, i, j] over the taps that read (y, x)."""
    gg, wg = by_group(g, groups), w.reshape(groups, -1, *w.shape[1:])
    dx = np.zeros((g.shape[0], groups, w.shape[1]) + tuple(input_size))
    for p, q, i, j, y, x in conv_taps(input_size, w.shape[-2:], padding, stride, dilation, g.shape[-2:]):
        dx[..., y, x] += np.einsum("ngo,goc->ngc", gg[..., p, q], wg[..., i, j])
    return dx.reshape(g.shape[0], groups * w.shape[1], *input_size)


def conv_weight_grad_reference(x, g, *, kernel_size, padding, stride, dilation, groups):
    """dw[o, c, i, j] = sum over n and the output positions of x[n, c, y, x] * g[n, o, p, q]."""
    xg, gg = by_group(x, groups), by_group(g, groups)
    dw = np.zeros((groups, g.shape[1] // groups, x.shape[1] // groups) + tuple(kernel_size))
    for p, q, i, j, y, x_ in conv_taps(x.shape[-2:], kernel_size, padding, stride, dilation, g.shape[-2:]):
        dw[..., i, j] += np.einsum("ngc,ngo->goc", xg[..., y, x_], gg[..., p, q])
    return dw.reshape(g.shape[1], x.shape[1] // groups, *kernel_size)


def window_max_reference(a, *, kernel_size, stride, dilation):
    return unfold_reference(a, kernel_size=kernel_size, stride=stride, dilation=dilation).max(axis=(-4, -3))


def window_scatter_reference(g, *, index, input_size, kernel_size, stride, dilation):
    out = np.zeros(g.shape[:-2] + tuple(input_size))
    for *b, p, q in np.ndindex(index.shape):
        i, j = divmod(int(index[(*b, p, q)]), kernel_size[1])
        out[(*b, *window_pixel(p, q, i, j, stride, dilation))] += g[(*b, p, q)]
    return out


def window_gather_reference(a, *, index, kernel_size, stride, dilation):
    out = np.empty(index.shape)
    for *b, p, q in np.ndindex(index.shape):
        i, j = divmod(int(index[(*b, p, q)]), kernel_size[1])
        out[(*b, p, q)] = a[(*b, *window_pixel(p, q, i, j, stride, dilation))]
    return out


# ================================================================ the table

TABLE = [
    # elementwise, binary (shapes broadcast)
    OpCase("Add", ops.Add, binary_example(), operator.add, np.add),
    OpCase("Sub", ops.Sub, binary_example(), operator.sub, np.subtract),
    OpCase("Mul", ops.Mul, binary_example(), operator.mul, np.multiply),
    OpCase("Div", ops.Div, binary_example(y_values={"away_from": (0.0,), "margin": 0.5}), operator.truediv, np.divide),
    OpCase("Pow", ops.Pow, binary_example(x_values={"low": 0.5}), operator.pow, np.power),
    OpCase("Pow/int_exponent", ops.Pow, int_power_example(), lambda x, *, exponent: x ** exponent,
           lambda a, *, exponent: np.power(a, float(exponent))),
    OpCase("Remainder", ops.Remainder, remainder_example(), lambda x, y, *, mode: getattr(x, mode)(y),
           lambda a, b, *, mode: getattr(np, mode)(a, b)),
    OpCase("Maximum", ops.Maximum, distinct_binary_example(), lambda x, y: x.maximum(y), np.maximum),
    OpCase("Minimum", ops.Minimum, distinct_binary_example(), lambda x, y: x.minimum(y), np.minimum),
    OpCase("Where", ops.Where, where_example(), lambda x, y, *, condition: tg.where(condition, x, y),
           lambda a, b, *, condition: np.where(condition, a, b)),
    # elementwise, unary
    OpCase("Neg", ops.Neg, unary_example(), operator.neg, np.negative),
    OpCase("Exp", ops.Exp, unary_example(), lambda x: x.exp(), np.exp),
    OpCase("Log", ops.Log, unary_example(low=0.5), lambda x: x.log(), np.log),
    OpCase("Sqrt", ops.Sqrt, unary_example(low=0.5), lambda x: x.sqrt(), np.sqrt),
    OpCase("Abs", ops.Abs, unary_example(away_from=(0.0,)), abs, np.abs),
    OpCase("Relu", ops.Relu, unary_example(away_from=(0.0,)), lambda x: x.relu(), lambda a: np.where(a > 0, a, 0.0)),
    OpCase("Tanh", ops.Tanh, unary_example(), lambda x: x.tanh(), np.tanh),
    OpCase("Sin", ops.Sin, unary_example(low=-4.0, high=4.0), lambda x: x.sin(), np.sin),
    OpCase("Cos", ops.Cos, unary_example(low=-4.0, high=4.0), lambda x: x.cos(), np.cos),
    OpCase("Log1p", ops.Log1p, unary_example(low=-0.5), lambda x: x.log1p(), np.log1p),
    OpCase("Expm1", ops.Expm1, unary_example(), lambda x: x.expm1(), np.expm1),
    OpCase("Erf", ops.Erf, unary_example(low=-3.0, high=3.0), lambda x: x.erf(), np.vectorize(math.erf)),
    # steps at every integer (floor, ceil, trunc, sign) and half-integer (round): values kept off them
    OpCase("Rounding", ops.Rounding, rounding_example(), lambda x, *, fn: getattr(x, fn)(),
           lambda a, *, fn: getattr(np, fn)(a)),
    # wide enough to reach both of the stable forms sigmoid switches between
    OpCase("Sigmoid", ops.Sigmoid, unary_example(low=-8.0, high=8.0), lambda x: x.sigmoid(),
           lambda a: 1 / (1 + np.exp(-a))),
    OpCase("Clamp", ops.Clamp, clamp_example(), lambda x, **bounds: x.clamp(**bounds), clamp_reference),
    OpCase("Cast", ops.Cast, unary_example(), cast_round_trip, lambda a: a),
    # reductions
    OpCase("Sum", ops.Sum, reduce_example(), lambda x, *, dim, keepdim: x.sum(dim=dim, keepdim=keepdim),
           reduce_reference(np.sum)),
    # distinct values: no ties, so no finite difference crosses a switch of the maximum
    OpCase("Max/amax", ops.Max, reduce_example(distinct_tensors), lambda x, *, dim, keepdim: x.amax(dim, keepdim),
           reduce_reference(np.max)),
    OpCase("Max/max_dim", ops.Max, reduce_example(distinct_tensors, single_dim=True, min_dims=1),
           lambda x, *, dim, keepdim: x.max(dim, keepdim).values, reduce_reference(np.max)),
    OpCase("Min/amin", ops.Min, reduce_example(distinct_tensors), lambda x, *, dim, keepdim: x.amin(dim, keepdim),
           reduce_reference(np.min)),
    OpCase("Min/min_dim", ops.Min, reduce_example(distinct_tensors, single_dim=True, min_dims=1),
           lambda x, *, dim, keepdim: x.min(dim, keepdim).values, reduce_reference(np.min)),
    OpCase("Cumsum", ops.Cumsum, cumsum_example(), lambda x, *, dim: x.cumsum(dim),
           lambda a, *, dim: np.cumsum(a.reshape(a.shape or (1,)), axis=dim % max(a.ndim, 1)).reshape(a.shape)),
    OpCase("SumToSize", ops.SumToSize, sum_to_size_example(), lambda x, *, size: x.sum_to_size(size),
           lambda a, *, size: sum_to_shape(a, size)),
    # movement
    OpCase("Reshape", ops.Reshape, reshape_example(), lambda x, *, shape: x.reshape(shape),
           lambda a, *, shape: a.reshape(shape)),
    OpCase("Permute", ops.Permute, permute_example(), lambda x, *, dims: x.permute(*dims),
           lambda a, *, dims: a.transpose([d % a.ndim for d in dims])),
    OpCase("Expand", ops.Expand, expand_example(), lambda x, *, sizes: x.expand(*sizes), expand_reference),
    OpCase("GetItem", ops.GetItem, getitem_example(), lambda x, *, index: x[index], lambda a, *, index: a[index]),
    OpCase("SetItem", ops.SetItem, setitem_example(), setitem, setitem_reference),
    OpCase("IndexAdd", ops.IndexAdd, index_add_example(), getitem_vjp, index_add_reference),
    OpCase("Pad", ops.Pad, pad_example(), lambda x, *, pad, value: F.pad(x, pad, value=value), pad_reference),
    OpCase("Cat", ops.Cat, cat_example(), lambda *xs, dim: tg.cat(xs, dim), cat_reference),
    # matmul
    OpCase("MatMul", ops.MatMul, matmul_example(), operator.matmul, np.matmul),
    OpCase("Einsum", ops.Einsum, einsum_example(), lambda *xs, equation: tg.einsum(equation, *xs),
           lambda *arrays, equation: np.einsum(equation, *arrays)),
    # convolution and sliding windows: functional composes these into conv2d and pooling; here each
    # primitive is called on its own, so every geometry (and each VJP's own VJP) is drawn directly
    OpCase("Conv2d", ops.Conv2d, conv_example(), ops.Conv2d.apply, conv_reference),
    OpCase("ConvTranspose2d", ops.ConvTranspose2d, conv_transpose_example(), ops.ConvTranspose2d.apply,
           conv_transpose_reference),
    OpCase("Conv2dWeightGrad", ops.Conv2dWeightGrad, conv_weight_grad_example(), ops.Conv2dWeightGrad.apply,
           conv_weight_grad_reference),
    OpCase("BatchNorm", ops.BatchNorm, batch_norm_example(), batch_norm, batch_norm_reference),
    OpCase("WindowMax", ops.WindowMax, window_max_example(), lambda x, **kw: ops.WindowMax.apply(x, **kw),
           window_max_reference),
    OpCase("WindowScatter", ops.WindowScatter, window_scatter_example(),
           lambda x, **kw: ops.WindowScatter.apply(x, **kw), window_scatter_reference),
    OpCase("WindowGather", ops.WindowGather, window_gather_example(),
           lambda x, **kw: ops.WindowGather.apply(x, **kw), window_gather_reference),
]

table = pytest.mark.parametrize("case", TABLE, ids=lambda case: case.name)
# The table is the suite's net under every gradient, and its rows are cheap: more than the
# profile's 40 examples each (about 25 s for the whole file on 2 cores).
TABLE_EXAMPLES = settings(max_examples=100)


def ops_in_graph(out: Tensor) -> set[type[Primitive]]:
    """Every op recorded in the graph that produced `out`."""
    found, seen, stack = set(), set(), [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        found.add(getattr(node, "fn", None))
        stack.extend(n for n, _ in node.next_functions)
    return found


# ================================================================ properties of every row

@table
@TABLE_EXAMPLES
@given(data=st.data())
def test_forward_matches_numpy(case: OpCase, data):
    """The op computes what the NumPy reference says (and the row really runs its op)."""
    inputs, params = data.draw(case.example, label="example")
    out = case.call(*inputs, **params)
    expected = case.reference(*[x.detach().numpy().copy() for x in inputs], **params)
    assert case.op in ops_in_graph(out), f"{case.name} never runs {case.op.__name__}"
    assert out.dtype == np.float64
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


@table
@pytest.mark.parametrize("check", [gradcheck, gradgradcheck], ids=["first order", "second order"])
@TABLE_EXAMPLES
@given(data=st.data())
def test_derivatives(case: OpCase, check, data):
    """First derivatives: the VJP agrees with central differences. Second derivatives
    (gradgradcheck): the VJP is itself built from ops with correct VJPs."""
    inputs, params = data.draw(case.example, label="example")
    assert check(lambda *xs: case.call(*xs, **params), inputs)


# ================================================================ no op without a row

def ops_without_a_row(registry: dict[str, type]) -> set[str]:
    """Names of the op classes in `registry` that live in tinygrad_cnn.ops but have no row."""
    covered = {case.op for case in TABLE}
    return {name for name, cls in registry.items()
            if (cls.__module__ == "tinygrad_cnn.ops" or cls.__module__.startswith("tinygrad_cnn.ops."))
            and cls not in covered}


def test_every_op_has_a_row():
    # import every module of the package, so an op in a module nobody imports yet still counts
    for module in pkgutil.walk_packages(ops.__path__, ops.__name__ + "."):
        importlib.import_module(module.name)
    assert ops_without_a_row(Primitive.registry) == set()


def test_a_new_op_without_a_row_is_caught():
    """The meta-test can fail: a class from the ops package that no row names is reported."""
    softplus = type("Softplus", (), {"__module__": "tinygrad_cnn.ops.elementwise"})
    elsewhere = type("MyOp", (), {"__module__": "my_project.ops"})
    assert ops_without_a_row({**Primitive.registry, "Softplus": softplus, "MyOp": elsewhere}) == {"Softplus"}


# ================================================================ forward mode: the JVP of every row

def jvp_of(f: Callable[..., Tensor], inputs: tuple[Tensor, ...], tangents: list[np.ndarray]) -> Tensor:
    """f's output tangent under forward_ad, each input moving along its tangent."""
    with forward_ad.dual_level():
        out = f(*[forward_ad.make_dual(x.detach(), Tensor(t)) for x, t in zip(inputs, tangents)])
        primal, tangent = forward_ad.unpack_dual(out)
    assert tangent is not None and tangent.shape == primal.shape and tangent.dtype == primal.dtype
    return tangent


def vjp_transposed(f: Callable[..., Tensor], inputs: tuple[Tensor, ...], tangents: list[np.ndarray]) -> np.ndarray:
    """J t from reverse mode alone: u -> J^T u (a VJP, linear in u) has the derivative J t along
    <J^T u, t> in u, one backward through the VJP."""
    with tg.enable_grad():
        xs = [x.detach().requires_grad_() for x in inputs]
        out = f(*xs)
        u = tg.zeros(out.shape, dtype=np.float64, requires_grad=True)
        vjps = tg.grad(out, xs, u, create_graph=True, allow_unused=True)
        along = sum((g * Tensor(t)).sum() for g, t in zip(vjps, tangents) if g is not None)
        if not (isinstance(along, Tensor) and along.requires_grad):  # J^T u does not depend on u: J = 0
            return np.zeros(out.shape)
        (jt,) = tg.grad(along, u, allow_unused=True)
    return np.zeros(out.shape) if jt is None else jt.numpy()


# The SetItem row writes in place (h[index] = values), and in-place writes do not carry tangents yet
# (Tensor._inplace and __setitem__ copy values only): its JVP is checked on the op itself.
JVP_CALLS = {"SetItem": ops.SetItem.apply}


@table
@given(data=st.data())
def test_jvp_matches_finite_differences_and_the_vjp(case: OpCase, data):
    """The op's JVP with a random tangent t: (f(x + eps t) - f(x - eps t)) / 2 eps, and J t as
    reverse mode computes it (transposing the VJP)."""
    inputs, params = data.draw(case.example, label="example")
    call = JVP_CALLS.get(case.name, case.call)
    f = lambda *xs: call(*xs, **params)  # noqa: E731
    tangents = [data.draw(arrays(x.shape, -1.0, 1.0), label="tangent") for x in inputs]
    jvp = jvp_of(f, inputs, tangents).numpy()
    eps = 1e-6
    with tg.no_grad():
        ahead, behind = (f(*[Tensor(x.detach().numpy() + sign * eps * t) for x, t in zip(inputs, tangents)])
                         for sign in (1, -1))
    np.testing.assert_allclose(jvp, (ahead.numpy() - behind.numpy()) / (2 * eps), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jvp, vjp_transposed(f, inputs, tangents), rtol=1e-10, atol=1e-10)


def primitives_without_jvp(registry: dict[str, type]) -> set[str]:
    """The Primitives of the package that keep the base class's jvp (none of their own)."""
    return {name for name, cls in registry.items()
            if cls.__module__.startswith("tinygrad_cnn.") and cls.jvp is Primitive.jvp}


def test_every_primitive_has_a_jvp():
    for module in pkgutil.walk_packages(tg.__path__, tg.__name__ + "."):
        if not module.name.startswith("tinygrad_cnn.__main__"):
            importlib.import_module(module.name)
    assert primitives_without_jvp(Primitive.registry) == set()


def test_a_primitive_without_a_jvp_is_caught():
    """The meta-test can fail: a Primitive of the package with no jvp is reported, and using it
    with a tangent raises."""
    class NoJvp(Primitive):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    del Primitive.registry[f"{NoJvp.__module__}.{NoJvp.__qualname__}"]  # the real registry stays as it was
    NoJvp.__module__ = "tinygrad_cnn.ops.elementwise"  # as if it were one of ours
    assert primitives_without_jvp({**Primitive.registry, "NoJvp": NoJvp}) == {"NoJvp"}
    with forward_ad.dual_level():
        x = forward_ad.make_dual(tg.ones(2, dtype=np.float64), tg.ones(2, dtype=np.float64))
        with pytest.raises(NotImplementedError, match="NoJvp"):
            NoJvp.apply(x)
        assert NoJvp.apply(tg.ones(2)).tolist() == [2.0, 2.0]  # no tangent flows in: no rule needed


# ================================================================ broadcasting, every binary op

class BinaryRule(NamedTuple):
    call: Callable
    forward: Callable
    partials: Callable  # (x, y) -> (d out/dx, d out/dy), elementwise, by hand
    x_low: float = -2.0
    y_low: float = -2.0


BINARY = {
    "add": BinaryRule(operator.add, np.add, lambda x, y: (np.ones_like(x + y), np.ones_like(x + y))),
    "sub": BinaryRule(operator.sub, np.subtract, lambda x, y: (np.ones_like(x + y), -np.ones_like(x + y))),
    "mul": BinaryRule(operator.mul, np.multiply, lambda x, y: (y + 0 * x, x + 0 * y)),
    "div": BinaryRule(operator.truediv, np.divide, lambda x, y: (1 / y + 0 * x, -x / y ** 2), y_low=0.5),
    "pow": BinaryRule(operator.pow, np.power, lambda x, y: (y * x ** (y - 1), x ** y * np.log(x)), x_low=0.5),
    # maximum is a method, not an operator: a number on its left has to become a tensor first
    "maximum": BinaryRule(lambda x, y: (x if isinstance(x, Tensor) else tg.tensor(x, dtype=y.dtype)).maximum(y),
                          np.maximum, lambda x, y: ((x > y) + 0.5 * (x == y), (x < y) + 0.5 * (x == y))),
}


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_op_broadcasts_and_sums_gradients_back(name, data):
    """x op y for shapes that broadcast, or with a Python number on either side: the forward is
    NumPy's, and each operand's gradient has its own shape, equal to the cotangent times the
    hand-written partial derivative, summed over the broadcast dims."""
    rule = BINARY[name]
    sx, sy = data.draw(broadcastable_shapes(2, max_dims=4, max_side=3), label="shapes")
    form = data.draw(st.sampled_from(["tensor, tensor", "tensor, number", "number, tensor"]), label="form")
    x = data.draw(arrays(sx if form != "number, tensor" else (), low=rule.x_low), label="x")
    y = data.draw(arrays(sy if form != "tensor, number" else (), low=rule.y_low), label="y")
    wants = data.draw(st.sampled_from([(True, True), (True, False), (False, True)]), label="requires_grad")
    operands = [float(a) if kind == "number" else Tensor(a, requires_grad=w)
                for a, kind, w in zip((x, y), form.split(", "), wants)]
    assume(any(isinstance(t, Tensor) and t.requires_grad for t in operands))

    out = rule.call(*operands)
    expected = rule.forward(x, y)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)

    leaves = [(t, d) for t, d in zip(operands, rule.partials(x, y)) if isinstance(t, Tensor) and t.requires_grad]
    v = np.random.default_rng(0).standard_normal(out.shape)
    found = tg.grad(out, [t for t, _ in leaves], Tensor(v))
    for (t, partial), g in zip(leaves, found):
        assert g.shape == t.shape
        np.testing.assert_allclose(g.numpy(), sum_to_shape(v * partial, t.shape), rtol=1e-10, atol=1e-12)


# ================================================================ matmul's rules

def matmul_shapes(rule: str, n: int, k: int, m: int, bx: tuple, by: tuple):
    """(x shape, y shape, result shape) as PyTorch's matmul documents them."""
    batch = np.broadcast_shapes(bx, by)
    return {
        "1-D @ 1-D": ((k,), (k,), ()),  # the dot product
        "1-D @ 2-D": ((k,), (k, m), (m,)),  # a 1 prepended to x, then removed
        "2-D @ 1-D": ((n, k), (k,), (n,)),  # a 1 appended to y, then removed
        "1-D @ batched": ((k,), by + (k, m), by + (m,)),
        "batched @ 1-D": (bx + (n, k), (k,), bx + (n,)),
        "batched @ batched": (bx + (n, k), by + (k, m), batch + (n, m)),  # batch dims broadcast
    }[rule]


@pytest.mark.parametrize("rule", ["1-D @ 1-D", "1-D @ 2-D", "2-D @ 1-D", "1-D @ batched", "batched @ 1-D",
                                  "batched @ batched"])
@given(nkm=st.tuples(*[st.integers(1, 3)] * 3), batches=broadcastable_shapes(2, min_dims=1, max_dims=2, max_side=2),
       data=st.data())
def test_matmul_follows_pytorch_rules(rule, nkm, batches, data):
    x_shape, y_shape, out_shape = matmul_shapes(rule, *nkm, *batches)
    x, y = data.draw(tensors(x_shape), label="x"), data.draw(tensors(y_shape), label="y")
    out = x @ y
    assert out.shape == out_shape
    np.testing.assert_allclose(out.detach().numpy(), np.matmul(x.detach().numpy(), y.detach().numpy()),
                               rtol=1e-12, atol=1e-12)
    assert gradcheck(operator.matmul, [x, y])


# ================================================================ ties in max and min

def tied_arrays(shape) -> st.SearchStrategy:
    """Values from {0, 1, 2}: most reductions meet ties."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 2.0]))


def groups_along(shape: tuple[int, ...], axes: tuple[int, ...]) -> dict[tuple, list[tuple]]:
    """The elements each output of a reduction over `axes` sees, keyed by the output's position,
    each group in row-major order."""
    groups = defaultdict(list)
    for idx in np.ndindex(shape):
        groups[tuple(i for d, i in enumerate(idx) if d not in axes)].append(idx)
    return groups


extremum = pytest.mark.parametrize("sign", [1, -1], ids=["max", "min"])


@extremum
@given(data=st.data())
def test_amax_splits_the_gradient_evenly_among_ties(sign, data):
    shape = data.draw(shapes(0, 3, max_side=3), label="shape")
    a = data.draw(tied_arrays(shape), label="x")
    dim, keepdim = data.draw(dim_args(len(shape)), label="dim"), data.draw(st.booleans(), label="keepdim")
    x = Tensor(a, requires_grad=True)
    out = x.amax(dim, keepdim) if sign == 1 else x.amin(dim, keepdim)
    v = np.random.default_rng(1).standard_normal(out.shape)
    (g,) = tg.grad(out, x, Tensor(v))

    axes = np_axes(dim, a.ndim)
    groups = groups_along(a.shape, tuple(range(a.ndim)) if axes is None else axes)
    expected = np.zeros_like(a)
    for v_k, members in zip(v.ravel(), groups.values()):  # groups come in the output's row-major order
        best = max(sign * a[i] for i in members)
        winners = [i for i in members if sign * a[i] == best]
        for i in winners:
            expected[i] = v_k / len(winners)
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-12, atol=1e-15)


@extremum
@given(data=st.data())
def test_max_over_a_dim_gives_the_gradient_to_the_first_extremum(sign, data):
    shape = data.draw(shapes(1, 3, max_side=3), label="shape")
    a = data.draw(tied_arrays(shape), label="x")
    dim, keepdim = data.draw(dim_args(len(shape), single=True), label="dim"), data.draw(st.booleans(), label="keepdim")
    x = Tensor(a, requires_grad=True)
    values, indices = x.max(dim, keepdim) if sign == 1 else x.min(dim, keepdim)
    v = np.random.default_rng(2).standard_normal(values.shape)
    (g,) = tg.grad(values, x, Tensor(v))

    axis = dim % a.ndim
    expected, first = np.zeros_like(a), []
    for v_k, members in zip(v.ravel(), groups_along(a.shape, (axis,)).values()):
        best = max(sign * a[i] for i in members)
        winner = next(i for i in members if sign * a[i] == best)  # members run along the dim in order
        expected[winner] = v_k
        first.append(winner[axis])
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-12, atol=1e-15)
    assert indices.shape == values.shape
    np.testing.assert_array_equal(indices.numpy().ravel(), first)


@extremum
@given(data=st.data())
def test_maximum_splits_the_gradient_in_half_at_ties(sign, data):
    shape = data.draw(small_shapes, label="shape")
    a, b = data.draw(tied_arrays(shape), label="x"), data.draw(tied_arrays(shape), label="y")
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = x.maximum(y) if sign == 1 else x.minimum(y)
    v = np.random.default_rng(3).standard_normal(shape)
    gx, gy = tg.grad(out, [x, y], Tensor(v))
    x_share = np.where(sign * a > sign * b, 1.0, np.where(a == b, 0.5, 0.0))
    np.testing.assert_allclose(gx.numpy(), v * x_share, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gy.numpy(), v * (1 - x_share), rtol=1e-12, atol=1e-15)


def test_max_over_the_dim_of_a_0d_tensor():
    """As PyTorch: a 0-d tensor has one dim to name (0 or -1); max over it is the value, at index 0."""
    x = Tensor(np.array(2.5), requires_grad=True)
    values, indices = x.max(0)
    assert values.shape == () and values.item() == 2.5 and indices.item() == 0
    (g,) = tg.grad(values, x)
    assert g.item() == 1.0


# ================================================================ Cast and dtypes

@pytest.mark.parametrize("source, target", [(np.float32, np.float64), (np.float64, np.float32),
                                            (np.float64, np.longdouble)])
@given(data=st.data())
def test_cast_converts_forward_and_casts_the_gradient_back(source, target, data):
    a = data.draw(arrays(small_shapes), label="x").astype(source)
    x = Tensor(a, requires_grad=True)
    y = x.to(target)
    assert y.dtype == target
    np.testing.assert_array_equal(y.detach().numpy(), a.astype(target))
    v = data.draw(arrays(y.shape), label="cotangent").astype(target)
    (g,) = tg.grad(y, x, Tensor(v))
    assert g.dtype == source  # the gradient of an input always has the input's dtype
    np.testing.assert_array_equal(g.numpy(), v.astype(source))


@pytest.mark.parametrize("target", [np.int64, np.bool_])
def test_cast_to_a_non_float_dtype_stops_the_gradient(target):
    """As PyTorch: an integer or boolean result does not require grad (only float tensors can),
    so no gradient of 1 flows through a rounding step whose true derivative is 0."""
    x = Tensor(np.array([1.7, -0.3, 2.2]), requires_grad=True)
    y = x.to(target)
    assert not y.requires_grad and y.grad_fn is None
