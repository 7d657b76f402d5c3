"""tinygrad_cnn.optim against torch.optim: the same parameters and the same gradients through
both optimizers, built by the same call (`make(optim, params)` and `make(torch.optim, params)`),
compared after every step in float64; state_dict round trips; the schedulers' lr sequences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn import functional as F

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 3, 2)]
NO_GRAD_AT = {(2, 3), (2, 4)}  # (parameter, step) pairs without a gradient: both optimizers must skip them


def gradient(p: np.ndarray, step: int) -> np.ndarray:
    """A bounded gradient that depends on the parameter and the step, so that the steps differ."""
    return np.sin(3 * p + step) + 0.5 * np.tanh(p)


def initial_arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def set_gradients(ours: list[Tensor], theirs: list, step: int) -> None:
    for i, (p, q) in enumerate(zip(ours, theirs)):
        if (i, step) in NO_GRAD_AT:
            p.grad, q.grad = None, None
        else:
            p.grad = Tensor(gradient(p.detach().numpy(), step))
            q.grad = torch.from_numpy(gradient(q.detach().numpy(), step))


def assert_params_equal(ours: list[Tensor], theirs: list, what: str) -> None:
    for i, (p, q) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"parameter {i} {what}")


def check_against_torch(make, steps: int = 10) -> None:
    """make(optim, params) and make(torch.optim, params) take the same steps."""
    arrays = initial_arrays()
    ours = [nn.Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    optimizer, torch_optimizer = make(optim, ours), make(torch.optim, theirs)
    for step in range(steps):
        set_gradients(ours, theirs, step)
        optimizer.step()
        torch_optimizer.step()
        assert_params_equal(ours, theirs, f"after step {step + 1}")
    assert not np.allclose(ours[0].detach().numpy(), arrays[0]), "the parameters did not move"


# ================================================================ SGD

SGD_CASES = {
    "plain": lambda o, ps: o.SGD(ps, lr=0.1),
    "momentum": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.9),
    "momentum with dampening": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.9, dampening=0.3),
    "nesterov": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
    "weight decay": lambda o, ps: o.SGD(ps, lr=0.1, weight_decay=0.1),
    "all": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.05),
    "param groups": lambda o, ps: o.SGD([{"params": ps[:1], "lr": 0.3},
                                         {"params": ps[1:], "momentum": 0.5, "weight_decay": 0.2}],
                                        lr=0.05, momentum=0.9),
    "a group given one Tensor": lambda o, ps: o.SGD([{"params": ps[0]}, {"params": ps[1:], "lr": 0.2}], lr=0.1),
}


@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_equals_torch(case):
    check_against_torch(SGD_CASES[case])


@st.composite
def sgd_hyperparameters(draw) -> dict:
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]))
    nesterov = momentum > 0 and draw(st.booleans())
    return dict(lr=draw(st.floats(1e-3, 0.5)), momentum=momentum, nesterov=nesterov,
                dampening=0.0 if nesterov else draw(st.sampled_from([0.0, 0.1, 0.5])),
                weight_decay=draw(st.sampled_from([0.0, 1e-4, 0.1])))


@settings(max_examples=25)
@given(sgd_hyperparameters())
def test_sgd_equals_torch_for_any_hyperparameters(kwargs):
    check_against_torch(lambda o, ps: o.SGD(ps, **kwargs))


# ================================================================ Adam and AdamW

ADAM_CASES = {
    "Adam": lambda o, ps: o.Adam(ps),
    "Adam lr, betas, eps": lambda o, ps: o.Adam(ps, lr=0.05, betas=(0.5, 0.9), eps=1e-3),
    "Adam weight decay": lambda o, ps: o.Adam(ps, lr=0.01, weight_decay=0.1),
    "Adam decoupled weight decay": lambda o, ps: o.Adam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "AdamW": lambda o, ps: o.AdamW(ps, lr=0.01),
    "AdamW weight decay": lambda o, ps: o.AdamW(ps, lr=0.02, betas=(0.8, 0.99), weight_decay=0.3),
    "Adam param groups": lambda o, ps: o.Adam([{"params": ps[:2], "lr": 0.1, "betas": (0.0, 0.5)},
                                               {"params": ps[2:], "weight_decay": 0.5}], lr=0.01),
}


@pytest.mark.parametrize("case", ADAM_CASES)
def test_adam_equals_torch(case):
    check_against_torch(ADAM_CASES[case])


@settings(max_examples=25)
@given(lr=st.floats(1e-4, 0.1), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.5, 0.9999),
       eps=st.sampled_from([1e-8, 1e-6, 1e-2]), weight_decay=st.sampled_from([0.0, 1e-2, 0.2]),
       decoupled=st.booleans())
def test_adam_equals_torch_for_any_hyperparameters(lr, beta1, beta2, eps, weight_decay, decoupled):
    check_against_torch(lambda o, ps: (o.AdamW if decoupled else o.Adam)(
        ps, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay))


@pytest.mark.parametrize("make", [lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9),
                                  lambda o, ps: o.Adam(ps, lr=0.01)], ids=["SGD", "Adam"])
def test_training_a_model_equals_torch(make):
    """Gradients from a real loss, not a formula: nn, autograd and optim together."""

    def model(nn):
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))

    ours, theirs = model(nn).double(), model(torch.nn).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    optimizer, torch_optimizer = make(optim, ours.parameters()), make(torch.optim, theirs.parameters())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 6, 6)), rng.integers(0, 3, 8)
    for step in range(10):
        optimizer.zero_grad()
        torch_optimizer.zero_grad()
        F.cross_entropy(ours(Tensor(x)), Tensor(y)).backward()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
        torch_optimizer.step()
        assert_params_equal(list(ours.parameters()), list(theirs.parameters()), f"after step {step + 1}")


# ================================================================ zero_grad and state_dict

def test_zero_grad():
    a, b, c = (nn.Parameter(np.ones(2)) for _ in range(3))
    optimizer = optim.SGD([a, b, c], lr=0.1)
    a.grad, b.grad = Tensor(np.full(2, 3.0)), Tensor(np.full(2, 4.0))
    optimizer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), 0.0)
    np.testing.assert_array_equal(b.grad.numpy(), 0.0)
    assert c.grad is None
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None


RESUMABLE = {
    "SGD nesterov": lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": lambda o, ps: o.Adam(ps, lr=0.05, betas=(0.8, 0.9)),
    "AdamW groups": lambda o, ps: o.AdamW([{"params": ps[:1], "lr": 0.1}, {"params": ps[1:]}], lr=0.02),
}


@pytest.mark.parametrize("case", RESUMABLE)
def test_resuming_from_state_dict_takes_the_same_steps(case):
    make = RESUMABLE[case]
    params = [nn.Parameter(a) for a in initial_arrays()]
    optimizer = make(optim, params)

    def step(optimizer, params, i):
        for j, p in enumerate(params):
            p.grad = None if (j, i) in NO_GRAD_AT else Tensor(gradient(p.detach().numpy(), i))
        optimizer.step()

    for i in range(5):
        step(optimizer, params, i)
    saved = optimizer.state_dict()
    copies = [nn.Parameter(p.detach().numpy().copy()) for p in params]
    resumed = make(optim, copies)
    for group in resumed.param_groups:  # the saved hyperparameters must win
        group["lr"] = 123.0
    resumed.load_state_dict(saved)
    step(optimizer, params, 5)
    for i in range(5, 10):
        step(resumed, copies, i)
        if i > 5:
            step(optimizer, params, i)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    for name, values in saved["state"][0].items():  # the saved state is a snapshot, not a view
        if isinstance(values, np.ndarray):
            assert not np.array_equal(values, optimizer.state_dict()["state"][0][name]), name


@pytest.mark.parametrize("case", ["momentum", "param groups"])
def test_sgd_state_dict_matches_torch(case):
    _check_state_dict_matches_torch(SGD_CASES[case])


@pytest.mark.parametrize("case", ["Adam", "Adam param groups"])
def test_adam_state_dict_matches_torch(case):
    _check_state_dict_matches_torch(ADAM_CASES[case])


def _check_state_dict_matches_torch(make) -> None:
    """The same layout as torch's: parameter indices over all groups, the same state names and values."""
    arrays = initial_arrays()
    ours = [nn.Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    optimizer, torch_optimizer = make(optim, ours), make(torch.optim, theirs)
    for step in range(3):
        set_gradients(ours, theirs, step)
        optimizer.step()
        torch_optimizer.step()
    state, torch_state = optimizer.state_dict(), torch_optimizer.state_dict()
    assert sorted(state["state"]) == sorted(torch_state["state"])
    for i, s in state["state"].items():
        assert sorted(s) == sorted(torch_state["state"][i])
        for name, value in s.items():
            np.testing.assert_allclose(value, np.asarray(torch_state["state"][i][name]), rtol=1e-10, atol=1e-12,
                                       err_msg=f"state {i} {name}")
    for group, torch_group in zip(state["param_groups"], torch_state["param_groups"]):
        for key, value in group.items():
            assert torch_group[key] == value, key


# ================================================================ schedulers

SCHEDULERS = {
    "StepLR": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5),
    "StepLR every epoch": lambda s, o: s.StepLR(o, step_size=1, gamma=0.9),
    "CosineAnnealingLR": lambda s, o: s.CosineAnnealingLR(o, T_max=10),
    "CosineAnnealingLR past T_max with eta_min": lambda s, o: s.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
}


