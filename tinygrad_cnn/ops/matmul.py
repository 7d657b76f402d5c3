"""Matrix product of arrays with at least two dims; tensor.py adapts 1-D operands."""
from __future__ import annotations

import math

import numpy as np

from ..autograd.forward_ad import multilinear_jvp
from ..autograd.function import Primitive
from .threads import in_parallel


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
            batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dims of {x.shape} and {y.shape} do not broadcast") from None
        return _product(x, y, batch)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return (None if y is None else g @ y.mT), (None if x is None else x.mT @ g)

    jvp = staticmethod(multilinear_jvp)  # tx @ y + x @ ty


SPLIT_WORK = 1 << 22  # multiply-adds from which a product is split among threads: below, handing out costs more


def _product(x: np.ndarray, y: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """np.matmul(x, y). Fast path: a large product is split among threads (ops/threads.py), by rows of x
    or, when y has more columns, by columns of y: OpenBLAS runs one thread each while importing
    tinygrad_cnn holds it to one. Each piece of the result is the same product, whoever computes it."""
    m, k, n = x.shape[-2], x.shape[-1], y.shape[-1]
    if math.prod(batch) * m * k * n < SPLIT_WORK:
        return np.matmul(x, y)
    out = np.empty((*batch, m, n), dtype=np.result_type(x, y))
    if m >= n:
        in_parallel(lambda a, b: np.matmul(x[..., a:b, :], y, out=out[..., a:b, :]), m, blas=True)
    else:
        in_parallel(lambda a, b: np.matmul(x, y[..., a:b], out=out[..., a:b]), n, blas=True)
    return out


# ---------------------------------------------------------------- einsum

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def einsum_subscripts(equation: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output, as torch.einsum reads `equation`, with each
    ellipsis spelled out in letters the equation does not use (right-aligned, so '...' dims broadcast
    as NumPy's do) and the implicit output made explicit: the ellipsis dims, then the letters that
    appear once, sorted (A-Z before a-z). RuntimeError, with PyTorch's wording, for a bad equation."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    for i, c in enumerate(equation):
        if c not in LETTERS + (".," if i < len(lhs) else "->" if i < len(lhs) + len(arrow) else "."):
            raise RuntimeError(f"einsum(): invalid subscript given at index {i} in the equation string, "
                               "subscripts must be in [a-zA-Z]")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(f"einsum(): {'more' if len(shapes) > len(terms) else 'fewer'} operands were provided "
                           "than specified in the equation")
    unused = [c for c in LETTERS if c not in equation]
    ellipsis_ndim = 0
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        letters, has_ellipsis = _ellipsis_split(term, f"operand {k}")
        if not has_ellipsis and len(letters) != len(shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(letters)}) does not match "
                               f"the number of dimensions ({len(shape)}) for operand {k} and no ellipsis was given")
        if has_ellipsis and len(letters) > len(shape):
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(letters)}) is more than the "
                               f"number of dimensions ({len(shape)}) for operand {k}")
        ellipsis_ndim = max(ellipsis_ndim, len(shape) - len(letters))
    if ellipsis_ndim > len(unused):
        raise RuntimeError(f"einsum(): {ellipsis_ndim} dims under an ellipsis and the equation's letters need more "
                           f"than the {len(LETTERS)} subscripts there are")
    spelled = unused[:ellipsis_ndim]  # the ellipsis dims, the last one last: right-aligned across operands

    def spell(term: str, ndim: int) -> str:
        return term.replace("...", "".join(spelled[ellipsis_ndim - ndim:])) if "..." in term else term

    inputs = [spell(term, len(shape) - len(term.replace("...", ""))) for term, shape in zip(terms, shapes)]
    if arrow:
        letters, _ = _ellipsis_split(rhs, "output")
        for c in letters:
            if letters.count(c) > 1:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
            if c not in lhs:
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any "
                                   "input operand")
        output = spell(rhs, ellipsis_ndim)
    else:
        output = "".join(spelled) + "".join(sorted(c for c in set(lhs) if c in LETTERS and lhs.count(c) == 1))
    _check_sizes(inputs, shapes, spelled)
    return inputs, output


def _ellipsis_split(term: str, where: str) -> tuple[str, bool]:
    """The letters of one term, and whether it has an ellipsis (at most one, with exactly three dots)."""
    letters = term.replace("...", "", 1)
    if "." in letters:
        raise RuntimeError(f"einsum(): found '.' for {where} " + ("for which an ellipsis was already found"
                                                                   if "..." in term else "that is not part of any "
                                                                   "ellipsis"))
    return letters, len(letters) != len(term)


