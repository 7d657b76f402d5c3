"""Custom autograd Functions as in PyTorch's "Extending PyTorch" notes, checked against PyTorch.

Each test is a dual program (see test_semantics_torch.py): the Function class is defined inside
`program(lib)`, deriving from `lib.autograd.Function` with static `forward(ctx, ...)` and
`backward(ctx, ...)`, and the program runs once with torch and once with ours.

    TG_ORACLE_SELFTEST=1 python -m pytest tests/test_custom_function_torch.py

runs both sides with torch: a check of the programs themselves.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# the harness (pytest puts tests/ on sys.path)
from test_semantics_torch import X, Y, assert_same, leaf, node_name, raises_both, run_both  # noqa: E402

rng = np.random.default_rng(3)
INPUT, WEIGHT, BIAS = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)


def once_differentiable(lib):
    return importlib.import_module(lib.__name__ + ".autograd.function").once_differentiable


# ---------------------------------------------------------------- Functions of the notes

def linear_function(lib, log: list | None = None):
    """The notes' LinearFunction (with matmul/transpose for mm/t); `log` collects needs_input_grad."""
    class LinearFunction(lib.autograd.Function):
        @staticmethod
        def forward(ctx, input, weight, bias=None):
            ctx.save_for_backward(input, weight, bias)
            output = input.matmul(weight.transpose(0, 1))
            if bias is not None:
                output += bias.unsqueeze(0).expand_as(output)
            return output

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            if log is not None:
                log.append(tuple(ctx.needs_input_grad))
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output.matmul(weight)
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.transpose(0, 1).matmul(input)
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias
    return LinearFunction


def mul_constant(lib):
    class MulConstant(lib.autograd.Function):
        @staticmethod
        def forward(ctx, tensor, constant):
            ctx.constant = constant
            return tensor * constant

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output * ctx.constant, None
    return MulConstant


def exp_function(lib):
    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, i):
            result = i.exp()
            ctx.save_for_backward(result)
            return result

        @staticmethod
        def backward(ctx, grad_output):
            result, = ctx.saved_tensors
            return grad_output * result
    return Exp


def square_function(lib):
    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad_output):
            x, = ctx.saved_tensors
            return 2 * x * grad_output
    return Square


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_function(with_bias):
    """LinearFunction: output and gradients of input, weight (and bias) equal torch's and those of
    the same expression written without a custom Function; the node is named after the class."""
    def program(lib):
        def grads(fn):
            tensors = [leaf(lib, INPUT), leaf(lib, WEIGHT)] + ([leaf(lib, BIAS)] if with_bias else [])
            out = fn(*tensors)
            (out * out).sum().backward()
            return out, [t.grad for t in tensors]

        def plain(input, weight, bias=None):
            out = input.matmul(weight.transpose(0, 1))
            return out if bias is None else out + bias
        custom = grads(linear_function(lib).apply)
        name = node_name(linear_function(lib).apply(*[leaf(lib, a) for a in (INPUT, WEIGHT)]).grad_fn, lib)
        return custom, grads(plain), name
    ours, theirs = run_both(program)
    assert_same(ours[0], ours[1])
    assert_same(theirs[0], theirs[1])


def test_linear_function_needs_input_grad():
    """`ctx.needs_input_grad` has one flag per forward argument: (True, False, True) when the
    weight does not require grad; gradients only for what needs them."""
    def program(lib):
        log: list = []
        input, weight, bias = leaf(lib, INPUT), leaf(lib, WEIGHT, requires_grad=False), leaf(lib, BIAS)
        linear_function(lib, log).apply(input, weight, bias).sum().backward()
        return log, input.grad, weight.grad, bias.grad
    run_both(program)


def test_output_requires_grad_only_if_an_input_does():
    """A Function applied to tensors none of which requires grad gives a result that does not."""
    def program(lib):
        out = linear_function(lib).apply(*[leaf(lib, a, requires_grad=False) for a in (INPUT, WEIGHT, BIAS)])
        return out, out.requires_grad, out.grad_fn is None
    run_both(program)