def scheduled(optim_module, scheduler_module, make, params):
    optimizer = optim_module.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.03}], lr=0.1, momentum=0.9)
    return optimizer, make(scheduler_module, optimizer)


@pytest.mark.parametrize("case", SCHEDULERS)
def test_scheduler_lrs_equal_torch_for_20_epochs(case):
    make = SCHEDULERS[case]
    optimizer, scheduler = scheduled(optim, optim.lr_scheduler, make, [nn.Parameter(np.ones(2)) for _ in range(2)])
    torch_optimizer, torch_scheduler = scheduled(torch.optim, torch.optim.lr_scheduler, make,
                                                 [torch.ones(2, requires_grad=True) for _ in range(2)])
    for epoch in range(21):
        assert scheduler.get_last_lr() == pytest.approx(torch_scheduler.get_last_lr(), rel=1e-12, abs=1e-15), epoch
        assert [g["lr"] for g in optimizer.param_groups] == scheduler.get_last_lr()
        optimizer.step()
        torch_optimizer.step()
        scheduler.step()
        torch_scheduler.step()


@pytest.mark.parametrize("case", SCHEDULERS)
def test_scheduler_resumes_from_state_dict(case):
    make = SCHEDULERS[case]
    optimizer, scheduler = scheduled(optim, optim.lr_scheduler, make, [nn.Parameter(np.ones(2)) for _ in range(2)])
    for _ in range(5):
        scheduler.step()
    saved_optimizer, saved_scheduler = optimizer.state_dict(), scheduler.state_dict()
    resumed_optimizer, resumed = scheduled(optim, optim.lr_scheduler, make,
                                           [nn.Parameter(np.ones(2)) for _ in range(2)])
    resumed_optimizer.load_state_dict(saved_optimizer)
    resumed.load_state_dict(saved_scheduler)
    for _ in range(10):
        assert resumed.get_last_lr() == scheduler.get_last_lr()
        scheduler.step()
        resumed.step()


# ================================================================ bad input

def test_optimizer_bad_input_errors():
    p = nn.Parameter(np.ones((3, 2)))
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        optim.Adam(nn.ReLU().parameters())
    with pytest.raises(TypeError, match=r"SGD: params must be an iterable.*single Tensor of shape \(3, 2\)"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="every parameter must be a Tensor that requires grad, got ndarray"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="requires grad"):
        optim.SGD([Tensor(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match=r"non-leaf Tensor \(shape \(3, 2\)\)"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match=r"a parameter of shape \(3, 2\) appears twice"):
        optim.Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(TypeError, match="all Tensors or all dicts"):
        optim.SGD([{"params": [p]}, nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="SGD: lr, momentum and weight_decay must be >= 0, got -0.1"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="nesterov needs momentum > 0 and dampening = 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"AdamW: invalid lr=0.001, betas=\(0.9, 1.0\)"):
        optim.AdamW([p], betas=(0.9, 1.0))


def test_load_state_dict_with_other_groups_is_an_error():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    saved = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="saved param groups do not match"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)


def test_scheduler_bad_input_errors():
    optimizer = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="StepLR: step_size must be >= 1, got 0"):
        optim.lr_scheduler.StepLR(optimizer, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be >= 1, got 0"):
        optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=0)
