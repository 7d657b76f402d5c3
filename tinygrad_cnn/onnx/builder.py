"""The ONNX graph under construction: its nodes, initializers, and the ONNX name of every value of
our graph (a leaf Tensor, or output `nr` of a node). The op mappings (mapping.py) add to it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autograd.graph import AccumulateGrad, gradient_edge
from ..tensor import Tensor


def load_onnx() -> Any:
    """The onnx package, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("tinygrad_cnn.onnx needs the onnx package: pip install tinygrad_cnn[onnx] "
                          "(or pip install onnx onnxruntime)") from e
    return onnx


class GraphBuilder:
    """Nodes and initializers of one ONNX graph, and `values`: the ONNX name of each value met so far,
    keyed by `leaf_key(t)` for a leaf Tensor and `(id(node), nr)` for output nr of a node."""

    def __init__(self, onnx: Any, opset: int, names: dict[int, str], batch: int | None) -> None:
        self.onnx, self.opset, self.batch = onnx, opset, batch  # batch: the symbolic dim's example size
        self.names = names  # id(tensor) -> its name in the model (parameters and buffers)
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self.values: dict[Any, str] = {}
        self._kept: list[Tensor] = []  # leaves named here, kept alive so their ids stay theirs
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def add(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        """Append a node with one output; returns the output's name."""
        out = self.fresh(op_type.lower())
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def constant(self, value: Any, hint: str = "const", dtype: Any = None) -> str:
        """An initializer holding `value` (as `dtype` if given); returns its name."""
        array = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.initializers[name] = self.onnx.numpy_helper.from_array(array, name)
        return name

    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.constant(np.asarray(list(values), dtype=np.int64), hint)

    # ------------------------------------------------------------ our values -> ONNX names

    def leaf(self, t: Tensor) -> str:
        """A leaf's name: an input's, else an initializer named as in the model (or 'const_k')."""
        key = leaf_key(t)
        if key not in self.values:
            name = self.names.get(id(t)) or self.fresh("const")
            self.initializers[name] = self.onnx.numpy_helper.from_array(np.ascontiguousarray(t.detach().numpy()), name)
            self.values[key] = name
            self._kept.append(t)
        return self.values[key]

    def tensor(self, t: Tensor) -> str:
        """The name of a Tensor given to a composite op: its node's output, or a leaf."""
        if not t.requires_grad:
            return self.leaf(t)
        node, nr = gradient_edge(t)
        return self.leaf(node.variable) if isinstance(node, AccumulateGrad) else self.values[(id(node), nr)]

    def input(self, ctx: Any, i: int) -> str:
        """The name of input i of a recorded node."""
        node, nr = ctx.next_functions[i]
        if node is None:
            return self.leaf(ctx.constant_input(i))
        if isinstance(node, AccumulateGrad):
            return self.leaf(node.variable)
        return self.values[(id(node), nr)]

    def inputs(self, ctx: Any) -> list[str]:
        return [self.input(ctx, i) for i in range(len(ctx.next_functions))]


def leaf_key(t: Tensor) -> tuple[str, int]:
    return ("leaf", id(t))
