"""The rest of torch.optim against PyTorch: RMSprop, Adagrad, Adadelta, NAdam, RAdam, SGD's and Adam's
`maximize` and `amsgrad`, the signatures and the foreach/fused/capturable/differentiable flags,
add_param_group, state_dict round trips, and the schedulers (more in test_schedulers_torch.py).

Optimizers: the same float64 parameters in two param groups with different lrs, the same sequence of
NumPy gradients set as `p.grad` in both libraries (some steps leave a parameter without one), built by
the same call (`make(optim, groups)` and `make(torch.optim, groups)`), compared after every step.
PyTorch runs with float64 as its default dtype, so that its scalar state (NAdam's mu_product) is a
float64 as ours; with float32, its NAdam drifts from the exact update by ~1e-7.
"""
from __future__ import annotations

import contextlib
import inspect
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.optim import lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 3, 2)]
STEPS = 24
SECOND_LR = 0.02  # the second group's lr; the first takes the constructor's
NO_GRAD_AT = {(4, 1), (5, 1), (9, 2)}  # (step, parameter) without a gradient: no update, no state change


@contextlib.contextmanager
def torch_float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def two_groups(params: list) -> list[dict]:
    return [{"params": params[:1]}, {"params": params[1:], "lr": SECOND_LR}]


def gradients(shapes, steps: int, seed: int) -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    """Initial arrays and, for every step, one gradient per parameter (None: none this step)."""
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s) for s in shapes]
    grads = [[None if (step, i) in NO_GRAD_AT else rng.standard_normal(s) for i, s in enumerate(shapes)]
             for step in range(steps)]
    return initial, grads


def set_grads(ours: list, theirs: list, grads: list[np.ndarray | None]) -> None:
    for p, q, g in zip(ours, theirs, grads):
        p.grad = None if g is None else Tensor(g.copy())
        q.grad = None if g is None else torch.from_numpy(g.copy())


def assert_close(ours: list, theirs: list, what: str) -> None:
    for i, (p, q) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"parameter {i} {what}")


def check_against_torch(make, shapes=SHAPES, steps: int = STEPS, seed: int = 0) -> tuple:
    """make(optim, groups) and make(torch.optim, groups) take the same steps; returns both optimizers."""
    initial, grads = gradients(shapes, steps, seed)
    ours = [nn.Parameter(a.copy()) for a in initial]
    with torch_float64_default():
        theirs = [torch.tensor(a, requires_grad=True) for a in initial]
        optimizer, torch_optimizer = make(optim, two_groups(ours)), make(torch.optim, two_groups(theirs))
        for step, step_grads in enumerate(grads):
            set_grads(ours, theirs, step_grads)
            optimizer.step()
            torch_optimizer.step()
            assert_close(ours, theirs, f"after step {step + 1}")
    moved = [not np.allclose(p.detach().numpy(), a) for p, a in zip(ours, initial) if p.numel()]
    assert any(moved), "the parameters did not move"
    return optimizer, torch_optimizer


# ================================================================ optimizers over a grid of options

def grid(name: str, **options: list) -> dict[str, object]:
    """{case id: make(optim_module, groups)} for every combination of the options."""
    cases = {}
    for values in itertools.product(*options.values()):
        kwargs = dict(zip(options, values))
        if kwargs.get("nesterov") and (not kwargs.get("momentum") or kwargs.get("dampening")):
            continue
        cases[f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"] = (
            lambda o, groups, kwargs=kwargs: getattr(o, name)(groups, **kwargs))
    return cases


GRID = {
    **grid("SGD", lr=[0.05], momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
           weight_decay=[0.0, 0.1], maximize=[False, True]),
    **grid("Adam", lr=[0.01], weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True],
           decoupled_weight_decay=[False, True]),
    **grid("AdamW", betas=[(0.8, 0.95)], amsgrad=[False, True], maximize=[False, True]),
    **grid("RMSprop", alpha=[0.99, 0.6], eps=[1e-8, 1e-2], weight_decay=[0.0, 0.1], momentum=[0.0, 0.9],
           centered=[False, True], maximize=[False, True]),
    **grid("Adagrad", lr=[0.1], lr_decay=[0.0, 0.05], weight_decay=[0.0, 0.1], initial_accumulator_value=[0.0, 0.5],
           eps=[1e-10, 1e-3], maximize=[False, True]),
    **grid("Adadelta", lr=[1.0, 0.3], rho=[0.9, 0.5], eps=[1e-6, 1e-2], weight_decay=[0.0, 0.1],
           maximize=[False, True]),
    **grid("NAdam", betas=[(0.9, 0.999), (0.5, 0.8)], weight_decay=[0.0, 0.1], momentum_decay=[4e-3, 0.2],
           decoupled_weight_decay=[False, True], maximize=[False, True]),
    # beta2 = 0.999 keeps rho_t <= 5 for the first steps (the SGD branch), 0.8 never gets above it
    **grid("RAdam", lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.9), (0.9, 0.8)], weight_decay=[0.0, 0.1],
           decoupled_weight_decay=[False, True], maximize=[False, True]),
}


