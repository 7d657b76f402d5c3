"""tinygrad_cnn.func and tinygrad_cnn.autograd.functional checked against torch.func and
torch.autograd.functional.

Every test is a dual program (see test_semantics_torch.py): a function of the library module run
once with torch and once with ours, whose results must agree (float64 to 1e-6, and flags such as
`requires_grad` exactly). Random functions come from a small grammar of our ops (elementwise,
matmul, sum, softmax, conv2d on tiny inputs) drawn by hypothesis; small CNN pieces run through
functional_call.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

from test_semantics_torch import assert_same, functional, raises_both, run_both, tg  # noqa: E402

from tinygrad_cnn.testing import arrays  # noqa: E402

rng = np.random.default_rng(7)
A, B = rng.standard_normal(3), rng.standard_normal((2, 3))


def func(lib):
    return lib.func


def af(lib):
    return lib.autograd.functional


def t(lib, a, requires_grad=False):
    return lib.tensor(np.array(a, dtype=np.float64), requires_grad=requires_grad)


# ---------------------------------------------------------------- random functions from a grammar

STEPS = ("sin", "tanh", "exp", "square", "sigmoid", "matmul", "softmax", "sum", "couple", "conv")


@st.composite
def programs(draw, max_steps: int = 3):
    """(steps, x): a composition of 1..max_steps ops applied to a (rows, cols) input; matmul and
    conv carry their weights."""
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    x = draw(arrays(shape, -1.5, 1.5))
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(STEPS))
        weight = None
        if op == "matmul":
            weight = draw(arrays((shape[1], draw(st.integers(1, 3))), -1.0, 1.0))
            shape = (shape[0], weight.shape[1])
        elif op == "conv":
            weight = draw(arrays((1, 1, 2, 2), -1.0, 1.0))
            shape = (shape[0] + 1, shape[1] + 1)
        elif op == "sum":
            shape = (shape[0], 1)
        steps.append((op, weight))
    return steps, x


def build(lib, steps):
    """The drawn program as a function of one Tensor, written with `lib`'s ops."""
    F = functional(lib)

    def f(x):
        for op, w in steps:
            if op == "sin":
                x = x.sin()
            elif op == "tanh":
                x = x.tanh()
            elif op == "exp":
                x = (0.5 * x).exp()
            elif op == "square":
                x = x * x
            elif op == "sigmoid":
                x = x.sigmoid()
            elif op == "matmul":
                x = x @ t(lib, w)
            elif op == "softmax":
                x = x.softmax(-1)
            elif op == "sum":
                x = x.sum(-1, keepdim=True)
            elif op == "couple":  # every entry depends on every other: a dense Jacobian
                x = x * x.mean()
            elif op == "conv":
                x = F.conv2d(x[None, None], t(lib, w), padding=1)[0, 0]
        return x
    return f


def scalar(lib, steps):
    f = build(lib, steps)
    return lambda x: (f(x) * f(x).cos()).sum()


@settings(max_examples=25)
@given(programs(), st.data())
def test_transforms_of_random_functions(program, data):
    """jacrev, jacfwd, grad, vjp, jvp and hessian of drawn compositions agree with torch.func;
    our jacfwd (forward mode) equals our jacrev (reverse mode)."""
    steps, x = program
    out_shape = tuple(build(torch, steps)(torch.tensor(x)).shape)
    cotangent, tangent = data.draw(arrays(out_shape)), data.draw(arrays(x.shape))

    def run(lib):
        f, g, fn = build(lib, steps), scalar(lib, steps), func(lib)
        xt = t(lib, x)
        out, vjp_fn = fn.vjp(f, xt)
        return (fn.jacrev(f)(xt), fn.jacfwd(f)(xt), fn.grad(g)(xt), out, vjp_fn(t(lib, cotangent)),
                fn.jvp(f, (xt,), (t(lib, tangent),)), fn.hessian(g)(xt))
    ours, _ = run_both(run)
    assert_same(ours[1].numpy(), ours[0].numpy(), "jacfwd vs jacrev")


