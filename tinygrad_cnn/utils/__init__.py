"""Utilities under PyTorch's paths: `tinygrad_cnn.utils.data` is `torch.utils.data`."""
from . import data

__all__ = ["data"]
