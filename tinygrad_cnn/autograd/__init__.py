"""Reverse-mode autodiff, as torch.autograd: the graph, the backward sweep, grad modes, custom
Functions and gradient checks. Its modules, from the bottom up:

    grad_mode   no_grad, enable_grad, inference_mode, set_grad_enabled (per thread)
    graph       Node, AccumulateGrad, SavedTensor, saved_tensors_hooks
    function    Function (PyTorch's custom Functions), Primitive (our NumPy ops), once_differentiable
    engine      the backward sweep; backward(), grad()
    anomaly     detect_anomaly
    gradcheck   gradcheck, gradgradcheck

None of them imports the Tensor class (tensor.py builds on them): they use what any tensor offers.
"""
from . import function, graph
from .anomaly import detect_anomaly
from .engine import backward, grad
from .function import Function, once_differentiable
from .grad_mode import (enable_grad, inference_mode, is_anomaly_enabled, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_detect_anomaly, set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["Function", "GradcheckError", "backward", "detect_anomaly", "enable_grad", "function", "grad",
           "gradcheck", "gradgradcheck", "graph", "inference_mode", "is_anomaly_enabled", "is_grad_enabled",
           "is_inference_mode_enabled", "no_grad", "once_differentiable", "set_detect_anomaly", "set_grad_enabled"]
