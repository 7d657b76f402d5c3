"""Module containers and the Module methods scripts call (ModuleList, ModuleDict, ParameterList,
apply, register_buffer with persistent=False, zero_grad, requires_grad_), against PyTorch: the
same structure gives the same state_dict keys, parameter counts and visiting orders."""
import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn as nn

torch = pytest.importorskip("torch")


def build(lib):
    """A model holding one of each container, in either library."""
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = lib.nn.ModuleList([lib.nn.Linear(3, 4), lib.nn.ReLU()])
            self.blocks.append(lib.nn.Linear(4, 2))
            self.heads = lib.nn.ModuleDict({"a": lib.nn.Linear(2, 1)})
            self.heads["b"] = lib.nn.Linear(2, 3)
            self.scales = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2)) for _ in range(2)])
            self.register_buffer("steps", lib.zeros(1))
            self.register_buffer("scratch", lib.zeros(5), persistent=False)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            x = x * self.scales[0] + self.scales[1]
            return [head(x) for head in self.heads.values()]
    return Net()


def test_containers_register_what_they_hold_as_pytorch():
    ours, theirs = build(tg), build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())      # no "scratch": not persistent
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert len(ours.blocks) == 3 and isinstance(ours.blocks[-1], nn.Linear) and len(ours.blocks[1:]) == 2
    assert "a" in ours.heads and list(ours.heads.keys()) == ["a", "b"] and len(ours.scales) == 2
    ours.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    for a, b in zip(ours(tg.tensor(x)), theirs(torch.tensor(x))):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_replacing_an_entry_keeps_its_place():
    for lib in (tg, torch):
        blocks = lib.nn.ModuleList([lib.nn.Linear(1, 1), lib.nn.ReLU(), lib.nn.Linear(1, 2)])
        blocks[0] = lib.nn.Linear(1, 1)
        blocks.insert(1, lib.nn.Tanh())
        assert [type(m).__name__ for m in blocks] == ["Linear", "Tanh", "ReLU", "Linear"]
        assert list(blocks.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    heads = nn.ModuleDict([("x", nn.ReLU())])
    assert isinstance(heads.pop("x"), nn.ReLU) and len(heads) == 0
    with pytest.raises(IndexError, match="ModuleList"):
        nn.ModuleList([nn.ReLU()])[3]


def test_apply_visits_children_before_parents_as_pytorch():
    def order(lib):
        seen = []
        build(lib).apply(lambda m: seen.append(type(m).__name__))
        return seen
    assert order(tg) == order(torch)


def test_zero_grad_and_requires_grad_():
    model = build(tg)
    out = model(tg.ones(2, 3))
    sum(o.sum() for o in out).backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.blocks.requires_grad_(False)
    assert [p.requires_grad for p in model.parameters()] == [False] * 4 + [True] * 6


def test_bad_registrations_raise_as_pytorch():
    for lib in (tg, torch):
        m = lib.nn.Module()
        with pytest.raises(KeyError):
            m.register_buffer("a.b", lib.zeros(1))
        with pytest.raises(TypeError):
            m.register_buffer("a", [1, 2])
        with pytest.raises(TypeError):
            m.register_parameter("w", lib.zeros(1))


def test_sequential_from_an_ordered_dict_append_and_half():
    from collections import OrderedDict

    def build_seq(lib):
        seq = lib.nn.Sequential(OrderedDict([("conv", lib.nn.Linear(2, 3)), ("act", lib.nn.ReLU())]))
        return seq.append(lib.nn.Linear(3, 1))
    ours, theirs = build_seq(tg), build_seq(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["conv.weight", "conv.bias", "2.weight", "2.bias"]
    assert [name for name, _ in ours.named_children()] == [name for name, _ in theirs.named_children()]
    assert ours.half().conv.weight.dtype == np.float16 and theirs.half().conv.weight.dtype == torch.float16