@pytest.mark.parametrize("case", GRID)
def test_optimizer_equals_torch(case):
    check_against_torch(GRID[case])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam"])
def test_defaults_equal_torch(name):
    """PyTorch's defaults, lr included; the second group still has its own lr."""
    optimizer, torch_optimizer = check_against_torch(lambda o, groups: getattr(o, name)(groups))
    assert set(optimizer.defaults) <= set(torch_optimizer.defaults)
    for key, value in optimizer.defaults.items():
        assert torch_optimizer.defaults[key] == value, key


NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam"]


@pytest.mark.parametrize("name", NAMES)
def test_signatures_equal_torch(name):
    """The same argument names, order, kinds (positional or keyword-only) and defaults."""
    ours = inspect.signature(getattr(optim, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    assert [(k, p.kind, p.default) for k, p in ours.items()] == [(k, p.kind, p.default) for k, p in theirs.items()]


# ================================================================ foreach, fused, capturable, differentiable

FLAGS = {"foreach", "fused", "capturable", "differentiable"}


def flags_of(name: str) -> set[str]:
    """The implementation flags the optimizer `name` takes."""
    return FLAGS & set(inspect.signature(getattr(optim, name)).parameters)


FLAGGED = {f"{name}({flag}={value})": (name, {flag: value}) for name in NAMES for flag, value in
           [("foreach", True), ("foreach", False), ("fused", True), ("fused", False)] if flag in flags_of(name)}


@pytest.mark.parametrize("case", FLAGGED)
def test_foreach_and_fused_compute_the_same_update(case):
    """PyTorch runs its foreach or fused loop; ours is the one NumPy loop: the same parameters."""
    name, flags = FLAGGED[case]
    optimizer, torch_optimizer = check_against_torch(lambda o, groups: getattr(o, name)(groups, lr=0.01, **flags))
    for flag, value in flags.items():
        assert optimizer.defaults[flag] == torch_optimizer.defaults[flag] == value
    assert_state_dicts_match(optimizer.state_dict(), torch_optimizer.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_flags_refused_as_torch(name):
    """fused with differentiable or foreach: RuntimeError when built. capturable (needs CUDA) and
    differentiable (leaf parameters cannot be updated in place in the graph): RuntimeError at
    step(), where PyTorch raises (AssertionError for capturable). A flag the optimizer lacks: TypeError."""
    flags = flags_of(name)
    refused_when_built = [({"fused": True, "differentiable": True}, "fused=True does not support differentiable=True"),
                          ({"fused": True, "foreach": True}, "fused=True and foreach=True cannot be used together")]
    for kwargs, message in refused_when_built:
        if set(kwargs) <= flags:
            with pytest.raises(RuntimeError, match=f"{name}: {message}"):
                getattr(optim, name)(p(), **kwargs)
            with pytest.raises(RuntimeError):
                getattr(torch.optim, name)(tp(), **kwargs)
    for flag, torch_error in [("capturable", AssertionError), ("differentiable", RuntimeError)]:
        if flag not in flags:
            continue
        ours, theirs = p(), tp()
        optimizer, torch_optimizer = getattr(optim, name)(ours, **{flag: True}), getattr(torch.optim, name)(
            theirs, **{flag: True})
        ours[0].grad, theirs[0].grad = Tensor(np.ones(2)), torch.ones(2)
        with pytest.raises(RuntimeError, match=f"{name}: {flag}=True needs "):
            optimizer.step()
        with pytest.raises(torch_error):
            torch_optimizer.step()
        np.testing.assert_array_equal(ours[0].detach().numpy(), np.ones(2))  # nothing moved
    for flag in FLAGS - flags:
        with pytest.raises(TypeError):
            getattr(optim, name)(p(), **{flag: False})
        with pytest.raises(TypeError):
            getattr(torch.optim, name)(tp(), **{flag: False})


# ================================================================ any hyperparameters and shapes

unit = st.floats(0.0, 0.99)
decay = st.sampled_from([0.0, 1e-3, 0.1])
HYPERPARAMETERS = {
    "SGD": st.fixed_dictionaries(dict(lr=st.floats(1e-3, 0.3), momentum=unit, dampening=st.sampled_from([0.0, 0.5]),
                                      weight_decay=decay, maximize=st.booleans())),
    "Adam": st.fixed_dictionaries(dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(unit, st.floats(0.5, 0.9999)),
                                       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=decay,
                                       amsgrad=st.booleans(), maximize=st.booleans(),
                                       decoupled_weight_decay=st.booleans())),
    "RMSprop": st.fixed_dictionaries(dict(lr=st.floats(1e-4, 0.1), alpha=st.floats(0.5, 0.999),
                                          eps=st.sampled_from([1e-8, 1e-3]), weight_decay=decay, momentum=unit,
                                          centered=st.booleans(), maximize=st.booleans())),
    "Adagrad": st.fixed_dictionaries(dict(lr=st.floats(1e-3, 0.5), lr_decay=st.floats(0.0, 0.5), weight_decay=decay,
                                          initial_accumulator_value=st.floats(0.0, 2.0),
                                          eps=st.sampled_from([1e-10, 1e-3]), maximize=st.booleans())),
    "Adadelta": st.fixed_dictionaries(dict(lr=st.floats(0.01, 2.0), rho=st.floats(0.0, 0.99),
                                           eps=st.sampled_from([1e-6, 1e-3]), weight_decay=decay,
                                           maximize=st.booleans())),
    "NAdam": st.fixed_dictionaries(dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(unit, st.floats(0.5, 0.9999)),
                                        weight_decay=decay, momentum_decay=st.floats(0.0, 0.5),
                                        decoupled_weight_decay=st.booleans(), maximize=st.booleans())),
    "RAdam": st.fixed_dictionaries(dict(lr=st.floats(1e-4, 0.1), betas=st.tuples(unit, st.floats(0.5, 0.9999)),
                                        weight_decay=decay, decoupled_weight_decay=st.booleans(),
                                        maximize=st.booleans())),
}


@pytest.mark.parametrize("name", HYPERPARAMETERS)
@settings(max_examples=25)
@given(data=st.data(), shapes=st.lists(array_shapes(min_dims=0, max_dims=3, max_side=4), min_size=2, max_size=3),
       seed=st.integers(0, 2**16))
def test_optimizer_equals_torch_for_any_hyperparameters_and_shapes(name, data, shapes, seed):
    kwargs = data.draw(HYPERPARAMETERS[name], label="kwargs")
    check_against_torch(lambda o, groups: getattr(o, name)(groups, **kwargs), shapes, steps=20, seed=seed)


# ================================================================ add_param_group

ADDABLE = {
    "SGD momentum": lambda o, ps, **kw: o.SGD(ps, lr=0.05, momentum=0.9, **kw),
    "Adam amsgrad": lambda o, ps, **kw: o.Adam(ps, lr=0.02, amsgrad=True, **kw),
    # the added group's sums start at the constructor's initial_accumulator_value, not its own (as PyTorch)
    "Adagrad": lambda o, ps, **kw: o.Adagrad(ps, initial_accumulator_value=0.3, **kw),
    "NAdam": lambda o, ps, **kw: o.NAdam(ps, **kw),
}


@pytest.mark.parametrize("case", ADDABLE)
def test_add_param_group_equals_torch(case):
    """A group added after some steps takes the next state indices, its own options and the defaults."""
    make = ADDABLE[case]
    initial, grads = gradients(SHAPES, 12, seed=1)
    ours = [nn.Parameter(a.copy()) for a in initial]
    with torch_float64_default():
        theirs = [torch.tensor(a, requires_grad=True) for a in initial]
        optimizer, torch_optimizer = make(optim, ours[:2]), make(torch.optim, theirs[:2])
        for step, step_grads in enumerate(grads):
            if step == 5:
                for o, ps in [(optimizer, ours), (torch_optimizer, theirs)]:
                    o.add_param_group({"params": ps[2:], "lr": 0.1, "initial_accumulator_value": 2.0})
            set_grads(ours, theirs, step_grads)
            optimizer.step()
            torch_optimizer.step()
            assert_close(ours, theirs, f"after step {step + 1}")
    assert_state_dicts_match(optimizer.state_dict(), torch_optimizer.state_dict())


def test_add_param_group_errors():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    optimizer = optim.Adam([a])
    with pytest.raises(ValueError, match=r"Adam: a parameter of shape \(2,\) appears twice"):
        optimizer.add_param_group({"params": [b, a]})
    with pytest.raises(TypeError, match=r"Adam: params must be an ordered collection \(a list\), not a set"):
        optimizer.add_param_group({"params": {b}})
    with pytest.raises(TypeError, match="Adam.add_param_group: param_group must be a dict with a 'params' key, "
                                        "got list"):
        optimizer.add_param_group([b])
    assert len(optimizer.param_groups) == 1  # nothing half-added
    optimizer.add_param_group({"params": b, "betas": (0.5, 0.6)})
    assert optimizer.param_groups[1]["params"] == [b] and optimizer.param_groups[1]["betas"] == (0.5, 0.6)
    assert optimizer.param_groups[1]["lr"] == 1e-3


# ================================================================ state_dict

def assert_state_dicts_match(state: dict, torch_state: dict) -> None:
    """Torch's layout: parameter indices over all groups, the same state names and values."""
    assert sorted(state["state"]) == sorted(torch_state["state"])
    for i, s in state["state"].items():
        assert sorted(s) == sorted(torch_state["state"][i]), i
        for name, value in s.items():
            np.testing.assert_allclose(value, np.asarray(torch_state["state"][i][name]), rtol=1e-10, atol=1e-12,
                                       err_msg=f"state {i} {name}")
    assert len(state["param_groups"]) == len(torch_state["param_groups"])
    for group, torch_group in zip(state["param_groups"], torch_state["param_groups"]):
        for key, value in group.items():
            assert torch_group[key] == value, key


RESUMABLE = {
    "SGD nesterov maximize": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, maximize=True),
    "SGD plain": lambda o, ps: o.SGD(ps, lr=0.05),
    "Adam amsgrad": lambda o, ps: o.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.1),
    "AdamW amsgrad": lambda o, ps: o.AdamW(ps, amsgrad=True),
    "RMSprop centered momentum": lambda o, ps: o.RMSprop(ps, momentum=0.5, centered=True, weight_decay=0.01),
    "RMSprop": lambda o, ps: o.RMSprop(ps),
    "Adagrad": lambda o, ps: o.Adagrad(ps, lr_decay=0.1, initial_accumulator_value=0.2),
    "Adadelta": lambda o, ps: o.Adadelta(ps, rho=0.8, weight_decay=0.1),
    "NAdam decoupled": lambda o, ps: o.NAdam(ps, weight_decay=0.1, decoupled_weight_decay=True),
    "RAdam": lambda o, ps: o.RAdam(ps, betas=(0.9, 0.9)),
}


