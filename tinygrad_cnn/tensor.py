"""Tensor: a NumPy array that records the ops applied to it.

The methods here only adapt PyTorch's API to the primitive ops in `ops/`
(and compose a few, such as mean and var); the math and the gradients live
in the ops, the graph and its walking in `autograd/`.

In-place ops (`add_`, `+=`, `t[i] = v`, ...) compute their result out of place, with the same
op, and write it into the tensor's memory; the version counter they bump lets the backward
pass notice a value it needs that was changed since it was saved.
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from . import ops
from .autograd import engine
from .autograd.forward_ad import levels as dual_levels
from .autograd.function import Function
from .autograd.grad_mode import modes
from .autograd.graph import Node, RemovableHandle, RetainGrad, VersionCounter
from .device import CPU, device as Device, to_device
from .rng import get_generator
from .shapes import new_shape, normalize_dim, normalize_dims, size_args

DEFAULT_FLOAT = np.dtype(np.float32)
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


_SCALARS = (bool, int, float, np.bool_, np.integer, np.floating)  # Python and NumPy numbers


def _scalar_dtype(x: Any) -> np.dtype:
    """The dtype a Python or NumPy number stands for in promotion: its category's default, as PyTorch."""
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(np.bool_)
    return np.dtype(np.int64) if isinstance(x, (int, np.integer)) else DEFAULT_FLOAT


def _scalar_tensor(x: Any, dtype: np.dtype) -> Tensor:
    """A number as a 0-d tensor of `dtype`; an integer out of the dtype's range wraps around, as in PyTorch
    (uint8 + (-3) adds 253)."""
    try:
        return Tensor._wrap(np.array(x, dtype=dtype))
    except OverflowError:
        return Tensor._wrap(np.array(x).astype(dtype))


def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """torch.promote_types: of two categories (bool < integer < floating point) the higher one's dtype,
    so int64 with float32 is float32 (NumPy would say float64); within one the wider dtype."""
    ka, kb = _KIND_RANK[a.kind], _KIND_RANK[b.kind]
    return (a if ka > kb else b) if ka != kb else np.promote_types(a, b)


def result_type(x: Any, y: Any) -> np.dtype:
    """The dtype PyTorch computes an op of x and y in (each a Tensor or a Python/NumPy number).

    Operands rank by strength: a tensor with dims > a 0-d tensor > a number. Two of the same strength
    promote as `promote_types`. Otherwise the stronger one's dtype wins unless the weaker one is of a
    higher category (bool < integer < floating point), whose dtype then wins (a number's: int64 or
    float32). So int32 + np.int64(3) stays int32, float32 + a 0-d float64 tensor stays float32, but
    int32 + a 0-d float64 tensor is float64 and uint8 + 2.5 is float32."""
    (dx, sx), (dy, sy) = _dtype_and_strength(x), _dtype_and_strength(y)
    if sx == sy:
        return promote_types(dx, dy)
    strong, weak = (dx, dy) if sx > sy else (dy, dx)
    return weak if _KIND_RANK[weak.kind] > _KIND_RANK[strong.kind] else strong


def _dtype_and_strength(x: Any) -> tuple[np.dtype, int]:
    if isinstance(x, Tensor):
        return x._array.dtype, 2 if x._array.ndim else 1
    return _scalar_dtype(x), 0


def _holds_tensors(data: list | tuple) -> bool:
    return any(isinstance(d, Tensor) or (isinstance(d, (list, tuple)) and _holds_tensors(d)) for d in data)


def _numbers_of(data: Any) -> Any:
    """Nested lists with one-element Tensors among their numbers (torch.tensor([t1, t2])) as plain numbers."""
    if isinstance(data, (list, tuple)):
        return [_numbers_of(d) for d in data]
    if isinstance(data, Tensor):
        if data.numel() != 1:
            raise ValueError(f"Tensor: only one element tensors can be converted to Python scalars, got a tensor "
                             f"of shape {data.shape} inside the data")
        return data._array.item()
    return data


def _element_dtypes(data: Any) -> list[np.dtype]:
    """The dtypes of the numbers and tensors in nested lists (float -> float32, as the numbers' defaults)."""
    if isinstance(data, (list, tuple)):
        return [d for item in data for d in _element_dtypes(item)]
    return [data.dtype if isinstance(data, Tensor) else _scalar_dtype(data)]


def _sqrt_with_zero_gradient_at_zero(v: Tensor) -> Tensor:
    """sqrt(v) for v >= 0 whose gradient is 0, not inf, where v == 0: PyTorch's subgradient for the std
    of a constant slice and the norm of the zero vector (inf times v's zero gradient there would be NaN)."""
    nonzero = v._array != 0
    if nonzero.all():
        return v.sqrt()
    keep = Tensor._wrap(nonzero)
    return v.where(keep, 1.0).sqrt().where(keep, 0.0)


