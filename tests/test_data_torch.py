"""tinygrad_cnn.utils.data and tinygrad_cnn.nn.utils against PyTorch: Subset, ConcatDataset,
random_split's lengths, the samplers, DataLoader's sampler / batch_sampler / collate_fn / drop_last
and the argument errors, each built by the same call on both sides; gradient clipping and flat
parameter vectors in float64. Random orders come from different generators on the two sides, so
they are compared by their properties (a permutation, reproducible for a seed), never element-wise."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
import tinygrad_cnn.nn.utils as nn_utils
import tinygrad_cnn.utils.data as data
from tinygrad_cnn import Tensor

torch = pytest.importorskip("torch")
import torch.utils.data as torch_data  # noqa: E402 (after the importorskip)

PUBLIC = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler",
          "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate",
          "get_worker_info", "random_split"]
NN_UTILS = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
            "parameters_to_vector", "vector_to_parameters"]


def mentions(*words: str) -> str:
    """A regex matching a message that contains every one of `words`, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(str(w))})" for w in words)


def numbered(n: int, offset: int = 0) -> tuple[data.TensorDataset, torch_data.TensorDataset]:
    """The same n samples on both sides: features (2,) and a label that spell `offset + index`."""
    x = (np.arange(2 * n, dtype=np.float64).reshape(n, 2) + 2 * offset)
    y = np.arange(n, dtype=np.int64) + offset
    return data.TensorDataset(x, y), torch_data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def plain(value):
    """A batch or sample of either library as nested lists of NumPy arrays (tuple vs list does not matter:
    PyTorch collates tuples into lists)."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Tensor):
        return value.detach().numpy()
    if isinstance(value, torch.Tensor):
        return value.numpy()
    return value


def assert_same(ours, theirs) -> None:
    ours, theirs = plain(ours), plain(theirs)
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys()
        for k in theirs:
            assert_same(ours[k], theirs[k])
    else:
        assert np.asarray(ours).dtype == np.asarray(theirs).dtype
        np.testing.assert_array_equal(ours, theirs)


def raises_like_torch(error: type[Exception], ours, theirs) -> None:
    """Both calls raise `error` (each a zero-argument callable)."""
    for call in (theirs, ours):
        with pytest.raises(error):
            call()


# ================================================================ module paths

def test_utils_data_has_torchs_names_and_reexports_the_data_package():
    import tinygrad_cnn.data
    for name in PUBLIC:
        assert hasattr(torch_data, name), name
        assert getattr(data, name) is getattr(tinygrad_cnn.data, name), name
    assert sorted(data.__all__) == sorted(PUBLIC)
    assert all(hasattr(torch.nn.utils, name) for name in NN_UTILS)
    assert all(callable(getattr(nn_utils, name)) for name in NN_UTILS)


# ================================================================ Subset, ConcatDataset, random_split

@given(n=st.integers(0, 10), data_=st.data())
def test_subset_indexes_like_torch(n, data_):
    ours_ds, torch_ds = numbered(n)
    indices = data_.draw(st.lists(st.integers(-n, n - 1), max_size=8) if n else st.just([]), label="indices")
    ours, theirs = data.Subset(ours_ds, indices), torch_data.Subset(torch_ds, indices)
    assert len(ours) == len(theirs) == len(indices)
    for i in range(-len(indices), len(indices)):
        assert_same(ours[i], theirs[i])
    if indices:
        picks = data_.draw(st.lists(st.integers(0, len(indices) - 1), min_size=1, max_size=4), label="picks")
        assert_same(ours[picks], theirs[picks])  # a list of positions at once
    raises_like_torch(IndexError, lambda: ours[len(indices)], lambda: theirs[len(indices)])
    assert len(list(ours)) == len(indices)  # so plain iteration stops at the end


@given(sizes=st.lists(st.integers(0, 5), min_size=1, max_size=4), data_=st.data())
def test_concat_dataset_indexes_like_torch(sizes, data_):
    pairs = [numbered(size, offset=100 * k) for k, size in enumerate(sizes)]
    ours = data.ConcatDataset(p[0] for p in pairs)  # any iterable, as torch
    theirs = torch_data.ConcatDataset([p[1] for p in pairs])
    total = sum(sizes)
    assert len(ours) == len(theirs) == total and ours.cumulative_sizes == theirs.cumulative_sizes
    if total:
        i = data_.draw(st.integers(-total, total - 1), label="index")
        assert_same(ours[i], theirs[i])
    assert_same([y for _, y in ours], [y for _, y in theirs])
    raises_like_torch(IndexError, lambda: ours[total], lambda: theirs[total])


def test_datasets_add_up_to_a_concat_dataset():
    (a, _), (b, _) = numbered(2), numbered(3, offset=10)
    both = a + b
    assert isinstance(both, data.ConcatDataset) and len(both) == 5
    assert [int(y.item()) for _, y in both] == [0, 1, 10, 11, 12]
    with pytest.raises(IndexError, match=mentions("ConcatDataset", "-6", "5")):
        both[-6]  # PyTorch: ValueError for a negative index, IndexError for a positive one


@pytest.mark.parametrize("args, error, words", [
    (([],), ValueError, ["ConcatDataset", "empty"]),
    (([5],), TypeError, ["ConcatDataset", "datasets[0]", "int"]),
])
def test_concat_dataset_rejects(args, error, words):
    with pytest.raises(error, match=mentions(*words)):
        data.ConcatDataset(*args)


def split_lengths(ours_or_torch, n: int, lengths: list) -> list[int] | type[Exception]:
    """The lengths of the splits random_split makes, or the type of the error it raises."""
    dataset = range(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn about empty splits
        try:
            return [len(s) for s in ours_or_torch(dataset, lengths)]
        except (ValueError, TypeError) as e:
            return type(e)


@given(n=st.integers(0, 30), data_=st.data())
def test_random_split_lengths_like_torch(n, data_):
    """Integer lengths, fractions (PyTorch's rounding) and lengths that do not add up: the same result."""
    kind = data_.draw(st.sampled_from(["ints", "fractions", "wrong"]), label="kind")
    if kind == "ints":
        cuts = sorted(data_.draw(st.lists(st.integers(0, n), max_size=3), label="cuts"))
        lengths = np.diff([0, *cuts, n]).tolist()
    elif kind == "fractions":
        weights = data_.draw(st.lists(st.integers(0, 9), min_size=1, max_size=5).filter(any), label="weights")
        lengths = [w / sum(weights) for w in weights]  # may sum to 1 +- an ulp, which both treat alike
    else:
        lengths = data_.draw(st.lists(st.integers(0, n + 2), min_size=1, max_size=3)
                             .filter(lambda ls: sum(ls) != n and sum(ls) != 1), label="lengths")
    ours = split_lengths(data.random_split, n, lengths)
    assert ours == split_lengths(torch_data.random_split, n, lengths)
    assert kind == "wrong" or ours != ValueError or sum(lengths) > 1  # the valid cases really were valid


@pytest.mark.parametrize("n, lengths", [(10, [0.3, 0.3, 0.4]), (11, [0.5, 0.5]), (7, [0.1, 0.1, 0.8]),
                                        (5, [0.0, 1.0]), (10, [1.5, -0.5])])
def test_random_split_fractions_like_torch(n, lengths):
    assert split_lengths(data.random_split, n, lengths) == split_lengths(torch_data.random_split, n, lengths)


@pytest.mark.filterwarnings("ignore:random_split. length of split:UserWarning")  # n // 3 == 0 for small n
@given(n=st.integers(0, 25), seed=st.integers(0, 2**32 - 1))
def test_random_split_partitions_the_dataset_reproducibly(n, seed):
    ds, _ = numbered(n)
    lengths = [n // 3, n - n // 3]
    pieces = data.random_split(ds, lengths, generator=np.random.default_rng(seed))
    again = data.random_split(ds, lengths, generator=np.random.default_rng(seed))
    assert [p.indices for p in pieces] == [p.indices for p in again]
    assert all(isinstance(p, data.Subset) and p.dataset is ds for p in pieces)
    ids = [int(y.item()) for piece in pieces for _, y in piece]  # the labels spell the sample indices
    assert sorted(ids) == list(range(n))
    tg.manual_seed(seed)  # generator=None draws from the global generator
    first = [p.indices for p in data.random_split(ds, lengths)]
    tg.manual_seed(seed)
    assert [p.indices for p in data.random_split(ds, lengths)] == first


def test_random_split_rejects():
    ds, torch_ds = numbered(10)
    raises_like_torch(ValueError, lambda: data.random_split(ds, [3, 6]),
                      lambda: torch_data.random_split(torch_ds, [3, 6]))
    with pytest.raises(ValueError, match=mentions("random_split", "9", "10")):
        data.random_split(ds, [3, 6])
    with pytest.raises(ValueError, match=mentions("random_split", "index 1", "between 0 and 1", "1.2")):
        data.random_split(ds, [0.0, 1.2, -0.2])
    with pytest.raises(ValueError, match=mentions("random_split", "non-negative")):
        data.random_split(ds, [-1, 11])  # PyTorch makes a split of length -1
    with pytest.raises(TypeError, match=mentions("random_split", "Generator")):
        data.random_split(ds, [5, 5], generator=torch.Generator())
    with pytest.warns(UserWarning, match="index 1 is 0"):
        data.random_split(ds, [1.0, 0.0])


# ================================================================ samplers

@given(n=st.integers(0, 12), batch_size=st.integers(1, 5), drop_last=st.booleans(),
       order=st.lists(st.integers(0, 20), max_size=12))
def test_sequential_and_batch_samplers_like_torch(n, batch_size, drop_last, order):
    ours, theirs = data.SequentialSampler(range(n)), torch_data.SequentialSampler(range(n))
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    for our_source, their_source in ((ours, theirs), (order, order)):  # a BatchSampler takes any iterable
        ours_b = data.BatchSampler(our_source, batch_size, drop_last)
        theirs_b = torch_data.BatchSampler(their_source, batch_size, drop_last)
        assert list(ours_b) == list(theirs_b) and len(ours_b) == len(theirs_b)


@given(n=st.integers(1, 12), num_samples=st.one_of(st.none(), st.integers(1, 30)), replacement=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_random_sampler_draws(n, num_samples, replacement, seed):
    """Lengths as PyTorch; without replacement whole permutations (then part of one); reproducible for a seed."""
    ours = data.RandomSampler(range(n), replacement, num_samples, generator=np.random.default_rng(seed))
    theirs = torch_data.RandomSampler(range(n), replacement, num_samples)
    drawn = list(ours)
    assert len(ours) == len(theirs) == len(drawn) == len(list(theirs))
    assert all(isinstance(i, int) and 0 <= i < n for i in drawn)
    if not replacement:
        for start in range(0, len(drawn), n):
            block = drawn[start:start + n]
            assert len(set(block)) == len(block)
    assert drawn == list(data.RandomSampler(range(n), replacement, num_samples, np.random.default_rng(seed)))


def test_random_samplers_without_a_generator_follow_manual_seed():
    samplers = [data.RandomSampler(range(20)), data.SubsetRandomSampler(list(range(5, 25)))]
    tg.manual_seed(4)  # after construction: looked up at iter()
    first = [list(s) for s in samplers]
    assert all(list(s) != f for s, f in zip(samplers, first))  # each iter() draws afresh: 20! orders
    tg.manual_seed(4)
    assert [list(s) for s in samplers] == first
    assert sorted(first[0]) == list(range(20)) and sorted(first[1]) == list(range(5, 25))


def test_subset_random_sampler_permutes_its_indices():
    indices = [7, 3, 3, 9]
    ours = data.SubsetRandomSampler(indices, generator=np.random.default_rng(0))
    assert len(ours) == len(torch_data.SubsetRandomSampler(indices)) == 4
    assert sorted(ours) == sorted(indices)


@pytest.mark.parametrize("make, error", [
    (lambda m: m.RandomSampler(range(3), replacement="yes"), TypeError),
    (lambda m: m.RandomSampler(range(3), num_samples=0), ValueError),
    (lambda m: m.RandomSampler(range(3), num_samples=-2), ValueError),
    (lambda m: m.RandomSampler(range(3), num_samples=1.5), ValueError),
    (lambda m: m.BatchSampler(range(3), 0, False), ValueError),
    (lambda m: m.BatchSampler(range(3), 2.0, False), ValueError),
    (lambda m: m.BatchSampler(range(3), True, False), ValueError),
    (lambda m: m.BatchSampler(range(3), 2, "no"), ValueError),
])
def test_sampler_errors_like_torch(make, error):
    raises_like_torch(error, lambda: make(data), lambda: make(torch_data))
    with pytest.raises(error, match=r"Sampler: \w+ should be"):  # our message names the class, then as PyTorch
        make(data)


def test_sampler_is_an_abstract_base_for_your_own():
    class Evens(data.Sampler):
        def __init__(self, data_source):
            super().__init__(data_source)  # older PyTorch code passes data_source up; accepted
            self.n = len(data_source)

        def __iter__(self):
            return iter(range(0, self.n, 2))

    with pytest.raises(TypeError):
        data.Sampler()
    assert list(data.BatchSampler(Evens(range(7)), 3, False)) == [[0, 2, 4], [6]]
    with pytest.raises(TypeError, match="Generator"):
        data.RandomSampler(range(3), generator=torch.Generator())


# ================================================================ DataLoader with an explicit order

def loaders(n: int, **kwargs):
    ours_ds, torch_ds = numbered(n)
    return data.DataLoader(ours_ds, **kwargs), torch_data.DataLoader(torch_ds, **kwargs)


def assert_same_epochs(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    assert_same(list(ours), list(theirs))


@given(n=st.integers(1, 15), batch_size=st.integers(1, 5), drop_last=st.booleans(), data_=st.data())
def test_loader_with_a_sampler_like_torch(n, batch_size, drop_last, data_):
    order = data_.draw(st.lists(st.integers(0, n - 1), max_size=2 * n), label="order")  # repeats allowed
    assert_same_epochs(*loaders(n, batch_size=batch_size, sampler=order, drop_last=drop_last))
    ours, theirs = loaders(n, batch_size=batch_size, sampler=data.SequentialSampler(range(n)), drop_last=drop_last)
    assert_same_epochs(ours, theirs)
    assert_same_epochs(ours, data.DataLoader(ours.dataset, batch_size=batch_size, drop_last=drop_last))


@given(n=st.integers(1, 12), data_=st.data())
def test_loader_with_a_batch_sampler_like_torch(n, data_):
    batches = data_.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=1, max_size=4), max_size=5), label="batches")
    ours, theirs = loaders(n, batch_sampler=batches)
    assert_same_epochs(ours, theirs)
    assert (ours.batch_size, ours.drop_last) == (theirs.batch_size, theirs.drop_last) == (None, False)
    assert_same_epochs(*loaders(n, batch_sampler=data.BatchSampler(range(n), 3, True)))


@given(n=st.integers(1, 12), batch_size=st.integers(1, 4), drop_last=st.booleans(), shuffle=st.booleans())
def test_loader_with_a_collate_fn_like_torch(n, batch_size, drop_last, shuffle):
    """collate_fn gets the list of samples; the labels it returns show which, and that all are seen once."""
    def labels(items):
        return [int(y) for _, y in items]

    ours, theirs = loaders(n, batch_size=batch_size, drop_last=drop_last, shuffle=shuffle, collate_fn=labels)
    our_batches, their_batches = list(ours), list(theirs)
    assert [len(b) for b in our_batches] == [len(b) for b in their_batches]
    if shuffle:
        our_batches, their_batches = sorted(sum(our_batches, [])), sorted(sum(their_batches, []))
    assert len(ours) == len(theirs)
    if not (shuffle and drop_last):  # a dropped tail differs with the order
        assert our_batches == their_batches


class Records:
    """A plain map-style dataset (no base class) of dicts with a nested tuple, on either side."""

    def __init__(self, tensor_type, n: int = 7):
        self.make, self.n = tensor_type, n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": self.make(np.full((2, 2), i, dtype=np.float32)), "pair": (np.int64(i), np.arange(3) + i)}

    def __len__(self):
        return self.n


@pytest.mark.parametrize("kwargs", [dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                    dict(sampler=[6, 0, 6, 2], batch_size=2), dict(batch_sampler=[[1], [5, 4, 3]])])
def test_default_collate_of_generic_items_like_torch(kwargs):
    ours = data.DataLoader(Records(Tensor), **kwargs)
    theirs = torch_data.DataLoader(Records(torch.from_numpy), **kwargs)
    assert_same_epochs(ours, theirs)
    items = [Records(Tensor)[i] for i in (2, 4)]
    assert_same(data.default_collate(items), torch_data.default_collate([Records(torch.from_numpy)[i] for i in (2, 4)]))


def test_loader_over_subsets_batches_like_torch_and_like_its_items():
    """random_split pieces (Subsets of a TensorDataset) take the fast path; it must give what collating
    the items gives, and what PyTorch gives for the same indices."""
    ours_ds, torch_ds = numbered(20)
    piece = data.random_split(ours_ds, [0.25, 0.75], generator=np.random.default_rng(0))[1]
    nested = data.Subset(piece, [14, 0, 3, 3, 7])
    for subset in (piece, nested):
        torch_subset = torch_data.Subset(torch_ds, [piece.indices[i] for i in subset.indices]
                                         if subset is nested else subset.indices)
        fast = data.DataLoader(subset, batch_size=4)
        slow = data.DataLoader(subset, batch_size=4, collate_fn=lambda items: data.default_collate(items))
        assert_same_epochs(fast, torch_data.DataLoader(torch_subset, batch_size=4))
        assert_same_epochs(fast, slow)


@pytest.mark.parametrize("kwargs", [
    dict(sampler=[0, 1], shuffle=True),
    dict(batch_sampler=[[0]], batch_size=2),
    dict(batch_sampler=[[0]], shuffle=True),
    dict(batch_sampler=[[0]], sampler=[0]),
    dict(batch_sampler=[[0]], drop_last=True),
    dict(num_workers=-1),
])
def test_loader_option_errors_like_torch(kwargs):
    ours_ds, torch_ds = numbered(3)
    raises_like_torch(ValueError, lambda: data.DataLoader(ours_ds, **kwargs),
                      lambda: torch_data.DataLoader(torch_ds, **kwargs))
    with pytest.raises(ValueError, match=mentions("DataLoader", *[k for k in kwargs if k != "batch_sampler"])):
        data.DataLoader(ours_ds, **kwargs)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(num_workers=1.0), TypeError, ["num_workers", "1.0"]),
    (dict(seed=1, generator=np.random.default_rng(1)), ValueError, ["seed", "generator"]),
    (dict(generator=torch.Generator()), TypeError, ["generator", "numpy.random.Generator"]),
    (dict(generator=1), TypeError, ["generator", "int"]),
    (dict(collate_fn="stack"), TypeError, ["collate_fn", "str"]),
    (dict(worker_init_fn=3), TypeError, ["worker_init_fn", "int"]),
    (dict(sampler=5), TypeError, ["sampler", "int"]),
    (dict(batch_sampler=5), TypeError, ["batch_sampler", "int"]),
    (dict(pin_memory="yes"), TypeError, ["pin_memory"]),
])
def test_loader_rejects(kwargs, error, words):
    with pytest.raises(error, match=mentions(*words)):
        data.DataLoader(numbered(3)[0], **kwargs)


