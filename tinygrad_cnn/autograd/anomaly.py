"""Anomaly mode: find the first op whose forward or backward turns finite values into NaN or Inf,
and the line of user code that made it. While it is on (per thread), Primitive.apply calls
`check_forward` for every op and the backward sweep `check_backward` for every step."""
from __future__ import annotations

import contextlib
import linecache
import os
import sys
import sysconfig
import threading
from typing import Any, Iterator

import numpy as np

from .grad_mode import _ModeSwitch, composite_scope, modes
from .graph import Node


class _VjpDepth(threading.local):
    depth = 0  # > 0 while a VJP runs: the ops it records belong to a backward step, checked as one


_vjp = _VjpDepth()


class detect_anomaly(_ModeSwitch):
    """`with detect_anomaly():` (or as a decorator): raise RuntimeError at the first op whose
    forward or backward makes NaN or Inf from finite values, naming the op, the composite op
    around it and the line of user code that created it. Slow: every op's result is checked
    and every node records the stack, so use it to find a bug, not to train. Per thread."""

    fields = ("anomaly",)


@contextlib.contextmanager
def running_vjp() -> Iterator[None]:
    """Mark the ops run inside this block as part of a backward step, not the forward pass."""
    _vjp.depth += 1
    try:
        yield
    finally:
        _vjp.depth -= 1


def check_forward(ctx: Any, inputs: tuple, data: np.ndarray) -> None:
    """Note the user code making this node, and fail if the forward produced NaN or Inf that
    neither its inputs nor its arguments had (padding with -inf is on purpose)."""
    ctx.created_at = _user_frame()
    if _vjp.depth or data.dtype.kind != "f" or _all_finite(data):
        return
    if all(_all_finite(x._array) for x in inputs) and all(
            _all_finite(v) for v in ctx.kwargs.values() if isinstance(v, float)):
        shapes = ", ".join(str(x.shape) for x in inputs)
        raise RuntimeError(f"detect_anomaly: {_op_name(ctx.fn.__name__, modes.scope)} produced "
                           f"{_nan_or_inf(data)} in its forward pass from finite inputs (inputs {shapes}, output "
                           f"{data.shape}); {_made_at(ctx.created_at)}")


def check_backward(node: Node, grads: list, grad_inputs: tuple) -> None:
    """Fail if the node's VJP turned finite incoming gradients into NaN or Inf (a non-finite one
    was already blamed on the node that made it)."""
    if not all(g is None or _all_finite(g._array) for g in grads):
        return
    for i, gx in enumerate(grad_inputs):
        if gx is not None and not _all_finite(gx._array):
            shapes = ", ".join(str(tuple(g.shape)) for g in grads if g is not None)
            raise RuntimeError(
                f"detect_anomaly: {_op_name(node.name(), getattr(node, 'scope', None))} returned "
                f"{_nan_or_inf(gx._array)} in the gradient of its input {i} (shape {tuple(gx.shape)}) from a finite "
                f"incoming gradient of shape {shapes}; {_made_at(getattr(node, 'created_at', None))}")


def _all_finite(data: Any) -> bool:
    return bool(np.isfinite(data).all())


def _nan_or_inf(data: np.ndarray) -> str:
    return "NaN" if np.isnan(data).any() else "Inf"


def _op_name(name: str, scope: Any) -> str:
    scope = composite_scope(scope)
    return name if scope is None else f"{name} (in {scope.path})"


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # tinygrad_cnn/
_STDLIB_DIR = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep


def _user_frame() -> tuple[str, int] | None:
    """(file, line) of the innermost caller outside this package and the standard library."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith((_PACKAGE_DIR, _STDLIB_DIR)):
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def _made_at(site: tuple[str, int] | None) -> str:
    if site is None:
        return "build the graph inside detect_anomaly() to see where the op was created"
    code = linecache.getline(*site).strip()
    return f"the op was created at {site[0]}:{site[1]}" + (f": {code}" if code else "")
