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
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from . import ops
from .autograd.grad_mode import no_grad
from .ops.window import output_size
from .rng import get_generator
from .scopes import composite
from .tensor import Tensor, cat

IntPair = int | tuple[int, int]

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "conv2d", "cross_entropy", "dropout", "dropout2d", "elu", "flatten",
           "gelu", "group_norm", "hardtanh", "huber_loss", "kl_div", "l1_loss", "layer_norm", "leaky_relu", "linear",
           "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "one_hot", "pad", "prelu", "relu", "sigmoid", "silu",
           "smooth_l1_loss", "softmax", "softplus", "tanh"]


def _pair(value: IntPair, name: str, op: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return pair


def _batched(input: Tensor, op: str) -> tuple[Tensor, bool]:
    """(N, C, H, W) as is, or an unbatched (C, H, W) with a batch dim of 1 added."""
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected input of shape (N, C, H, W) or (C, H, W), got {input.shape}")
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


# ---------------------------------------------------------------- padding

def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding. `pad` lists (before, after) amounts from the last dim backwards,
    as PyTorch: (left, right) pads the last dim, (left, right, top, bottom) the last two."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding {pad} must have an even length of at most 2 * {input.ndim} "
                         f"for a tensor of shape {input.shape}")
    if any(not isinstance(p, int) or p < 0 for p in pad):
        raise ValueError(f"pad: padding {pad} must be non-negative ints")
    if not any(pad):
        return input
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
    pad_width = tuple([(0, 0)] * (input.ndim - len(pairs)) + pairs[::-1])
    return ops.Pad.apply(input, pad_width=pad_width, value=value)


# ---------------------------------------------------------------- convolution

def _conv_padding(padding: IntPair | str, kernel: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom). 'same' puts an odd extra pixel on the right/bottom, as PyTorch."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1, got stride {stride}")
        total_h, total_w = (d * (k - 1) for d, k in zip(dilation, kernel))
        return (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2)
    if isinstance(padding, str):
        raise ValueError(f"conv2d: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    ph, pw = _pair(padding, "padding", "conv2d", 0)
    return (pw, pw, ph, ph)


@composite("conv2d", keys=("stride", "padding"), extra_keys=("dilation", "groups"))
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch): every filter slides over the image.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        weight: (O, C / groups, KH, KW): O filters; O is the output depth.
        bias: (O,) or None.
        stride, dilation: an int or (h, w). padding: an int, (h, w), 'valid' or 'same'.
        groups: split channels into groups convolved separately (C and O divisible by it).
    Returns:
        (N, O, OH, OW) with OH = floor((H + pad_h - dilation*(KH-1) - 1) / stride) + 1.
    """
    x, unbatched = _batched(input, "conv2d")
    stride, dilation = _pair(stride, "stride", "conv2d", 1), _pair(dilation, "dilation", "conv2d", 1)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must have shape (O, C/groups, KH, KW), got {weight.shape}")
    _, c, h, w = x.shape
    o, c_per_group, kh, kw = weight.shape
    if not isinstance(groups, int) or groups < 1 or c % groups or o % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels ({c}) and the "
                         f"filters ({o}) (input {input.shape}, weight {weight.shape})")
    if c != c_per_group * groups:
        raise ValueError(f"conv2d: input has {c} channels but weight expects {c_per_group * groups} "
                         f"(input {input.shape}, weight {weight.shape}, groups={groups})")
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"conv2d: bias must have shape ({o},), got {bias.shape}")
    left, right, top, bottom = _conv_padding(padding, (kh, kw), stride, dilation)
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if span_h > h + top + bottom or span_w > w + left + right:
        raise ValueError(f"conv2d: kernel spans {span_h}x{span_w} (with dilation) but the padded input is only "
                         f"{h + top + bottom}x{w + left + right} (input {input.shape}, weight {weight.shape})")

    tensors = (x, weight) if bias is None else (x, weight, bias)
    out = ops.Conv2d.apply(*tensors, padding=(left, right, top, bottom), stride=stride, dilation=dilation,
                           groups=groups)
    return out.squeeze(0) if unbatched else out


# ---------------------------------------------------------------- pooling

def _pool_geometry(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                   dilation: IntPair, ceil_mode: bool, op: str):
    """Checked kernel, stride, dilation, and the (left, right, top, bottom) padding, where
    ceil_mode adds room on the right/bottom for a last, partial window."""
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == [] else _pair(stride, "stride", op, 1)
    padding, dilation = _pair(padding, "padding", op, 0), _pair(dilation, "dilation", op, 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    extra = []
    for size, k, s, p, d in zip(x.shape[-2:], kernel, stride, padding, dilation):
        span = d * (k - 1) + 1
        if span > size + 2 * p:
            raise ValueError(f"{op}: kernel spans {span} (with dilation) but the padded input is only "
                             f"{size + 2 * p} (input {x.shape}, kernel_size={kernel_size}, padding={padding})")
        out = output_size(size + 2 * p, k, s, d)
        if ceil_mode and (size + 2 * p - span) % s:
            out += 1
            if (out - 1) * s >= size + p:  # the last window must start inside the input or left padding
                out -= 1
        extra.append(max(0, (out - 1) * s + span - size - 2 * p))
    return kernel, stride, dilation, (padding[1], padding[1] + extra[1], padding[0], padding[0] + extra[0])


@composite("max_pool2d", keys=("kernel_size", "stride"), extra_keys=("padding", "dilation", "ceil_mode"))
def max_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """The largest value in each window: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.
    The gradient goes to each window's first maximum (row-major), as PyTorch, so ties match."""
    x, unbatched = _batched(input, "max_pool2d")
    kernel, stride, dilation, pads = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    x = pad(x, pads, value=-np.inf)
    out = ops.WindowMax.apply(x, kernel_size=kernel, stride=stride, dilation=dilation)
    return out.squeeze(0) if unbatched else out


