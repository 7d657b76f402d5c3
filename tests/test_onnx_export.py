"""tinygrad_cnn.onnx.export: the exported model, run by onnxruntime (an independent implementation of
every op), gives our eval-mode outputs; the ONNX checker accepts it; unmappable ops fail clearly."""
import contextlib
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import tinygrad_cnn as tg  # noqa: E402
import tinygrad_cnn.nn.functional as F  # noqa: E402
from tinygrad_cnn import models, nn  # noqa: E402
from tinygrad_cnn.onnx import export  # noqa: E402

TOL = 1e-5


def _ours(model, *xs):
    if isinstance(model, nn.Module):
        model.eval()
    with tg.no_grad():
        out = model(*xs)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _theirs(path, *xs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: x.numpy() for n, x in zip(names, xs)})


def _check_same(model, path, *xs):
    for ours, theirs in zip(_ours(model, *xs), _theirs(path, *xs)):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=TOL)


def _op_types(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _randomised_batch_norms(model):
    """Running statistics and affine parameters away from 0/1, so BatchNormalization's inputs matter."""
    rng = np.random.default_rng(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(tg.tensor(rng.normal(size=c).astype(np.float32)))
            m.running_var.copy_(tg.tensor(rng.uniform(0.5, 2.0, size=c).astype(np.float32)))
            with tg.no_grad():
                m.weight.copy_(tg.tensor(rng.normal(size=c).astype(np.float32)))
                m.bias.copy_(tg.tensor(rng.normal(size=c).astype(np.float32)))


@pytest.mark.parametrize("name, make, shape, expected_ops", [
    ("lenet5", models.LeNet5, (2, 1, 28, 28), {"Conv", "MaxPool", "Relu", "Flatten", "Gemm"}),
    ("vgg", models.VGG, (2, 3, 32, 32), {"Conv", "MaxPool", "Relu", "Flatten", "Gemm"}),
    ("resnet20", models.ResNet20, (2, 3, 32, 32), {"Conv", "BatchNormalization", "Relu", "Add", "ReduceMean",
                                                   "Gemm"}),
])
def test_models_match_onnxruntime_at_any_batch_size(tmp_path, name, make, shape, expected_ops):
    tg.manual_seed(0)
    model = make()
    _randomised_batch_norms(model)
    model.train()
    path = export(model, tg.randn(*shape), tmp_path / f"{name}.onnx")
    assert model.training  # put back as it was
    onnx.checker.check_model(onnx.load(str(path)))
    assert set(_op_types(path)) == expected_ops  # one ONNX op per layer, not their primitives
    _check_same(model, path, tg.randn(*shape))
    _check_same(model, path, tg.randn(5, *shape[1:]))  # the batch dim is symbolic


def test_parameters_are_initializers_named_as_in_the_state_dict(tmp_path):
    model = models.ResNet20()
    path = export(model, tg.randn(1, 3, 32, 32), tmp_path / "r.onnx")
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    for name in ("conv1.weight", "layer1.0.bn1.running_var", "fc.bias", "layer3.2.conv2.weight"):
        np.testing.assert_array_equal(initializers[name], state[name].numpy())


def test_fixed_batch_and_names(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    path = export(model, tg.randn(2, 4), tmp_path / "m.onnx", input_names=["x"], output_names=["y"],
                  dynamic_batch=False)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["x"] and [o.name for o in graph.output] == ["y"]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [2, 4]
    _check_same(model, path, tg.randn(2, 4))


def test_functions_and_more_ops(tmp_path):
    """A function (not a Module) of two inputs with two outputs, through ops beyond the three models."""
    w = tg.randn(6, 3, 3, 3, requires_grad=True)

    def fn(x, y):
        h = F.conv2d(x, w, stride=2, padding=1, dilation=1, groups=1)
        h = F.avg_pool2d(F.pad(h, (1, 1, 1, 1)), 2, padding=1, count_include_pad=False)
        h = tg.cat([h.sigmoid(), (h - 0.5) / 2.0 * h], dim=1)
        z = F.leaky_relu(h, 0.1).flatten(1)
        return F.log_softmax(z, dim=1), F.softmax(z * y, dim=-1)

    x, y = tg.randn(2, 3, 8, 8), tg.randn(2, 1)
    path = export(fn, (x, y), tmp_path / "f.onnx")
    assert {"AveragePool", "Concat", "Pad", "LeakyRelu", "LogSoftmax", "Softmax", "Sigmoid"} <= set(_op_types(path))
    _check_same(fn, path, tg.randn(3, 3, 8, 8), tg.randn(3, 1))


def test_grouped_dilated_conv_and_global_average_pool(tmp_path):
    model = nn.Sequential(nn.Conv2d(4, 8, 3, stride=(1, 2), padding=2, dilation=2, groups=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2, bias=False))
    path = export(model, tg.randn(2, 4, 9, 9), tmp_path / "g.onnx")
    assert "GlobalAveragePool" in _op_types(path)
    _check_same(model, path, tg.randn(3, 4, 9, 9))


@pytest.mark.parametrize("stride, padding, output_padding, dilation, groups", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (3, 2, 1, 2, 2), (2, 0, 0, 1, 4)])
def test_transposed_convolution(tmp_path, stride, padding, output_padding, dilation, groups):
    model = nn.Sequential(nn.ConvTranspose2d(4, 8, 3, stride=stride, padding=padding, output_padding=output_padding,
                                             dilation=dilation, groups=groups), nn.ReLU())
    path = export(model, tg.randn(2, 4, 5, 5), tmp_path / "t.onnx")
    assert _op_types(path)[0] == "ConvTranspose"
    _check_same(model, path, tg.randn(3, 4, 5, 5))


@pytest.mark.parametrize("layer", [nn.GELU(), nn.GELU(approximate="tanh"), nn.ELU(), nn.Softplus(), nn.SiLU(),
                                   nn.Hardtanh(), nn.PReLU(), nn.Dropout(0.5), nn.AvgPool2d(3, 2, ceil_mode=True)],
                         ids=lambda layer: repr(layer))
def test_activations_and_pools_without_a_composite_mapping(tmp_path, layer):
    """Elu, Softplus, PRelu as ONNX's ops of those names, GELU and SiLU as what they are made of (Erf,
    Tanh, Sigmoid, Mul), Dropout in eval mode as nothing, a ceil_mode AvgPool2d as a Conv and a Mul."""
    model = nn.Sequential(nn.Conv2d(2, 3, 1), layer)
    path = export(model, tg.randn(2, 2, 7, 7), tmp_path / "a.onnx")
    _check_same(model, path, tg.randn(3, 2, 7, 7))


def test_a_mask_computed_from_the_data_is_refused_not_baked_in(tmp_path):
    """x.where(x > 0, ...) outside a mapped call: the comparison is not a recorded op, so the mask would
    be the example's; the export refuses (and names the user's line) instead of writing wrong numbers."""
    def fn(x):
        return x.where(x > 0, x * 0.5)

    with pytest.raises(NotImplementedError, match=r"mask that may have been computed from the data.*"
                                                  r"test_onnx_export\.py:\d+: return x\.where"):
        export(fn, tg.randn(2, 3), tmp_path / "w.onnx")


def _size_after(layers, channels, size):
    with tg.no_grad():
        return nn.Sequential(*layers).eval()(tg.zeros(1, channels, size, size)).shape


@settings(max_examples=10)
@given(st.data())
def test_random_layer_stacks(tmp_path_factory, data):
    """Conv2d / BatchNorm2d / ReLU / MaxPool2d blocks of random sizes, then Flatten and Linear."""
    in_channels, size = data.draw(st.integers(1, 4), "channels"), data.draw(st.integers(5, 12), "size")
    layers, shape = [], (1, in_channels, size, size)
    for _ in range(data.draw(st.integers(1, 3), "blocks")):
        k = data.draw(st.integers(1, min(3, shape[-1])), "kernel")
        layers.append(nn.Conv2d(shape[1], data.draw(st.integers(1, 5), "out"), k, stride=data.draw(st.integers(1, 2)),
                                padding=data.draw(st.integers(0, k // 2)), bias=data.draw(st.booleans())))
        if data.draw(st.booleans(), "batch norm"):
            layers.append(nn.BatchNorm2d(layers[-1].out_channels))
        layers.append(nn.ReLU())
        shape = _size_after(layers, in_channels, size)
        if shape[-1] >= 2 and data.draw(st.booleans(), "pool"):
            kernel = data.draw(st.integers(1, 2))
            layers.append(nn.MaxPool2d(kernel, padding=data.draw(st.integers(0, kernel // 2)),
                                       ceil_mode=data.draw(st.booleans())))
            shape = _size_after(layers, in_channels, size)
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(int(np.prod(shape)), data.draw(st.integers(1, 5))))
    _randomised_batch_norms(model)
    x = tg.randn(data.draw(st.integers(1, 3), "batch"), in_channels, size, size)
    path = export(model, x, tmp_path_factory.mktemp("stack") / "s.onnx")
    _check_same(model, path, x)


def test_unmappable_op_names_the_op_and_the_line(tmp_path):
    def fn(x):
        return x.cumsum(1)  # no mapping

    for mode in (contextlib.nullcontext(), tg.autograd.detect_anomaly()):  # the line, with or without anomaly mode
        with mode, pytest.raises(NotImplementedError, match=r"no ONNX mapping for the op Cumsum.*"
                                                            r"test_onnx_export\.py:\d+: return x\.cumsum\(1\)"):
            export(fn, tg.randn(2, 3), tmp_path / "c.onnx")


def test_training_mode_batch_norm_is_refused(tmp_path):
    bn = nn.BatchNorm2d(3)

    def fn(x):
        return F.batch_norm(x, bn.running_mean, bn.running_var, training=True)

    with pytest.raises(NotImplementedError, match="batch_norm in training mode.*eval"):
        export(fn, tg.randn(2, 3, 4, 4), tmp_path / "b.onnx")


def test_bad_arguments(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="example_inputs"):
        export(model, np.zeros((1, 2)), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset"):
        export(model, tg.randn(1, 2), tmp_path / "m.onnx", opset=9)
    with pytest.raises(ValueError, match="input_names"):
        export(model, tg.randn(1, 2), tmp_path / "m.onnx", input_names=["a", "b"])
    with pytest.raises(ValueError, match="does not depend on the inputs"):
        export(lambda x: tg.zeros(2), tg.randn(1, 2), tmp_path / "m.onnx")


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install tinygrad_cnn\[onnx\]"):
        export(nn.Linear(2, 2), tg.randn(1, 2), tmp_path / "m.onnx")
