"""Modules, parameters, layers and initialisation, as torch.nn."""
from . import functional, init
from .layers import (AvgPool2d, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d,
                     MSELoss, ReLU, Sigmoid, Tanh)
from .module import Module, Parameter, Sequential

__all__ = ["AvgPool2d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten", "LeakyReLU", "Linear",
           "MaxPool2d", "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh", "functional", "init"]
