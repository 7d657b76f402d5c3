"""The losses of tinygrad_cnn.functional and tinygrad_cnn.nn against PyTorch's, in float64: values, gradients
(w.r.t. the input, and the target and weights where PyTorch gives one) and second derivatives, then
central differences (gradcheck, gradgradcheck), huge logits, PyTorch's edge cases and its errors.

Strategies keep inputs off the kinks (l1 at x = y, smooth_l1/huber at |x - y| = beta/delta) and BCE's
probabilities off 0 and 1, where a finite difference is not a derivative."""
from __future__ import annotations

import inspect
import warnings
from functools import partial
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# pytest puts tests/ on sys.path: the classification configurations of the other CNN ops
from test_cnn_ops import classification_configs
from test_cnn_torch import check_against_torch as cnn_check_against_torch

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, nn
from tinygrad_cnn import functional as F
from tinygrad_cnn.testing import arrays, shapes

REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
SMALL_SHAPES = shapes(min_dims=0, max_dims=3, max_side=3)


class Call(NamedTuple):
    """One call of a loss: `inputs` are differentiated, `constants` (arrays) and `kwargs` passed by name."""
    inputs: list[np.ndarray]
    constants: dict[str, np.ndarray]
    kwargs: dict[str, Any]

    def ours(self, fn: Callable) -> Callable:
        return partial(fn, **{k: Tensor(v) for k, v in self.constants.items()}, **self.kwargs)

    def theirs(self, fn: Callable) -> Callable:
        return partial(fn, **{k: torch.tensor(v) for k, v in self.constants.items()}, **self.kwargs)


@st.composite
def broadcasting_weights(draw, shape: tuple[int, ...], low: float = 0.1, high: float = 2.0) -> np.ndarray:
    """A positive weight whose shape broadcasts to `shape` without growing it: a suffix of it, some sides 1."""
    suffix = shape[len(shape) - draw(st.integers(0, len(shape))):]
    return draw(arrays(tuple(draw(st.sampled_from([1, n])) for n in suffix), low, high))


@st.composite
def difference_calls(draw, kinks: Callable[[dict], tuple[float, ...]] = lambda kwargs: (), **parameters):
    """input and target = input - d, with d kept at least 0.01 from each kink of the loss."""
    kwargs = {"reduction": draw(REDUCTIONS), **{k: draw(v) for k, v in parameters.items()}}
    shape = draw(SMALL_SHAPES)
    x = draw(arrays(shape, -2.0, 2.0))
    d = draw(arrays(shape, -3.0, 3.0, away_from=kinks(kwargs)))
    return Call([x, np.asarray(x - d)], {}, kwargs)


def smooth_l1_kinks(kwargs: dict) -> tuple[float, ...]:
    return (0.0,) if kwargs["beta"] == 0 else (-kwargs["beta"], kwargs["beta"])


def soft_targets(shape: tuple[int, ...]) -> st.SearchStrategy:
    """Targets inside (0, 1), so that a finite difference stays in BCE's domain (hard labels: see below)."""
    return arrays(shape, 0.01, 0.99)


@st.composite
def bce_calls(draw):
    """Probabilities off 0 and 1 and targets, both differentiated; maybe a broadcasting weight."""
    shape = draw(SMALL_SHAPES)
    x, y = draw(arrays(shape, 0.02, 0.98)), draw(soft_targets(shape))
    weight = {"weight": draw(broadcasting_weights(shape))} if draw(st.booleans()) else {}
    return Call([x, y], weight, {"reduction": draw(REDUCTIONS)})


@st.composite
def bce_with_logits_calls(draw, low: float = -6.0, high: float = 6.0):
    """Logits and targets, both differentiated; maybe a weight and a pos_weight (both broadcasting)."""
    shape = draw(SMALL_SHAPES)
    z, y = draw(arrays(shape, low, high)), draw(soft_targets(shape))
    constants = {name: draw(broadcasting_weights(shape)) for name in ("weight", "pos_weight") if draw(st.booleans())}
    return Call([z, y], constants, {"reduction": draw(REDUCTIONS)})


