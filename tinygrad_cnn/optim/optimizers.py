"""Optimizers, step for step as torch.optim.

An optimizer works out each step in NumPy from `p.grad` and writes it into `p` in place under
`no_grad()`, so `p` stays a leaf and its version counter sees the change (a backward pass that
still needed the old value raises). Parameters come as an iterable of Tensors or of param-group
dicts (`{"params": [...], "lr": ...}`), and every per-parameter state is a NumPy array or a number,
so `state_dict()` can be saved as is.

Every optimizer takes PyTorch's `maximize` (step up the gradient) and L2 `weight_decay` (added to
the gradient: g = grad + weight_decay * p); the Adam family can decouple the decay instead
(p *= 1 - lr * weight_decay before the step). In the formulas below, g is that gradient.

PyTorch's implementation flags are taken where its optimizer takes them, with its defaults:
- `foreach` and `fused` choose how PyTorch's loop over the parameters runs (one kernel per
  parameter, per list, or one fused kernel), not what it computes; here one NumPy loop does the
  same update whatever they say. As PyTorch, `fused=True` refuses `foreach=True` and
  `differentiable=True` (RuntimeError).
- `capturable=True` (CUDA graph capture) and `differentiable=True` (the update recorded in the
  graph) raise RuntimeError at `step()`, as PyTorch on the CPU with leaf parameters does.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from ..autograd.grad_mode import enable_grad, no_grad
from ..creation import as_tensor
from ..tensor import Tensor

Params = Iterable[Tensor] | Iterable[dict]


def check_argument(owner: object, ok: bool, argument: str, rule: str, value: Any) -> None:
    """Raise ValueError("Owner: argument must be rule, got value") unless `ok`."""
    if not ok:
        raise ValueError(f"{type(owner).__name__}: {argument} must be {rule}, got {value!r}")


class Optimizer:
    """Base class: param groups with their hyperparameters, per-parameter state, zero_grad, and a
    step that hands each parameter's gradient (maximize and weight decay applied) to `_update`."""

    def __init__(self, params: Params, defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):  # iterating it would yield its rows, which never get a .grad
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts, got a single Tensor "
                            f"of shape {params.shape} (wrap it in a list)")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        if defaults.get("fused") and defaults.get("differentiable"):
            raise RuntimeError(f"{name}: fused=True does not support differentiable=True")
        if defaults.get("fused") and defaults.get("foreach"):
            raise RuntimeError(f"{name}: fused=True and foreach=True cannot be used together")
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # keyed by the parameter's position over all groups
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{name}: params must be all Tensors or all dicts with a 'params' key")
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group ({"params": ..., hyperparameters}); what it leaves out comes from the defaults.
        Its parameters take the next state indices, so the existing state keeps its keys."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}.add_param_group: param_group must be a dict with a 'params' key, "
                            f"got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, set):  # a set's order changes between runs, and the state is keyed by order
            raise TypeError(f"{name}: params must be an ordered collection (a list), not a set")
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for p in params:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{name}: every parameter must be a Tensor that requires grad, "
                                f"got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: cannot optimize a non-leaf Tensor (shape {p.shape}): it never "
                                 "gets a .grad; pass the leaf it was computed from")
            if id(p) in seen:  # it would be updated twice per step
                raise ValueError(f"{name}: a parameter of shape {p.shape} appears twice in the params")
            seen.add(id(p))
        self.param_groups.append({**self.defaults, **param_group, "params": params})

    def _check_non_negative(self, **values: float) -> None:
        for argument, value in values.items():
            check_argument(self, value >= 0, argument, ">= 0", value)

    @staticmethod
    def _subtract(p: Tensor, delta: np.ndarray) -> None:
        """p -= delta, in place; delta is cast to p's dtype first (no copy when it has it already)."""
        with no_grad():
            p.sub_(as_tensor(delta, dtype=p.dtype))

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

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient (the others, and their state, are left alone);
        `closure` re-evaluates the loss first, which is returned."""
        for group in self.param_groups:
            for flag, needs in (("capturable", "CUDA graph capture, on a CUDA device"),
                                ("differentiable", "the update recorded in the graph, for non-leaf parameters")):
                if group.get(flag):
                    raise RuntimeError(f"{type(self).__name__}: {flag}=True needs {needs}; tinygrad_cnn steps "
                                       "leaf parameters on the CPU outside the graph")
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for i, p, group in self._params():
            g = p.grad.detach().numpy()
            if group.get("maximize"):
                g = -g
            decay = group.get("weight_decay", 0)
            if decay and group.get("decoupled_weight_decay"):  # shrinks p itself; the moments never see it
                with no_grad():
                    p.mul_(1 - group["lr"] * decay)
            elif decay:
                g = g + decay * p.detach().numpy()
            state = self.state.get(i) or self._init_state(p, group)
            delta = self._update(g, state, group)
            if state:  # a stateless step (SGD without momentum) keeps no entry, as PyTorch
                self.state[i] = state
            self._subtract(p, delta)
        return loss

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """A parameter's state before its first step."""
        return {}

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        """The step to subtract from the parameter, given its gradient g (never changed in place: it
        may be p.grad's own array); updates `state` in place."""
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
    """Stochastic gradient descent with optional momentum (heavy ball or Nesterov):
        buf = g (first step), then momentum * buf + (1 - dampening) * g
        p -= lr * (g + momentum * buf if nesterov else buf)
    """

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        momentum = group["momentum"]
        if momentum:  # the buffer appears on the first step with momentum (OneCycleLR may turn it on)
            if "momentum_buffer" not in state:
                buf = state["momentum_buffer"] = np.array(g)  # a copy, and an array even when g is a 0-d scalar
            else:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        return group["lr"] * g


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide the gradient by a running root mean square of past gradients.
        v = alpha * v + (1 - alpha) * g^2;  centered: gbar = alpha * gbar + (1 - alpha) * g, v~ = v - gbar^2
        d = g / (sqrt(v~ or v) + eps);  momentum: buf = momentum * buf + d, p -= lr * buf;  else p -= lr * d
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        self._check_non_negative(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, capturable=capturable, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable))

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = dict(step=0, square_avg=np.zeros(p.shape, p.dtype))
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros(p.shape, p.dtype)
        if group["centered"]:
            state["grad_avg"] = np.zeros(p.shape, p.dtype)
        return state

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        alpha = group["alpha"]
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            avg = np.sqrt(square_avg) + group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            return group["lr"] * buf
        return group["lr"] * g / avg


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): each coordinate's step shrinks with its summed squared gradients.
        sum += g^2;  p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
    As PyTorch, the state exists from construction, and every sum starts at the constructor's
    initial_accumulator_value (a group's own value is not used).
    """

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        self._check_non_negative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                 initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, fused=fused))
        params = [(p, group) for group in self.param_groups for p in group["params"]]
        self.state = {i: self._init_state(p, group) for i, (p, group) in enumerate(params)}

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return dict(step=0, sum=np.full(p.shape, self.defaults["initial_accumulator_value"], p.dtype))

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        state["step"] += 1
        state["sum"] += g * g
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        return lr * g / (np.sqrt(state["sum"]) + group["eps"])


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): the step's scale is a running RMS of past steps over one of gradients.
        v = rho * v + (1 - rho) * g^2;  d = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * d^2;  p -= lr * d
    """

    def __init__(self, params: Params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        self._check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        check_argument(self, 0 <= rho <= 1, "rho", "in [0, 1]", rho)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      capturable=capturable, maximize=maximize, differentiable=differentiable))

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return dict(step=0, square_avg=np.zeros(p.shape, p.dtype), acc_delta=np.zeros(p.shape, p.dtype))

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        rho, eps = group["rho"], group["eps"]
        state["step"] += 1
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        return group["lr"] * delta


