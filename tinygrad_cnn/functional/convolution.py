"""Padding and convolution: pad, conv2d, conv_transpose2d (the Conv2d and ConvTranspose2d primitives)."""
from __future__ import annotations

from typing import Sequence

from .. import ops
from ..checks import pair_argument
from ..scopes import composite
from ..tensor import Tensor

IntPair = int | tuple[int, int]


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
    ph, pw = pair_argument(padding, "padding", "conv2d", 0)
    return (pw, pw, ph, ph)


def _check_channels(op: str, input: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int,
                    transposed: bool) -> None:
    """Check that the batched input x (N, C, H, W), the weight and the bias fit one convolution: weight
    (O, C/groups, KH, KW), bias (O,); or, transposed, the weight of the convolution it is the adjoint of,
    (C, O/groups, KH, KW), bias (O,)."""
    if weight.ndim != 4:
        layout = "(C, O/groups, KH, KW)" if transposed else "(O, C/groups, KH, KW)"
        raise ValueError(f"{op}: weight must have shape {layout}, got {weight.shape}")
    c, shapes = x.shape[1], f"input {input.shape}, weight {weight.shape}"
    # weight.shape[0] is O for a convolution and C for a transposed one: groups must divide it either way
    if not isinstance(groups, int) or groups < 1 or c % groups or weight.shape[0] % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c}) and weight.shape[0] "
                         f"({weight.shape[0]}) ({shapes})")
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if c != expected:
        raise ValueError(f"{op}: input has {c} channels but weight expects {expected} ({shapes}, groups={groups})")
    out_channels = weight.shape[1] * groups if transposed else weight.shape[0]
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")


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
    stride, dilation = pair_argument(stride, "stride", "conv2d", 1), pair_argument(dilation, "dilation", "conv2d", 1)
    _check_channels("conv2d", input, x, weight, bias, groups, transposed=False)
    Tensor._check_same_dtype("conv2d", input, weight, bias)
    _, _, h, w = x.shape
    kh, kw = weight.shape[-2:]
    if kh == 0 or kw == 0:
        raise RuntimeError(f"conv2d: kernel size should be greater than zero, but got kernel_height: {kh} "
                           f"kernel_width: {kw} (weight {weight.shape})")
    left, right, top, bottom = _conv_padding(padding, (kh, kw), stride, dilation)
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if span_h > h + top + bottom or span_w > w + left + right:
        raise ValueError(f"conv2d: kernel spans {span_h}x{span_w} (with dilation) but the padded input is only "
                         f"{h + top + bottom}x{w + left + right} (input {input.shape}, weight {weight.shape})")

    tensors = (x, weight) if bias is None else (x, weight, bias)
    out = ops.Conv2d.apply(*tensors, padding=(left, right, top, bottom), stride=stride, dilation=dilation,
                           groups=groups)
    return out.squeeze(0) if unbatched else out


def _transposed_size(size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int) -> int:
    """conv_transpose2d's output size along one axis, the input size of the convolution it is the adjoint of:
    (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _sent_back_rows(size: int, kernel: int, stride: int, padding: int, dilation: int, out: int) -> tuple[int, int, int]:
    """Which of conv_transpose2d's rows (along one axis) ops.ConvTranspose2d computes: (start, stop, behind).

    Unpadded, the taps reach rows 0 .. full - 1; the output is rows [padding, padding + out) of those, zeros
    past full - 1. The primitive returns rows [start, stop) of an image padded with `start` rows in front and
    `behind` at the back, as long as its convolution then has `size` outputs: stop + behind within
    [full, full + stride - 1]. start = padding and stop = padding + out do, but where output_padding >= stride
    (allowed by a larger dilation) or the padding swallows every tap; then the caller crops and adds zeros."""
    full = _transposed_size(size, kernel, stride, 0, dilation, 0)
    start, stop = min(padding, full - 1), min(padding + out, full + stride - 1)
    return start, stop, max(0, full - stop)


@composite("conv_transpose2d", keys=("stride", "padding"), extra_keys=("output_padding", "groups", "dilation"))
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> Tensor:
    """Transposed convolution: the adjoint of conv2d in its input, that is conv2d's input gradient
    (ops.ConvTranspose2d). Each input pixel adds its value times the filter into the output window it would
    be read from: out[n, o, p*s + i*d - pad, q*s + j*d - pad] += x[n, c, p, q] * weight[c, o, i, j].

    Args:
        input: (N, C, H, W) or unbatched (C, H, W).
        weight: (C, O / groups, KH, KW): the weight of the conv2d it is the adjoint of (O -> C channels).
        bias: (O,) or None.
        stride, padding, dilation: those of that conv2d; an int or (h, w).
        output_padding: rows and columns added at the bottom and right, which a strided conv2d's input may
            have without its output changing; smaller than stride or dilation.
        groups: split channels into groups (C divisible by it).
    Returns:
        (N, O, OH, OW) with OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1.
        Its gradients are a conv2d (input) and conv2d's weight gradient (weight), see ops/conv.py.
    """
    op = "conv_transpose2d"
    x, unbatched = _batched(input, op)
    stride, dilation = pair_argument(stride, "stride", op, 1), pair_argument(dilation, "dilation", op, 1)
    padding = pair_argument(padding, "padding", op, 0)
    output_padding = pair_argument(output_padding, "output_padding", op, 0)
    _check_channels(op, input, x, weight, bias, groups, transposed=True)
    Tensor._check_same_dtype(op, input, weight, bias)
    if any(extra >= s and extra >= d for extra, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either stride {stride} "
                         f"or dilation {dilation}")
    axes = list(zip(x.shape[-2:], weight.shape[-2:], stride, padding, dilation))
    out_h, out_w = (_transposed_size(*axis, extra) for axis, extra in zip(axes, output_padding))
    if min(out_h, out_w) < 1:
        raise ValueError(f"{op}: output size {(out_h, out_w)} is too small (input {input.shape}, weight "
                         f"{weight.shape}, stride={stride}, padding={padding}, dilation={dilation})")
    (top, stop_h, bottom), (left, stop_w, right) = (_sent_back_rows(*axis, out)
                                                     for axis, out in zip(axes, (out_h, out_w)))
    out = ops.ConvTranspose2d.apply(x, weight, input_size=(stop_h - top, stop_w - left),
                                    padding=(left, right, top, bottom), stride=stride, dilation=dilation, groups=groups)
    if (top, left) != padding:
        out = out[:, :, padding[0] - top:, padding[1] - left:]
    out = pad(out, (0, out_w - out.shape[3], 0, out_h - out.shape[2]))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out
