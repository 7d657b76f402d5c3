"""tinygrad_cnn.data: datasets, the DataLoader (checked against torch's batching), the IDX format
(checked against bytes built by hand from the spec) and the embedded MNIST digits."""
import gzip
import hashlib
import pickle
import re
import struct
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor
from tinygrad_cnn.data import (DataLoader, Dataset, TensorDataset, digits_dataset, load_digits, load_idx_dataset,
                               read_idx, write_idx)
from tinygrad_cnn.data import build_digits, digits


def mentions(*words: str) -> str:
    """A regex matching a message that contains every one of `words`, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(str(w))})" for w in words)


def numbered(n: int, features: tuple[int, ...] = (3,)) -> TensorDataset:
    """n samples whose features and label both spell their index, so a batch says which samples it holds."""
    x = np.arange(n * int(np.prod(features)), dtype=np.float32).reshape((n,) + features)
    return TensorDataset(Tensor(x), np.arange(n))


def epoch_ids(batches) -> np.ndarray:
    """The sample indices an epoch (a loader, or the rest of an iterator) visits, in order
    (labels of a `numbered` dataset)."""
    return np.concatenate([y.numpy() for _, y in batches] or [np.zeros(0, np.int64)])


def epochs(loader: DataLoader, k: int) -> list[list[int]]:
    return [epoch_ids(loader).tolist() for _ in range(k)]


# ---------------------------------------------------------------- datasets

@given(n=st.integers(1, 12), features=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), data=st.data())
def test_tensor_dataset_item_i_is_row_i_of_each_tensor(n, features, data):
    x = np.random.default_rng(0).standard_normal((n,) + features)
    labels = np.arange(n, dtype=np.int64) * 7
    ds = TensorDataset(Tensor(x), labels)  # a NumPy array is accepted and keeps its dtype
    i = data.draw(st.integers(-n, n - 1), label="i")
    xi, yi = ds[i]
    assert len(ds) == n and isinstance(yi, Tensor) and yi.dtype == np.int64
    np.testing.assert_array_equal(xi.numpy(), x[i])
    assert yi.item() == labels[i]


def test_tensor_dataset_stops_iteration_with_index_error():
    """Past the end, indexing raises IndexError, so `list(dataset)` has len(dataset) items."""
    ds = numbered(4)
    with pytest.raises(IndexError):
        ds[4]
    assert [int(y.item()) for _, y in ds] == [0, 1, 2, 3]


@pytest.mark.parametrize("args, error, words", [
    ((np.zeros((3, 2)), np.zeros(4)), ValueError, ["(3, 2)", "(4,)"]),
    ((), ValueError, ["at least one"]),
    ((np.zeros(3), np.float32(1.0)), TypeError, ["argument 1", "float32"]),
    ((np.zeros(3), [1, 2, 3]), TypeError, ["argument 1", "list"]),
    ((Tensor(1.0),), ValueError, ["0-d"]),
])
def test_tensor_dataset_rejects(args, error, words):
    with pytest.raises(error, match=mentions(*words)):
        TensorDataset(*args)


def test_dataset_is_abstract():
    """Dataset needs both __getitem__ and __len__, as its docstring promises."""
    class OnlyGetItem(Dataset):
        def __getitem__(self, i):
            return i

    with pytest.raises(TypeError):
        Dataset()
    with pytest.raises(TypeError):
        OnlyGetItem()


# ---------------------------------------------------------------- DataLoader: batching

@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), drop_last=st.booleans(), shuffle=st.booleans())
def test_loader_batches_like_torch_and_visits_each_sample_once(n, batch_size, drop_last, shuffle):
    torch = pytest.importorskip("torch")
    ds = numbered(n, features=(2, 3))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=0)
    # torch's own loader is the truth for how many batches, and of which sizes (shuffling changes neither)
    reference = torch.utils.data.DataLoader(range(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(reference) == len(batches)
    assert [len(y) for _, y in batches] == [len(b) for b in reference]
    for x, y in batches:
        assert x.shape == (len(y), 2, 3) and x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x.numpy(), ds.tensors[0].numpy()[y.numpy()])  # features travel with their label
    ids = epoch_ids(loader)
    kept = n - n % batch_size if drop_last else n
    assert len(ids) == len(set(ids.tolist())) == kept  # no sample twice, none lost but the dropped tail
    if not shuffle:
        np.testing.assert_array_equal(ids, np.arange(kept))


def test_loader_batches_are_fresh_arrays_without_grad():
    """Editing a batch must not edit the dataset, and data never joins the autograd graph."""
    ds = TensorDataset(tg.ones(4, 2, requires_grad=True))
    (x,) = next(iter(DataLoader(ds, batch_size=4)))
    x.detach().numpy()[...] = 5.0
    assert not x.requires_grad and x.grad_fn is None
    np.testing.assert_array_equal(ds.tensors[0].detach().numpy(), np.ones((4, 2)))


class Records(Dataset):
    """A hand-written dataset whose items mix the kinds of fields a user returns."""
    Item = namedtuple("Item", "pixels label weight name")

    def __init__(self, n: int):
        self.pixels = np.random.default_rng(1).random((n, 2, 2))  # float64
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.Item(self.pixels[i], i, i / 2, f"r{i}")

    def __len__(self):
        return self.n


def test_generic_dataset_items_are_collated_field_by_field():
    ds = Records(7)
    batches = list(DataLoader(ds, batch_size=3))
    assert [len(b.label) for b in batches] == [3, 3, 1]
    first = batches[0]
    assert isinstance(first, Records.Item)
    np.testing.assert_array_equal(first.pixels.numpy(), ds.pixels[:3])
    assert first.pixels.dtype == np.float64  # arrays keep their dtype
    assert first.label.dtype == np.int64 and first.label.tolist() == [0, 1, 2]
    assert first.weight.dtype == np.float32 and first.weight.tolist() == [0.0, 0.5, 1.0]  # as tg.tensor reads floats
    assert first.name == ["r0", "r1", "r2"]  # strings stay a list, as in torch


def test_generic_collation_of_dicts_and_plain_tensors():
    class Dicts(Dataset):
        def __getitem__(self, i):
            return {"x": Tensor(np.full(2, i, dtype=np.int32)), "y": np.int16(i)}

        def __len__(self):
            return 5

    batch = next(iter(DataLoader(Dicts(), batch_size=5)))
    assert batch["x"].dtype == np.int32 and batch["x"].shape == (5, 2)
    assert batch["y"].dtype == np.int16 and batch["y"].tolist() == [0, 1, 2, 3, 4]


def test_generic_collation_rejects_ragged_items():
    class Ragged(Dataset):
        def __getitem__(self, i):
            return np.zeros(i + 1)

        def __len__(self):
            return 3

    with pytest.raises(ValueError, match=mentions("(1,)", "(2,)")):
        next(iter(DataLoader(Ragged(), batch_size=3)))


def test_tensor_dataset_subclass_with_its_own_getitem_is_respected():
    """The fast path must not bypass a subclass that transforms its items (e.g. augmentation)."""
    class Shifted(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x + 100, y

    ds = Shifted(np.zeros((4, 2), dtype=np.float32), np.arange(4))
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    np.testing.assert_array_equal(x.numpy(), np.full((4, 2), 100.0))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(batch_size=0), ValueError, ["batch_size", "0"]),
    (dict(batch_size=-2), ValueError, ["batch_size", "-2"]),
    (dict(batch_size=2.0), TypeError, ["batch_size", "2.0"]),
    (dict(batch_size=True), TypeError, ["batch_size", "True"]),
    (dict(shuffle="yes"), TypeError, ["shuffle"]),
    (dict(drop_last=1), TypeError, ["drop_last"]),
    (dict(seed=-1), ValueError, ["seed", "-1"]),
    (dict(seed=1.5), TypeError, ["seed", "1.5"]),
    (dict(dataset=5), TypeError, ["dataset", "int"]),
])
def test_loader_rejects_bad_arguments(kwargs, error, words):
    kwargs = {"dataset": numbered(3), **kwargs}
    with pytest.raises(error, match=mentions(*words)):
        DataLoader(**kwargs)


# ---------------------------------------------------------------- DataLoader: shuffling and checkpoints

def test_same_seed_same_epochs_and_each_epoch_reshuffles():
    runs = [epochs(DataLoader(numbered(50), batch_size=8, shuffle=True, seed=s), 3) for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    first, second, third = runs[0]
    assert first != second != third != first  # 50! orders: a repeat would be a bug, not luck
    assert sorted(first) == list(range(50))


def test_seed_none_follows_manual_seed_even_if_set_after_construction():
    """As in torch: the loader draws from the global generator when it starts an epoch."""
    loader = DataLoader(numbered(30), batch_size=4, shuffle=True)
    tg.manual_seed(123)
    first = epochs(loader, 2)
    tg.manual_seed(123)
    assert epochs(loader, 2) == first
    assert first[0] != first[1]


@pytest.mark.parametrize("seed", [7, None])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batches_seen", [None, 0, 2, 5])  # None: after the epoch ended; 5: its last batch seen
def test_state_dict_resumes_the_same_batches(seed, shuffle, batches_seen):
    """Save (through pickle, as a checkpoint would), go on; a fresh loader restored from the save
    must then yield exactly what the original yielded after saving."""
    def make():
        return DataLoader(numbered(37), batch_size=8, shuffle=shuffle, seed=seed)

    tg.manual_seed(0)
    original = make()
    epochs(original, 2)
    it = iter(original)  # the third epoch, stopped after `batches_seen` batches
    for _ in range(5 if batches_seen is None else batches_seen):
        next(it)
    if batches_seen is None:
        assert next(it, "ended") == "ended"
    saved = pickle.dumps((original.state_dict(), tg.rng.get_generator().bit_generator.state))
    expected = [] if batches_seen is None else [epoch_ids(it).tolist()]  # the rest of the third epoch
    expected += epochs(original, 2)

    state, global_state = pickle.loads(saved)
    tg.manual_seed(999)  # scramble the global generator: only the restored state may matter
    tg.rng.get_generator().bit_generator.state = global_state  # seed=None: the documented recipe
    resumed = make()
    resumed.load_state_dict(state)
    assert epochs(resumed, len(expected)) == expected
    assert resumed.state_dict()["epoch"] == original.state_dict()["epoch"] == 5
    if batches_seen is not None:  # the rest of an epoch holds exactly the samples not yet seen
        assert len(expected[0]) == max(37 - 8 * batches_seen, 0)


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("epoch"), ["keys"]),
    (lambda s: s.update(generator=None, seed=None), ["seed=None", "seed=3"]),
    (lambda s: s.update(num_samples=11), ["11", "10"]),
    (lambda s: s.update(position=99), ["position", "99"]),
    (lambda s: s.update(order=np.zeros(10, dtype=np.int64)), ["permutation"]),
    (lambda s: s.update(order=None), ["shuffle"]),
])
def test_load_state_dict_rejects_a_state_from_another_loader(change, words):
    loader = DataLoader(numbered(10), batch_size=3, shuffle=True, seed=3)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    change(state)
    with pytest.raises(ValueError, match=mentions(*words)):
        DataLoader(numbered(10), batch_size=3, shuffle=True, seed=3).load_state_dict(state)


# ---------------------------------------------------------------- IDX format

# (dtype, IDX type code, struct format of one element), from the format's spec
IDX_TYPES = [("uint8", 0x08, "B"), ("int8", 0x09, "b"), ("int16", 0x0B, "h"), ("int32", 0x0C, "i"),
             ("float32", 0x0D, "f"), ("float64", 0x0E, "d")]


def idx_bytes(code: int, shape: tuple[int, ...], fmt: str, values: list) -> bytes:
    """An IDX file built from the spec with struct, independently of write_idx."""
    return (bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
            + struct.pack(f">{len(values)}{fmt}", *values))


@pytest.mark.parametrize("dtype, code, fmt", IDX_TYPES)
def test_idx_matches_the_spec_byte_for_byte(tmp_path, dtype, code, fmt):
    values = np.arange(6) if dtype == "uint8" else (np.arange(6) - 3) * (0.25 if fmt in "fd" else 1)
    array = values.reshape(2, 3).astype(dtype)
    expected = idx_bytes(code, (2, 3), fmt, array.ravel().tolist())
    write_idx(tmp_path / "a.idx", array)
    write_idx(tmp_path / "a.idx.gz", array)
    assert (tmp_path / "a.idx").read_bytes() == expected
    assert gzip.decompress((tmp_path / "a.idx.gz").read_bytes()) == expected
    (tmp_path / "b.gz").write_bytes(gzip.compress(expected))  # a gzip file made by the standard library
    for name in ("a.idx", "a.idx.gz", "b.gz"):
        back = read_idx(tmp_path / name)
        assert back.dtype == np.dtype(dtype) and back.dtype.isnative
        np.testing.assert_array_equal(back, array)


@given(array=st.sampled_from([t for t, _, _ in IDX_TYPES]).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))),
    suffix=st.sampled_from(["", ".gz"]))
def test_idx_round_trip(tmp_path_factory, array, suffix):
    path = tmp_path_factory.mktemp("idx") / f"x-idx{array.ndim}-ubyte{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)  # NaNs compare equal here, as they should


GOOD = idx_bytes(0x08, (2, 3), "B", list(range(6)))


@pytest.mark.parametrize("name, content, words", [
    ("magic.idx", b"\x00\x00\x07\x02" + GOOD[4:], ["magic number", "0x00000702"]),
    ("nonzero.idx", b"\x08\x03" + GOOD[2:], ["magic number"]),
    ("zero_dims.idx", b"\x00\x00\x08\x00", ["magic number"]),
    ("short.idx", GOOD[:-1], ["truncated data", "6 bytes", "found 5"]),
    ("long.idx", GOOD + b"\x00", ["after the data"]),
    ("header.idx", GOOD[:6], ["truncated IDX header"]),
    ("empty.idx", b"", ["truncated IDX header"]),
    ("cut.idx.gz", gzip.compress(GOOD)[:-6], ["gzip"]),
    ("flipped.gz", gzip.compress(GOOD)[:12] + b"\xff" * 8 + gzip.compress(GOOD)[20:], ["gzip"]),
    ("notgzip.idx.gz", b"hello, world", ["gzip"]),
    ("short_inside.gz", gzip.compress(GOOD[:-2]), ["truncated data"]),
])
def test_read_idx_rejects_corrupt_files_naming_them(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=mentions(str(path), *words)):
        read_idx(path)


@pytest.mark.parametrize("array, error", [
    (np.zeros(3, dtype=np.int64), TypeError),
    (np.zeros(3, dtype=bool), TypeError),
    (np.zeros((), dtype=np.uint8), ValueError),
])
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path, array, error):
    with pytest.raises(error):
        write_idx(tmp_path / "x.idx", array)
    assert not (tmp_path / "x.idx").exists()


def write_mnist_like(directory: Path, prefix: str, n_images: int, n_labels: int, sep: str = "-", gz: str = ""):
    rng = np.random.default_rng(len(prefix) + n_images)
    images = rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_labels, dtype=np.uint8)
    write_idx(directory / f"{prefix}-images{sep}idx3-ubyte{gz}", images)
    write_idx(directory / f"{prefix}-labels{sep}idx1-ubyte{gz}", labels)
    return images, labels


@pytest.mark.parametrize("sep", ["-", "."])
@pytest.mark.parametrize("gz", ["", ".gz"])
def test_load_idx_dataset_finds_each_spelling(tmp_path, sep, gz):
    train = write_mnist_like(tmp_path, "train", 6, 6, sep, gz)
    test = write_mnist_like(tmp_path, "t10k", 3, 3, sep, gz)
    for flag, (images, labels) in ((True, train), (False, test)):
        got_images, got_labels = load_idx_dataset(tmp_path, train=flag)
        assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)


def test_load_idx_dataset_rejects_counts_that_disagree(tmp_path):
    write_mnist_like(tmp_path, "train", 5, 4)
    with pytest.raises(ValueError, match=mentions("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "5", "4")):
        load_idx_dataset(tmp_path)


def test_load_idx_dataset_rejects_labels_that_are_not_a_vector(tmp_path):
    write_mnist_like(tmp_path, "train", 4, 4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((4, 2), np.uint8))
    with pytest.raises(ValueError, match=mentions("train-labels-idx1-ubyte", "(4, 2)")):
        load_idx_dataset(tmp_path)


@pytest.mark.parametrize("present, missing, idx", [
    ([], "train-images", "idx3"),
    (["train-images-idx3-ubyte"], "train-labels", "idx1"),
])
def test_load_idx_dataset_lists_the_names_it_tried(tmp_path, present, missing, idx):
    for name in present:
        write_idx(tmp_path / name, np.zeros((1, 28, 28), np.uint8))
    tried = [f"{missing}{sep}{idx}-ubyte{gz}" for sep in "-." for gz in ("", ".gz")]
    with pytest.raises(FileNotFoundError, match=mentions(str(tmp_path), *tried)):
        load_idx_dataset(tmp_path)


# ---------------------------------------------------------------- the embedded digits

@pytest.mark.parametrize("train, n", [(True, 4000), (False, 1000)])
def test_digits_shapes_dtypes_and_stratified_classes(train, n):
    images, labels = load_digits(train)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() <= 9
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, n // 10))  # 400 / 100 per class


def test_digits_train_and_test_share_no_image():
    hashes = {split: {hashlib.sha256(img.tobytes()).hexdigest() for img in load_digits(split)[0]}
              for split in (True, False)}
    assert not hashes[True] & hashes[False]
    assert len(hashes[True]) + len(hashes[False]) == 5000  # and no digit appears twice anywhere


def test_digits_look_like_mnist():
    """Facts about MNIST, not about our file: the ink level, empty borders, the thinnest digit,
    and labels that agree with the images (a nearest-class-mean classifier does far better than chance)."""
    train_x, train_y = load_digits(True)
    test_x, test_y = load_digits(False)
    x = train_x / 255.0
    assert 0.11 < x.mean() < 0.15  # MNIST's mean intensity is 0.1307
    assert set(np.unique(train_x)) >= {0, 255}
    frame = np.ones((28, 28), bool)
    frame[2:-2, 2:-2] = False
    assert (x[:, frame] > 0).mean() < 0.01  # digits sit in the centre 20x20 box, with few strays
    ink = [x[train_y == c].mean() for c in range(10)]
    assert np.argmin(ink) == 1  # the one is the thinnest digit
    centroids = np.stack([x[train_y == c].mean(0).ravel() for c in range(10)])
    distances = ((test_x.reshape(-1, 1, 784) / 255.0 - centroids) ** 2).sum(-1)
    assert (distances.argmin(1) == test_y).mean() > 0.7  # ~0.8 on MNIST; shuffled labels would give ~0.1


def test_digits_file_is_small_and_plain():
    path = Path(digits.__file__).with_name(digits.RESOURCE)
    assert path.stat().st_size <= 2_000_000
    with np.load(path, allow_pickle=False) as npz:  # no pickled objects
        assert sorted(npz.files) == ["test_images", "test_labels", "train_images", "train_labels"]


@pytest.mark.parametrize("dtype", [np.float32, tg.float64])
@pytest.mark.parametrize("normalize", [True, False])
def test_digits_dataset_scales_and_normalises(dtype, normalize):
    images, labels = load_digits(False)
    ds = digits_dataset(train=False, dtype=dtype, normalize=normalize)
    x, y = ds.tensors
    expected = images[:, None].astype(np.float64) / 255
    if normalize:
        expected = (expected - 0.1307) / 0.3081
    assert x.shape == (1000, 1, 28, 28) and x.dtype == dtype and y.dtype == np.int64
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), labels)
    if normalize:  # the subset's own statistics are close to MNIST's
        assert abs(x.numpy().mean()) < 0.05 and abs(x.numpy().std() - 1) < 0.05
    images_batch, labels_batch = next(iter(DataLoader(ds, batch_size=64, shuffle=True, seed=0)))
    assert images_batch.shape == (64, 1, 28, 28) and labels_batch.shape == (64,)


def test_load_digits_explains_a_missing_data_file(monkeypatch):
    """An install without package data must say how to get the file, not fail deep inside NumPy."""
    monkeypatch.setattr(digits, "RESOURCE", "absent.npz")
    with pytest.raises(FileNotFoundError, match=mentions("absent.npz", "build_digits")):
        load_digits()


def test_digits_dataset_rejects_an_integer_dtype():
    with pytest.raises(TypeError, match="float"):
        digits_dataset(dtype=np.int64)


def test_build_split_is_stratified_disjoint_and_fixed():
    labels = np.repeat(np.arange(10), 50)
    train, test = build_digits.stratified_split(labels, 10, seed=build_digits.SPLIT_SEED)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(500))
    np.testing.assert_array_equal(np.bincount(labels[test]), np.full(10, 10))
    again = build_digits.stratified_split(labels, 10, seed=build_digits.SPLIT_SEED)
    assert all(np.array_equal(a, b) for a, b in zip((train, test), again))
    assert not np.array_equal(np.sort(labels[test]), labels[test])  # stored order mixes the classes


def test_build_writes_the_same_bytes_for_the_same_arrays(tmp_path):
    arrays = {"a": np.arange(10, dtype=np.uint8), "b": np.eye(3)}
    first = build_digits.savez_reproducible(tmp_path / "1.npz", **arrays)
    second = build_digits.savez_reproducible(tmp_path / "2.npz", **arrays)
    assert first == second == (tmp_path / "1.npz").read_bytes()
    with np.load(tmp_path / "1.npz") as npz:
        for key, value in arrays.items():
            np.testing.assert_array_equal(npz[key], value)
