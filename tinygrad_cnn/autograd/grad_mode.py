"""Grad mode, inference mode and anomaly mode, each per thread (as PyTorch).

`no_grad()` in one thread leaves every other thread recording; a new thread starts with grad
mode on, whatever the thread that made it was doing. The composite op being called now
(scopes.py) is per thread too, so two threads building graphs do not mix their drawings.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any


class _Modes(threading.local):
    """Each thread sees these class attributes as its starting values."""

    grad = True
    inference = False
    anomaly = False
    scope: Any = None  # the composite op or module call being made now (scopes.py), kept by recorded nodes


modes = _Modes()


def composite_scope(scope: Any) -> Any:
    """The composite op call (scopes.Scope) that `scope` is, or None for a module call (scopes.ModuleCall)
    or no scope: traces, anomaly messages and exports name a node by the composite op it was made in."""
    return scope if scope is not None and scope.kind == "composite" else None


def is_grad_enabled() -> bool:
    return modes.grad


def is_inference_mode_enabled() -> bool:
    return modes.inference


def is_anomaly_enabled() -> bool:
    return modes.anomaly


class _ModeSwitch(contextlib.ContextDecorator):
    """Sets this thread's grad mode to `mode` inside a `with` block or a decorated function, then
    restores the `fields` it touched (a stack, so one instance can be entered again in recursion)."""

    fields: tuple[str, ...] = ("grad",)
    mode: bool = True

    def __new__(cls, func: Any = None):
        # a bare `@no_grad` (no parentheses) gets the function itself: decorate it, as PyTorch 2
        if callable(func):
            return cls()(func)
        return super().__new__(cls)

    def __init__(self) -> None:
        self._saved: list[tuple[bool, ...]] = []

    def __enter__(self) -> None:
        self._saved.append(tuple(getattr(modes, field) for field in self.fields))
        setattr(modes, self.fields[-1], self.mode)

    def __exit__(self, *exc: object) -> None:
        for field, value in zip(self.fields, self._saved.pop()):
            setattr(modes, field, value)


class no_grad(_ModeSwitch):
    """`with no_grad():`, `@no_grad()` or `@no_grad`: ops run without recording a graph."""

    mode = False


class enable_grad(_ModeSwitch):
    """Re-enable recording inside a `no_grad` region."""

    mode = True


class inference_mode(_ModeSwitch):
    """`with inference_mode():` no graph is recorded (as no_grad); `inference_mode(False)` does nothing."""

    fields = ("grad", "inference")

    def __new__(cls, mode: Any = True):
        if callable(mode):
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        super().__init__()
        self.mode = bool(mode)

    def __enter__(self) -> None:
        super().__enter__()
        if self.mode:
            modes.grad = False


class set_grad_enabled(_ModeSwitch):
    """`with set_grad_enabled(mode):` or a decorator; called on its own, `set_grad_enabled(False)`
    switches this thread's mode at once until it is changed again (as PyTorch)."""

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.mode, self._before_call = bool(mode), modes.grad
        modes.grad = self.mode

    def __call__(self, func: Any) -> Any:
        modes.grad = self._before_call  # used as a decorator: only calls of `func` change the mode
        return super().__call__(func)

    def __enter__(self) -> None:
        # restore, on exit, what was there before the constructor switched it
        self._saved.append((self._before_call,))
        modes.grad = self.mode


class set_detect_anomaly(_ModeSwitch):
    """Anomaly mode on or off in this thread, in a `with` block (see introspect.detect_anomaly)."""

    fields = ("anomaly",)

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        super().__init__()
        self.mode = bool(mode)
