"""Tensor semantics checked against PyTorch itself: `.data`, in-place ops and item assignment,
version counters, graph memory and structure, saved-tensor hooks, grad mode per thread, devices and
dtypes.

Each test is a *dual program*: a function of the library module (`torch` or `tinygrad_cnn`) that
is run once with each; whatever it returns (tensors, numbers, flags, nested tuples) must agree.
Error cases must raise the same exception type in both. A few tests check our library alone (where
PyTorch's CPU build behaves differently on purpose, or where the check is about our memory).

    TG_ORACLE_SELFTEST=1 python -m pytest tests/test_semantics_torch.py tests/test_custom_function_torch.py

runs every program with torch on both sides and skips the tests of our library alone: a check that
the programs themselves are right, whatever state our library is in.
"""
from __future__ import annotations

import copy
import gc
import importlib
import operator
import os
import threading
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
SELF_TEST = bool(os.environ.get("TG_ORACLE_SELFTEST"))
if SELF_TEST:
    tg = torch
else:
    import tinygrad_cnn as tg
ours_only = pytest.mark.skipif(SELF_TEST, reason="checks our library alone")

# float64 inputs; no entry is 0 and no product of entries is 0, so relu and clamp are away from their kinks
X = np.array([-1.5, -0.25, 0.5, 2.0])
Y = np.array([0.75, -1.25, 1.5, 0.5])
M = np.array([[1.0, 3.0, -2.0], [4.0, 2.0, 0.5]])


# ---------------------------------------------------------------- the dual-program harness

def functional(lib):
    """`lib.nn.functional`, imported on use so that one missing module fails only the tests using it."""
    return importlib.import_module(lib.__name__ + ".nn.functional")


def is_tensor(v) -> bool:
    return isinstance(v, (torch.Tensor, tg.Tensor))


# (rtol, atol) by dtype; integers and booleans must be equal
TOLERANCES = {np.dtype(np.float64): (1e-6, 1e-12), np.dtype(np.float32): (1e-5, 1e-6),
              np.dtype(np.float16): (1e-3, 1e-3)}


def assert_same(ours, theirs, where: str = "result") -> None:
    """`ours` agrees with `theirs` (torch's), recursively: tensors and arrays by dtype, shape and
    value; tuples and lists element by element; bools, ints, strings exactly; floats to 1e-6."""
    if is_tensor(theirs) or isinstance(theirs, np.ndarray):
        assert is_tensor(ours) == is_tensor(theirs), \
            f"{where}: got {type(ours).__name__} where torch gives {type(theirs).__name__}"
        a = ours.detach().numpy() if is_tensor(ours) else np.asarray(ours)
        b = theirs.detach().numpy() if is_tensor(theirs) else theirs
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype}, torch's is {b.dtype}"
        assert a.shape == b.shape, f"{where}: shape {a.shape}, torch's is {b.shape}"
        rtol, atol = TOLERANCES.get(b.dtype, (0, 0))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=where)
    elif isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)), f"{where}: got {type(ours).__name__}, torch gives a sequence"
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items, torch has {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), f"{where}: keys {ours!r} vs {theirs!r}"
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif theirs is None:
        assert ours is None, f"{where}: got {ours!r}, torch gives None"
    elif isinstance(theirs, bool):
        assert isinstance(ours, (bool, np.bool_)) and bool(ours) == theirs, \
            f"{where}: got {ours!r}, torch gives {theirs}"
    elif isinstance(theirs, int):
        assert isinstance(ours, (int, np.integer)) and not isinstance(ours, bool) and ours == theirs, \
            f"{where}: got {ours!r}, torch gives {theirs}"
    elif isinstance(theirs, float):
        assert isinstance(ours, (float, np.floating)), f"{where}: got {ours!r}, torch gives float {theirs}"
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-12), f"{where}: got {ours!r}, torch gives {theirs}"
    else:
        assert ours == theirs, f"{where}: got {ours!r}, torch gives {theirs!r}"


def run_both(program, *args):
    """Run `program(lib, *args)` with torch and with ours (each on its own copy of the args) and
    compare the results; returns (ours, theirs)."""
    theirs = program(torch, *copy.deepcopy(args))
    ours = program(tg, *copy.deepcopy(args))
    assert_same(ours, theirs)
    return ours, theirs


def raises_both(program, exc: type[BaseException], *args, both_say: tuple[str, ...] = (),
                ours_says: tuple[str, ...] = ()) -> None:
    """`program` raises `exc` (or a subclass) in both libraries; both messages contain every
    phrase of `both_say`, ours also every phrase of `ours_says` (case-insensitive)."""
    for label, lib in (("torch", torch), ("ours", tg)):
        with pytest.raises(exc) as info:
            program(lib, *copy.deepcopy(args))
        message = str(info.value).lower()
        wanted = both_say + (ours_says if label == "ours" and not SELF_TEST else ())
        for phrase in wanted:
            assert phrase.lower() in message, f"{label}: {phrase!r} not in the message {str(info.value)!r}"


def leaf(lib, a=X, requires_grad: bool = True):
    return lib.tensor(np.array(a, dtype=np.float64), requires_grad=requires_grad)


