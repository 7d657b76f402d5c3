"""Learning-rate schedules, as torch.optim.lr_scheduler. Build one after its optimizer: it sets every
param group's lr for epoch 0 at once, then again at each `step()`, once per epoch (once per batch
for CyclicLR and OneCycleLR).

As in PyTorch, most schedules are chainable: a step moves each group's *current* lr on by a factor
(ExponentialLR multiplies it by gamma, MultiStepLR by gamma at a milestone), so schedulers that share
an optimizer (in a ChainedScheduler, or stepped side by side) multiply their effects, and an lr
changed by hand is carried on from. LambdaLR, CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR
set the lrs outright from the initial ones. The closed forms (from `initial_lr` and the epoch alone)
serve where PyTorch uses them: `step(epoch)` (deprecated) and SequentialLR's switch to its next
scheduler.

`state_dict()` holds a scheduler's settings and counters; `load_state_dict()` restores them and
leaves the lrs alone: they come back with the optimizer's own state_dict, as in PyTorch.
"""
from __future__ import annotations

import copy
import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, Iterable, Sequence, SupportsFloat

from .optimizers import Optimizer, check_argument


def _callable_state(f: Callable | None) -> dict[str, Any] | None:
    """What a state_dict keeps of a user's function: a callable object's attributes, nothing of a
    plain function or lambda (as PyTorch)."""
    return None if f is None or isinstance(f, types.FunctionType) else copy.deepcopy(f.__dict__)


def _restore_callable(f: Callable | None, saved: dict[str, Any] | None) -> None:
    if saved is not None:
        f.__dict__.update(copy.deepcopy(saved))


def _set_momentum(group: dict[str, Any], momentum: float, use_beta1: bool) -> None:
    """Set the group's momentum, or beta1 for the Adam family."""
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


