"""Matrix product of arrays with at least two dims; tensor.py adapts 1-D operands."""
from __future__ import annotations

import numpy as np

from ..autograd import Function


class MatMul(Function):
    """x @ y over the last two dims, leading (batch) dims broadcast.
    dL/dx = g @ y^T, dL/dy = x^T @ g (summed over broadcast batch dims by the engine)."""

    @staticmethod
    def forward(ctx, x, y):
        if x.shape[-1] != y.shape[-2]:
            raise ValueError(f"matmul: shapes {x.shape} and {y.shape} cannot be multiplied "
                             f"({x.shape[-1]} != {y.shape[-2]})")
        try:
            return np.matmul(x, y)
        except ValueError:
            raise ValueError(f"matmul: batch dims of {x.shape} and {y.shape} do not broadcast") from None

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.inputs
        dx, dy = ctx.needs_input_grad
        return (g @ y.mT if dx else None), (x.mT @ g if dy else None)
