"""save/load: round trips of nested data (hypothesis), a model and its optimizer resumed bit for bit, paths and
file objects, files that are not ours refused with their name, and no pickle ever read."""
import io
import json
import pickle
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import optim
from tinygrad_cnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.serialization import FORMAT, VERSION, FileFormatError, load, save
from tinygrad_cnn.tensor import Tensor


def round_trip(obj, **load_kwargs):
    buffer = io.BytesIO()
    save(obj, buffer)
    buffer.seek(0)
    return load(buffer, **load_kwargs)


def assert_same(loaded, saved, where="obj"):
    """Same types all the way down (a tuple stays a tuple, an int key an int), arrays bit for bit."""
    assert type(loaded) is type(saved), f"{where}: {type(loaded).__name__}, saved {type(saved).__name__}"
    if isinstance(saved, Tensor):
        assert loaded.is_leaf and loaded.requires_grad == saved.requires_grad, where
        assert_same(loaded.detach().numpy(), saved.detach().numpy(), where)
    elif isinstance(saved, (np.ndarray, np.generic)):
        assert (loaded.dtype, loaded.shape) == (saved.dtype, saved.shape), where
        assert loaded.tobytes() == saved.tobytes(), where  # NaN and -0.0 included
    elif isinstance(saved, float):
        assert repr(loaded) == repr(saved), where
    elif isinstance(saved, dict):
        assert list(loaded) == list(saved), where
        for k in saved:
            assert_same(loaded[k], saved[k], f"{where}[{k!r}]")
    elif isinstance(saved, (list, tuple)):
        assert len(loaded) == len(saved), where
        for i, (a, b) in enumerate(zip(loaded, saved)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert loaded == saved, where


# ================================================================ round trips

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]
arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))
tensors = st.tuples(arrays, st.booleans()).map(
    lambda a: tg.tensor(a[0], requires_grad=a[1] and a[0].dtype.kind == "f"))
scalars = st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(dtype, ())).map(lambda a: a[()])
leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
          | arrays | tensors | scalars)
keys = st.text(max_size=4) | st.sampled_from(["a/b", "file", "checkpoint.json", "..", "__tuple__", "__array__"])
nested = st.recursive(leaves, lambda children: (
    st.lists(children, max_size=3)
    | st.lists(children, max_size=3).map(tuple)
    | st.dictionaries(keys, children, max_size=3)
    | st.dictionaries(st.integers() | keys, children, max_size=3)), max_leaves=12)


@given(nested)
def test_round_trip(obj):
    assert_same(round_trip(obj), obj)


@given(arrays)
def test_loaded_arrays_and_tensors_are_writable(array):
    loaded = round_trip({"array": array, "tensor": tg.tensor(array)})
    assert loaded["array"].flags.writeable and loaded["tensor"].numpy().flags.writeable


def test_keys_that_look_alike_or_like_markers_stay_apart():
    obj = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "file": np.full(1, 2.0), "allow_pickle": np.full(1, 3.0),
           "checkpoint.json": tg.ones(2, requires_grad=True), "ä": np.int64(4), "ö": np.float32(5), "..": [np.eye(2)],
           "x": {"__array__": "a/b"}, "y": {"__items__": []}, 0: "zero", "0": "the string"}
    assert_same(round_trip(obj), obj)


def test_entries_are_named_by_their_path_and_read_by_numpy():
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(3, 2))
    buffer = io.BytesIO()
    save({"model": model.state_dict(), "step": np.int64(7)}, buffer)
    npz = np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False)
    assert sorted(npz.files) == ["checkpoint.json", "model/0.bias", "model/0.weight", "step"]
    np.testing.assert_array_equal(npz["model/0.weight"], model[0].weight.detach().numpy())
    description = json.loads(str(npz["checkpoint.json"]))
    assert description["format"] == FORMAT and description["version"] == VERSION
    assert description["obj"]["model"]["0.weight"] == {"__tensor__": ["model/0.weight", False]}


def test_requires_grad_is_kept_as_pytorch_does():
    w = tg.ones(2, requires_grad=True)
    loaded = round_trip({"leaf": w, "non-leaf": w * 2, "detached": w.detach()})
    assert {k: (t.requires_grad, t.is_leaf) for k, t in loaded.items()} == \
        {"leaf": (True, True), "non-leaf": (True, True), "detached": (False, True)}


def test_a_tensor_saved_twice_comes_back_as_two():
    w = tg.zeros(3)
    a, b = round_trip([w, w])
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a is not b


# ================================================================ a model and its optimizer

