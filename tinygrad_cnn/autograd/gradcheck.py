"""Check analytic gradients against central differences in float64.

`gradcheck` compares v^T J (one backward pass with a random cotangent v) with the
same product estimated by central differences, element by element of every input.
`gradgradcheck` runs `gradcheck` on the gradient function itself, so the VJPs'
own graphs (second derivatives) are checked too.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .engine import grad
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    """Analytic and numeric gradients disagree."""


def _is_tensor(x: Any) -> bool:
    return getattr(x, "_is_tensor", False)


def _outputs(result: Any) -> list[Any]:
    outs = [result] if _is_tensor(result) else list(result)
    if not all(_is_tensor(o) for o in outs):
        raise TypeError("gradcheck: fn must return a Tensor or a sequence of Tensors")
    return outs


def _float64_leaves(inputs: Sequence[Any]) -> list[Any]:
    """Float64 copies of the float tensors that require grad; everything else passes through."""
    return [x.detach().to(np.float64).clone().requires_grad_() if _is_tensor(x) and x.requires_grad else x
            for x in inputs]


def gradcheck(fn: Callable[..., Any], inputs: Sequence[Any], *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0, raise_exception: bool = True) -> bool:
    """True if fn's gradients with respect to every input that requires grad match central
    differences (|analytic - numeric| <= atol + rtol * |numeric| at every element).

    Inputs are copied to float64 first. On a mismatch raises `GradcheckError` naming the
    input, the worst element and both values (or returns False if `raise_exception=False`).
    """
    inputs = _float64_leaves(inputs)
    wrt = [i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    outputs = _outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    cotangents = [rng.standard_normal(o.shape) for o in outputs]

    # analytic: v^T J in one backward pass (outputs that do not depend on the inputs contribute 0)
    live = [k for k, o in enumerate(outputs) if o.requires_grad]
    analytic = [np.zeros(inputs[i].shape) for i in wrt]
    if live:
        found = grad([outputs[k] for k in live], [inputs[i] for i in wrt],
                     [outputs[k].new_tensor(cotangents[k]) for k in live], allow_unused=True)
        analytic = [a if g is None else g.detach().numpy().astype(np.float64) for a, g in zip(analytic, found)]

    def projected(args: list[Any]) -> float:
        with no_grad():
            return sum(float(np.sum(o.detach().numpy() * v)) for o, v in zip(_outputs(fn(*args)), cotangents))

    for a, i in zip(analytic, wrt):
        x = inputs[i].detach().numpy()  # shares memory: perturbed in place below
        numeric = np.zeros(x.shape)
        for j in np.ndindex(x.shape):
            original = x[j]
            x[j] = original + eps
            plus = projected(inputs)
            x[j] = original - eps
            minus = projected(inputs)
            x[j] = original
            numeric[j] = (plus - minus) / (2 * eps)
        excess = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and (np.isnan(excess).any() or excess.max() > 0):
            worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)), x.shape)
            message = (f"gradcheck: gradient for input {i} (shape {x.shape}) is wrong at index {tuple(map(int, worst))}: "
                       f"analytic {a[worst]:.8g}, numeric {numeric[worst]:.8g} "
                       f"(tolerance atol={atol} + rtol={rtol} * |numeric|); "
                       f"max |analytic - numeric| = {np.nanmax(np.abs(a - numeric)):.3g}")
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradgradcheck(fn: Callable[..., Any], inputs: Sequence[Any], grad_outputs: Sequence[Any] | None = None,
                  **kwargs: Any) -> bool:
    """gradcheck of x, v -> v^T J(x): checks the gradients of fn's gradients (its second derivatives,
    and that each VJP is built from differentiable ops). `grad_outputs` v is random if not given."""
    inputs = _float64_leaves(inputs)
    wrt = [i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(kwargs.get("seed", 0) + 1)
        grad_outputs = [o.new_tensor(rng.standard_normal(o.shape)).requires_grad_() for o in _outputs(fn(*inputs))]
    grad_outputs = _float64_leaves(grad_outputs)
    n = len(inputs)

    def first_derivatives(*args: Any) -> list[Any]:
        xs, vs = list(args[:n]), list(args[n:])
        with enable_grad():  # gradcheck probes this under no_grad, but it needs a graph to differentiate
            outs = _outputs(fn(*xs))
            live = [k for k, o in enumerate(outs) if o.requires_grad]
            if not live:
                return [xs[i].new_zeros(xs[i].shape) for i in wrt]
            found = grad([outs[k] for k in live], [xs[i] for i in wrt], [vs[k] for k in live],
                         create_graph=True, allow_unused=True)
        return [xs[i].new_zeros(xs[i].shape) if g is None else g for g, i in zip(found, wrt)]

    return gradcheck(first_derivatives, list(inputs) + list(grad_outputs), **kwargs)