@pytest.mark.parametrize("case", RESUMABLE)
def test_state_dict_matches_torch(case):
    optimizer, torch_optimizer = check_against_torch(lambda o, groups: RESUMABLE[case](o, groups), steps=6)
    assert_state_dicts_match(optimizer.state_dict(), torch_optimizer.state_dict())


@pytest.mark.parametrize("case", RESUMABLE)
def test_resuming_from_state_dict_takes_the_same_steps(case):
    """Save after k steps, load into a fresh optimizer (other hyperparameters), continue: the same
    parameters, bit for bit, as the run that went on; the saved state is a snapshot."""
    make, k = RESUMABLE[case], 7
    initial, grads = gradients(SHAPES, 16, seed=2)

    def run(optimizer, params, steps):
        for step_grads in steps:
            for p, g in zip(params, step_grads):
                p.grad = None if g is None else Tensor(g.copy())
            optimizer.step()

    params = [nn.Parameter(a.copy()) for a in initial]
    optimizer = make(optim, two_groups(params))
    run(optimizer, params, grads[:k])
    saved = optimizer.state_dict()
    copies = [nn.Parameter(p.detach().numpy().copy()) for p in params]
    resumed = make(optim, [{"params": copies[:1], "lr": 123.0}, {"params": copies[1:], "lr": 456.0}])
    resumed.load_state_dict(saved)
    run(optimizer, params, grads[k:])
    snapshot = {i: {name: np.copy(v) for name, v in s.items()} for i, s in saved["state"].items()}
    run(resumed, copies, grads[k:])
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    for i, s in saved["state"].items():  # neither run wrote into the saved state
        for name, value in s.items():
            np.testing.assert_array_equal(value, snapshot[i][name], err_msg=f"state {i} {name}")
    assert resumed.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