class LRScheduler:
    """Base class. `get_lr()` gives the lrs of epoch `last_epoch` (a chainable schedule from the
    current ones); `step()` moves to the next epoch and sets them. A `last_epoch` other than -1
    resumes a schedule: the optimizer must hold each group's `initial_lr` (from its loaded state_dict).
    """

    _unsaved: tuple[str, ...] = ("optimizer",)  # attributes that state_dict() leaves out
    _is_initial = False  # True during the step a scheduler takes when it starts

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self._attach(optimizer)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} resumes a schedule, but "
                                   f"param_groups[{i}] has no 'initial_lr' (load the optimizer's state_dict first)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _attach(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer

    def _per_group(self, argument: str, value: Any) -> list[Any]:
        """`value` for every param group: one value for all, or a list with one per group."""
        n = len(self.optimizer.param_groups)
        if not isinstance(value, (list, tuple)):
            return [value] * n
        check_argument(self, len(value) == n, argument, f"a number or a list of {n} (one per param group)", value)
        return list(value)

    def _momentum_uses_beta1(self) -> bool:
        """For cycle_momentum: whether the momentum to cycle is beta1 (the Adam family) rather than
        `momentum` (SGD, RMSprop). An optimizer with neither is an error, as in PyTorch."""
        if not {"momentum", "betas"} & set(self.optimizer.defaults):
            raise ValueError(f"{type(self).__name__}: cycle_momentum needs an optimizer with momentum or betas, "
                             f"got {type(self.optimizer).__name__} (pass cycle_momentum=False)")
        return "betas" in self.optimizer.defaults

    def _initial_step(self) -> None:
        """The step a scheduler takes when it starts: to epoch last_epoch + 1, where a chainable
        schedule keeps the lrs it finds (a resumed one finds them loaded)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _undo_initial_step(self) -> None:
        """Step back the epoch count of the step taken when built (SequentialLR restarts its schedulers)."""
        self.last_epoch -= 1

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _scaled(self, factor: float) -> list[float]:
        """Every group's current lr times `factor`: one step of a chainable schedule."""
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        """The lrs of epoch `last_epoch`, one per group, as step() sets them (a chainable schedule
        works them out from the current lrs: read the lrs with get_last_lr())."""
        raise NotImplementedError

    def _get_closed_form_lr(self) -> list[float]:
        """The lrs of epoch `last_epoch` from `base_lrs` alone (get_lr()'s without a closed form)."""
        return self.get_lr()

    def step(self, epoch: int | None = None) -> None:
        """Move to the next epoch and set its lrs. `epoch` (deprecated, as in PyTorch) jumps to that
        epoch instead, with the closed form where the schedule has one."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(f"{type(self).__name__}.step: passing an epoch is deprecated, as in PyTorch; call step() "
                          "once per epoch", UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            lrs = self.get_lr()
        else:
            self.last_epoch = epoch
            lrs = self._get_closed_form_lr()
        self._set_lrs(lrs)

    def _set_lrs(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def get_last_lr(self) -> list[float]:
        """The lrs this scheduler set last, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """A copy of the scheduler's attributes but the optimizer."""
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in self._unsaved})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes; the lrs come with the optimizer's state_dict."""
        self.__dict__.update(copy.deepcopy(state_dict))


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size): every step_size-th step multiplies the lr by gamma."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._current_lrs()
        return self._scaled(self.gamma)

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= epoch): a step onto a milestone multiplies
    the lr by gamma (gamma ** k for a milestone given k times)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return self._scaled(self.gamma ** self.milestones[self.last_epoch])

    def _get_closed_form_lr(self) -> list[float]:
        # {milestone: count}, a Counter or, loaded from a checkpoint, a dict
        passed = sum(count for milestone, count in self.milestones.items() if milestone <= self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr = initial_lr * factor until epoch total_iters, then initial_lr: epoch 0 multiplies the lr
    by factor, epoch total_iters divides it by factor."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        check_argument(self, 0 <= factor <= 1, "factor", "in [0, 1]", factor)
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return self._scaled(self.factor)
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return self._scaled(1.0 / self.factor)

    def _get_closed_form_lr(self) -> list[float]:
        factor = 1.0 if self.last_epoch >= self.total_iters else self.factor
        return [base * factor for base in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = initial_lr * factor, the factor going linearly from start_factor to end_factor over
    total_iters epochs, then staying (total_iters <= 0: it stays at start_factor, as PyTorch).
    A step multiplies the lr by the ratio of this epoch's factor to the last one's."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        check_argument(self, 0 < start_factor <= 1, "start_factor", "in (0, 1]", start_factor)
        check_argument(self, 0 <= end_factor <= 1, "end_factor", "in [0, 1]", end_factor)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return self._scaled(self.start_factor)
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        change = self.end_factor - self.start_factor
        previous = self.total_iters * self.start_factor + (self.last_epoch - 1) * change  # total_iters * factor
        return self._scaled(1.0 + change / previous)

    def _get_closed_form_lr(self) -> list[float]:
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * progress) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** epoch: every step multiplies the lr by gamma."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return self._current_lrs() if self._is_initial else self._scaled(self.gamma)

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    """lr = initial_lr * (1 - min(epoch, total_iters) / total_iters) ** power: a step multiplies the
    lr by ((1 - t / T) / (1 - (t - 1) / T)) ** power until epoch total_iters (0 from then on)."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        t, total = self.last_epoch, self.total_iters
        return self._scaled(((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power)

    def _get_closed_form_lr(self) -> list[float]:
        left = 1.0 - min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * left ** self.power for base in self.base_lrs]


class _LambdaSchedule(LRScheduler):
    """LambdaLR's and MultiplicativeLR's: a function of the epoch, one for all groups or one per
    group. state_dict() keeps the attributes of callable objects, not functions (as PyTorch)."""

    _unsaved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        self._attach(optimizer)
        lambdas = self._per_group("lr_lambda", lr_lambda)
        for f in lambdas:
            if not callable(f):
                raise TypeError(f"{type(self).__name__}: lr_lambda must be a function of the epoch, "
                                f"got {type(f).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "lr_lambdas": [_callable_state(f) for f in self.lr_lambdas]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for f, saved in zip(self.lr_lambdas, state_dict["lr_lambdas"]):
            _restore_callable(f, saved)
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})


class LambdaLR(_LambdaSchedule):
    """lr = initial_lr * lr_lambda(epoch)."""

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaSchedule):
    """Each step (not the first) multiplies the lr by lr_lambda(epoch):
    lr = initial_lr * lr_lambda(1) * ... * lr_lambda(epoch)."""

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * f(self.last_epoch) for f, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, on past T_max
    (back up). A step moves lr - eta_min on by the ratio of this epoch's cosine term to the last one's."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        t, period = self.last_epoch, self.T_max
        if (t - 1 - period) % (2 * period) == 0:  # leaving a trough, where the ratio below is 0 / 0
            rise = (1 - math.cos(math.pi / period)) / 2
            return [group["lr"] + (base - self.eta_min) * rise
                    for base, group in zip(self.base_lrs, self.optimizer.param_groups)]
        ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base - self.eta_min) * cosine / 2 for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov and Hutter, 2017): cosine annealing that restarts at the initial lr.
        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    T_cur counts the epochs since the last restart, which comes when it reaches T_i; then T_i *= T_mult
    (T_i = T_0 at first). `step(epoch)` may be given fractional epochs, to anneal within an epoch
    (`step(epoch + i / batches)` after batch i).
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        check_argument(self, isinstance(T_0, int) and T_0 > 0, "T_0", "a positive int", T_0)
        check_argument(self, isinstance(T_mult, int) and T_mult >= 1, "T_mult", "an int >= 1", T_mult)
        check_argument(self, isinstance(eta_min, (int, float)), "eta_min", "a number", eta_min)
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def step(self, epoch: float | None = None) -> None:
        """To the next epoch, or to `epoch` (a number >= 0, fractions allowed)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        else:
            check_argument(self, epoch >= 0, "epoch", ">= 0", epoch)
            if epoch < self.T_0:
                self.T_i, self.T_cur = self.T_0, epoch
            elif self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:  # restarts so far: n with T_0 (T_mult^n - 1) / (T_mult - 1) <= epoch
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())

    def get_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base - self.eta_min) * cosine / 2 for base in self.base_lrs]


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017), stepped once per batch: the lr goes from base_lr up to
    max_lr over step_size_up steps and back down over step_size_down (default: the same), the
    amplitude times scale_fn:
        triangular: 1;  triangular2: 1 / 2^(cycle - 1);  exp_range: gamma^step
    (a given scale_fn replaces `mode`, of the cycle number or of the step, as scale_mode says).
    With `cycle_momentum` the momentum (SGD, RMSprop) or beta1 (Adam family) moves the opposite
    way, from max_momentum down to base_momentum at the top of the lr.
    """

    _unsaved = ("optimizer", "_scale_fn_custom")

    def __init__(self, optimizer: Optimizer, base_lr: float | Sequence[float], max_lr: float | Sequence[float],
                 step_size_up: int = 2000, step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum: float | Sequence[float] = 0.8,
                 max_momentum: float | Sequence[float] = 0.9, last_epoch: int = -1) -> None:
        self._attach(optimizer)
        base_lrs = self._per_group("base_lr", base_lr)
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr
        self.max_lrs = self._per_group("max_lr", max_lr)
        check_argument(self, step_size_up > 0, "step_size_up", "> 0", step_size_up)
        up = float(step_size_up)
        down = up if step_size_down is None else float(step_size_down)
        check_argument(self, down >= 0, "step_size_down", ">= 0", step_size_down)
        self.total_size, self.step_ratio = up + down, up / (up + down)
        if scale_fn is None:
            check_argument(self, mode in ("triangular", "triangular2", "exp_range"), "mode",
                           "'triangular', 'triangular2' or 'exp_range' (or give scale_fn)", mode)
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        else:
            check_argument(self, callable(scale_fn), "scale_fn", "a function", scale_fn)
        check_argument(self, scale_mode in ("cycle", "iterations"), "scale_mode", "'cycle' or 'iterations'",
                       scale_mode)
        self.mode, self.gamma, self.scale_mode, self._scale_fn_custom = mode, gamma, scale_mode, scale_fn
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = self._momentum_uses_beta1()
            self.base_momentums = self._per_group("base_momentum", base_momentum)
            self.max_momentums = self._per_group("max_momentum", max_momentum)
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, self.max_momentums, self.base_momentums):
                    _set_momentum(group, high, self.use_beta1)
                    group.update(max_momentum=high, base_momentum=low)
        super().__init__(optimizer, last_epoch)
        # after the first step, which (as PyTorch's) started from the groups' initial_lr
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        """The amplitude's scale at cycle (or step) x."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self) -> list[float]:
        """The lrs at step `last_epoch`; sets the momenta (a side effect, as PyTorch)."""
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # how far into this cycle, in [0, 1)
        height = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base + (top - base) * height * scale for base, top in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                _set_momentum(group, high - (high - low) * height * scale, self.use_beta1)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "_scale_fn_custom": _callable_state(self._scale_fn_custom)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _restore_callable(self._scale_fn_custom, state_dict["_scale_fn_custom"])
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_scale_fn_custom"})


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topin, 2018), stepped once per batch: the lr anneals from
    max_lr / div_factor up to max_lr over the first pct_start of total_steps, then down to
    initial_lr / final_div_factor. `three_phase` comes back down to initial_lr symmetrically
    first, then anneals to the minimum. With `cycle_momentum` the momentum (SGD, RMSprop) or
    beta1 (Adam family) moves the opposite way, between max_momentum and base_momentum.
    Annealing from a to b at fraction f of a phase: cos: b + (a - b) / 2 * (1 + cos(pi f)); linear: a + (b - a) f.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85, max_momentum: float | Sequence[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        self._attach(optimizer)
        if total_steps is not None:
            check_argument(self, isinstance(total_steps, int) and total_steps > 0, "total_steps", "a positive int",
                           total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            check_argument(self, isinstance(epochs, int) and epochs > 0, "epochs", "a positive int", epochs)
            check_argument(self, isinstance(steps_per_epoch, int) and steps_per_epoch > 0, "steps_per_epoch",
                           "a positive int", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        check_argument(self, isinstance(pct_start, float) and 0 <= pct_start <= 1, "pct_start", "a float in [0, 1]",
                       pct_start)
        check_argument(self, anneal_strategy in ("cos", "linear"), "anneal_strategy", "'cos' or 'linear'",
                       anneal_strategy)
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        # (last step of the phase, group keys of the lr and momentum at its start and end), as PyTorch
        up = (float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum")
        if three_phase:
            self._phases = [up, (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                                 "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [up, (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        max_lrs = self._per_group("max_lr", max_lr)
        if last_epoch == -1:  # else the group keys come with the optimizer's state_dict
            for group, top in zip(optimizer.param_groups, max_lrs):
                group.update(initial_lr=top / div_factor, max_lr=top, min_lr=top / div_factor / final_div_factor)
        if cycle_momentum:
            self.use_beta1 = self._momentum_uses_beta1()
            momenta = zip(optimizer.param_groups, self._per_group("max_momentum", max_momentum),
                          self._per_group("base_momentum", base_momentum))
            if last_epoch == -1:
                for group, high, low in momenta:
                    _set_momentum(group, high, self.use_beta1)
                    group.update(max_momentum=high, base_momentum=low)
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def get_lr(self) -> list[float]:
        """The lrs at step `last_epoch`; sets the momenta (a side effect, as PyTorch)."""
        if self.last_epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {self.last_epoch} times, past total_steps={self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self._phases):
                if self.last_epoch <= end_step or i == len(self._phases) - 1:
                    fraction = (self.last_epoch - start_step) / (end_step - start_step)
                    break
                start_step = end_step
            lrs.append(self._anneal(group[lr_from], group[lr_to], fraction))
            if self.cycle_momentum:
                _set_momentum(group, self._anneal(group[momentum_from], group[momentum_to], fraction), self.use_beta1)
        return lrs


class _SchedulerList(LRScheduler):
    """What SequentialLR and ChainedScheduler share: their schedulers, checked to be steppable without
    a metric and to share one optimizer, and a state_dict that nests theirs."""

    _unsaved = ("optimizer", "_schedulers")

    def _take(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None) -> None:
        name = type(self).__name__
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError(f"{name}: schedulers must hold at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"{name}: schedulers[{i}] must be an LRScheduler, got {type(scheduler).__name__}")
            if isinstance(scheduler, ReduceLROnPlateau):  # its step needs a metric
                raise ValueError(f"{name}: schedulers[{i}] is a ReduceLROnPlateau, which it cannot step")
        self._attach(schedulers[0].optimizer if optimizer is None else optimizer)
        for i, scheduler in enumerate(schedulers):
            if scheduler.optimizer is not self.optimizer:
                raise ValueError(f"{name}: schedulers[{i}] ({type(scheduler).__name__}) belongs to another optimizer")
        self._schedulers = schedulers

    def _undo_initial_step(self) -> None:
        for scheduler in self._schedulers:
            scheduler._undo_initial_step()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "_schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_schedulers"})
        for scheduler, saved in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler.load_state_dict(saved)


class SequentialLR(_SchedulerList):
    """Runs `schedulers` one after another: the k-th takes over at epoch milestones[k-1], from its
    own epoch 0 (worked out in closed form from the initial lrs). The schedulers must be built on
    this optimizer; building this one restarts the lrs from the initial ones."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        self._take(schedulers, optimizer)
        check_argument(self, len(milestones) == len(self._schedulers) - 1, "milestones",
                       f"{len(self._schedulers) - 1} epochs (one fewer than the schedulers)", milestones)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo_initial_step()
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_SchedulerList):
    """Steps all of `schedulers` at each step(), in order, so their (chainable) changes multiply:
    ExponentialLR(gamma=0.9) with MultiStepLR(gamma=0.1) gives 0.9 ** epoch, and 0.1 more at each
    milestone. Building it steps nothing (each scheduler took its first step when built)."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        self._take(schedulers, optimizer)
        self._last_lr = self._current_lrs()

    def step(self) -> None:  # type: ignore[override]
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()


class ReduceLROnPlateau(LRScheduler):
    """Multiplies every lr by `factor` (not below min_lr, and only by more than eps) once the metric
    passed to `step(metric)` has not improved for more than `patience` epochs, then waits `cooldown`
    epochs before counting again. Improving means beating the best so far by the threshold:
    rel: metric < best * (1 - threshold) (mode 'min') or > best * (1 + threshold) ('max');
    abs: metric < best - threshold or > best + threshold.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8) -> None:
        self._attach(optimizer)
        check_argument(self, factor < 1.0, "factor", "< 1", factor)
        check_argument(self, mode in ("min", "max"), "mode", "'min' or 'max'", mode)
        check_argument(self, threshold_mode in ("rel", "abs"), "threshold_mode", "'rel' or 'abs'", threshold_mode)
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        self.min_lrs = self._per_group("min_lr", min_lr)
        # a single min_lr also covers groups added later; a list cannot
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0
        self._last_lr = self._current_lrs()

    def _is_better(self, metric: float) -> bool:
        if self.mode == "min":
            return metric < (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                             else self.best - self.threshold)
        return metric > (self.best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                         else self.best + self.threshold)

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        """Count one epoch that ended with the metric `metrics` (a number or a one-element Tensor);
        `epoch` (deprecated, as in PyTorch) sets the epoch count instead of adding one."""
        current = float(metrics)
        if epoch is not None:
            warnings.warn("ReduceLROnPlateau.step: passing an epoch is deprecated, as in PyTorch", UserWarning,
                          stacklevel=2)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:  # bad epochs in the cooldown do not count
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lrs()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current_lrs()

    def _reduce_lrs(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups, but min_lr "
                                   f"was given for {len(self.min_lrs)}; set scheduler.min_lrs for all of them")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            new_lr = max(group["lr"] * self.factor, min_lr)
            if group["lr"] - new_lr > self.eps:
                group["lr"] = new_lr
