"""Which ONNX op means the same as each of our ops.

PRIMITIVES maps a primitive class to `fn(g, ctx, inputs) -> output name` (inputs: the ONNX names of
the node's inputs). COMPOSITES maps a composite op's name (scopes.py) to `fn(g, call, members) ->
output name or None`: one ONNX op for the whole call (one MaxPool, not a Pad and a WindowMax), from
the call's arguments and the primitives it recorded; None declines (adaptive pooling to 2x2, a
training-mode call), and then the calls nested in it, or their primitives, are mapped instead.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from .. import functional as F
from .. import ops
from ..autograd.function import Context
from ..autograd.grad_mode import composite_scope
from ..scopes import Scope
from .builder import GraphBuilder

Mapper = Callable[[GraphBuilder, Any, list[str]], str]
CompositeMapper = Callable[[GraphBuilder, Scope, list[Any]], "str | None"]


class Unmapped(Exception):
    """A recorded op (`ctx`) that cannot be written as ONNX; export adds the line of user code that made it."""

    def __init__(self, ctx: Any, message: str) -> None:
        super().__init__(message)
        self.ctx = ctx


def _same(op_type: str) -> Mapper:
    return lambda g, ctx, x: g.add(op_type, x)


def _reduce(g: GraphBuilder, op_type: str, x: str, axes: tuple[int, ...], keepdim: bool) -> str:
    """ReduceSum takes its axes as an input from opset 13, the other reductions from opset 18."""
    if op_type == "ReduceSum" or g.opset >= 18:
        return g.add(op_type, [x, g.ints(axes, "axes")], keepdims=int(keepdim))
    return g.add(op_type, [x], axes=list(axes), keepdims=int(keepdim))


def _axes(ctx: Any) -> tuple[int, ...]:
    """The dims a reduction ran over (its `dim`; None = all), normalised."""
    ndim, dim = len(_input_shape(ctx)), ctx.kwargs.get("dim")
    return tuple(range(ndim)) if dim is None else tuple(sorted(d % ndim for d in np.atleast_1d(dim).tolist()))


def _input_shape(ctx: Any, i: int = 0) -> tuple[int, ...] | None:
    node, nr = ctx.next_functions[i]
    if node is None:
        return tuple(ctx.constant_input(i).shape)
    return tuple(node._meta[0][0]) if hasattr(node, "_meta") else tuple(node.output_meta[nr][0])


def _reshape(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    """Flatten(axis=1) for (N, ...) -> (N, rest); else Reshape, keeping a symbolic batch dim (0 copies it)."""
    before, after = _input_shape(ctx), tuple(ctx.output_meta[0][0])
    keeps_batch = g.batch is not None and len(before) > 0 and len(after) > 0 and before[0] == after[0] == g.batch
    if keeps_batch and len(after) == 2 and len(before) >= 2:
        return g.add("Flatten", x, axis=1)
    shape = (0,) + after[1:] if keeps_batch else after
    return g.add("Reshape", [x[0], g.ints(shape)])


def _mul(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    """x.mean(dims) is recorded as Sum then Mul by 1 / count: written as one ReduceMean (the ReduceSum
    it leaves unused is pruned)."""
    node, _ = ctx.next_functions[0]
    scale = ctx.constant_input(1)
    if getattr(node, "fn", None) is ops.Sum and scale is not None and scale.ndim == 0:
        shape, axes = _input_shape(node), _axes(node)
        count = int(np.prod([shape[a] for a in axes]))
        if count and np.isclose(float(scale.item()), 1.0 / count, rtol=1e-6, atol=0):
            return _reduce(g, "ReduceMean", g.input(node, 0), axes, node.kwargs.get("keepdim", False))
    return g.add("Mul", x)


def _conv(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    left, right, top, bottom = ctx.kwargs["padding"]
    return g.add("Conv", x, pads=[top, left, bottom, right], strides=list(ctx.kwargs["stride"]),
                 dilations=list(ctx.kwargs["dilation"]), group=ctx.kwargs["groups"])


def _conv_transpose(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    """ConvTranspose; its output_padding is what makes ONNX's output size equal our input_size."""
    left, right, top, bottom = ctx.kwargs["padding"]
    stride, dilation = ctx.kwargs["stride"], ctx.kwargs["dilation"]
    (*_, oh, ow), (*_, kh, kw) = _input_shape(ctx, 0), _input_shape(ctx, 1)
    natural = (stride[0] * (oh - 1) + dilation[0] * (kh - 1) + 1 - top - bottom,
               stride[1] * (ow - 1) + dilation[1] * (kw - 1) + 1 - left - right)
    return g.add("ConvTranspose", x, pads=[top, left, bottom, right], strides=list(stride),
                 dilations=list(dilation), group=ctx.kwargs["groups"],
                 output_padding=[size - n for size, n in zip(ctx.kwargs["input_size"], natural)])