def test_step_with_closure_returns_its_loss():
    """As PyTorch: the closure runs with grad enabled (even under no_grad) and step returns its loss."""
    from tinygrad_cnn import no_grad

    w = nn.Parameter(np.array([1.0, -2.0]))
    optimizer = optim.SGD([w], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with no_grad():
        loss = optimizer.step(closure)
    assert float(loss.item()) == 5.0
    np.testing.assert_allclose(w.detach().numpy(), [0.8, -1.6])


# ================================================================ schedulers: lrs against torch

def scheduled(o, s, make, params, optimizer: str = "SGD"):
    groups = [{"params": params[:1]}, {"params": params[1:], "lr": 0.03}]
    opt = o.SGD(groups, lr=0.1, momentum=0.9) if optimizer == "SGD" else o.Adam(groups, lr=0.1)
    return opt, make(s, opt)


SCHEDULERS = {
    "MultiStepLR": lambda s, o: s.MultiStepLR(o, milestones=[3, 7, 12], gamma=0.5),
    "MultiStepLR repeated milestone": lambda s, o: s.MultiStepLR(o, milestones=[9, 4, 4], gamma=0.3),
    "ExponentialLR": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "LambdaLR": lambda s, o: s.LambdaLR(o, lambda epoch: 1 / (1 + epoch) ** 0.5),
    "LambdaLR per group": lambda s, o: s.LambdaLR(o, [lambda e: 0.95 ** e, lambda e: 1 + e % 3]),
    "LinearLR warmup": lambda s, o: s.LinearLR(o, start_factor=0.1, total_iters=8),
    "LinearLR decay": lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=10),
    "LinearLR defaults": lambda s, o: s.LinearLR(o),
    "LinearLR total_iters=0": lambda s, o: s.LinearLR(o, start_factor=0.5, total_iters=0),
    "CosineAnnealingWarmRestarts": lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=5),
    "CosineAnnealingWarmRestarts T_mult": lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-3),
    "SequentialLR warmup, cosine": lambda s, o: s.SequentialLR(
        o, [s.LinearLR(o, start_factor=0.2, total_iters=4), s.CosineAnnealingLR(o, T_max=10, eta_min=0.001)], [5]),
    "SequentialLR three": lambda s, o: s.SequentialLR(
        o, [s.ExponentialLR(o, gamma=0.8), s.StepLR(o, step_size=2, gamma=0.5),
            s.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2)], milestones=[4, 11]),
    "SequentialLR milestone 0": lambda s, o: s.SequentialLR(
        o, [s.ExponentialLR(o, gamma=0.5), s.MultiStepLR(o, [2, 5])], milestones=[0]),
    "OneCycleLR": lambda s, o: s.OneCycleLR(o, max_lr=0.5, total_steps=30),
    "OneCycleLR linear, per-group max_lr": lambda s, o: s.OneCycleLR(
        o, max_lr=[0.4, 0.2], epochs=6, steps_per_epoch=5, anneal_strategy="linear", pct_start=0.25),
    "OneCycleLR three_phase": lambda s, o: s.OneCycleLR(
        o, max_lr=1.0, total_steps=30, three_phase=True, base_momentum=[0.8, 0.7], max_momentum=0.9,
        div_factor=10.0, final_div_factor=100.0),
    "OneCycleLR no momentum": lambda s, o: s.OneCycleLR(o, max_lr=0.5, total_steps=30, cycle_momentum=False),
}