@settings(max_examples=15)
@given(programs(max_steps=2), st.data())
def test_autograd_functional_of_random_functions(program, data):
    """torch.autograd.functional's jacobian (both strategies), hessian (both outer strategies), vjp,
    jvp, vhp and hvp of drawn compositions."""
    steps, x = program
    out_shape = tuple(build(torch, steps)(torch.tensor(x)).shape)
    cotangent, tangent = data.draw(arrays(out_shape)), data.draw(arrays(x.shape))

    def run(lib):
        f, g, F = build(lib, steps), scalar(lib, steps), af(lib)
        xt, u, v = t(lib, x), t(lib, cotangent), t(lib, tangent)
        return (F.jacobian(f, xt), F.jacobian(f, xt, strategy="forward-mode", vectorize=True),
                F.hessian(g, xt), F.hessian(g, xt, outer_jacobian_strategy="forward-mode", vectorize=True),
                F.vjp(f, xt, u), F.jvp(f, xt, v), F.vhp(g, xt, v), F.hvp(g, xt, v))
    run_both(run)


@settings(max_examples=20)
@given(programs(), st.integers(1, 3), st.integers(0, 2), st.integers(-3, 2), st.data())
def test_vmap_of_random_functions(program, size, in_dim, out_dim, data):
    """vmap(f, in_dims, out_dims) over a batch dim placed anywhere (negative dims too) equals
    torch.func.vmap; so does vmap of grad (per-sample gradients)."""
    steps, x = program
    batch = np.moveaxis(data.draw(arrays((size,) + x.shape)), 0, in_dim)

    def run(lib):
        fn = func(lib)
        xs = t(lib, batch)
        return (fn.vmap(build(lib, steps), in_dims=in_dim, out_dims=out_dim)(xs),
                fn.vmap(fn.grad(scalar(lib, steps)), in_dims=in_dim)(xs))
    run_both(run)


# ---------------------------------------------------------------- arguments, pytrees, aux

def test_argnums_and_pytrees():
    """argnums as int, negative and tuple; a dict argument and a tuple-with-dict output, through grad,
    jacrev, jacfwd, vjp and jvp: results take the arguments' and outputs' structures."""
    def f(x, params):
        h = params["w"] @ x + params["b"]
        return (h.tanh(), {"s": (h * x.sum()).sum(), "e": x.exp()})

    def run(lib):
        fn = func(lib)
        x, params = t(lib, A), {"w": t(lib, B), "b": t(lib, B[:, 0])}
        loss = lambda x, p: f(x, p)[1]["s"]  # noqa: E731
        out, vjp_fn = fn.vjp(f, x, params)
        cot = (t(lib, [1.0, -2.0]), {"s": t(lib, 0.5), "e": t(lib, A * 3)})
        return (fn.grad(loss)(x, params), fn.grad(loss, argnums=1)(x, params), fn.grad(loss, argnums=-1)(x, params),
                fn.grad(loss, argnums=(0, 1))(x, params), fn.jacrev(f, argnums=(0, 1))(x, params),
                fn.jacfwd(f, argnums=(1, 0))(x, params), out, vjp_fn(cot),
                fn.jvp(f, (x, params), (t(lib, A[::-1]), {"w": t(lib, B * 2), "b": t(lib, [1.0, 1.0])})))
    run_both(run)


def test_has_aux():
    """has_aux: func returns (output, aux); grad gives (gradient, aux), grad_and_value
    (gradient, (value, aux)), vjp (output, vjp_fn, aux), jvp (output, tangent, aux), jacrev and
    jacfwd (jacobian, aux). aux comes back plain (no graph)."""
    def f(x):
        y = (x * x).sum()
        return y, {"y": y, "x2": x * 2}

    def vector(x):
        return x.sin(), x.cos()

    def run(lib):
        fn, x = func(lib), t(lib, A)
        g, aux = fn.grad(f, has_aux=True)(x)
        gv = fn.grad_and_value(f, has_aux=True)(x)
        out, vjp_fn, aux2 = fn.vjp(vector, x, has_aux=True)
        return (g, aux, aux["y"].requires_grad, gv, out, vjp_fn(t(lib, A)), aux2,
                fn.jvp(vector, (x,), (t(lib, A),), has_aux=True), fn.jacrev(vector, has_aux=True)(x),
                fn.jacfwd(vector, has_aux=True)(x))
    run_both(run)


