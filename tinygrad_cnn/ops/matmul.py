"""Matrix product of arrays with at least two dims; tensor.py adapts 1-D operands."""
from __future__ import annotations

import math

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
        return (_product(g, y.mT, x) if dx else None), (_product(x.mT, g, y) if dy else None)


def _product(a, b, operand):
    """a @ b, the gradient of `operand`. When `operand` is shared across batch dims (a conv
    weight), the engine sums these products over the batch into a new array, so their memory
    order is free. OpenBLAS computes such a product up to 2.5x faster when it has at least as
    many rows as columns (conv2d's weight gradient at LeNet's conv2, (16, 150) per sample:
    0.84 -> 0.33 ms, measured), so a wide one is computed as (b^T a^T)^T."""
    shared = math.prod(operand.shape[:-2]) < math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    return (b.mT @ a.mT).mT if shared and a.shape[-2] < b.shape[-1] else a @ b
