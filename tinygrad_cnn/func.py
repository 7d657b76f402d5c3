"""Function transforms, as torch.func: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian,
vmap and functional_call, with PyTorch's names, signatures, results and errors.

A transform takes a function and returns a function; transforms compose (grad of grad, jacfwd of
jacrev, vmap of grad, ...). Arguments and results may be pytrees: Tensors in nested tuples, lists
and dicts. How they work here:

    reverse mode (grad, vjp, jacrev)
        func runs on stand-ins for the differentiated arguments: a fresh leaf, or a clone of an
        argument that already requires grad (so it stays differentiable from outside). Being new
        Tensors, they keep a capture of the same argument inside func a constant. Gradients are
        taken with autograd.grad, so no `.grad` of the caller's tensors changes, whatever their
        `requires_grad`. The backward pass records a graph only when func's result depends on a
        tensor that requires grad other than the stand-ins (an outer transform's stand-in, a
        model's parameter): then nested transforms differentiate through it, and an outermost
        result is a plain tensor.
    forward mode (jvp, jacfwd)
        dual tensors of autograd.forward_ad, each call at a level of its own, so jvp of jvp works.
    vmap
        a loop over the batch: func runs once per sample and the results are stacked. The values
        are PyTorch's; the speed is that of the loop (PyTorch batches the ops instead).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .autograd import forward_ad
from .autograd.engine import topological_order
from .autograd.functional import grads_or_none, one_hot, stand_in
from .autograd.grad_mode import enable_grad, is_grad_enabled
from .autograd.graph import AccumulateGrad, gradient_edge
from .creation import eye, zeros_like
from .rng import get_generator
from .tensor import Tensor, stack

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp", "vjp", "vmap"]

ArgNums = int | tuple[int, ...]


# ---------------------------------------------------------------- pytrees

# A tree's structure ("spec"): None for a leaf, else (container type, dict keys or None, child specs).
Spec = Any


def tree_flatten(tree: Any) -> tuple[list, Spec]:
    """The leaves of `tree` (anything but a tuple, list or dict), depth first, and its structure."""
    leaves: list = []

    def visit(node: Any) -> Spec:
        if isinstance(node, dict):
            return dict, tuple(node), tuple([visit(node[k]) for k in node])
        if isinstance(node, (tuple, list)):
            return type(node), None, tuple([visit(child) for child in node])
        leaves.append(node)
        return None
    return leaves, visit(tree)


def tree_unflatten(leaves: Sequence, spec: Spec) -> Any:
    """The tree of structure `spec` holding `leaves` (the inverse of tree_flatten)."""
    it = iter(leaves)

    def build(s: Spec) -> Any:
        if s is None:
            return next(it)
        kind, keys, children = s
        values = [build(c) for c in children]
        if kind is dict:
            return dict(zip(keys, values))
        return kind(*values) if hasattr(kind, "_fields") else kind(values)  # a namedtuple takes fields
    return build(spec)


def _num_leaves(spec: Spec) -> int:
    return 1 if spec is None else sum(_num_leaves(c) for c in spec[2])


def _broadcast(prefix: Any, spec: Spec) -> list | None:
    """One entry of `prefix` per leaf of `spec`: a leaf of prefix (an int, None) stands for the
    whole subtree at its place, as in_dims and out_dims do; None if the structures do not match."""
    if not isinstance(prefix, (tuple, list, dict)):
        return [prefix] * _num_leaves(spec)
    if spec is None:
        return None
    kind, keys, children = spec
    if isinstance(prefix, dict):
        if kind is not dict or set(prefix) != set(keys):
            return None
        parts = [_broadcast(prefix[k], c) for k, c in zip(keys, children)]
    else:
        if kind is dict or isinstance(prefix, list) != issubclass(kind, list) or len(prefix) != len(children):
            return None
        parts = [_broadcast(p, c) for p, c in zip(prefix, children)]
    return None if any(p is None for p in parts) else [x for p in parts for x in p]


def _spec_str(spec: Spec) -> str:
    """A structure as text: '*' for a leaf, '(*, [*, {'a': *}])' for containers."""
    if spec is None:
        return "*"
    kind, keys, children = spec
    inner = [_spec_str(c) for c in children]
    if kind is dict:
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(keys, inner)) + "}"
    if issubclass(kind, list):
        return "[" + ", ".join(inner) + "]"
    return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"


# ---------------------------------------------------------------- arguments

def _check_argnums(argnums: Any, num_args: int) -> ArgNums:
    """argnums made non-negative; RuntimeError (as PyTorch) for a bad one."""
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if isinstance(argnums, tuple):
        if not argnums:
            raise RuntimeError("argnums must be non-empty")
        wrapped = tuple([_check_argnums_entry(a, num_args) for a in argnums])
        if len(set(wrapped)) != len(wrapped):
            raise RuntimeError(f"argnums elements must be unique, got {argnums}")
        return wrapped
    return _check_argnums_entry(argnums, num_args)


def _check_argnums_entry(argnum: Any, num_args: int) -> int:
    if not isinstance(argnum, int):
        raise RuntimeError(f"argnum must be int, got: {type(argnum)}")
    if not -num_args <= argnum < num_args:
        raise RuntimeError(f"Got argnum={argnum}, but only {num_args} positional inputs")
    return argnum % num_args


def _selected(args: tuple, argnums: ArgNums) -> Any:
    """The differentiated arguments: args[argnums] for an int, a tuple of them for a tuple."""
    return args[argnums] if isinstance(argnums, int) else tuple([args[i] for i in argnums])


def _replaced(args: tuple, new: Any, argnums: ArgNums) -> tuple:
    """args with the selected ones replaced by `new` (in _selected's form)."""
    if isinstance(argnums, int):
        return args[:argnums] + (new,) + args[argnums + 1:]
    chosen = dict(zip(argnums, new))
    return tuple([chosen.get(i, a) for i, a in enumerate(args)])


def _name(func: Callable) -> str:
    if isinstance(func, functools.partial):
        return f"functools.partial({_name(func.func)}, ...)"
    return getattr(func, "__name__", repr(func))


# ---------------------------------------------------------------- stand-ins and their tangents

def _with_tangents_of(new: Tensor, old: Tensor) -> Tensor:
    """`new` carrying the forward-AD tangents `old` has at the active levels (detach() drops them,
    and a transform inside jvp must pass them on)."""
    for level in range(len(forward_ad.levels)):
        tangent = forward_ad.unpack_dual(old, level=level).tangent
        if tangent is not None:
            new = forward_ad.make_dual(new, tangent, level=level)
    return new


def _fresh(x: Any) -> tuple[Tensor, Tensor | None]:
    """(stand-in for the differentiated argument x, the new leaf it is made from or None)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    if x.requires_grad:
        return stand_in(x, connected=True), None
    leaf = stand_in(x, connected=False)
    return _with_tangents_of(leaf, x), leaf


def _depends_on_others(tensors: Sequence[Tensor], own: Sequence[Tensor]) -> bool:
    """Whether the graph behind `tensors` reaches a leaf that requires grad other than `own`."""
    roots = [gradient_edge(t)[0] for t in tensors if t.requires_grad]
    own_ids = {id(t) for t in own}
    return any(type(node) is AccumulateGrad and node.variable is not None and id(node.variable) not in own_ids
               for node in topological_order(roots))


def _plain(tree: Any) -> Any:
    """tree with its Tensors cut from the graph (keeping their forward-AD tangents)."""
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([_with_tangents_of(x.detach(), x) if isinstance(x, Tensor) and x.requires_grad else x
                           for x in leaves], spec)


class _Linearized:
    """func run on stand-ins for the differentiated arguments, ready to pull cotangents back.

    `argnums=None` differentiates all arguments (vjp). `api` names the caller in errors."""

    def __init__(self, func: Callable, args: tuple, kwargs: dict, argnums: Any, has_aux: bool, api: str) -> None:
        outside = is_grad_enabled()
        with enable_grad():  # as PyTorch: a transform ignores an outer no_grad, not one inside func
            if argnums is not None:
                argnums = _check_argnums(argnums, len(args))
            chosen = args if argnums is None else _selected(args, argnums)
            leaves, self.in_spec = tree_flatten(chosen)
            fresh = [_fresh(x) for x in leaves]
            self.inputs = [s for s, _ in fresh]
            chosen = tree_unflatten(self.inputs, self.in_spec)
            out = func(*(chosen if argnums is None else _replaced(args, chosen, argnums)), **kwargs)
            self.aux = None
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is "
                                       "True")
                out, self.aux = out
        self.out = out
        self.flat_out, self.out_spec = tree_flatten(out)
        # gradients are recorded as a graph only if someone outside can differentiate them
        results = [t for t in self.flat_out + tree_flatten(self.aux)[0] if isinstance(t, Tensor)]
        self.graph = outside and _depends_on_others(results, [leaf for _, leaf in fresh if leaf is not None])

    def pull(self, cotangents: Sequence[Any], *, outputs: Sequence[Tensor] | None = None,
             create_graph: bool | None = None, retain_graph: bool = True) -> list[Tensor]:
        """The gradient for each stand-in (zeros where func did not use it) of the sum of
        <output, cotangent> over func's outputs (or those given); a cotangent of None is 1 for a
        one-element output."""
        if create_graph is None:
            create_graph = is_grad_enabled() and (self.graph or any(
                isinstance(c, Tensor) and c.requires_grad for c in cotangents))
        grads = grads_or_none(self.flat_out if outputs is None else outputs, self.inputs, cotangents,
                              create_graph=create_graph, retain_graph=retain_graph)
        return [zeros_like(x) if g is None else g for g, x in zip(grads, self.inputs)]

    def outputs(self) -> tuple[Any, Any]:
        """(func's result, its aux), cut from the graph unless gradients are recorded."""
        return (self.out, self.aux) if self.graph else (_plain(self.out), _plain(self.aux))


def _check_tensor_outputs(flat: list, api: str) -> None:
    if not flat or (len(flat) == 1 and flat[0] is None):
        raise RuntimeError(f"{api}: Expected f to be a function that has non-empty output (got output = {flat})")
    for o in flat:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got unsupported type {type(o)}")


def _check_differentiable_outputs(flat: list) -> None:
    """What vjp and jacrev need of func's outputs: Tensors of floating point."""
    _check_tensor_outputs(flat, "vjp(f, *primals)")
    for o in flat:
        if o.dtype.kind != "f":
            raise RuntimeError(f"vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got Tensor "
                               f"with dtype {o.dtype}")


# ---------------------------------------------------------------- reverse mode

def grad_and_value(func: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """A function returning (gradient, value) of the scalar func at its arguments: the gradient
    has the form of the arguments `argnums` picks (one, or a tuple for a tuple of argnums; each a
    pytree like the argument). With has_aux, func returns (value, aux) and this (gradient, (value,
    aux)). One forward and one backward pass."""
    api = "grad_and_value(f)(*args)"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> tuple:
        lin = _Linearized(func, args, kwargs, argnums, has_aux, api)
        if not isinstance(lin.out, Tensor):
            raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(lin.out)}")
        if lin.out.ndim != 0:
            raise RuntimeError(f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with {lin.out.ndim} "
                               "dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
        grads = tree_unflatten(lin.pull([None], create_graph=lin.graph), lin.in_spec)
        value, aux = lin.outputs()
        return (grads, (value, aux)) if has_aux else (grads, value)
    return wrapper


def grad(func: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """A function returning the gradient of the scalar func with respect to the arguments
    `argnums` picks (and aux, as (gradient, aux), with has_aux): grad_and_value without the value."""
    run = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        grads, value = run(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads
    return wrapper


def vjp(func: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """(func(*primals), vjp_fn) (and aux with has_aux): vjp_fn(cotangents), cotangents shaped as
    func's output, returns v^T J for every primal, as a tuple. One forward pass here, one backward
    pass per vjp_fn call (the graph is kept for more calls)."""
    lin = _Linearized(func, primals, {}, None, has_aux, "vjp(f, *primals)")
    _check_differentiable_outputs(lin.flat_out)

    def vjp_fn(cotangents: Any, retain_graph: bool = True, create_graph: bool | None = None) -> tuple:
        flat, spec = tree_flatten(cotangents)
        if spec != lin.out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {_spec_str(spec)}, primal output: "
                               f"{_spec_str(lin.out_spec)}")
        return tree_unflatten(lin.pull(flat, create_graph=create_graph, retain_graph=retain_graph), lin.in_spec)

    out, aux = lin.outputs()
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jacrev(func: Callable, argnums: ArgNums = 0, *, has_aux: bool = False, chunk_size: int | None = None) -> Callable:
    """A function returning the Jacobian of func with respect to the arguments `argnums` picks,
    by reverse mode: one forward pass, then one backward pass per output element (a row of J each).
    The cost grows with the number of outputs: the right choice for wide Jacobians (few outputs,
    many inputs, such as a loss); jacfwd for tall ones. For an output of shape O and an argument of
    shape I the block has shape O + I; pytrees of outputs hold (pytrees of) blocks per argument.
    `chunk_size` (how many rows PyTorch batches at once) changes nothing here: rows are looped."""
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        lin = _Linearized(func, args, {}, argnums, has_aux, "vjp(f, *primals)")
        _check_differentiable_outputs(lin.flat_out)
        blocks = []  # per output: one block per differentiated leaf
        for out in lin.flat_out:
            rows: list[list[Tensor]] = [[] for _ in lin.inputs]
            for k in range(out.numel()):
                for r, g in zip(rows, lin.pull([one_hot(out, k)], outputs=[out], create_graph=lin.graph)):
                    r.append(g)
            blocks.append(tree_unflatten([_jacobian_block(r, out, x, dim=0) for r, x in zip(rows, lin.inputs)],
                                         lin.in_spec))
        jac = tree_unflatten(blocks, lin.out_spec)
        return (jac, lin.outputs()[1]) if has_aux else jac
    return wrapper


def _jacobian_block(pieces: list[Tensor], out: Tensor, x: Tensor, dim: int) -> Tensor:
    """Rows (dim=0, each of x's shape) or columns (dim=-1, each of out's shape) as the block of
    shape out.shape + x.shape."""
    if not pieces:
        return out.new_zeros(tuple(out.shape) + tuple(x.shape))
    return stack(pieces, dim=dim).reshape(tuple(out.shape) + tuple(x.shape))


# ---------------------------------------------------------------- forward mode

_JVP = "jvp(f, primals, tangents)"


def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False, has_aux: bool = False) -> tuple:
    """(func(*primals), J v) (and aux with has_aux), v = tangents shaped as primals: one forward
    pass with dual tensors (forward-mode AD), no backward pass. With strict=True, an output that
    does not depend on the primals raises instead of getting a zero tangent."""
    return _push_forward(func, primals, tangents, None, strict, has_aux)


def _push_forward(func: Callable, args: Any, tangents: Any, argnums: ArgNums | None, strict: bool,
                  has_aux: bool) -> tuple:
    """jvp with respect to the arguments `argnums` picks (all for None); tangents are given for
    those as a tuple (one per picked argument)."""
    if not isinstance(args, tuple):
        raise RuntimeError(f"{_JVP}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    chosen = args if argnums is None else _selected(args, _check_argnums(argnums, len(args)))
    if isinstance(argnums, int):
        chosen = (chosen,)
    flat_primals, primals_spec = tree_flatten(chosen)
    flat_tangents, tangents_spec = tree_flatten(tangents)
    if primals_spec != tangents_spec:
        raise RuntimeError(f"{_JVP}: Expected primals and tangents to have the same python structure. For example, "
                           "if primals is a tuple of 3 tensors, tangents also must be. Got primals with structure "
                           f"{_spec_str(primals_spec)} and tangents with structure {_spec_str(tangents_spec)}")
    for name, flat in (("primals", flat_primals), ("tangents", flat_tangents)):
        if not flat:
            raise RuntimeError(f"{_JVP}: Expected {name} to contain at least one Tensor.")
        for x in flat:
            if not isinstance(x, Tensor):
                raise RuntimeError(f"{_JVP}: Expected {name} to only contain Tensors, got {type(x)}")
    with forward_ad._nested_dual_level() as level:
        duals = tree_unflatten([forward_ad.make_dual(p, t, level=level) for p, t in zip(flat_primals, flat_tangents)],
                               primals_spec)
        if argnums is not None:
            duals = _replaced(args, duals[0] if isinstance(argnums, int) else duals, argnums)
        out = func(*duals)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError(f"{_JVP}: output of function f should be a tuple: (output, aux) if has_aux is True")
            out, aux = out
        flat_out, spec = tree_flatten(out)
        _check_tensor_outputs(flat_out, _JVP)
        unpacked = [forward_ad.unpack_dual(o, level=level) for o in flat_out]
    if strict and any(tangent is None for _, tangent in unpacked):
        raise RuntimeError(f"{_JVP[:-1]}, strict=True): The output of f is independent of the inputs. This is not "
                           "allowed with strict=True.")
    primals_out = tree_unflatten([p for p, _ in unpacked], spec)
    tangents_out = tree_unflatten([zeros_like(p) if t is None else t for p, t in unpacked], spec)
    return (primals_out, tangents_out, aux) if has_aux else (primals_out, tangents_out)


def jacfwd(func: Callable, argnums: ArgNums = 0, has_aux: bool = False, *, randomness: str = "error") -> Callable:
    """A function returning the Jacobian of func with respect to the arguments `argnums` picks, by
    forward mode: one jvp per element of those arguments (a column of J each). The cost grows with
    the number of inputs: the right choice for tall Jacobians (few inputs, many outputs); jacrev
    for wide ones. Results have jacrev's form. `randomness` is vmap's, over the basis vectors."""

    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        chosen = _selected(args, _check_argnums(argnums, len(args)))
        flat, spec = tree_flatten((chosen,) if isinstance(argnums, int) else chosen)
        for x in flat:
            if not isinstance(x, Tensor):
                raise RuntimeError(f"{_JVP}: Expected primals to only contain Tensors, got {type(x)}")
        sizes = [x.numel() for x in flat]
        total = sum(sizes)
        # row k of the basis is the k-th unit vector of all the arguments' elements laid end to end
        identity = eye(total, dtype=flat[0].dtype) if flat else None
        starts = [sum(sizes[:j]) for j in range(len(flat))]
        basis = tree_unflatten([identity[:, s:s + n].reshape((total,) + tuple(x.shape))
                                for s, n, x in zip(starts, sizes, flat)], spec)

        def column(tangents: Any) -> Any:
            result = _push_forward(func, args, tangents, argnums, False, has_aux)
            return (result[1], result[2]) if has_aux else result[1]

        columns = vmap(column, randomness=randomness)(basis)
        if has_aux:  # aux came out of vmap with a batch dim: every row is the same
            columns, aux = columns
            aux_leaves, aux_spec = tree_flatten(aux)
            aux = tree_unflatten([a[0] for a in aux_leaves], aux_spec)
        flat_columns, out_spec = tree_flatten(columns)
        blocks = []
        for c in flat_columns:  # (total,) + out.shape: the elements' tangents, last dim first
            per_element = c.permute(*range(1, c.ndim), 0)
            pieces = [per_element[..., s:s + n].reshape(tuple(c.shape[1:]) + tuple(x.shape))
                      for s, n, x in zip(starts, sizes, flat)]
            block = tree_unflatten(pieces, spec)
            blocks.append(block[0] if isinstance(argnums, int) else block)
        jac = tree_unflatten(blocks, out_spec)
        return (jac, aux) if has_aux else jac
    return wrapper


def hessian(func: Callable, argnums: ArgNums = 0) -> Callable:
    """A function returning the Hessian of the scalar func with respect to the arguments `argnums`
    picks: jacfwd(jacrev(func)), forward mode over reverse mode (one backward pass, then one jvp
    through it per input element). Blocks have shape I_i + I_j."""
    return jacfwd(jacrev(func, argnums), argnums)


# ---------------------------------------------------------------- vmap

_RANDOMNESS = ("error", "different", "same")


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """func mapped over a dim of its arguments: vmap(f)(x) stacks f(x[0]), f(x[1]), ... along
    `out_dims`.

    in_dims: an int (the batch dim of every Tensor argument), None (not batched), or a tuple with
    one entry per argument, each an int, None or a pytree of them matching that argument. Every
    batched Tensor must have the same batch size. Keyword arguments are not batched.
    out_dims: where the batch dim goes in each output (an int, or a pytree matching the output);
    None for an output that is the same for every sample.
    randomness: 'error' raises if func draws random numbers, 'different' draws new ones per
    sample, 'same' the same ones for every sample.

    Implemented as a loop over the samples (the results are PyTorch's; the speed that of a loop,
    and `chunk_size` changes nothing). An output marked out_dims=None is checked to be equal
    across samples (PyTorch raises when it depends on the batch at all). With a batch of 0,
    func runs once on zeros to learn the outputs' shapes."""
    if randomness not in _RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _check_out_dims(out_dims, func)
        size, flat_dims, flat_args, spec = _batched_args(func, in_dims, args)
        samples = [tree_unflatten([a if d is None else a[(slice(None),) * d + (b,)]
                                   for a, d in zip(flat_args, flat_dims)], spec) for b in range(size)]
        if not samples:  # an empty batch: one run on zeros tells the outputs' structure and shapes
            samples = [tree_unflatten([a if d is None else a.new_zeros(a.shape[:d] + a.shape[d + 1:])
                                       for a, d in zip(flat_args, flat_dims)], spec)]
        results = _run_samples(func, samples, kwargs, randomness)
        return _stacked_outputs(func, results, out_dims, size)
    return wrapped


def _check_out_dims(out_dims: Any, func: Callable) -> None:
    for d in tree_flatten(out_dims)[0]:
        if not (d is None or isinstance(d, int)):
            raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a "
                             "python collection of ints representing where in the outputs the vmapped dimension "
                             "should appear.")


def _batched_args(func: Callable, in_dims: Any, args: tuple) -> tuple[int, list, list, Spec]:
    """(batch size, in_dim per leaf of args (non-negative or None), the leaves, args' structure)."""
    head = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"{head}: expected `in_dims` to be int or a (potentially nested) tuple matching the "
                         f"structure of inputs, got: {type(in_dims)}.")
    if not args:
        raise ValueError(f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
                         "trying to vmap over a function with no inputs. The latter is unsupported.")
    flat_args, spec = tree_flatten(args)
    flat_dims = _broadcast(in_dims, spec)
    if flat_dims is None:
        raise ValueError(f"{head}: in_dims is not compatible with the structure of `inputs`. in_dims has structure "
                         f"{_spec_str(tree_flatten(in_dims)[1])} but inputs has structure {_spec_str(spec)}.")
    for i, (arg, d) in enumerate(zip(flat_args, flat_dims)):
        if d is None:
            continue
        if not isinstance(d, int):
            raise ValueError(f"{head}: Got in_dim={d} for an input but in_dim must be either an integer dimension or "
                             "None.")
        if not isinstance(arg, Tensor):
            raise ValueError(f"{head}: Got in_dim={d} for an input but the input is of type {type(arg)}. We cannot "
                             "vmap over non-Tensor arguments, please use None as the respective in_dim")
        if not -arg.ndim <= d < arg.ndim:
            raise ValueError(f"{head}: Got in_dim={d} for some input, but that input is a Tensor of dimensionality "
                             f"{arg.ndim} so expected in_dim to satisfy -{arg.ndim} <= in_dim < {arg.ndim}.")
        flat_dims[i] = d % arg.ndim
    sizes = [arg.shape[d] for arg, d in zip(flat_args, flat_dims) if d is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(n != sizes[0] for n in sizes):
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    return sizes[0], flat_dims, flat_args, spec


def _run_samples(func: Callable, samples: list, kwargs: dict, randomness: str) -> list:
    """func on each sample; the global generator's state decides and checks `randomness`."""
    bit_generator = get_generator().bit_generator
    start = bit_generator.state
    results = []
    for sample in samples:
        if randomness == "same":
            bit_generator.state = start
        before = bit_generator.state if randomness == "error" else None
        results.append(func(*sample, **kwargs))
        if before is not None and bit_generator.state != before:
            raise RuntimeError("vmap: called random operation while in randomness error mode. Please either use the "
                               "'same' or 'different' randomness flags on vmap or perform the randomness operation "
                               "out of vmap")
    return results


def _stacked_outputs(func: Callable, results: list, out_dims: Any, size: int) -> Any:
    """The per-sample results stacked along out_dims (an empty batch: empty outputs)."""
    flat_first, spec = tree_flatten(results[0])
    columns = list(zip(*[tree_flatten(r)[0] for r in results]))
    if isinstance(results[0], Tensor):  # a lone Tensor takes an int, None or a 1-tuple (as PyTorch)
        lone = out_dims is None or isinstance(out_dims, int)
        dims = [out_dims] if lone else list(out_dims) if isinstance(out_dims, tuple) and len(out_dims) == 1 else None
    else:
        dims = _broadcast(out_dims, spec)
    if dims is None:
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with "
                         f"the structure of `outputs`. out_dims has structure {_spec_str(tree_flatten(out_dims)[1])} "
                         f"but outputs has structure {_spec_str(spec)}.")
    name = _name(func)
    stacked = []
    for column, d in zip(columns, dims):
        if d is None:
            if isinstance(column[0], Tensor) and any(not column[0].equal(c) for c in column[1:]):
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            stacked.append(column[0])
            continue
        if not isinstance(column[0], Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(column[0])}. Did "
                             "you mean to set out_dims= to None for output?")
        out = stack(column, dim=d)
        if size == 0:  # the one run was on zeros: keep its shape with an empty batch dim
            out = out[(slice(None),) * (d % out.ndim) + (slice(0, 0),)]
        stacked.append(out)
    return tree_unflatten(stacked, spec)


# ---------------------------------------------------------------- functional_call

def functional_call(module: Any, parameter_and_buffer_dicts: dict | Sequence[dict], args: Any = None,
                    kwargs: dict | None = None, *, tie_weights: bool = True, strict: bool = False) -> Any:
    """module(*args, **kwargs) with some parameters and buffers replaced, for this call only, by
    the tensors of `parameter_and_buffer_dicts` (names as in named_parameters(): 'fc.weight').
    Gradients then flow to the given tensors: grad(lambda p: loss(functional_call(model, p, x)))
    differentiates a model with respect to a dict of parameters. With tie_weights, a value given
    for one of several names of the same tensor replaces all of them; with strict, every parameter
    and buffer must be given and no other name."""
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        values = dict(dicts)
    elif isinstance(dicts, (list, tuple)):
        if not all(isinstance(d, dict) for d in dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        keys = [k for d in dicts for k in d]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
        values = {k: v for d in dicts for k, v in d.items()}
    else:
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(dicts)}")
    names = _tensor_names(module)
    if tie_weights:
        values = _untied(values, names)
    if strict:
        missing = [n for n in names if n not in values]
        unexpected = [k for k in values if k not in names]
        if missing or unexpected:
            lines = [f"Error(s) in reparametrizing for {type(module).__name__}:"]
            if unexpected:
                lines.append("\tUnexpected key(s): " + ", ".join(repr(k) for k in unexpected) + ".")
            if missing:
                lines.append("\tMissing key(s): " + ", ".join(repr(k) for k in missing) + ".")
            raise RuntimeError("\n".join(lines))
    args = args if isinstance(args, tuple) else () if args is None else (args,)
    restore = []
    try:
        for name, value in values.items():
            restore.append(_swap(module, name, value))
        return module(*args, **(kwargs or {}))
    finally:
        for undo in reversed(restore):
            undo()


def _tensor_names(module: Any) -> dict[str, Any]:
    """Every name of a parameter or buffer of module, tied ones included: name -> tensor."""
    names = {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for registry in (sub._parameters, sub._buffers):
            for key, t in registry.items():
                if t is not None:
                    names[f"{prefix}.{key}" if prefix else key] = t
    return names


def _untied(values: dict, names: dict) -> dict:
    """values extended to every other name of a tensor that is given under one name."""
    tied: dict[int, list[str]] = {}
    for name, t in names.items():
        tied.setdefault(id(t), []).append(name)
    result = dict(values)
    for group in (g for g in tied.values() if len(g) > 1):
        given = [n for n in group if n in values]
        if len({id(values[n]) for n in given}) > 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(given)}, which are tied. "
                             "Consider using tie_weights=False")
        if given:
            result.update(dict.fromkeys(group, values[given[0]]))
    return result


def _swap(module: Any, name: str, value: Any) -> Callable[[], None]:
    """Put `value` at the dotted `name` of module, as the attribute forward reads (and in the
    registry it belongs to, bypassing the check that a parameter slot holds a Parameter: the
    value is a plain Tensor for this call); returns what puts the old one back."""
    prefix, _, attr = name.rpartition(".")
    owner = module.get_submodule(prefix) if prefix else module
    registry = next((r for r in (owner._parameters, owner._buffers) if attr in r), None)
    missing = object()
    old = owner.__dict__.get(attr, missing)
    if registry is not None:
        registry[attr] = value
    object.__setattr__(owner, attr, value)

    def undo() -> None:
        if registry is not None:
            registry[attr] = old
        if old is missing:
            object.__delattr__(owner, attr)
        else:
            object.__setattr__(owner, attr, old)
    return undo