def test_jacobian_shapes_and_empty():
    """A Jacobian block has shape output.shape + input.shape, also for scalars and empty tensors."""
    def run(lib):
        fn, F = func(lib), af(lib)
        x = t(lib, B)
        return (fn.jacrev(lambda x: x.sum())(x), fn.jacfwd(lambda x: x.sum())(x), fn.jacrev(lambda x: x[:0])(x),
                fn.jacfwd(lambda x: x[:, :0] * 2)(x), fn.jacrev(lambda x: x * 3)(t(lib, 2.0)),
                F.jacobian(lambda x: x.sum(0), x), F.jacobian(lambda x, y: (x * y, y), (x, t(lib, B[0]))))
    run_both(run)


# ---------------------------------------------------------------- composition

def test_nested_transforms():
    """Transforms compose: grad of grad, jacrev of jacrev, jacfwd of jacrev, jacrev of jacfwd,
    jacfwd of jacfwd, jvp of jvp, grad of jvp, vjp of grad, vmap of vmap, vmap of jacrev, grad of
    vmap."""
    def run(lib):
        fn, x, w = func(lib), t(lib, A), t(lib, B)
        f = lambda x: (w @ x).tanh() * x.sum()  # noqa: E731
        g = lambda x: (x.sin() * x.exp()).sum()  # noqa: E731
        return (fn.grad(lambda x: fn.grad(g)(x).sum())(x),
                fn.jacrev(fn.jacrev(f))(x), fn.jacfwd(fn.jacrev(f))(x), fn.jacrev(fn.jacfwd(f))(x),
                fn.jacfwd(fn.jacfwd(f))(x),
                fn.jvp(lambda x: fn.jvp(f, (x,), (x.cos(),))[1], (x,), (t(lib, A[::-1]),)),
                fn.grad(lambda x: fn.jvp(g, (x,), (x * 2,))[1])(x),
                fn.vjp(fn.grad(g), x)[1](t(lib, A)),
                fn.vmap(fn.vmap(lambda a, b: a * b.exp(), in_dims=(0, None)), in_dims=(None, 0))(x, w),
                fn.vmap(fn.jacrev(f))(t(lib, np.stack([A, A[::-1]]))),
                fn.grad(lambda w: fn.vmap(lambda r: (r @ x).sin())(w).sum())(w))
    run_both(run)


def test_captured_argument_is_a_constant():
    """A function that also captures the tensor it is differentiated at treats the capture as a
    constant: d/dy (y * x).sum() at y = x is x, not 2x."""
    def run(lib):
        fn = func(lib)
        x = t(lib, A)
        inner = lambda x: fn.grad(lambda y: (y * x).sum())(x)  # noqa: E731
        return inner(x), fn.jacrev(inner)(x), fn.jacfwd(lambda x: fn.jvp(lambda y: y * x, (x,), (x,))[1])(x)
    run_both(run)


def test_requires_grad_of_results():
    """An outermost transform of plain inputs gives plain tensors; of inputs that require grad it
    gives tensors ordinary autograd differentiates (second derivatives as torch); inside no_grad
    the transform still runs."""
    def run(lib):
        fn = func(lib)
        g = lambda x: (x ** 3).sum()  # noqa: E731
        plain = fn.grad(g)(t(lib, A))
        x = t(lib, A, requires_grad=True)
        differentiable = fn.grad(g)(x)
        (second,) = lib.autograd.grad(differentiable.sum(), x)
        with lib.no_grad():
            under_no_grad = fn.grad(g)(t(lib, A, requires_grad=True))
        jac = fn.jacrev(lambda x: x.exp())(x)
        out, _ = fn.vjp(lambda x: x.exp(), t(lib, A))
        return (plain, plain.requires_grad, differentiable.requires_grad, second, under_no_grad,
                under_no_grad.requires_grad, jac.requires_grad, out.requires_grad,
                fn.jvp(lambda x: x.exp(), (t(lib, A),), (t(lib, A),))[1].requires_grad)
    run_both(run)