def momenta(optimizer) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("case", SCHEDULERS)
def test_scheduler_lrs_and_momenta_equal_torch(case, optimizer):
    make = SCHEDULERS[case]
    ours, scheduler = scheduled(optim, lr_scheduler, make, [nn.Parameter(np.ones(2)) for _ in range(2)], optimizer)
    theirs, torch_scheduler = scheduled(torch.optim, torch.optim.lr_scheduler, make,
                                        [torch.ones(2, requires_grad=True) for _ in range(2)], optimizer)
    for epoch in range(31 if "OneCycleLR" in case else 40):
        assert scheduler.get_last_lr() == pytest.approx(torch_scheduler.get_last_lr(), rel=1e-12, abs=1e-15), epoch
        assert [g["lr"] for g in ours.param_groups] == scheduler.get_last_lr()
        assert momenta(ours) == pytest.approx(momenta(theirs), rel=1e-12), epoch
        if epoch < 30 or "OneCycleLR" not in case:
            ours.step()
            theirs.step()
            scheduler.step()
            torch_scheduler.step()
    if "OneCycleLR" in case:  # stepped total_steps times: one more is past the end
        with pytest.raises(ValueError):
            torch_scheduler.step()
        with pytest.raises(ValueError, match="OneCycleLR: stepped 31 times, past total_steps=30"):
            scheduler.step()


PLATEAUS = {
    "defaults": dict(),
    "min rel": dict(factor=0.5, patience=2, threshold=0.05),
    "min abs cooldown": dict(factor=0.5, patience=1, threshold=0.1, threshold_mode="abs", cooldown=2),
    "max rel min_lr": dict(mode="max", factor=0.3, patience=0, min_lr=0.004),
    "max abs min_lr per group": dict(mode="max", factor=0.2, patience=1, threshold_mode="abs", min_lr=[0.01, 0.0]),
    "eps": dict(factor=0.9, patience=0, eps=0.005),
}


