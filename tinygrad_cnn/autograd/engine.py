"""The backward sweep, and its two entry points `backward()` and `grad()` (as torch.autograd).

The sweep visits the graph's nodes in reverse topological order, so a node runs once every
node that sends it gradient has run. Each node's VJP turns the gradients of its outputs into
those of its inputs; each is fitted to its input's shape and dtype (summing away broadcast dims,
the one place that undoes broadcasting) and added to what is pending for the node that made
that input. A leaf's AccumulateGrad node adds what reaches it to the leaf's `.grad`.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Sequence

from .anomaly import check_backward, running_vjp
from .grad_mode import modes, set_grad_enabled
from .graph import AccumulateGrad, Node, backward_observers, gradient_edge, topological_order, watching

Edge = tuple[Node, int]


def run_backward(roots: Sequence[Edge], root_grads: Sequence[Any], *, retain_graph: bool, create_graph: bool,
                 inputs: Sequence[Edge] | None = None) -> dict[Edge, Any] | None:
    """Send `root_grads` back through the graph from the edges `roots`.

    With `inputs=None`, leaves accumulate their gradients in `.grad`. Otherwise the gradient
    reaching each edge of `inputs` is returned, and no `.grad` is touched.
    """
    pending: dict[Node, list] = {}
    for (node, nr), g in zip(roots, root_grads):
        _add(pending, node, nr, g)
    order = topological_order([node for node, _ in roots])
    captured = None if inputs is None else dict.fromkeys(inputs)
    if captured is not None:
        order = _leading_to(order, {node for node, _ in inputs})
    observed = watching()  # traces or anomaly mode want to see every step: the slow path
    if observed:
        for observer in list(backward_observers.values()):
            observer.start_pass()

    with set_grad_enabled(create_graph):
        for node in order:
            grads = pending.pop(node, None)
            if grads is None:
                continue
            if node.pre_hooks:
                grads = node.run_pre_hooks(grads)
            if captured is not None:
                for nr, g in enumerate(grads):
                    if (node, nr) in captured:
                        captured[node, nr] = g
                if type(node) is AccumulateGrad:
                    continue
            input_grads = _observed_vjp(node, grads) if observed else node.apply(grads)
            for (next_node, nr), gx in zip(node.next_functions, input_grads):
                if next_node is not None and gx is not None:
                    _add(pending, next_node, nr, _fit(gx, next_node.output_meta[nr], node))
            if not retain_graph:
                node.release()
    return captured


def _add(pending: dict[Node, list], node: Node, nr: int, g: Any) -> None:
    """Add g to the gradient pending for output `nr` of `node` (a tensor used twice gets both)."""
    grads = pending.get(node)
    if grads is None:
        grads = pending[node] = [None] * node.num_outputs
    grads[nr] = g if grads[nr] is None else grads[nr] + g


def _fit(g: Any, meta: tuple, node: Node) -> Any:
    """g summed back to the shape of the input it is for (undoing broadcasting), in its dtype."""
    shape, dtype = meta
    array = g._array
    if array.shape == shape and array.dtype == dtype:  # the common case: nothing to do
        return g
    if g.shape != shape:
        try:
            g = g.sum_to_size(shape)
        except ValueError:
            raise RuntimeError(f"{node.name()} returned a gradient of shape {tuple(g.shape)} for an input of "
                               f"shape {shape}") from None
    return g if g.dtype == dtype else g.to(dtype)


def _leading_to(order: list[Node], targets: set[Node]) -> list[Node]:
    """The nodes of `order` from which some target can be reached: only they need to run."""
    needed: set[Node] = set()
    for node in reversed(order):  # inputs before the nodes that use them
        if node in targets or any(n in needed for n, _ in node.next_functions):
            needed.add(node)
    return [node for node in order if node in needed]


def _observed_vjp(node: Node, grads: list) -> tuple:
    """node's VJP, timed, its gradients fitted to the inputs, and shown to the observers (traces) and
    anomaly checks."""
    start = time.perf_counter()
    with running_vjp() if modes.anomaly else contextlib.nullcontext():
        input_grads = tuple([None if next_node is None or g is None else _fit(g, next_node.output_meta[nr], node)
                             for (next_node, nr), g in zip(node.next_functions, node.apply(grads))])
    if modes.anomaly:
        check_backward(node, grads, input_grads)
    seconds = time.perf_counter() - start
    for observer in list(backward_observers.values()):
        observer.record(node, grads, input_grads, seconds)
    return input_grads


# ---------------------------------------------------------------- public entry points

def _seeds(outputs: Sequence[Any], grads: Sequence[Any] | None, op: str) -> list[Any]:
    """The gradients to start from: the given ones as Tensors, or ones for one-element outputs."""
    for out in outputs:
        if not getattr(out, "_is_tensor", False):
            raise TypeError(f"{op}: expected Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(f"{op}: element 0 of tensors does not require grad and does not have a grad_fn "
                               f"(a tensor of shape {tuple(out.shape)}; did you set requires_grad=True on an "
                               "input, or run under no_grad?)")
    grads = [None] * len(outputs) if grads is None else list(grads)
    if len(grads) != len(outputs):
        raise ValueError(f"{op}: got {len(grads)} gradients for {len(outputs)} outputs")
    seeds = []
    for out, g in zip(outputs, grads):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs, got shape "
                                   f"{tuple(out.shape)}; pass a gradient of that shape")
            g = out.new_ones(out.shape)
        g = g.to(out.dtype) if getattr(g, "_is_tensor", False) else out.new_tensor(g)
        if g.shape != out.shape:
            raise RuntimeError(f"{op}: gradient of shape {tuple(g.shape)} does not match output of shape "
                               f"{tuple(out.shape)}")
        seeds.append(g)
    return seeds


def _as_list(tensors: Any) -> list[Any]:
    return [tensors] if getattr(tensors, "_is_tensor", False) else list(tensors)


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
             inputs: Any = None) -> None:
    """Accumulate the gradients of `tensors` into the `.grad` of every leaf they depend on (or
    only of `inputs`), as torch.autograd.backward. `retain_graph` defaults to `create_graph`."""
    tensors = _as_list(tensors)
    seeds = _seeds(tensors, None if grad_tensors is None else _as_list(grad_tensors), "backward")
    retain = create_graph if retain_graph is None else retain_graph
    roots = [gradient_edge(t) for t in tensors]
    if inputs is None:
        run_backward(roots, seeds, retain_graph=retain, create_graph=create_graph)
        return
    inputs = _as_list(inputs)
    found = run_backward(roots, seeds, retain_graph=retain, create_graph=create_graph,
                         inputs=[gradient_edge(x) for x in inputs])
    with set_grad_enabled(create_graph):
        for x in inputs:
            g = found[gradient_edge(x)]
            if g is not None:
                x.grad = g.clone() if x.grad is None else x.grad + g


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool | None = None, materialize_grads: bool = False) -> tuple:
    """d(outputs)/d(inputs) contracted with `grad_outputs`, returned instead of stored in `.grad`
    (as torch.autograd.grad). With `create_graph=True` the results are differentiable."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    for i, x in enumerate(inputs):
        if not getattr(x, "_is_tensor", False) or not x.requires_grad:
            raise RuntimeError(f"grad: input {i} is not a Tensor that requires grad")
    seeds = _seeds(outputs, None if grad_outputs is None else _as_list(grad_outputs), "grad")
    edges = [gradient_edge(x) for x in inputs]
    found = run_backward([gradient_edge(t) for t in outputs], seeds,
                         retain_graph=create_graph if retain_graph is None else retain_graph,
                         create_graph=create_graph, inputs=edges)
    result = []
    for i, (x, edge) in enumerate(zip(inputs, edges)):
        g = found[edge]
        if g is None and materialize_grads:
            g = x.new_zeros(x.shape)
        elif g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {tuple(x.shape)}) was not used to compute the outputs "
                               "(pass allow_unused=True to get None for it)")
        result.append(g)
    return tuple(result)