def test_user_grads_untouched():
    """No transform and no autograd.functional call writes `.grad` of the caller's tensors, nor
    changes their requires_grad: they are functional."""
    x = tg.tensor(A, requires_grad=True)
    w = tg.tensor(B, requires_grad=True)
    fn, F = tg.func, tg.autograd.functional
    f = lambda x: (w @ x).tanh()  # noqa: E731
    g = lambda x: f(x).sum() * x.sum()  # noqa: E731
    fn.grad(g)(x), fn.vjp(f, x)[1](tg.tensor(A[:2])), fn.jacrev(f)(x), fn.jacfwd(f)(x), fn.hessian(g)(x)
    fn.vmap(fn.grad(g))(tg.tensor(B, requires_grad=True)), fn.jvp(f, (x,), (x,))
    for strategy in ("reverse-mode", "forward-mode"):
        F.jacobian(f, x, strategy=strategy, vectorize=True)
        F.hessian(g, x, outer_jacobian_strategy=strategy, vectorize=True)
    F.vjp(f, x, tg.tensor(A[:2])), F.jvp(f, x, x), F.vhp(g, x, x), F.hvp(g, x, x), F.jacobian(f, x, create_graph=True)
    assert x.grad is None and w.grad is None
    assert x.requires_grad and x.is_leaf and w.requires_grad


# ---------------------------------------------------------------- vmap

def test_vmap_in_dims_out_dims():
    """in_dims: None, negative, per-argument tuples, pytrees of tuples, lists and dicts (a leaf
    covering a whole subtree); out_dims: per output, None for an unbatched output; keyword
    arguments are not batched; an empty batch."""
    X, Y = rng.standard_normal((4, 2, 3)), rng.standard_normal((3, 4))

    def run(lib):
        fn = func(lib)
        x, y = t(lib, X), t(lib, Y)
        return (fn.vmap(lambda a, b: a @ b, in_dims=(0, 1))(x, y),
                fn.vmap(lambda a, b: a * b, in_dims=(-1, None))(x, t(lib, B[:, 0])),
                fn.vmap(lambda p: p["a"].sum(0) + p["b"][1], in_dims=({"a": 0, "b": (None, 1)},))(
                    {"a": x, "b": (y, y)}),
                fn.vmap(lambda pair: pair[0] - pair[1].sum(), in_dims=([0, 1],))([x, y]),
                fn.vmap(lambda a: (a.sum(0), a.exp()), out_dims=(1, -1))(x),
                fn.vmap(lambda a: (a.sum(), t(lib, 1.0)), out_dims=(0, None))(x),
                fn.vmap(lambda a, scale=1.0: a * scale)(x, scale=t(lib, 2.0)),
                fn.vmap(lambda a: a.sum(0))(t(lib, np.zeros((0, 2, 3)))),
                fn.vmap(fn.vmap(lambda a: a.sin(), in_dims=1, out_dims=1), in_dims=2, out_dims=0)(x))
    run_both(run)


def test_vmap_randomness():
    """randomness='error' raises on a random op, 'same' draws the same values for every sample,
    'different' new ones."""
    raises_both(lambda lib: func(lib).vmap(lambda x: x + lib.rand(3))(t(lib, B)), RuntimeError,
                both_say=("randomness error mode",))
    for lib in (torch, tg):
        same = func(lib).vmap(lambda x: x * 0 + lib.rand(3), randomness="same")(t(lib, B))
        different = func(lib).vmap(lambda x: x * 0 + lib.rand(3), randomness="different")(t(lib, B))
        assert np.array_equal(same[0].numpy(), same[1].numpy())
        assert not np.array_equal(different[0].numpy(), different[1].numpy())
    raises_both(lambda lib: func(lib).jacfwd(lambda x: x + lib.rand(3))(t(lib, A)), RuntimeError,
                both_say=("randomness",))


# ---------------------------------------------------------------- CNN pieces and functional_call

def seeded(lib, model):
    """model in float64 with the same parameters in both libraries."""
    model = model.double()
    r = np.random.default_rng(11)
    with lib.no_grad():
        for p in model.parameters():
            p.copy_(t(lib, r.standard_normal(tuple(p.shape)) * 0.5))
    return model


def small_cnn(lib):
    """conv -> relu -> max_pool -> linear."""
    nn = lib.nn
    return seeded(lib, nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                     nn.Linear(8, 3)))


