"""Autodiff, as torch.autograd: the graph, the backward sweep, forward mode, grad modes, custom
Functions and gradient checks. Its modules, from the bottom up:

    grad_mode   no_grad, enable_grad, inference_mode, set_grad_enabled (per thread)
    graph       Node, AccumulateGrad, SavedTensor, saved_tensors_hooks
    forward_ad  forward-mode autodiff: dual_level, make_dual, unpack_dual
    function    Function (PyTorch's custom Functions), Primitive (our NumPy ops), once_differentiable
    engine      the backward sweep; backward(), grad()
    anomaly     detect_anomaly
    gradcheck   gradcheck, gradgradcheck

None of them imports the Tensor class (tensor.py builds on them): they use what any tensor offers.
`autograd.functional` (jacobian, hessian, hvp, ... as torch.autograd.functional) is the exception:
a user-level API on top, imported by the package (tinygrad_cnn/__init__.py) after Tensor exists.
"""
from . import forward_ad, function, graph
from .anomaly import detect_anomaly
from .engine import backward, grad
from .function import Function, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_anomaly_enabled, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_detect_anomaly, set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["Function", "GradcheckError", "backward", "detect_anomaly", "enable_grad", "forward_ad", "function", "grad",
           "gradcheck", "gradgradcheck", "graph", "inference_mode", "is_anomaly_enabled", "is_grad_enabled",
           "is_inference_mode_enabled", "no_grad", "once_differentiable", "set_detect_anomaly", "set_grad_enabled"]
