"""Hypothesis strategies for testing ops: shapes, broadcastable shapes, and float64 tensors
whose values stay where finite differences are trustworthy (bounded, away from kinks,
without ties). Our own property tests use them; so can yours:

    @given(tensors(shapes(max_dims=3), away_from=(0.0,)))
    def test_relu_grad(x):
        assert gradcheck(lambda x: x.relu(), [x])

Needs `hypothesis` (the `test` extra).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .tensor import Tensor


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    """Tuples of ints: (), (3,), (2, 4, 1), ..."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3,
                         max_side: int = 4) -> st.SearchStrategy:
    """`num_shapes` shapes that broadcast together, such as ((2, 1, 3), (4, 3))."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             max_side=max_side).map(lambda r: r.input_shapes)


def _nudge(v: float, kinks: Sequence[float], margin: float) -> float:
    for k in kinks:
        if abs(v - k) < margin:
            return k + margin if v >= k else k - margin
    return v


def floats(low: float = -2.0, high: float = 2.0, away_from: Sequence[float] = (),
           margin: float = 1e-2) -> st.SearchStrategy:
    """Finite floats in [low, high], moved at least `margin` away from each point in `away_from`
    (where the function has a kink, such as 0 for relu and abs), so that a finite difference
    never straddles one."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False).map(
        lambda v: _nudge(v, away_from, margin))


def arrays(shape: tuple[int, ...] | st.SearchStrategy, low: float = -2.0, high: float = 2.0,
           away_from: Sequence[float] = (), margin: float = 1e-2) -> st.SearchStrategy:
    """float64 NumPy arrays of `shape` (a tuple or a strategy of tuples) with values from `floats`."""
    return hnp.arrays(np.float64, shape, elements=floats(low, high, away_from, margin))


def tensors(shape: tuple[int, ...] | st.SearchStrategy = shapes(), low: float = -2.0, high: float = 2.0,
            away_from: Sequence[float] = (), margin: float = 1e-2, requires_grad: bool = True) -> st.SearchStrategy:
    """float64 Tensors (requiring grad by default) with values from `floats`."""
    return arrays(shape, low, high, away_from, margin).map(lambda a: Tensor(a, requires_grad=requires_grad))


@st.composite
def distinct_arrays(draw: st.DrawFn, shape: tuple[int, ...] | st.SearchStrategy = shapes(),
                    low: float = -2.0, high: float = 2.0, gap: float = 1e-2) -> np.ndarray:
    """float64 arrays whose values differ pairwise by at least `gap`: no ties, so max, min and
    max pooling have one clear winner and finite differences do not cross a switch."""
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    n = int(np.prod(shape))
    slots = int((high - low) / gap)
    if n > slots:
        raise ValueError(f"distinct_arrays: {n} values do not fit in [{low}, {high}] with gap {gap}")
    picked = draw(st.lists(st.integers(0, slots), min_size=n, max_size=n, unique=True))
    return (low + gap * np.array(picked, dtype=np.float64)).reshape(shape)


def distinct_tensors(shape: tuple[int, ...] | st.SearchStrategy = shapes(), low: float = -2.0,
                     high: float = 2.0, gap: float = 1e-2, requires_grad: bool = True) -> st.SearchStrategy:
    """float64 Tensors with no two values closer than `gap` (see `distinct_arrays`)."""
    return distinct_arrays(shape, low, high, gap).map(lambda a: Tensor(a, requires_grad=requires_grad))
