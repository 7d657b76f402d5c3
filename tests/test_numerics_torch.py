"""Wrong numbers a stress campaign found (issue 12, items 1-7), each checked against PyTorch.

One test (or parametrised group) per item, named `test_item<N>_...`. Every case is a dual program
(see test_semantics_torch.py): a function of the library module run once with torch and once with
ours, whose results (values, dtypes, shapes, gradients) or exception types must agree. Float inputs
are float64, so gradients agree to 1e-6. Cases that PyTorch answers with NaN or inf must give the
same without a NumPy RuntimeWarning reaching the user (`quiet` turns warnings into errors).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from test_semantics_torch import functional, raises_both, run_both, tg

INF, NAN = math.inf, math.nan


def quiet(program):
    """`program` run with every warning an error: a RuntimeWarning from NumPy fails the case."""
    def run(lib, *args):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return program(lib, *args)
    return run


def values_and_grads(fn, *arrays, requires_grad=None):
    """A dual program: fn(lib, *leaves) on float64 leaves made from `arrays`, then the gradient of its sum
    (fn may return a tensor or a tuple whose first item is differentiated): (result, grads)."""
    def program(lib):
        leaves = [lib.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
        out = fn(lib, *leaves)
        first = out[0] if isinstance(out, tuple) else out
        first.sum().backward()
        return out, [x.grad for x in leaves]
    return quiet(program)


def t(lib, data, dtype):
    return lib.tensor(np.array(data, dtype=dtype))


# ---------------------------------------------------------------- item 1: min family computed directly

MIN_DATA = {
    "uint8": np.array([[0, 4, 7], [9, 0, 255]], np.uint8),
    "int8": np.array([[-128, 5, 127], [3, -128, 0]], np.int8),
    "int64": np.array([[np.iinfo(np.int64).min, 1, 2], [5, -3, np.iinfo(np.int64).max]], np.int64),
    "bool": np.array([[True, False, True], [True, True, True]]),
    "float32": np.array([[1.5, -2.0, 3.0], [0.0, -0.5, -0.5]], np.float32),
}
MIN_OPS = {
    "min()": lambda lib, x: x.min(),
    "amin()": lambda lib, x: x.amin(),
    "amin(dim=1)": lambda lib, x: x.amin(1),
    "min(dim=1)": lambda lib, x: tuple(x.min(1)),
    "min(dim=0, keepdim)": lambda lib, x: tuple(x.min(0, keepdim=True)),
    "torch.min(dim=1)": lambda lib, x: tuple(lib.min(x, 1)),
    "argmin()": lambda lib, x: x.argmin(),
    "argmin(dim=1)": lambda lib, x: x.argmin(1),
    "minimum(flipped)": lambda lib, x: x.minimum(x.flip(1)),
    "min(other)": lambda lib, x: x.min(x.flip(0)),
    "max()": lambda lib, x: x.max(),
}


@pytest.mark.parametrize("op", MIN_OPS)
@pytest.mark.parametrize("dtype", MIN_DATA)
def test_item1_min_amin_argmin_minimum_on_every_dtype(dtype, op):
    """On unsigned integers, at the most negative int8/int64 and on bools, as PyTorch (argmin of bools
    raises in both)."""
    def program(lib):
        return MIN_OPS[op](lib, lib.tensor(MIN_DATA[dtype]))
    if dtype == "bool" and op.startswith("argmin"):
        raises_both(program, RuntimeError, both_say=("argmin", "bool"))
    else:
        run_both(quiet(program))


def test_item1_minimum_of_float_and_uint8():
    """The issue's case: minimum of float32 and uint8 promotes to float32 and compares the values (not -252)."""
    run_both(quiet(lambda lib: t(lib, [1.0, 2.0, 3.0], np.float32).minimum(t(lib, [0, 4, 7], np.uint8))))
    run_both(quiet(lambda lib: lib.minimum(t(lib, [0, 4, 7], np.uint8), t(lib, [1.0, 2.0, 3.0], np.float32))))


MIN_GRADS = {
    "min() with ties": lambda lib, x: x.min(),
    "amin(dim=1) with ties": lambda lib, x: x.amin(1),
    "min(dim=1) to the first minimum": lambda lib, x: x.min(1)[0],
    "min(dim=0, keepdim)": lambda lib, x: x.min(0, keepdim=True)[0],
}


