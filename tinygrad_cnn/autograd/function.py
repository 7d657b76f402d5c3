"""Functions: how an op call becomes a node of the backward graph.

Two kinds, recorded the same way:

    Function    written as in PyTorch's "Extending PyTorch" notes: forward(ctx, *args) gets
                Tensors (and any other arguments), backward(ctx, *grads) returns one gradient per
                argument. For users' own ops.
    Primitive   our own ops (ops/): forward(ctx, *arrays, **kwargs) runs on NumPy arrays, which
                costs less per call; backward(ctx, grad) is written in Tensor ops as well.

In both, `ctx` is the node: the forward saves what its VJP reads with `ctx.save_for_backward`,
the VJP reads it back from `ctx.saved_tensors`, with `ctx.needs_input_grad` and (primitives)
the op's keyword arguments `ctx.kwargs`. Nothing else passes from forward to backward.

Both have a forward-mode rule too, `jvp`, which forward_ad.py calls while a dual level is on:
the output's tangent from the inputs' tangents (see Function and Primitive).
"""
from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any, Callable

import numpy as np

from . import forward_ad
from .anomaly import check_forward
from .forward_ad import levels as dual_levels  # the visible forward-AD levels: empty unless used
from .grad_mode import modes, no_grad
from .graph import Node, SavedTensor, SavedTensorInfo, VersionCounter, check_unchanged, current_pack_hooks, gradient_edge


def _is_tensor(x: Any) -> bool:
    return getattr(x, "_is_tensor", False)


