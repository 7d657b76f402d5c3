"""`export`: a model (or function) as an ONNX file, from the graph one forward pass records.

The forward runs once on the example inputs, made leaves that require grad, so every op is recorded
with its arguments and the composite call it was made in (scopes.py). The graph is then walked from
the outputs in the engine's topological order (autograd.engine.topological_order, as viz/graph.py draws
it): the nodes of a composite call with a mapping (linear, max_pool2d, batch_norm, ...) become one
ONNX op, every other node the ONNX op of its primitive (mapping.py). Parameters become initializers
named as in `model.state_dict()`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..autograd.anomaly import _made_at, detect_anomaly
from ..autograd.engine import topological_order
from ..autograd.function import Context
from ..autograd.grad_mode import composite_scope, enable_grad
from ..scopes import Scope
from ..tensor import Tensor
from .builder import GraphBuilder, leaf_key, load_onnx
from .mapping import COMPOSITES, PRIMITIVES, Unmapped

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis and ReduceSum's axes input, as mapping.py writes them


def export(model_or_fn: Callable[..., Any], example_inputs: Tensor | Sequence[Tensor], path: str | Path,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           dynamic_batch: bool = True, opset: int | None = None) -> Path:
    """Write `model_or_fn` as an ONNX model to `path`, in eval mode (a Module is put in eval mode for the
    export and back after); returns the path.

    Args:
        model_or_fn: a Module, or a function of Tensors returning a Tensor or a tuple of them.
        example_inputs: a Tensor (N, ...) or a tuple of them, run through once to record the graph.
        input_names, output_names: the graph's names ('input', 'output'; 'input_0', ... for several).
        dynamic_batch: make dim 0 of inputs and outputs the symbolic 'N', so any batch size runs.
        opset: the ONNX opset, 13 or newer (default 17).
    Raises:
        NotImplementedError: an op with no ONNX mapping (named, with the line of your code that made it),
            or a training-mode op.
    """
    onnx = load_onnx()
    opset = DEFAULT_OPSET if opset is None else opset
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"onnx.export: opset must be an int from {MIN_OPSET} to {onnx.defs.onnx_opset_version()}, "
                         f"got {opset!r}")
    if not callable(model_or_fn):
        raise TypeError(f"onnx.export: expected a Module or a function, got {type(model_or_fn).__name__}")
    examples = _examples(example_inputs)
    input_names = _names(input_names, len(examples), "input")
    batch = examples[0].shape[0] if dynamic_batch and examples[0].ndim > 0 else None

    leaves, outputs = _run(model_or_fn, examples)
    output_names = _names(output_names, len(outputs), "output")

    g = GraphBuilder(onnx, opset, _state_names(model_or_fn), batch)
    for x, name in zip(leaves, input_names):
        g.values[leaf_key(x)] = name
    order = _recorded_order(outputs)
    try:
        _Walk(g, order, outputs).emit(order, 0)
    except Unmapped as unmapped:
        # Where the user's code made the op: the forward runs again in anomaly mode, which notes each
        # op's creating line (too slow to pay on every export), and the same node is looked up by position.
        site = unmapped.ctx.created_at or _creation_site(model_or_fn, examples, order.index(unmapped.ctx))
        raise NotImplementedError(f"{unmapped}; {_made_at(site)}") from None
    final = [g.tensor(out) for out in outputs]

    graph = _graph(g, final, output_names, leaves, input_names, outputs, batch)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="tinygrad_cnn")
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


class _Walk:
    """Emits the recorded nodes in order, each composite call with a mapping as one ONNX op."""

    def __init__(self, g: GraphBuilder, order: list[Context], outputs: list[Tensor]) -> None:
        self.g = g
        self.consumers: dict[tuple[int, int], list[Context]] = {}
        for ctx in order:
            for node, nr in ctx.next_functions:
                if isinstance(node, Context):
                    self.consumers.setdefault((id(node), nr), []).append(ctx)
        self.roots = {(id(out.grad_fn), out.output_nr) for out in outputs if out.grad_fn is not None}

    def emit(self, order: list[Context], level: int) -> None:
        """Emit `order`; a node goes with the first call with a mapping in its chain of scopes from `level` on."""
        calls: dict[int, tuple[Scope, int, list[Context]]] = {}
        call_of: dict[int, int] = {}
        for ctx in order:
            chain = _chain(ctx.scope)
            depth = next((d for d in range(level, len(chain)) if chain[d].name in COMPOSITES), None)
            if depth is not None:
                call = chain[depth]
                calls.setdefault(id(call), (call, depth, []))[2].append(ctx)
                call_of[id(ctx)] = id(call)
        outputs = {key: self._output(*calls[key]) for key in calls}
        for ctx in order:
            key = call_of.get(id(ctx))
            if key is None:
                self.g.values[(id(ctx), 0)] = self._primitive(ctx)
            elif outputs[key] is ctx:
                call, depth, members = calls[key]
                name = COMPOSITES[call.name](self.g, call, members)
                if name is None:  # declined: map what the call is made of
                    self.emit(members, depth + 1)
                else:
                    self.g.values[(id(ctx), 0)] = name

    def _output(self, call: Scope, depth: int, members: list[Context]) -> Context:
        inside = {id(ctx) for ctx in members}
        leaving = [ctx for ctx in members if (id(ctx), 0) in self.roots
                   or any(id(c) not in inside for c in self.consumers.get((id(ctx), 0), ()))]
        if len(leaving) != 1:
            raise NotImplementedError(f"onnx.export: {call.path} has {len(leaving)} outputs used elsewhere; "
                                      "only calls with one output can be exported")
        return leaving[0]

    def _primitive(self, ctx: Context) -> str:
        mapper = PRIMITIVES.get(ctx.fn)
        if mapper is None:
            scope = composite_scope(ctx.scope)
            where = "" if scope is None else f" (in {scope.path})"
            raise Unmapped(ctx, f"onnx.export: no ONNX mapping for the op {ctx.fn.__name__}{where}")
        return mapper(self.g, ctx, self.g.inputs(ctx))


def _recorded_order(outputs: list[Tensor]) -> list[Context]:
    """The nodes that made `outputs`, inputs first."""
    roots = [out.grad_fn for out in outputs if out.grad_fn is not None]
    return [ctx for ctx in reversed(topological_order(roots)) if isinstance(ctx, Context)]


def _creation_site(model_or_fn: Callable[..., Any], examples: list[Tensor], index: int) -> tuple[str, int] | None:
    """The (file, line) that made the `index`-th recorded node, from a second forward in anomaly mode
    (None if that forward stops on a NaN or records another graph)."""
    try:
        with detect_anomaly():
            order = _recorded_order(_run(model_or_fn, examples)[1])
    except RuntimeError:
        return None
    return order[index].created_at if index < len(order) else None


def _run(model_or_fn: Callable[..., Any], examples: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """One recorded forward on leaves made of the examples, a Module in eval mode (and back after):
    (the leaves, the outputs)."""
    leaves = [x.detach().requires_grad_(True) for x in examples]
    training = getattr(model_or_fn, "training", None)
    if training is not None:
        model_or_fn.eval()
    try:
        with enable_grad():
            result = model_or_fn(*leaves)
    finally:
        if training:
            model_or_fn.train()
    return leaves, _outputs(result)


def _chain(scope: Scope | None) -> list[Scope]:
    """The calls a node was made in, outermost first."""
    chain = []
    while scope is not None:
        chain.append(scope)
        scope = scope.parent
    return chain[::-1]


def _examples(example_inputs: Any) -> list[Tensor]:
    examples = [example_inputs] if isinstance(example_inputs, Tensor) else list(example_inputs) \
        if isinstance(example_inputs, (tuple, list)) else None
    if not examples or not all(isinstance(x, Tensor) for x in examples):
        raise TypeError("onnx.export: example_inputs must be a Tensor or a tuple of Tensors, got "
                        f"{type(example_inputs).__name__}")
    for i, x in enumerate(examples):
        if x.dtype.kind != "f":
            raise TypeError(f"onnx.export: example input {i} has dtype {x.dtype}; only floating-point inputs can "
                            "be traced")
    return examples


def _outputs(result: Any) -> list[Tensor]:
    outputs = [result] if isinstance(result, Tensor) else list(result) if isinstance(result, (tuple, list)) else None
    if not outputs or not all(isinstance(out, Tensor) for out in outputs):
        raise TypeError(f"onnx.export: the model must return a Tensor or a tuple of Tensors, got "
                        f"{type(result).__name__}")
    for i, out in enumerate(outputs):
        if out.grad_fn is None and not out.requires_grad:
            raise ValueError(f"onnx.export: output {i} does not depend on the inputs (it has no graph)")
    return outputs


def _names(names: Sequence[str] | None, count: int, default: str) -> list[str]:
    if names is None:
        return [default] if count == 1 else [f"{default}_{i}" for i in range(count)]
    names = list(names)
    if len(names) != count or not all(isinstance(n, str) for n in names):
        raise ValueError(f"onnx.export: {default}_names must be {count} strings, got {names!r}")
    return names


def _state_names(model: Any) -> dict[int, str]:
    """id(tensor) -> its state_dict name, for a Module's parameters and buffers."""
    names: dict[int, str] = {}
    for method in ("named_parameters", "named_buffers"):
        if hasattr(model, method):
            names.update({id(t): name for name, t in getattr(model, method)() if t is not None})
    return names


