"""Derivatives of a whole function at a point, as torch.autograd.functional: vjp, jvp, jacobian,
hessian, vhp, hvp, with PyTorch's signatures, return structures and `strict` errors.

`inputs` is a Tensor or a tuple of Tensors, and so is what `func` returns; results mirror those
forms (the Jacobian of a tuple-returning function of a tuple is a tuple of tuples, of a
tensor-returning function of a tensor one tensor of shape `output.shape + input.shape`). Each
call differentiates new Tensors standing for the inputs, so the caller's `.grad` is never touched
and a tensor that `func` captures stays a constant; results are cut from the graph unless
`create_graph=True`. With `strict=True`, an output that does not depend on an input raises
instead of giving zeros.

How each is computed (J the Jacobian, H the Hessian):

    vjp         v^T J: one backward pass.
    jvp         J v by the double-backward trick, as PyTorch: u -> J^T u is linear in u, so its
                gradient with respect to a dummy u along v is J v (two backward passes).
    jacobian    reverse mode (default): one backward pass per output element, a row of J each;
                forward mode (strategy='forward-mode'): one dual-number forward pass per input
                element, a column each. Reverse is cheaper for wide J (few outputs, many inputs),
                forward for tall J.
    hessian     the Jacobian of the gradient.
    vhp / hvp   v^T H by double backward; H v by the double-backward trick on top of it.

Unlike the rest of the autograd package, this module builds on Tensor (it stacks rows into a
Jacobian and makes zeros): a user-level API above the engine, as in PyTorch; nothing below it
imports it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..creation import zeros_like
from ..tensor import Tensor, stack
from . import forward_ad
from .engine import grad
from .grad_mode import enable_grad

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]

Tensors = Any  # a Tensor or a tuple of Tensors


# ---------------------------------------------------------------- helpers shared with tinygrad_cnn.func

def grads_or_none(outputs: Sequence[Tensor | None], inputs: Sequence[Tensor],
                  grad_outputs: Sequence[Any] | None = None, *, create_graph: bool = False,
                  retain_graph: bool | None = None) -> tuple:
    """autograd.grad(outputs, inputs, grad_outputs, allow_unused=True), where an output that is
    None or does not require grad contributes nothing: None for an input no output depends on."""
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    used = [(out, g) for out, g in zip(outputs, grad_outputs) if out is not None and out.requires_grad]
    if not used:
        return (None,) * len(inputs)
    return grad([out for out, _ in used], list(inputs), [g for _, g in used], retain_graph=retain_graph,
                create_graph=create_graph, allow_unused=True)


def stand_in(x: Tensor, connected: bool) -> Tensor:
    """A new Tensor with x's value that requires grad, to differentiate with respect to: part of
    x's graph (a clone) when `connected` and x requires grad, else a fresh leaf. Being a new
    object, it keeps apart the gradient for this argument from uses of x that func captured."""
    return x.clone() if connected and x.requires_grad else x.detach().requires_grad_()


def one_hot(x: Tensor, index: int) -> Tensor:
    """Zeros of x's shape and dtype with a 1 at flat position `index`: a basis vector."""
    e = x.new_zeros(x.numel())
    e[index] = 1
    return e.reshape(x.shape)


# ---------------------------------------------------------------- helpers of this module

def _as_tuple(value: Any, arg_name: str, fn_name: str) -> tuple[bool, tuple]:
    """(whether `value` was a tuple, value as a tuple of Tensors); TypeError for anything else."""
    is_tuple = isinstance(value, tuple)
    values = value if is_tuple else (value,)
    for i, v in enumerate(values):
        if not isinstance(v, Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {arg_name}"
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but "
                            f"{where} has type {type(v)}.")
    return is_tuple, values


def _untuple(result: tuple, was_tuple: bool | tuple[bool, bool]) -> Any:
    """Undo _as_tuple on a result: one level (a bool), or two (outer, inner) for Jacobians."""
    if isinstance(was_tuple, tuple):
        outer, inner = was_tuple
        if not inner:
            result = tuple([r[0] for r in result])
        return result if outer else result[0]
    return result if was_tuple else result[0]


def _stand_ins(inputs: tuple, create_graph: bool, need_graph: bool = True) -> tuple:
    """What func is called with: in the caller's graph only when create_graph asks for it."""
    if need_graph:
        return tuple([stand_in(x, create_graph) for x in inputs])
    return tuple([x if create_graph else x.detach() for x in inputs])


def _detached(result: Any, create_graph: bool) -> Any:
    if create_graph:
        return result
    if isinstance(result, tuple):
        return tuple([_detached(r, False) for r in result])
    return result.detach()