# Names of graph nodes, compared after normalising: namespace, trailing digits and the suffix
# "Backward(s)" dropped, underscores removed, lower case ('torch::autograd::CopyBackwards' -> 'copy',
# 'ClampBackward1' -> 'clamp', 'MulBackward' -> 'mul'). Our names that still differ map here.
OURS_TO_TORCH_NODE_NAMES = {"setitem": "copyslices", "accumulate": "accumulategrad", "relu_": "relu"}
# ours computes these in-place ops with `where` (one gradient rule), so their node is a WhereBackward
TORCH_WHERE_LIKE = {"zero", "fill", "copy", "maskedfill"}


def node_name(node, lib) -> str:
    name = node.name().split("::")[-1].rstrip("0123456789")
    for suffix in ("Backwards", "Backward"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = name.replace("_", "").lower()
    if lib is torch:
        return "where" if name in TORCH_WHERE_LIKE else name
    return OURS_TO_TORCH_NODE_NAMES.get(name, name)


# ---------------------------------------------------------------- 1. .data and .numpy()

def test_data_shares_memory_and_is_detached():
    """`.data` is a tensor on the same memory that does not require grad and has no grad_fn, for a
    leaf and a non-leaf; writing through it changes the original without bumping its version."""
    def program(lib):
        p = leaf(lib)
        d = p.data
        d[0] = 5.0
        d.mul_(2)
        h = p * 2
        return (p, d, d.requires_grad, d.is_leaf, d.grad_fn is None, p.requires_grad, p.is_leaf, p._version,
                h.data, h.data.requires_grad, h.data.grad_fn is None, h.requires_grad)
    run_both(program)


def test_data_update_trains():
    """`w.data -= lr * w.grad` is the old way to take a step: a few steps of least squares by hand."""
    rng = np.random.default_rng(1)
    xb, yb, w0 = rng.standard_normal((6, 3)), rng.standard_normal(6), rng.standard_normal(3)

    def program(lib):
        w = lib.tensor(w0, requires_grad=True)
        inputs, targets = lib.tensor(xb), lib.tensor(yb)
        losses = []
        for _ in range(5):
            loss = ((inputs @ w - targets) ** 2).mean()
            loss.backward()
            w.data -= 0.1 * w.grad
            w.grad.zero_()
            losses.append(loss.item())
        return w, losses, w.is_leaf, w.requires_grad, w.grad_fn is None
    ours, theirs = run_both(program)
    assert theirs[1][-1] < theirs[1][0]


def test_data_methods():
    """Methods on `.data`: `p.data.sub_(x)` returns p's data changed in place, `p.data.norm()`, and
    `lib.max(out.data, 1)` gives (values, indices), also as `.values` and `.indices`."""
    def program(lib):
        p = leaf(lib)
        r = p.data.sub_(lib.tensor(Y))
        norm = p.data.norm()
        out = leaf(lib, M) * 2
        values, indices = lib.max(out.data, 1)
        result = lib.max(out.data, 1)
        return (p, r, norm, values, indices, result.values, result.indices, values.requires_grad,
                p.requires_grad, p.is_leaf)
    run_both(program)


def test_data_assignment_swaps_storage():
    """`t.data = other` gives t other's values and shape; t stays a leaf requiring grad, and its
    gradient has the new shape."""
    def program(lib):
        p = leaf(lib)
        p.data = lib.tensor(np.arange(6.0).reshape(2, 3))
        shape = tuple(p.shape)
        (p * p).sum().backward()
        return p, shape, p.requires_grad, p.is_leaf, p.grad
    run_both(program)


def test_numpy_shares_memory():
    """`lib.tensor(array)` copies the array; `.numpy()` of a tensor not requiring grad shares its
    memory both ways (writes to the array show in the tensor, in-place ops show in the array)."""
    def program(lib):
        a = X.copy()
        t = lib.tensor(a)
        a[0] = 100.0
        n = t.numpy()
        n[1] = 7.0
        t.add_(1)
        return t, n.copy(), np.shares_memory(n, t.numpy()), np.shares_memory(a, t.numpy())
    run_both(program)


def test_numpy_of_tensor_requiring_grad_raises():
    """`.numpy()` raises RuntimeError on a leaf or non-leaf requiring grad (ours names `numpy`);
    `.detach().numpy()` works."""
    raises_both(lambda lib: leaf(lib).numpy(), RuntimeError, ours_says=("numpy",))
    raises_both(lambda lib: (leaf(lib) * 2).numpy(), RuntimeError, ours_says=("numpy",))
    run_both(lambda lib: leaf(lib).detach().numpy())


# ---------------------------------------------------------------- 2. in-place ops and item assignment

# each takes (lib, t) and applies one in-place op to t, returning what the op returns
INPLACE_OPS = {
    "add_": lambda lib, t: t.add_(1.5),
    "add_tensor": lambda lib, t: t.add_(lib.tensor(Y)),
    "sub_": lambda lib, t: t.sub_(lib.tensor(Y)),
    "mul_": lambda lib, t: t.mul_(2.0),
    "mul_tensor": lambda lib, t: t.mul_(lib.tensor(Y)),
    "div_": lambda lib, t: t.div_(lib.tensor(Y)),
    "pow_": lambda lib, t: t.pow_(2),
    "neg_": lambda lib, t: t.neg_(),
    "exp_": lambda lib, t: t.exp_(),
    "sqrt_": lambda lib, t: t.mul_(t).sqrt_(),  # of a square: a positive argument
    "clamp_": lambda lib, t: t.clamp_(-0.5, 1.0),
    "clamp_min": lambda lib, t: t.clamp_(min=0.0),
    "relu_": lambda lib, t: t.relu_(),
    "zero_": lambda lib, t: t.zero_(),
    "fill_": lambda lib, t: t.fill_(3.0),
    "copy_": lambda lib, t: t.copy_(lib.tensor(Y)),
    "masked_fill_": lambda lib, t: t.masked_fill_(lib.tensor(X > 0), -1.0),
    "masked_fill_compare": lambda lib, t: t.masked_fill_(t < 0, 0.5),
    "sigmoid_": lambda lib, t: t.sigmoid_(),
    "tanh_": lambda lib, t: t.tanh_(),
}

AUGMENTED = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv}
AUGMENTED_VALUES = {"number": lambda lib: 2.5, "tensor": lambda lib: lib.tensor(Y)}


