"""The lr schedulers against PyTorch's, step by step.

Each case builds the same optimizer (SGD with momentum, Adam or RMSprop; one to three param groups
with their own lrs) and the same scheduler(s) in both libraries (`make(lr_scheduler_module,
optimizer)`), then steps both, comparing after every step the lrs the schedulers report, the lrs
in the param groups, and the momenta (beta1 for Adam) that CyclicLR and OneCycleLR move.
Hypothesis draws the arguments, the groups and, for combinations, which schedulers run together
(ChainedScheduler, SequentialLR, or side by side on one optimizer, where the chainable schedules
multiply). Mid-run, our optimizer and scheduler are saved, rebuilt fresh, loaded, and the run goes
on against PyTorch's uninterrupted one.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import nn, optim
from tinygrad_cnn.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_cnn.optim import lr_scheduler

torch = pytest.importorskip("torch")
tsched = torch.optim.lr_scheduler

OPTIMIZERS = {
    "SGD": lambda o, groups: o.SGD(groups, lr=0.1, momentum=0.9),
    "Adam": lambda o, groups: o.Adam(groups, lr=0.1),
    "RMSprop": lambda o, groups: o.RMSprop(groups, lr=0.1, momentum=0.5),
}


def build(o, s, make, kind: str, lrs: list[float]):
    """(optimizer, its schedulers as a list) in the library `o` (optim or torch.optim), `s` its lr_scheduler."""
    if o is optim:
        params = [nn.Parameter(np.ones(2)) for _ in lrs]
    else:
        params = [torch.ones(2, requires_grad=True) for _ in lrs]
    optimizer = OPTIMIZERS[kind](o, [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    made = make(s, optimizer)
    return optimizer, list(made) if isinstance(made, (list, tuple)) else [made]


def momenta(optimizer) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


def assert_same(ours, theirs, where: str) -> None:
    (optimizer, schedulers), (torch_optimizer, torch_schedulers) = ours, theirs
    for scheduler, torch_scheduler in zip(schedulers, torch_schedulers):
        assert scheduler.get_last_lr() == pytest.approx(torch_scheduler.get_last_lr(), rel=1e-12, abs=1e-15), where
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [g["lr"] for g in torch_optimizer.param_groups], rel=1e-12, abs=1e-15), where
    assert momenta(optimizer) == pytest.approx(momenta(torch_optimizer), rel=1e-12), where


def step(run) -> None:
    optimizer, schedulers = run
    optimizer.step()
    for scheduler in schedulers:
        scheduler.step()


def resumed(run, make, kind: str, lrs: list[float], file=None):
    """A fresh optimizer and schedulers (built with other lrs, then stepped once) given `run`'s
    state_dicts, passed through a checkpoint `file` if given."""
    optimizer, schedulers = run
    saved = optimizer.state_dict(), [s.state_dict() for s in schedulers]
    if file is not None:
        save_checkpoint(file, {"optimizer": saved[0], "schedulers": saved[1]})
        loaded = load_checkpoint(file)
        saved = loaded["optimizer"], loaded["schedulers"]
    fresh = build(optim, lr_scheduler, make, kind, [lr * 3 + 1 for lr in lrs])
    step(fresh)
    fresh[0].load_state_dict(saved[0])
    for scheduler, state in zip(fresh[1], saved[1]):
        scheduler.load_state_dict(state)
    return fresh


def check_against_torch(make, kind: str, lrs: list[float], steps: int, resume_at: int | None = None, file=None):
    """Step ours and PyTorch's side by side, comparing after each step; ours is saved and reloaded
    into fresh objects after `resume_at` steps (through a checkpoint `file` if given). Returns both runs."""
    ours = build(optim, lr_scheduler, make, kind, lrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's about step order and get_lr
        theirs = build(torch.optim, tsched, make, kind, lrs)
        assert_same(ours, theirs, "when built")
        for i in range(steps):
            if i == resume_at:
                ours = resumed(ours, make, kind, lrs, file)
                assert_same(ours, theirs, f"resumed after step {i}")
            step(ours)
            step(theirs)
            assert_same(ours, theirs, f"after step {i + 1}")
    return ours, theirs


# ================================================================ each scheduler, any arguments

unit = st.floats(0.05, 1.0)
gamma = st.floats(0.5, 1.0)
LAMBDAS = [lambda e: 0.95 ** e, lambda e: 1 + (e % 3) / 2, lambda e: 0.5 if e % 4 == 3 else 1.0,
           lambda e: 1 / (1 + 0.1 * e)]


def lr_lambdas(n_groups: int) -> st.SearchStrategy:
    one = st.sampled_from(LAMBDAS)
    return st.one_of(one, st.lists(one, min_size=n_groups, max_size=n_groups))


def per_group(values: st.SearchStrategy, n_groups: int) -> st.SearchStrategy:
    """One value for all groups, or a list with one per group."""
    return st.one_of(values, st.lists(values, min_size=n_groups, max_size=n_groups))


def scale_fns() -> st.SearchStrategy:
    return st.sampled_from([None, lambda x: 0.9 ** x, lambda x: 1 / (1 + x)])


def cyclic(n: int) -> st.SearchStrategy:
    return st.fixed_dictionaries(dict(
        base_lr=per_group(st.floats(1e-3, 0.05), n), max_lr=per_group(st.floats(0.05, 1.0), n),
        step_size_up=st.integers(1, 6), step_size_down=st.one_of(st.none(), st.integers(0, 6)),
        mode=st.sampled_from(["triangular", "triangular2", "exp_range"]), gamma=st.floats(0.8, 1.0),
        scale_fn=scale_fns(), scale_mode=st.sampled_from(["cycle", "iterations"]), cycle_momentum=st.booleans(),
        base_momentum=per_group(st.floats(0.5, 0.85), n), max_momentum=per_group(st.floats(0.85, 0.99), n)))


def one_cycle(n: int) -> st.SearchStrategy:
    return st.fixed_dictionaries(dict(
        max_lr=per_group(st.floats(0.01, 1.0), n), total_steps=st.integers(8, 40),
        pct_start=st.floats(0.1, 0.45), anneal_strategy=st.sampled_from(["cos", "linear"]),
        cycle_momentum=st.booleans(), base_momentum=per_group(st.floats(0.5, 0.85), n),
        max_momentum=per_group(st.floats(0.85, 0.99), n), div_factor=st.floats(2.0, 50.0),
        final_div_factor=st.floats(2.0, 1e4), three_phase=st.booleans()))


# name: strategy of its keyword arguments, given the number of param groups
ARGUMENTS = {
    "StepLR": lambda n: st.fixed_dictionaries(dict(step_size=st.integers(1, 6), gamma=gamma)),
    "MultiStepLR": lambda n: st.fixed_dictionaries(dict(milestones=st.lists(st.integers(0, 30), max_size=5),
                                                        gamma=gamma)),
    "ConstantLR": lambda n: st.fixed_dictionaries(dict(factor=unit, total_iters=st.integers(0, 10))),
    "LinearLR": lambda n: st.fixed_dictionaries(dict(start_factor=unit, end_factor=st.floats(0.0, 1.0),
                                                     total_iters=st.integers(0, 10))),
    "ExponentialLR": lambda n: st.fixed_dictionaries(dict(gamma=gamma)),
    "PolynomialLR": lambda n: st.fixed_dictionaries(dict(total_iters=st.integers(1, 12), power=st.floats(0.5, 3.0))),
    "LambdaLR": lambda n: st.fixed_dictionaries(dict(lr_lambda=lr_lambdas(n))),
    "MultiplicativeLR": lambda n: st.fixed_dictionaries(dict(lr_lambda=lr_lambdas(n))),
    "CosineAnnealingLR": lambda n: st.fixed_dictionaries(dict(T_max=st.integers(1, 12),
                                                              eta_min=st.sampled_from([0.0, 1e-3]))),
    "CosineAnnealingWarmRestarts": lambda n: st.fixed_dictionaries(dict(
        T_0=st.integers(1, 6), T_mult=st.integers(1, 3), eta_min=st.sampled_from([0.0, 1e-3]))),
    "CyclicLR": cyclic,
    "OneCycleLR": one_cycle,
}
CHAINABLE = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "MultiplicativeLR",
             "CosineAnnealingLR"]
group_lrs = st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=3)


def maker(name: str, kwargs: dict):
    return lambda s, o: getattr(s, name)(o, **kwargs)


@pytest.mark.parametrize("name", ARGUMENTS)
@settings(max_examples=30)
@given(data=st.data(), lrs=group_lrs, kind=st.sampled_from(list(OPTIMIZERS)))
def test_scheduler_equals_torch_for_any_arguments(name, data, lrs, kind):
    kwargs = data.draw(ARGUMENTS[name](len(lrs)), label="kwargs")
    steps = kwargs["total_steps"] if name == "OneCycleLR" else 40
    resume_at = data.draw(st.one_of(st.none(), st.integers(0, steps - 1)), label="resume_at")
    check_against_torch(maker(name, kwargs), kind, lrs, steps, resume_at)


# ================================================================ combinations

def component(n: int) -> st.SearchStrategy:
    """(name, kwargs) of a scheduler to combine; total_iters >= 1, so the closed forms are defined."""
    return st.sampled_from(CHAINABLE + ["LambdaLR", "CosineAnnealingWarmRestarts"]).flatmap(
        lambda name: ARGUMENTS[name](n).filter(lambda kw: kw.get("total_iters", 1) >= 1).map(lambda kw: (name, kw)))


def components(n: int) -> st.SearchStrategy:
    return st.lists(component(n), min_size=1, max_size=3)


def built(s, o, parts) -> list:
    return [getattr(s, name)(o, **kwargs) for name, kwargs in parts]


@settings(max_examples=40)
@given(data=st.data(), lrs=group_lrs, kind=st.sampled_from(list(OPTIMIZERS)),
       combine=st.sampled_from(["ChainedScheduler", "SequentialLR", "side by side"]))
def test_combined_schedulers_equal_torch(data, lrs, kind, combine):
    parts = data.draw(components(len(lrs)), label="parts")
    if combine == "ChainedScheduler":
        make = lambda s, o: s.ChainedScheduler(built(s, o, parts))  # noqa: E731
    elif combine == "SequentialLR":
        milestones = sorted(data.draw(st.lists(st.integers(0, 25), min_size=len(parts) - 1,
                                               max_size=len(parts) - 1), label="milestones"))
        make = lambda s, o: s.SequentialLR(o, built(s, o, parts), milestones)  # noqa: E731
    else:
        make = lambda s, o: built(s, o, parts)  # noqa: E731
    resume_at = data.draw(st.one_of(st.none(), st.integers(0, 39)), label="resume_at")
    check_against_torch(make, kind, lrs, 40, resume_at)


NESTED = {
    "ChainedScheduler of a SequentialLR and an ExponentialLR": lambda s, o: s.ChainedScheduler([
        s.SequentialLR(o, [s.LinearLR(o, start_factor=0.2, total_iters=4), s.StepLR(o, step_size=3, gamma=0.5)],
                       milestones=[5]),
        s.ExponentialLR(o, gamma=0.95)]),
    "SequentialLR of a ChainedScheduler and a CosineAnnealingLR": lambda s, o: s.SequentialLR(o, [
        s.ChainedScheduler([s.ExponentialLR(o, gamma=0.9), s.MultiStepLR(o, [2, 4], gamma=0.5)]),
        s.CosineAnnealingLR(o, T_max=6)], milestones=[7]),
    "SequentialLR in a SequentialLR": lambda s, o: s.SequentialLR(o, [
        s.SequentialLR(o, [s.ConstantLR(o, factor=0.5, total_iters=2), s.ExponentialLR(o, gamma=0.8)], [3]),
        s.PolynomialLR(o, total_iters=8, power=2.0)], milestones=[9]),
    "ChainedScheduler with its optimizer given": lambda s, o: s.ChainedScheduler(
        [s.ConstantLR(o, factor=0.1, total_iters=3), s.CosineAnnealingWarmRestarts(o, T_0=4)], optimizer=o),
}


@pytest.mark.parametrize("case", NESTED)
@pytest.mark.parametrize("resume_at", [None, 6])
def test_nested_combinations_equal_torch(case, resume_at):
    check_against_torch(NESTED[case], "SGD", [0.1, 0.03], 30, resume_at)


@pytest.mark.parametrize("case", ["MultiStepLR", "CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts",
                                  "SequentialLR", "ChainedScheduler"])
def test_resuming_through_a_checkpoint_file_equals_torch(case, tmp_path):
    """The state_dicts written by save_checkpoint and read back (a Counter comes back a dict) resume as well."""
    combined = {  # the MultiStepLR takes over after the resume: its closed form reads the loaded milestones
        "SequentialLR": lambda s, o: s.SequentialLR(o, [s.ExponentialLR(o, 0.9), s.MultiStepLR(o, [1, 3, 3])], [9]),
        "ChainedScheduler": NESTED["ChainedScheduler of a SequentialLR and an ExponentialLR"],
    }
    make = combined[case] if case in combined else lambda s, o: RESUMABLE[case](s, o, -1)
    check_against_torch(make, "Adam", [0.1, 0.03], 30, resume_at=7, file=tmp_path / "run.npz")


def test_exponential_and_multistep_by_hand():
    """ChainedScheduler multiplies the two decays; SequentialLR hands over at the milestone, the
    second schedule starting from the initial lr; side by side is the same as chained."""
    milestones, epochs = [3, 6], range(10)
    expected = {
        "chained": [0.1 * 0.9 ** e * 0.1 ** sum(m <= e for m in milestones) for e in epochs],
        "sequential": [0.1 * 0.9 ** e if e < 5 else 0.1 * 0.1 ** sum(m <= e - 5 for m in milestones) for e in epochs],
    }
    makes = {
        "chained": lambda s, o: s.ChainedScheduler([s.ExponentialLR(o, 0.9), s.MultiStepLR(o, milestones)]),
        "sequential": lambda s, o: s.SequentialLR(o, [s.ExponentialLR(o, 0.9), s.MultiStepLR(o, milestones)], [5]),
    }
    for how, make in makes.items():
        (optimizer, [scheduler]), _ = check_against_torch(make, "SGD", [0.1], 0)
        lrs = []
        for _ in epochs:
            lrs.append(scheduler.get_last_lr()[0])
            step((optimizer, [scheduler]))
        assert lrs == pytest.approx(expected[how], rel=1e-12), how


# ================================================================ resuming with last_epoch

RESUMABLE = {
    "StepLR": lambda s, o, last: s.StepLR(o, step_size=3, gamma=0.5, last_epoch=last),
    "MultiStepLR": lambda s, o, last: s.MultiStepLR(o, [4, 9, 9], gamma=0.5, last_epoch=last),
    "ConstantLR": lambda s, o, last: s.ConstantLR(o, factor=0.25, total_iters=6, last_epoch=last),
    "LinearLR": lambda s, o, last: s.LinearLR(o, start_factor=0.2, total_iters=10, last_epoch=last),
    "ExponentialLR": lambda s, o, last: s.ExponentialLR(o, 0.9, last_epoch=last),
    "PolynomialLR": lambda s, o, last: s.PolynomialLR(o, total_iters=12, power=2.0, last_epoch=last),
    "LambdaLR": lambda s, o, last: s.LambdaLR(o, LAMBDAS[0], last_epoch=last),
    "MultiplicativeLR": lambda s, o, last: s.MultiplicativeLR(o, LAMBDAS[2], last_epoch=last),
    "CosineAnnealingLR": lambda s, o, last: s.CosineAnnealingLR(o, T_max=7, eta_min=1e-3, last_epoch=last),
    "CosineAnnealingWarmRestarts": lambda s, o, last: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                                    last_epoch=last),
    "CyclicLR": lambda s, o, last: s.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=5, mode="triangular2",
                                              last_epoch=last),
    "OneCycleLR": lambda s, o, last: s.OneCycleLR(o, max_lr=0.5, total_steps=40, three_phase=True, last_epoch=last),
    "SequentialLR": lambda s, o, last: s.SequentialLR(
        o, [s.ExponentialLR(o, 0.9), s.MultiStepLR(o, [2, 5])], milestones=[4], last_epoch=last),
}


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("case", RESUMABLE)
@settings(max_examples=8)
@given(k=st.integers(1, 15), last=st.integers(0, 16))
def test_last_epoch_resumes_as_torch(case, kind, k, last):
    """k steps; the optimizer's state_dict into a fresh optimizer; the scheduler built again on it
    with last_epoch; 15 more steps: the same lrs and momenta as PyTorch doing the same."""
    make = RESUMABLE[case]
    runs = []
    for o, s in [(optim, lr_scheduler), (torch.optim, tsched)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimizer, schedulers = build(o, s, lambda s, o: make(s, o, -1), kind, [0.1, 0.03])
            for _ in range(k):
                step((optimizer, schedulers))
            fresh, _ = build(o, s, lambda s, o: [], kind, [0.5, 0.5])
            fresh.load_state_dict(optimizer.state_dict())
            runs.append((fresh, [make(s, fresh, last)]))
    assert_same(*runs, "rebuilt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(15):
            for run in runs:
                step(run)
            assert_same(*runs, f"after step {i + 1}")


def test_last_epoch_needs_initial_lr():
    optimizer = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(KeyError, match=r"ExponentialLR: last_epoch=3 resumes a schedule, but param_groups\[0\] has "
                                       "no 'initial_lr'"):
        lr_scheduler.ExponentialLR(optimizer, 0.9, last_epoch=3)
    with pytest.raises(KeyError):
        tsched.ExponentialLR(torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1), 0.9, last_epoch=3)


# ================================================================ step(epoch)

EPOCH_STEPPED = {
    "StepLR": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda s, o: s.MultiStepLR(o, [7, 2, 7], gamma=0.5),
    "ConstantLR": lambda s, o: s.ConstantLR(o, factor=0.25, total_iters=6),
    "LinearLR": lambda s, o: s.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=10),
    "ExponentialLR": lambda s, o: s.ExponentialLR(o, 0.9),
    "PolynomialLR": lambda s, o: s.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingLR": lambda s, o: s.CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
    "LambdaLR": lambda s, o: s.LambdaLR(o, LAMBDAS[1]),
    "MultiplicativeLR (no closed form)": lambda s, o: s.MultiplicativeLR(o, LAMBDAS[0]),
    "CyclicLR": lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="exp_range", gamma=0.9),
}


@pytest.mark.parametrize("case", EPOCH_STEPPED)
@settings(max_examples=10)
@given(epochs=st.lists(st.integers(0, 30), min_size=1, max_size=8))
def test_step_with_an_epoch_is_deprecated_and_equals_torch(case, epochs):
    """step(epoch) jumps to the epoch (the closed form where there is one) with PyTorch's UserWarning."""
    ours = build(optim, lr_scheduler, EPOCH_STEPPED[case], "SGD", [0.1, 0.03])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = build(torch.optim, tsched, EPOCH_STEPPED[case], "SGD", [0.1, 0.03])
    for epoch in epochs:
        with pytest.warns(UserWarning, match="deprecated"):
            ours[1][0].step(epoch)
        with pytest.warns(UserWarning):
            theirs[1][0].step(epoch)
        assert ours[1][0].last_epoch == theirs[1][0].last_epoch == epoch
        assert_same(ours, theirs, f"at epoch {epoch}")


