"""Bad input gets a clear error (issue 12, items 8-10): the type PyTorch raises where it raises a
clear one (else TypeError/ValueError/RuntimeError, IndexError for a bad index or dim), and a message
that names the op and the offending argument or value. Never an AttributeError or a NumPy message
from deep inside.

Each case is checked twice: that PyTorch also refuses the same call (so we are not refusing what
PyTorch accepts), and that our error has the expected type and mentions what it must."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import nn

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402


def mentions(*parts: str) -> str:
    """A regex matching a message that contains every part, in order."""
    return ".*".join(re.escape(p) for p in parts)


def both(call):
    """call(lib, nn, F) for both libraries: (ours, PyTorch's)."""
    return (lambda: call(tg, nn, F)), (lambda: call(torch, torch.nn, TF))


# --------------------------------------------------------------- item 8: a non-Tensor where a Tensor goes

NOT_TENSORS = [np.ones((1, 1, 4, 4), np.float32), [[1.0, 2.0]], "abc", None]

# op name, the argument's name, a call taking (lib, nn, F, bad)
TENSOR_ARGUMENTS = [
    ("conv2d", "input", lambda lib, nn, F, bad: F.conv2d(bad, lib.ones(2, 1, 3, 3))),
    ("conv2d", "weight", lambda lib, nn, F, bad: F.conv2d(lib.ones(1, 1, 4, 4), bad)),
    ("linear", "input", lambda lib, nn, F, bad: F.linear(bad, lib.ones(2, 2))),
    ("relu", "input", lambda lib, nn, F, bad: F.relu(bad)),
    ("max_pool2d", "input", lambda lib, nn, F, bad: F.max_pool2d(bad, 2)),
    ("avg_pool2d", "input", lambda lib, nn, F, bad: F.avg_pool2d(bad, 2)),
    ("softmax", "input", lambda lib, nn, F, bad: F.softmax(bad, dim=0)),
    ("log_softmax", "input", lambda lib, nn, F, bad: F.log_softmax(bad, dim=0)),
    ("pad", "input", lambda lib, nn, F, bad: F.pad(bad, (1, 1))),
    ("cross_entropy", "input", lambda lib, nn, F, bad: F.cross_entropy(bad, lib.tensor([0]))),
    ("cross_entropy", "target", lambda lib, nn, F, bad: F.cross_entropy(lib.ones(1, 3), bad)),
    ("mse_loss", "target", lambda lib, nn, F, bad: F.mse_loss(lib.ones(2), bad)),
    ("batch_norm", "input", lambda lib, nn, F, bad: F.batch_norm(bad, None, None, training=True)),
    # layers report the function they call, as PyTorch's do (BatchNorm2d checks the input's shape first)
    ("linear", "input", lambda lib, nn, F, bad: nn.Linear(2, 2)(bad)),
    ("conv2d", "input", lambda lib, nn, F, bad: nn.Conv2d(1, 1, 3)(bad)),
    ("BatchNorm2d", "input", lambda lib, nn, F, bad: nn.BatchNorm2d(1)(bad)),
]


@pytest.mark.parametrize("bad", NOT_TENSORS, ids=["ndarray", "list", "str", "None"])
@pytest.mark.parametrize("op, argument, call", TENSOR_ARGUMENTS, ids=[f"{op}-{arg}" for op, arg, _ in TENSOR_ARGUMENTS])
def test_a_non_tensor_argument_is_a_type_error_naming_op_and_argument(op, argument, call, bad):
    with pytest.raises(Exception):  # PyTorch refuses too (TypeError, or AttributeError in a few layers)
        call(torch, torch.nn, TF, bad)
    with pytest.raises(TypeError, match=mentions(op, argument, "must be Tensor", type(bad).__name__)):
        call(tg, nn, F, bad)


@pytest.mark.parametrize("fn", ["cat", "stack"])
def test_cat_and_stack_name_the_element_that_is_not_a_tensor(fn):
    for lib in (torch, tg):
        with pytest.raises(TypeError):
            getattr(lib, fn)([lib.ones(2), np.ones(2)])
    with pytest.raises(TypeError, match=mentions(fn, "element 1", "ndarray")):
        getattr(tg, fn)([tg.ones(2), np.ones(2)])
    with pytest.raises(TypeError, match=mentions(fn, "tensors", "sequence of Tensors", "Tensor")):
        getattr(tg, fn)(tg.ones(2))


# --------------------------------------------------------------- item 9: bad sizes and hyperparameters

# a call taking (lib, nn, F), the error type, what the message must mention
BAD_ARGUMENTS = [
    (lambda lib, nn, F: nn.Linear(-1, 3), (ValueError, RuntimeError), ("Linear", "in_features", "-1")),
    (lambda lib, nn, F: nn.Linear(2.5, 3), TypeError, ("Linear", "in_features", "2.5")),
    (lambda lib, nn, F: nn.Conv2d(1, 2, 1.5), TypeError, ("Conv2d", "kernel_size", "1.5")),
    (lambda lib, nn, F: nn.Conv2d(1, 2, "3"), TypeError, ("Conv2d", "kernel_size", "'3'")),
    (lambda lib, nn, F: nn.Conv2d("1", 2, 3), TypeError, ("Conv2d", "in_channels", "'1'")),
    (lambda lib, nn, F: nn.BatchNorm2d(-1), (ValueError, RuntimeError), ("BatchNorm2d", "num_features", "-1")),
    (lambda lib, nn, F: lib.zeros(-1), (ValueError, RuntimeError), ("zeros", "-1")),
    (lambda lib, nn, F: lib.randn(-2), (ValueError, RuntimeError), ("randn", "-2")),
    (lambda lib, nn, F: lib.ones(2.5), TypeError, ("ones", "2.5")),
    (lambda lib, nn, F: F.dropout(lib.ones(2), p="a"), TypeError, ("dropout", "p", "'a'")),
    (lambda lib, nn, F: lib.ones(2).sum(0.0), TypeError, ("sum", "dim", "0.0")),
    (lambda lib, nn, F: lib.tensor([[1, 2], [3]]), ValueError, ("tensor", "length 2", "dim 1")),
    (lambda lib, nn, F: lib.tensor([2]) ** -1, RuntimeError, ("Integers to negative integer powers",)),
    (lambda lib, nn, F: lib.cat(lib.ones(2)), TypeError, ("cat", "tensors")),
]


@pytest.mark.parametrize("call, error, parts", BAD_ARGUMENTS, ids=[" ".join(p) for _, _, p in BAD_ARGUMENTS])
def test_bad_sizes_and_hyperparameters_are_clear_errors(call, error, parts):
    with pytest.raises(Exception):
        call(torch, torch.nn, TF)
    with pytest.raises(error, match=mentions(*parts)):
        call(tg, nn, F)


def test_a_zero_size_layer_is_accepted_as_in_pytorch():
    """nn.Conv2d(1, 0, 3) is legal in PyTorch (a warning, no error): ours gives the same empty output."""
    with pytest.warns(UserWarning):
        conv = nn.Conv2d(1, 0, 3)
    x = tg.ones(1, 1, 4, 4, requires_grad=True)
    y = conv(x)
    y.sum().backward()
    assert y.shape == (1, 0, 2, 2) and x.grad.tolist() == np.zeros((1, 1, 4, 4)).tolist()
    assert conv.weight.grad.shape == (0, 1, 3, 3)


# --------------------------------------------------------------- item 10: a Function's backward returns an ndarray

def test_a_function_backward_returning_an_ndarray_is_named():
    class Double(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return np.ones(3)

    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=mentions("Double.backward returned a ndarray", "input 0", "Tensor")):
        Double.apply(x).sum().backward()
