"""Modules, parameters, layers and initialisation, as torch.nn."""
from . import functional, init, utils
from .layers import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss,
                     BCEWithLogitsLoss, Conv2d, ConvTranspose2d, CrossEntropyLoss, Dropout, Dropout2d, ELU, Flatten,
                     GELU, GroupNorm,
                     Hardtanh, HuberLoss, Identity, KLDivLoss, L1Loss, LayerNorm, LeakyReLU, Linear, LogSoftmax,
                     MaxPool2d, MSELoss, NLLLoss, PReLU, ReLU, Sigmoid, SiLU, SmoothL1Loss, Softmax, Softplus, Tanh,
                     Unflatten, Upsample, UpsamplingBilinear2d, UpsamplingNearest2d, ZeroPad2d)
from .module import Module, ModuleDict, ModuleList, Parameter, ParameterList, Sequential

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "BCELoss",
           "BCEWithLogitsLoss", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU",
           "Flatten", "GELU",
           "GroupNorm", "Hardtanh", "HuberLoss", "Identity", "KLDivLoss", "L1Loss", "LayerNorm", "LeakyReLU", "Linear",
           "LogSoftmax", "MaxPool2d", "MSELoss", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter",
           "ParameterList", "PReLU", "ReLU", "Sequential", "Sigmoid", "SiLU", "SmoothL1Loss", "Softmax", "Softplus",
           "Tanh", "Unflatten", "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad2d", "functional",
           "init", "utils"]