def _setitem(index, value):
    def assign(lib, t):
        t[index(lib)] = value(lib)
    return assign


# each takes (lib, t) for t = lib.tensor(X) and assigns to items of t
ITEM_ASSIGNMENTS = {
    "int": _setitem(lambda lib: 1, lambda lib: 5.0),
    "negative_int": _setitem(lambda lib: -1, lambda lib: 5.0),
    "int_tensor_value": _setitem(lambda lib: 2, lambda lib: lib.tensor(7.0, dtype=lib.float64)),
    "slice_number": _setitem(lambda lib: slice(1, 3), lambda lib: 0.0),
    "slice_tensor": _setitem(lambda lib: slice(1, 3), lambda lib: lib.tensor(Y[:2])),
    "step_slice": _setitem(lambda lib: slice(None, None, 2), lambda lib: lib.tensor(Y[:2])),
    "bool_mask_number": _setitem(lambda lib: lib.tensor(X > 0), lambda lib: 0.0),
    "bool_mask_tensor": _setitem(lambda lib: lib.tensor(X > 0), lambda lib: lib.tensor(Y[:2])),
    "index_tensor_number": _setitem(lambda lib: lib.tensor(np.array([0, 3])), lambda lib: -2.0),
    "index_tensor_tensor": _setitem(lambda lib: lib.tensor(np.array([3, 0])), lambda lib: lib.tensor(Y[:2])),
    "broadcast_tensor": _setitem(lambda lib: slice(None), lambda lib: lib.tensor(np.array([9.0]))),
}

# the same on a 2-D tensor lib.tensor(M)
ITEM_ASSIGNMENTS_2D = {
    "row": _setitem(lambda lib: 0, lambda lib: lib.tensor(np.array([7.0, 8.0, 9.0]))),
    "column": _setitem(lambda lib: (slice(None), 1), lambda lib: lib.tensor(np.array([-1.0, -2.0]))),
    "element": _setitem(lambda lib: (1, 2), lambda lib: 3.5),
    "block": _setitem(lambda lib: (slice(None), slice(1, None)), lambda lib: 0.0),
    "bool_mask_2d": _setitem(lambda lib: lib.tensor(M > 1), lambda lib: -1.0),
}


@pytest.mark.parametrize("op", INPLACE_OPS)
def test_inplace_op(op):
    """An in-place op changes the tensor's values as torch's does, returns the same object, and
    increases `_version` by one (two for sqrt_, which runs after a mul_)."""
    def program(lib):
        t = lib.tensor(X)
        before = t._version
        r = INPLACE_OPS[op](lib, t)
        return t, r is t, t._version - before, t.requires_grad, t.is_leaf
    run_both(program)


@pytest.mark.parametrize("value", AUGMENTED_VALUES)
@pytest.mark.parametrize("op", AUGMENTED)
def test_augmented_assignment(op, value):
    """`t += v` (and -=, *=, /=) with a number or a tensor is in place: the name keeps the same
    object, whose values change and whose `_version` goes up by one."""
    def program(lib):
        t = lib.tensor(X)
        before = t._version
        r = AUGMENTED[op](t, AUGMENTED_VALUES[value](lib))
        return t, r is t, t._version - before
    run_both(program)


@pytest.mark.parametrize("data, case", [(X, c) for c in ITEM_ASSIGNMENTS] + [(M, c) for c in ITEM_ASSIGNMENTS_2D])
def test_item_assignment(data, case):
    """`t[index] = value` with ints, slices, boolean masks and integer index tensors, numbers or
    tensors as values, on a vector and on a matrix (rows, columns, elements, blocks): the values
    torch gives, in place, one version step."""
    assign = {**ITEM_ASSIGNMENTS, **ITEM_ASSIGNMENTS_2D}[case]

    def program(lib):
        t = lib.tensor(data)
        before = t._version
        assign(lib, t)
        return t, t._version - before
    run_both(program)


def _augmented_on(op):
    def apply(lib, t):
        return AUGMENTED[op](t, 2.0)
    return apply


LEAF_ERROR_CASES = {**INPLACE_OPS, **{f"augmented {op}": _augmented_on(op) for op in AUGMENTED},
                    **{f"setitem {k}": v for k, v in ITEM_ASSIGNMENTS.items()}}
LEAF_ERROR_CASES.pop("sqrt_")
LEAF_ERROR_CASES["sqrt_"] = lambda lib, t: t.sqrt_()  # the mul_ before it would raise already
LEAF_ERROR_CASES["relu inplace"] = lambda lib, t: functional(lib).relu(t, inplace=True)
LEAF_ERROR_CASES["nn.ReLU inplace"] = lambda lib, t: lib.nn.ReLU(inplace=True)(t)