def _window_counts(size: int, lo: int, hi: int, out: int, kernel: int, stride: int) -> np.ndarray:
    """For each of `out` windows along one axis, how many of its taps fall in [lo, hi)."""
    taps = np.arange(out)[:, None] * stride + np.arange(kernel)[None, :]
    return ((taps >= lo) & (taps < hi)).sum(axis=1)


@composite("avg_pool2d", keys=("kernel_size", "stride"), extra_keys=("padding", "ceil_mode", "count_include_pad"))
def avg_pool2d(input: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """The mean of each window: (N, C, H, W) -> (N, C, OH, OW). With `count_include_pad` the zero
    padding counts towards the mean (PyTorch's default); the ceil_mode overhang never does."""
    x, unbatched = _batched(input, "avg_pool2d")
    kernel, stride, _, pads = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    c, (h, w) = x.shape[1], x.shape[-2:]
    # the window sums are a convolution of each channel with a filter of ones
    ones = Tensor(np.ones((c, 1) + kernel, dtype=x.dtype))
    sums = ops.Conv2d.apply(x, ones, padding=pads, stride=stride, dilation=(1, 1), groups=c)
    oh, ow = sums.shape[-2:]
    (left, _, top, _), (ph, pw) = pads, (pads[2], pads[0])
    lo_h, hi_h = (0, h + 2 * ph) if count_include_pad else (top, top + h)
    lo_w, hi_w = (0, w + 2 * pw) if count_include_pad else (left, left + w)
    counts = np.outer(_window_counts(h, lo_h, hi_h, oh, kernel[0], stride[0]),
                      _window_counts(w, lo_w, hi_w, ow, kernel[1], stride[1]))
    out = sums * (1.0 / counts).astype(x.dtype)
    return out.squeeze(0) if unbatched else out


def _adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's windows of adaptive pooling along one axis: [floor(i size / out), ceil((i + 1) size / out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None], op: str,
                     pool: Callable[..., Tensor], reduce: Callable[[Tensor, int], Tensor]) -> Tensor:
    """Adaptive pooling: `pool` with kernel = stride = size / out when both sizes divide, else `reduce`
    over each window, one axis after the other (a window is a rectangle, so both reductions separate)."""
    x, unbatched = _batched(input, op)
    sizes = x.shape[-2:]
    pair = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(pair) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(size if o is None else o for size, o in zip(sizes, pair))
    if not all(isinstance(o, int) and o >= 1 for o in out) or min(sizes) < 1:
        raise ValueError(f"{op}: output_size {output_size!r} must be positive and the input non-empty, "
                         f"got input {input.shape}")
    if sizes[0] % out[0] == 0 and sizes[1] % out[1] == 0:
        kernel = (sizes[0] // out[0], sizes[1] // out[1])
        x = pool(x, kernel, kernel)
    else:
        for axis, (size, n) in zip((2, 3), zip(sizes, out)):
            windows = [x[(slice(None),) * axis + (slice(lo, hi),)] for lo, hi in _adaptive_bounds(size, n)]
            x = cat([reduce(window, axis) for window in windows], dim=axis)
    return x.squeeze(0) if unbatched else x


@composite("adaptive_avg_pool2d", keys=("output_size",))
def adaptive_avg_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None]) -> Tensor:
    """Mean over PyTorch's adaptive windows (start floor(i H / OH), end ceil((i+1) H / OH)) to (N, C, OH, OW);
    gradient g / window size to each element of the window. None in output_size keeps that input size."""
    return _adaptive_pool2d(input, output_size, "adaptive_avg_pool2d", avg_pool2d,
                            lambda window, axis: window.mean(axis, keepdim=True))