@pytest.mark.filterwarnings("ignore:'pin_memory' argument:UserWarning")  # PyTorch's, without a GPU
def test_loader_accepts_pytorchs_single_process_options():
    calls = []
    ours, theirs = loaders(5, batch_size=2, num_workers=0, pin_memory=True, worker_init_fn=calls.append)
    assert_same_epochs(ours, theirs)
    assert calls == []  # as PyTorch: worker_init_fn runs only in worker processes


@pytest.mark.parametrize("kwargs", [dict(), dict(shuffle=True), dict(sampler=[2, 0]), dict(batch_sampler=[[1]])])
def test_loader_builds_the_samplers_torch_builds(kwargs):
    ours, theirs = loaders(3, **kwargs)
    for name in ("sampler", "batch_sampler"):
        assert type(getattr(ours, name)).__name__ == type(getattr(theirs, name)).__name__, name


def test_loader_generator_is_a_numpy_generator_it_draws_from():
    ds = numbered(30)[0]

    def epochs(loader):
        return [[int(i) for _, y in loader for i in y.numpy()] for _ in range(2)]

    first = epochs(data.DataLoader(ds, batch_size=4, shuffle=True, generator=np.random.default_rng(3)))
    assert epochs(data.DataLoader(ds, batch_size=4, shuffle=True, generator=np.random.default_rng(3))) == first
    assert epochs(data.DataLoader(ds, batch_size=4, shuffle=True, seed=3)) == first  # seed=n: default_rng(n)
    assert first[0] != first[1] and sorted(first[0]) == list(range(30))
    g = np.random.default_rng(3)
    loader = data.DataLoader(ds, batch_size=4, shuffle=True, generator=g)
    next(iter(loader))
    state = loader.state_dict()
    after = epochs(loader)  # the epochs after the one interrupted
    g.bit_generator.state = np.random.default_rng(99).bit_generator.state  # scrambled...
    loader.load_state_dict(state)  # ...and restored with the loader
    next(iter(loader))
    assert epochs(loader) == after