@settings(max_examples=25)
@given(T_0=st.integers(1, 5), T_mult=st.integers(1, 3), epochs=st.lists(st.floats(0, 40), min_size=1, max_size=10))
def test_warm_restarts_at_fractional_epochs_equal_torch(T_0, T_mult, epochs):
    """CosineAnnealingWarmRestarts.step(epoch) takes fractions (per batch), without a warning."""
    make = lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult, eta_min=1e-3)  # noqa: E731
    ours = build(optim, lr_scheduler, make, "SGD", [0.1, 0.03])
    theirs = build(torch.optim, tsched, make, "SGD", [0.1, 0.03])
    for epoch in epochs:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ours[1][0].step(epoch)
        theirs[1][0].step(epoch)
        assert (ours[1][0].T_cur, ours[1][0].T_i, ours[1][0].last_epoch) == pytest.approx(
            (theirs[1][0].T_cur, theirs[1][0].T_i, theirs[1][0].last_epoch), rel=1e-12)
        assert_same(ours, theirs, f"at epoch {epoch}")
    with pytest.raises(ValueError, match="CosineAnnealingWarmRestarts: epoch must be >= 0, got -1"):
        ours[1][0].step(-1)
    with pytest.raises(ValueError):
        theirs[1][0].step(-1)


