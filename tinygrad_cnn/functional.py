"""Neural-network functions on Tensors, mirroring torch.nn.functional (import as F)."""
from __future__ import annotations

from typing import Sequence

from . import ops
from .tensor import Tensor


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
    pairs = [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
    pad_width = tuple([(0, 0)] * (input.ndim - len(pairs)) + pairs[::-1])
    return ops.Pad.apply(input, pad_width=pad_width, value=value)