def _check_sizes(inputs: list[str], shapes: list[tuple[int, ...]], spelled: list[str]) -> None:
    """Every letter has one size across operands, or size 1 where it broadcasts; a letter repeated
    within an operand (its diagonal) has one size there. `spelled` are the ellipsis' letters."""
    seen: dict[str, int] = {}
    for k, (term, shape) in enumerate(zip(inputs, shapes)):
        own: dict[str, int] = {}
        for c, n in zip(term, shape):
            if own.setdefault(c, n) != n:
                raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {k} but the sizes don't match, "
                                   f"{n} != {own[c]}")
            if seen.setdefault(c, n) != n and 1 not in (n, seen[c]):
                if c in spelled:
                    raise RuntimeError(f"einsum(): dimension {spelled.index(c)} covered by ellipsis in operand {k} "
                                       f"has size {n} which does not broadcast with previously seen ellipsis with "
                                       f"size {seen[c]} for the respective dimension")
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {k} which does not broadcast "
                                   f"with previously seen size {seen[c]}")
            seen[c] = n if seen[c] == 1 else seen[c]  # the size that is not 1 (it may be 0)


def _letter_sizes(terms: list[str], shapes: list[tuple[int, ...]]) -> dict[str, int]:
    """Each letter's size across the operands: a size 1 broadcasts to the other (which may be 0)."""
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for c, n in zip(term, shape):
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    return sizes


class Einsum(Primitive):
    """Sum over the products of the operands' entries, indexed by the letters of `equation`
    ("ij,jk->ik" is x @ y): explicit, letters only (tinygrad_cnn.einsum spells out ellipses).
    A dim of size 1 broadcasts against the same letter's size in the other operands.

    The gradient of a contraction is a contraction: dL/dx_k = einsum(g and the other operands ->
    x_k's subscripts). Two kinds of letters of x_k that g and the others lack are brought in as
    constants: an identity matrix per repeat of a letter within x_k ('ii': g lands on the diagonal)
    and a vector of ones per letter summed over in x_k alone (g broadcasts along it)."""

    @staticmethod
    def forward(ctx, *xs, equation):
        inputs, output = equation.split("->")
        terms = inputs.split(",")
        sizes = _letter_sizes(terms, [x.shape for x in xs])
        needs = ctx.needs_input_grad  # x_k is kept if another operand needs a gradient
        ctx.save_for_backward(tuple(sizes.items()), *[x if any(needs[:k] + needs[k + 1:]) else None
                                                      for k, x in enumerate(xs)])
        xs = [x if all(n == sizes[c] for c, n in zip(term, x.shape))
              else np.broadcast_to(x, tuple(sizes[c] for c in term)) for term, x in zip(terms, xs)]
        # NumPy's plain loop costs the product of all the sizes; its planner (pairwise contractions
        # on BLAS) has a fixed cost of its own, so it pays with three operands or a large contraction
        work = int(np.prod(list(sizes.values()), dtype=np.int64))
        return np.einsum(equation, *xs, optimize=len(xs) > 2 or work > 1 << 16)

    @staticmethod
    def backward(ctx, g):
        sizes, *xs = ctx.saved_tensors
        sizes = dict(sizes)
        inputs, output = ctx.kwargs["equation"].split("->")
        terms = inputs.split(",")
        grads = []
        for k, term in enumerate(terms):
            if not ctx.needs_input_grad[k]:
                grads.append(None)
                continue
            fresh = iter(c for c in LETTERS if c not in sizes)
            others = [(t, x) for j, (t, x) in enumerate(zip(terms, xs)) if j != k]
            operands = [(output, g)] + others
            known = _letter_sizes([t for t, _ in operands], [x.shape for _, x in operands])
            target = ""
            for c in term:
                if c not in target:
                    target += c
                    if known.get(c) != sizes[c]:  # summed over in x_k alone: g is the same along it
                        operands.append((c, g._wrap(np.ones(sizes[c], g.dtype))))
                else:  # a repeat: the gradient lives on the diagonal of the two dims
                    diagonal = next(fresh)
                    target += diagonal
                    operands.append((c + diagonal, g._wrap(np.eye(sizes[c], dtype=g.dtype))))
            equation = ",".join(t for t, _ in operands) + "->" + target
            grads.append(Einsum.apply(*[x for _, x in operands], equation=equation))
        return tuple(grads)

    jvp = staticmethod(multilinear_jvp)  # one term per operand with a tangent, in its place