@st.composite
def kl_div_calls(draw):
    """Log-probabilities and a target, both differentiated: probabilities off 0 (log t has no derivative
    at 0), or log-probabilities with log_target."""
    shape = draw(SMALL_SHAPES)
    log_target = draw(st.booleans())
    target = draw(arrays(shape, -3.0, 1.0) if log_target else arrays(shape, 0.05, 1.0))
    kwargs = {"reduction": draw(st.sampled_from(["mean", "batchmean", "sum", "none"])), "log_target": log_target}
    return Call([draw(arrays(shape, -3.0, 0.5)), target], {}, kwargs)


def class_weights(classes: int) -> st.SearchStrategy:
    return arrays((classes,), 0.1, 2.0)


@st.composite
def weighted_cross_entropy_calls(draw):
    """Class indices (some ignored) or probabilities, label smoothing, and maybe a class weight: a constant
    for indices (PyTorch has no gradient for it there), differentiated with probability targets."""
    logits, target, kwargs = draw(classification_configs())
    weight = draw(st.none() | class_weights(logits.shape[0 if logits.ndim == 1 else 1]))
    if target.dtype.kind == "f":
        return Call([logits, target] + ([] if weight is None else [weight]), {}, kwargs)
    return Call([logits], {"target": target, **({} if weight is None else {"weight": weight})}, kwargs)


@st.composite
def weighted_nll_calls(draw):
    logp, target, kwargs = draw(classification_configs(targets=st.just("indices")))
    del kwargs["label_smoothing"]
    weight = draw(st.none() | class_weights(logp.shape[0 if logp.ndim == 1 else 1]))
    return Call([logp], {"target": target, **({} if weight is None else {"weight": weight})}, kwargs)


LOSSES = {
    "l1_loss": (F.l1_loss, TF.l1_loss, difference_calls(lambda kwargs: (0.0,))),
    "mse_loss": (F.mse_loss, TF.mse_loss, difference_calls()),
    "smooth_l1_loss": (F.smooth_l1_loss, TF.smooth_l1_loss,
                       difference_calls(smooth_l1_kinks, beta=st.just(0.0) | st.floats(0.1, 2.0))),
    "huber_loss": (F.huber_loss, TF.huber_loss,
                   difference_calls(lambda kwargs: (-kwargs["delta"], kwargs["delta"]), delta=st.floats(0.1, 2.0))),
    "binary_cross_entropy": (F.binary_cross_entropy, TF.binary_cross_entropy, bce_calls()),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                                         bce_with_logits_calls()),
    "kl_div": (F.kl_div, TF.kl_div, kl_div_calls()),
    "cross_entropy": (F.cross_entropy, TF.cross_entropy, weighted_cross_entropy_calls()),
    "nll_loss": (F.nll_loss, TF.nll_loss, weighted_nll_calls()),
}


def quietly(fn: Callable) -> Callable:
    """PyTorch's kl_div warns on every reduction='mean' call that 'mean' is not the KL divergence."""
    def call(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args)
    return call


# ================================================================ against PyTorch