def test_reduce_lr_on_plateau_step_with_an_epoch():
    ours = build(optim, lr_scheduler, lambda s, o: s.ReduceLROnPlateau(o, patience=0, factor=0.5), "SGD", [0.1])
    theirs = build(torch.optim, tsched, lambda s, o: s.ReduceLROnPlateau(o, patience=0, factor=0.5), "SGD", [0.1])
    for epoch, metric in [(5, 1.0), (9, 2.0), (3, 3.0)]:
        with pytest.warns(UserWarning, match="deprecated"):
            ours[1][0].step(metric, epoch)
        with pytest.warns(UserWarning):
            theirs[1][0].step(metric, epoch)
        assert ours[1][0].last_epoch == theirs[1][0].last_epoch == epoch
        assert_same(ours, theirs, f"epoch {epoch}")
    assert ours[1][0].get_last_lr() == [0.025]


# ================================================================ CyclicLR details

class Halving:
    """A callable object as scale_fn: CyclicLR's state_dict keeps its attributes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: float) -> float:
        self.calls += 1
        return 0.5 ** (x - 1)


def test_cyclic_lr_by_hand_and_its_state_dict():
    """triangular2 from 0.1 to 1.0 over 2 steps up and 1 down, halving the amplitude each cycle;
    SGD's momentum goes the other way. A callable object's attributes are saved; a function is not."""
    p = nn.Parameter(np.ones(2))
    optimizer = optim.SGD([p], lr=123.0, momentum=0.0)
    scheduler = lr_scheduler.CyclicLR(optimizer, base_lr=0.1, max_lr=1.0, step_size_up=2, step_size_down=1,
                                      mode="triangular2", base_momentum=0.8, max_momentum=0.9)
    lrs, moms = [], []
    for _ in range(7):
        lrs.append(scheduler.get_last_lr()[0])
        moms.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.1, 0.55, 1.0, 0.1, 0.325, 0.55, 0.1])
    assert moms == pytest.approx([0.9, 0.85, 0.8, 0.9, 0.875, 0.85, 0.9])

    scale = Halving()
    with_object = lr_scheduler.CyclicLR(optimizer, 0.1, 1.0, step_size_up=2, scale_fn=scale)
    with_object.step()
    state = with_object.state_dict()
    assert state["_scale_fn_custom"] == {"calls": scale.calls} and scale.calls > 0
    other = Halving()
    lr_scheduler.CyclicLR(optimizer, 0.1, 1.0, step_size_up=2, scale_fn=other).load_state_dict(state)
    assert other.calls == scale.calls
    assert lr_scheduler.CyclicLR(optimizer, 0.1, 1.0, scale_fn=lambda x: 1.0).state_dict()["_scale_fn_custom"] is None


def test_cyclic_lr_sets_adams_beta1():
    optimizer = optim.Adam([nn.Parameter(np.ones(2))], betas=(0.5, 0.99))
    scheduler = lr_scheduler.CyclicLR(optimizer, 0.01, 0.1, step_size_up=1, base_momentum=0.7, max_momentum=0.95)
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.99)
    scheduler.step()
    assert optimizer.param_groups[0]["betas"] == (0.7, 0.99) and scheduler.get_last_lr() == [0.1]


# ================================================================ signatures and bad arguments

SCHEDULERS = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
              "ExponentialLR", "SequentialLR", "PolynomialLR", "CosineAnnealingLR", "ChainedScheduler",
              "ReduceLROnPlateau", "CyclicLR", "CosineAnnealingWarmRestarts", "OneCycleLR"]


@pytest.mark.parametrize("name", SCHEDULERS)
def test_signatures_equal_torch(name):
    """The same argument names, order, kinds and defaults, for the constructor and step."""
    for method in ["__init__", "step"]:
        ours = inspect.signature(getattr(getattr(lr_scheduler, name), method)).parameters
        theirs = inspect.signature(getattr(getattr(tsched, name), method)).parameters
        assert [(k, p.kind, p.default) for k, p in ours.items()] == \
               [(k, p.kind, p.default) for k, p in theirs.items()], method


def two_groups(o):
    params = [nn.Parameter(np.ones(2)) for _ in range(2)] if o is optim else \
        [torch.ones(2, requires_grad=True) for _ in range(2)]
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.03}]


def chain_an_optimizer(s, optimizer):
    return s.ChainedScheduler([optimizer], optimizer=optimizer)


# (make(lr_scheduler module, optim module), exception, our message); PyTorch raises the same type
ERRORS = {
    "ConstantLR factor": (lambda s, o: s.ConstantLR(o.SGD(two_groups(o), lr=0.1), factor=1.5), ValueError,
                          r"ConstantLR: factor must be in \[0, 1\], got 1.5"),
    "MultiplicativeLR not callable": (lambda s, o: s.MultiplicativeLR(o.SGD(two_groups(o), lr=0.1), 0.9), TypeError,
                                      "MultiplicativeLR: lr_lambda must be a function of the epoch, got float"),
    "MultiplicativeLR lambdas per group": (lambda s, o: s.MultiplicativeLR(o.SGD(two_groups(o)), [LAMBDAS[0]]),
                                           ValueError, "MultiplicativeLR: lr_lambda must be a number or a list of 2"),
    "CyclicLR without momentum": (lambda s, o: s.CyclicLR(o.Adagrad(two_groups(o)), 0.01, 0.1), ValueError,
                                  "CyclicLR: cycle_momentum needs an optimizer with momentum or betas, got Adagrad"),
    "CyclicLR mode": (lambda s, o: s.CyclicLR(o.SGD(two_groups(o)), 0.01, 0.1, mode="square"), ValueError,
                      "CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range'"),
    "CyclicLR base_lr per group": (lambda s, o: s.CyclicLR(o.SGD(two_groups(o)), [0.01] * 3, 0.1), ValueError,
                                   r"CyclicLR: base_lr must be a number or a list of 2 \(one per param group\)"),
    "CyclicLR max_momentum per group": (lambda s, o: s.CyclicLR(o.SGD(two_groups(o)), 0.01, 0.1,
                                                                max_momentum=[0.9]), ValueError,
                                        "CyclicLR: max_momentum must be a number or a list of 2"),
    "ChainedScheduler empty": (lambda s, o: s.ChainedScheduler([]), ValueError,
                               "ChainedScheduler: schedulers must hold at least one scheduler, got none"),
    "ChainedScheduler ReduceLROnPlateau": (
        lambda s, o: s.ChainedScheduler([s.ReduceLROnPlateau(o.SGD(two_groups(o), lr=0.1))]), ValueError,
        r"ChainedScheduler: schedulers\[0\] is a ReduceLROnPlateau"),
    "ChainedScheduler another optimizer": (
        lambda s, o: s.ChainedScheduler([s.ExponentialLR(o.SGD(two_groups(o), lr=0.1), 0.9),
                                         s.ExponentialLR(o.SGD(two_groups(o), lr=0.1), 0.9)]), ValueError,
        r"ChainedScheduler: schedulers\[1\] \(ExponentialLR\) belongs to another optimizer"),
    "ChainedScheduler not a scheduler": (lambda s, o: chain_an_optimizer(s, o.SGD(two_groups(o))), TypeError,
                                         r"ChainedScheduler: schedulers\[0\] must be an LRScheduler, got SGD"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_arguments(case):
    make, error, message = ERRORS[case]
    with pytest.raises(error, match=message):
        make(lr_scheduler, optim)
    with pytest.raises(error):
        make(tsched, torch.optim)


def test_cyclic_lr_without_momentum_cycling_takes_any_optimizer():
    for o, s in [(optim, lr_scheduler), (torch.optim, tsched)]:
        optimizer = o.Adagrad(two_groups(o))
        scheduler = s.CyclicLR(optimizer, 0.01, 0.1, step_size_up=2, cycle_momentum=False)
        optimizer.step()
        scheduler.step()
        assert [g["lr"] for g in optimizer.param_groups] == scheduler.get_last_lr() == pytest.approx([0.055, 0.055])
