"""Argument checks at the door of the public API, so a wrong argument is reported in the caller's
words (the op and the argument) instead of as an AttributeError or a NumPy message from deep inside.

    takes_tensors   a function's arguments annotated `Tensor` must be Tensors (PyTorch's wording:
                    "relu(): argument 'input' (position 1) must be Tensor, not list")
    size_argument   a layer size such as in_features: an int, at least a minimum
    pair_argument   a kernel_size, stride, padding or dilation: an int or a pair of ints, at least a minimum
    probability_argument   a probability such as dropout's p: a number in [0, 1]
"""
from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable, TypeVar

from .tensor import Tensor

F = TypeVar("F", bound=Callable[..., Any])

# annotations as written in the source (the modules use `from __future__ import annotations`)
_TENSOR, _OPTIONAL_TENSOR = "Tensor", "Tensor | None"


def takes_tensors(fn: F) -> F:
    """Wrap `fn` so that each argument annotated `Tensor` (or `Tensor | None`) is checked to be a
    Tensor (or None) before `fn` runs; a TypeError names `fn`, the argument and what it got."""
    checked = [(position, name, parameter.annotation == _OPTIONAL_TENSOR)
               for position, (name, parameter) in enumerate(inspect.signature(fn).parameters.items())
               if parameter.annotation in (_TENSOR, _OPTIONAL_TENSOR)]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for position, name, optional in checked:
            if position < len(args):
                value = args[position]
            elif name in kwargs:
                value = kwargs[name]
            else:
                continue  # left to its default, or missing: Python's own error names it
            if not isinstance(value, Tensor) and not (optional and value is None):
                raise TypeError(f"{fn.__name__}(): argument '{name}' (position {position + 1}) must be Tensor, "
                                f"not {_type_name(value)}")
        return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def size_argument(value: Any, name: str, op: str, minimum: int = 0) -> int:
    """`value` as a size (an int, not a bool, at least `minimum`), else TypeError/ValueError naming it."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value}")
    return int(value)


def pair_argument(value: int | tuple[int, int], name: str, op: str, minimum: int) -> tuple[int, int]:
    """`value` (an int, or a pair of ints) as a pair, each at least `minimum`, else TypeError/ValueError."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return pair


def probability_argument(p: Any, name: str, op: str) -> float:
    """`p` as a float in [0, 1], else TypeError (not a number) or ValueError (outside), naming it."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"{op}: {name} must be a number in [0, 1], got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: {name} must be in [0, 1], got {p}")
    return float(p)


def _type_name(value: Any) -> str:
    """numpy.ndarray rather than ndarray, as PyTorch says it."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"
