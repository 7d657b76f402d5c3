"""Module's forward pre-hooks, hook options and dotted-path lookups, side by side with torch.nn.

The same model is built in both libraries (same weights), the same hooks are registered, and the
outputs, the order the hooks ran in and the errors are compared."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn

torch = pytest.importorskip("torch")


def twin_models():
    """Linear(3, 2) -> ReLU in both libraries with the same weights, float64."""
    ours = nn.Sequential(nn.Linear(3, 2), nn.ReLU()).double()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()).double()
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        p.data.copy_(tg.tensor(q.detach().numpy()))
    return ours, theirs


def run_hooked(lib, model, x, options):
    """Register a pre-hook and a forward hook with `options` on model[0]; return (output, calls)."""
    calls = []

    def pre(module, args, *kwargs):
        calls.append("pre")
        return (args[0] * 2,) if not kwargs else ((args[0] * 2,), kwargs[0])

    def pre_first(module, args):
        calls.append("pre_first")

    def post(module, args, *rest):
        calls.append("post")
        return rest[-1] + 1

    layer = model[0]
    layer.register_forward_pre_hook(pre, with_kwargs=options["with_kwargs"])
    layer.register_forward_pre_hook(pre_first, prepend=options["prepend"])
    layer.register_forward_hook(post, with_kwargs=options["with_kwargs"])
    return model(lib.tensor(x)), calls


@pytest.mark.parametrize("with_kwargs", [False, True])
@pytest.mark.parametrize("prepend", [False, True])
def test_forward_pre_hooks_replace_inputs_in_torchs_order(with_kwargs, prepend):
    x = np.random.default_rng(0).normal(size=(4, 3))
    ours, theirs = twin_models()
    options = {"with_kwargs": with_kwargs, "prepend": prepend}
    got, our_calls = run_hooked(tg, ours, x, options)
    want, their_calls = run_hooked(torch, theirs, x, options)
    assert our_calls == their_calls
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)


def test_a_pre_hook_returning_one_value_wraps_it_in_a_tuple():
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda module, args: args[0] + 1)
    assert layer(tg.tensor([1.0])).tolist() == [2.0]


def test_a_with_kwargs_pre_hook_returning_a_bad_value_is_an_error():
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda module, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match="Identity.*with_kwargs.*tuple"):
        layer(tg.tensor([1.0]))


def test_removing_a_pre_hook():
    layer = nn.Identity()
    handle = layer.register_forward_pre_hook(lambda module, args: (args[0] * 10,))
    handle.remove()
    assert layer(tg.tensor([1.0])).tolist() == [1.0]


def test_pre_hooks_run_before_full_backward_hooks_see_the_inputs():
    ours, theirs = twin_models()
    seen = {}
    for lib, model in (("ours", ours), ("torch", theirs)):
        model[0].register_forward_pre_hook(lambda module, args: (args[0] * 3,))
        def record(module, grad_input, grad_output, lib=lib):
            seen[lib] = grad_input[0].detach().numpy()
        model[0].register_full_backward_hook(record)
    x = np.random.default_rng(1).normal(size=(2, 3))
    ours(tg.tensor(x, requires_grad=True)).sum().backward()
    theirs(torch.tensor(x, requires_grad=True)).sum().backward()
    np.testing.assert_allclose(seen["ours"], seen["torch"], rtol=1e-12)


def nested(lib):
    block = lib.nn.Sequential(lib.nn.Conv2d(1, 2, 3), lib.nn.BatchNorm2d(2))
    return lib.nn.Sequential(block, lib.nn.Flatten())


@pytest.mark.parametrize("path", ["", "0", "0.0", "0.1", "1"])
def test_get_submodule_finds_what_torch_finds(path):
    assert type(nested(tg).get_submodule(path)).__name__ == type(nested(torch).get_submodule(path)).__name__


@pytest.mark.parametrize("path, kind", [("0.0.weight", "parameter"), ("0.1.bias", "parameter"),
                                        ("0.1.running_mean", "buffer"), ("0.1.num_batches_tracked", "buffer")])
def test_get_parameter_and_get_buffer_as_torch(path, kind):
    ours = getattr(nested(tg), f"get_{kind}")(path)
    theirs = getattr(nested(torch), f"get_{kind}")(path)
    assert tuple(ours.shape) == tuple(theirs.shape)


@pytest.mark.parametrize("call", [lambda m: m.get_submodule("0.5"), lambda m: m.get_submodule("2"),
                                  lambda m: m.get_parameter("0.0.running_mean"), lambda m: m.get_buffer("0.0.weight"),
                                  lambda m: m.get_parameter("0.9.weight")])
def test_bad_paths_raise_attribute_error_as_torch(call):
    with pytest.raises(AttributeError):
        call(nested(torch))
    with pytest.raises(AttributeError, match=r"get_(submodule|parameter|buffer)"):
        call(nested(tg))