@composite("adaptive_max_pool2d", keys=("output_size",))
def adaptive_max_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None],
                        return_indices: bool = False) -> Tensor:
    """Max over PyTorch's adaptive windows (as adaptive_avg_pool2d); gradient g to the window's maximum.

    With ties in a window that does not divide evenly the gradient is shared among them (PyTorch: to one)."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d: return_indices=True is not supported")
    return _adaptive_pool2d(input, output_size, "adaptive_max_pool2d", max_pool2d,
                            lambda window, axis: window.amax(axis, keepdim=True))


# ---------------------------------------------------------------- activations and layers

def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); gradient 0 at 0. With `inplace`, written into `input` (see Tensor.relu_)."""
    return input.relu_() if inplace else input.relu()


@composite("leaky_relu", keys=("negative_slope",))
def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (slope used at 0, as PyTorch)."""
    return input.where(input > 0, input * negative_slope)


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def _apply(fn: Callable[[Tensor], Tensor], input: Tensor, inplace: bool) -> Tensor:
    """fn(input), or with `inplace` written into `input` (as PyTorch's in-place activations). fn then runs on
    a clone: the values its nodes save for the gradient must not be the ones the write replaces."""
    return input.copy_(fn(input.clone())) if inplace else fn(input)


@composite("elu", keys=("alpha",))
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha (exp(x) - 1); gradient 1, else alpha exp(x)."""
    def elu_(x: Tensor) -> Tensor:
        negative = x <= 0
        # exp only of the non-positive part: a large x would overflow, and 0 * inf in the unused branch is NaN
        return x.where(~negative, (x.where(negative, 0.0).exp() - 1) * alpha)
    return _apply(elu_, input, inplace)


@composite("silu")
def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x); gradient sigmoid(x) (1 + x (1 - sigmoid(x)))."""
    return _apply(lambda x: x * x.sigmoid(), input, inplace)


@composite("softplus", keys=("beta", "threshold"))
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (as PyTorch); gradient sigmoid(beta x), else 1."""
    scaled = input * beta
    return input.where(scaled > threshold, _softplus(scaled) * (1.0 / beta))


@composite("hardtanh", keys=("min_val", "max_val"))
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); gradient 1 strictly between them, else 0."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return input.clamp_(min_val, max_val) if inplace else input.clamp(min_val, max_val)


@composite("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else w x with one w per channel (dim 1) or one for all; gradient 1, else w (x w.r.t. w)."""
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels):
        raise RuntimeError(f"prelu: weight of shape {weight.shape} must hold 1 value or one per channel "
                           f"({channels}), input {input.shape}")
    if weight.numel() == 1:
        slope = weight.reshape((1,) * input.ndim)
    else:
        slope = weight.reshape((1, channels) + (1,) * (input.ndim - 2))
    return input.where(input > 0, input * slope)


