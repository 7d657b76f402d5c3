"""Neural-network functions on Tensors, mirroring torch.nn.functional (import as F).

Everything here is composed from the primitives in `ops/`, so each function is
differentiable twice with no gradient code of its own:

    conv2d      = Conv2d, whose VJPs are ConvTranspose2d and Conv2dWeightGrad (ops/conv.py)
    max_pool2d  = pad with -inf -> WindowMax
    avg_pool2d  = Conv2d with one filter of ones per channel / window size
    log_softmax = shifted logits - log(sum(exp(shifted logits)))
    cross_entropy = nll_loss(log_softmax(logits))

`@composite` marks each function made of several primitives as one NN op, so a graph
drawing (tinygrad_cnn.viz) can show one `max_pool2d` box instead of its Pad and WindowMax.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import ops
from .ops.window import output_size
from .rng import get_generator
from .scopes import composite
from .tensor import Tensor

IntPair = int | tuple[int, int]

__all__ = ["avg_pool2d", "conv2d", "cross_entropy", "dropout", "flatten", "leaky_relu", "linear", "log_softmax",
           "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid", "softmax", "tanh"]


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


# ---------------------------------------------------------------- softmax and losses

@composite("log_softmax", keys=("dim",))
def log_softmax(input: Tensor, dim: int) -> Tensor:
    """log(softmax(x)) computed stably (see Tensor.log_softmax)."""
    return input.log_softmax(dim)


@composite("softmax", keys=("dim",))
def softmax(input: Tensor, dim: int) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, computed stably (see Tensor.softmax)."""
    return input.softmax(dim)


def _reduce(loss: Tensor, reduction: str, op: str, count: Tensor | float | None = None) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if count is None else loss.sum() / count
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_dim(input: Tensor, op: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{op}: input needs a class dim, got shape {input.shape}")
    return 0 if input.ndim == 1 else 1


@composite("nll_loss", extra_keys=("reduction", "ignore_index"))
def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean", ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of integer class targets.

    Args:
        input: log-probabilities (N, C) (or (C,), or (N, C, d1, ...)).
        target: class indices (N,) (or (), or (N, d1, ...)); `ignore_index` entries count for nothing.
    """
    dim = _class_dim(input, "nll_loss")
    classes = input.shape[dim]
    target = target.numpy() if isinstance(target, Tensor) else np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != input.shape[:dim] + input.shape[dim + 1:]:
        raise ValueError(f"nll_loss: target of shape {target.shape} does not fit input of shape {input.shape}")
    kept = target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexError(f"nll_loss: target {int(target[bad][0])} is out of range for {classes} classes "
                         f"(input {input.shape})")
    # one-hot along the class dim picks each sample's log-probability
    arange = np.arange(classes).reshape((classes,) + (1,) * (input.ndim - dim - 1))
    one_hot = (np.expand_dims(np.where(kept, target, -1), dim) == arange).astype(input.dtype)
    return _reduce(-(input * one_hot).sum(dim), reduction, "nll_loss", count=max(int(kept.sum()), 1))


@composite("cross_entropy", extra_keys=("reduction", "label_smoothing", "ignore_index"))
def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean", label_smoothing: float = 0.0,
                  ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy from logits (N, C) and integer targets (N,) (or class probabilities
    of the same shape as input). Its gradient is (softmax(logits) - one_hot(target)) / N for 'mean'.
    With label_smoothing e the target becomes (1 - e) * one_hot + e / C."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    dim = _class_dim(input, "cross_entropy")
    logp = log_softmax(input, dim)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape {input.shape}, "
                             f"got {target.shape}")
        probs = target * (1 - label_smoothing) + label_smoothing / input.shape[dim]
        return _reduce(-(logp * probs).sum(dim), reduction, "cross_entropy")
    loss = nll_loss(logp, target, reduction=reduction, ignore_index=ignore_index)
    if label_smoothing == 0.0:
        return loss
    kept = (target.numpy() if isinstance(target, Tensor) else np.asarray(target)) != ignore_index
    smooth = -(logp.mean(dim) * kept.astype(input.dtype))
    smooth = _reduce(smooth, reduction, "cross_entropy", count=max(int(kept.sum()), 1))
    return loss * (1 - label_smoothing) + smooth * label_smoothing


@composite("mse_loss", extra_keys=("reduction",))
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum) of squared differences; input and target must have the same shape."""
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input {input.shape} and target {target.shape} must have the same shape")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")