@pytest.mark.parametrize("case", LEAF_ERROR_CASES)
def test_inplace_on_leaf_requiring_grad_raises(case):
    """In grad mode, an in-place op or item assignment on a leaf that requires grad is a
    RuntimeError (`w[0] = 1.0` included)."""
    raises_both(lambda lib: LEAF_ERROR_CASES[case](lib, leaf(lib)), RuntimeError)


def test_inplace_on_leaf_under_no_grad():
    """Under no_grad, in-place ops and item assignment on a leaf requiring grad change it in place
    (version steps included); it stays a leaf requiring grad, with no grad_fn, and takes part in the
    next backward with its new values."""
    def program(lib):
        w = leaf(lib)
        with lib.no_grad():
            r = w.add_(1)
            w[0] = 5.0
            w *= 2
            w.clamp_(max=3.0)
            w -= lib.tensor(Y)
        state = (w.detach().clone(), r is w, w.is_leaf, w.requires_grad, w.grad_fn is None, w._version)
        (w * w).sum().backward()
        return state, w.grad
    run_both(program)


def test_sgd_by_hand_under_no_grad():
    """`for p in model.parameters(): p -= lr * p.grad` inside no_grad trains a tiny nn.Linear: the
    same parameter objects, still leaves requiring grad, with torch's values after a few steps."""
    rng = np.random.default_rng(2)
    w0, b0 = rng.standard_normal((1, 3)).astype(np.float32), rng.standard_normal(1).astype(np.float32)
    xb, yb = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)

    def program(lib):
        model = lib.nn.Linear(3, 1)
        with lib.no_grad():
            model.weight.copy_(lib.tensor(w0))
            model.bias.copy_(lib.tensor(b0))
        params = list(model.parameters())
        inputs, targets = lib.tensor(xb), lib.tensor(yb)
        losses = []
        for _ in range(4):
            model.zero_grad()
            loss = ((model(inputs) - targets) ** 2).mean()
            loss.backward()
            with lib.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
            losses.append(loss.detach())
        return (model.weight, model.bias, losses, [p is q for p, q in zip(params, model.parameters())],
                [(p.is_leaf, p.requires_grad, p.grad_fn is None) for p in model.parameters()])
    ours, theirs = run_both(program)
    assert theirs[2][-1].item() < theirs[2][0].item()


def _relu_inplace_chain(lib, x, y):
    h = x * 2
    h += 1
    h.relu_()
    return h


def _setitem_slice(lib, x, y):
    h = x * 1
    h[1:3] = y[:2] * 3
    return h


def _setitem_mask(lib, x, y):
    h = x * y
    h[x > 0] = 0.5
    return h


def _setitem_index_tensor(lib, x, y):
    h = x * y
    h[lib.tensor(np.array([0, 2]))] = y[1:3] * 2
    return h


def _setitem_int_tensor_value(lib, x, y):
    h = x * x
    h[0] = y[3]
    return h


def _copy(lib, x, y):
    h = x * 2
    h.copy_(y * y)
    return h


def _zero_then_add(lib, x, y):
    h = x * y
    h.zero_()
    h += x * x
    return h


def _fill_then_mul(lib, x, y):
    h = x * y
    h.fill_(2.0)
    h.mul_(y)
    return h


# programs (lib, x, y) -> a tensor made with in-place ops on non-leaves, for leaves x, y requiring grad
RECORDED = {
    "add_ relu_": _relu_inplace_chain,
    "mul_ tensor": lambda lib, x, y: (x * 2).mul_(y),
    "sub_ div_": lambda lib, x, y: (x * 1).sub_(y).div_(y * y + 1),
    "pow_": lambda lib, x, y: (x * y).pow_(3),
    "neg_ exp_": lambda lib, x, y: (x * y).neg_().exp_(),
    "sqrt_": lambda lib, x, y: (x * x + y * y).sqrt_(),
    "clamp_": lambda lib, x, y: (x * y).clamp_(-0.5, 0.8),
    "sigmoid_": lambda lib, x, y: (x * y).sigmoid_(),
    "tanh_": lambda lib, x, y: (x * y).tanh_(),
    "masked_fill_": lambda lib, x, y: (x * y).masked_fill_(x > 0, 0.0),
    "copy_": _copy,
    "zero_ +=": _zero_then_add,
    "fill_ mul_": _fill_then_mul,
    "augmented": lambda lib, x, y: AUGMENTED["/="](AUGMENTED["-="](AUGMENTED["*="](x * 1, y), x), y * y + 1),
    "setitem slice": _setitem_slice,
    "setitem mask": _setitem_mask,
    "setitem index tensor": _setitem_index_tensor,
    "setitem int, tensor value": _setitem_int_tensor_value,
    "nn.ReLU inplace": lambda lib, x, y: lib.nn.ReLU(inplace=True)(x * y),
    "F.relu inplace": lambda lib, x, y: functional(lib).relu(x * y, inplace=True),
    "F.dropout p=0 inplace": lambda lib, x, y: functional(lib).dropout(x * y, p=0.0, training=True, inplace=True),
}


def _zeros_if_none(lib, g, like):
    return lib.zeros_like(like) if g is None else g