def check_against_torch(ours: Callable, theirs: Callable, inputs: list[np.ndarray], second_order: bool = True,
                        seed: int = 0) -> None:
    """test_cnn_torch's check (value, VJPs, second derivatives) to 1e-6: PyTorch's own BCE double
    backward loses more digits than that file's 1e-10."""
    cnn_check_against_torch(ours, theirs, inputs, second_order, seed, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", LOSSES)
@settings(max_examples=80)
@given(data=st.data())
def test_matches_torch(name, data):
    """Value, VJPs and second derivatives equal PyTorch's."""
    ours, theirs, calls = LOSSES[name]
    call = data.draw(calls)
    check_against_torch(call.ours(ours), quietly(call.theirs(theirs)), call.inputs)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("check", [gradcheck, gradgradcheck], ids=["first order", "second order"])
@settings(max_examples=30)
@given(data=st.data())
def test_derivatives(name, check, data):
    """Central differences in float64, independent of PyTorch."""
    ours, _, calls = LOSSES[name]
    call = data.draw(calls)
    assert check(call.ours(ours), [Tensor(a, requires_grad=True) for a in call.inputs])


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@settings(max_examples=40)
@given(data=st.data())
def test_bce_with_hard_labels(name, data):
    """Targets of exactly 0 and 1, the usual case (a constant here: a finite difference would leave [0, 1])."""
    ours, theirs, calls = LOSSES[name]
    call = data.draw(calls)
    labels = data.draw(hnp.arrays(np.float64, call.inputs[1].shape, elements=st.sampled_from([0.0, 1.0])))
    call = Call(call.inputs[:1], {**call.constants, "target": labels}, call.kwargs)
    check_against_torch(call.ours(ours), call.theirs(theirs), call.inputs)


@settings(max_examples=80)
@given(bce_with_logits_calls(low=-1000.0, high=1000.0))
def test_bce_with_logits_is_stable_for_huge_logits(call):
    """exp(1000) overflows: the loss is the softplus form, where no exp sees a positive number."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from NumPy either
        check_against_torch(call.ours(F.binary_cross_entropy_with_logits),
                            call.theirs(TF.binary_cross_entropy_with_logits), call.inputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_of_saturated_logits(dtype):
    z = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0], dtype)
    for y in (np.zeros_like(z), np.ones_like(z), np.full_like(z, 0.25)):
        x = Tensor(z, requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(x, Tensor(y), reduction="none")
        loss.sum().backward()
        tx = torch.tensor(z, requires_grad=True)
        tloss = TF.binary_cross_entropy_with_logits(tx, torch.tensor(y), reduction="none")
        tloss.sum().backward()
        assert loss.dtype == x.grad.dtype == dtype
        np.testing.assert_allclose(loss.detach().numpy(), tloss.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_bce_clamps_log_at_minus_100():
    """Probabilities of exactly 0 and 1 cost at most 100 per element, as in PyTorch, and the gradient stays
    finite (PyTorch's backward divides by max(x (1 - x), 1e-12); ours gives a clamped log's term 0)."""
    x, y = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5]), np.array([1.0, 0.0, 0.5, 0.5, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log(0) is evaluated
        xt = Tensor(x, requires_grad=True)
        loss = F.binary_cross_entropy(xt, Tensor(y), reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(),
                               TF.binary_cross_entropy(torch.tensor(x), torch.tensor(y), reduction="none").numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(loss.detach().numpy()[:5], [100.0, 100.0, 50.0, 50.0, 100.0])
    assert np.isfinite(xt.grad.numpy()).all()


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
def test_kl_div_counts_0_log_0_as_0(reduction):
    """Zero target probabilities add nothing (PyTorch's xlogy), with no NaN in the input's gradient."""
    logp = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    target = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_against_torch(partial(F.kl_div, target=Tensor(target), reduction=reduction),
                            quietly(partial(TF.kl_div, target=torch.tensor(target), reduction=reduction)), [logp])
    assert F.kl_div(Tensor(logp), Tensor(target), reduction="none").numpy()[0, 0] == 0.0


NOTHING_KEPT = {
    "cross_entropy": ("cross_entropy", {}),
    "cross_entropy label smoothing": ("cross_entropy", {"label_smoothing": 0.2}),
    "cross_entropy class weights": ("cross_entropy", {"weight": np.array([0.5, 2.0, 1.0])}),
    "nll_loss": ("nll_loss", {}),
    "nll_loss class weights": ("nll_loss", {"weight": np.array([0.5, 2.0, 1.0])}),
}


@pytest.mark.parametrize("name, kwargs", NOTHING_KEPT.values(), ids=NOTHING_KEPT.keys())
def test_mean_over_no_kept_target_is_nan_with_zero_gradient(name, kwargs):
    """Every target ignored: PyTorch's mean is 0/0 = NaN, but its gradient is 0 (nothing was picked), so an
    optimizer step changes nothing. (Ours used to return 0.) Not compared: PyTorch's derivative of that zero
    gradient by the upstream gradient, which is NaN."""
    arrays_ = {"target": np.full(3, -100), **{k: v for k, v in kwargs.items() if isinstance(v, np.ndarray)}}
    call = Call([np.random.default_rng(0).standard_normal((3, 3))], arrays_,
                {k: v for k, v in kwargs.items() if not isinstance(v, np.ndarray)})
    check_against_torch(call.ours(getattr(F, name)), call.theirs(getattr(TF, name)), call.inputs,
                        second_order=False)
    x = Tensor(call.inputs[0], requires_grad=True)
    loss = call.ours(getattr(F, name))(x)
    loss.backward()
    assert np.isnan(loss.item()) and not x.grad.numpy().any()


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "kl_div",
                                  "binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_mean_of_an_empty_batch_is_nan(name):
    empty = np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = getattr(TF, name)(torch.tensor(empty), torch.tensor(empty))
    assert np.isnan(expected.item()) and np.isnan(getattr(F, name)(Tensor(empty), Tensor(empty)).item())


# ================================================================ errors

def _arrays(*shape_and_fill, dtype=np.float64):
    shape, fill = shape_and_fill[:-1], shape_and_fill[-1]
    return np.full(shape, fill, dtype=dtype)


X, LABELS = _arrays(2, 3, 0.5), np.array([0, 1])
ERRORS = {  # (function, args, kwargs, PyTorch's error type, our message)
    "bce input above 1": ("binary_cross_entropy", (_arrays(2, 3, 1.5), X), {}, RuntimeError,
                          r"binary_cross_entropy: all elements of input should be between 0 and 1, got 1.5"),
    "bce input nan": ("binary_cross_entropy", (_arrays(2, 3, np.nan), X), {}, RuntimeError,
                      r"elements of input should be between 0 and 1, got nan"),
    "bce target below 0": ("binary_cross_entropy", (X, _arrays(2, 3, -0.5)), {}, RuntimeError,
                           r"all elements of target should be between 0 and 1, got -0.5 \(shape \(2, 3\)\)"),
    "bce shapes": ("binary_cross_entropy", (X, X[:1]), {}, ValueError,
                   r"binary_cross_entropy: input \(2, 3\) and target \(1, 3\) must have the same shape"),
    "bce integer target": ("binary_cross_entropy", (X, _arrays(2, 3, 1, dtype=np.int64)), {}, RuntimeError,
                           r"target must be a floating point tensor of probabilities, got dtype int64"),
    "bce weight shape": ("binary_cross_entropy", (X, X), {"weight": _arrays(4, 1.0)}, RuntimeError,
                         r"weight of shape \(4,\) does not broadcast to the input's shape \(2, 3\)"),
    "bce weight grows": ("binary_cross_entropy", (X, X), {"weight": _arrays(4, 2, 3, 1.0)}, RuntimeError,
                         r"weight of shape \(4, 2, 3\) does not broadcast"),
    "bce reduction": ("binary_cross_entropy", (X, X), {"reduction": "avg"}, ValueError,
                      r"binary_cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    "bcel shapes": ("binary_cross_entropy_with_logits", (X, X.T), {}, ValueError,
                    r"binary_cross_entropy_with_logits: input \(2, 3\) and target \(3, 2\) must have the same shape"),
    "bcel integer target": ("binary_cross_entropy_with_logits", (X, _arrays(2, 3, 1, dtype=np.int64)), {},
                            RuntimeError, r"binary_cross_entropy_with_logits: target must be a floating point"),
    "bcel pos_weight shape": ("binary_cross_entropy_with_logits", (X, X), {"pos_weight": _arrays(2, 1.0)},
                              RuntimeError, r"pos_weight of shape \(2,\) does not broadcast to the input's shape"),
    "bcel reduction": ("binary_cross_entropy_with_logits", (X, X), {"reduction": "max"}, ValueError,
                       r"reduction must be 'mean', 'sum' or 'none', got 'max'"),
    "l1 reduction": ("l1_loss", (X, X), {"reduction": "avg"}, ValueError, r"l1_loss: reduction must be"),
    "smooth_l1 reduction": ("smooth_l1_loss", (X, X), {"reduction": "avg"}, ValueError, r"smooth_l1_loss: reduction"),
    "smooth_l1 negative beta": ("smooth_l1_loss", (X, X), {"beta": -1.0}, RuntimeError,
                                r"smooth_l1_loss: beta must be non-negative, got -1.0"),
    "huber reduction": ("huber_loss", (X, X), {"reduction": "avg"}, ValueError, r"huber_loss: reduction must be"),
    "huber zero delta": ("huber_loss", (X, X), {"delta": 0.0}, RuntimeError, r"huber_loss: delta must be positive"),
    "kl reduction": ("kl_div", (X, X), {"reduction": "avg"}, ValueError,
                     r"kl_div: reduction must be 'mean', 'batchmean', 'sum' or 'none', got 'avg'"),
    "ce weight length": ("cross_entropy", (X, LABELS), {"weight": _arrays(4, 1.0)}, RuntimeError,
                         r"cross_entropy: weight must hold one value per class, shape \(3,\), got \(4,\) "
                         r"\(input \(2, 3\)\)"),
    "ce weight 2-D": ("cross_entropy", (X, LABELS), {"weight": _arrays(1, 3, 1.0)}, RuntimeError,
                      r"weight must hold one value per class, shape \(3,\), got \(1, 3\)"),
    "ce probabilities with ignore_index": ("cross_entropy", (X, X), {"ignore_index": 1}, RuntimeError,
                                           r"cross_entropy: ignore_index=1 is not supported for probability targets"),
    "ce weighted target out of range": ("cross_entropy", (X, np.array([0, 3])), {"weight": _arrays(3, 1.0)},
                                        IndexError, r"target 3 is out of range for 3 classes"),
    "nll weight length": ("nll_loss", (X, LABELS), {"weight": _arrays(2, 1.0)}, RuntimeError,
                          r"nll_loss: weight must hold one value per class, shape \(3,\), got \(2,\)"),
    "nll reduction": ("nll_loss", (X, LABELS), {"reduction": "avg"}, ValueError, r"nll_loss: reduction must be"),
}


def _call(module, name: str, args: tuple, kwargs: dict, tensor: Callable) -> Any:
    return getattr(module, name)(*map(tensor, args), **{k: tensor(v) if isinstance(v, np.ndarray) else v
                                                         for k, v in kwargs.items()})


@pytest.mark.parametrize("name, args, kwargs, error, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_pytorchs_and_name_the_problem(name, args, kwargs, error, message):
    with pytest.raises(error):
        _call(TF, name, args, kwargs, torch.tensor)
    with pytest.raises(error, match=message):
        _call(F, name, args, kwargs, Tensor)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "kl_div"])
def test_different_shapes_raise_where_pytorch_broadcasts(name):
    """Stricter than PyTorch, which broadcasts (N, 1) against (N,) into an N x N loss (with a warning, save
    for kl_div): a ValueError naming both shapes, as mse_loss always gave."""
    x, y = np.ones((3, 1)), np.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert _call(TF, name, (x, y), {"reduction": "none"}, torch.tensor).shape == (3, 3)
    with pytest.raises(ValueError, match=rf"{name}: input \(3, 1\) and target \(3,\) must have the same shape"):
        _call(F, name, (x, y), {}, Tensor)


# ================================================================ API: signatures, modules, drawings

DEPRECATED = {"size_average", "reduce"}
LEFT_OUT = {"weight"}  # the elementwise weight PyTorch 2.x added to l1_loss, mse_loss and huber_loss
FUNCTIONS = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
             "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"]
MODULES = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss",
           "NLLLoss", "SmoothL1Loss"]


def expected_parameters(theirs: Callable, left_out: set[str]) -> list[tuple[str, Any, Any]]:
    """PyTorch's parameters without the deprecated ones; those after a deprecated one are keyword-only."""
    expected, keyword_only = [], False
    for p in inspect.signature(theirs).parameters.values():
        keyword_only |= p.name in DEPRECATED
        if p.name not in DEPRECATED | left_out and p.name != "self":
            expected.append((p.name, p.default, p.KEYWORD_ONLY if keyword_only else p.POSITIONAL_OR_KEYWORD))
    return expected


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions_have_pytorchs_signature(name):
    left_out = LEFT_OUT if name in ("l1_loss", "mse_loss", "huber_loss") else set()
    ours = [(p.name, p.default, p.kind) for p in inspect.signature(getattr(F, name)).parameters.values()]
    assert ours == expected_parameters(getattr(TF, name), left_out)


@pytest.mark.parametrize("name", MODULES)
def test_modules_have_pytorchs_signature(name):
    ours = [(p.name, p.default, p.kind) for p in inspect.signature(getattr(nn, name)).parameters.values()]
    assert ours == expected_parameters(getattr(torch.nn, name), set())


def test_a_positional_call_meaning_something_else_in_pytorch_fails():
    """PyTorch's third positional argument of l1_loss is the deprecated size_average."""
    with pytest.raises(TypeError):
        F.l1_loss(Tensor(X), Tensor(X), "sum")
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss(None, -100)
    assert nn.HuberLoss("sum", 0.5).delta == 0.5  # no deprecated argument here: positional, as in PyTorch


RNG = np.random.default_rng(3)
LOGITS, PROBS = RNG.standard_normal((4, 3)), RNG.uniform(0.05, 0.95, (4, 3))
W3 = np.array([0.5, 2.0, 1.5])
MODULE_CALLS = {  # (module, constructor kwargs, input, target)
    "BCELoss": ("BCELoss", {"weight": W3, "reduction": "sum"}, PROBS, PROBS[::-1].copy()),
    "BCEWithLogitsLoss": ("BCEWithLogitsLoss", {"weight": W3[::-1].copy(), "pos_weight": W3}, LOGITS, PROBS),
    "CrossEntropyLoss": ("CrossEntropyLoss", {"weight": W3, "ignore_index": 1, "label_smoothing": 0.1}, LOGITS,
                         np.array([0, 1, 2, 2])),
    "CrossEntropyLoss probabilities": ("CrossEntropyLoss", {"weight": W3, "reduction": "none"}, LOGITS, PROBS),
    "NLLLoss": ("NLLLoss", {"weight": W3, "reduction": "mean"}, LOGITS, np.array([2, 1, 0, 2])),
    "HuberLoss": ("HuberLoss", {"delta": 0.7}, LOGITS, PROBS),
    "SmoothL1Loss": ("SmoothL1Loss", {"beta": 0.4, "reduction": "sum"}, LOGITS, PROBS),
    "L1Loss": ("L1Loss", {"reduction": "none"}, LOGITS, PROBS),
    "MSELoss": ("MSELoss", {}, LOGITS, PROBS),
    "KLDivLoss": ("KLDivLoss", {"reduction": "batchmean", "log_target": True}, LOGITS, np.log(PROBS)),
}


@pytest.mark.parametrize("name, kwargs, x, y", MODULE_CALLS.values(), ids=MODULE_CALLS.keys())
def test_modules_call_their_function_with_their_arguments(name, kwargs, x, y):
    ours = getattr(nn, name)(**{k: Tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})
    theirs = getattr(torch.nn, name)(**{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                        for k, v in kwargs.items()})
    check_against_torch(lambda x: ours(x, Tensor(y)), lambda x: theirs(x, torch.tensor(y)), [x], second_order=False)
    # weights are buffers, as in PyTorch: saved in state_dict, converted by .to()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if ours.state_dict():
        assert all(b.dtype == np.float32 for b in ours.float().buffers())


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_loss_is_one_node_of_a_drawing(name):
    """@composite: every node a loss records points to one call of that loss."""
    x = Tensor(PROBS, requires_grad=True)
    target = Tensor(np.array([0, 1, 2, 0])) if name in ("cross_entropy", "nll_loss") else Tensor(PROBS[::-1].copy())
    assert getattr(F, name)(x, target).grad_fn.scope.outermost.name == name


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float32_stays_float32(name):
    x = Tensor(PROBS.astype(np.float32), requires_grad=True)
    target = Tensor(np.array([0, 1, 2, 0])) if name in ("cross_entropy", "nll_loss") else \
        Tensor(PROBS[::-1].astype(np.float32))
    loss = getattr(F, name)(x, target)
    loss.backward()
    assert loss.dtype == x.grad.dtype == np.float32