@composite("gelu", keys=("approximate",))
def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or with approximate='tanh'
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); differentiated through erf or tanh."""
    if approximate == "none":
        return input * 0.5 * ((input * (1 / math.sqrt(2))).erf() + 1)
    if approximate != "tanh":
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
    return input * 0.5 * (inner.tanh() + 1)


@composite("linear")
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias: (..., in) -> (..., out) with weight (out, in), bias (out,)."""
    if weight.ndim != 2 or input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} does not fit weight of shape {weight.shape} "
                         "(expected input (..., in) and weight (out, in))")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    out = input @ weight.T
    return out if bias is None else out + bias


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (...,) as int64 one-hot rows (..., num_classes); num_classes=-1 takes the
    largest index + 1. No gradient (the input is integer)."""
    if tensor.dtype != np.int64:
        raise RuntimeError(f"one_hot: expects an int64 tensor of class indices, got dtype {tensor.dtype}")
    indices = tensor.numpy()
    if indices.size and indices.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(indices.min())}")
    if num_classes == -1:
        num_classes = int(indices.max()) + 1 if indices.size else 0
    if indices.size and indices.max() >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes={num_classes}, got "
                           f"{int(indices.max())}")
    return Tensor((indices[..., None] == np.arange(num_classes)).astype(np.int64))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one (as torch.flatten; nn.Flatten starts at 1)."""
    return input.flatten(start_dim, end_dim)


@composite("dropout", keys=("p",))
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity when not training).
    With `inplace`, the result is written into `input`."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    keep = get_generator().random(input.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(input.dtype)
    return input.mul_(mask) if inplace else input * mask


@composite("dropout2d", keys=("p",))
def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each whole channel (N, C, ...) with probability p and scale the rest by 1/(1-p) (identity when not
    training); gradient the same mask. A 3-D input is (N, C, L), as PyTorch today."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: p must be in [0, 1], got {p}")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected input of shape (N, C, H, W) or (N, C, L), got {input.shape}")
    if not training or p == 0.0:
        return input
    keep = get_generator().random(input.shape[:2] + (1,) * (input.ndim - 2)) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(input.dtype)
    return input.mul_(mask) if inplace else input * mask


# ---------------------------------------------------------------- normalisation

def _normalize(x: Tensor, dims: tuple[int, ...], eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over `dims`, with the biased variance (as every PyTorch norm)."""
    centered = x - x.mean(dims, keepdim=True)
    return centered / ((centered * centered).mean(dims, keepdim=True) + eps).sqrt()


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    """x * weight + bias, each reshaped to `shape` to broadcast."""
    if weight is not None:
        x = x * weight.reshape(shape)
    return x if bias is None else x + bias.reshape(shape)


def _check_param(tensor: Tensor | None, shape: tuple[int, ...], name: str, op: str, input: Tensor) -> None:
    if tensor is not None and tuple(tensor.shape) != shape:
        raise RuntimeError(f"{op}: {name} must have shape {shape}, got {tensor.shape} (input {input.shape})")


@composite("batch_norm", extra_keys=("training", "momentum", "eps"))
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias per channel (dim 1); gradient through the batch statistics.

    Training uses the batch's mean and biased variance over every dim but 1, and moves running_mean and
    running_var (if given) towards them by `momentum`, in place, the variance unbiased (n / (n - 1)), as PyTorch;
    otherwise running_mean and running_var are the statistics."""
    op = "batch_norm"
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    channels, shape = input.shape[1], (1, input.shape[1]) + (1,) * (input.ndim - 2)
    for name, tensor in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                         ("bias", bias)):
        _check_param(tensor, (channels,), name, op, input)
    dims = (0,) + tuple(range(2, input.ndim))
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var are needed when not training")
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
        return _affine(out, weight, bias, shape)
    count = input.numel() // channels
    if count <= 1:
        raise ValueError(f"{op}: training needs more than 1 value per channel, got input {input.shape}")
    if running_mean is not None and running_var is not None:
        with no_grad():  # the running statistics are state, not part of the graph
            batch = input.detach()
            running_mean.mul_(1 - momentum).add_(batch.mean(dims) * momentum)
            running_var.mul_(1 - momentum).add_(batch.var(dims, correction=1) * momentum)
    return _affine(_normalize(input, dims, eps), weight, bias, shape)


@composite("layer_norm", keys=("normalized_shape",), extra_keys=("eps",))
def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) dims of each sample;
    gradient through the sample's statistics."""
    op = "layer_norm"
    normalized = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized:
        raise RuntimeError(f"{op}: input {input.shape} must end in normalized_shape {list(normalized)}")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_param(tensor, normalized, name, op, input)
    dims = tuple(range(input.ndim - k, input.ndim))
    return _affine(_normalize(input, dims, eps), weight, bias, normalized)


