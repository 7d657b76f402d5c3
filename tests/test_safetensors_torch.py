"""save_safetensors / load_safetensors against the safetensors library's PyTorch side: every dtype and
shape round trips and reads the same in torch; LeNet-5 and ResNet-20 weights (BatchNorm buffers
included) go both ways with equal eval logits; tensors sharing memory are refused exactly when
PyTorch's save_file refuses them; bad input is a clear error."""
import sys

import numpy as np
import pytest

safetensors = pytest.importorskip("safetensors")
torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402
from tinygrad_cnn.models import LeNet5, ResNet20  # noqa: E402

from benchmark_modules import load  # noqa: E402

torch_twins = load("torch_twins")  # the same models written with torch.nn
PAIRS = {"lenet5": (LeNet5, torch_twins.LeNet5), "resnet20": (ResNet20, torch_twins.ResNet20)}
DTYPES = ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"]
SHAPES = [(), (0,), (5,), (2, 3, 4)]


def random_array(rng: np.random.Generator, dtype: str, shape: tuple) -> np.ndarray:
    """Random values over the dtype's range (all of it for the integers), as an array even for shape ()."""
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.startswith("float"):
        return np.asarray(rng.standard_normal(shape), dtype=dtype)
    info = np.iinfo(dtype)
    return np.asarray(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"{dtype}.{len(shape)}d{'_empty' if 0 in shape else ''}": random_array(rng, dtype, shape)
            for dtype in DTYPES for shape in SHAPES}


# ================================================================ dtypes, shapes, values

def test_round_trip_keeps_names_dtypes_shapes_and_values(tmp_path, arrays):
    tg.save_safetensors({k: tg.from_numpy(a) for k, a in arrays.items()}, tmp_path / "t.safetensors")
    loaded = tg.load_safetensors(tmp_path / "t.safetensors")
    assert sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        t = loaded[name]
        assert isinstance(t, tg.Tensor) and not t.requires_grad
        assert t.dtype == array.dtype and t.shape == array.shape, name
        assert np.array_equal(t.numpy(), array), name
    loaded["float32.1d"].add_(1)  # loaded tensors are writable, not views of the file
    assert np.array_equal(loaded["float32.1d"].numpy(), arrays["float32.1d"] + 1)


def test_torch_reads_what_we_write(tmp_path, arrays):
    tg.save_safetensors({k: tg.from_numpy(a) for k, a in arrays.items()}, tmp_path / "t.safetensors")
    theirs = load_file(tmp_path / "t.safetensors")
    for name, array in arrays.items():
        assert theirs[name].dtype == torch.from_numpy(array).dtype and tuple(theirs[name].shape) == array.shape, name
        assert np.array_equal(theirs[name].numpy(), array), name


def test_we_read_what_torch_writes(tmp_path, arrays):
    save_file({k: torch.from_numpy(a) for k, a in arrays.items()}, tmp_path / "t.safetensors")
    ours = tg.load_safetensors(tmp_path / "t.safetensors")
    for name, array in arrays.items():
        assert ours[name].dtype == array.dtype and ours[name].shape == array.shape, name
        assert np.array_equal(ours[name].numpy(), array), name


def test_non_contiguous_tensors_are_written_in_row_major_order(tmp_path):
    base = tg.arange(24, dtype=tg.float64).reshape(2, 3, 4)
    views = {"transposed": base.permute(2, 0, 1), "strided": base[:, ::2, 1::2]}
    assert not any(v.numpy().flags.c_contiguous for v in views.values())
    tg.save_safetensors({"transposed": views["transposed"]}, tmp_path / "a.safetensors")
    tg.save_safetensors({"strided": views["strided"]}, tmp_path / "b.safetensors")
    expected = {"transposed": np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1),
                "strided": np.arange(24.0).reshape(2, 3, 4)[:, ::2, 1::2]}
    for name, file in (("transposed", "a"), ("strided", "b")):
        assert np.array_equal(tg.load_safetensors(tmp_path / f"{file}.safetensors")[name].numpy(), expected[name])
        assert np.array_equal(load_file(tmp_path / f"{file}.safetensors")[name].numpy(), expected[name])


