"""Learning-rate schedules, as torch.optim.lr_scheduler. Construct one after its optimizer; it sets
every param group's lr at once (epoch 0), then again at each `step()`, once per epoch (per batch for
OneCycleLR). The schedules are worked out in closed form from each group's `initial_lr` and the
epoch count, so `load_state_dict()` recomputes the lrs from what it loads.
"""
from __future__ import annotations

import copy
import math
import types
from bisect import bisect_right
from typing import Any, Callable, Iterable, Sequence, SupportsFloat

from .optimizers import Optimizer, check_argument


class LRScheduler:
    """Sets each group's lr from its initial lr and the epoch count; call `step()` once per epoch."""

    _unsaved: tuple[str, ...] = ("optimizer",)  # attributes that state_dict() leaves out

    def __init__(self, optimizer: Optimizer) -> None:
        self._attach(optimizer)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def _attach(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer

    def _per_group(self, argument: str, value: float | Sequence[float]) -> list[float]:
        """`value` for every param group: a number for all, or a list with one per group."""
        n = len(self.optimizer.param_groups)
        if not isinstance(value, (list, tuple)):
            return [value] * n
        check_argument(self, len(value) == n, argument, f"a number or a list of {n} (one per param group)", value)
        return list(value)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        """The lr at `epoch` of a group that started at `base_lr`."""
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """Every group's lr at epoch `last_epoch`."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def _set_lrs(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        self.last_epoch += 1
        self._set_lrs()

    def get_last_lr(self) -> list[float]:
        """The lrs this scheduler set last, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """A copy of the scheduler's attributes but the optimizer."""
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in self._unsaved})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._set_lrs()


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= epoch); a milestone given twice counts twice."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1) -> None:
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** epoch


class LinearLR(LRScheduler):
    """lr = initial_lr * factor, the factor going linearly from start_factor to end_factor over
    total_iters epochs, then staying (total_iters <= 0: it stays at start_factor, as PyTorch)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        check_argument(self, 0 < start_factor <= 1, "start_factor", "in (0, 1]", start_factor)
        check_argument(self, 0 <= end_factor <= 1, "end_factor", "in [0, 1]", end_factor)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        progress = min(self.total_iters, epoch) / self.total_iters if self.total_iters > 0 else 0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), with one function for all groups or one per group.
    state_dict() keeps the attributes of callable objects, not functions (as PyTorch)."""

    _unsaved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]]
                 ) -> None:
        self._attach(optimizer)
        lambdas = self._per_group("lr_lambda", lr_lambda)
        for f in lambdas:
            if not callable(f):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got {type(f).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        lambdas = [None if isinstance(f, types.FunctionType) else copy.deepcopy(f.__dict__) for f in self.lr_lambdas]
        return {**super().state_dict(), "lr_lambdas": lambdas}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for f, saved in zip(self.lr_lambdas, state_dict["lr_lambdas"]):
            if saved is not None:
                f.__dict__.update(saved)
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov and Hutter, 2017): cosine annealing that restarts at the initial lr.
        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    T_cur counts the epochs since the last restart, which comes when it reaches T_i; then T_i *= T_mult
    (T_i = T_0 at first).
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        check_argument(self, isinstance(T_0, int) and T_0 > 0, "T_0", "a positive int", T_0)
        check_argument(self, isinstance(T_mult, int) and T_mult >= 1, "T_mult", "an int >= 1", T_mult)
        check_argument(self, isinstance(eta_min, (int, float)), "eta_min", "a number", eta_min)
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer)

    def step(self) -> None:
        if self.last_epoch < 0:  # starting (or restarted by SequentialLR)
            self.T_cur, self.T_i = 0, self.T_0
        else:
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        super().step()

    def get_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base - self.eta_min) * cosine / 2 for base in self.base_lrs]


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
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False) -> None:
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
        if cycle_momentum and not {"momentum", "betas"} & set(optimizer.defaults):
            raise ValueError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, "
                             f"got {type(optimizer).__name__} (pass cycle_momentum=False)")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = total_steps, anneal_strategy, cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        # (last step of the phase, group keys of the lr and momentum at its start and end), as PyTorch
        up = (float(pct_start * total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum")
        if three_phase:
            self._phases = [up, (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                                 "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [up, (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        for group, top in zip(optimizer.param_groups, self._per_group("max_lr", max_lr)):
            group.update(initial_lr=top / div_factor, max_lr=top, min_lr=top / div_factor / final_div_factor)
        if cycle_momentum:
            for group, high, low in zip(optimizer.param_groups, self._per_group("max_momentum", max_momentum),
                                        self._per_group("base_momentum", base_momentum)):
                group.update(max_momentum=high, base_momentum=low)
        super().__init__(optimizer)

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
                momentum = self._anneal(group[momentum_from], group[momentum_to], fraction)
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


class SequentialLR(LRScheduler):
    """Runs `schedulers` one after another: the k-th takes over at epoch milestones[k-1], starting its
    own schedule from its epoch 0. The schedulers must be built on this optimizer."""

    _unsaved = ("optimizer", "_schedulers")

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int]) -> None:
        self._attach(optimizer)
        if not schedulers:
            raise ValueError("SequentialLR: schedulers must hold at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"SequentialLR: schedulers[{i}] must be an LRScheduler, got {type(scheduler).__name__}")
            if isinstance(scheduler, ReduceLROnPlateau):  # its step needs a metric
                raise ValueError(f"SequentialLR: schedulers[{i}] is a ReduceLROnPlateau, which it cannot step")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] ({type(scheduler).__name__}) belongs to another "
                                 "optimizer")
        check_argument(self, len(milestones) == len(schedulers) - 1, "milestones",
                       f"{len(schedulers) - 1} epochs (one fewer than the schedulers)", milestones)
        self._schedulers, self._milestones = list(schedulers), list(milestones)
        for scheduler in self._schedulers:  # undo the step each made when it was built
            scheduler.last_epoch -= 1
        self.last_epoch = -1
        self.step()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler.last_epoch = -1  # its step below is its epoch 0
        scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "_schedulers": [s.state_dict() for s in self._schedulers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for scheduler, saved in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler.load_state_dict(saved)
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "_schedulers"})
        # the lrs of the running scheduler, not of the last one loaded
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


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
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _is_better(self, metric: float) -> bool:
        if self.mode == "min":
            return metric < (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                             else self.best - self.threshold)
        return metric > (self.best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                         else self.best + self.threshold)

    def step(self, metrics: SupportsFloat) -> None:  # type: ignore[override]
        """Count one epoch that ended with the metric `metrics` (a number or a one-element Tensor)."""
        current = float(metrics)
        self.last_epoch += 1
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
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

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

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters; the lrs come with the optimizer's state_dict."""
        self.__dict__.update(state_dict)