def _where(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    """Where, if its condition is a recorded value. Comparisons (x > 0) are not recorded ops, so a
    condition that is a constant here may have been computed from the example's data: refused rather
    than written as the example's mask, which would be wrong for any other input."""
    mask = ctx.constant_input(0) if ctx.next_functions[0][0] is None else None
    if ctx.next_functions[0][0] is None and (mask is None or mask.numel() > 1):
        scope = composite_scope(ctx.scope)
        where = "" if scope is None else f" in {scope.path}"
        raise Unmapped(ctx, f"onnx.export: a `where`{where} selects by a mask that may have been computed from "
                            "the data (comparisons are not recorded ops); this op has no ONNX mapping that keeps "
                            "the mask's dependence on the input")
    return g.add("Where", x)


def _pad(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    before, after = zip(*ctx.kwargs["pad_width"])
    value = g.constant(ctx.kwargs.get("value", 0.0), "pad_value", dtype=ctx.output_meta[0][1])
    return g.add("Pad", [x[0], g.ints(before + after, "pads"), value])


def _clip(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    dtype = ctx.output_meta[0][1]
    bounds = ["" if ctx.kwargs.get(k) is None else g.constant(ctx.kwargs[k], k, dtype=dtype) for k in ("min", "max")]
    return g.add("Clip", [x[0], *bounds])


def _cast(g: GraphBuilder, ctx: Any, x: list[str]) -> str:
    to = g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(ctx.kwargs["dtype"]))
    return g.add("Cast", x, to=to)


PRIMITIVES: dict[type, Mapper] = {
    **{getattr(ops, name): _same(name) for name in
       ("Add", "Sub", "Div", "Pow", "Neg", "Exp", "Log", "Sqrt", "Abs", "Relu", "Tanh", "Sigmoid", "Erf", "Sin",
        "Cos", "MatMul")},
    ops.Where: _where,
    ops.Mul: _mul,
    ops.Maximum: _same("Max"),
    ops.Minimum: _same("Min"),
    ops.Reshape: _reshape,
    ops.Permute: lambda g, ctx, x: g.add("Transpose", x, perm=list(ctx.kwargs["dims"])),
    ops.Expand: lambda g, ctx, x: g.add("Expand", [x[0], g.ints(ctx.kwargs["shape"])]),
    ops.Sum: lambda g, ctx, x: _reduce(g, "ReduceSum", x[0], _axes(ctx), ctx.kwargs.get("keepdim", False)),
    ops.Max: lambda g, ctx, x: _reduce(g, "ReduceMax", x[0], _axes(ctx), ctx.kwargs.get("keepdim", False)),
    ops.Min: lambda g, ctx, x: _reduce(g, "ReduceMin", x[0], _axes(ctx), ctx.kwargs.get("keepdim", False)),
    ops.Pad: _pad,
    ops.Cat: lambda g, ctx, x: g.add("Concat", x, axis=ctx.kwargs["dim"]),
    ops.Conv2d: _conv,
    ops.ConvTranspose2d: _conv_transpose,
    ops.WindowMax: lambda g, ctx, x: g.add("MaxPool", x, kernel_shape=list(ctx.kwargs["kernel_size"]),
                                           strides=list(ctx.kwargs["stride"]),
                                           dilations=list(ctx.kwargs["dilation"])),
    ops.Clamp: _clip,
    ops.Cast: _cast,
}


# ---------------------------------------------------------------- composite ops

def call_arguments(call: Scope, fn: Callable) -> dict[str, Any]:
    """Every argument of a composite call: those it shows (Scope.args), the others at fn's defaults
    (a Scope shows each argument that differs from its default)."""
    defaults = {p.name: p.default for p in inspect.signature(fn).parameters.values()}
    return {**defaults, **call.args}


def _member(members: list[Any], fn: type) -> Any:
    return next((ctx for ctx in members if ctx.fn is fn), None)


def _inputs(g: GraphBuilder, call: Scope, members: list[Any]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{argument name: (ONNX name, shape)} of the Tensors a call was given. A call holds the Tensors that
    need a gradient weakly (scopes.py), so an intermediate one may be gone by now: the one edge into the
    call from a node outside it that no live argument explains is then its `input`."""
    found = {name: (g.tensor(t), tuple(t.shape)) for name, t in call.named_inputs}
    if "input" not in found:
        inside = {id(ctx) for ctx in members}
        known = set(found.values())
        edges = {(id(node), nr): (node, nr) for ctx in members for node, nr in ctx.next_functions
                 if isinstance(node, Context) and id(node) not in inside}
        unexplained = [(g.values[key], tuple(node.output_meta[nr][0])) for key, (node, nr) in edges.items()
                       if (g.values[key], tuple(node.output_meta[nr][0])) not in known]
        if len(unexplained) == 1:
            found["input"] = unexplained[0]
    return found


def _linear(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    """Gemm(x, W, b, transB=1) for a 2-D input, else the primitives (MatMul, Transpose, Add)."""
    a = _inputs(g, call, members)
    if "input" not in a or "weight" not in a or len(a["input"][1]) != 2:
        return None
    return g.add("Gemm", [a["input"][0], a["weight"][0]] + ([a["bias"][0]] if "bias" in a else []), transB=1)


def _max_pool2d(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    """MaxPool with the -inf padding (and ceil_mode's overhang) as its pads, which it never picks."""
    pool, pad = _member(members, ops.WindowMax), _member(members, ops.Pad)
    if pool is None or len(_input_shape(pool)) != 4:
        return None
    (top, bottom), (left, right) = pad.kwargs["pad_width"][-2:] if pad is not None else ((0, 0), (0, 0))
    return g.add("MaxPool", [g.input(pad or pool, 0)], kernel_shape=list(pool.kwargs["kernel_size"]),
                 strides=list(pool.kwargs["stride"]), dilations=list(pool.kwargs["dilation"]),
                 pads=[top, left, bottom, right])


def _pair(v: Any) -> list[int]:
    return [v, v] if isinstance(v, int) else list(v)


def _avg_pool2d(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    a, x = call_arguments(call, F.avg_pool2d), _inputs(g, call, members).get("input")
    if a["ceil_mode"] or x is None or len(x[1]) != 4:
        return None  # ONNX and PyTorch count ceil_mode's overhang differently: keep the primitives
    kernel = _pair(a["kernel_size"])
    (ph, pw) = _pair(a["padding"])
    return g.add("AveragePool", [x[0]], kernel_shape=kernel,
                 strides=kernel if a["stride"] is None else _pair(a["stride"]), pads=[ph, pw, ph, pw],
                 count_include_pad=int(bool(a["count_include_pad"])))


def _adaptive_avg_pool2d(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    x = _inputs(g, call, members).get("input")
    if _pair(call.args["output_size"]) != [1, 1] or x is None or len(x[1]) != 4:
        return None
    return g.add("GlobalAveragePool", [x[0]])


def _batch_norm(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    """BatchNormalization with the running statistics: eval mode only (training normalises with the
    batch's own statistics and updates the running ones, which an inference graph does not do)."""
    a = call_arguments(call, F.batch_norm)
    if a["training"]:
        raise NotImplementedError("onnx.export: batch_norm in training mode cannot be exported; export the model "
                                  "in eval mode (model.eval(), which export does for a Module)")
    names = _inputs(g, call, members)
    if not {"input", "running_mean", "running_var"} <= names.keys():
        return None
    channels, dtype = names["input"][1][1], members[-1].output_meta[0][1]
    scale = names["weight"][0] if "weight" in names else g.constant(np.ones(channels, dtype), "bn_scale")
    bias = names["bias"][0] if "bias" in names else g.constant(np.zeros(channels, dtype), "bn_bias")
    return g.add("BatchNormalization", [names["input"][0], scale, bias, names["running_mean"][0],
                                        names["running_var"][0]], epsilon=float(a["eps"]))


def _along_dim(op_type: str) -> CompositeMapper:
    def mapper(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
        x = _inputs(g, call, members).get("input")
        return None if x is None else g.add(op_type, [x[0]], axis=call.args["dim"])
    return mapper


def _leaky_relu(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    x = _inputs(g, call, members).get("input")
    return None if x is None else g.add("LeakyRelu", [x[0]], alpha=float(call.args["negative_slope"]))


def _elu(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    x = _inputs(g, call, members).get("input")
    return None if x is None else g.add("Elu", [x[0]], alpha=float(call_arguments(call, F.elu)["alpha"]))


def _softplus(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    """Softplus, log(1 + exp(x)), for beta 1 (past the threshold of 20 both give x in float32)."""
    x, a = _inputs(g, call, members).get("input"), call_arguments(call, F.softplus)
    return None if x is None or a["beta"] != 1 or a["threshold"] < 20 else g.add("Softplus", [x[0]])


def _prelu(g: GraphBuilder, call: Scope, members: list[Any]) -> str | None:
    """PRelu(x, slope), the slope (C,) shaped to broadcast over the channel dim as ours does."""
    a = _inputs(g, call, members)
    if "input" not in a or "weight" not in a:
        return None
    (x, shape), (w, w_shape) = a["input"], a["weight"]
    if w_shape != (1,):
        w = g.add("Reshape", [w, g.ints((w_shape[0],) + (1,) * (len(shape) - 2))])
    return g.add("PRelu", [x, w])


COMPOSITES: dict[str, CompositeMapper] = {
    "linear": _linear,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "batch_norm": _batch_norm,
    "softmax": _along_dim("Softmax"),
    "log_softmax": _along_dim("LogSoftmax"),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "softplus": _softplus,
    "prelu": _prelu,
}
