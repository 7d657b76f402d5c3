"""Primitive ops, one module per family. Each is a `Primitive` with a NumPy forward and
its vector-Jacobian product beside it; `Primitive.registry` lists them all."""
from .conv import Conv2d, Conv2dWeightGrad, ConvTranspose2d
from .elementwise import (Abs, Add, Cast, Clamp, Div, Exp, Log, Maximum, Mul, Neg, Pow, Relu, Sigmoid, Sqrt, Sub,
                          Tanh, Where)
from .matmul import MatMul
from .movement import Cat, Expand, GetItem, IndexAdd, Pad, Permute, Reshape, SetItem
from .reduce import Max, Sum, SumToSize
from .window import WindowGather, WindowMax, WindowScatter

__all__ = ["Abs", "Add", "Cast", "Cat", "Clamp", "Conv2d", "Conv2dWeightGrad", "ConvTranspose2d", "Div", "Exp",
           "Expand", "GetItem", "IndexAdd", "Log", "MatMul", "Max", "Maximum", "Mul", "Neg", "Pad", "Permute",
           "Pow", "Relu", "Reshape", "SetItem", "Sigmoid", "Sqrt", "Sub", "Sum", "SumToSize", "Tanh", "Where",
           "WindowGather", "WindowMax", "WindowScatter"]