def test_per_sample_gradients_of_a_cnn():
    """The torch.func recipe: vmap(grad(loss of functional_call(model, params, x))) gives one
    gradient per sample for every parameter, and the model's own parameters are unchanged with
    no .grad."""
    images, labels = rng.standard_normal((3, 1, 4, 4)), np.array([0, 2, 1])

    def run(lib):
        fn, F = func(lib), functional(lib)
        model = small_cnn(lib)
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(p, x, y):
            return F.cross_entropy(fn.functional_call(model, p, (x[None],)), y[None])
        per_sample = fn.vmap(fn.grad(loss), in_dims=(None, 0, 0))(params, t(lib, images), lib.tensor(labels))
        whole = fn.grad(lambda p: F.cross_entropy(fn.functional_call(model, p, t(lib, images)),
                                                  lib.tensor(labels)))(params)
        return (per_sample, whole, [p.grad is None for p in model.parameters()],
                fn.jacrev(lambda x: model(x))(t(lib, images[:1])))
    ours, _ = run_both(run)
    # the batch loss is the mean of the samples' losses
    for k, g in ours[1].items():
        np.testing.assert_allclose(g.numpy(), ours[0][k].numpy().mean(0), rtol=1e-9, atol=1e-12)


def test_functional_call():
    """functional_call swaps parameters and buffers for one call (several dicts, dotted names, args
    as one tensor or a tuple, kwargs) and puts the module's own back; tie_weights replaces every
    name of a shared tensor; strict lists missing and unexpected keys."""
    def run(lib):
        fn, nn = func(lib), lib.nn
        model = seeded(lib, nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)))
        model.eval()
        x = t(lib, B)
        swapped = fn.functional_call(model, ({"0.weight": t(lib, B)}, {"1.running_mean": t(lib, [1.0, -1.0])}), x)
        tied = seeded(lib, nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False)))
        tied[1].weight = tied[0].weight
        w = t(lib, np.eye(3) * 2)
        return (swapped, model(x), fn.functional_call(model, {}, (x,)), model[0].weight.requires_grad,
                fn.functional_call(tied, {"0.weight": w}, x), fn.functional_call(tied, {"0.weight": w}, x,
                                                                                 tie_weights=False))
    run_both(run)
    raises_both(lambda lib: func(lib).functional_call(lib.nn.Linear(2, 3), {"foo": t(lib, B)}, t(lib, A[:2]),
                                                      strict=True), RuntimeError,
                both_say=("Unexpected key(s): 'foo'", "Missing key(s)"))
    raises_both(lambda lib: func(lib).functional_call(lib.nn.Linear(3, 2), ({"weight": t(lib, B)},
                                                                            {"weight": t(lib, B)}), t(lib, A)),
                ValueError, both_say=("appeared in multiple dictionaries",))


# ---------------------------------------------------------------- autograd.functional forms and flags

def test_autograd_functional_return_forms():
    """Tuples in give tuples out, a Tensor gives a Tensor; nested tuples for the Jacobian of a
    tuple-returning function of a tuple; create_graph keeps results differentiable; v may be
    omitted for one-element inputs and outputs."""
    def run(lib):
        F = af(lib)
        x, w = t(lib, A), t(lib, B)
        pair = lambda x, w: ((w @ x).sin(), x.exp().sum())  # noqa: E731
        scal = lambda x, w: (w @ x).sin().sum() * x.sum()  # noqa: E731
        hx = F.hessian(lambda x: (x ** 3).sum(), t(lib, A, requires_grad=True), create_graph=True)
        return (F.jacobian(pair, (x, w)), F.jacobian(lambda x: x.sin(), x), F.jacobian(lambda x: (x, x * 2), x),
                F.jacobian(pair, (x, w), vectorize=True), F.hessian(scal, (x, w)),
                F.hessian(scal, (x, w), vectorize=True),
                F.vjp(pair, (x, w), (t(lib, [1.0, 2.0]), t(lib, 3.0))), F.vjp(lambda x: x.sum(), x),
                F.jvp(lambda x: x * 2, t(lib, 1.5)), F.jvp(pair, (x, w), (x, w)), F.vhp(scal, (x, w), (x, w)),
                F.hvp(scal, (x, w), (x, w)), F.hvp(lambda x: x.exp().sum(), t(lib, 0.5)),
                hx.requires_grad, hx, F.jacobian(lambda x: x.sin(), x).requires_grad,
                F.vjp(lambda x: x.exp(), x, x, create_graph=True)[1].requires_grad,
                F.jacobian(lambda x: x * 2, x, create_graph=True).requires_grad)
    run_both(run)


