"""Primitive ops, one module per family. Each is a `Primitive` with a NumPy forward and
its vector-Jacobian product beside it; `Primitive.registry` lists them all."""
from .conv import Conv2d, Conv2dWeightGrad, ConvTranspose2d
from .elementwise import (Abs, Add, Cast, Clamp, Cos, Div, Erf, Exp, Expm1, Log, Log1p, Maximum, Minimum, Mul, Neg, Pow,
                          Relu, Remainder, Rounding, Sigmoid, Sin, Sqrt, Sub, Tanh, Where)
from .matmul import Einsum, MatMul
from .normalization import BatchNorm, batch_statistics
from .movement import Cat, Expand, GetItem, IndexAdd, Pad, Permute, Reshape, SetItem
from .reduce import Cumsum, Max, Min, Sum, SumToSize
from .window import WindowGather, WindowMax, WindowScatter

__all__ = ["Abs", "Add", "BatchNorm", "Cast", "Cat", "Clamp", "Conv2d", "Conv2dWeightGrad", "ConvTranspose2d", "Cos",
           "Cumsum", "Div", "Einsum", "Erf", "Exp", "Expand", "Expm1", "GetItem", "IndexAdd", "Log", "Log1p", "MatMul",
           "Max", "Maximum", "Min", "Minimum", "Mul", "Neg", "Pad", "Permute", "Pow", "Relu", "Remainder", "Reshape",
           "Rounding", "SetItem", "Sigmoid", "Sin", "Sqrt", "Sub", "Sum", "SumToSize", "Tanh", "Where", "WindowGather",
           "WindowMax", "WindowScatter", "batch_statistics"]