@pytest.mark.parametrize("case", RECORDED)
def test_inplace_on_non_leaf_is_recorded(case):
    """In-place ops on non-leaves in grad mode are part of the graph: the value, `.backward()`'s
    gradients, and second derivatives (autograd.grad with create_graph=True, then the gradient of
    the sum of the first gradients) equal torch's. Gradients nothing reached count as zeros."""
    def program(lib):
        x, y = leaf(lib, X), leaf(lib, Y)
        out = RECORDED[case](lib, x, y)
        (out * out).sum().backward()
        first_by_backward = [_zeros_if_none(lib, v.grad, v) for v in (x, y)]

        x, y = leaf(lib, X), leaf(lib, Y)
        out = RECORDED[case](lib, x, y)
        gx, gy = lib.autograd.grad((out * out).sum(), (x, y), create_graph=True, allow_unused=True)
        gx, gy = _zeros_if_none(lib, gx, x), _zeros_if_none(lib, gy, y)
        hx, hy = lib.autograd.grad(gx.sum() + gy.sum(), (x, y), allow_unused=True)
        return out, first_by_backward, [gx, gy], [_zeros_if_none(lib, hx, x), _zeros_if_none(lib, hy, y)]
    run_both(program)


# in-place methods on a non-leaf h = x * y: each returns the op's result
NON_LEAF_METHODS = {name: fn for name, fn in INPLACE_OPS.items() if name not in ("sqrt_", "clamp_min")}
NON_LEAF_METHODS["sqrt_"] = lambda lib, t: t.sqrt_()  # of x * y + 3 > 0 below
NON_LEAF_METHODS["augmented +="] = _augmented_on("+=")
NON_LEAF_METHODS["augmented *="] = _augmented_on("*=")
NON_LEAF_METHODS["F.relu inplace"] = lambda lib, t: functional(lib).relu(t, inplace=True)
NON_LEAF_METHODS["nn.ReLU inplace"] = lambda lib, t: lib.nn.ReLU(inplace=True)(t)


@pytest.mark.parametrize("op", NON_LEAF_METHODS)
def test_inplace_grad_fn_and_version(op):
    """After an in-place op on a non-leaf, its grad_fn is a new node named after the op (names
    normalised, see node_name) and `_version` went up by one; the op returned the tensor itself."""
    def program(lib):
        h = leaf(lib, X) * leaf(lib, Y) + 3
        old_fn, before = h.grad_fn, h._version
        r = NON_LEAF_METHODS[op](lib, h)
        return (r is h, h._version - before, node_name(h.grad_fn, lib), h.grad_fn is not old_fn,
                h.requires_grad, h.is_leaf)
    run_both(program)


# ---------------------------------------------------------------- 3. version counters

def _sigmoid_output_modified(lib):
    a = leaf(lib) * 2
    b = a.sigmoid()  # sigmoid saves its output b
    b.mul_(2)
    b.sum().backward()


def _mul_input_modified(lib):
    w, x = leaf(lib, Y), leaf(lib) * 1
    y = w * x  # saves x, for w's gradient
    x.add_(1)
    y.sum().backward()


def _step_between_backwards(lib):
    w, x = leaf(lib, Y), leaf(lib)  # x requires grad, so w * x saves w (for x's gradient)
    opt = lib.optim.SGD([w], lr=0.1)
    loss = (w * x).sum()
    loss.backward(retain_graph=True)
    opt.step()
    loss.backward()


def _detach_shares_the_version(lib):
    y = leaf(lib).sigmoid()
    y.detach().mul_(2)  # detach() shares y's memory and its version counter
    y.sum().backward()


MODIFIED_SAVED_VALUE = {"sigmoid output": _sigmoid_output_modified, "mul input": _mul_input_modified,
                        "optimizer step between backwards": _step_between_backwards,
                        "through detach()": _detach_shares_the_version}


@pytest.mark.parametrize("case", MODIFIED_SAVED_VALUE)
def test_backward_raises_when_saved_value_modified(case):
    """backward raises RuntimeError when a value the graph saved was changed in place afterwards,
    with PyTorch's words "modified by an inplace operation"."""
    raises_both(MODIFIED_SAVED_VALUE[case], RuntimeError, both_say=("modified by an inplace operation",))


def _add_input_modified(lib):
    x = leaf(lib)
    a, b = x * 2, x * 3
    y = a + b  # add saves neither input
    a.add_(1)
    y.backward(lib.tensor(Y))
    return x.grad, a


def _not_saved_modified_under_no_grad(lib):
    w, x = leaf(lib), lib.tensor(Y)
    y = w + x
    with lib.no_grad():
        w.mul_(2)
    y.sum().backward()
    return w.grad, w


def _data_write_bypasses_the_check(lib):
    x = leaf(lib)
    y = x.sigmoid()
    before = y._version
    y.data.mul_(2)  # .data has its own version counter: the check does not see this write
    after = y._version
    y.sum().backward()  # and the gradient uses the changed output
    return x.grad, after - before


def _mul_by_constant_input_then_modified(lib):
    w, x = leaf(lib), lib.tensor(Y)
    y = w * x  # x does not require grad: only x is saved (for w's gradient), not w
    with lib.no_grad():
        w.mul_(2)
    y.sum().backward()
    return w.grad


def _step_between_backwards_data_input(lib):
    w, x = leaf(lib, Y), lib.tensor(X)  # the usual case: data does not require grad
    opt = lib.optim.SGD([w], lr=0.1)
    loss = (w * x).sum()
    loss.backward(retain_graph=True)
    opt.step()
    loss.backward()
    return w.grad, w


