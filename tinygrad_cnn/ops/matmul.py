"""Matrix product of arrays with at least two dims; tensor.py adapts 1-D operands."""
from __future__ import annotations

import numpy as np

from ..autograd.function import Primitive


class MatMul(Primitive):
    """x @ y over the last two dims, leading (batch) dims broadcast.
    dL/dx = g @ y^T, dL/dy = x^T @ g (summed over broadcast batch dims by the engine)."""

    @staticmethod
    def forward(ctx, x, y):
        if x.shape[-1] != y.shape[-2]:
            raise ValueError(f"matmul: shapes {x.shape} and {y.shape} cannot be multiplied "
                             f"({x.shape[-1]} != {y.shape[-2]})")
        dx, dy = ctx.needs_input_grad
        ctx.save_for_backward(x if dy else None, y if dx else None)
        try:
            return np.matmul(x, y)
        except ValueError:
            raise ValueError(f"matmul: batch dims of {x.shape} and {y.shape} do not broadcast") from None

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return (None if y is None else g @ y.mT), (None if x is None else x.mT @ g)