def test_forward_and_backward_grad_mode():
    """forward runs with recording off; backward runs with it off too, unless create_graph=True."""
    def program(lib):
        modes: dict = {}

        class Probe(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                modes["forward"] = lib.is_grad_enabled()
                return x * 2

            @staticmethod
            def backward(ctx, grad_output):
                modes.setdefault("backward", []).append(lib.is_grad_enabled())
                return grad_output * 2
        x = leaf(lib)
        Probe.apply(x).sum().backward()
        lib.autograd.grad(Probe.apply(x).sum(), x, create_graph=True)
        return modes
    run_both(program)


def test_mul_constant():
    """MulConstant(tensor, constant): a positional non-Tensor argument stored on ctx; backward
    returns (grad * constant, None)."""
    def program(lib):
        x = leaf(lib)
        y = mul_constant(lib).apply(x, 2.5)
        (y * y).sum().backward()
        return y, x.grad, y.requires_grad
    run_both(program)


def test_exp_saves_output_double_backward():
    """Exp saves its output; first and second derivatives (grad of the first grad, made with
    create_graph=True) equal torch's and exp(x) times the upstream gradient."""
    def program(lib):
        x = leaf(lib)
        y = exp_function(lib).apply(x)
        g, = lib.autograd.grad(y, x, grad_outputs=lib.tensor(Y), create_graph=True)
        gg, = lib.autograd.grad(g.sum(), x)
        return y, g, gg, g.requires_grad
    ours, theirs = run_both(program)
    assert_same(theirs[1], torch.tensor(Y * np.exp(X)))


def test_square_double_backward():
    """Square (backward in Tensor ops: 2 * x * grad) is twice differentiable: grad with
    create_graph=True, then grad again, gives 2 * upstream."""
    def program(lib):
        x = leaf(lib)
        y = square_function(lib).apply(x)
        g, = lib.autograd.grad(y, x, grad_outputs=lib.tensor(Y), create_graph=True)
        gg, = lib.autograd.grad(g.sum(), x)
        return y, g, gg
    ours, theirs = run_both(program)
    assert_same(theirs[2], torch.tensor(2 * Y))


def two_outputs(lib, materialize: bool, log: list):
    class TwoOutputs(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            ctx.save_for_backward(x)
            return x * 2, x.exp()

        @staticmethod
        def backward(ctx, grad_doubled, grad_exp):
            x, = ctx.saved_tensors
            log.append((grad_doubled is None, grad_exp is None))
            grad = None
            if grad_doubled is not None:
                grad = grad_doubled * 2
            if grad_exp is not None:
                term = grad_exp * x.exp()
                grad = term if grad is None else grad + term
            return grad
    return TwoOutputs


def test_two_outputs_both_used():
    """A Function with two outputs, both in the loss: backward gets a gradient for each."""
    def program(lib):
        log: list = []
        x = leaf(lib)
        doubled, exp = two_outputs(lib, True, log).apply(x)
        ((doubled * doubled).sum() + exp.sum()).backward()
        return doubled, exp, x.grad, log
    run_both(program)


@pytest.mark.parametrize("materialize", [True, False])
def test_two_outputs_one_used(materialize):
    """Only the second output in the loss: with `ctx.set_materialize_grads(False)` the first
    output's gradient reaches backward as None; by default as zeros."""
    def program(lib):
        log: list = []
        x = leaf(lib)
        doubled, exp = two_outputs(lib, materialize, log).apply(x)
        (exp * exp).sum().backward()
        return exp, x.grad, log
    run_both(program)


def test_mark_non_differentiable():
    """Outputs marked with `ctx.mark_non_differentiable` do not require grad (a boolean mask and a
    float tensor); the other output does, and its gradient flows."""
    def program(lib):
        class ValuesAndMask(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                doubled, mask, tripled = x * 2, x > 0, x * 3
                ctx.mark_non_differentiable(mask, tripled)
                return doubled, mask, tripled

            @staticmethod
            def backward(ctx, grad_doubled, grad_mask, grad_tripled):
                return grad_doubled * 2
        x = leaf(lib)
        doubled, mask, tripled = ValuesAndMask.apply(x)
        flags = (doubled.requires_grad, mask.requires_grad, tripled.requires_grad, tripled.grad_fn is None,
                 mask.dtype == lib.bool)
        (doubled * doubled).sum().backward()
        return doubled, mask, tripled, flags, x.grad
    run_both(program)


def add_one_in_place(lib):
    class AddOne(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output
    return AddOne


def test_mark_dirty():
    """A Function that changes its input in place and marks it with `ctx.mark_dirty` returns that
    same tensor, now with the Function's node as grad_fn and a higher version; gradients flow
    through it to the leaf."""
    def program(lib):
        x = leaf(lib)
        h = x * 2
        before = h._version
        r = add_one_in_place(lib).apply(h)
        facts = (r is h, h._version > before, node_name(h.grad_fn, lib), h.is_leaf)
        (r * r).sum().backward()
        return h, facts, x.grad
    run_both(program)


def test_mark_dirty_on_leaf_requiring_grad_raises():
    """mark_dirty on a leaf that requires grad is an in-place op on it: RuntimeError."""
    raises_both(lambda lib: add_one_in_place(lib).apply(leaf(lib)), RuntimeError)


def square_once(lib):
    Square = square_function(lib)

    class SquareOnce(Square):
        backward = staticmethod(once_differentiable(lib)(Square.backward))
    return SquareOnce


def test_once_differentiable_first_order():
    """A backward decorated with `once_differentiable` gives first derivatives as usual."""
    def program(lib):
        x = leaf(lib)
        y = square_once(lib).apply(x)
        (y * y).sum().backward()
        return y, x.grad
    run_both(program)


def test_once_differentiable_double_backward_raises():
    """Differentiating a once_differentiable backward again raises RuntimeError, saying so
    (PyTorch: "trying to differentiate twice a function that was marked with @once_differentiable")."""
    def program(lib):
        x = leaf(lib)
        y = square_once(lib).apply(x)
        g, = lib.autograd.grad((y * y).sum(), x, create_graph=True)  # the upstream gradient requires grad
        g.sum().backward()
    raises_both(program, RuntimeError, both_say=("once_differentiable",))


@pytest.mark.parametrize("make", [square_function, exp_function], ids=["Square", "Exp"])
def test_gradcheck_and_gradgradcheck(make):
    """`autograd.gradcheck` and `autograd.gradgradcheck` pass (return True) on Square and Exp in float64."""
    def program(lib):
        fn = make(lib).apply
        return lib.autograd.gradcheck(fn, (leaf(lib),)), lib.autograd.gradgradcheck(fn, (leaf(lib),))
    run_both(program)


def bad_backward(lib, kind: str):
    """A Function of (x, y) -> x * y whose backward returns something wrong."""
    class BadGradients(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad_output):
            if kind == "numpy":
                return grad_output.detach().numpy() * 2, grad_output
            if kind == "too few":
                return grad_output
            if kind == "too many":
                return grad_output, grad_output, grad_output
            if kind == "wrong shape":
                return lib.ones(3, dtype=lib.float64), grad_output
            raise AssertionError(kind)
    return BadGradients


@pytest.mark.parametrize("kind", ["numpy", "too few", "too many", "wrong shape"])
def test_bad_backward_raises(kind):
    """A backward returning a NumPy array, too few or too many gradients, or a gradient of the
    wrong shape (3 for an input of 4) raises RuntimeError (PyTorch's type for all four); ours names
    the Function's class in the message."""
    def program(lib):
        x, y = leaf(lib), leaf(lib, Y)
        bad_backward(lib, kind).apply(x, y).sum().backward()
    raises_both(program, RuntimeError, ours_says=("BadGradients",))