def _check_v(v: tuple, other: tuple, other_is_tuple: bool) -> None:
    """v must be one tensor per entry of `other`, each of its shape."""
    if len(v) != len(other):
        if other_is_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, other)):
        if a.shape != b.shape:
            where = f"Entry {i} in " if other_is_tuple else ""
            raise RuntimeError(f"{where}v has invalid size: should be {b.shape} but got {a.shape}.")


def _v_or_default(v: Any, like: tuple, like_is_tuple: bool, create_graph: bool, fn: str, what: str) -> tuple | None:
    """v as a checked tuple; None is allowed only when `like` is one single-element Tensor."""
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(f"The vector v can only be None if {what} a single Tensor with a single element.")
        return None
    _, v = _as_tuple(v, "v", fn)
    v = _stand_ins(v, create_graph, need_graph=False)
    _check_v(v, like, like_is_tuple)
    return v


_NO_GRAD_MESSAGES = {
    "outputs": "Output {i} of the user-provided function does not require gradients. The outputs must be computed "
               "in a differentiable manner from the input when running in strict mode.",
    "grad_inputs": "The gradient with respect to input {i} is independent of the inputs of the user-provided "
                   "function. This is not allowed in strict mode.",
    "jacobian": "While computing the hessian, found that the jacobian of the user-provided function with respect to "
                "input {i} is independent of the input. This is not allowed in strict mode. You should ensure that "
                "your function is twice differentiable and that the jacobian depends on the inputs (this would be "
                "violated by a linear function for example).",
}


def _check_requires_grad(tensors: tuple, kind: str, strict: bool) -> None:
    """In strict mode, every one of `tensors` (outputs, gradients, ...) must depend on the inputs."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(f"The output of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode.")
        if not t.requires_grad:
            raise RuntimeError(_NO_GRAD_MESSAGES[kind].format(i=i))


_UNUSED_MESSAGES = {  # by stage: what a None gradient means there
    "back": "The output of the user-provided function is independent of input {i}. This is not allowed in strict "
            "mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the grad_outputs when "
                  "using the double backward trick to compute forward mode gradients. This is not allowed in strict "
                  "mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This is not allowed in "
                   "strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in the grad_jacobian. "
                         "This is not allowed in strict mode as it prevents from using the double backward trick to "
                         "replace forward mode AD.",
}


def _zeros_for_none(grads: tuple, refs: tuple, strict: bool, create_graph: bool, stage: str) -> tuple:
    """Zeros (of the matching ref's shape) for each None gradient, or the strict-mode error."""
    filled = []
    for i, (g, ref) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise RuntimeError(_UNUSED_MESSAGES[stage].format(i=i))
            g = zeros_like(ref)
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if stage.startswith("double") else "jacobian"
            raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. This is not "
                               "allowed in strict mode when create_graph=True.")
        filled.append(g)
    return tuple(filled)


def _call(func: Callable, inputs: tuple, fn: str, strict: bool) -> tuple[bool, tuple]:
    outputs = func(*inputs)
    is_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", fn)
    _check_requires_grad(outputs, "outputs", strict)
    return is_tuple, outputs


def _single_output(outputs: tuple, is_tuple: bool, fn: str) -> None:
    if is_tuple:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn} should contain a single element")


# ---------------------------------------------------------------- public API

def vjp(func: Callable[..., Tensors], inputs: Tensors, v: Tensors | None = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensors, Tensors]:
    """(func(inputs), v^T J): the vector-Jacobian product at `inputs`, one backward pass. `v` has
    the outputs' shapes; None is allowed for a single one-element output."""
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _stand_ins(inputs, create_graph)
        outputs_tuple, outputs = _call(func, inputs, "vjp", strict)
        v = _v_or_default(v, outputs, outputs_tuple, create_graph, "vjp", "the user-provided function returns")
    grads = grads_or_none(outputs, inputs, v, create_graph=create_graph)
    result = _zeros_for_none(grads, inputs, strict, create_graph, "back")
    return (_untuple(_detached(outputs, create_graph), outputs_tuple),
            _untuple(_detached(result, create_graph), inputs_tuple))


