"""The value of every output in a graph, for the explorer's statistics.

A graph keeps no tensors but those its VJPs read (autograd/graph.py), so most intermediate
values are gone once the forward pass returns. They come back by replaying the forward: a
primitive's forward is a pure function of NumPy arrays and its keyword arguments, both of
which the node still has until backward releases it, so running it again on its inputs'
values gives the very array it made. Values the graph does hold (saved outputs and inputs,
retain_grad() tensors, the roots) are taken as they are, and make replaying them unneeded.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...autograd.function import Context
from ...autograd.graph import AccumulateGrad, Node, RetainGrad, SavedTensor
from ...tensor import Tensor

Output = tuple[Node, int]  # (node, output_nr): one output of a node


def held_values(order: Sequence[Node], roots: Sequence[Tensor]) -> dict[Output, np.ndarray]:
    """The outputs whose value the graph (or the caller, for `roots`) still holds."""
    values: dict[Output, np.ndarray] = {}
    for root in roots:
        values[root.grad_fn, root.output_nr] = root._array
    for node in order:
        for nr, hooks in (node.pre_hooks or {}).items():
            kept = [hook.tensor() for hook in hooks.values() if isinstance(hook, RetainGrad)]
            values.update(((node, nr), t._array) for t in kept if t is not None)
        for v in getattr(node, "_saved", ()):
            if type(v) is SavedTensor and v.unpack_hook is None and v.output_nr is not None:
                values[node, v.output_nr] = v._value._array  # the node's own output
            elif isinstance(v, Tensor) and v.grad_fn is not None:
                values[v.grad_fn, v.output_nr] = v._array  # an input it saved: another node's output
    return values


def input_value(ctx: Context, i: int, values: dict[Output, np.ndarray]) -> np.ndarray | None:
    """The value of ctx's input i: a leaf's, a constant's, or another node's output, if known."""
    source, nr = ctx.next_functions[i]
    if isinstance(source, AccumulateGrad):
        leaf = source.variable
        return None if leaf is None else leaf._array
    if source is None:
        t = ctx.constant_input(i)
        return None if t is None else t._array
    return values.get((source, nr))


def forward_values(order: Sequence[Node], roots: Sequence[Tensor]) -> dict[Output, np.ndarray]:
    """{(node, output_nr): value} for every output of `order` (the graph's nodes, roots first)
    whose value is held or can be replayed: a primitive node not yet released by a backward
    pass, whose inputs' values are known. Custom Functions are not replayed (their forward may
    do anything), nor is a released node (its array arguments are gone)."""
    values = held_values(order, roots)
    for node in reversed(order):  # each node after the nodes making its inputs
        if (node, 0) in values or not isinstance(node, Context) or node.released or not node.fn.forward_on_arrays:
            continue
        inputs = [input_value(node, i, values) for i in range(len(node.next_functions))]
        if any(x is None for x in inputs):
            continue
        # a fresh ctx: the forward saves what its VJP needs on it, which the real node has already
        scratch = Context(node.fn, node.needs_input_grad, node.kwargs)
        values[node, 0] = np.asarray(node.fn.forward(scratch, *inputs, **node.kwargs))
    return values