NOT_SAVED_MODIFIED = {"add input": _add_input_modified,
                      "unsaved under no_grad": _not_saved_modified_under_no_grad,
                      ".data write": _data_write_bypasses_the_check,
                      "mul saves only what the needed gradient uses": _mul_by_constant_input_then_modified,
                      "optimizer step, data input": _step_between_backwards_data_input}


@pytest.mark.parametrize("case", NOT_SAVED_MODIFIED)
def test_backward_allowed_when_modified_value_not_saved(case):
    """No error when the value changed in place was not saved by the graph (an input of an add;
    w in `w * x` when x does not require grad, so `backward(retain_graph=True); opt.step();
    backward()` is fine there) or was changed through `.data`, which bypasses the version check."""
    run_both(NOT_SAVED_MODIFIED[case])


# ---------------------------------------------------------------- 4. graph memory

def test_second_backward_raises_but_graph_structure_stays():
    """After backward without retain_graph, `loss.grad_fn` is still there but a second backward
    through `x.exp().sum()` (which saved exp's output) raises RuntimeError; with retain_graph=True
    the second backward works and gradients accumulate."""
    def twice(lib):
        x = leaf(lib)
        loss = x.exp().sum()
        loss.backward()
        assert loss.grad_fn is not None
        loss.backward()
    raises_both(twice, RuntimeError)

    def retained(lib):
        x = leaf(lib)
        loss = x.exp().sum()
        loss.backward(retain_graph=True)
        first = x.grad.clone()
        loss.backward()
        return first, x.grad, loss.grad_fn is not None
    run_both(retained)


@ours_only
def test_ours_graph_frees_saved_arrays_after_backward():
    """Keeping `loss` after `loss.backward()` keeps no large arrays alive: of the 8 MB arrays the
    graph of exp(x) * exp(x) saved, only x.grad remains (NumPy's memory, seen by tracemalloc)."""
    n = 1_000_000
    x = tg.tensor(np.random.default_rng(0).random(n), requires_grad=True)

    def build():
        y = x.exp()
        return (y * y).sum()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        loss = build()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        loss.backward()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held >= 8 * n, "the graph before backward should hold exp(x)"
    assert after < 1.5 * 8 * n, f"{after / 8e6:.1f} x 8 MB still held after backward (x.grad is 1)"
    assert loss.grad_fn is not None


# ---------------------------------------------------------------- 5. graph structure

def graph_structure(node, names: dict[int, str], lib):
    """The graph from `node` as nested (name, ((child, output index), ...)); AccumulateGrad as
    ('accumulategrad', the name of its .variable); a missing input as None."""
    if node is None:
        return None
    name = node_name(node, lib)
    if name == "accumulategrad":
        return name, names.get(id(node.variable), "an unknown tensor")
    return name, tuple((graph_structure(child, names, lib), index) for child, index in node.next_functions)


@pytest.mark.parametrize("y_requires_grad", [True, False])
def test_next_functions_structure(y_requires_grad):
    """`grad_fn.next_functions` of `(x * y + x).sum()` has torch's structure: Sum -> Add -> (Mul,
    AccumulateGrad of x), Mul -> (AccumulateGrad of x, AccumulateGrad of y or (None, 0)); the
    AccumulateGrad's `.variable` is the leaf itself; `name` is a method returning a str."""
    def program(lib):
        x, y = leaf(lib), leaf(lib, Y, requires_grad=y_requires_grad)
        z = (x * y + x).sum()
        fn = z.grad_fn
        return (graph_structure(fn, {id(x): "x", id(y): "y"}, lib), callable(fn.name), isinstance(fn.name(), str),
                isinstance(fn.next_functions, tuple), z.grad_fn is z.grad_fn)
    run_both(program)


# ---------------------------------------------------------------- 6. saved tensor hooks

def test_saved_tensors_hooks_are_called():
    """Inside `autograd.graph.saved_tensors_hooks(pack, unpack)` ops save through pack and
    backward reads through unpack (each called at least once; PyTorch packs x twice for x * x);
    the gradients are unchanged; ops after the block do not call pack."""
    def program(lib):
        hooks = importlib.import_module(lib.__name__ + ".autograd.graph").saved_tensors_hooks
        calls = {"pack": 0, "unpack": 0}

        def pack(t):
            calls["pack"] += 1
            return t

        def unpack(t):
            calls["unpack"] += 1
            return t
        x = leaf(lib)
        with hooks(pack, unpack):
            z = (x * x).exp()
        packed = calls["pack"]
        w = x.exp() * x
        after_block = calls["pack"]
        unpacked_before_backward = calls["unpack"]
        (z.sum() + w.sum()).backward()
        return (x.grad, packed >= 1, after_block == packed, unpacked_before_backward == 0, calls["unpack"] >= 1)
    run_both(program)


def test_saved_tensors_hooks_can_store_elsewhere():
    """pack may turn a saved tensor into anything (here a NumPy copy) as long as unpack turns it
    back into a tensor: the gradients, first and second order, are those without hooks."""
    def program(lib):
        hooks = importlib.import_module(lib.__name__ + ".autograd.graph").saved_tensors_hooks
        x = leaf(lib)
        with hooks(lambda t: t.detach().numpy().copy(), lambda a: lib.tensor(a)):
            y = (x * x).sigmoid() * x
        g, = lib.autograd.grad(y.sum(), x)
        x2 = leaf(lib)
        y2 = (x2 * x2).sigmoid() * x2
        g2, = lib.autograd.grad(y2.sum(), x2)
        return g, g2
    ours, theirs = run_both(program)
    assert_same(theirs[0], theirs[1])


