"""trace_backward: a record of every step of a backward pass, in the order it ran, as a table
or a graph. A trace is a backward observer (autograd.graph.register_backward_observer): while
it is registered, the engine times each node's VJP and hands the result to `record`."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import numpy as np

from ..autograd.grad_mode import composite_scope
from ..autograd.graph import AccumulateGrad, Node, format_bytes, register_backward_observer, saved_bytes
from ..tensor import Tensor

if TYPE_CHECKING:
    import graphviz


def norm(t: Tensor) -> float:
    """The Euclidean norm of all of t's elements, summed in float64."""
    return float(np.sqrt(np.sum(np.square(t.detach().numpy(), dtype=np.float64))))


def parameter_names(params: Any, op: str) -> dict[int, tuple[str, Tensor]]:
    """{id(tensor): (name, tensor)} from a Module (its named_parameters) or a name -> Tensor
    mapping; the tensors are kept so their ids stay theirs while the result is alive."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    if not isinstance(params, Mapping):
        raise TypeError(f"{op}: params must be a Module or a dict of name -> Tensor, got {type(params).__name__}")
    names = {}
    for name, t in params.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: params[{name!r}] is a {type(t).__name__}, not a Tensor")
        names[id(t)] = (str(name), t)
    return names


@dataclass
class BackwardStep:
    """One step of a backward pass: a node's VJP, or a leaf's gradient landing in `.grad`.

    `node` is the node that ran, `grad_output` the gradient of its output that arrived (dL/d
    output; a tuple for a node with several outputs), `grad_inputs` what the VJP sent to each
    input of the node (None where none was needed); `sources` are the indices of the steps that
    sent gradient here; `saved_bytes` the memory the node held for its VJP when it ran (freed right
    after, unless retain_graph; see autograd.graph.memory_report).
    """

    index: int
    op: str  # 'MulBackward', or 'AccumulateGrad' for a leaf
    scope: str  # the composite op the node was made in ('conv2d', 'cross_entropy/log_softmax') or ''
    name: str  # the parameter's name for a named leaf, else ''
    node: Node
    grad_output: Any
    grad_inputs: tuple[Tensor | None, ...]
    seconds: float
    sources: tuple[int, ...]
    saved_bytes: int = 0

    @property
    def tensor(self) -> Tensor | None:
        """The leaf whose gradient landed in `.grad`, for an AccumulateGrad step; else None."""
        return self.node.variable if isinstance(self.node, AccumulateGrad) else None


class BackwardTrace:
    """What `trace_backward` records: `steps` in the order they ran (several backward passes
    in one block follow each other). It keeps the tensors and gradients it saw alive: drop it
    to free them."""

    def __init__(self, params: Any = None) -> None:
        self.steps: list[BackwardStep] = []
        self._names = parameter_names(params, "trace_backward")
        self._senders: dict[Node, list[int]] = {}  # node -> steps that sent it gradient

    # the engine calls these two
    def start_pass(self) -> None:
        self._senders = {}

    def record(self, node: Node, grads: list, grad_inputs: tuple, seconds: float) -> None:
        index = len(self.steps)
        scope = composite_scope(getattr(node, "scope", None))
        leaf = node.variable if isinstance(node, AccumulateGrad) else None
        name = self._names.get(id(leaf), ("", None))[0] if leaf is not None else ""
        sources = tuple(self._senders.pop(node, ()))
        grad_output = grads[0] if len(grads) == 1 else tuple(grads)
        self.steps.append(BackwardStep(index, node.name(), "" if scope is None else scope.path, name, node,
                                       grad_output, grad_inputs, seconds, sources, saved_bytes([node])))
        for (next_node, _), gx in zip(node.next_functions, grad_inputs):
            if next_node is not None and gx is not None:
                senders = self._senders.setdefault(next_node, [])
                if not senders or senders[-1] != index:  # x * x sends twice: one edge
                    senders.append(index)

    # reading it
    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[BackwardStep]:
        return iter(self.steps)

    def __getitem__(self, i: int) -> BackwardStep:
        return self.steps[i]

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def __str__(self) -> str:
        """A table: one row per step, gradients as 'shape |g|=norm'; 'where' is the composite op
        the node was made in, or the parameter's name; 'saved' the memory the node held for its VJP."""
        rows = [("step", "op", "where", "grad_output", "grad_inputs", "saved", "time")]
        for s in self.steps:
            outs = ", ".join("-" if gx is None else grad_text(gx) for gx in s.grad_inputs)
            where = s.name or s.scope
            time = f"{s.seconds * 1e6:.0f} us" if s.tensor is None else ""
            saved = format_bytes(s.saved_bytes) if s.tensor is None else ""
            rows.append((str(s.index), s.op, where, grad_text(s.grad_output), outs or "-> .grad", saved, time))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        total = f"{len(self.steps)} steps, {self.total_seconds * 1e3:.2f} ms in VJPs"
        return "\n".join(lines + [total])

    def __repr__(self) -> str:
        return f"<BackwardTrace of {len(self.steps)} steps>"

    def to_graph(self, rankdir: str = "TB", show_times: bool = True) -> graphviz.Digraph:
        """The steps as a graph, gradient flowing from the loss down to the leaves: one node per
        step (op, its composite op, the norm of the gradient it received and, with `show_times`,
        its time), one edge per gradient sent (labelled with its shape and norm)."""
        from ..viz import STYLES, graph_template  # graphviz is imported only when drawing

        graph = graph_template("backward_trace", rankdir)
        for s in self.steps:
            lines = [f"#{s.index} {s.op}"] + [s.name or s.scope] * bool(s.name or s.scope)
            lines.append(f"grad {grad_text(s.grad_output)}")
            if show_times and s.tensor is None:
                lines.append(f"{s.seconds * 1e6:.0f} us")
            style = STYLES["parameter" if s.name else "input" if s.tensor is not None else "op"]
            graph.node(f"s{s.index}", "\\n".join(lines), **style)
        for s in self.steps:
            for src in s.sources:
                sender = self.steps[src]
                sent = [g for (node, _), g in zip(sender.node.next_functions, sender.grad_inputs)
                        if node is s.node and g is not None]
                graph.edge(f"s{src}", f"s{s.index}", label=grad_text(sum(sent[1:], sent[0])))
        return graph


def grad_text(g: Tensor) -> str:
    """A gradient as its shape and norm: '(16, 6, 5, 5) |g|=0.19'."""
    return f"{tuple(g.shape)} |g|={norm(g):.3g}"


@contextlib.contextmanager
def trace_backward(params: Any = None) -> Iterator[BackwardTrace]:
    """`with trace_backward() as trace:` records every backward step run inside the block.

    Args:
        params: a Module or a name -> Tensor dict, to name the parameters' AccumulateGrad steps.
    """
    trace = BackwardTrace(params)
    with register_backward_observer(trace):
        yield trace