@composite("group_norm", keys=("num_groups",), extra_keys=("eps",))
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over each group of C / num_groups channels (and all positions) of each
    sample, then * weight + bias per channel; gradient through the group's statistics."""
    op = "group_norm"
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected input of shape (N, C, ...), got {input.shape}")
    n, channels = input.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or channels % num_groups:
        raise RuntimeError(f"{op}: expected the number of channels ({channels}) to be divisible by "
                           f"num_groups={num_groups} (input {input.shape})")
    for name, tensor in (("weight", weight), ("bias", bias)):
        _check_param(tensor, (channels,), name, op, input)
    grouped = input.reshape(n, num_groups, input.numel() // max(n * num_groups, 1))
    out = _normalize(grouped, (2,), eps).reshape(*input.shape)
    return _affine(out, weight, bias, (1, channels) + (1,) * (input.ndim - 2))


# ---------------------------------------------------------------- softmax

@composite("log_softmax", keys=("dim",))
def log_softmax(input: Tensor, dim: int) -> Tensor:
    """log(softmax(x)) computed stably (see Tensor.log_softmax)."""
    return input.log_softmax(dim)


@composite("softmax", keys=("dim",))
def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed stably (see Tensor.softmax)."""
    return input.softmax(dim)


# ---------------------------------------------------------------- losses
#
# Each loss is made of Tensor ops, so its gradient and second derivatives come from theirs. Arguments
# that PyTorch keeps after a deprecated one (size_average, reduce) are keyword-only here: a call that
# passes them by position means something else in PyTorch, so it fails rather than differs.

def _reduce(loss: Tensor, reduction: str, op: str, count: Tensor | float | None = None) -> Tensor:
    """'none': the loss as is; 'sum'; 'mean': the sum divided by `count`, by default the number of elements."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction != "mean":
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if float(loss.numel() if count is None else count) == 0:
        # PyTorch's 0 / 0 (every target ignored, an empty batch) is NaN, with the gradient of the empty
        # sum, 0: dividing by the zero count would send 1/0 into the backward pass and make it NaN too
        return loss.sum() + math.nan
    return loss.mean() if count is None else loss.sum() / count


def _check_same_shape(input: Tensor, target: Tensor, op: str) -> None:
    # PyTorch broadcasts some of these with a warning; (N, 1) against (N,) then silently makes an N x N loss
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} must have the same shape")


def _check_float_target(target: Tensor, op: str) -> None:
    if target.dtype.kind != "f":
        raise RuntimeError(f"{op}: target must be a floating point tensor of probabilities, got dtype {target.dtype}")


def _weighted(loss: Tensor, weight: Tensor | None, name: str, op: str) -> Tensor:
    """loss * weight, for a weight that broadcasts to the loss's shape without growing it (as PyTorch)."""
    if weight is None:
        return loss
    try:
        fits = np.broadcast_shapes(weight.shape, loss.shape) == loss.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: {name} of shape {weight.shape} does not broadcast to the input's shape {loss.shape}")
    return loss * weight


def _pointwise_loss(pointwise: Callable[[Tensor], Tensor], input: Tensor, target: Tensor, reduction: str,
                    op: str) -> Tensor:
    """A loss of the difference input - target, element by element, then reduced."""
    _check_same_shape(input, target, op)
    return _reduce(pointwise(input - target), reduction, op)


def _huber(diff: Tensor, delta: float) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta * (|d| - delta / 2): both pieces meet with slope delta."""
    size = abs(diff)
    return (diff * diff * 0.5).where(size < delta, (size - 0.5 * delta) * delta)


def _log_clamped(x: Tensor) -> Tensor:
    """max(log x, -100), as PyTorch's BCE, so that y * log x is finite at x = 0. log is only evaluated where it
    is above -100; elsewhere the value is -100 and the gradient 0 (log 0 = -inf would make the gradient NaN)."""
    above = x > math.exp(-100)
    return x.where(above, 1.0).log().where(above, -100.0)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)) without overflow: x + log(1 + exp(-x)) for x > 0. `where` picks one exact formula on
    each side, so the gradient, sigmoid(x), is right at x = 0 too (relu(x) + log(1 + exp(-|x|)) gives 0 there)."""
    positive = x > 0
    return x.where(positive, 0.0) + (x.where(~positive, -x).exp() + 1).log()