# ---------------------------------------------------------------- 7. grad mode per thread

def start_thread(fn):
    """Run fn in a new thread; `finish(handle)` joins it and returns fn's result (or raises its error)."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the main thread
            out["error"] = e
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def finish(handle):
    thread, out = handle
    thread.join(20)
    assert not thread.is_alive(), "the thread did not finish"
    if "error" in out:
        raise out["error"]
    return out["value"]


def wait(event: threading.Event) -> None:
    assert event.wait(20), "a thread did not reach its step"


def test_no_grad_in_another_thread_does_not_affect_this_one():
    """While another thread holds `no_grad()` open, the main thread still records: its result
    requires grad and has a grad_fn; the other thread sees grad mode off inside, on after."""
    def program(lib):
        entered, release = threading.Event(), threading.Event()

        def hold():
            with lib.no_grad():
                entered.set()
                wait(release)
                inside = lib.is_grad_enabled()
            return inside, lib.is_grad_enabled()
        handle = start_thread(hold)
        wait(entered)
        y = leaf(lib) * 2
        main = (lib.is_grad_enabled(), y.requires_grad, y.grad_fn is not None)
        release.set()
        return main, finish(handle)
    run_both(program)


def test_overlapping_no_grad_blocks_exited_out_of_order():
    """Thread A enters no_grad, then B; A exits first, then B. Each thread sees its own mode (B is
    still in no_grad after A left) and grad mode is enabled afterwards in both and in the main thread."""
    def program(lib):
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

        def a():
            with lib.no_grad():
                a_in.set()
                wait(b_in)
                inside = lib.is_grad_enabled()
            a_out.set()
            return inside, lib.is_grad_enabled(), (leaf(lib) * 2).requires_grad

        def b():
            wait(a_in)
            with lib.no_grad():
                b_in.set()
                wait(a_out)
                inside = lib.is_grad_enabled(), (leaf(lib) * 2).requires_grad
            return inside, lib.is_grad_enabled(), (leaf(lib) * 2).requires_grad
        ha, hb = start_thread(a), start_thread(b)
        ra, rb = finish(ha), finish(hb)
        return ra, rb, lib.is_grad_enabled(), (leaf(lib) * 2).requires_grad
    run_both(program)


def test_new_thread_starts_with_grad_enabled():
    """A thread started while the main thread is in no_grad (or after `set_grad_enabled(False)`)
    starts with grad mode enabled and records."""
    def program(lib):
        def probe():
            return lib.is_grad_enabled(), (leaf(lib) * 2).requires_grad
        with lib.no_grad():
            in_block = finish(start_thread(probe)), lib.is_grad_enabled()
        lib.set_grad_enabled(False)
        try:
            after_call = finish(start_thread(probe)), lib.is_grad_enabled()
        finally:
            lib.set_grad_enabled(True)
        return in_block, after_call, lib.is_grad_enabled()
    run_both(program)


def test_set_grad_enabled_in_a_thread_affects_only_it():
    """`set_grad_enabled(False)` called as a function in a thread turns recording off there only."""
    def program(lib):
        x = leaf(lib)

        def worker():
            lib.set_grad_enabled(False)
            return lib.is_grad_enabled(), (x * 2).requires_grad
        in_thread = finish(start_thread(worker))
        return in_thread, lib.is_grad_enabled(), (x * 2).requires_grad
    run_both(program)


def test_inference_mode():
    """`inference_mode()`: inside, `is_inference_mode_enabled()` and recording is off (results do
    not require grad); outside, False again and recording back on."""
    def program(lib):
        x = leaf(lib)
        before = lib.is_inference_mode_enabled()
        with lib.inference_mode():
            inside = lib.is_inference_mode_enabled(), lib.is_grad_enabled()
            y = x * 2
        z = x * 2
        return (before, inside, y, y.requires_grad, y.grad_fn is None, lib.is_inference_mode_enabled(),
                lib.is_grad_enabled(), z.requires_grad)
    run_both(program)


# ---------------------------------------------------------------- 8. devices and dtypes

def _device_facts(lib, t):
    return str(t.device), t.device.type, t.device == lib.device("cpu")


DEVICES = {"string": lambda lib: "cpu", "device": lambda lib: lib.device("cpu")}

# creation functions whose values are known, each (lib, device) -> tensor
CREATIONS = {
    "tensor": lambda lib, d: lib.tensor(X, device=d),
    "zeros": lambda lib, d: lib.zeros(2, 3, device=d),
    "zeros float64": lambda lib, d: lib.zeros(2, 3, dtype=lib.float64, device=d),
    "ones": lambda lib, d: lib.ones((2, 3), device=d),
    "full": lambda lib, d: lib.full((2, 3), 1.5, device=d),
    "arange": lambda lib, d: lib.arange(5, device=d),
    "arange float": lambda lib, d: lib.arange(0.0, 1.0, 0.25, device=d),
    "eye": lambda lib, d: lib.eye(3, device=d),
    "zeros_like": lambda lib, d: lib.zeros_like(lib.tensor(X), device=d),
    "ones_like": lambda lib, d: lib.ones_like(lib.tensor(M), device=d),
}
# and those whose values are not
RANDOM_CREATIONS = {
    "rand": lambda lib, d: lib.rand(2, 3, device=d),
    "randn": lambda lib, d: lib.randn(2, 3, device=d),
    "empty": lambda lib, d: lib.empty(2, 3, device=d),
}


def test_device_objects():
    """`lib.device('cpu')` prints as 'cpu', has type 'cpu' and equals a tensor's device;
    `lib.device('cuda')` can be made (making tensors on it is another matter); no CUDA available."""
    def program(lib):
        cpu, cuda = lib.device("cpu"), lib.device("cuda")
        return (str(cpu), cpu.type, str(cuda), cuda.type, cpu == lib.device("cpu"), cpu == cuda,
                _device_facts(lib, lib.tensor(X)), lib.cuda.is_available())
    run_both(program)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", CREATIONS)
def test_creation_on_cpu(fn, device):
    """Creation functions accept `device='cpu'` and `device=lib.device('cpu')`: values and dtypes
    as torch's, on the CPU."""
    run_both(lambda lib: (CREATIONS[fn](lib, DEVICES[device](lib)),
                          _device_facts(lib, CREATIONS[fn](lib, DEVICES[device](lib)))))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", RANDOM_CREATIONS)
