"""Forward-mode autodiff, as torch.autograd.forward_ad: a dual tensor carries a tangent, and every op
on it computes its output's tangent, the Jacobian-vector product, as the values are computed.

    with dual_level():
        x = make_dual(primal, tangent)     # primal, moving in the direction `tangent`
        y = f(x)
        value, jvp = unpack_dual(y)        # jvp = J_f(primal) @ tangent, one forward pass

Each op gets its output's tangent from its own rule: a Primitive's `jvp(ctx, primals, tangents, out)`
beside its VJP (see Primitive), a custom Function's `jvp(ctx, *tangents)` as in PyTorch. The rules are
Tensor ops, so a tangent is a graph like any result: backward() through it works (reverse over forward).

Levels. As PyTorch 2.13, one level at a time: entering a second raises, and exiting a level drops the
tangents made in it (unpack_dual then gives None). Underneath, levels nest (`_nested_dual_level`, for
torch.func-style jvp of jvp): while the rule of level k runs, levels k and up are hidden, so its ops
carry the outer levels' tangents (giving the tangent of a tangent) and never their own.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, NamedTuple


class _Level:
    """One forward-AD level. Tangents are kept on tensors keyed by the level object itself, so those
    of a level that was exited are never found again, even when a new level reuses its number."""

    __slots__ = ("index", "alive")

    def __init__(self, index: int) -> None:
        self.index, self.alive = index, True


levels: list[_Level] = []  # the visible levels, outermost first: Primitive.apply's one test, `if levels:`


class UnpackedDualTensor(NamedTuple):
    """What unpack_dual returns: the primal and its tangent (None if it has none at that level)."""
    primal: Any
    tangent: Any


# ---------------------------------------------------------------- levels

def enter_dual_level() -> int:
    """Start a forward-AD level and return its number; as PyTorch, only one level at a time."""
    if levels:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    return _push_level()


def exit_dual_level(*, level: int | None = None) -> None:
    """Exit the innermost level (only that one may exit): its tangents are dropped."""
    if not levels:
        raise RuntimeError("exit_dual_level: no forward AD level to exit (enter_dual_level() first)")
    if level is not None and level != levels[-1].index:
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created. "
                           f"This is not supported (level {level}, the last one is {levels[-1].index}).")
    levels.pop().alive = False


def _push_level() -> int:
    levels.append(_Level(len(levels)))
    return len(levels) - 1


class dual_level(contextlib.ContextDecorator):
    """`with dual_level():` (or as a decorator): forward AD happens inside; the tangents go at the end."""

    def __enter__(self) -> int:
        return enter_dual_level()

    def __exit__(self, *exc: object) -> None:
        exit_dual_level()


@contextlib.contextmanager
def _nested_dual_level() -> Iterator[int]:
    """A level inside the current ones (PyTorch's public API refuses this; torch.func's jvp does it).
    Tangents of the inner level are computed with the outer levels' tangents on: jvp of jvp."""
    number = _push_level()
    try:
        yield number
    finally:
        for level in levels[number:]:
            level.alive = False
        del levels[number:]


@contextlib.contextmanager
def _hidden_from(k: int) -> Iterator[None]:
    """Levels k and up invisible inside the block (an op there neither reads nor makes their tangents)."""
    hidden = levels[k:]
    del levels[k:]
    try:
        yield
    finally:
        levels.extend(hidden)


def _find(level: int | None, op: str) -> int | None:
    """The position in `levels` of level number `level` (None: the innermost; None if no level)."""
    if level is None:
        return len(levels) - 1 if levels else None
    if not (isinstance(level, int) and 0 <= level < len(levels)):
        raise RuntimeError(f"{op}: invalid level {level!r} (the active levels are {list(range(len(levels)))})")
    return level


# ---------------------------------------------------------------- dual tensors

def _tangent(t: Any, level: _Level) -> Any:
    tangents = getattr(t, "_fw_tangents", None)
    return None if tangents is None else tangents.get(level)


def _set_tangent(t: Any, level: _Level, tangent: Any) -> None:
    old = getattr(t, "_fw_tangents", None)
    # keep only the live levels' tangents: those of exited levels must not outlive them in memory
    t._fw_tangents = {**({lv: v for lv, v in old.items() if lv.alive} if old else {}), level: tangent}


def _is_tensor(x: Any) -> bool:
    return getattr(x, "_is_tensor", False)


def make_dual(tensor: Any, tangent: Any, *, level: int | None = None) -> Any:
    """A new tensor aliasing `tensor` (backward-differentiable) that carries `tangent` at `level`
    (default: the current one). The tangent has the primal's shape; it is converted to the primal's
    dtype (PyTorch keeps a float32 tangent of a float64 primal as it is)."""
    k = _find(level, "make_dual")
    if k is None:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, make sure to "
                           "enter_dual_level() first.")
    for name, t in (("tensor", tensor), ("tangent", tangent)):
        if not _is_tensor(t):
            raise TypeError(f"make_dual: {name} must be a Tensor, got {type(t).__name__}")
    for name, t in (("primal", tensor), ("tangent", tangent)):
        if t.dtype.kind != "f":
            raise ValueError(f"Expected {name} to be floating point or complex, but got: {t.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError("Trying to set a forward gradient that has a different size than that of the original "
                           f"Tensor, this is not supported. Tensor is of size {list(tensor.shape)} while the given "
                           f"forward gradient is of size {list(tangent.shape)}.")
    here = levels[k]
    if _tangent(tensor, here) is not None:
        raise RuntimeError("Making a dual Tensor based on a Tensor that already has a forward gradient at the same "
                           f"level {k} is not supported.")
    if _tangent(tangent, here) is not None:
        raise RuntimeError(f"Setting a forward grad that itself has a forward gradient at the same level {k} is "
                           "not supported.")
    with _hidden_from(k):  # the alias keeps the outer levels' tangents (GetItem's JVP), not this one's
        dual = tensor[...]
        if tangent.dtype != tensor.dtype:
            tangent = tangent.to(tensor.dtype)
    _set_tangent(dual, here, tangent)
    return dual