@pytest.mark.parametrize("make_optimizer", [
    lambda params: optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda params: optim.Adam(params, lr=1e-3),
    lambda params: optim.AdamW([{"params": params[:4]}, {"params": params[4:], "lr": 1e-4}]),
], ids=["SGD", "Adam", "AdamW groups"])
def test_state_dicts_continue_training_exactly(tmp_path, make_optimizer):
    tg.manual_seed(0)
    x, y = tg.randn(8, 1, 28, 28), tg.tensor(np.arange(8) % 10)

    def step(model, optimizer):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    model = LeNet5()
    optimizer = make_optimizer(list(model.parameters()))
    for _ in range(2):
        step(model, optimizer)
    save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "run.pt")

    tg.manual_seed(1)
    fresh = LeNet5()
    fresh_optimizer = make_optimizer(list(fresh.parameters()))
    state = load(tmp_path / "run.pt")
    assert_same(state["optimizer"], optimizer.state_dict())  # int keys, betas a tuple, exact arrays
    weight = state["model"]["conv1.weight"]
    assert isinstance(weight, Tensor) and weight.dtype == np.float32 and not weight.requires_grad
    fresh.load_state_dict(state["model"])
    fresh_optimizer.load_state_dict(state["optimizer"])

    assert [step(model, optimizer) for _ in range(2)] == [step(fresh, fresh_optimizer) for _ in range(2)]
    for (name, p), q in zip(model.named_parameters(), fresh.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)


# ================================================================ paths and file objects