def test_random_creation_on_cpu(fn, device):
    """rand, randn and empty with a device: shape, float32, on the CPU."""
    def program(lib):
        t = RANDOM_CREATIONS[fn](lib, DEVICES[device](lib))
        return tuple(t.shape), t.dtype == lib.float32, _device_facts(lib, t)
    run_both(program)


def test_to_device_and_dtype():
    """`.to` with a device, a dtype, both positionally, both by keyword; `.cpu()`: values, dtypes
    and devices as torch's."""
    def program(lib):
        t = lib.tensor(X.astype(np.float32))
        results = [t.to("cpu"), t.to(lib.device("cpu")), t.to(lib.float64), t.to("cpu", lib.float64),
                   t.to(device="cpu", dtype=lib.float64), t.to(dtype=lib.float64), t.cpu()]
        return [(r, r.dtype == lib.float64, _device_facts(lib, r)) for r in results]
    run_both(program)


def test_to_returns_self_when_nothing_changes():
    """`.to()` to the device and dtype a tensor already has, `.cpu()` of a CPU tensor and
    `.type()` to its own dtype return the tensor itself; a dtype change makes a new tensor, and
    gradients flow back through it."""
    def program(lib):
        t = lib.tensor(X)
        same = (t.to("cpu") is t, t.to(lib.float64) is t, t.to("cpu", lib.float64) is t, t.cpu() is t,
                t.type(lib.float64) is t, t.to(lib.float32) is t)
        x = leaf(lib)
        y = x.to(lib.float32)
        (y * y).sum().backward()
        return same, y.requires_grad, x.grad
    run_both(program)


def test_module_to_returns_the_module():
    """`nn.Linear(2, 3).to('cpu')` (or to a device object) returns the module itself."""
    def program(lib):
        m = lib.nn.Linear(2, 3)
        return m.to("cpu") is m, m.to(lib.device("cpu")) is m, str(m.weight.device)
    run_both(program)


CUDA_REQUESTS = {
    ".cuda()": lambda: tg.tensor(X).cuda(),
    ".to('cuda')": lambda: tg.tensor(X).to("cuda"),
    ".to(device('cuda'))": lambda: tg.tensor(X).to(tg.device("cuda")),
    "zeros(device='cuda')": lambda: tg.zeros(2, device="cuda"),
    "zeros(device=device('cuda'))": lambda: tg.zeros(2, device=tg.device("cuda")),
    "tensor(device=device('cuda'))": lambda: tg.tensor(X, device=tg.device("cuda")),
    "nn.Linear.to('cuda')": lambda: tg.nn.Linear(2, 3).to("cuda"),
}


@ours_only
@pytest.mark.parametrize("case", CUDA_REQUESTS)
def test_ours_cuda_raises_runtime_error(case):
    """Asking for CUDA memory raises RuntimeError naming cuda (torch's CPU build raises
    AssertionError "Torch not compiled with CUDA enabled"; ours uses RuntimeError)."""
    with pytest.raises(RuntimeError, match="(?i)cuda"):
        CUDA_REQUESTS[case]()


def test_dtype_aliases():
    """float, double, half, long, int are float32, float64, float16, int64, int32; conversions land
    on them and on bool."""
    def program(lib):
        t = lib.tensor(X)
        return (lib.float == lib.float32, lib.double == lib.float64, lib.half == lib.float16,
                lib.long == lib.int64, lib.int == lib.int32, lib.float != lib.float64,
                t.to(lib.double).dtype == lib.float64, t.to(lib.float).dtype == lib.float32,
                t.to(lib.half).dtype == lib.float16, t.to(lib.long).dtype == lib.int64,
                t.to(lib.int).dtype == lib.int32, t.to(lib.bool).dtype == lib.bool,
                t.bool().dtype == lib.bool, t.long().dtype == lib.int64)
    run_both(program)


def test_dtype_conversions():
    """`.float() .double() .long() .int() .bool() .half()` and `.type(dtype)`: values and dtypes
    as torch's (floats to integers truncate toward zero; 0.0 is the only False)."""
    def program(lib):
        t = lib.tensor(np.array([-1.7, 0.2, 2.5, 0.0, -0.6]))
        return (t.float(), t.double(), t.long(), t.int(), t.bool(), t.half(), t.type(lib.float64),
                t.type(lib.float32), t.long().float(), t.bool().long())
    run_both(program)