@pytest.mark.parametrize("op", MIN_GRADS)
def test_item1_min_gradients(op):
    """Ties: amin and min() share the gradient, min(dim) gives it to the first minimum."""
    run_both(values_and_grads(MIN_GRADS[op], [[1.0, -2.0, -2.0], [0.5, 0.5, 3.0]]))


def test_item1_minimum_gradients_with_ties():
    run_both(values_and_grads(lambda lib, x, y: x.minimum(y), [1.0, -2.0, 3.0, 0.5], [2.0, -2.0, -1.0, 0.5]))


# ---------------------------------------------------------------- item 2: masked classes (-inf logits)

MASKED = [[0.0, -INF, 1.0], [2.0, 0.5, -INF]]
CROSS_ENTROPY_CASES = {
    "mean": dict(),
    "sum": dict(reduction="sum"),
    "none": dict(reduction="none"),
    "weight": dict(weight=[1.0, 0.5, 2.0]),
    "label_smoothing": dict(label_smoothing=0.1),
    "ignore_index": dict(ignore_index=1),
}


@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES)
def test_item2_cross_entropy_with_a_masked_class(case):
    """A class other than the target has logit -inf: the loss and the gradient are finite (inf with
    label smoothing, whose uniform part includes the masked class)."""
    kwargs = dict(CROSS_ENTROPY_CASES[case])

    def loss(lib, x):
        weight = kwargs.pop("weight", None)
        extra = {} if weight is None else {"weight": lib.tensor(np.array(weight))}
        return functional(lib).cross_entropy(x, lib.tensor(np.array([0, 0])), **kwargs, **extra)
    if case == "label_smoothing":  # inf has no meaningful gradient: compare the value only
        run_both(quiet(lambda lib: loss(lib, lib.tensor(np.array(MASKED)))))
    else:
        run_both(values_and_grads(loss, MASKED))


def test_item2_nll_loss_and_a_masked_target():
    """nll_loss directly with a -inf log-probability at another class, and one at the target (loss inf)."""
    run_both(values_and_grads(lambda lib, x: functional(lib).nll_loss(x, lib.tensor(np.array([0, 0]))), MASKED))
    run_both(quiet(lambda lib: functional(lib).cross_entropy(lib.tensor(np.array(MASKED)),
                                                             lib.tensor(np.array([1, 2])), reduction="none")))


# ---------------------------------------------------------------- item 3: gradients at 0 of x**0, std, norm