def jvp(func: Callable[..., Tensors], inputs: Tensors, v: Tensors | None = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensors, Tensors]:
    """(func(inputs), J v): the Jacobian-vector product at `inputs`, by the double-backward trick
    (as PyTorch's): g(u) = J^T u is computed with a graph, and J v is the gradient of <g(u), v>
    with respect to u. `v` has the inputs' shapes; None is allowed for a single one-element input.
    (tinygrad_cnn.func.jvp is the forward-mode one: one pass instead of two.)"""
    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _stand_ins(inputs, create_graph)
        v = _v_or_default(v, inputs, inputs_tuple, create_graph, "jvp", "the input to the user-provided function is")
        outputs_tuple, outputs = _call(func, inputs, "jvp", strict)
        # u's value never matters (the VJP is linear in it): zeros keep infinities and NaN out
        dummies = tuple([zeros_like(out).requires_grad_() for out in outputs])
        grad_inputs = grads_or_none(outputs, inputs, dummies, create_graph=True)
        _check_requires_grad(grad_inputs, "grad_inputs", strict)
    grads = grads_or_none(grad_inputs, dummies, v, create_graph=create_graph)
    result = _zeros_for_none(grads, outputs, strict, create_graph, "back_trick")
    return (_untuple(_detached(outputs, create_graph), outputs_tuple),
            _untuple(_detached(result, create_graph), outputs_tuple))