def test_autograd_functional_unused_inputs_and_strict():
    """An input the function ignores gets zeros, or with strict=True PyTorch's RuntimeError."""
    run_both(lambda lib: (af(lib).jacobian(lambda x, y: x * 2, (t(lib, A), t(lib, B))),
                          af(lib).vjp(lambda x, y: x * 2, (t(lib, A), t(lib, B)), t(lib, A)),
                          af(lib).jvp(lambda x, y: x * 2, (t(lib, A), t(lib, B)), (t(lib, A), t(lib, B))),
                          af(lib).hessian(lambda x, y: (x ** 3).sum(), (t(lib, A), t(lib, B))),
                          af(lib).hvp(lambda x, y: (x ** 3).sum(), (t(lib, A), t(lib, B)), (t(lib, A), t(lib, B)))))
    cases = [
        (lambda lib: af(lib).jacobian(lambda x, y: x * 2, (t(lib, A), t(lib, B)), strict=True), "independent of input"),
        (lambda lib: af(lib).vjp(lambda x: t(lib, A), t(lib, A), t(lib, A), strict=True), "does not require gradients"),
        (lambda lib: af(lib).vjp(lambda x, y: x, (t(lib, A), t(lib, B)), t(lib, A), strict=True),
         "independent of input 1"),
        (lambda lib: af(lib).jvp(lambda x: x.detach(), t(lib, A), t(lib, A), strict=True), "does not require"),
        (lambda lib: af(lib).hessian(lambda x: x.sum(), t(lib, A), strict=True), "jacobian of the user-provided"),
        (lambda lib: af(lib).vhp(lambda x, y: (x * x).sum(), (t(lib, A), t(lib, B)), (t(lib, A), t(lib, B)),
                                 strict=True), "independent of input 1"),
        (lambda lib: af(lib).jacobian(lambda x: x, t(lib, A), strict=True, vectorize=True), "not supported together"),
        (lambda lib: af(lib).jacobian(lambda x: x, t(lib, A), strict=True, strategy="forward-mode",
                                      vectorize=True), "not supported together"),
    ]
    for program, phrase in cases:
        raises_both(program, RuntimeError, both_say=(phrase,))


# ---------------------------------------------------------------- errors as PyTorch's