SMOOTHED = {
    "x ** 0 at 0": (lambda lib, x: x ** 0, [0.0, 1.0, -2.0]),
    "x ** 0.0 at 0": (lambda lib, x: x ** 0.0, [0.0, 1.5]),
    "x ** y, y = 0 at x = 0": (lambda lib, x, y: x ** y, [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]),
    "std over a constant row": (lambda lib, x: x.std(1), [[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]),
    "std, variance underflows to 0": (lambda lib, x: x.std(1), [[1e-200, 0.0, 0.0], [1.0, 2.0, 4.0]]),
    "std of all, constant": (lambda lib, x: x.std(), [[3.0, 3.0], [3.0, 3.0]]),
    "var over a constant row": (lambda lib, x: x.var(1), [[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]),
    "norm at the zero vector": (lambda lib, x: x.norm(), [0.0, 0.0, 0.0]),
    "norm(dim) with a zero row": (lambda lib, x: x.norm(dim=1), [[0.0, 0.0], [3.0, 4.0]]),
}


@pytest.mark.parametrize("case", SMOOTHED)
def test_item3_gradient_at_zero_is_pytorchs(case):
    fn, *arrays = SMOOTHED[case]
    run_both(values_and_grads(fn, *arrays))


# ---------------------------------------------------------------- item 4: degenerate batches

def _recorded(program):
    """Run program, returning its result and the sorted names of the warning categories it raised."""
    def run(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = program(lib)
        return result, sorted({w.category.__name__ for w in caught})
    return run


EMPTY = {
    "zeros(2, 0).mean()": lambda lib: lib.zeros(2, 0).mean(),
    "zeros(2, 0).mean(1)": lambda lib: lib.zeros(2, 0).mean(1),
    "zeros(2, 0).mean(0)": lambda lib: lib.zeros(2, 0).mean(0),
    "zeros(2, 0).var()": lambda lib: lib.zeros(2, 0).var(),
    "zeros(2, 0).std(1)": lambda lib: lib.zeros(2, 0).std(1),
    "zeros(2, 0).var(0)": lambda lib: lib.zeros(2, 0).var(0),
    "zeros(1).std()": lambda lib: lib.zeros(1).std(),
    "cross_entropy, every target ignored": lambda lib: functional(lib).cross_entropy(
        lib.zeros(2, 3), lib.tensor(np.array([-100, -100]))),
    "cross_entropy, N = 0": lambda lib: functional(lib).cross_entropy(lib.zeros(0, 3), lib.zeros(0, dtype=lib.int64)),
    "cross_entropy, probabilities, N = 0": lambda lib: functional(lib).cross_entropy(lib.zeros(0, 3), lib.zeros(0, 3)),
    "cross_entropy, probabilities, N = 0, sum": lambda lib: functional(lib).cross_entropy(
        lib.zeros(0, 3), lib.zeros(0, 3), reduction="sum"),
    "zeros(0, 3).max(1)": lambda lib: tuple(lib.zeros(0, 3).max(1)),
    "zeros(0, 3).min(1)": lambda lib: tuple(lib.zeros(0, 3).min(1)),
    "zeros(0, 3).amin(1)": lambda lib: lib.zeros(0, 3).amin(1),
    "zeros(0, 3).argmax(1)": lambda lib: lib.zeros(0, 3).argmax(1),
}


@pytest.mark.parametrize("case", EMPTY)
def test_item4_reductions_over_no_elements(case):
    """NaN (or an empty result) as PyTorch, with the same warnings: PyTorch's UserWarning about the degrees of
    freedom, never a NumPy RuntimeWarning."""
    run_both(_recorded(EMPTY[case]))


@pytest.mark.parametrize("op", ["amax", "amin", "max", "min", "argmax", "argmin"])
def test_item4_max_and_min_over_an_empty_dim_raise(op):
    raises_both(lambda lib: getattr(lib.zeros(0, 3), op)(0), IndexError, both_say=(op, "non-zero size"))


def test_item4_batch_norm_of_an_empty_batch():
    """BatchNorm2d training on N = 0: an empty output, zero gradients for weight and bias, running statistics
    unmoved."""
    def program(lib):
        layer = lib.nn.BatchNorm2d(3).double()
        x = lib.zeros(0, 3, 2, 2, dtype=lib.float64, requires_grad=True)
        out = layer(x)
        out.sum().backward()
        return out, x.grad, layer.weight.grad, layer.bias.grad, layer.running_mean, layer.running_var
    run_both(quiet(program))


# ---------------------------------------------------------------- item 5: gradients at NaN

AT_NAN = {
    "relu": (lambda lib, x: x.relu(), [NAN, -1.0, 2.0]),
    "abs": (lambda lib, x: x.abs(), [NAN, -1.0, 0.0, 2.0]),
    "maximum": (lambda lib, x, y: x.maximum(y), [NAN, 1.0, NAN, 2.0], [1.0, NAN, NAN, 2.0]),
    "minimum": (lambda lib, x, y: x.minimum(y), [NAN, 1.0, NAN, 2.0], [1.0, NAN, NAN, 2.0]),
}


@pytest.mark.parametrize("case", AT_NAN)
def test_item5_gradients_at_nan(case):
    """relu passes g at NaN, abs gives 0, maximum/minimum give g to both sides where one is NaN."""
    fn, *arrays = AT_NAN[case]
    run_both(values_and_grads(fn, *arrays))


# ---------------------------------------------------------------- item 6: type promotion and silent IEEE results

def _lin(lib, x_dtype, w_dtype, b_dtype=None):
    bias = None if b_dtype is None else lib.ones(2, dtype=b_dtype)
    return functional(lib).linear(lib.ones(3, 2, dtype=x_dtype), lib.ones(2, 2, dtype=w_dtype), bias)


PROMOTED = {
    "int32 + np.int64(3)": lambda lib: t(lib, [1, 2], np.int32) + np.int64(3),
    "np.int64(3) * int32": lambda lib: np.int64(3) * t(lib, [1, 2], np.int32),
    "int8 + np.int32(3)": lambda lib: t(lib, [1, 2], np.int8) + np.int32(3),
    "int32 + np.float64(2.5)": lambda lib: t(lib, [1, 2], np.int32) + np.float64(2.5),
    "float32 + np.float64(2.5)": lambda lib: t(lib, [1, 2], np.float32) + np.float64(2.5),
    "bool + 3": lambda lib: t(lib, [True, False], bool) + 3,
    "float32 + 0-d float64": lambda lib: t(lib, [1, 2], np.float32) + t(lib, 2.0, np.float64),
    "0-d float64 * float32": lambda lib: t(lib, 2.0, np.float64) * t(lib, [1, 2], np.float32),
    "int32 + 0-d int64": lambda lib: t(lib, [1, 2], np.int32) + t(lib, 2, np.int64),
    "int32 + 0-d float64": lambda lib: t(lib, [1, 2], np.int32) + t(lib, 2.0, np.float64),
    "uint8 + 0-d bool": lambda lib: t(lib, [1, 2], np.uint8) + t(lib, True, bool),
    "0-d float32 + 0-d float64": lambda lib: t(lib, 1.0, np.float32) + t(lib, 2.0, np.float64),
    "float16 + 0-d float64": lambda lib: t(lib, [1, 2], np.float16) + t(lib, 2.0, np.float64),
    "int64 * float32": lambda lib: t(lib, [1, 2], np.int64) * t(lib, [0.5, 1.5], np.float32),
    "uint8 + int8": lambda lib: t(lib, [1, 2], np.uint8) + t(lib, [-1, 3], np.int8),
    "int32 / int32": lambda lib: t(lib, [1, 2], np.int32) / t(lib, [2, 4], np.int32),
    "maximum(float32, 0-d float64)": lambda lib: t(lib, [1, 3], np.float32).maximum(t(lib, 2.0, np.float64)),
    "cat([float32, int64])": lambda lib: lib.cat([t(lib, [1.5], np.float32), t(lib, [2], np.int64)]),
    "cat([uint8, int8])": lambda lib: lib.cat([t(lib, [1], np.uint8), t(lib, [-2], np.int8)]),
    "cat([bool, int32])": lambda lib: lib.cat([t(lib, [True], bool), t(lib, [2], np.int32)]),
    "cat([float32, float64])": lambda lib: lib.cat([t(lib, [1.5], np.float32), t(lib, [2.5], np.float64)]),
    "float32 + bool": lambda lib: t(lib, [1.5, 2], np.float32) + t(lib, [True, False], bool),
    "float32 * bool": lambda lib: t(lib, [1.5, 2], np.float32) * t(lib, [True, False], bool),
    "bool + bool": lambda lib: t(lib, [True, False], bool) + t(lib, [True, True], bool),
    "bool / bool": lambda lib: t(lib, [True, False], bool) / t(lib, [True, True], bool),
    "uint8 + (-3)": lambda lib: t(lib, [1, 200], np.uint8) + (-3),
    "uint8 + 300": lambda lib: t(lib, [1, 200], np.uint8) + 300,
    "int8 * 1000": lambda lib: t(lib, [1, -2], np.int8) * 1000,
    "uint8 < 300": lambda lib: t(lib, [1, 200], np.uint8) < 300,
    "log of negatives and 0": lambda lib: t(lib, [-1.0, 0.0, 2.0], np.float32).log(),
    "sqrt of negatives": lambda lib: t(lib, [-1.0, 4.0], np.float64).sqrt(),
    "1 / 0": lambda lib: t(lib, [1.0, -1.0, 0.0], np.float32) / 0,
    "0 ** -1": lambda lib: t(lib, [0.0, 2.0], np.float64) ** -1,
    "exp overflow": lambda lib: t(lib, [1000.0], np.float64).exp(),
    "float // 0 and % 0": lambda lib: (t(lib, [1.0, -1.0], np.float32) // 0, t(lib, [1.0, -1.0], np.float32) % 0),
}


@pytest.mark.parametrize("case", PROMOTED)
def test_item6_type_promotion_and_ieee_results(case):
    """Result dtypes and values as PyTorch: numbers (Python or NumPy) are weak, 0-d tensors weaker than
    dimensioned ones of the same category; integers wrap; NaN and inf come without warnings."""
    run_both(quiet(PROMOTED[case]))


REFUSED = {
    "matmul float32 @ float64": (lambda lib: lib.ones(2, 2) @ lib.ones(2, 2, dtype=lib.float64), ("float",)),
    "matmul int64 @ float32": (lambda lib: lib.ones(2, 2, dtype=lib.int64) @ lib.ones(2, 2), ()),
    "linear, float64 batch into a float32 model": (lambda lib: _lin(lib, lib.float64, lib.float32), ()),
    "linear, float64 bias": (lambda lib: _lin(lib, lib.float32, lib.float32, lib.float64), ()),
    "conv2d, float64 batch into a float32 model": (lambda lib: functional(lib).conv2d(
        lib.ones(1, 1, 3, 3, dtype=lib.float64), lib.ones(1, 1, 2, 2)), ()),
    "conv2d, 0x0 kernel": (lambda lib: functional(lib).conv2d(lib.ones(1, 1, 3, 3), lib.ones(1, 1, 0, 0)),
                           ("kernel",)),
    "softmax of int64": (lambda lib: t(lib, [1, 2], np.int64).softmax(0), ("softmax",)),
    "log_softmax of int64": (lambda lib: functional(lib).log_softmax(t(lib, [1, 2], np.int64), 0), ("softmax",)),
    "float - bool": (lambda lib: t(lib, [1.0], np.float32) - t(lib, [True], bool), ("subtraction", "bool")),
    "bool - bool": (lambda lib: t(lib, [True], bool) - t(lib, [True], bool), ("subtraction", "bool")),
    "bool - 1": (lambda lib: t(lib, [True], bool) - 1, ("subtraction", "bool")),
    "-bool": (lambda lib: -t(lib, [True], bool), ("negation", "bool")),
    "reshape(-2, 3)": (lambda lib: lib.zeros(6).reshape(-2, 3), ("-2",)),
    "int // 0": (lambda lib: t(lib, [1, 2], np.int64) // 0, ("ZeroDivisionError",)),
    "int % 0": (lambda lib: t(lib, [1, 2], np.int64) % 0, ("ZeroDivisionError",)),
    "int fmod tensor 0": (lambda lib: t(lib, [1, 2], np.int32).fmod(t(lib, [1, 0], np.int32)), ("ZeroDivisionError",)),
}


@pytest.mark.parametrize("case", REFUSED)
def test_item6_refused_as_pytorch(case):
    """Mixed float dtypes inside a layer, softmax of integers, subtracting or negating bools, bad shapes and
    integer division by 0 raise RuntimeError (NotImplementedError, a subclass, for softmax) in both."""
    program, phrases = REFUSED[case]
    raises_both(quiet(program), RuntimeError, both_say=phrases)


def test_item6_mixed_dtype_errors_name_the_op_and_both_dtypes():
    for program, op in ((REFUSED["matmul float32 @ float64"][0], "matmul"),
                        (REFUSED["linear, float64 batch into a float32 model"][0], "linear"),
                        (REFUSED["conv2d, float64 batch into a float32 model"][0], "conv2d")):
        with pytest.raises(RuntimeError) as info:
            program(tg)
        assert op in str(info.value) and "float32" in str(info.value) and "float64" in str(info.value)


# ---------------------------------------------------------------- item 7: accepted as PyTorch accepts

def test_item7_backward_twice_through_a_graph_that_saved_nothing():
    """(x + 1).sum() keeps no tensor: a second backward works and accumulates; (x * x).sum() saved x and
    refuses, in both."""
    def twice(lib, fn):
        x = lib.tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = fn(x).sum()
        y.backward()
        y.backward()
        return x.grad
    run_both(twice, lambda x: x + 1)
    run_both(twice, lambda x: (x - 1).reshape(2, 1).expand(2, 3).permute(1, 0)[1:].clone())
    raises_both(twice, RuntimeError, lambda x: x * x, both_say=("second time",))


POOLS = [  # (input side, kernel_size, stride, dilation): windows that start inside the input but span past it
    (2, 2, None, 2), (3, 2, None, 2), (4, 2, 2, 2), (5, 2, 1, 2), (4, 3, 2, 2), (5, 3, 2, 2), (5, 3, 3, 2),
    (7, 3, 2, 3), (4, 2, 3, 1),
]


@pytest.mark.parametrize("side, kernel_size, stride, dilation", POOLS)
def test_item7_max_pool2d_ceil_mode_with_dilation(side, kernel_size, stride, dilation):
    """Values and gradients as PyTorch, where ceil_mode lets a dilated window hang over the edge."""
    data = np.random.default_rng(side * 10 + kernel_size).permutation(side * side).reshape(1, 1, side, side)
    run_both(values_and_grads(lambda lib, x: functional(lib).max_pool2d(
        x, kernel_size, stride=stride, dilation=dilation, ceil_mode=True), data))


def test_item7_max_pool2d_issue_example():
    run_both(quiet(lambda lib: functional(lib).max_pool2d(lib.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), kernel_size=2,
                                                          dilation=2, ceil_mode=True)))


CLAMPS = {
    "min and max tensors": (lambda lib, x, lo, hi: x.clamp(lo, hi), [-2.0, 0.5, 1.0, 3.0, 5.0],
                            [0.0, 0.0, 1.0, 0.0, 0.0], [2.0, 2.0, 2.0, 3.0, 4.0]),
    "bounds broadcast": (lambda lib, x, lo, hi: x.clamp(lo, hi), [[-2.0, 0.5, 3.0], [1.0, 2.5, 9.0]],
                         [[0.0], [2.0]], [1.5, 2.5, 4.0]),
    "min > max: max wins": (lambda lib, x, lo, hi: x.clamp(lo, hi), [-1.0, 1.0, 5.0], [3.0, 3.0, 3.0],
                            [2.0, 2.0, 2.0]),
    "min == max": (lambda lib, x, lo, hi: x.clamp(lo, hi), [-1.0, 2.0, 5.0], [2.0, 2.0, 2.0], [2.0, 2.0, 2.0]),
    "min only": (lambda lib, x, lo: x.clamp(min=lo), [-1.0, 2.0, 5.0], [0.0, 2.0, 1.0]),
    "max only": (lambda lib, x, hi: lib.clamp(x, max=hi), [-1.0, 2.0, 5.0], [0.0, 2.0, 1.0]),
    "clip, NaN input": (lambda lib, x, lo, hi: x.clip(lo, hi), [NAN, 2.0, 5.0], [0.0, 0.0, 0.0], [3.0, 3.0, 3.0]),
}


@pytest.mark.parametrize("case", CLAMPS)
def test_item7_clamp_with_tensor_bounds(case):
    """Values and the gradients of input, min and max, as PyTorch's clamp.Tensor."""
    fn, *arrays = CLAMPS[case]
    run_both(values_and_grads(fn, *arrays))


def test_item7_clamp_tensor_bounds_promote_and_refuse_mixing():
    run_both(quiet(lambda lib: t(lib, [1, 5], np.int64).clamp(t(lib, [1.5], np.float32))))
    run_both(quiet(lambda lib: t(lib, [1.0, 5.0], np.float32).clamp(min=t(lib, 3.0, np.float64))))
    run_both(quiet(lambda lib: t(lib, [1.0, 5.0], np.float32).clamp(min=t(lib, [3.0], np.float64))))
    raises_both(lambda lib: t(lib, [1.0, 5.0], np.float32).clamp(min=t(lib, [3.0], np.float32), max=2), TypeError)


TENSOR_LISTS = {
    "0-d tensors": lambda lib: lib.tensor([lib.tensor(1.5), lib.tensor(2.0)]),
    "0-d float64 and float32": lambda lib: lib.tensor([t(lib, 1.5, np.float64), lib.tensor(2.0)]),
    "0-d int64 and float32": lambda lib: lib.tensor([lib.tensor(1), lib.tensor(2.5)]),
    "0-d int64": lambda lib: lib.tensor([lib.tensor(1), lib.tensor(2)]),
    "one-element tensors": lambda lib: lib.tensor([lib.tensor([1.5]), lib.tensor([[2.0]])]),
    "nested, with numbers": lambda lib: lib.tensor([[lib.tensor(1.0), 2], [3, lib.tensor([4])]]),
    "Tensor(...)": lambda lib: lib.Tensor([lib.tensor(1.5), lib.tensor(2.0)]),
    "with a dtype": lambda lib: lib.tensor([lib.tensor(1.5), lib.tensor(2.0)], dtype=lib.float64),
}


@pytest.mark.parametrize("case", TENSOR_LISTS)
def test_item7_tensor_from_a_list_of_tensors(case):
    """One-element tensors inside the data are numbers (their dtypes promote); larger ones are refused."""
    run_both(quiet(TENSOR_LISTS[case]))


def test_item7_tensor_from_a_list_of_larger_tensors_is_refused():
    raises_both(lambda lib: lib.tensor([lib.tensor([1.0, 3.0]), lib.tensor([2.0, 4.0])]), ValueError,
                both_say=("one element",))


def test_item7_tensor_from_tensors_that_require_grad():
    """The values are copied out of the graph (PyTorch warns; both give a leaf that does not require grad)."""
    def program(lib):
        x = lib.tensor(np.array([1.5, 2.0]), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = lib.tensor([x[0], x[1] * 2])
        return out, out.requires_grad
    run_both(program)