def metric_sequence(n: int = 80, seed: int = 3) -> list[float]:
    """A noisy loss curve that improves, stalls, improves again, and goes negative."""
    rng = np.random.default_rng(seed)
    trend = np.concatenate([np.linspace(2.0, 1.0, 20), np.full(25, 1.0), np.linspace(1.0, -0.5, 15), np.full(20, -0.5)])
    return list(trend[:n] + 0.05 * rng.standard_normal(n))


@pytest.mark.parametrize("case", PLATEAUS)
def test_reduce_lr_on_plateau_equals_torch(case):
    kwargs = PLATEAUS[case]
    ours, scheduler = scheduled(optim, lr_scheduler, lambda s, o: s.ReduceLROnPlateau(o, **kwargs),
                                [nn.Parameter(np.ones(2)) for _ in range(2)])
    theirs, torch_scheduler = scheduled(torch.optim, torch.optim.lr_scheduler,
                                        lambda s, o: s.ReduceLROnPlateau(o, **kwargs),
                                        [torch.ones(2, requires_grad=True) for _ in range(2)])
    lrs = []
    for epoch, metric in enumerate(metric_sequence()):
        scheduler.step(metric)
        torch_scheduler.step(torch.tensor(metric))
        assert scheduler.get_last_lr() == torch_scheduler.get_last_lr(), epoch
        assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in theirs.param_groups], epoch
        assert (scheduler.num_bad_epochs, scheduler.cooldown_counter, scheduler.best) == (
            torch_scheduler.num_bad_epochs, torch_scheduler.cooldown_counter, torch_scheduler.best), epoch
        lrs.append(scheduler.get_last_lr()[0])
    assert len(set(lrs)) > 1, "the lr never changed: the case tests nothing"


# ================================================================ schedulers: state_dict round trips

class Halving:
    """A callable object as lr_lambda: LambdaLR's state_dict keeps its attributes."""

    def __init__(self) -> None:
        self.epochs_seen: list[int] = []

    def __call__(self, epoch: int) -> float:
        self.epochs_seen.append(epoch)
        return 0.5 ** (epoch // 3)


RESUMABLE_SCHEDULERS = {
    **SCHEDULERS,
    "LambdaLR callable object": lambda s, o: s.LambdaLR(o, Halving()),
    "ReduceLROnPlateau": lambda s, o: s.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1, min_lr=[0.01, 0.0]),
}


@pytest.mark.parametrize("case", RESUMABLE_SCHEDULERS)
def test_scheduler_resumes_from_state_dict(case):
    """Save optimizer and scheduler after k steps, load both into fresh ones, continue: the same lrs
    (and momenta) as the run that went on."""
    make, k = RESUMABLE_SCHEDULERS[case], 8
    metrics = metric_sequence(30, seed=4)

    def step(optimizer, scheduler, epoch):
        optimizer.step()
        scheduler.step(metrics[epoch]) if case == "ReduceLROnPlateau" else scheduler.step()

    def fresh():
        return scheduled(optim, lr_scheduler, make, [nn.Parameter(np.ones(2)) for _ in range(2)])

    optimizer, scheduler = fresh()
    for epoch in range(k):
        step(optimizer, scheduler, epoch)
    saved_optimizer, saved_scheduler = optimizer.state_dict(), scheduler.state_dict()
    resumed_optimizer, resumed = fresh()
    for _ in range(3):  # a resumed scheduler's own steps are overwritten by the load
        step(resumed_optimizer, resumed, 0)
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    if case == "LambdaLR callable object":  # its attributes are loaded; loading calls nothing (as PyTorch)
        assert resumed.lr_lambdas[0].epochs_seen == scheduler.lr_lambdas[0].epochs_seen
        assert resumed.lr_lambdas[0] is not scheduler.lr_lambdas[0]
    for epoch in range(k, 30):
        assert resumed.get_last_lr() == scheduler.get_last_lr(), epoch
        assert [g["lr"] for g in resumed_optimizer.param_groups] == scheduler.get_last_lr(), epoch
        assert momenta(resumed_optimizer) == momenta(optimizer), epoch
        step(optimizer, scheduler, epoch)
        step(resumed_optimizer, resumed, epoch)


def test_sequential_lr_state_dict_nests_its_schedulers():
    optimizer = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    scheduler = lr_scheduler.SequentialLR(optimizer, [lr_scheduler.ExponentialLR(optimizer, gamma=0.5),
                                                      lr_scheduler.LambdaLR(optimizer, lambda e: e)], milestones=[2])
    state = scheduler.state_dict()
    assert "optimizer" not in state and [s["gamma"] for s in state["_schedulers"][:1]] == [0.5]
    assert state["_schedulers"][1]["lr_lambdas"] == [None]  # a function is not saved


