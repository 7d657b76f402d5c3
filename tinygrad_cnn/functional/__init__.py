"""Neural-network functions on Tensors, mirroring torch.nn.functional (import as F).

Everything here is composed from the primitives in `ops/`, so each function is
differentiable twice with no gradient code of its own:

    conv2d      = Conv2d, whose VJPs are ConvTranspose2d and Conv2dWeightGrad (ops/conv.py)
    max_pool2d  = pad with -inf -> WindowMax
    avg_pool2d  = Conv2d with one filter of ones per channel / window size
    log_softmax = shifted logits - log(sum(exp(shifted logits)))
    cross_entropy = nll_loss(log_softmax(logits))
    binary_cross_entropy_with_logits = p y softplus(-z) + (1 - y) softplus(z), softplus by `where` so
                  exp never overflows

`@composite` marks each function made of several primitives as one NN op, so a graph
drawing (tinygrad_cnn.viz) can show one `max_pool2d` box instead of its Pad and WindowMax.
The functions live by family:

    convolution     pad, conv2d, conv_transpose2d
    pooling         max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d
    upsampling      interpolate
    activations     relu, elu, gelu, ..., softmax, log_softmax, linear, flatten, one_hot, dropout
    normalization   batch_norm, layer_norm, group_norm, normalize, cosine_similarity, pairwise_distance
    losses          mse_loss, l1_loss, ..., nll_loss, cross_entropy
"""
from __future__ import annotations

from ..checks import takes_tensors
from .activations import (dropout, dropout2d, elu, flatten, gelu, hardtanh, leaky_relu, linear, log_softmax, one_hot,
                          prelu, relu, sigmoid, silu, softmax, softplus, tanh)
from .convolution import _transposed_size, conv2d, conv_transpose2d, pad  # noqa: F401 (_transposed_size: for nn)
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
                     l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from .normalization import batch_norm, cosine_similarity, group_norm, layer_norm, normalize, pairwise_distance
from .pooling import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from .upsampling import interpolate

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d", "cosine_similarity", "cross_entropy",
           "dropout", "dropout2d", "elu", "flatten", "gelu", "group_norm", "hardtanh", "huber_loss", "interpolate",
           "kl_div", "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "max_pool2d", "mse_loss",
           "nll_loss", "normalize", "one_hot", "pad", "pairwise_distance", "prelu", "relu", "sigmoid", "silu",
           "smooth_l1_loss", "softmax", "softplus", "tanh"]


# Every function of the package checks its Tensor arguments at the door (checks.takes_tensors): a list or a NumPy
# array passed as `input` is a TypeError naming the function and the argument, as in PyTorch.
for _name in __all__:
    globals()[_name] = takes_tensors(globals()[_name])