def jacobian(func: Callable[..., Tensors], inputs: Tensors, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Tensors:
    """The Jacobian of func at `inputs`: entry [i][j] (unwrapped where func returns, or is given,
    a single Tensor) has shape outputs[i].shape + inputs[j].shape.

    strategy='reverse-mode' runs one backward pass per output element (cheap when outputs are few,
    a wide Jacobian); 'forward-mode' one forward pass with dual numbers per input element (cheap
    when inputs are few, a tall Jacobian), and as in PyTorch needs vectorize=True. Here
    `vectorize` changes no result: both strategies loop (PyTorch batches them with vmap)."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                             'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                             'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError('torch.autograd.functional.jacobian: `create_graph=True` and '
                                      '`strategy="forward-mode"` are not supported together (yet). Please either '
                                      'set `create_graph=False` or `strategy="reverse-mode"`.')
        return _forward_jacobian(func, inputs, strict, vectorize)

    with enable_grad():
        inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _stand_ins(inputs, create_graph)
        outputs_tuple, outputs = _call(func, inputs, "jacobian", strict)
        if vectorize and strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                               "supported together. Please either set `strict=False` or `vectorize=False`.")
        jac = []
        for i, out in enumerate(outputs):
            rows: list[list[Tensor]] = [[] for _ in inputs]
            for k in range(out.numel()):
                grads = grads_or_none([out], inputs, [one_hot(out, k)], create_graph=create_graph,
                                      retain_graph=True)
                for j, g in enumerate(grads):
                    if g is None and strict:
                        raise RuntimeError(f"Output {i} of the user-provided function is independent of input {j}. "
                                           "This is not allowed in strict mode.")
                    if g is not None and strict and create_graph and not g.requires_grad:
                        raise RuntimeError(f"The jacobian of the user-provided function is independent of input {j}. "
                                           "This is not allowed in strict mode when create_graph=True.")
                    rows[j].append(zeros_like(inputs[j]) if g is None else g)
            jac.append(tuple([_stacked(r, out, x, dim=0) for r, x in zip(rows, inputs)]))
    return _untuple(_detached(tuple(jac), create_graph), (outputs_tuple, inputs_tuple))


def _stacked(pieces: list[Tensor], out: Tensor, x: Tensor, dim: int) -> Tensor:
    """Rows (dim=0: one per element of `out`, each of x's shape) or columns (dim=-1: one per
    element of x, each of out's shape) made into the Jacobian block of shape out.shape + x.shape."""
    if not pieces:  # an empty output or input: nothing to stack
        return out.new_zeros(tuple(out.shape) + tuple(x.shape))
    return stack(pieces, dim=dim).reshape(tuple(out.shape) + tuple(x.shape))


def _forward_jacobian(func: Callable, inputs: Tensors, strict: bool, vectorize: bool) -> Tensors:
    """jacobian(strategy='forward-mode'): column k of block [i][j] is the tangent of output i when
    input j carries the k-th basis vector as its tangent and the other inputs zeros."""
    if strict:
        raise RuntimeError('torch.autograd.functional.jacobian: `strict=True` and `strategy="forward-mode"` are not '
                           'supported together (yet). Please either set `strict=False` or '
                           '`strategy="reverse-mode"`.')
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    if not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                                  "implemented for `vectorize=True`.")
    columns: list[list[list[Tensor]]] | None = None  # [output][input] -> columns
    outputs_tuple, outputs = False, ()
    for j, x in enumerate(inputs):
        for k in range(x.numel()):
            with forward_ad.dual_level():
                duals = tuple([forward_ad.make_dual(y, one_hot(y, k) if i == j else zeros_like(y))
                               for i, y in enumerate(inputs)])
                outputs_tuple, dual_outputs = _as_tuple(func(*duals), "outputs of the user-provided function",
                                                        "jacobian")
                unpacked = [forward_ad.unpack_dual(d) for d in dual_outputs]
            outputs = tuple([p for p, _ in unpacked])
            if columns is None:
                columns = [[[] for _ in inputs] for _ in outputs]
            for i, (primal, tangent) in enumerate(unpacked):
                columns[i][j].append(zeros_like(primal) if tangent is None else tangent)
    if columns is None:  # every input is empty: func still tells the output shapes
        outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        columns = [[[] for _ in inputs] for _ in outputs]
    jac = tuple([tuple([_stacked(columns[i][j], out, x, dim=-1) for j, x in enumerate(inputs)])
                 for i, out in enumerate(outputs)])
    return _untuple(jac, (outputs_tuple, inputs_tuple))


def hessian(func: Callable[..., Tensor], inputs: Tensors, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Tensors:
    """The Hessian of a scalar func at `inputs`: the Jacobian (outer strategy as given) of its
    gradient (reverse mode, with a graph). Entry [i][j] has shape inputs[i].shape + inputs[j].shape;
    a single Tensor input gives one Tensor."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')

    def scalar_func(*xs: Tensor) -> Tensor:
        out = func(*xs)
        is_tuple, outputs = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(outputs, "outputs", strict)
        _single_output(outputs, is_tuple, "hessian")
        return out.reshape(())

    def gradient(*xs: Tensor) -> Tensors:
        if outer_jacobian_strategy == "forward-mode":
            # the inner jacobian cuts inputs that do not require grad from the graph: keep these in it
            xs = tuple([x.requires_grad_() for x in xs])
        jac = jacobian(scalar_func, xs, create_graph=True)
        _check_requires_grad(jac if isinstance(jac, tuple) else (jac,), "jacobian", strict)
        return jac

    result = jacobian(gradient, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize,
                      strategy=outer_jacobian_strategy)
    return _untuple(result, (inputs_tuple, inputs_tuple))


def _gradient_of_scalar(func: Callable, inputs: Tensors, v: Tensors | None, create_graph: bool, strict: bool,
                        fn: str) -> tuple:
    """The common start of vhp and hvp: (inputs_tuple, inputs, v, output, its gradient with a graph)."""
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn)
    inputs = _stand_ins(inputs, create_graph)
    v = _v_or_default(v, inputs, inputs_tuple, create_graph, fn,
                      "the input to the user-provided function is")
    outputs_tuple, outputs = _call(func, inputs, fn, strict)
    _single_output(outputs, outputs_tuple, fn)
    jac = grads_or_none(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict)
    return inputs_tuple, inputs, v, outputs[0], jac


def vhp(func: Callable[..., Tensor], inputs: Tensors, v: Tensors | None = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensor, Tensors]:
    """(func(inputs), v^T H) for a scalar func: the gradient's VJP along v (double backward)."""
    with enable_grad():
        inputs_tuple, inputs, v, output, jac = _gradient_of_scalar(func, inputs, v, create_graph, strict, "vhp")
    grads = grads_or_none(jac, inputs, v, create_graph=create_graph)
    result = _zeros_for_none(grads, inputs, strict, create_graph, "double_back")
    return _detached(output, create_graph), _untuple(_detached(result, create_graph), inputs_tuple)


def hvp(func: Callable[..., Tensor], inputs: Tensors, v: Tensors | None = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensor, Tensors]:
    """(func(inputs), H v) for a scalar func, by the double-backward trick on the gradient (as
    PyTorch's): h(u) = H^T u is computed with a graph, and H v is the gradient of <h(u), v> with
    respect to u. Equal to vhp's result when H is symmetric (func twice continuously differentiable)."""
    with enable_grad():
        inputs_tuple, inputs, v, output, jac = _gradient_of_scalar(func, inputs, v, create_graph, strict, "hvp")
        dummies = tuple([zeros_like(x).requires_grad_() for x in inputs])
        double_back = grads_or_none(jac, inputs, dummies, create_graph=True)
    grads = grads_or_none(double_back, dummies, v, create_graph=create_graph)
    result = _zeros_for_none(grads, inputs, strict, create_graph, "double_back_trick")
    return _detached(output, create_graph), _untuple(_detached(result, create_graph), inputs_tuple)
