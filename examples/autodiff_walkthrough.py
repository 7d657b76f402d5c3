"""Watch reverse-mode autodiff work, step by step, and check every step by hand.

A two-layer network, written with one op per line so every tensor has a name:

    z1 = x @ W1 + b1      h = relu(z1)      y = h @ W2 + b2      loss = mean((y - t)^2)

`trace_backward` records each step of `loss.backward()`: which op's VJP ran, the gradient it
received (grad_output = dL/d its output) and the gradients it sent to its inputs. The same
chain rule, worked out with NumPy, must give the same numbers at every step.

    python examples/autodiff_walkthrough.py [--graph backward.svg]
"""
import argparse

import numpy as np

import tinygrad_cnn as tg

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--graph", help="also draw the trace to this file (.svg, .png, .pdf or .dot)")
args = parser.parse_args()

rng = np.random.default_rng(0)
x = tg.tensor(rng.standard_normal((4, 3)))                 # 4 samples, 3 features (float64: exact checks)
t = tg.tensor(rng.standard_normal((4, 2)))                 # regression targets
W1 = tg.tensor(rng.standard_normal((3, 5)), requires_grad=True)
b1 = tg.tensor(rng.standard_normal(5), requires_grad=True)
W2 = tg.tensor(rng.standard_normal((5, 2)), requires_grad=True)
b2 = tg.tensor(rng.standard_normal(2), requires_grad=True)

with tg.trace_backward(params={"W1": W1, "b1": b1, "W2": W2, "b2": b2}) as trace:
    xW1 = x @ W1
    z1 = xW1 + b1
    h = z1.relu()
    hW2 = h @ W2
    y = hW2 + b2
    d = y - t
    sq = d * d
    total = sq.sum()
    loss = total * (1 / sq.numel())  # what .mean() does
    loss.backward()

print(trace)

# The chain rule by hand, from the loss back to the weights (dL/dv is written G_v).
X, T = x.numpy(), t.numpy()
Z1, H, Y = z1.detach().numpy(), h.detach().numpy(), y.detach().numpy()
n = Y.size
G_total = 1 / n                             # loss = total / n
G_sq = np.full_like(Y, G_total)             # total = sum(sq): every element gets the same gradient
G_d = 2 * (Y - T) / n                       # sq = d * d: d/dd = 2d (the two uses of d, summed)
G_y = G_d                                   # d = y - t
G_hW2, G_b2 = G_y, G_y.sum(axis=0)          # y = hW2 + b2: b2 was broadcast over the rows
G_h, G_W2 = G_y @ W2.detach().numpy().T, H.T @ G_y   # hW2 = h @ W2
G_z1 = G_h * (Z1 > 0)                       # h = relu(z1)
G_xW1, G_b1 = G_z1, G_z1.sum(axis=0)
G_W1 = X.T @ G_z1                           # xW1 = x @ W1 (x needs no gradient)

# For each step, keyed by its node (a leaf's: its AccumulateGrad): what it must receive, and
# what it must send to each of its inputs.
expected = {
    loss.grad_fn: (1.0, [G_total, None]),
    total.grad_fn: (G_total, [G_sq]),
    sq.grad_fn: (G_sq, [G_sq * (Y - T)] * 2),  # each factor gets g * (the other one), both d
    d.grad_fn: (G_d, [G_d, None]),
    y.grad_fn: (G_y, [G_hW2, G_b2]),
    hW2.grad_fn: (G_hW2, [G_h, G_W2]),
    h.grad_fn: (G_h, [G_z1]),
    z1.grad_fn: (G_z1, [G_xW1, G_b1]),
    xW1.grad_fn: (G_xW1, [None, G_W1]),
}
leaves = {"W1": (W1, G_W1), "b1": (b1, G_b1), "W2": (W2, G_W2), "b2": (b2, G_b2)}

for step in trace:
    if step.op == "AccumulateGrad":  # a leaf: what arrived is what .grad holds
        leaf, want = leaves.pop(step.name)
        assert step.tensor is leaf and np.allclose(step.grad_output.numpy(), want), step.index
        assert np.allclose(leaf.grad.numpy(), want), step.index
        continue
    grad_output, grad_inputs = expected.pop(step.node)
    assert np.allclose(step.grad_output.numpy(), grad_output), step.index
    assert len(step.grad_inputs) == len(grad_inputs), step.index
    for sent, want in zip(step.grad_inputs, grad_inputs):
        assert (sent is None) == (want is None), step.index
        if want is not None:
            assert np.allclose(sent.numpy(), want), step.index
assert not expected and not leaves, "every node's step ran once"

# A step runs only after every step that sends it gradient: h's step waits for hW2's.
order = {s.node: s.index for s in trace}
assert order[hW2.grad_fn] < order[h.grad_fn] < order[z1.grad_fn]
print(f"every step matches the chain rule by hand ({len(trace)} steps)")

if args.graph:
    from tinygrad_cnn.viz import render

    print("wrote", render(trace.to_graph(), args.graph))