# ================================================================ bad arguments

def p() -> list:
    return [nn.Parameter(np.ones(2))]


def tp() -> list:
    return [torch.ones(2, requires_grad=True)]


# (make(optim module, params), the exception, our message); PyTorch raises the same type for each
OPTIMIZER_ERRORS = {
    "RMSprop alpha": (lambda o, ps: o.RMSprop(ps, alpha=-1), ValueError, "RMSprop: alpha must be >= 0, got -1"),
    "RMSprop momentum": (lambda o, ps: o.RMSprop(ps, momentum=-0.5), ValueError,
                         "RMSprop: momentum must be >= 0, got -0.5"),
    "RMSprop eps": (lambda o, ps: o.RMSprop(ps, eps=-1e-8), ValueError, "RMSprop: eps must be >= 0, got -1e-08"),
    "Adagrad lr_decay": (lambda o, ps: o.Adagrad(ps, lr_decay=-0.1), ValueError,
                         "Adagrad: lr_decay must be >= 0, got -0.1"),
    "Adagrad initial_accumulator_value": (lambda o, ps: o.Adagrad(ps, initial_accumulator_value=-1.0), ValueError,
                                          "Adagrad: initial_accumulator_value must be >= 0, got -1.0"),
    "Adadelta rho": (lambda o, ps: o.Adadelta(ps, rho=1.5), ValueError, r"Adadelta: rho must be in \[0, 1\], got 1.5"),
    "Adadelta lr": (lambda o, ps: o.Adadelta(ps, lr=-1.0), ValueError, "Adadelta: lr must be >= 0, got -1.0"),
    "NAdam momentum_decay": (lambda o, ps: o.NAdam(ps, momentum_decay=-1.0), ValueError,
                             "NAdam: momentum_decay must be >= 0, got -1.0"),
    "NAdam betas": (lambda o, ps: o.NAdam(ps, betas=(1.0, 0.9)), ValueError, r"NAdam: invalid .*betas=\(1.0, 0.9\)"),
    "RAdam weight_decay": (lambda o, ps: o.RAdam(ps, weight_decay=-1.0), ValueError,
                           "RAdam: invalid .*weight_decay=-1.0"),
    "Adam eps": (lambda o, ps: o.Adam(ps, eps=-1.0, amsgrad=True), ValueError, "Adam: invalid .*eps=-1.0"),
    "a single Tensor": (lambda o, ps: o.RMSprop(ps[0]), TypeError, "RMSprop: params must be an iterable"),
    "a set": (lambda o, ps: o.Adagrad([{"params": set(ps)}]), TypeError, "Adagrad: params must be an ordered"),
    "no parameters": (lambda o, ps: o.NAdam([]), ValueError, "NAdam: got an empty parameter list"),
    "not a Tensor": (lambda o, ps: o.RAdam([1.0]), TypeError, "RAdam: every parameter must be a Tensor"),
}


@pytest.mark.parametrize("case", OPTIMIZER_ERRORS)
def test_optimizer_bad_arguments(case):
    make, error, message = OPTIMIZER_ERRORS[case]
    with pytest.raises(error, match=message):
        make(optim, p())
    with pytest.raises(error):
        make(torch.optim, tp())