class _AdamFamily(Optimizer):
    """What Adam, NAdam and RAdam share: the checks, and the moments
        m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2   (t counts the steps)
    """

    def __init__(self, params: Params, lr: float, betas: tuple[float, float], eps: float, weight_decay: float,
                 **defaults: Any) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas}, eps={eps} "
                             f"or weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, **defaults))

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return dict(step=0, exp_avg=np.zeros(p.shape, p.dtype), exp_avg_sq=np.zeros(p.shape, p.dtype))

    @staticmethod
    def _moments(g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
        """m, v and t after this step."""
        b1, b2 = group["betas"]
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        return m, v, state["step"]


class Adam(_AdamFamily):
    """Adam (Kingma and Ba, 2015). With `decoupled_weight_decay` (AdamW) the decay shrinks p
    directly instead of being added to the gradient; `amsgrad` divides by the largest v so far.
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=decoupled_weight_decay)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = super()._init_state(p, group)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros(p.shape, p.dtype)
        return state

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        m, v, t = self._moments(g, state, group)
        b1, b2 = group["betas"]
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + group["eps"]
        return (group["lr"] / (1 - b1 ** t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019); PyTorch's default decay 1e-2."""

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class NAdam(_AdamFamily):
    """Adam with Nesterov momentum (Dozat, 2016), with the momentum schedule
    mu_t = b1 * (1 - 0.5 * 0.96^(t * momentum_decay)) and P_t = mu_1 * ... * mu_t:
        p -= lr * ((1 - mu_t) / (1 - P_t) * g + mu_{t+1} / (1 - P_t * mu_{t+1}) * m) / (sqrt(v / (1 - b2^t)) + eps)
    PyTorch keeps P_t (`mu_product`) in the default float dtype, float32 unless changed; here it is a float64.
    """

    def __init__(self, params: Params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        self._check_non_negative(momentum_decay=momentum_decay)
        super().__init__(params, lr, betas, eps, weight_decay, momentum_decay=momentum_decay,
                         decoupled_weight_decay=decoupled_weight_decay, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {**super()._init_state(p, group), "mu_product": 1.0}

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        m, v, t = self._moments(g, state, group)
        (b1, b2), lr, psi = group["betas"], group["lr"], group["momentum_decay"]
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] *= mu
        product = state["mu_product"]
        denom = np.sqrt(v / (1 - b2 ** t)) + group["eps"]
        return (lr * (1.0 - mu) / (1.0 - product)) * g / denom + (lr * mu_next / (1.0 - product * mu_next)) * m / denom


class RAdam(_AdamFamily):
    """Rectified Adam (Liu et al., 2020): plain momentum SGD while the variance estimate is unreliable.
        rho_inf = 2 / (1 - b2) - 1;  rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p -= lr * m / (1 - b1^t) * r * sqrt(1 - b2^t) / (sqrt(v) + eps)
        otherwise:  p -= lr * m / (1 - b1^t)
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable)

    def _update(self, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> np.ndarray:
        m, v, t = self._moments(g, state, group)
        b1, b2 = group["betas"]
        bias_correction2 = 1 - b2 ** t
        step = group["lr"] * m / (1 - b1 ** t)
        # the same float operations as PyTorch, so that both take the same branch at rho_t near 5
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2 ** t) / bias_correction2
        if rho_t <= 5.0:
            return step
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        return step * (bias_correction2 ** 0.5 / (np.sqrt(v) + group["eps"])) * rect