@composite("mse_loss", extra_keys=("reduction",))
def mse_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """(x - y)^2 per element, then reduced; gradient 2 (x - y) (/ numel for 'mean')."""
    return _pointwise_loss(lambda diff: diff * diff, input, target, reduction, "mse_loss")


@composite("l1_loss", extra_keys=("reduction",))
def l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """|x - y| per element, then reduced; gradient sign(x - y) (0 at x == y, as PyTorch)."""
    return _pointwise_loss(abs, input, target, reduction, "l1_loss")


@composite("smooth_l1_loss", extra_keys=("reduction", "beta"))
def smooth_l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """d = x - y: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2; gradient d / beta, else sign(d).

    beta = 0 is l1_loss."""
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    pointwise = abs if beta == 0 else (lambda diff: _huber(diff, beta) * (1.0 / beta))
    return _pointwise_loss(pointwise, input, target, reduction, "smooth_l1_loss")


@composite("huber_loss", extra_keys=("reduction", "delta"))
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """d = x - y: 0.5 d^2 where |d| < delta, else delta (|d| - delta / 2); gradient d, else delta sign(d).

    It is delta * smooth_l1_loss with beta = delta."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss: delta must be positive, got {delta}")
    return _pointwise_loss(lambda diff: _huber(diff, delta), input, target, reduction, "huber_loss")


@composite("binary_cross_entropy", extra_keys=("reduction",))
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                         reduction: str = "mean") -> Tensor:
    """-w (y log x + (1 - y) log(1 - x)), each log at least -100; gradient w (x - y) / (x (1 - x)).

    x and y are probabilities (PyTorch's checks: both in [0, 1]); `weight` w broadcasts to their shape.
    Where a log is clamped, its term's gradient is 0 (PyTorch's backward divides by max(x (1 - x), 1e-12)
    instead). From logits, binary_cross_entropy_with_logits is exact where sigmoid rounds to 0 or 1."""
    op = "binary_cross_entropy"
    _check_same_shape(input, target, op)
    _check_float_target(target, op)
    for name, tensor in (("input", input), ("target", target)):
        values = tensor.detach().numpy()
        outside = ~((values >= 0) & (values <= 1))  # NaN is outside too
        if outside.any():
            raise RuntimeError(f"{op}: all elements of {name} should be between 0 and 1, "
                               f"got {values[outside].flat[0]} (shape {tensor.shape})")
    loss = -(target * _log_clamped(input) + (1 - target) * _log_clamped(1 - input))
    return _reduce(_weighted(loss, weight, "weight", op), reduction, op)


@composite("binary_cross_entropy_with_logits", extra_keys=("reduction",))
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """w (p y softplus(-z) + (1 - y) softplus(z)); gradient w ((1 - y) sigmoid(z) - p y sigmoid(-z)).

    BCE of sigmoid(z) from the logits z, as log sigmoid(z) = -softplus(-z): softplus(z) = log(1 + e^z) is
    computed without overflow for any z. `weight` w and `pos_weight` p (1 when None), which scales the
    positive term, broadcast to the input's shape: p of shape (C,) weighs each class of an (N, C) input."""
    op = "binary_cross_entropy_with_logits"
    _check_same_shape(input, target, op)
    _check_float_target(target, op)
    positive = _weighted(target, pos_weight, "pos_weight", op)
    loss = positive * _softplus(-input) + (1 - target) * _softplus(input)
    return _reduce(_weighted(loss, weight, "weight", op), reduction, op)