SCHEDULER_ERRORS = {
    "LinearLR start_factor": (lambda s, o: s.LinearLR(o, start_factor=0), ValueError,
                              r"LinearLR: start_factor must be in \(0, 1\], got 0"),
    "LinearLR end_factor": (lambda s, o: s.LinearLR(o, end_factor=1.5), ValueError,
                            r"LinearLR: end_factor must be in \[0, 1\], got 1.5"),
    "LambdaLR lambdas per group": (lambda s, o: s.LambdaLR(o, [lambda e: 1.0] * 3), ValueError,
                                   "LambdaLR: lr_lambda must be a number or a list of 2"),
    "LambdaLR not callable": (lambda s, o: s.LambdaLR(o, 0.5), TypeError,
                              "LambdaLR: lr_lambda must be a function of the epoch, got float"),
    "CosineAnnealingWarmRestarts T_0": (lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=0), ValueError,
                                        "CosineAnnealingWarmRestarts: T_0 must be a positive int, got 0"),
    "CosineAnnealingWarmRestarts float T_0": (lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2.5), ValueError,
                                              "T_0 must be a positive int, got 2.5"),
    "CosineAnnealingWarmRestarts T_mult": (lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
                                           ValueError, "CosineAnnealingWarmRestarts: T_mult must be an int >= 1"),
    "CosineAnnealingWarmRestarts eta_min": (lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"),
                                            ValueError, "CosineAnnealingWarmRestarts: eta_min must be a number"),
    "OneCycleLR no length": (lambda s, o: s.OneCycleLR(o, max_lr=0.1), ValueError,
                             "OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
    "OneCycleLR total_steps": (lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError,
                               "OneCycleLR: total_steps must be a positive int, got 0"),
    "OneCycleLR epochs": (lambda s, o: s.OneCycleLR(o, max_lr=0.1, epochs=-1, steps_per_epoch=3), ValueError,
                          "OneCycleLR: epochs must be a positive int, got -1"),
    "OneCycleLR pct_start": (lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=9, pct_start=1.5), ValueError,
                             r"OneCycleLR: pct_start must be a float in \[0, 1\], got 1.5"),
    "OneCycleLR anneal_strategy": (lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=9, anneal_strategy="exp"),
                                   ValueError, "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    "OneCycleLR max_lr per group": (lambda s, o: s.OneCycleLR(o, max_lr=[0.1], total_steps=9), ValueError,
                                    r"OneCycleLR: max_lr must be a number or a list of 2 \(one per param group\), "
                                    r"got \[0.1\]"),
    "ReduceLROnPlateau factor": (lambda s, o: s.ReduceLROnPlateau(o, factor=1.0), ValueError,
                                 "ReduceLROnPlateau: factor must be < 1, got 1.0"),
    "ReduceLROnPlateau mode": (lambda s, o: s.ReduceLROnPlateau(o, mode="lowest"), ValueError,
                               "ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'"),
    "ReduceLROnPlateau threshold_mode": (lambda s, o: s.ReduceLROnPlateau(o, threshold_mode="x"), ValueError,
                                         "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'x'"),
    "ReduceLROnPlateau min_lr per group": (lambda s, o: s.ReduceLROnPlateau(o, min_lr=[0.1, 0.2, 0.3]), ValueError,
                                           "ReduceLROnPlateau: min_lr must be a number or a list of 2"),
    "SequentialLR milestones": (lambda s, o: s.SequentialLR(o, [s.ExponentialLR(o, 0.5)], milestones=[3]),
                                ValueError, r"SequentialLR: milestones must be 0 epochs .*, got \[3\]"),
    "SequentialLR no schedulers": (lambda s, o: s.SequentialLR(o, [], milestones=[]), ValueError,
                                   "SequentialLR: schedulers must hold at least one scheduler"),
    "SequentialLR ReduceLROnPlateau": (lambda s, o: s.SequentialLR(o, [s.ExponentialLR(o, 0.5),
                                                                      s.ReduceLROnPlateau(o)], [2]),
                                       ValueError, r"SequentialLR: schedulers\[1\] is a ReduceLROnPlateau"),
    "SequentialLR not a scheduler": (lambda s, o: s.SequentialLR(o, [o], []), TypeError,
                                     r"SequentialLR: schedulers\[0\] must be an LRScheduler, got SGD"),
    "not an optimizer": (lambda s, o: s.ExponentialLR(o.param_groups, 0.5), TypeError,
                         "ExponentialLR: optimizer must be an Optimizer, got list"),
}


@pytest.mark.parametrize("case", SCHEDULER_ERRORS)
def test_scheduler_bad_arguments(case):
    make, error, message = SCHEDULER_ERRORS[case]
    with pytest.raises(error, match=message):
        scheduled(optim, lr_scheduler, make, p() + p())
    with pytest.raises(error):
        scheduled(torch.optim, torch.optim.lr_scheduler, make, tp() + tp())


def test_sequential_lr_schedulers_of_another_optimizer():
    ours, other = (optim.SGD([nn.Parameter(np.ones(2))], lr=0.1) for _ in range(2))
    with pytest.raises(ValueError, match=r"SequentialLR: schedulers\[0\] \(ExponentialLR\) belongs to another"):
        lr_scheduler.SequentialLR(ours, [lr_scheduler.ExponentialLR(other, 0.5)], milestones=[])


def test_one_cycle_needs_momentum_to_cycle():
    optimizer = optim.Adagrad([nn.Parameter(np.ones(2))])
    with pytest.raises(ValueError, match="OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, "
                                         "got Adagrad"):
        lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError):
        torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adagrad(tp()), max_lr=0.1, total_steps=10)
    scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10, cycle_momentum=False)
    assert math.isclose(scheduler.get_last_lr()[0], 0.1 / 25)