@pytest.mark.parametrize("kwargs", [dict(sampler=[0, 1]), dict(batch_sampler=[[0, 1]])])
def test_a_loader_with_its_own_sampler_cannot_be_checkpointed(kwargs):
    loader = data.DataLoader(numbered(3)[0], **kwargs)
    for call in (loader.state_dict, lambda: loader.load_state_dict({})):
        with pytest.raises(RuntimeError, match=mentions("sampler", "checkpointed")):
            call()


# ================================================================ nn.utils: clipping, flat vectors

GRADS = st.lists(st.tuples(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), st.booleans()), min_size=1,
                 max_size=4)
NORM_TYPES = st.sampled_from([1.0, 2.0, float("inf"), "inf", 2])


def parameter_pairs(shapes_and_grads, seed: int = 0, scale: float = 3.0):
    """The same float64 parameters and gradients on both sides; a False flag leaves that .grad None."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape, has_grad in shapes_and_grads:
        p, g = rng.standard_normal(shape), scale * rng.standard_normal(shape)
        ours.append(tg.nn.Parameter(p.copy()))
        theirs.append(torch.tensor(p, requires_grad=True))
        if has_grad:
            ours[-1].grad, theirs[-1].grad = Tensor(g.copy()), torch.tensor(g)
    return ours, theirs


def assert_grads_equal(ours, theirs) -> None:
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-15)


@given(grads=GRADS, norm_type=NORM_TYPES, max_norm=st.floats(0.01, 20.0), seed=st.integers(0, 99))
def test_clip_grad_norm_like_torch(grads, norm_type, max_norm, seed):
    ours, theirs = parameter_pairs(grads, seed)
    before = [p.grad for p in ours]
    total = nn_utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, Tensor) and total.shape == () and total.dtype == expected.numpy().dtype  # f32 if no grad
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    assert_grads_equal(ours, theirs)
    assert all(p.grad is g for p, g in zip(ours, before))  # in place: the same .grad tensors


@given(grads=GRADS, norm_type=NORM_TYPES, seed=st.integers(0, 99))
def test_get_total_norm_and_clip_grads_with_norm_like_torch(grads, norm_type, seed):
    ours, theirs = parameter_pairs(grads, seed)
    total = nn_utils.get_total_norm([p.grad for p in ours if p.grad is not None], norm_type)
    expected = torch.nn.utils.get_total_norm([q.grad for q in theirs if q.grad is not None], norm_type)
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    nn_utils.clip_grads_with_norm_(ours, 0.5, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.5, expected)
    assert_grads_equal(ours, theirs)


@given(grads=GRADS.filter(lambda gs: any(has_grad for _, has_grad in gs)), clip_value=st.floats(0.0, 5.0),
       seed=st.integers(0, 99))  # PyTorch's clip_grad_value_ fails when no parameter has a gradient
def test_clip_grad_value_like_torch(grads, clip_value, seed):
    ours, theirs = parameter_pairs(grads, seed)
    assert nn_utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    assert_grads_equal(ours, theirs)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("error_if_nonfinite", [True, False])
def test_clip_grad_norm_of_a_nonfinite_gradient_like_torch(bad, error_if_nonfinite):
    ours, theirs = parameter_pairs([((3,), True), ((2,), True)])
    ours[1].grad.numpy()[0] = bad
    theirs[1].grad[0] = bad
    if error_if_nonfinite:
        raises_like_torch(RuntimeError, lambda: nn_utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True),
                          lambda: torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True))
        with pytest.raises(RuntimeError, match=mentions("clip_grad_norm_", "non-finite", "error_if_nonfinite")):
            nn_utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
        return
    with np.errstate(invalid="ignore"):
        total = nn_utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_array_equal(total.numpy(), expected.numpy())
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())  # NaN where PyTorch has NaN


def test_clip_on_a_model_after_backward_and_edge_cases():
    model = tg.nn.Linear(3, 2)
    model(tg.ones(4, 3)).sum().backward()
    total = nn_utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    assert total.item() > 0.1
    np.testing.assert_allclose(nn_utils.get_total_norm([p.grad for p in model.parameters()]).item(), 0.1, rtol=1e-4)
    single = tg.nn.Parameter(np.array([3.0, 4.0]))
    single.grad = Tensor(np.array([3.0, 4.0]))
    assert nn_utils.clip_grad_norm_(single, 1.0).item() == 5.0  # one Tensor is accepted too
    no_grads = nn_utils.clip_grad_norm_([tg.nn.Parameter(np.zeros(2))], 1.0)
    assert no_grads.item() == torch.nn.utils.clip_grad_norm_([torch.zeros(2, requires_grad=True)], 1.0).item() == 0
    assert no_grads.dtype == np.float32
    with pytest.warns(UserWarning, match="empty generator"):
        nn_utils.clip_grad_norm_((p for p in []), 1.0)
    with pytest.raises(TypeError, match=mentions("clip_grad_value_", "parameters[1]", "ndarray")):
        nn_utils.clip_grad_value_([single, np.zeros(2)], 1.0)
    with pytest.raises(ValueError, match=mentions("clip_grad_norm_", "norm_type", "fro")):
        nn_utils.clip_grad_norm_(single, 1.0, norm_type="fro")


@given(shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), min_size=1, max_size=4),
       seed=st.integers(0, 99))
def test_parameters_to_vector_and_back_like_torch(shapes, seed):
    ours, theirs = parameter_pairs([(s, False) for s in shapes], seed)
    vec, torch_vec = nn_utils.parameters_to_vector(ours), torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(vec.detach().numpy(), torch_vec.detach().numpy())
    weights = np.random.default_rng(seed).standard_normal(vec.shape)
    (vec * Tensor(weights)).sum().backward()  # differentiable: the gradient reaches each parameter
    (torch_vec * torch.from_numpy(weights)).sum().backward()
    assert_grads_equal(ours, theirs)
    new = np.arange(vec.shape[0], dtype=np.float64)
    nn_utils.vector_to_parameters(Tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new.copy()), theirs)
    for p, q in zip(ours, theirs):
        assert p.shape == tuple(q.shape) and p.requires_grad and p.is_leaf
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_vector_to_parameters_rejects():
    params = [tg.nn.Parameter(np.zeros((2, 2))), tg.nn.Parameter(np.zeros(3))]
    raises_like_torch(TypeError, lambda: nn_utils.vector_to_parameters(np.zeros(7), params),
                      lambda: torch.nn.utils.vector_to_parameters(np.zeros(7), [torch.zeros(7)]))
    for vec in (Tensor(np.zeros(6)), Tensor(np.zeros((7, 1)))):
        with pytest.raises(ValueError, match=mentions("vector_to_parameters", "7 elements", str(vec.shape))):
            nn_utils.vector_to_parameters(vec, params)
    with pytest.raises(ValueError, match=mentions("parameters_to_vector", "at least one")):
        nn_utils.parameters_to_vector([])


# ================================================================ WeightedRandomSampler

@settings(max_examples=20, deadline=None)
@given(weights=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=6).filter(lambda w: sum(w) > 0.5),
       seed=st.integers(0, 2**32 - 1))
def test_weighted_sampler_draws_in_proportion_to_the_weights(weights, seed):
    draws = np.array(list(data.WeightedRandomSampler(weights, 20_000, generator=np.random.default_rng(seed))))
    frequencies = np.bincount(draws, minlength=len(weights)) / len(draws)
    expected = np.array(weights) / sum(weights)
    assert np.all(frequencies[expected == 0] == 0)
    # each frequency within 5 standard deviations of its binomial expectation
    assert np.all(np.abs(frequencies - expected) <= 5 * np.sqrt(expected * (1 - expected) / len(draws)) + 1e-12)


def test_weighted_sampler_without_replacement_draws_each_nonzero_index_once():
    sampler = data.WeightedRandomSampler(tg.tensor([1.0, 0.0, 3.0, 2.0]), 3, replacement=False,
                                         generator=tg.Generator().manual_seed(0))
    assert sorted(sampler) == [0, 2, 3] and len(sampler) == 3
    first_draws = [next(iter(data.WeightedRandomSampler([1.0, 100.0], 1, generator=np.random.default_rng(s))))
                   for s in range(50)]
    assert first_draws.count(1) > 40  # index 1 carries 100/101 of the weight


@pytest.mark.parametrize("args, kwargs", [(([1.0, 2.0], 0), {}), (([1.0, 2.0], 2.5), {}),
                                          (([[1.0, 2.0]], 2), {}), (([1.0, 2.0], 2), {"replacement": "a"})])
def test_weighted_sampler_argument_errors_like_torch(args, kwargs):
    raises_like_torch(ValueError, lambda: data.WeightedRandomSampler(*args, **kwargs),
                      lambda: torch_data.WeightedRandomSampler(*args, **kwargs))


def test_weighted_sampler_refuses_weights_torch_cannot_draw_from():
    for weights in ([-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(RuntimeError):
            list(torch_data.WeightedRandomSampler(weights, 2))
        with pytest.raises(RuntimeError, match="WeightedRandomSampler: weights"):
            data.WeightedRandomSampler(weights, 2)


def test_weighted_sampler_without_replacement_past_the_nonzero_weights_differs_from_torch():
    """PyTorch draws the zero-weight index once the others are used up; we refuse (listed on the
    Coming from PyTorch page)."""
    assert sorted(torch_data.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)) == [0, 1]
    with pytest.raises(RuntimeError, match="WeightedRandomSampler: cannot draw num_samples=2"):
        data.WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
