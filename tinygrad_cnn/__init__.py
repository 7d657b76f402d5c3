"""tinygrad_cnn: a small deep-learning framework on NumPy, with PyTorch's API."""
import numpy as np

from . import data, functional, nn, optim
from .autograd import Function, backward, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import arange, eye, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .introspect import detect_anomaly, trace_backward
from .rng import manual_seed
from .tensor import Tensor, cat, stack, where

# dtypes under PyTorch's names, so `x.dtype == tinygrad_cnn.float32` reads as it does in torch
float32, float64, int64, bool = np.dtype("float32"), np.dtype("float64"), np.dtype("int64"), np.dtype("bool")

__version__ = "0.1.0"


def __getattr__(name: str):
    # `tinygrad_cnn.viz` is imported on first use: it imports graphviz, which takes ~80 ms
    if name == "viz":
        import importlib
        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
