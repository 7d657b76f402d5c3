"""ONNX export: `tinygrad_cnn.onnx.export(model, example_inputs, "model.onnx")` writes a model that
onnxruntime, Netron and other ONNX tools read. Needs the onnx package (pip install tinygrad_cnn[onnx])."""
from .export import export

__all__ = ["export"]