def test_metadata_is_in_the_header(tmp_path):
    metadata = {"model": "lenet5", "normalization_mean": "0.1307"}
    tg.save_safetensors({"w": tg.ones(2)}, tmp_path / "m.safetensors", metadata=metadata)
    with safetensors.safe_open(tmp_path / "m.safetensors", framework="pt") as f:
        assert f.metadata() == metadata
    tg.save_safetensors({"w": tg.ones(2)}, tmp_path / "none.safetensors")
    with safetensors.safe_open(tmp_path / "none.safetensors", framework="np") as f:
        assert not f.metadata()


# ================================================================ tensors sharing memory: as PyTorch's save_file

def shared_cases():
    """name -> a function of the library (tg or torch) giving a dict of its tensors."""
    return {
        "same tensor twice": lambda lib: (lambda w: {"w": w, "alias": w})(lib.arange(6.0)),
        "a view": lambda lib: (lambda w: {"w": w, "row": w.reshape(2, 3)[1]})(lib.arange(6.0)),
        "overlapping slices": lambda lib: (lambda w: {"a": w[:4], "b": w[3:]})(lib.arange(6.0)),
        "disjoint slices": lambda lib: (lambda w: {"a": w[:3], "b": w[3:]})(lib.arange(6.0)),
        "empty views": lambda lib: (lambda w: {"a": w[:0], "b": w[:0]})(lib.arange(6.0)),
        "separate tensors": lambda lib: {"a": lib.arange(6.0), "b": lib.arange(6.0)},
    }


@pytest.mark.parametrize("case", list(shared_cases()))
def test_shared_memory_is_refused_exactly_when_torch_refuses(tmp_path, case):
    make = shared_cases()[case]
    try:
        save_file(make(torch), tmp_path / "torch.safetensors")
        torch_refuses = False
    except RuntimeError:
        torch_refuses = True
    if torch_refuses:
        with pytest.raises(RuntimeError, match="share memory"):
            tg.save_safetensors(make(tg), tmp_path / "ours.safetensors")
        assert not (tmp_path / "ours.safetensors").exists()
    else:
        tensors = make(tg)
        tg.save_safetensors(tensors, tmp_path / "ours.safetensors")
        loaded = tg.load_safetensors(tmp_path / "ours.safetensors")
        assert all(np.array_equal(loaded[k].numpy(), v.numpy()) for k, v in tensors.items())


def test_tied_weights_name_every_shared_name(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = nn.Linear(3, 3), nn.Linear(3, 3)
            self.decoder.weight = self.encoder.weight

    with pytest.raises(RuntimeError, match=r"share memory .*: decoder\.weight, encoder\.weight\. Save one name"):
        tg.save_safetensors(Tied().state_dict(), tmp_path / "tied.safetensors")


# ================================================================ models both ways, against torch.nn twins

def moved_running_stats(model, name: str):
    """`model` (ours or torch's twin of model `name`) after one training-mode pass on random images, so that
    BatchNorm's running statistics and num_batches_tracked leave their initial values; in eval mode."""
    images = np.random.default_rng(1).standard_normal((8, *PAIRS[name][0].input_shape)).astype(np.float32)
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            model(torch.from_numpy(images))
    else:
        with tg.no_grad():
            model(tg.from_numpy(images))
    return model.eval()


def eval_images(name: str) -> np.ndarray:
    return np.random.default_rng(2).standard_normal((4, *PAIRS[name][0].input_shape)).astype(np.float32)


def assert_same_logits(ours, theirs, images: np.ndarray) -> None:
    with tg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(tg.from_numpy(images)).numpy(), theirs(torch.from_numpy(images)).numpy(),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(PAIRS))
