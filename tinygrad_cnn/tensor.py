"""Tensor: a NumPy array that records the ops applied to it.

The methods here only adapt PyTorch's API to the primitive ops in `ops/`
(and compose a few, such as mean and var); the math and the gradients live
in the ops, the graph walking in `autograd.py`.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from . import autograd, ops
from .shapes import normalize_dim, normalize_dims, size_args

DEFAULT_FLOAT = np.dtype(np.float32)
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _python_scalar_dtype(x: bool | int | float) -> np.dtype:
    return np.dtype(np.bool_ if isinstance(x, bool) else np.int64 if isinstance(x, int) else DEFAULT_FLOAT)


class MaxResult(NamedTuple):
    """What `max(dim)` / `min(dim)` return, as PyTorch: the values and their indices."""
    values: Tensor
    indices: Tensor


class Tensor:
    """An n-dimensional array with reverse-mode autodiff.

    Args:
        data: array-like. Python floats become float32; NumPy arrays keep their dtype
            (so float64 stays float64); Python ints become int64.
        requires_grad: record ops on this tensor so `backward()` can fill `.grad`.
        dtype: convert to this NumPy dtype.
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_retains_grad", "_hooks", "__weakref__")
    __array_ufunc__ = None  # makes `ndarray * Tensor` call Tensor.__rmul__ instead of NumPy's loop

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        from_numpy = isinstance(data, (np.ndarray, np.generic))
        arr = np.array(data, dtype=dtype)
        if dtype is None and not from_numpy and arr.dtype == np.float64:
            arr = arr.astype(DEFAULT_FLOAT)
        if arr.dtype.kind not in _KIND_RANK:
            raise TypeError(f"Tensor: unsupported dtype {arr.dtype} (use bool, integer or float data)")
        self.data: np.ndarray = arr
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Context | None = None
        self._retains_grad = False
        self._hooks: dict | None = None
        self.requires_grad = False
        self.requires_grad_(requires_grad)

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool, grad_fn: autograd.Context | None) -> Tensor:
        """Fast constructor for op results: no conversion, no checks."""
        t = object.__new__(cls)
        t.data, t.requires_grad, t.grad_fn, t.grad = data, requires_grad, grad_fn, None
        t._retains_grad, t._hooks = False, None
        return t

    # ------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.shape if dim is None else self.shape[normalize_dim(dim, self.ndim, "size", self.shape)]

    def numel(self) -> int:
        return self.data.size

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> bool | int | float:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor can be converted to a Python number, "
                             f"got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", threshold=100)
        extra = f", grad_fn={self.grad_fn!r}" if self.grad_fn else (", requires_grad=True" if self.requires_grad else "")
        return f"tensor({body}, shape={self.shape}, dtype={self.dtype}{extra})"

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__  # identity, since == is elementwise

    # ------------------------------------------------------------ autograd

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: use detach() to stop gradients at a non-leaf tensor")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = self.grad_fn is not None

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> autograd.RemovableHandle:
        """Call hook(grad) each time a backward pass computes the gradient w.r.t. this tensor,
        before it reaches `.grad` or flows on; a Tensor the hook returns replaces the gradient.
        Returns a handle whose `remove()` unregisters the hook."""
        if not self.requires_grad:
            raise RuntimeError(f"register_hook: cannot register a hook on a tensor of shape {self.shape} "
                               "that does not require grad")
        return autograd.add_tensor_hook(self, hook)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, as PyTorch)."""
        return Tensor._make(self.data, False, None)

    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (see `tinygrad_cnn.autograd.backward`)."""
        autograd.backward([self], None if gradient is None else [gradient],
                          retain_graph=retain_graph, create_graph=create_graph)

    # ------------------------------------------------------------ dtype

    def to(self, dtype: Any) -> Tensor:
        """This tensor converted to `dtype`; to an integer or bool dtype it leaves the graph, as
        in PyTorch (only float tensors carry gradients, and rounding's derivative is 0 anyway)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype.kind != "f":
            return Tensor._make(self.data.astype(dtype), False, None)
        return ops.Cast.apply(self, dtype=dtype)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (gradient passes through unchanged)."""
        return ops.Cast.apply(self, dtype=self.dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    # ------------------------------------------------------------ elementwise

    def _lift(self, x: Any) -> Tensor:
        """A constant operand as a Tensor. Python numbers are 'weak', as in PyTorch:
        they take this tensor's dtype unless they are of a higher kind (a float with an int tensor)."""
        if isinstance(x, Tensor):
            return x
        if isinstance(x, (bool, int, float)):
            dtype = _python_scalar_dtype(x)
            if _KIND_RANK[self.dtype.kind] >= _KIND_RANK[dtype.kind]:
                dtype = self.dtype
            return Tensor._make(np.array(x, dtype=dtype), False, None)
        return Tensor(x)

    def _binary(self, fn: type[autograd.Function], other: Any, reflected: bool = False) -> Tensor:
        other = self._lift(other)
        x, y = _promote(*((other, self) if reflected else (self, other)), true_division=fn is ops.Div)
        try:
            return fn.apply(x, y)
        except ValueError:  # the only ValueError an elementwise op raises
            raise ValueError(f"{fn.__name__.lower()}: shapes {x.shape} and {y.shape} "
                             "cannot be broadcast together") from None

    def __add__(self, other): return self._binary(ops.Add, other)
    def __radd__(self, other): return self._binary(ops.Add, other, reflected=True)
    def __sub__(self, other): return self._binary(ops.Sub, other)
    def __rsub__(self, other): return self._binary(ops.Sub, other, reflected=True)
    def __mul__(self, other): return self._binary(ops.Mul, other)
    def __rmul__(self, other): return self._binary(ops.Mul, other, reflected=True)
    def __truediv__(self, other): return self._binary(ops.Div, other)
    def __rtruediv__(self, other): return self._binary(ops.Div, other, reflected=True)
    def __pow__(self, other): return self._binary(ops.Pow, other)
    def __rpow__(self, other): return self._binary(ops.Pow, other, reflected=True)
    def __neg__(self): return ops.Neg.apply(self)
    def __abs__(self): return ops.Abs.apply(self)

    add, sub, mul, div, pow, neg, abs = __add__, __sub__, __mul__, __truediv__, __pow__, __neg__, __abs__

    def exp(self) -> Tensor: return ops.Exp.apply(self)
    def log(self) -> Tensor: return ops.Log.apply(self)
    def sqrt(self) -> Tensor: return ops.Sqrt.apply(self)
    def relu(self) -> Tensor: return ops.Relu.apply(self)
    def tanh(self) -> Tensor: return ops.Tanh.apply(self)
    def sigmoid(self) -> Tensor: return ops.Sigmoid.apply(self)

    def maximum(self, other: Any) -> Tensor:
        return self._binary(ops.Maximum, other)

    def minimum(self, other: Any) -> Tensor:
        return -(-self).maximum(-self._lift(other))

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return ops.Clamp.apply(self, min=min, max=max)

    clip = clamp

    def where(self, condition: Any, other: Any) -> Tensor:
        """`self` where `condition` holds, else `other` (as torch.Tensor.where)."""
        return where(condition, self, other)

    # comparisons give boolean tensors outside the graph
    def _compare(self, op, other: Any) -> Tensor:
        return Tensor._make(np.asarray(op(self.data, self._lift(other).data)), False, None)

    def __lt__(self, other): return self._compare(np.less, other)
    def __le__(self, other): return self._compare(np.less_equal, other)
    def __gt__(self, other): return self._compare(np.greater, other)
    def __ge__(self, other): return self._compare(np.greater_equal, other)
    def __eq__(self, other): return self._compare(np.equal, other)
    def __ne__(self, other): return self._compare(np.not_equal, other)

    def __invert__(self) -> Tensor:
        return Tensor._make(~self.data, False, None)

    # ------------------------------------------------------------ reductions

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        axes, count = self._float_dims(dim, "mean")
        return self.sum(axes, keepdim) * (1.0 / count)

    def var(self, dim: int | Sequence[int] | None = None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
        """Variance with Bessel's `correction` (1 = unbiased, PyTorch's default); NaN without
        degrees of freedom, as PyTorch."""
        return self._var(dim, correction, keepdim, "var")

    def std(self, dim: int | Sequence[int] | None = None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
        return self._var(dim, correction, keepdim, "std").sqrt()

    def _var(self, dim, correction: int, keepdim: bool, op: str) -> Tensor:
        axes, count = self._float_dims(dim, op)
        centered = self - self.mean(axes, keepdim=True)
        dof = count - correction
        return (centered * centered).sum(axes, keepdim) * (1.0 / dof if dof > 0 else float("nan"))

    def _float_dims(self, dim, op: str) -> tuple[tuple[int, ...], int]:
        """The checked axes of `dim` (errors name `op`) and how many elements one reduction covers."""
        if self.dtype.kind != "f":
            raise TypeError(f"{op}: needs a floating point tensor, got dtype {self.dtype}")
        axes = normalize_dims(dim, self.ndim, op, self.shape)
        return axes, int(np.prod([self.shape[d] for d in axes]))

    def amax(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Largest value over `dim`; ties share the gradient evenly."""
        return ops.Max.apply(self, dim=normalize_dims(dim, self.ndim, "amax", self.shape), keepdim=keepdim)

    def amin(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        axes = normalize_dims(dim, self.ndim, "amin", self.shape)
        return -ops.Max.apply(-self, dim=axes, keepdim=keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Tensor | MaxResult:
        """max() -> the largest value; max(dim) -> (values, indices), the gradient going to
        the first maximum; max(other_tensor) -> elementwise maximum. As PyTorch."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return self.amax() if dim is None else self._max_along(dim, keepdim, "max")

    def min(self, dim: Any = None, keepdim: bool = False) -> Tensor | MaxResult:
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return self.amin()
        values, indices = (-self)._max_along(dim, keepdim, "min")
        return MaxResult(-values, indices)

    def _max_along(self, dim: int, keepdim: bool, op: str) -> MaxResult:
        axis = normalize_dim(dim, self.ndim, op, self.shape)
        values = ops.Max.apply(self, dim=axis, keepdim=keepdim, spread_ties=False)
        return MaxResult(values, self._argmax(axis, keepdim, op))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._argmax(dim, keepdim, "argmax")

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return (-self.detach())._argmax(dim, keepdim, "argmin")

    def _argmax(self, dim: int | None, keepdim: bool, op: str) -> Tensor:
        if dim is None:
            return Tensor._make(np.asarray(self.data.argmax()), False, None)
        axis = normalize_dim(dim, self.ndim, op, self.shape)
        if self.ndim == 0:  # a 0-d tensor's one element is at index 0, as PyTorch
            return Tensor._make(np.array(0), False, None)
        return Tensor._make(self.data.argmax(axis=axis, keepdims=keepdim), False, None)

    def sum_to_size(self, *size: int) -> Tensor:
        """Sum broadcast dims away so the result has `size` (the adjoint of expand)."""
        size = size_args(size)
        return self if size == self.shape else ops.SumToSize.apply(self, shape=size)

    # ------------------------------------------------------------ matmul

    def matmul(self, other: Any) -> Tensor:
        """PyTorch's rules: 1-D @ 1-D is a dot product, a 1-D operand gets a dim of 1 added
        (then removed), higher dims are batches that broadcast."""
        other = self._lift(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {self.shape} and {other.shape}")
        x = self.unsqueeze(0) if self.ndim == 1 else self
        y = other.unsqueeze(-1) if other.ndim == 1 else other
        try:
            out = ops.MatMul.apply(x, y)
        except ValueError as e:  # restate with the caller's shapes, not the 1-D-adjusted ones
            raise ValueError(str(e).replace(f"{x.shape} and {y.shape}", f"{self.shape} and {other.shape}")) from None
        if other.ndim == 1:
            out = out.squeeze(-1)
        if self.ndim == 1:
            out = out.squeeze(-2 if other.ndim > 1 else -1)
        return out

    def __matmul__(self, other): return self.matmul(other)
    def __rmatmul__(self, other): return self._lift(other).matmul(self)

    # ------------------------------------------------------------ movement

    def reshape(self, *shape: int) -> Tensor:
        shape = size_args(shape)
        return self if shape == self.shape else ops.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start = normalize_dim(start_dim, self.ndim, "flatten", self.shape)
        end = normalize_dim(end_dim, self.ndim, "flatten", self.shape)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        merged = int(np.prod(self.shape[start:end + 1]))
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1:])

    def permute(self, *dims: int) -> Tensor:
        dims = tuple(normalize_dim(d, self.ndim, "permute", self.shape) for d in size_args(dims))
        return ops.Permute.apply(self, dims=dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        dims = list(range(self.ndim))
        a, b = (normalize_dim(d, self.ndim, "transpose", self.shape) for d in (dim0, dim1))
        dims[a], dims[b] = dims[b], dims[a]
        return ops.Permute.apply(self, dims=tuple(dims))

    @property
    def T(self) -> Tensor:
        return ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        """The last two dims swapped (a batch of matrices transposed)."""
        return self.transpose(-2, -1)

    def expand(self, *sizes: int) -> Tensor:
        """Broadcast to `sizes` without copying; -1 keeps a dim's size."""
        sizes = size_args(sizes)
        lead = len(sizes) - self.ndim
        shape = tuple(n if n != -1 or i < lead else self.shape[i - lead] for i, n in enumerate(sizes))
        return self if shape == self.shape else ops.Expand.apply(self, shape=shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        axes = normalize_dims(dim, self.ndim, "squeeze", self.shape)
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def unsqueeze(self, dim: int) -> Tensor:
        axis = normalize_dim(dim, self.ndim + 1, "unsqueeze", self.shape)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_as_numpy_index(index))


def _promote(x: Tensor, y: Tensor, true_division: bool = False) -> tuple[Tensor, Tensor]:
    """PyTorch's type promotion across kinds: the operand of the lower kind (bool < int < float) takes
    the other's dtype, so int64 * float32 is float32 (NumPy would say float64); `/` of integers is
    float32. Within a kind NumPy's rule (the wider dtype) is PyTorch's too."""
    if x.data.dtype is y.data.dtype and not true_division:  # the common case: nothing to do
        return x, y
    kx, ky = _KIND_RANK[x.dtype.kind], _KIND_RANK[y.dtype.kind]
    if kx < ky:
        x = x.to(y.dtype)
    elif ky < kx:
        y = y.to(x.dtype)
    if true_division and x.dtype.kind != "f":
        x, y = x.to(DEFAULT_FLOAT), y.to(DEFAULT_FLOAT)
    return x, y


def _as_numpy_index(index: Any) -> tuple:
    """Tensors and lists inside an index become arrays, so NumPy reads them as advanced indices."""
    parts = index if isinstance(index, tuple) else (index,)
    return tuple(p.data if isinstance(p, Tensor) else np.asarray(p) if isinstance(p, list) else p for p in parts)


# ---------------------------------------------------------------- functions of several tensors

def where(condition: Any, input: Any, other: Any) -> Tensor:
    """`input` where `condition` holds, else `other`; gradients flow to both branches' picked elements."""
    cond = condition if isinstance(condition, Tensor) else Tensor(np.asarray(condition))
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be a boolean tensor, got dtype {cond.dtype}")
    x = input if isinstance(input, Tensor) else None
    y = other if isinstance(other, Tensor) else None
    if x is None and y is None:
        raise TypeError("where: input or other must be a Tensor")
    x = x if x is not None else y._lift(input)
    y = y if y is not None else x._lift(other)
    try:
        return ops.Where.apply(cond, x, y)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {x.shape} and {y.shape} cannot be broadcast together") from None


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of equal shape (but along `dim`) into one."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    ndim = tensors[0].ndim
    axis = normalize_dim(dim, ndim, "cat", tensors[0].shape)
    shapes = [t.shape for t in tensors]
    if any(len(s) != ndim or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        raise ValueError(f"cat: shapes {shapes} must match in every dim but dim {dim}")
    return ops.Cat.apply(*tensors, dim=axis)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of equal shape along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    if len({t.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    axis = normalize_dim(dim, tensors[0].ndim + 1, "stack", tensors[0].shape)
    return cat([t.unsqueeze(axis) for t in tensors], dim=axis)
