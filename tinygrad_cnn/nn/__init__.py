"""Modules, parameters, layers and initialisation, as torch.nn."""
from . import functional, init, utils
from .layers import (AvgPool2d, BatchNorm2d, BCELoss, BCEWithLogitsLoss, Conv2d, CrossEntropyLoss, Dropout, Flatten,
                     HuberLoss, KLDivLoss, L1Loss, LeakyReLU, Linear, MaxPool2d, MSELoss, NLLLoss, ReLU, Sigmoid,
                     SmoothL1Loss, Tanh)
from .module import Module, ModuleDict, ModuleList, Parameter, ParameterList, Sequential

__all__ = ["AvgPool2d", "BatchNorm2d", "BCELoss", "BCEWithLogitsLoss", "Conv2d", "CrossEntropyLoss", "Dropout",
           "Flatten", "HuberLoss", "KLDivLoss", "L1Loss", "LeakyReLU", "Linear", "MaxPool2d", "MSELoss", "Module",
           "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ParameterList", "ReLU", "Sequential", "Sigmoid",
           "SmoothL1Loss", "Tanh", "functional", "init", "utils"]