class Unseekable(io.RawIOBase):
    """A pipe-like stream: it reads, but cannot seek."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._data.readinto(buffer)


@pytest.mark.parametrize("kind", ["str", "Path", "file object", "BytesIO", "unseekable"])
def test_paths_and_file_objects(tmp_path, kind):
    obj = {"w": tg.randn(2, 3), "epoch": 3}
    path = tmp_path / "model.pt"
    if kind in ("str", "Path"):
        f = str(path) if kind == "str" else path
        save(obj, f)
        assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no .npz appended
        loaded = load(f)
    elif kind == "file object":
        with open(path, "wb") as f:
            save(obj, f)
        with open(path, "rb") as f:
            loaded = load(f)
    else:
        buffer = io.BytesIO()
        save(obj, buffer)
        loaded = load(io.BytesIO(buffer.getvalue()) if kind == "BytesIO" else Unseekable(buffer.getvalue()))
    assert_same(loaded, obj)


def test_map_location_and_weights_only():
    t = tg.ones(2)
    for kwargs in [{}, {"map_location": "cpu"}, {"map_location": tg.device("cpu")}, {"weights_only": True}]:
        assert_same(round_trip(t, **kwargs), t)
    with pytest.raises(RuntimeError, match="load: device 'cuda:0' is not available"):
        round_trip(t, map_location="cuda:0")
    with pytest.raises(ValueError, match="load: weights_only=False is not supported"):
        round_trip(t, weights_only=False)


# ================================================================ what save refuses

class Config:
    pass


@pytest.mark.parametrize("obj, message", [
    ({"opt": {"x": lambda: 1}}, r"save: obj\['opt'\]\['x'\] is a function; save stores Tensors"),
    ([1, (Config(),)], r"save: obj\[1\]\[0\] is a Config;"),
    ({"s": {1, 2}}, r"save: obj\['s'\] is a set;"),
    ({"a": {1.5: 0}}, r"save: obj\['a'\] has a key of type float \(1.5\); keys must be str or int"),
    ({"a": {np.int64(1): 0}}, r"save: obj\['a'\] has a key of type int64"),
    ({"a": np.array([None, 1])}, r"save: obj\['a'\] is a NumPy array of dtype object, which only pickle could store"),
    (np.ma.masked_array([1, 2]), r"save: obj is a MaskedArray;"),
], ids=["function", "class instance", "set", "float key", "numpy key", "object array", "ndarray subclass"])
def test_unsupported_objects_are_named_and_nothing_is_written(tmp_path, obj, message):
    path = tmp_path / "old.pt"
    save({"old": 1}, path)
    with pytest.raises(TypeError, match=message):
        save(obj, path)
    assert load(path) == {"old": 1}


# ================================================================ what load refuses

def torch_file(path, legacy):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=not legacy)


def npz(path, **arrays):
    with open(path, "wb") as f:  # np.savez(path) would append .npz to the name
        np.savez(f, **arrays)


def ours_with(path, description, **arrays):
    """A file like ours, with this description and these entries."""
    npz(path, **arrays, **{"checkpoint.json": np.array(json.dumps(description))})


def npy(path, array):
    with open(path, "wb") as f:
        np.save(f, array)


def truncated(path):
    save({"w": np.arange(100.0)}, path)
    path.write_bytes(path.read_bytes()[:500])


BAD_FILES = {
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(300)), "not an .npz \\(zip\\) file"),
    "empty": (lambda p: p.write_bytes(b""), "not an .npz \\(zip\\) file"),
    "truncated": (truncated, "not an .npz \\(zip\\) file, or a truncated one"),
    "plain npz": (lambda p: npz(p, w=np.zeros(3)), "a zip or .npz file without checkpoint.json"),
    "npy": (lambda p: npy(p, np.zeros(3)), "a .npy file; read it with numpy.load"),
    "pickle": (lambda p: p.write_bytes(pickle.dumps({"w": [1.0]})), "a pickle .* which load never reads"),
    "torch": (lambda p: torch_file(p, legacy=False), "a PyTorch file \\(torch.save\\); read it with torch.load"),
    "torch < 1.6": (lambda p: torch_file(p, legacy=True), "a pickle \\(torch.save wrote those before PyTorch 1.6\\)"),
    "object array": (lambda p: ours_with(p, {"format": FORMAT, "version": 1, "obj": {"__array__": "x"}},
                                         x=np.array([print], dtype=object)),
                     "entry 'x' is damaged or holds pickled data, which load never reads"),
    "newer version": (lambda p: ours_with(p, {"format": FORMAT, "version": 2, "obj": None}),
                      "format version 2; this tinygrad_cnn reads version 1"),
    "other json": (lambda p: ours_with(p, {"format": "something else"}),
                   "a checkpoint.json of another format \\('something else'\\)"),
    "missing entry": (lambda p: ours_with(p, {"format": FORMAT, "version": 1, "obj": {"__array__": "gone"}}),
                      "damaged \\(KeyError: .*gone.npy"),
    "bad json": (lambda p: npz(p, **{"checkpoint.json": np.array("{not json")}), "damaged \\(JSONDecodeError"),
}


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_files_that_are_not_ours_are_refused_without_unpickling(tmp_path, monkeypatch, make):
    make_file, reason = make
    path = tmp_path / "model.pt"
    make_file(path)

    def no_pickle(*args, **kwargs):
        raise AssertionError("load unpickled something")

    read_array = np.lib.format.read_array

    def read_array_without_pickle(*args, allow_pickle=False, **kwargs):
        assert allow_pickle is False
        return read_array(*args, allow_pickle=False, **kwargs)

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    monkeypatch.setattr(np.lib.format, "read_array", read_array_without_pickle)
    expected = rf"load: cannot read {re.escape(str(path))} \(expected a file written by tinygrad_cnn.save\): {reason}"
    for f in (path, io.BytesIO(path.read_bytes())):
        with pytest.raises(FileFormatError, match=expected if f is path else reason) as error:
            load(f)
        assert isinstance(error.value, ValueError)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.pt")


# ================================================================ checkpoints are save files

def test_checkpoints_are_save_files(tmp_path):
    save_checkpoint(tmp_path / "run.npz", {"model": {"w": tg.ones(2)}, "epoch": 1})
    assert_same(load(tmp_path / "run.npz"),
                {"format": "tinygrad_cnn checkpoint", "version": 1, "model": {"w": tg.ones(2)}, "epoch": 1})
    assert_same(load_checkpoint(tmp_path / "run.npz"), {"model": {"w": tg.ones(2)}, "epoch": 1})
    with pytest.raises(ValueError, match="save_checkpoint: the keys \\['format', 'version'\\] are reserved"):
        save_checkpoint(tmp_path / "run.npz", {"version": 2})
    save({"model": {}}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="weights.pt: not a tinygrad_cnn checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")


def test_checkpoints_written_before_save_existed_still_load(tmp_path):
    """The old layout: checkpoint.json was the checkpoint dict itself, with its arrays, tuples and int-keyed dicts
    marked as they are now."""
    old = {"format": "tinygrad_cnn checkpoint", "version": 1, "epoch": 2, "model": {"w": {"__array__": "model/w"}},
           "optimizer": {"state": {"__items__": [[0, {"step": 3}]]}, "betas": {"__tuple__": [0.9, 0.999]}}}
    np.savez(tmp_path / "old.npz", **{"model/w": np.arange(3.0), "checkpoint.json": np.array(json.dumps(old))})
    expected = {"epoch": 2, "model": {"w": np.arange(3.0)}, "optimizer": {"state": {0: {"step": 3}},
                                                                          "betas": (0.9, 0.999)}}
    assert_same(load_checkpoint(tmp_path / "old.npz"), expected)
    assert_same(load(tmp_path / "old.npz"), {"format": "tinygrad_cnn checkpoint", "version": 1, **expected})