def _graph(g: GraphBuilder, final: list[str], output_names: list[str], leaves: list[Tensor], input_names: list[str],
           outputs: list[Tensor], batch: int | None) -> Any:
    """The GraphProto: outputs renamed as asked, nodes and initializers that no output needs dropped."""
    onnx = g.onnx
    rename = {}
    for value, name in zip(final, output_names):
        if value in rename or value in input_names or value in g.initializers:
            g.nodes.append(onnx.helper.make_node("Identity", [value], [name], name=name))
        else:
            rename[value] = name
    for node in g.nodes:
        node.input[:] = [rename.get(v, v) for v in node.input]
        node.output[:] = [rename.get(v, v) for v in node.output]
    needed, nodes = set(output_names), []
    for node in reversed(g.nodes):
        if any(v in needed for v in node.output):
            nodes.append(node)
            needed.update(node.input)
    initializers = [init for name, init in g.initializers.items() if name in needed]

    def info(name: str, t: Tensor) -> Any:
        shape = ["N" if i == 0 and n == batch else n for i, n in enumerate(t.shape)]
        return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t.dtype)), shape)

    return onnx.helper.make_graph(nodes[::-1], "tinygrad_cnn", [info(n, x) for n, x in zip(input_names, leaves)],
                                  [info(n, out) for n, out in zip(output_names, outputs)], initializers)