def unpack_dual(tensor: Any, *, level: int | None = None) -> UnpackedDualTensor:
    """(primal, tangent) of `tensor` at `level` (default: the current one): the primal is an alias
    without that level's tangent (backward-differentiable), the tangent is the one kept, or None."""
    if not _is_tensor(tensor):
        raise TypeError(f"unpack_dual: expected a Tensor, got {type(tensor).__name__}")
    k = _find(level, "unpack_dual")
    if k is None:
        return UnpackedDualTensor(tensor, None)
    with _hidden_from(k):
        primal = tensor[...]
    return UnpackedDualTensor(primal, _tangent(tensor, levels[k]))


# ---------------------------------------------------------------- the ops' side

def tangent_sum(*terms: Any) -> Any:
    """The sum of the terms that are not None (a zero tangent is None), None if all are."""
    total = None
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    return total


def linear_jvp(ctx: Any, primals: tuple, tangents: tuple, out: Any) -> Any:
    """The JVP of an op linear in its inputs taken together (reshape, sum, slicing, cat): the op
    itself applied to the tangents, zeros standing in for missing ones."""
    tangents = [p.new_zeros(p.shape) if t is None else t for p, t in zip(primals, tangents)]
    return ctx.fn.apply(*tangents, **ctx.kwargs)


def multilinear_jvp(ctx: Any, primals: tuple, tangents: tuple, out: Any) -> Any:
    """The JVP of an op linear in each input on its own (x * y, matmul, einsum, convolutions): the
    product rule, one term per input with a tangent, that input replaced by its tangent."""
    return tangent_sum(*[ctx.fn.apply(*primals[:k], t, *primals[k + 1:], **ctx.kwargs)
                         for k, t in enumerate(tangents) if t is not None])


def _fitted(tangent: Any, out: Any) -> Any:
    """A rule's result as the output's tangent: broadcast to its shape and in its dtype (one place for all)."""
    if tuple(tangent.shape) != tuple(out.shape):
        tangent = tangent.expand(out.shape)
    return tangent if tangent.dtype == out.dtype else tangent.to(out.dtype)


def primitive_tangents(ctx: Any, inputs: tuple, out: Any) -> None:
    """Called by Primitive.apply while a level is on: give `out` its tangent at each level where an
    input has one, from the Primitive's jvp rule. Outer levels first: the rule of an inner level may
    read `out`, which must carry the outer tangents by then."""
    if out.dtype.kind != "f":  # integer and boolean results have no tangent
        return
    for k, level in enumerate(tuple(levels)):
        tangents = tuple([_tangent(t, level) for t in inputs])
        if all(t is None for t in tangents):
            continue
        with _hidden_from(k):
            tangent = ctx.fn.jvp(ctx, inputs, tangents, out)
            if tangent is not None:
                _set_tangent(out, level, _fitted(tangent, out))
                ctx.keep_output_itself(out)


def function_tangents(ctx: Any, args: tuple, outputs: list) -> None:
    """Called by Function.apply while a level is on: the outputs' tangents from the Function's
    `jvp(ctx, *tangents)` (one tangent per forward argument: zeros for a float Tensor without one,
    unless ctx.set_materialize_grads(False), None for other arguments; it returns one per output),
    with `ctx.saved_tensors` giving what forward passed to `ctx.save_for_forward`.
    An output that is one of the inputs is replaced (in `outputs`) by a new alias of it."""
    name = ctx.fn.__name__
    for k, level in enumerate(tuple(levels)):
        tangents = [_tangent(a, level) if _is_tensor(a) else None for a in args]
        if all(t is None for t in tangents):
            continue
        if ctx.materialize_grads:  # as PyTorch: a float Tensor argument without a tangent gets zeros
            tangents = [a.new_zeros(a.shape) if t is None and _is_tensor(a) and a.dtype.kind == "f" else t
                        for a, t in zip(args, tangents)]
        with _hidden_from(k):
            saved, ctx._saved = ctx._saved, ctx._saved_forward
            try:
                result = ctx.fn.jvp(ctx, *tangents)
            finally:
                ctx._saved = saved
            result = result if isinstance(result, tuple) else (result,)
            if len(result) != len(outputs):
                raise RuntimeError(f"{name}.jvp returned {len(result)} tangents, but forward returned "
                                   f"{len(outputs)} outputs: return one per output")
            for i, (out, tangent) in enumerate(zip(outputs, result)):
                if tangent is None or not _is_tensor(out) or out.dtype.kind != "f":
                    continue
                if not _is_tensor(tangent) or tuple(tangent.shape) != tuple(out.shape):
                    shape = getattr(tangent, "shape", None)
                    raise RuntimeError(f"{name}.jvp: the tangent of output {i} must be a Tensor of shape "
                                       f"{tuple(out.shape)}, got {type(tangent).__name__} of shape {shape}")
                if any(out is a for a in args):
                    outputs[i] = out = out[...]
                _set_tangent(out, level, _fitted(tangent, out))
                ctx.keep_output_itself(out)


__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual"]