def test_our_weights_load_into_torch(tmp_path, name):
    tg.manual_seed(0)
    ours = moved_running_stats(PAIRS[name][0](), name)
    tg.save_safetensors(ours.state_dict(), tmp_path / "ours.safetensors")
    state = load_file(tmp_path / "ours.safetensors")
    theirs = PAIRS[name][1]().eval()
    theirs.load_state_dict(state)  # strict: every name and shape matches
    for key, value in ours.state_dict().items():
        assert np.array_equal(theirs.state_dict()[key].numpy(), value.numpy()), key
    tracked = [k for k in state if k.endswith("num_batches_tracked")]
    assert (len(tracked) > 0) == (name == "resnet20")
    assert all(state[k].dtype == torch.int64 and state[k].item() == 1 for k in tracked)
    assert_same_logits(ours, theirs, eval_images(name))


@pytest.mark.parametrize("name", list(PAIRS))
def test_torch_weights_load_into_ours(tmp_path, name):
    torch.manual_seed(0)
    theirs = moved_running_stats(PAIRS[name][1](), name)
    save_file(theirs.state_dict(), tmp_path / "theirs.safetensors")
    ours = PAIRS[name][0]().eval()
    ours.load_state_dict(tg.load_safetensors(tmp_path / "theirs.safetensors"))  # strict
    for key, value in theirs.state_dict().items():
        mine = ours.state_dict()[key]
        assert mine.dtype == value.numpy().dtype and np.array_equal(mine.numpy(), value.numpy()), key
    assert_same_logits(ours, theirs, eval_images(name))


# ================================================================ bad input

@pytest.mark.parametrize("make, error, message", [
    (lambda lib: [lib.ones(2)], ValueError, "expected a dict of str to Tensor, got list"),
    (lambda lib: {1: lib.ones(2)}, TypeError, "tensor names must be str, got 1 \\(int\\)"),
    (lambda lib: {"w": np.ones(2)}, ValueError, "'w' is a ndarray, not a Tensor"),
    (lambda lib: {"w": [1.0]}, ValueError, "'w' is a list, not a Tensor"),
], ids=["list", "int name", "array", "list value"])
def test_bad_tensors_raise_as_torch(tmp_path, make, error, message):
    with pytest.raises(error, match=f"save_safetensors: {message}"):
        tg.save_safetensors(make(tg), tmp_path / "bad.safetensors")
    with pytest.raises(error):  # PyTorch's save_file raises the same type for the same mistake
        save_file(make(torch), tmp_path / "torch.safetensors")


@pytest.mark.parametrize("metadata", [{"epoch": 3}, {3: "epoch"}])
def test_metadata_must_be_text(tmp_path, metadata):
    with pytest.raises(TypeError, match="save_safetensors: metadata must map str to str"):
        tg.save_safetensors({"w": tg.ones(2)}, tmp_path / "m.safetensors", metadata=metadata)
    with pytest.raises(TypeError):
        save_file({"w": torch.ones(2)}, tmp_path / "torch.safetensors", metadata=metadata)


def test_tensors_requiring_grad_are_saved_detached(tmp_path):
    w = tg.randn(3, requires_grad=True)
    tg.save_safetensors({"w": w}, tmp_path / "w.safetensors")
    loaded = tg.load_safetensors(tmp_path / "w.safetensors")["w"]
    assert not loaded.requires_grad and np.array_equal(loaded.numpy(), w.detach().numpy())


def test_missing_and_corrupt_files_raise_as_torch(tmp_path):
    with pytest.raises(FileNotFoundError):
        tg.load_safetensors(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(safetensors.SafetensorError):
        load_file(tmp_path / "junk.safetensors")
    with pytest.raises(safetensors.SafetensorError):
        tg.load_safetensors(tmp_path / "junk.safetensors")


def test_without_the_package_the_error_names_the_extra(tmp_path, monkeypatch):
    for module in [m for m in sys.modules if m == "safetensors" or m.startswith("safetensors.")]:
        monkeypatch.setitem(sys.modules, module, None)  # as if the safetensors extra were not installed
    hint = r"need the safetensors package, which is not installed: pip install 'tinygrad_cnn\[safetensors\]'"
    with pytest.raises(ImportError, match=hint):
        tg.save_safetensors({"w": tg.ones(2)}, tmp_path / "w.safetensors")
    with pytest.raises(ImportError, match=hint):
        tg.load_safetensors(tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()
