"""tinygrad_cnn: a small deep-learning framework on NumPy, with PyTorch's API."""
import numpy as np

from . import autograd, data, func, functional, nn, optim, utils
from .autograd import (Function, backward, enable_grad, grad, inference_mode, is_grad_enabled,
                       is_inference_mode_enabled, no_grad, set_grad_enabled)
from .autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, logspace,
                       normal, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, tensor, zeros,
                       zeros_like)
from .allocator import keep_freed_memory
from .ops.threads import get_num_threads, hold_blas_threads, set_num_threads
from .device import accelerator, cuda, device
from .introspect import detect_anomaly, trace_backward
from .generator import Generator
from .rng import manual_seed
from .serialization import load, save
from .safetensors_io import load_safetensors, save_safetensors
from .functions import (abs, all, allclose, amax, amin, any, argmax, argmin, argsort, bmm, ceil, chunk, clamp, clip,
                        cos, cumprod, cumsum, dot, equal, erf, exp, exp2, expm1, flatten, flip, floor, floor_divide,
                        fmod, frac, gather, index_select, is_floating_point, isfinite, isinf, isnan, log, log10, log1p,
                        log2, log_softmax, logical_and, logical_not, logical_or, logical_xor, logsumexp, masked_select,
                        matmul, max, maximum, mean, min, minimum, mm, nonzero, norm, outer, permute, prod, relu,
                        remainder, reshape, roll, round, scatter, scatter_add, scatter_reduce, sigmoid, sign, sin,
                        softmax, sort, split, sqrt, squeeze, std, sum, t, take_along_dim, tan, tanh, tile, topk,
                        transpose, tril, triu, trunc, unbind, unsqueeze, var)
from .tensor import Size, Tensor, cat, einsum, stack, where

# dtypes under PyTorch's names, so `x.dtype == tinygrad_cnn.float32` reads as it does in torch
float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
uint8, int8, int16, int32, int64 = (np.dtype(n) for n in ("uint8", "int8", "int16", "int32", "int64"))
half, float, double = float16, float32, float64  # noqa: A001 (PyTorch's aliases shadow the builtins here)
short, int, long = int16, int32, int64  # noqa: A001
bool = np.dtype("bool")  # noqa: A001

__version__ = "0.1.0"


def __getattr__(name: str):
    # `tinygrad_cnn.viz` is imported on first use: it imports graphviz, which takes ~80 ms
    if name == "viz":
        import importlib
        return importlib.import_module(".viz", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A training step frees its whole graph; without this the next step page-faults that memory back in
# (process-wide: see allocator.py, and allocator.return_freed_memory() to undo it).
keep_freed_memory()
# OpenBLAS's idle threads spin beside the copies between a convolution's products: hold it to one thread
# and split the large products among our own (process-wide: see ops/threads.py, release_blas_threads())
hold_blas_threads()