@pytest.mark.parametrize("program, exc, phrase", [
    (lambda lib: func(lib).grad(lambda x: x * 2)(t(lib, A)), RuntimeError, "scalar Tensor"),
    (lambda lib: func(lib).grad(lambda x: (x * 2).sum().item())(t(lib, A)), RuntimeError, "to return a Tensor"),
    (lambda lib: func(lib).grad(lambda x: x.sum())(1.0), ValueError, "must be Tensor"),
    (lambda lib: func(lib).grad(lambda x: x.sum(), argnums=[0])(t(lib, A)), RuntimeError, "argnums must be int"),
    (lambda lib: func(lib).grad(lambda x: x.sum(), argnums=1)(t(lib, A)), RuntimeError, "only 1 positional"),
    (lambda lib: func(lib).grad(lambda x: x.sum(), argnums=())(t(lib, A)), RuntimeError, "non-empty"),
    (lambda lib: func(lib).grad(lambda x: x.sum(), argnums=(0, -1))(t(lib, A)), RuntimeError, "unique"),
    (lambda lib: func(lib).grad(lambda x: x.sum(), has_aux=True)(t(lib, A)), RuntimeError, "(output, aux)"),
    (lambda lib: func(lib).grad(lambda x: x.sum())(lib.tensor([1, 2])), RuntimeError, "floating point"),
    (lambda lib: func(lib).vjp(lambda x: x, t(lib, A))[1](t(lib, A[:2])), RuntimeError, "shape"),
    (lambda lib: func(lib).vjp(lambda x: x, t(lib, A))[1]((t(lib, A),)), RuntimeError, "pytree structure"),
    (lambda lib: func(lib).vjp(lambda x: 3, t(lib, A)), RuntimeError, "only tensors"),
    (lambda lib: func(lib).jacrev(lambda x: (x > 0).long())(t(lib, A)), RuntimeError, "floating-point"),
    (lambda lib: func(lib).jacrev(lambda x: x, chunk_size=0)(t(lib, A)), ValueError, "chunk_size"),
    (lambda lib: func(lib).jvp(lambda x: x, [t(lib, A)], [t(lib, A)]), RuntimeError, "primals to be a tuple"),
    (lambda lib: func(lib).jvp(lambda x: x, (t(lib, A),), (t(lib, A), t(lib, A))), RuntimeError, "same python"),
    (lambda lib: func(lib).jvp(lambda x: x, (t(lib, A),), (t(lib, B),)), RuntimeError, "size"),
    (lambda lib: func(lib).jvp(lambda x: t(lib, A), (t(lib, A),), (t(lib, A),), strict=True), RuntimeError,
     "independent of the inputs"),
    (lambda lib: func(lib).vmap(lambda x, y: x + y)(t(lib, A), t(lib, B)), ValueError, "same size"),
    (lambda lib: func(lib).vmap(lambda x: x, in_dims=[0])(t(lib, A)), ValueError, "expected `in_dims`"),
    (lambda lib: func(lib).vmap(lambda x, y: x, in_dims=(0,))(t(lib, A), t(lib, A)), ValueError, "not compatible"),
    (lambda lib: func(lib).vmap(lambda x: x, in_dims=(None,))(t(lib, A)), ValueError, "at least one Tensor"),
    (lambda lib: func(lib).vmap(lambda x: x, in_dims=2)(t(lib, B)), ValueError, "dimensionality 2"),
    (lambda lib: func(lib).vmap(lambda x, s: x * s)(t(lib, A), 2.0), ValueError, "non-Tensor"),
    (lambda lib: func(lib).vmap(lambda x: x)(), ValueError, "got no inputs"),
    (lambda lib: func(lib).vmap(lambda x: x, out_dims=0.5)(t(lib, A)), ValueError, "`out_dims` must be"),
    (lambda lib: func(lib).vmap(lambda x: x, out_dims=(0, 1))(t(lib, A)), ValueError, "not compatible"),
    (lambda lib: func(lib).vmap(lambda x: x * 2, out_dims=None)(t(lib, A)), ValueError, "out_dim is None"),
    (lambda lib: func(lib).vmap(lambda x: 3)(t(lib, A)), ValueError, "must only return Tensors"),
    (lambda lib: func(lib).vmap(lambda x: x, out_dims=3)(t(lib, A)), IndexError, ""),
    (lambda lib: func(lib).vmap(lambda x: x, chunk_size=0), ValueError, "chunk_size"),
    (lambda lib: func(lib).vmap(lambda x: x, randomness="sometimes"), RuntimeError, "randomness"),
    (lambda lib: af(lib).jacobian(lambda x: x, [t(lib, A)]), TypeError, "Tensor or a tuple of Tensors"),
    (lambda lib: af(lib).jacobian(lambda x: 3.0, t(lib, A)), TypeError, "outputs of the user-provided"),
    (lambda lib: af(lib).jacobian(lambda x: x, t(lib, A), strategy="sideways"), AssertionError, "strategy"),
    (lambda lib: af(lib).jacobian(lambda x: x, t(lib, A), strategy="forward-mode"), NotImplementedError,
     "vectorize=True"),
    (lambda lib: af(lib).jacobian(lambda x: x, t(lib, A), create_graph=True, strategy="forward-mode"),
     NotImplementedError, "create_graph=True"),
    (lambda lib: af(lib).vjp(lambda x: x, t(lib, A)), RuntimeError, "v can only be None"),
    (lambda lib: af(lib).vjp(lambda x: x, t(lib, A), t(lib, B)), RuntimeError, "invalid size"),
    (lambda lib: af(lib).jvp(lambda x, y: x, (t(lib, A), t(lib, A)), (t(lib, A),)), RuntimeError, "invalid length"),
    (lambda lib: af(lib).hessian(lambda x: x, t(lib, A)), RuntimeError, "single element"),
    (lambda lib: af(lib).hvp(lambda x: (x, x), t(lib, A), t(lib, A)), RuntimeError, "single Tensor"),
    (lambda lib: af(lib).vhp(lambda x: x.sum(), t(lib, A)), RuntimeError, "v can only be None"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_errors_as_torch(program, exc, phrase):
    raises_both(program, exc, both_say=(phrase,) if phrase else ())
