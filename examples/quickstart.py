"""Build a tiny CNN from functions, run it forward and backward, and check autodiff's answer.

    python examples/quickstart.py
"""
import tinygrad_cnn as tg
import tinygrad_cnn.functional as F


def tiny_cnn(x, filters, weight):
    """(N, 1, 8, 8) images -> (N, 10) logits: conv 3@3x3 same, ReLU, 2x2 max pool, linear."""
    h = F.max_pool2d(F.relu(F.conv2d(x, filters, padding="same")), kernel_size=2)   # (N, 3, 4, 4)
    return F.linear(h.flatten(1), weight)                                            # (N, 10)


tg.manual_seed(0)
x = tg.randn(4, 1, 8, 8)                                        # 4 one-channel 8x8 images
filters = tg.randn(3, 1, 3, 3, requires_grad=True)              # 3 filters: the output depth is 3
weight = (tg.randn(10, 48) * 0.1).requires_grad_()                # fully connected, (out, in)
labels = tg.tensor([1, 0, 4, 9])

loss = F.cross_entropy(tiny_cnn(x, filters, weight), labels)
loss.backward()                                                 # fills filters.grad and weight.grad
print(f"loss {loss.item():.4f}, made by {loss.grad_fn}")
print("dL/dfilters", filters.grad.shape, "dL/dweight", weight.grad.shape)

# The same gradients by central differences in float64: autodiff is exact, not an approximation.
assert tg.gradcheck(lambda f, w: F.cross_entropy(tiny_cnn(x.double(), f, w), labels), [filters, weight])
print("gradcheck: analytic and numeric gradients agree")
