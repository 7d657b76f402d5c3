"""The torch.* functions that are also Tensor methods: `tg.exp(x)` is `x.exp()`, `tg.max(x, 1)`
is `x.max(1)`. Each only calls the method; the math and the gradients live there (tensor.py)."""
from __future__ import annotations

from typing import Any, Sequence

from .tensor import MaxResult, SortResult, Tensor

Dims = int | Sequence[int] | None


# ---------------------------------------------------------------- elementwise

def exp(input: Tensor) -> Tensor:
    return input.exp()


def log(input: Tensor) -> Tensor:
    return input.log()


def sqrt(input: Tensor) -> Tensor:
    return input.sqrt()


def abs(input: Tensor) -> Tensor:  # noqa: A001 (torch's name)
    return input.abs()


def sin(input: Tensor) -> Tensor:
    return input.sin()


def cos(input: Tensor) -> Tensor:
    return input.cos()


def tan(input: Tensor) -> Tensor:
    return input.tan()


def erf(input: Tensor) -> Tensor:
    return input.erf()


def log1p(input: Tensor) -> Tensor:
    return input.log1p()


def expm1(input: Tensor) -> Tensor:
    return input.expm1()


def log2(input: Tensor) -> Tensor:
    return input.log2()


def log10(input: Tensor) -> Tensor:
    return input.log10()


def exp2(input: Tensor) -> Tensor:
    return input.exp2()


def floor(input: Tensor) -> Tensor:
    return input.floor()


def ceil(input: Tensor) -> Tensor:
    return input.ceil()


def round(input: Tensor) -> Tensor:  # noqa: A001
    return input.round()


def trunc(input: Tensor) -> Tensor:
    return input.trunc()


def frac(input: Tensor) -> Tensor:
    return input.frac()


def sign(input: Tensor) -> Tensor:
    return input.sign()


def relu(input: Tensor) -> Tensor:
    return input.relu()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    return input.clamp(min, max)


clip = clamp


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return input.maximum(other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return input.minimum(other)


def isnan(input: Tensor) -> Tensor:
    return input.isnan()


def isinf(input: Tensor) -> Tensor:
    return input.isinf()


def isfinite(input: Tensor) -> Tensor:
    return input.isfinite()


# ---------------------------------------------------------------- reductions

def sum(input: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return input.sum(dim, keepdim)


def mean(input: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    return input.mean(dim, keepdim)


def var(input: Tensor, dim: Dims = None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
    return input.var(dim, correction=correction, keepdim=keepdim)


def std(input: Tensor, dim: Dims = None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
    return input.std(dim, correction=correction, keepdim=keepdim)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor | MaxResult:  # noqa: A001
    """The largest value, (values, indices) along `dim`, or the elementwise maximum with a tensor."""
    return input.max(dim, keepdim)


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor | MaxResult:  # noqa: A001
    """The smallest value, (values, indices) along `dim`, or the elementwise minimum with a tensor."""
    return input.min(dim, keepdim)


def amax(input: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    return input.amax(dim, keepdim)


def amin(input: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    return input.amin(dim, keepdim)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return input.argmax(dim, keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return input.argmin(dim, keepdim)


def logsumexp(input: Tensor, dim: Dims, keepdim: bool = False) -> Tensor:
    return input.logsumexp(dim, keepdim)


def norm(input: Tensor, p: Any = "fro", dim: Dims = None, keepdim: bool = False) -> Tensor:
    return input.norm(p, dim, keepdim)


def all(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return input.all(dim, keepdim)


def any(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return input.any(dim, keepdim)


def softmax(input: Tensor, dim: int) -> Tensor:
    return input.softmax(dim)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return input.log_softmax(dim)


# ---------------------------------------------------------------- linear algebra and shapes

def matmul(input: Tensor, other: Tensor) -> Tensor:
    return input.matmul(other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    return input.mm(mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    return input.bmm(mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    return input.dot(other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    return input.outer(vec2)


def t(input: Tensor) -> Tensor:
    return input.t()


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def reshape(input: Tensor, shape: Sequence[int]) -> Tensor:
    return input.reshape(shape)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return input.transpose(dim0, dim1)


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    return input.permute(*dims)


def squeeze(input: Tensor, dim: Dims = None) -> Tensor:
    return input.squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return input.unsqueeze(dim)


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    return tensor.split(split_size_or_sections, dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    return input.chunk(chunks, dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    return input.unbind(dim)


def flip(input: Tensor, dims: Dims) -> Tensor:
    return input.flip(dims)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    return input.tril(diagonal)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    return input.triu(diagonal)


# ---------------------------------------------------------------- gather, scatter and selection

def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    return input.gather(dim, index)


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, reduce: str | None = None, *,
            value: Any = None) -> Tensor:
    return input.scatter(dim, index, src, reduce, value=value)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    return input.scatter_add(dim, index, src)


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    return input.scatter_reduce(dim, index, src, reduce, include_self=include_self)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    return input.take_along_dim(indices, dim)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    return input.index_select(dim, index)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    return input.masked_select(mask)


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    return input.nonzero(as_tuple=as_tuple)


# ---------------------------------------------------------------- sorting and scans

def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return input.argsort(dim, descending, stable)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
    return input.sort(dim, descending, stable)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:  # noqa: A002
    return input.topk(k, dim, largest, sorted)


def prod(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return input.prod(dim, keepdim)


def cumsum(input: Tensor, dim: int) -> Tensor:
    return input.cumsum(dim)


def cumprod(input: Tensor, dim: int) -> Tensor:
    return input.cumprod(dim)


# ---------------------------------------------------------------- elementwise and logic

def fmod(input: Tensor, other: Any) -> Tensor:
    return input.fmod(other)


def remainder(input: Tensor, other: Any) -> Tensor:
    return input.remainder(other)


def floor_divide(input: Tensor, other: Any) -> Tensor:
    return input.floor_divide(other)


def logical_and(input: Tensor, other: Tensor) -> Tensor:
    return input.logical_and(other)


def logical_or(input: Tensor, other: Tensor) -> Tensor:
    return input.logical_or(other)


def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    return input.logical_xor(other)


def logical_not(input: Tensor) -> Tensor:
    return input.logical_not()


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return input.allclose(other, rtol, atol, equal_nan)


def equal(input: Tensor, other: Tensor) -> bool:
    return input.equal(other)


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()


# ---------------------------------------------------------------- rearranging

def roll(input: Tensor, shifts: int | Sequence[int], dims: Dims = None) -> Tensor:
    return input.roll(shifts, dims)


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    return input.tile(dims)