@composite("kl_div", extra_keys=("reduction", "log_target"))
def kl_div(input: Tensor, target: Tensor, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """t (log t - x) per element, 0 where t = 0; gradient -t w.r.t. x, log t + 1 - x w.r.t. t.

    x = input is log-probabilities, t = target probabilities, or log-probabilities with log_target (then
    e^t (t - x)). 'batchmean' divides the sum by the batch size input.shape[0]: the KL divergence
    KL(target || exp(input)) per sample; 'mean' (PyTorch's default) divides it by the number of elements."""
    op = "kl_div"
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    _check_same_shape(input, target, op)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # t log t is 0 at t = 0, as PyTorch's xlogy; log is not evaluated there (log 0 = -inf would give NaN)
        nonzero = target != 0
        loss = target * target.where(nonzero, 1.0).log() - target * input
    if reduction == "batchmean":
        return _reduce(loss, "mean", op, count=input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, op)


def _class_dim(input: Tensor, op: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{op}: input needs a class dim, got shape {input.shape}")
    return 0 if input.ndim == 1 else 1


def _class_weight(weight: Tensor | None, input: Tensor, dim: int, op: str) -> Tensor | None:
    """The per-class weight (C,) shaped to broadcast along the class dim of input."""
    if weight is None:
        return None
    classes = input.shape[dim]
    if weight.shape != (classes,):
        raise RuntimeError(f"{op}: weight must hold one value per class, shape ({classes},), got {weight.shape} "
                           f"(input {input.shape})")
    return weight.reshape((classes,) + (1,) * (input.ndim - dim - 1))


def _one_hot(input: Tensor, target: Tensor, ignore_index: int, dim: int, op: str) -> np.ndarray:
    """Checked class indices as one-hot rows along the class dim of input; all zeros where ignore_index."""
    classes = input.shape[dim]
    target = target.numpy() if isinstance(target, Tensor) else np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != input.shape[:dim] + input.shape[dim + 1:]:
        raise ValueError(f"{op}: target of shape {target.shape} does not fit input of shape {input.shape}")
    kept = target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"{op}: target {int(target[bad][0])} is out of range for {classes} classes "
                         f"(input {input.shape})")
    arange = np.arange(classes).reshape((classes,) + (1,) * (input.ndim - dim - 1))
    return (np.expand_dims(np.where(kept, target, -1), dim) == arange).astype(input.dtype)


def _picked(rows: np.ndarray | Tensor, class_weight: Tensor | None) -> np.ndarray | Tensor:
    """Target rows (one-hot, or probabilities) scaled by the class weights: what each log-probability is
    multiplied by. For one-hot rows their sum is 'mean''s count, PyTorch's summed weight of the kept targets."""
    return rows if class_weight is None else class_weight * rows


@composite("nll_loss", extra_keys=("ignore_index", "reduction"))
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-w[t] input[t] per sample with class index t; gradient -w[t] at input[t], 0 at the other classes.

    A target equal to ignore_index counts for nothing; 'mean' divides the sum by the summed w[t] of the
    targets kept (NaN when there are none, as PyTorch).

    Args:
        input: log-probabilities (N, C) (or (C,), or (N, C, d1, ...)).
        target: class indices (N,) (or (), or (N, d1, ...)).
        weight: a weight per class (C,), 1 when None.
    """
    dim = _class_dim(input, "nll_loss")
    picked = _picked(_one_hot(input, target, ignore_index, dim, "nll_loss"),
                     _class_weight(weight, input, dim, "nll_loss"))
    return _reduce(-(input * picked).sum(dim), reduction, "nll_loss", count=picked.sum())


@composite("cross_entropy", extra_keys=("ignore_index", "reduction", "label_smoothing"))
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """-sum_c w_c q_c log softmax(x)_c per sample; gradient w_t (softmax(x) - one_hot(t)) for a class index t.

    The target distribution q is the one-hot of a class index, or the given class probabilities (a float
    target of the input's shape); label_smoothing e makes it (1 - e) q + e / C. 'mean' divides by the summed
    weight w_t of the kept class indices (ignore_index counts for nothing, as in nll_loss), and by the number
    of samples for probability targets, as PyTorch."""
    op = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    dim = _class_dim(input, op)
    classes = input.shape[dim]
    class_weight = _class_weight(weight, input, dim, op)
    logp = log_softmax(input, dim)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"{op}: probability targets must have the input's shape {input.shape}, "
                             f"got {target.shape}")
        if ignore_index >= 0:
            raise RuntimeError(f"{op}: ignore_index={ignore_index} is not supported for probability targets")
        probs = target * (1 - label_smoothing) + label_smoothing / classes
        return _reduce(-(logp * _picked(probs, class_weight)).sum(dim), reduction, op)
    loss = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return loss
    # the uniform part e / C of q, on the kept samples, with nll_loss's count (PyTorch's smoothing term)
    one_hot = _one_hot(logp, target, ignore_index, dim, op)
    uniform = -(logp if class_weight is None else logp * class_weight).sum(dim) * one_hot.sum(dim)
    uniform = _reduce(uniform, reduction, op, count=_picked(one_hot, class_weight).sum())
    return loss * (1 - label_smoothing) + uniform * (label_smoothing / classes)
