"""Optimizers, step for step as torch.optim.

An optimizer works out each step in NumPy from `p.grad` and writes it into `p` in place under
`no_grad()`, so `p` stays a leaf and its version counter sees the change (a backward pass that
still needed the old value raises). Parameters come as an iterable of Tensors or of param-group
dicts (`{"params": [...], "lr": ...}`), and every per-parameter state is a NumPy array, so
`state_dict()` can be saved as is.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


class Optimizer:
    """Base class: param groups with their hyperparameters, per-parameter state, zero_grad."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):  # iterating it would yield its rows, which never get a .grad
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts, got a single Tensor "
                            f"of shape {params.shape} (wrap it in a list)")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for group in groups:
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{name}: params must be all Tensors or all dicts with a 'params' key")
            group_params = group["params"]
            group = {**defaults, **group,
                     "params": [group_params] if isinstance(group_params, Tensor) else list(group_params)}
            for p in group["params"]:
                if not isinstance(p, Tensor) or not p.requires_grad:
                    raise TypeError(f"{name}: every parameter must be a Tensor that requires grad, "
                                    f"got {type(p).__name__}")
                if not p.is_leaf:
                    raise ValueError(f"{name}: cannot optimize a non-leaf Tensor (shape {p.shape}): it never "
                                     "gets a .grad; pass the leaf it was computed from")
                if id(p) in seen:  # it would be updated twice per step
                    raise ValueError(f"{name}: a parameter of shape {p.shape} appears twice in the params")
                seen.add(id(p))
            self.param_groups.append(group)
        self.state: dict[int, dict[str, Any]] = {}  # keyed by the parameter's position over all groups

    @staticmethod
    def _subtract(p: Tensor, delta: np.ndarray) -> None:
        """p -= delta, in place."""
        with no_grad():
            p.sub_(p.new_tensor(delta))

    def _params(self) -> Iterable[tuple[int, Tensor, dict[str, Any]]]:
        """(index, parameter, its group) for every parameter that has a gradient."""
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield index, p, group
                index += 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    with no_grad():
                        p.grad.zero_()

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: array or number}}, 'param_groups': [hyperparameters, params as indices]}."""
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            hyperparameters = {k: v for k, v in group.items() if k != "params"}
            groups.append({**hyperparameters, "params": list(range(start, start + n))})
            start += n
        state = {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for i, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved param groups do not match "
                             "this optimizer's (different number of groups or parameters)")
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {int(i): {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                      for i, s in state_dict["state"].items()}


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (heavy ball or Nesterov) and L2 weight decay:
        g = grad + weight_decay * p
        buf = g (first step), then momentum * buf + (1 - dampening) * g
        p -= lr * (g + momentum * buf if nesterov else buf)
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def step(self) -> None:
        for i, p, group in self._params():
            g = p.grad.detach().numpy()
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p.detach().numpy()
            if group["momentum"]:
                state = self.state.setdefault(i, {})
                if "momentum_buffer" not in state:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf = state["momentum_buffer"]
                    buf *= group["momentum"]
                    buf += (1 - group["dampening"]) * g
                g = g + group["momentum"] * buf if group["nesterov"] else buf
            self._subtract(p, group["lr"] * g)


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015). With `decoupled_weight_decay` (AdamW) the decay shrinks p
    directly instead of being added to the gradient.
        m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas}, eps={eps} "
                             f"or weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def step(self) -> None:
        for i, p, group in self._params():
            g, lr, (b1, b2) = p.grad.detach().numpy(), group["lr"], group["betas"]
            if group["weight_decay"]:
                if group["decoupled_weight_decay"]:
                    with no_grad():
                        p.mul_(1 - lr * group["weight_decay"])
                else:
                    g = g + group["weight_decay"] * p.detach().numpy()
            state = self.state.setdefault(i, {})
            if not state:
                state.update(step=0, exp_avg=np.zeros(p.shape, p.dtype), exp_avg_sq=np.zeros(p.shape, p.dtype))
            state["step"] += 1
            m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + group["eps"]
            self._subtract(p, (lr / (1 - b1 ** t)) * m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019); PyTorch's default decay 1e-2."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)