class Size(tuple):
    """A tensor's shape, as torch.Size: a tuple of ints, equal to the plain tuple, whose repr is
    tinygrad_cnn.Size([2, 3]), that stays a Size when sliced, added to or repeated, and counts its elements
    with numel(). Its str() is the tuple's, (2, 3), so that messages read as before. (Its items are not
    checked to be ints: making one for every `.shape` must cost next to nothing.)"""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"tinygrad_cnn.Size({list(self)})"

    __str__ = tuple.__repr__

    def __getitem__(self, index: Any) -> Any:
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other: Any) -> Size:
        joined = tuple.__add__(self, other)
        return joined if joined is NotImplemented else Size(joined)

    def __radd__(self, other: Any) -> Size:
        return Size(other + tuple(self)) if isinstance(other, tuple) else NotImplemented

    def __mul__(self, n: Any) -> Size:
        repeated = tuple.__mul__(self, n)
        return repeated if repeated is NotImplemented else Size(repeated)

    __rmul__ = __mul__

    def numel(self) -> int:
        """The number of elements a tensor of this shape has (1 for ())."""
        return math.prod(self)


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
        device: 'cpu' (the only device; see tinygrad_cnn.device).
    """

    # The fields every op result sets are slots; the rest keep these class-level defaults until a
    # tensor needs its own (most never do), which makes a new tensor cheap.
    __slots__ = ("_array", "grad_fn", "requires_grad", "_edge", "__dict__", "__weakref__")
    grad: Tensor | None = None
    _output_nr = 0
    _version_counter: VersionCounter | None = None  # made at the first in-place change or alias
    _base: Tensor | None = None  # the tensor whose memory this view shares
    _hooks: dict | None = None
    _retains_grad = False
    __array_ufunc__ = None  # makes `ndarray * Tensor` call Tensor.__rmul__ instead of NumPy's loop
    _is_tensor = True  # how the autograd package, which does not import this class, recognises tensors

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, device: Any = None) -> None:
        to_device(device, "Tensor")
        if isinstance(data, Tensor):
            data = data._array
        elif isinstance(data, (list, tuple)) and _holds_tensors(data):
            if dtype is None:
                dtype = functools.reduce(promote_types, _element_dtypes(data))
            data = _numbers_of(data)
        from_numpy = isinstance(data, (np.ndarray, np.generic))
        if not isinstance(requires_grad, (bool, np.bool_)):
            shape = f"({data}, {requires_grad})" if isinstance(data, int) else None
            raise TypeError(f"Tensor: requires_grad must be a bool, got {requires_grad!r}"
                            + (f" (for a tensor of shape {shape} use tinygrad_cnn.zeros{shape})" if shape else ""))
        try:
            arr = np.array(data, dtype=dtype)
        except ValueError as error:  # NumPy's words for a ragged list; PyTorch's are shorter
            raise ValueError(f"tensor: {_ragged(data) or error}") from None
        if dtype is None and not from_numpy and arr.dtype == np.float64:
            arr = arr.astype(DEFAULT_FLOAT)
        if arr.dtype.kind not in _KIND_RANK:
            raise TypeError(f"Tensor: unsupported dtype {arr.dtype} (use bool, integer or float data)")
        self._array, self.grad_fn, self.requires_grad, self._edge = arr, None, False, None
        self.requires_grad_(requires_grad)

    @staticmethod
    def _wrap(array: np.ndarray, grad_fn: Node | None = None) -> Tensor:
        """A Tensor around `array`, no conversion, no checks: a leaf, or output 0 of `grad_fn`. The
        autograd package, which knows no Tensor class, makes op results with it (`x._wrap(...)`)."""
        t = object.__new__(Tensor)
        t._array, t.grad_fn = array, grad_fn
        t.requires_grad, t._edge = (False, None) if grad_fn is None else (True, (grad_fn, 0))
        return t

    def _counter(self) -> VersionCounter:
        """This tensor's version counter, made when first needed (most tensors never change)."""
        if self._version_counter is None:
            self._version_counter = VersionCounter()
        return self._version_counter

    def _set_history(self, grad_fn: Node | None, output_nr: int) -> None:
        """Make this the output `output_nr` of the node `grad_fn` (None: no graph)."""
        self.grad_fn, self._output_nr, self.requires_grad = grad_fn, output_nr, grad_fn is not None
        self._edge = None if grad_fn is None else (grad_fn, output_nr)

    def _as_output_of(self, grad_fn: Node, output_nr: int) -> Tensor:
        """An alias of this (detached) tensor as that node's output: how a saved output is unpacked."""
        t = self.detach()
        t._set_history(grad_fn, output_nr)
        return t

    def _snapshot(self) -> Tensor:
        """A copy of this tensor's values that keeps its place in the graph (same grad_fn)."""
        t = Tensor._wrap(self._array.copy())
        t._set_history(self.grad_fn, self._output_nr)
        t.requires_grad = self.requires_grad
        return t

    def _share_version_if_view(self, source: Tensor) -> None:
        """After an op whose result may be a view of `source`'s memory: if it is, share its version
        counter (an in-place change through either is seen by both) and remember the base."""
        if np.may_share_memory(self._array, source._array):
            self._version_counter = source._counter()
            self._base = source if source._base is None else source._base

    # ------------------------------------------------------------ properties

    @property
    def data(self) -> Tensor:
        """This tensor's values as a new Tensor sharing its memory, detached from the graph and not
        requiring grad (as PyTorch: changes through it are not seen by autograd's version checks)."""
        return Tensor._wrap(self._array)

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data: assigned data must be a Tensor, got {type(value).__name__} "
                            "(wrap an array with tinygrad_cnn.tensor(...))")
        self._array = value._array

    @property
    def shape(self) -> Size:
        return Size(self._array.shape)  # the ops read self._array.shape, a plain tuple

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def device(self) -> Device:
        return CPU

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def output_nr(self) -> int:
        return self._output_nr

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's memory has seen."""
        return 0 if self._version_counter is None else self._version_counter.value

    def dim(self) -> int:
        return self._array.ndim

    def size(self, dim: int | None = None) -> Size | int:
        shape = self._array.shape
        return Size(shape) if dim is None else shape[normalize_dim(dim, len(shape), "size", shape)]

    def numel(self) -> int:
        return self._array.size

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The NumPy array behind this tensor (shared memory). As PyTorch, a tensor that requires
        grad must be detached first (or pass force=True)."""
        if self.requires_grad and not force:
            raise RuntimeError("numpy: can't call numpy() on a Tensor that requires grad; use "
                               "tensor.detach().numpy() instead")
        return self._array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def item(self) -> bool | int | float:
        if self._array.size != 1:
            raise RuntimeError(f"item: only a one-element tensor can be converted to a Python number, "
                               f"got shape {self.shape}")
        return self._array.item()

    def tolist(self) -> Any:
        return self._array.tolist()

    def __repr__(self) -> str:
        body = np.array2string(self._array, separator=", ", prefix="tensor(", threshold=100)
        extra = f", grad_fn={self.grad_fn!r}" if self.grad_fn else (", requires_grad=True" if self.requires_grad else "")
        return f"tensor({body}, shape={self.shape}, dtype={self.dtype}{extra})"

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self._array.size != 1:
            raise RuntimeError(f"Boolean value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._array)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """A one-element integer tensor as a list index or a range bound, as PyTorch."""
        if self.dtype.kind not in "iu" or self._array.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index, got dtype "
                            f"{self.dtype} and shape {self.shape}")
        return int(self._array.item())

    def __format__(self, spec: str) -> str:
        """f'{loss:.4f}' formats a one-element tensor as its number (others as their repr)."""
        return format(self.item(), spec) if self._array.size == 1 and self.ndim == 0 else format(repr(self), spec)

    def contiguous(self) -> Tensor:
        """This tensor: NumPy copies when it must, so there is nothing to make contiguous."""
        return self

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
            raise RuntimeError("retain_grad: can't retain_grad on a Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        self.grad_fn.register_prehook(RetainGrad(self), self._output_nr)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call hook(grad) each time a backward pass computes the gradient w.r.t. this tensor,
        before it reaches `.grad` or flows on; a Tensor the hook returns replaces the gradient.
        Returns a handle whose `remove()` unregisters the hook."""
        if not self.requires_grad:
            raise RuntimeError(f"register_hook: cannot register a hook on a tensor of shape {self.shape} "
                               "that does not require grad")
        if self.grad_fn is not None:
            return self.grad_fn.register_prehook(hook, self._output_nr)
        if self._hooks is None:
            self._hooks = {}
        return RemovableHandle(self._hooks, hook)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory and the version counter, as PyTorch)."""
        t = Tensor._wrap(self._array)
        t._version_counter, t._base = self._counter(), self._base
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph, in place: it becomes a leaf that does not require grad."""
        self._set_history(None, 0)
        return self

    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (see `tinygrad_cnn.autograd.backward`)."""
        engine.backward([self], None if gradient is None else [gradient], retain_graph=retain_graph,
                        create_graph=create_graph, inputs=inputs)

    # ------------------------------------------------------------ new tensors like this one

    def new_tensor(self, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        """A new leaf from `data`, with this tensor's dtype unless `dtype` is given."""
        to_device(device, "new_tensor")
        data = data._array if isinstance(data, Tensor) else data
        return Tensor(np.array(data, dtype=dtype or self.dtype), requires_grad=requires_grad)

    def new_zeros(self, *size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return self.new_full(new_shape(size, "new_zeros"), 0, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return self.new_full(new_shape(size, "new_ones"), 1, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size: Sequence[int], fill_value: Any, dtype: Any = None, device: Any = None,
                 requires_grad: bool = False) -> Tensor:
        to_device(device, "new_full")
        t = Tensor._wrap(np.full(new_shape((size,), "new_full"), fill_value, dtype=dtype or self.dtype))
        return t.requires_grad_(requires_grad)

    def new_empty(self, *size: int, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    # ------------------------------------------------------------ dtype and device

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """`to(dtype)`, `to(device)`, `to(device, dtype)`, `to(other)` or with keywords, as PyTorch.
        To an integer or bool dtype the result leaves the graph (only float tensors carry gradients,
        and rounding's derivative is 0 anyway); `copy=True` always makes a new tensor."""
        dtype, target, copy = _to_arguments(self, args, kwargs)
        to_device(target, "to")
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        if dtype.kind != "f":
            return Tensor._wrap(self._array.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Tensor:
        to_device("cuda", "cuda")
        return self  # not reached: to_device raises

    def type(self, dtype: Any = None) -> Tensor | str:
        """With a dtype, this tensor converted to it; without, the dtype's name."""
        return str(self.dtype) if dtype is None else self.to(dtype)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (gradient passes through unchanged)."""
        return ops.Cast.apply(self, dtype=self.dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    # ------------------------------------------------------------ elementwise

    def _lift(self, x: Any) -> Tensor:
        """A constant operand as a Tensor. Python and NumPy numbers are 'weak', as in PyTorch: they take
        this tensor's dtype unless they are of a higher category (a float with an int tensor)."""
        if isinstance(x, Tensor):
            return x
        if isinstance(x, _SCALARS):
            return _scalar_tensor(x, result_type(self, x))
        return Tensor(x)

    def _binary(self, fn: type[ops.Primitive], other: Any, reflected: bool = False, **kwargs: Any) -> Tensor:
        dtype = self._array.dtype
        if type(other) is Tensor and other._array.dtype is dtype and (
                dtype.kind == "f" or (dtype.kind in "iu" and fn is not ops.Div)):
            x, y = self, other  # the common case: tensors of one dtype, nothing to convert
        else:
            x, y = _promoted(fn.__name__.lower(), self, other)
        if reflected:
            x, y = y, x
        try:
            return fn.apply(x, y, **kwargs)
        except ValueError:
            if _broadcastable(x._array.shape, y._array.shape):
                raise
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
    def __rpow__(self, other): return self._binary(ops.Pow, other, reflected=True)
    def __neg__(self): return ops.Neg.apply(_no_bool(self, "Negation"))
    def __abs__(self): return ops.Abs.apply(self)
    def __mod__(self, other): return self.remainder(other)
    def __rmod__(self, other): return self._binary(ops.Remainder, other, reflected=True, mode="remainder")
    def __floordiv__(self, other): return self.floor_divide(other)
    def __rfloordiv__(self, other): return self._lift(other).floor_divide(self)

    def __pow__(self, other):
        if isinstance(other, int) and other < 0 and self._array.dtype.kind in "iu":
            raise RuntimeError(f"pow: Integers to negative integer powers are not allowed (a {self.dtype} tensor "
                               f"to the power {other}; use a float tensor)")
        return self._binary(ops.Pow, other)

    add, sub, mul, div, pow, neg, abs = __add__, __sub__, __mul__, __truediv__, __pow__, __neg__, __abs__

    def exp(self) -> Tensor: return ops.Exp.apply(self._floating())
    def log(self) -> Tensor: return ops.Log.apply(self._floating())
    def sqrt(self) -> Tensor: return ops.Sqrt.apply(self._floating())
    def relu(self) -> Tensor: return ops.Relu.apply(self)
    def tanh(self) -> Tensor: return ops.Tanh.apply(self._floating())
    def sigmoid(self) -> Tensor: return ops.Sigmoid.apply(self._floating())

    def sin(self) -> Tensor: return ops.Sin.apply(self._floating())
    def cos(self) -> Tensor: return ops.Cos.apply(self._floating())
    def log1p(self) -> Tensor: return ops.Log1p.apply(self._floating())
    def erf(self) -> Tensor: return ops.Erf.apply(self._floating())
    def expm1(self) -> Tensor: return ops.Expm1.apply(self._floating())

    def tan(self) -> Tensor:
        return self.sin() / self.cos()

    def log2(self) -> Tensor:
        return self.log() * (1 / np.log(2))

    def log10(self) -> Tensor:
        return self.log() * (1 / np.log(10))

    def exp2(self) -> Tensor:
        return (self._floating() * np.log(2)).exp()

    def floor(self) -> Tensor: return self._rounded("floor")
    def ceil(self) -> Tensor: return self._rounded("ceil")
    def round(self) -> Tensor: return self._rounded("round")
    def trunc(self) -> Tensor: return self._rounded("trunc")
    def sign(self) -> Tensor: return self._rounded("sign")

    def frac(self) -> Tensor:
        """x - trunc(x), with the sign of x (floating point tensors only, as PyTorch)."""
        if self.dtype.kind != "f":
            raise RuntimeError(f"frac: not implemented for dtype {self.dtype}")
        return self - self.trunc()

    def _rounded(self, fn: str) -> Tensor:
        if self.dtype.kind == "f":
            return ops.Rounding.apply(self, fn=fn)
        # an integer tensor is whole already, and holds no gradient: its sign, or itself, as PyTorch
        return Tensor._wrap(np.sign(self._array) if fn == "sign" else self._array.copy())

    def _floating(self) -> Tensor:
        """This tensor, or a float32 copy of an integer one: math on integers gives float32, as PyTorch."""
        return self if self.dtype.kind == "f" else self.to(DEFAULT_FLOAT)

    def maximum(self, other: Any) -> Tensor:
        return self._binary(ops.Maximum, other)

    def fmod(self, other: Any) -> Tensor:
        """self - trunc(self / other) * other: the remainder with the sign of self (C's %)."""
        return self._binary(ops.Remainder, other, mode="fmod")

    def remainder(self, other: Any) -> Tensor:
        """self - floor(self / other) * other: the remainder with the sign of other (Python's %)."""
        return self._binary(ops.Remainder, other, mode="remainder")

    def floor_divide(self, other: Any) -> Tensor:
        """floor(self / other), rounding toward -inf as Python's // (and PyTorch). A step function, outside
        the graph: PyTorch defines no derivative for it."""
        x, y = _promoted("floor_divide", self, other)
        if x.dtype.kind in "biu" and not np.all(y._array):
            raise RuntimeError("ZeroDivisionError: floor_divide of an integer tensor by 0")
        with np.errstate(all="ignore"):  # x // 0 of floats is +-inf or NaN, silently as PyTorch
            return Tensor._wrap(np.asarray(np.floor_divide(x._array, y._array)))

    def minimum(self, other: Any) -> Tensor:
        return self._binary(ops.Minimum, other)

    def clamp(self, min: float | Tensor | None = None, max: float | Tensor | None = None) -> Tensor:
        """min(max(self, min), max), so max wins where min > max. The bounds are numbers or Tensors that
        broadcast with self. dL/dself = g where min <= self <= max; with Tensor bounds, as PyTorch,
        dL/dmin = g where self < min < max and dL/dmax = g where self > max or max < min."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if not isinstance(min, Tensor) and not isinstance(max, Tensor):
            return ops.Clamp.apply(self, min=min, max=max)
        if not all(b is None or isinstance(b, Tensor) for b in (min, max)):
            raise TypeError(f"clamp: min and max must both be Tensors or both numbers, got {type(min).__name__} "
                            f"and {type(max).__name__}")
        x, lo = (self, None) if min is None else _promoted("clamp", self, min)
        x, hi = (x, None) if max is None else _promoted("clamp", x, max)
        lo = lo if lo is None else lo.to(x.dtype)
        a, low, high = x._array, (-np.inf if lo is None else lo._array), (np.inf if hi is None else hi._array)
        clipped = a if lo is None else np.maximum(a, low)
        clipped = clipped if hi is None else np.minimum(clipped, high)
        # each element comes from the one operand whose gradient rule picks it; where none does
        # (min == max with self outside, or NaN), from the constant clipped value
        out = Tensor._wrap(np.asarray(clipped))
        for picked, source in (((a >= low) & (a <= high), x), ((a < low) & (low < high), lo),
                               ((a > high) | (high < low), hi)):
            if source is not None:
                out = where(Tensor._wrap(np.asarray(picked)), source, out)
        return out

    clip = clamp

    def where(self, condition: Any, other: Any) -> Tensor:
        """`self` where `condition` holds, else `other` (as torch.Tensor.where)."""
        return where(condition, self, other)

    # comparisons give boolean tensors outside the graph
    def _compare(self, op, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(op(self._array, self._lift(other)._array)))

    def __lt__(self, other): return self._compare(np.less, other)
    def __le__(self, other): return self._compare(np.less_equal, other)
    def __gt__(self, other): return self._compare(np.greater, other)
    def __ge__(self, other): return self._compare(np.greater_equal, other)
    def __eq__(self, other): return self._compare(np.equal, other)
    def __ne__(self, other): return self._compare(np.not_equal, other)

    def __invert__(self) -> Tensor:
        return Tensor._wrap(~self._array)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__
    logical_not = __invert__

    def logical_and(self, other: Any) -> Tensor: return self._compare(np.logical_and, other)
    def logical_or(self, other: Any) -> Tensor: return self._compare(np.logical_or, other)
    def logical_xor(self, other: Any) -> Tensor: return self._compare(np.logical_xor, other)

    def allclose(self, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
        """|self - other| <= atol + rtol * |other| everywhere (shapes broadcast), as torch.allclose."""
        return bool(np.allclose(self._array, self._lift(other)._array, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def equal(self, other: Tensor) -> bool:
        """The same shape and the same values (False, not an error, when the shapes differ)."""
        return self.shape == other.shape and bool(np.array_equal(self._array, other._array))

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    def nonzero(self, *, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
        """The indices of the nonzero elements: an (n, ndim) int64 tensor, or with `as_tuple` one 1-D
        tensor per dim (a 0-d tensor counts as 1-D there, as PyTorch)."""
        if as_tuple:
            return tuple(Tensor._wrap(i) for i in np.nonzero(np.atleast_1d(self._array)))
        return Tensor._wrap(np.argwhere(self._array))

    def isnan(self) -> Tensor:
        return Tensor._wrap(np.isnan(self._array))

    def isinf(self) -> Tensor:
        return Tensor._wrap(np.isinf(self._array))

    def isfinite(self) -> Tensor:
        return Tensor._wrap(np.isfinite(self._array))

    def all(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._logical_reduce(np.all, dim, keepdim, "all")

    def any(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._logical_reduce(np.any, dim, keepdim, "any")

    def _logical_reduce(self, reduce: Callable, dim: int | None, keepdim: bool, op: str) -> Tensor:
        axes = normalize_dims(dim, self.ndim, op, self.shape)
        return Tensor._wrap(np.asarray(reduce(self._array, axis=axes, keepdims=keepdim)))

    # ------------------------------------------------------------ reductions

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        return ops.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        axes, count = self._float_dims(dim, "mean")
        return self.sum(axes, keepdim) * (1.0 / count if count else math.nan)  # no elements: NaN, as PyTorch

    def var(self, dim: int | Sequence[int] | None = None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
        """Variance with Bessel's `correction` (1 = unbiased, PyTorch's default); NaN without
        degrees of freedom, as PyTorch."""
        return self._var(dim, correction, keepdim, "var")

    def std(self, dim: int | Sequence[int] | None = None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
        """The square root of var; its gradient is 0 where the std is 0 (a constant slice), as PyTorch."""
        return _sqrt_with_zero_gradient_at_zero(self._var(dim, correction, keepdim, "std"))

    def _var(self, dim, correction: int, keepdim: bool, op: str) -> Tensor:
        axes, count = self._float_dims(dim, op)
        centered = self - self.mean(axes, keepdim=True)
        dof = count - correction
        if dof <= 0 or self.numel() == 0:  # PyTorch counts numel(input) / numel(output): none for an empty input
            warnings.warn(f"{op}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                          f"reduction factor (input numel divided by output numel)", UserWarning, stacklevel=3)
        return (centered * centered).sum(axes, keepdim) * (1.0 / dof if dof > 0 else math.nan)

    def _float_dims(self, dim, op: str) -> tuple[tuple[int, ...], int]:
        """The checked axes of `dim` (errors name `op`) and how many elements one reduction covers."""
        if self.dtype.kind != "f":
            raise TypeError(f"{op}: needs a floating point tensor, got dtype {self.dtype}")
        axes = normalize_dims(dim, self.ndim, op, self.shape)
        return axes, int(np.prod([self.shape[d] for d in axes]))

    def norm(self, p: Any = "fro", dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """The p-norm over `dim` (all elements by default): p = 2 or 'fro' (Euclidean), or 1.
        d|x|_2/dx = x / |x|_2, and 0 at x = 0 (a subgradient, as PyTorch)."""
        if p in (2, "fro"):
            return _sqrt_with_zero_gradient_at_zero((self * self).sum(dim, keepdim))
        if p == 1:
            return self.abs().sum(dim, keepdim)
        raise ValueError(f"norm: p must be 1, 2 or 'fro', got {p!r}")

    def amax(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Largest value over `dim`; ties share the gradient evenly."""
        return self._extreme(ops.Max, dim, keepdim, "amax")

    def amin(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Smallest value over `dim`; ties share the gradient evenly."""
        return self._extreme(ops.Min, dim, keepdim, "amin")

    def _extreme(self, reduce: type[ops.Max], dim: int | Sequence[int] | None, keepdim: bool, op: str) -> Tensor:
        axes = normalize_dims(dim, self.ndim, op, self.shape)
        ops.reduce.check_nonempty_dims(self.shape, axes, op)
        return reduce.apply(self, dim=axes, keepdim=keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Tensor | MaxResult:
        """max() -> the largest value; max(dim) -> (values, indices), the gradient going to
        the first maximum; max(other_tensor) -> elementwise maximum. As PyTorch."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return self.amax() if dim is None else self._extreme_along(ops.Max, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Tensor | MaxResult:
        """min() -> the smallest value; min(dim) -> (values, indices), the gradient going to
        the first minimum; min(other_tensor) -> elementwise minimum. As PyTorch."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        return self.amin() if dim is None else self._extreme_along(ops.Min, dim, keepdim)

    def _extreme_along(self, reduce: type[ops.Max], dim: int, keepdim: bool) -> MaxResult:
        """(values, indices) of max(dim) or min(dim), by the Max or Min primitive (reduce.arg_extreme finds
        the index)."""
        op = reduce.__name__.lower()
        axis = normalize_dim(dim, self.ndim, op, self.shape)
        values = reduce.apply(self, dim=axis, keepdim=keepdim, spread_ties=False)
        indices = np.zeros(values.shape, np.int64) if self.ndim == 0 else \
            reduce.arg_extreme(self._array, axis=axis, keepdims=keepdim)  # a 0-d tensor's one element: index 0
        return MaxResult(values, Tensor._wrap(indices))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._arg_extreme(ops.Max, dim, keepdim, "argmax")

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._arg_extreme(ops.Min, dim, keepdim, "argmin")

    def _arg_extreme(self, reduce: type[ops.Max], dim: int | None, keepdim: bool, op: str) -> Tensor:
        if self.dtype.kind == "b":
            raise RuntimeError(f"{op}(): does not support bool input")
        if dim is None:
            ops.reduce.check_nonempty_dims(self.shape, tuple(range(self.ndim)), op)
            return Tensor._wrap(np.asarray(reduce.arg_extreme(self._array)))
        axis = normalize_dim(dim, self.ndim, op, self.shape)
        ops.reduce.check_nonempty_dims(self.shape, (axis,) if self.ndim else (), op)
        if self.ndim == 0:  # a 0-d tensor's one element is at index 0, as PyTorch
            return Tensor._wrap(np.array(0))
        return Tensor._wrap(reduce.arg_extreme(self._array, axis=axis, keepdims=keepdim))

    def _shifted(self, dim: int, op: str) -> Tensor:
        """x - max(x) along dim. The max is a constant (softmax does not depend on it): it only keeps
        exp() from overflowing, so the largest exponent is exp(0) = 1."""
        normalize_dim(dim, self.ndim, op, self.shape)
        if self.dtype.kind != "f":
            raise NotImplementedError(f"{op}: not implemented for dtype {self.dtype} (convert the tensor with "
                                      ".float() first)")
        if self.numel() == 0:
            return self
        return self - np.max(self._array, axis=dim, keepdims=True)

    def logsumexp(self, dim: int | Sequence[int], keepdim: bool = False) -> Tensor:
        """log(sum(exp(x))) over dim, computed stably: m + log(sum(exp(x - m))), m the max (a constant
        for the gradient, which is softmax(x)); -inf where every element is -inf, as PyTorch."""
        axes = normalize_dims(dim, self.ndim, "logsumexp", self.shape)
        if self.numel() == 0:
            return self.exp().sum(axes, keepdim).log()
        top = np.max(self._array, axis=axes, keepdims=True)
        top = np.where(np.isfinite(top), top, 0)  # all -inf (or an inf) along dim: shift by nothing
        out = (self - top).exp().sum(axes, keepdim=True).log() + top
        return out if keepdim else out.squeeze(axes)

    def log_softmax(self, dim: int) -> Tensor:
        """log(softmax(x)) computed stably: (x - m) - log(sum(exp(x - m))), m the max along dim."""
        shifted = self._shifted(dim, "log_softmax")
        if self.numel() == 0:  # nothing to normalise (and log of an empty sum would warn)
            return shifted
        return shifted - shifted.exp().sum(dim, keepdim=True).log()

    def softmax(self, dim: int) -> Tensor:
        """exp(x) / sum(exp(x)) along dim, computed stably (the max is subtracted first)."""
        e = self._shifted(dim, "softmax").exp()
        return e / e.sum(dim, keepdim=True)

    def sum_to_size(self, *size: int) -> Tensor:
        """Sum broadcast dims away so the result has `size` (the adjoint of expand)."""
        size = size_args(size, "sum_to_size")
        return self if size == self._array.shape else ops.SumToSize.apply(self, shape=size)

    # ------------------------------------------------------------ matmul

    def matmul(self, other: Any) -> Tensor:
        """PyTorch's rules: 1-D @ 1-D is a dot product, a 1-D operand gets a dim of 1 added
        (then removed), higher dims are batches that broadcast."""
        other = self._lift(other)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {self.shape} and {other.shape}")
        self._check_same_dtype("matmul", self, other)
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

    def mm(self, mat2: Tensor) -> Tensor:
        """(n, k) @ (k, m): a matrix product of two 2-D tensors only."""
        self._check_dims("mm", (self, 2), (mat2, 2))
        return self.matmul(mat2)

    def bmm(self, mat2: Tensor) -> Tensor:
        """(b, n, k) @ (b, k, m): a batch of matrix products, both 3-D with the same batch."""
        self._check_dims("bmm", (self, 3), (mat2, 3))
        if self.shape[0] != mat2.shape[0]:
            raise RuntimeError(f"bmm: batch sizes differ: {self.shape} and {mat2.shape}")
        return self.matmul(mat2)

    def dot(self, other: Tensor) -> Tensor:
        """The inner product of two 1-D tensors of the same length."""
        self._check_dims("dot", (self, 1), (other, 1))
        return self.matmul(other)

    def outer(self, vec2: Tensor) -> Tensor:
        """(n,) x (m,) -> (n, m): out[i, j] = self[i] * vec2[j]."""
        self._check_dims("outer", (self, 1), (vec2, 1))
        return self.unsqueeze(1) * vec2.unsqueeze(0)

    @staticmethod
    def _check_same_dtype(op: str, *tensors: Tensor | None) -> None:
        """No silent promotion inside a layer (a float64 batch into a float32 model): PyTorch refuses it."""
        dtypes = [t.dtype for t in tensors if t is not None]
        if any(d != dtypes[0] for d in dtypes):
            raise RuntimeError(f"{op}: expected all operands to have the same dtype, but got "
                               f"{' and '.join(map(str, dtypes))} (shapes "
                               f"{' and '.join(str(t.shape) for t in tensors if t is not None)})")

    @staticmethod
    def _check_dims(op: str, *tensors_and_dims: tuple[Tensor, int]) -> None:
        for t, ndim in tensors_and_dims:
            if t.ndim != ndim:
                shapes = " and ".join(str(x.shape) for x, _ in tensors_and_dims)
                raise RuntimeError(f"{op}: expected {ndim}-D tensors, got shapes {shapes}")

    def t(self) -> Tensor:
        """A 2-D tensor transposed (a 0-D or 1-D one as it is), as PyTorch."""
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape} (use transpose)")
        return self if self.ndim < 2 else self.transpose(0, 1)

    # ------------------------------------------------------------ movement

    def reshape(self, *shape: int) -> Tensor:
        shape = size_args(shape, "reshape")
        if min(shape, default=0) < -1:
            raise RuntimeError(f"reshape: invalid shape dimension {min(shape)} at index {shape.index(min(shape))} of "
                               f"shape {list(shape)}")
        return self if shape == self._array.shape else ops.Reshape.apply(self, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        shape = self._array.shape
        if not shape:
            return self.reshape(1)
        start = normalize_dim(start_dim, len(shape), "flatten", shape)
        end = normalize_dim(end_dim, len(shape), "flatten", shape)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {shape}")
        return self.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def permute(self, *dims: int) -> Tensor:
        dims = tuple(normalize_dim(d, self.ndim, "permute", self.shape) for d in size_args(dims, "permute"))
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
        sizes = size_args(sizes, "expand")
        lead = len(sizes) - self.ndim
        shape = tuple(n if n != -1 or i < lead else self.shape[i - lead] for i, n in enumerate(sizes))
        return self if shape == self._array.shape else ops.Expand.apply(self, shape=shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        axes = normalize_dims(dim, self.ndim, "squeeze", self.shape)
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def unsqueeze(self, dim: int) -> Tensor:
        shape = self._array.shape
        axis = normalize_dim(dim, len(shape) + 1, "unsqueeze", shape)
        return self.reshape(shape[:axis] + (1,) + shape[axis:])

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    reshape_as = view_as

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        """Dim `dim` split into `sizes` (one may be -1): the inverse of flatten."""
        axis = normalize_dim(dim, self.ndim, "unflatten", self.shape)
        known = int(np.prod([n for n in sizes if n != -1]))
        if (-1 not in sizes and known != self.shape[axis]) or (known == 0 or self.shape[axis] % known):
            raise RuntimeError(f"unflatten: sizes {tuple(sizes)} don't multiply up to {self.shape[axis]}, the size "
                               f"of dim {dim} of {self.shape}")
        return self.reshape(self.shape[:axis] + tuple(sizes) + self.shape[axis + 1:])

    def split(self, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces along dim: of `split_size` each (the last may be smaller), or of the given sizes."""
        axis = normalize_dim(dim, self.ndim, "split", self.shape)
        n = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections < 1:
                raise RuntimeError(f"split: split_size must be positive, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - start) for start in range(0, n, split_size_or_sections)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n or min(sizes, default=0) < 0:
                raise RuntimeError(f"split: sizes {sizes} do not add up to {n}, the size of dim {dim} of {self.shape}")
        ends = np.cumsum(sizes).tolist()
        lead = (slice(None),) * axis
        return tuple(self[lead + (slice(end - size, end),)] for size, end in zip(sizes, ends))

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """At most `chunks` pieces of equal size along dim (the last may be smaller), as PyTorch."""
        if chunks < 1:
            raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
        n = self.shape[normalize_dim(dim, self.ndim, "chunk", self.shape)]
        return self.split(max(1, -(-n // chunks)), dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along dim, that dim removed."""
        axis = normalize_dim(dim, self.ndim, "unbind", self.shape)
        lead = (slice(None),) * axis
        return tuple(self[lead + (i,)] for i in range(self.shape[axis]))

    def flip(self, dims: int | Sequence[int]) -> Tensor:
        """The order of elements reversed along each of dims."""
        axes = normalize_dims(dims, self.ndim, "flip", self.shape)
        return self[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(self.ndim))]

    def repeat(self, *sizes: int) -> Tensor:
        """Tiled `sizes` times along each dim (leading sizes add dims), as torch.Tensor.repeat."""
        sizes = size_args(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise RuntimeError(f"repeat: {len(sizes)} repeat counts for a tensor of shape {self.shape} (need at least "
                               f"{self.ndim})")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        # put a new dim of each count before its dim, broadcast to the count, merge the pairs
        x = self.reshape(tuple(n for d in shape for n in (1, d)))
        x = x.expand(tuple(n for count, d in zip(sizes, shape) for n in (count, d)))
        return x.reshape(tuple(count * d for count, d in zip(sizes, shape)))

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dims (j <= i + diagonal kept), the rest 0."""
        return self._triangle(np.tri(*self._matrix_dims("tril"), k=diagonal, dtype=bool))

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dims (j >= i + diagonal kept), the rest 0."""
        return self._triangle(~np.tri(*self._matrix_dims("triu"), k=diagonal - 1, dtype=bool))

    def _matrix_dims(self, op: str) -> tuple[int, int]:
        if self.ndim < 2:
            raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions, got shape {self.shape}")
        return self.shape[-2], self.shape[-1]

    def _triangle(self, keep: np.ndarray) -> Tensor:
        return self.where(Tensor._wrap(keep), 0)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_as_numpy_index(index))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """`value` where the boolean `mask` (broadcast to this shape) holds, else this tensor."""
        mask = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill: mask must be a boolean tensor, got dtype {mask.dtype}")
        return where(mask, self._lift(value).to(self.dtype), self)

    # ------------------------------------------------------------ gather, scatter and selection
    # Each builds a NumPy advanced index and runs GetItem, IndexAdd or SetItem, whose VJPs are each other:
    # gather's gradient is a scatter-add of g into zeros, and a scatter-add's gradient is a gather of g.

    def _along_dim(self, op: str, dim: int, index: Any, src: Any = None) -> tuple[int, tuple]:
        """The checked axis, and the NumPy index that picks self[..., index[i], ...] (index replacing the
        `dim` coordinate) at each position i of `index`, as torch.gather and torch.scatter read it."""
        axis = normalize_dim(dim, self.ndim, op, self.shape)
        idx = _index_array(index, op)
        if idx.ndim != self.ndim:
            raise RuntimeError(f"{op}: Index tensor must have the same number of dimensions as input tensor "
                               f"(index of shape {idx.shape}, input of shape {self.shape})")
        src_shape = src.shape if isinstance(src, Tensor) else idx.shape
        if any(n > m for d, (n, m) in enumerate(zip(idx.shape, self.shape)) if d != axis) or \
                any(n > m for n, m in zip(idx.shape, src_shape)):
            raise RuntimeError(f"{op}: expected index {idx.shape} to be no larger than self {self.shape} apart "
                               f"from dimension {axis}" + (f" and to be no larger than src {src_shape}"
                                                             if isinstance(src, Tensor) else ""))
        _check_bounds(idx, self.shape[axis] if self.ndim else 1, axis, op, self.shape)
        if self.ndim == 0:  # the one element, at index 0
            return axis, ()
        grid = list(np.indices(idx.shape, sparse=True))
        grid[axis] = idx
        return axis, tuple(grid)

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j] = self[index[i][j]][j] for dim 0 (and so on): the shape of `index`.
        dL/dself = g added into zeros at those places (IndexAdd)."""
        return ops.GetItem.apply(self, index=self._along_dim("gather", dim, index)[1])

    def scatter(self, dim: int, index: Any, src: Any = None, reduce: str | None = None, *, value: Any = None) -> Tensor:
        """A copy of self with out[index[i][j]][j] = src[i][j] for dim 0 (and so on); `src` (or `value`) may be
        a number. Where `index` repeats a place, which write wins is unspecified (as PyTorch).
        dL/dself = g with zeros at the written places; dL/dsrc = g gathered at them.
        With reduce='add' or 'multiply' (PyTorch's older form of scatter_reduce's 'sum' and 'prod'), src is
        combined with self instead; PyTorch defines no derivative for that form, so a backward through it raises."""
        if (src is None) == (value is None):
            raise TypeError("scatter(): expected exactly one of src and value")
        src = value if src is None else src
        if reduce is not None:
            if reduce not in ("add", "multiply"):
                raise RuntimeError(f"scatter(): reduce argument must be either add or multiply, got {reduce!r}")
            if not isinstance(src, Tensor):
                src = self._lift(src).to(self.dtype).expand(*_index_array(index, "scatter").shape)
            return _ScatterWithReduce.apply(self, dim, index, src, reduce)
        grid = self._along_dim("scatter", dim, index, src)[1]
        return ops.SetItem.apply(self, self._index_shaped(src, index).to(self.dtype), index=grid)

    def scatter_add(self, dim: int, index: Any, src: Tensor) -> Tensor:
        """self plus src[i][j] added at [index[i][j]][j] for dim 0 (and so on); repeated places add up.
        dL/dself = g; dL/dsrc = g gathered at those places."""
        grid = self._along_dim("scatter_add", dim, index, src)[1]
        return self + ops.IndexAdd.apply(self._index_shaped(src, index).to(self.dtype), index=grid, shape=self.shape)

    def scatter_reduce(self, dim: int, index: Any, src: Tensor, reduce: str, *, include_self: bool = True) -> Tensor:
        """self with each src[i][j] combined into out[index[i][j]][j] for dim 0 (and so on) by `reduce`: 'sum',
        'prod', 'mean', 'amax' or 'amin', together with self's own value there unless include_self=False (a place
        no index names keeps its value either way). The gradients are PyTorch's: 'sum' passes g on (gathered for
        src), 'mean' g / count, 'prod' g times the product of the others (exact where some are 0), and 'amax' /
        'amin' share g evenly among the values tied for the extreme."""
        if reduce not in ("sum", "prod", "mean", "amax", "amin"):
            raise RuntimeError(f"scatter_reduce(): reduce argument must be either sum, prod, mean, amax or amin, got "
                               f"{reduce!r}")
        if not isinstance(src, Tensor):
            raise TypeError(f"scatter_reduce(): argument 'src' must be Tensor, not {type(src).__name__}")
        if src.dtype != self.dtype:
            raise RuntimeError(f"scatter_reduce(): expected self.dtype to be equal to src.dtype, got {self.dtype} and "
                               f"{src.dtype}")
        grid = self._along_dim("scatter_reduce", dim, index, src)[1]
        src = self._index_shaped(src, index)
        places = (np.ravel_multi_index(np.broadcast_arrays(*grid), self.shape).reshape(-1) if grid
                  else np.zeros(src.numel(), np.int64))  # the flat place in self of each src element
        hits = np.bincount(places, minlength=self.numel()).reshape(self.shape)
        own = np.full(self.shape, True) if include_self else hits == 0  # where self's own value takes part
        if reduce == "prod":
            return self._scatter_prod(src, places, own)
        if reduce in ("amax", "amin"):
            return self._scatter_extreme(src, places, own, grid, np.maximum if reduce == "amax" else np.minimum)
        total = (self if include_self else where(own, self, 0)) + ops.IndexAdd.apply(src, index=grid, shape=self.shape)
        if reduce == "sum":
            return total
        count = Tensor._wrap((hits + own).astype(self.dtype))  # at least 1: self counts where nothing lands
        return total / count if self.dtype.kind == "f" else total.floor_divide(count)

    def _scatter_prod(self, src: Tensor, places: np.ndarray, own: np.ndarray) -> Tensor:
        """scatter_reduce 'prod': the values that land on each place (self's own first, where it takes part),
        multiplied pairwise, level by level, within each place. As a tree of products, each value's gradient
        is the product of the others, exact where some are 0, and differentiable again."""
        mine = np.flatnonzero(own)
        order = np.argsort(np.concatenate([mine, places]), kind="stable")
        values = cat([self.reshape(-1)[mine], src.reshape(-1)])[order]
        groups = np.concatenate([mine, places])[order]  # sorted: one run per place, every place has one
        while len(groups) > 1 and (groups[1:] == groups[:-1]).any():
            n = len(groups)
            starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
            rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
            left = np.flatnonzero(rank % 2 == 0)  # each even rank takes its odd neighbour of the same place
            partner = np.minimum(left + 1, n - 1)
            paired = (left + 1 < n) & (groups[partner] == groups[left])
            right = np.where(paired, partner, left)
            values, groups = values[left] * values[right].where(Tensor._wrap(paired), 1), groups[left]
        return values.reshape(self.shape)

    def _scatter_extreme(self, src: Tensor, places: np.ndarray, own: np.ndarray, grid: tuple,
                         ufunc: np.ufunc) -> Tensor:
        """scatter_reduce 'amax' / 'amin' (ufunc np.maximum / np.minimum), computed in NumPy; when a gradient
        is wanted, g is shared evenly among the values that equal the result at each place."""
        out = self._array.copy()
        flat_src = src._array.reshape(-1)
        if not bool(own.all()):
            out.reshape(-1)[places] = flat_src  # any value that lands there will do as the start
        ufunc.at(out.reshape(-1), places, flat_src)
        result = Tensor._wrap(out)
        if not (modes.grad and (self.requires_grad or src.requires_grad)):
            return result
        self_tied = own & (self._array == out)
        src_tied = flat_src == out.reshape(-1)[places]
        ties = np.maximum(self_tied + np.bincount(places, src_tied, self.numel()).reshape(self.shape), 1)
        self_share = (self_tied / ties).astype(self.dtype)
        src_share = (src_tied / ties.reshape(-1)[places]).reshape(src.shape).astype(self.dtype)
        share = where(self_tied, self, 0) * self_share + ops.IndexAdd.apply(
            where(src_tied.reshape(src.shape), src, 0) * src_share, index=grid, shape=self.shape)
        # share is the tied values' mean, which is the result up to rounding: take the exact result as the
        # value and share only for the gradient (share - share.detach() is 0 and carries share's gradient)
        return result + (share - share.detach())

    def _index_shaped(self, src: Any, index: Any) -> Tensor:
        """The leading corner of `src` that `index` covers (PyTorch reads no more of it); a number stays 0-d."""
        if not isinstance(src, Tensor):
            return self._lift(src)
        shape = _index_array(index, "scatter").shape
        return src if src.shape == shape else src[tuple(slice(0, n) for n in shape)]

    def take_along_dim(self, indices: Any, dim: int | None = None) -> Tensor:
        """gather with `indices` and self broadcast against each other (but along dim); without dim,
        the flattened tensor is indexed by the flattened indices."""
        idx = _index_array(indices, "take_along_dim")
        if dim is None:
            return self.reshape(-1).gather(0, idx.reshape(-1))
        axis = normalize_dim(dim, self.ndim, "take_along_dim", self.shape)
        if idx.ndim != self.ndim:
            raise RuntimeError(f"take_along_dim: input and indices should have the same number of dimensions, "
                               f"got shapes {self.shape} and {idx.shape}")
        try:
            common = list(np.broadcast_shapes(_with(self.shape, axis, 1), _with(idx.shape, axis, 1)))
        except ValueError:
            raise RuntimeError(f"take_along_dim: shapes {self.shape} and {idx.shape} cannot be broadcast together "
                               f"apart from dimension {axis}") from None
        x = self.expand(*_with(common, axis, self.shape[axis]))
        return x.gather(axis, np.broadcast_to(idx, _with(common, axis, idx.shape[axis])))

    def index_select(self, dim: int, index: Any) -> Tensor:
        """The slices at the entries of the 1-D `index` along dim, in that order (repeats allowed)."""
        axis = normalize_dim(dim, self.ndim, "index_select", self.shape)
        idx = _index_array(index, "index_select")
        if idx.ndim > 1:
            raise IndexError(f"index_select(): Index is supposed to be a vector, got shape {idx.shape}")
        if self.ndim == 0:
            return self.reshape(1).index_select(0, idx).reshape(())
        _check_bounds(idx, self.shape[axis], axis, "index_select", self.shape)
        return ops.GetItem.apply(self, index=(slice(None),) * axis + (idx.reshape(-1),))

    def masked_select(self, mask: Any) -> Tensor:
        """The elements where the boolean `mask` holds, self and mask broadcast together: a 1-D tensor."""
        mask = mask if isinstance(mask, Tensor) else Tensor(np.asarray(mask))
        if mask.dtype != np.bool_:
            raise RuntimeError(f"masked_select: expected BoolTensor for mask, got dtype {mask.dtype}")
        try:
            shape = np.broadcast_shapes(self.shape, mask.shape)
        except ValueError:
            raise RuntimeError(f"masked_select: shapes {self.shape} (input) and {mask.shape} (mask) cannot be "
                               "broadcast together") from None
        return ops.GetItem.apply(self.expand(*shape), index=(np.broadcast_to(mask._array, shape),))

    # ------------------------------------------------------------ sorting and scans

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        """The int64 indices that sort self along dim. Always stable (ties keep their order), which
        PyTorch's default does not promise; NaN sorts as the largest value."""
        return Tensor._wrap(self._sorting(dim, descending, "argsort")[1])

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> SortResult:
        """(values, indices) sorted along dim; the gradient goes back to where each value came from."""
        axis, order = self._sorting(dim, descending, "sort")
        return SortResult(self._gather_known(axis, order), Tensor._wrap(order))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> SortResult:
        """The k largest (or smallest) values along dim and their indices, sorted; the gradient goes back
        to where each value came from."""
        axis, order = self._sorting(dim, largest, "topk")
        n = self.shape[axis] if self.ndim else 1
        if not 0 <= k <= n:
            raise RuntimeError(f"topk: selected index k out of range: k = {k} for dimension {axis} of size {n} "
                               f"(tensor of shape {self.shape})")
        order = order[(slice(None),) * axis + (slice(0, k),)]
        return SortResult(self._gather_known(axis, order), Tensor._wrap(order))

    def _sorting(self, dim: int, descending: bool, op: str) -> tuple[int, np.ndarray]:
        """The checked axis and the stable sorting order along it."""
        axis = normalize_dim(dim, self.ndim, op, self.shape)
        a = self._array.reshape(self.shape or (1,))
        if descending:  # sort the reversed array ascending and reverse the result: ties stay in order
            n = a.shape[axis]
            order = n - 1 - np.flip(np.argsort(np.flip(a, axis), axis=axis, kind="stable"), axis)
        else:
            order = np.argsort(a, axis=axis, kind="stable")
        return axis, order.reshape(self.shape).astype(np.int64, copy=False)

    def _gather_known(self, axis: int, order: np.ndarray) -> Tensor:
        """gather with an index this tensor computed itself (in bounds, nothing to check)."""
        if self.ndim == 0:
            return ops.GetItem.apply(self, index=())
        grid = list(np.indices(order.shape, sparse=True))
        grid[axis] = order
        return ops.GetItem.apply(self, index=tuple(grid))

    def _accumulating(self) -> Tensor:
        """Integers and bools are summed and multiplied in int64, as PyTorch does (no overflow at int8)."""
        return self.to(np.int64) if self.dtype.kind in "biu" else self

    def cumsum(self, dim: int) -> Tensor:
        """The running sum along dim."""
        return ops.Cumsum.apply(self._accumulating(), dim=normalize_dim(dim, self.ndim, "cumsum", self.shape))

    def cumprod(self, dim: int) -> Tensor:
        """The running product along dim, as a scan (Hillis-Steele) of ceil(log2 n) products of shifted copies:
        every derivative is then a product of the other inputs, exact where some are 0 (no out / x)."""
        axis = normalize_dim(dim, self.ndim, "cumprod", self.shape)
        out = self._accumulating().clone()
        n, shift = (self.shape[axis] if self.ndim else 1), 1
        while shift < n:  # out[i] holds the product of x[i - 2 * shift + 1 .. i] after this step
            head = out[(slice(None),) * axis + (slice(0, n - shift),)]
            out = out * _padded(head, axis, (shift, 0), 1)
            shift *= 2
        return out

    def prod(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """The product over dim (every element when None), as a tree of pairwise products: each element's
        gradient is the product of the others, exact where some are 0 (no out / x). 1 for no elements."""
        if dim is None:
            out = self.reshape(-1).prod(0)
            return out.reshape((1,) * self.ndim) if keepdim else out
        axis = normalize_dim(dim, self.ndim, "prod", self.shape)
        x = self._accumulating()
        if x.ndim == 0:
            return x.clone()
        lead = (slice(None),) * axis
        if x.shape[axis] == 0:
            x = Tensor._wrap(np.ones(_with(x.shape, axis, 1), x.dtype))
        while x.shape[axis] > 1:  # multiply even by odd positions (an odd one out times 1): half as many
            odd = x[lead + (slice(1, None, 2),)]
            x = x[lead + (slice(0, None, 2),)] * (_padded(odd, axis, (0, 1), 1) if x.shape[axis] % 2 else odd)
        return x if keepdim else x.squeeze(axis)

    # ------------------------------------------------------------ rearranging

    def roll(self, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None) -> Tensor:
        """Elements shifted cyclically by shifts[i] along dims[i]; without dims, over the flattened tensor."""
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        if dims is None:
            if len(shifts) != 1:
                raise RuntimeError(f"roll: {len(shifts)} shifts need as many dims, got none")
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}")
        total = [0] * max(self.ndim, 1)  # a dim named twice is rolled by both shifts
        for shift, d in zip(shifts, dims):
            total[normalize_dim(d, self.ndim, "roll", self.shape)] += shift
        if self.ndim == 0:
            return self.clone()
        # one index array per dim (np.ix_), so the rolled dims do not pair up elementwise
        return ops.GetItem.apply(self, index=np.ix_(*[np.roll(np.arange(n), s) for n, s in zip(self.shape, total)]))

    def tile(self, dims: int | Sequence[int]) -> Tensor:
        """Tiled dims[i] times along each dim; fewer dims than self has are padded with 1s in front
        (unlike repeat, which refuses them)."""
        sizes = size_args((dims,) if isinstance(dims, int) else tuple(dims), "tile")
        return self.repeat(*((1,) * (self.ndim - len(sizes)) + sizes))

    # ------------------------------------------------------------ in place
    # Each computes its result out of place with the op it is named after, then writes it into this
    # tensor's memory (_inplace): one gradient rule per op, and the version counter sees the change.

    def _inplace(self, op: str, compute: Callable[[Tensor], Tensor]) -> Tensor:
        """Make compute(self) this tensor's value, in its own memory, and (when recorded) its history."""
        if modes.grad and self.requires_grad and self.grad_fn is None:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
                               f"(tensor of shape {self.shape}); change it under `with no_grad():` or use an "
                               "out-of-place op")
        result = compute(self)
        if result.shape != self.shape:
            raise RuntimeError(f"{op}: output with shape {self.shape} doesn't match the broadcast shape "
                               f"{result.shape}")
        if not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to the desired output type "
                               f"{self.dtype}")
        node = result.grad_fn
        if node is not None:
            if self._base is not None:
                raise RuntimeError(
                    f"{op}: an in-place change of a view (a slice, reshape or transpose of another tensor) is "
                    "not recorded for autograd here; change the tensor it views (t[idx] = ..., t.add_(...)) or "
                    "clone() the view first (a difference from PyTorch, see docs/coming-from-pytorch.md)")
            if result.dtype != self.dtype:
                result = result.to(self.dtype)
                node = result.grad_fn
            node.keep_copy_if_saved(self)  # the op's VJP may need the value this write replaces
        try:
            np.copyto(self._array, result._array, casting="same_kind")
        except ValueError:
            raise RuntimeError(f"{op}: cannot write into a tensor of shape {self.shape} whose elements share "
                               "memory (an expand()ed view); clone() it first") from None
        self._counter().bump()
        if node is not None:
            self._set_history(node, result._output_nr)
        tangents = result.__dict__.get("_fw_tangents")
        if tangents is not None or "_fw_tangents" in self.__dict__:  # forward AD: the new value's tangents
            self._fw_tangents = tangents
        return self

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        return self._inplace("add_", lambda x: x + (other if alpha == 1 else self._lift(other) * alpha))

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        return self._inplace("sub_", lambda x: x - (other if alpha == 1 else self._lift(other) * alpha))

    def mul_(self, other: Any) -> Tensor:
        return self._inplace("mul_", lambda x: x * other)

    def div_(self, other: Any) -> Tensor:
        return self._inplace("div_", lambda x: x / other)

    def pow_(self, exponent: Any) -> Tensor:
        return self._inplace("pow_", lambda x: x ** exponent)

    def neg_(self) -> Tensor:
        return self._inplace("neg_", Tensor.neg)

    def abs_(self) -> Tensor:
        return self._inplace("abs_", Tensor.abs)

    def exp_(self) -> Tensor:
        return self._inplace("exp_", Tensor.exp)

    def log_(self) -> Tensor:
        return self._inplace("log_", Tensor.log)

    def sqrt_(self) -> Tensor:
        return self._inplace("sqrt_", Tensor.sqrt)

    def relu_(self) -> Tensor:
        return self._inplace("relu_", Tensor.relu)

    def sigmoid_(self) -> Tensor:
        return self._inplace("sigmoid_", Tensor.sigmoid)

    def tanh_(self) -> Tensor:
        return self._inplace("tanh_", Tensor.tanh)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return self._inplace("clamp_", lambda x: x.clamp(min, max))

    clip_ = clamp_

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        return self._inplace("masked_fill_", lambda x: x.masked_fill(mask, value))

    def fill_(self, value: Any) -> Tensor:
        """Every element set to `value` (the old values get a zero gradient)."""
        return self._inplace("fill_", lambda x: x.masked_fill(np.ones((), bool), value))

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill with draws from U(a, b), from the generator `manual_seed` sets."""
        return self.copy_(Tensor._wrap(get_generator().uniform(a, b, self.shape)))

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill with draws from N(mean, std^2), from the generator `manual_seed` sets."""
        return self.copy_(Tensor._wrap(get_generator().normal(mean, std, self.shape)))

    def scatter_(self, dim: int, index: Any, src: Any = None, reduce: str | None = None, *,
                 value: Any = None) -> Tensor:
        return self._inplace("scatter_", lambda x: x.scatter(dim, index, src, reduce, value=value))

    def scatter_add_(self, dim: int, index: Any, src: Tensor) -> Tensor:
        return self._inplace("scatter_add_", lambda x: x.scatter_add(dim, index, src))

    def scatter_reduce_(self, dim: int, index: Any, src: Tensor, reduce: str, *, include_self: bool = True) -> Tensor:
        return self._inplace("scatter_reduce_", lambda x: x.scatter_reduce(dim, index, src, reduce,
                                                                          include_self=include_self))

    def copy_(self, src: Any) -> Tensor:
        """`src` (broadcast to this shape, converted to this dtype) written into this tensor."""
        return self._inplace("copy_", lambda x: where(np.ones((), bool), self._lift(src).to(x.dtype), x))

    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)

    def __setitem__(self, index: Any, value: Any) -> None:
        """t[index] = value, with ints, slices, None, Ellipsis, boolean masks or integer tensors as
        the index, and a Tensor or a number (broadcast) as the value."""
        index, value = _as_numpy_index(index), self._lift(value)
        recorded = modes.grad and (self.requires_grad or value.requires_grad)
        if not (recorded or dual_levels):  # fast path: nothing to record, no tangents to carry
            try:
                self._array[index] = value._array
            except (IndexError, ValueError) as e:
                raise (IndexError if isinstance(e, IndexError) else RuntimeError)(
                    f"setitem: {e} (tensor of shape {self.shape}, value of shape {value.shape})") from None
            self._counter().bump()
            return
        self._inplace("setitem", lambda x: ops.SetItem.apply(x, value.to(x.dtype), index=index))


def _to_arguments(t: Tensor, args: tuple, kwargs: dict) -> tuple[Any, Any, bool]:
    """(dtype, device, copy) from the ways to call Tensor.to: (dtype), (device), (device, dtype),
    (tensor), and the keywords dtype, device, copy, non_blocking."""
    dtype, target = kwargs.pop("dtype", None), kwargs.pop("device", None)
    copy = bool(kwargs.pop("copy", False))
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype, target = arg.dtype, arg.device
        elif isinstance(arg, (str, Device)):
            target = arg
        elif arg is not None:
            try:
                dtype = np.dtype(arg)
            except TypeError:
                raise TypeError(f"to: expected a dtype, a device or a tensor, got {arg!r}") from None
    return dtype, target, copy


def _promoted(op: str, x: Tensor, other: Any) -> tuple[Tensor, Tensor]:
    """x and `other` (a Tensor, a number or array-like) in the dtype `op` computes in: their
    result_type, and float32 for `/` of integers. Subtracting bools is refused, as in PyTorch."""
    other = other if isinstance(other, (Tensor, *_SCALARS)) else Tensor(other)
    dtype = result_type(x, other)
    if op == "sub" and np.dtype(np.bool_) in (x.dtype, _dtype_and_strength(other)[0]):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead." if dtype.kind == "b" else
                           "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")
    if op == "div" and dtype.kind != "f":
        dtype = DEFAULT_FLOAT
    y = other.to(dtype) if isinstance(other, Tensor) else _scalar_tensor(other, dtype)
    return (x if x._array.dtype == dtype else x.to(dtype)), y


def _no_bool(x: Tensor, what: str) -> Tensor:
    if x._array.dtype.kind == "b":
        raise RuntimeError(f"{what}, the `-` operator, on a bool tensor is not supported. If you are trying to "
                           "invert a mask, use the `~` or `logical_not()` operator instead.")
    return x


class _ScatterWithReduce(Function):
    """scatter(dim, index, src, reduce='add' | 'multiply'): scatter_reduce's 'sum' | 'prod' with self included.
    PyTorch defines no derivative for this form: the result joins the graph, and a backward through it raises."""

    @staticmethod
    def forward(ctx, x, dim, index, src, reduce):
        return x.scatter_reduce(dim, index, src, "sum" if reduce == "add" else "prod")

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("scatter(): the derivative of scatter with reduce= is not implemented (as in PyTorch); "
                           "use scatter_reduce, which has one")


class SortResult(NamedTuple):
    """What sort and topk return, as PyTorch: the values and where they came from."""
    values: Tensor
    indices: Tensor


def _index_array(index: Any, op: str) -> np.ndarray:
    """An index Tensor (or list, or array) as an integer NumPy array; RuntimeError for other dtypes."""
    idx = index._array if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu" and idx.size:
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def _check_bounds(idx: np.ndarray, size: int, axis: int, op: str, shape: tuple[int, ...]) -> None:
    """Every entry in [0, size): a negative index is an error here, as in PyTorch's gather and scatter."""
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise RuntimeError(f"{op}: index {idx[bad].flat[0]} is out of bounds for dimension {axis} with size {size} "
                           f"(tensor of shape {shape})")


def _with(shape: Sequence[int], axis: int, n: int) -> tuple[int, ...]:
    """`shape` with its `axis` entry replaced by n."""
    return tuple(shape[:axis]) + (n,) + tuple(shape[axis + 1:])


def _padded(x: Tensor, axis: int, before_after: tuple[int, int], value: Any) -> Tensor:
    """x with `value` added before and after along `axis` (the Pad primitive: its VJP crops)."""
    widths = tuple(before_after if d == axis else (0, 0) for d in range(x.ndim))
    return ops.Pad.apply(x, pad_width=widths, value=value)


def _as_numpy_index(index: Any) -> tuple:
    """Tensors and lists inside an index become arrays, so NumPy reads them as advanced indices."""
    parts = index if isinstance(index, tuple) else (index,)
    return tuple(p._array if isinstance(p, Tensor) else np.asarray(p) if isinstance(p, list) else p for p in parts)


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


def _broadcastable(*shapes: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def _ragged(data: Any, dim: int = 0) -> str | None:
    """Where nested lists stop being rectangular, in PyTorch's words, or None if they are."""
    if not isinstance(data, (list, tuple)) or not data:
        return None
    lengths = [len(x) if isinstance(x, (list, tuple)) else None for x in data]
    if any(n != lengths[0] for n in lengths):
        bad = next(n for n in lengths if n != lengths[0])
        if None in (lengths[0], bad):
            return f"mixed numbers and sequences at dim {dim + 1}"
        return f"expected sequence of length {lengths[0]} at dim {dim + 1} (got {bad})"
    return next((m for m in (_ragged(x, dim + 1) for x in data) if m), None)


def _tensor_list(tensors: Sequence[Tensor], op: str) -> list[Tensor]:
    """cat's and stack's `tensors`: a non-empty sequence of Tensors, else TypeError/ValueError naming the culprit."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}(): argument 'tensors' (position 1) must be a sequence of Tensors, not "
                        f"{type(tensors).__name__}")
    for k, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): expected a Tensor as element {k} of 'tensors', got {type(t).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    return list(tensors)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of equal shape (but along `dim`) into one."""
    tensors = _tensor_list(tensors, "cat")
    ndim = tensors[0].ndim
    axis = normalize_dim(dim, ndim, "cat", tensors[0].shape)
    shapes = [t._array.shape for t in tensors]
    if any(len(s) != ndim or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        raise ValueError(f"cat: shapes {shapes} must match in every dim but dim {dim}")
    dtype = functools.reduce(promote_types, [t.dtype for t in tensors])  # as PyTorch: [f32, i64] -> f32
    return ops.Cat.apply(*[t if t.dtype == dtype else t.to(dtype) for t in tensors], dim=axis)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of equal shape along a new dim."""
    tensors = _tensor_list(tensors, "stack")
    if len({t._array.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t._array.shape for t in tensors]}")
    axis = normalize_dim(dim, tensors[0].ndim + 1, "stack", tensors[0].shape)
    return cat([t.unsqueeze(axis) for t in tensors], dim=axis)


def einsum(equation: str, *operands: Tensor | Sequence[Tensor]) -> Tensor:
    """Sum of products of the operands' entries, named by letters as torch.einsum: 'ij,jk->ik' is a matrix
    product, 'ii' a trace, 'bn,anm,bm->ba' a bilinear form. Without '->' the output is the letters that
    appear once, sorted; '...' stands for dims that broadcast. Operands may also come as one list.
    dL/dx_k = einsum of g with the other operands, back to x_k's subscripts (see ops.Einsum)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or not operands:
        raise ValueError("einsum(): must specify the equation string and at least one operand")
    for k, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum(): operand {k} must be a Tensor, got {type(x).__name__}")
        if x.dtype != operands[0].dtype:
            raise RuntimeError(f"einsum(): operands must have one dtype, got {operands[0].dtype} (operand 0) and "
                               f"{x.dtype} (operand {k})")
    inputs, output = ops.matmul.einsum_subscripts(equation, [x._array.shape for x in operands])
    return ops.Einsum.apply(*operands, equation=",".join(inputs) + "->" + output)
