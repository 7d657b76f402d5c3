"""Utilities under PyTorch's paths: `tinygrad_cnn.utils.data` is `torch.utils.data`, `tinygrad_cnn.utils.checkpoint`
is `torch.utils.checkpoint` (activation checkpointing)."""
from . import checkpoint, data

__all__ = ["checkpoint", "data"]