class Context(Node):
    """The node one Function call records, and the `ctx` its forward and backward receive."""

    scope = None  # the composite op the call was made in (scopes.py), for drawings and traces
    created_at: tuple[str, int] | None = None  # the user's line that made it, in anomaly mode
    materialize_grads = True
    released = False
    freed = False  # released, and some of what the VJP reads (saved tensors, array arguments) is gone
    constants: tuple = ()  # input i that needs no gradient (a Tensor, a weakref after backward), else None
    clock = 0  # VersionCounter.clock when the node was made: a saved tensor changed after that is stale
    _saved: tuple = ()
    _non_differentiable: tuple = ()
    _dirty: tuple = ()
    _saved_forward: tuple = ()

    def __init__(self, fn: type[Function], needs_input_grad: tuple[bool, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.needs_input_grad, self.kwargs = fn, needs_input_grad, kwargs

    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    # ------------------------------------------------------------ called by forward

    def save_for_backward(self, *values: Any) -> None:
        """Keep values for the VJP. A Tensor (or, in a primitive, an input's or the output's array)
        comes back as a Tensor of the graph, checked for in-place changes; anything else as is."""
        self._saved = values

    def save_for_forward(self, *values: Any) -> None:
        """Keep Tensors for a Function's `jvp`, which reads them back from `ctx.saved_tensors`."""
        self._saved_forward = values

    def mark_non_differentiable(self, *outputs: Any) -> None:
        """These outputs get no gradient (integer indices, masks): they do not require grad."""
        self._non_differentiable = outputs

    def mark_dirty(self, *tensors: Any) -> None:
        """The forward changed these inputs in place (and returns them)."""
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """With False, backward gets None (not zeros) for an output that received no gradient."""
        self.materialize_grads = bool(value)

    # ------------------------------------------------------------ read by backward

    @property
    def saved_tensors(self) -> tuple:
        if self.freed:
            self._raise_freed()
        saved = []
        for v in self._saved:
            if type(v) is SavedTensor:
                v = v.unpack(self)
            elif type(v) not in _PLAIN and _is_tensor(v) and v._version_counter is not None:
                check_unchanged(v, self)  # a Tensor that has been changed in place at some time
            saved.append(v)
        return tuple(saved)

    @property
    def saved_tensors_info(self) -> tuple[SavedTensorInfo, ...]:
        """What this node keeps for its VJP (shape, dtype, bytes), without the data."""
        info = []
        for v in self._saved:
            if type(v) is SavedTensor:
                kind, value = ("output" if v.output_nr is not None else "tensor"), v._value
                array = value._array if _is_tensor(value) else None
            elif _is_tensor(v):
                kind, array = "tensor", v._array
            else:
                kind, array = "array", v if hasattr(v, "nbytes") else None
            if array is not None:
                info.append(SavedTensorInfo(kind, tuple(array.shape), array.dtype, int(array.nbytes)))
        return tuple(info)

    # ------------------------------------------------------------ the engine's side

    def constant_input(self, i: int) -> Any:
        """Input i if it needs no gradient and is still alive (drawings show it), else None."""
        t = self.constants[i] if i < len(self.constants) else None
        return t() if isinstance(t, weakref.ref) else t

    def record(self, inputs: tuple, needs: tuple, outputs: tuple) -> None:
        """Make a Function call a node of the graph: edges to the nodes of its Tensor `inputs`
        (those that `needs` a gradient), its outputs' shapes and dtypes, and its own differentiable
        outputs among the saved values wrapped in SavedTensors."""
        self.next_functions = tuple([gradient_edge(t) if need else _NO_EDGE for t, need in zip(inputs, needs)])
        self.output_meta = tuple([(t._array.shape, t._array.dtype) for t in outputs])
        self.num_outputs = len(outputs)
        self.scope = modes.scope
        # for drawings: the inputs that have no node of their own
        if False in needs:
            self.constants = tuple([None if need else t for t, need in zip(inputs, needs)])
        if self._saved:
            self.clock, hooks = VersionCounter.clock, current_pack_hooks()
            differentiable = tuple([o if o.dtype.kind == "f" and not any(o is n for n in self._non_differentiable)
                                    else None for o in outputs])
            self._saved = tuple([_kept_tensor(v, differentiable, hooks) for v in self._saved])

    def _raise_freed(self) -> None:
        raise RuntimeError(
            f"{self.name()}: trying to backward through the graph a second time (or to read saved tensors "
            "after they were freed). Pass retain_graph=True to the first backward() if you need to go "
            "through the graph again.")

    def apply(self, grads: list[Any]) -> tuple[Any, ...]:
        if self.fn.forward_on_arrays:  # a primitive: one output, one gradient per input
            if self.freed:  # its VJP may read array arguments as well as saved values
                self._raise_freed()
            result = self.fn.backward(self, grads[0])
            return result if type(result) is tuple else (result,)
        if self.materialize_grads:
            some = next(g for g in grads if g is not None)
            grads = [g if g is not None else some.new_zeros(shape, dtype=dtype)
                     for g, (shape, dtype) in zip(grads, self.output_meta)]
        return self._checked(self.fn.backward(self, *grads))

    def _checked(self, result: Any) -> tuple[Any, ...]:
        """A custom backward's result, one gradient per forward argument, as one per Tensor input."""
        result = result if isinstance(result, tuple) else (result,)
        name = self.fn.__name__
        if len(result) < len(self.arg_is_tensor) or any(r is not None for r in result[len(self.arg_is_tensor):]):
            raise RuntimeError(f"{name}.backward returned {len(result)} gradients, but forward took "
                               f"{len(self.arg_is_tensor)} arguments: return one per argument (None for those "
                               "that are not Tensors or need no gradient)")
        grads = tuple([g for g, is_tensor in zip(result, self.arg_is_tensor) if is_tensor])
        for i, (g, (node, _)) in enumerate(zip(grads, self.next_functions)):
            if g is not None and node is not None and not _is_tensor(g):
                raise RuntimeError(f"{name}.backward returned a {type(g).__name__} as the gradient of input {i}: "
                                   "return Tensors (make one with tinygrad_cnn.tensor(...))")
        return grads

    def keep_output_itself(self, out: Any) -> None:
        """Forward AD gave the output `out` tangents, which the VJP must see (forward over reverse):
        keep `out` itself among the saved values, not a SavedTensor of it, whose unpacked alias
        would have none. Only under forward AD: the reference cycle this makes is left to gc."""
        self._saved = tuple([out if type(v) is SavedTensor and v.output_nr is not None and v.unpack_hook is None
                             and v._value._array is out._array else v for v in self._saved])

    def keep_copy_if_saved(self, t: Any) -> None:
        """t is about to be overwritten by this node's own in-place op: if the node saved t, keep a
        copy of its current value instead (as PyTorch keeps `original_self` for mul_, div_, ...)."""
        self._saved = tuple([t._snapshot() if v is t else v for v in self._saved])

    def release(self) -> None:
        """Drop the tensors and arrays the forward saved, and arrays among the op's arguments (index
        masks, caches); the edges and everything else (shapes, dims, dtypes) stay. As PyTorch, a node
        that kept no tensor can be backed through again: (x + 1).sum().backward() works twice."""
        if self.released:
            return
        self.released = True
        for v in self._saved:
            if v is not None and (type(v) is np.ndarray or type(v) is SavedTensor or _is_tensor(v)):
                self.freed, self._saved = True, ()
                break
        if self.constants:
            self.constants = tuple([None if t is None else weakref.ref(t) for t in self.constants])
        if self.scope is not None:
            self.scope.release()
        if self.kwargs and any(hasattr(v, "nbytes") for v in self.kwargs.values()):
            self.freed = True
            self.kwargs = {k: v for k, v in self.kwargs.items() if not hasattr(v, "nbytes")}


_NO_EDGE = (None, 0)
_PLAIN = (np.ndarray, tuple, int, np.dtype, type(None))  # what a primitive saves besides Tensors


def _kept(values: tuple, inputs: tuple, out: Any, hooks: tuple | None) -> tuple:
    """How a primitive's node keeps the values its forward saved: the output's array becomes a
    SavedTensor of it, an input's array that Tensor, another array (a mask) is kept as it is, or
    packed as a Tensor if saved_tensors_hooks are on; anything else is kept as it is."""
    kept = []
    for value in values:
        if type(value) is np.ndarray:
            if value is out._array:
                value = SavedTensor(out, 0, hooks)
            else:
                for t in inputs:
                    if value is t._array:
                        value = t if hooks is None else SavedTensor(t, None, hooks)
                        break
                else:
                    if hooks is not None:
                        value = SavedTensor(out._wrap(value), None, hooks, array=True)
        kept.append(value)
    return tuple(kept)


def _kept_tensor(value: Any, outputs: tuple, hooks: tuple | None) -> Any:
    """How a Function's node keeps one value its forward saved: its own differentiable `outputs`
    (None for the others) as SavedTensors; anything else as it is (Tensors packed if
    saved_tensors_hooks are on)."""
    for nr, out in enumerate(outputs):
        if out is not None and value is out:
            return SavedTensor(out, nr, hooks)
    return SavedTensor(value, None, hooks) if hooks is not None and _is_tensor(value) else value


class Function:
    """Base class of ops with a custom gradient, as torch.autograd.Function (a forward-mode rule,
    `jvp(ctx, *tangents)` -> one tangent per output, is needed only under forward_ad; its
    ctx.saved_tensors are what forward gave `ctx.save_for_forward`):

        class Exp(Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, grad):
                y, = ctx.saved_tensors
                return grad * y

        y = Exp.apply(x)
    """

    forward_on_arrays = False

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grads: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def jvp(ctx: Context, *tangents: Any) -> Any:
        raise NotImplementedError("You must implement the jvp function for custom autograd.Function to use it with "
                                  f"forward mode AD ({ctx.fn.__name__} has none).")

    @classmethod
    def apply(cls, *args: Any) -> Any:
        """Run forward without recording; if grad mode is on and a Tensor argument requires
        grad, make the outputs' grad_fn one node whose VJP is `backward`."""
        tensors = tuple([a for a in args if _is_tensor(a)])
        ctx = Context(cls, tuple([_is_tensor(a) and a.requires_grad for a in args]), {})  # one per argument
        ctx.arg_is_tensor = tuple([_is_tensor(a) for a in args])
        # under forward AD the outputs' tangents come from `jvp`, not from the ops forward runs
        with no_grad(), (forward_ad._hidden_from(0) if dual_levels else contextlib.nullcontext()):
            result = cls.forward(ctx, *args)
        if not (modes.grad and True in ctx.needs_input_grad):
            return _with_tangents(ctx, args, result) if dual_levels else result
        for t in ctx._dirty:
            if t.requires_grad and t.grad_fn is None:
                raise RuntimeError(f"{cls.__name__}: a leaf Variable that requires grad has been used in an in-place "
                                   "operation (marked dirty in forward)")
        single = not isinstance(result, tuple)
        outputs = [result] if single else list(result)
        for i, out in enumerate(outputs):
            if _is_tensor(out) and any(out is t for t in tensors) and not any(out is d for d in ctx._dirty):
                outputs[i] = out.detach()  # an input returned as is: a new Tensor of the same data, as PyTorch
        tensor_outputs = tuple([o for o in outputs if _is_tensor(o)])
        ctx.record(tensors, tuple([t.requires_grad for t in tensors]), tensor_outputs)
        for nr, out in enumerate(tensor_outputs):
            differentiable = out.dtype.kind == "f" and not any(out is o for o in ctx._non_differentiable)
            out._set_history(ctx if differentiable else None, nr)
        result = outputs[0] if single else tuple(outputs)
        return _with_tangents(ctx, args, result) if dual_levels else result


def _with_tangents(ctx: Context, args: tuple, result: Any) -> Any:
    """A Function's result, its outputs given their tangents by its jvp (forward_ad.function_tangents)."""
    single = not isinstance(result, tuple)
    outputs = [result] if single else list(result)
    forward_ad.function_tangents(ctx, args, outputs)
    return outputs[0] if single else tuple(outputs)


class Primitive(Function):
    """Our own ops: forward(ctx, *arrays, **kwargs) -> array on NumPy arrays, backward(ctx, grad)
    -> one gradient (Tensor or None) per input, in Tensor ops so that it can be differentiated
    again. A gradient may have the broadcast output's shape: the engine sums it back.

    Beside the VJP, the forward-mode rule jvp(ctx, primals, tangents, out) -> the output's tangent
    (or None: zero), run only under forward_ad. `primals` are the input Tensors, `tangents` theirs
    (None for a zero tangent: skip its term), `out` the output Tensor; as PyTorch's formulas, it reads
    these rather than saved values (forward saves only what the VJP needs), plus ctx.kwargs and what
    forward computed besides the result (ctx.saved_tensors: masks, argmax offsets). Written in Tensor
    ops, so tangents of tangents and backward() through a tangent work. The tangent may have a
    broadcast shape or another float dtype: forward_ad fits it to `out` in one place."""

    forward_on_arrays = True
    returns_view = False  # True for ops whose result may share the input's memory (reshape, slicing)
    registry: dict[str, type[Primitive]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Primitive.registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @staticmethod
    def backward(ctx: Context, grad: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def jvp(ctx: Context, primals: tuple, tangents: tuple, out: Any) -> Any:
        raise NotImplementedError(f"{ctx.fn.__name__}: this op has no forward-mode (jvp) rule")

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Any:
        """Run the op on Tensors; record a node if grad mode is on and an input requires grad.
        (Context.record, specialised to one output: this runs for every op.)"""
        needs = tuple([t.requires_grad for t in inputs])
        ctx = Context(cls, needs, kwargs)
        data = cls.forward(ctx, *[t._array for t in inputs], **kwargs)
        if type(data) is not np.ndarray:  # NumPy turns 0-d results into scalars
            scalar, data = data, np.asarray(data)
            ctx._saved = tuple([data if v is scalar else v for v in ctx._saved])
        if modes.anomaly:
            check_forward(ctx, inputs, data)
        if not (modes.grad and True in needs):
            out = inputs[0]._wrap(data)
        else:
            out = inputs[0]._wrap(data, ctx)
            ctx.next_functions = tuple([(t._edge or gradient_edge(t)) if t.requires_grad else _NO_EDGE
                                        for t in inputs])
            ctx.output_meta, ctx.scope = ((data.shape, data.dtype),), modes.scope
            if False in needs:
                ctx.constants = tuple([None if need else t for t, need in zip(inputs, needs)])
            if ctx._saved:
                ctx.clock, hooks = VersionCounter.clock, current_pack_hooks()
                ctx._saved = _kept(ctx._saved, inputs, out, hooks)
        if cls.returns_view:
            out._share_version_if_view(inputs[0])
        if dual_levels:  # forward-mode AD is on: the output's tangents (forward_ad.py)
            forward_ad.primitive_tangents(ctx, inputs, out)
        return out


def once_differentiable(backward: Callable) -> Callable:
    """Decorate a Function's backward that is written outside Tensor ops (or should not be
    differentiated): it runs without recording, and differentiating its result raises."""
    @functools.wraps(backward)
    def wrapper(ctx: Context, *grads: Any) -> Any:
        graph_grads = [g for g in grads if g is not None and g.requires_grad] if modes.grad else []
        with no_grad():
            result = backward(ctx, *grads)
        if not graph_grads:
            return result
        name = ctx.fn.__name__
        results = result if isinstance(result, tuple) else (result,)
        marked = tuple([_NotDifferentiableAgain.apply(r, name, *graph_grads) if _is_tensor(r) else r
                        for r in results])
        return marked if isinstance(result, tuple) else marked[0]
    return wrapper


class _NotDifferentiableAgain(Function):
    """x, tied to the gradients it was computed from, with a backward that raises: marks the
    result of a once_differentiable backward."""

    @staticmethod
    def forward(ctx, x, name, *graph_grads):
        ctx.function_name = name
        return x.detach()

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(f"trying to differentiate twice a function that was marked with @once_differentiable "
                           f"({ctx.function_name}.backward)")
