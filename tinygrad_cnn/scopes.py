"""Composite ops: functions such as conv2d or cross_entropy that are built from several
primitives but are one op to the person who called them.

`@composite("conv2d", keys=("stride", "padding"))` on such a function makes every node
recorded while it runs point to a `Scope` of that call (`Context.scope`), so graph drawings
and backward traces can show "max_pool2d kernel_size=2" instead of a Pad and a WindowMax.
The engine only copies the current scope onto each node it records; nothing else changes.

A module call (nn.Module.__call__) is a scope in the same chain, a `ModuleCall`: a node made in
conv2d inside an nn.Conv2d inside a BasicBlock points to the conv2d Scope, whose `parent` is the
Conv2d's ModuleCall, whose `parent` is the BasicBlock's. `kind` tells them apart ("composite",
"module"). A composite call's `outermost` and `path` stop at a module call: modules are a level
of their own (viz/modules.py), composite ops keep meaning the NN op a user called.
"""
from __future__ import annotations

import functools
import inspect
import itertools
from typing import Any, Callable, Sequence

import weakref

from .autograd.grad_mode import modes
from .tensor import Tensor


class Scope:
    """One call of a composite op such as conv2d or cross_entropy: a function that records
    several primitive nodes. Each node keeps the innermost scope it was made in, so drawings
    and traces can show the NN op a user called instead of its primitives.

    `args` are the arguments worth showing (`{"stride": 1, "padding": 2}`), `named_inputs` the
    Tensors the call was given with the names of their parameters (`("target", labels)`), so a
    drawing can tell a loss's target from the data. Those that need no gradient (a batch of images,
    the targets) have no node of their own, so the call keeps them for drawings until a backward
    pass releases its nodes; the others it holds weakly, as they are kept by the graph where a VJP
    needs them. `parent` is the enclosing call (cross_entropy for the log_softmax it calls) or None.
    """

    __slots__ = ("name", "parent", "args", "_inputs", "_released")
    kind = "composite"

    def __init__(self, name: str, signature: _KeyArguments, args: tuple, kwargs: dict, parent: Scope | None) -> None:
        self.name, self.parent = name, parent
        self.args = signature.shown(args, kwargs)
        self._inputs = [(name, weakref.ref(a) if a.requires_grad else a)
                        for name, a in signature.named(args, kwargs) if isinstance(a, Tensor)]
        self._released = False

    @property
    def named_inputs(self) -> tuple[tuple[str, Tensor], ...]:
        """(parameter name, Tensor) for each Tensor argument still alive: `(("input", x), ("target", y))`."""
        held = ((name, t() if isinstance(t, weakref.ref) else t) for name, t in self._inputs)
        return tuple((name, t) for name, t in held if t is not None)

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(t for _, t in self.named_inputs)

    def release(self) -> None:
        """After a backward pass: hold every input weakly (called by the nodes made in this call)."""
        if self._released:
            return
        self._inputs = [(name, t if isinstance(t, weakref.ref) else weakref.ref(t)) for name, t in self._inputs]
        self._released = True
        if self.parent is not None:
            self.parent.release()

    @property
    def outermost(self) -> Scope:
        """The composite call this one is nested in, the furthest out before a module call or none."""
        scope = self
        while scope.parent is not None and scope.parent.kind == "composite":
            scope = scope.parent
        return scope

    @property
    def path(self) -> str:
        """'cross_entropy/log_softmax' for a call nested in another (up to a module call)."""
        nested = self.parent is not None and self.parent.kind == "composite"
        return f"{self.parent.path}/{self.name}" if nested else self.name

    @property
    def label(self) -> str:
        """'conv2d stride=1 padding=2': a pair of equal ints is shown as one int."""
        return " ".join([self.name] + [f"{k}={compact(v)}" for k, v in self.args.items()])

    def __repr__(self) -> str:
        return f"<Scope {self.label}>"


class ModuleCall:
    """One call of an nn.Module (made by Module.__call__ while grad mode is on): the scope of the
    nodes its forward records outside any composite op, and the `parent` of the composite calls and
    module calls it makes. `name` is the class name ('BasicBlock'); `module` the Module itself,
    held weakly (None once it is gone); `index` orders calls as they were made."""

    __slots__ = ("name", "parent", "index", "_module")
    kind = "module"

    def __init__(self, module: Any, parent: Scope | ModuleCall | None) -> None:
        self.name, self.parent, self.index = type(module).__name__, parent, next(_call_counter)
        self._module = weakref.ref(module)

    @property
    def module(self) -> Any:
        return self._module()

    @property
    def label(self) -> str:
        return self.name

    def release(self) -> None:
        """Nothing held here; a composite call around this one may hold data."""
        if self.parent is not None:
            self.parent.release()

    def __repr__(self) -> str:
        return f"<ModuleCall {self.name}>"


_call_counter = itertools.count()  # next() is atomic: calls made in two threads still get distinct indices


def compact(value: Any) -> Any:
    """(2, 2) -> 2: a pair of equal ints as one, as users write them."""
    return value[0] if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] else value


class _KeyArguments:
    """Which arguments of a composite function to show: `keys` always, `extra_keys` when they
    differ from the function's defaults."""

    def __init__(self, fn: Callable, name: str, keys: Sequence[str], extra_keys: Sequence[str]) -> None:
        params = list(inspect.signature(fn).parameters.values())
        self.position = {p.name: (i, p.default) for i, p in enumerate(params)}
        # the name of each positional argument; those past the named ones go to *args, if any
        self.positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.rest = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), "args")
        for key in (*keys, *extra_keys):
            if key not in self.position:
                raise TypeError(f"composite {name!r}: {fn.__name__}() has no argument {key!r}")
        self.keys, self.extra_keys = tuple(keys), tuple(extra_keys)

    def value(self, key: str, args: tuple, kwargs: dict) -> Any:
        i, default = self.position[key]
        return kwargs[key] if key in kwargs else args[i] if i < len(args) else default

    def named(self, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
        """Each argument of a call with the name of its parameter."""
        names = self.positional + [self.rest] * (len(args) - len(self.positional))
        return [*zip(names, args), *kwargs.items()]

    def shown(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        shown = {key: self.value(key, args, kwargs) for key in self.keys}
        for key in self.extra_keys:
            value = self.value(key, args, kwargs)
            if compact(value) != compact(self.position[key][1]):
                shown[key] = value
        return shown


def composite(name: str, keys: Sequence[str] = (), extra_keys: Sequence[str] = ()) -> Callable:
    """Decorator marking a function built from several primitives as one NN op called `name`.

    The nodes recorded while it runs point to a `Scope` of the call, which shows the `keys`
    arguments, and the `extra_keys` ones where they differ from the function's defaults.
    Under no_grad, where no node is recorded, it only calls the function.
    """
    def decorate(fn: Callable) -> Callable:
        signature = _KeyArguments(fn, name, keys, extra_keys)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not modes.grad:  # no node is recorded: nothing to mark
                return fn(*args, **kwargs)
            outer = modes.scope
            modes.scope = Scope(name, signature, args, kwargs, outer)
            try:
                return fn(*args, **kwargs)
            finally:
                modes.scope = outer
        return wrapper
    return decorate
