"""DataLoader(num_workers > 0): the same batches as num_workers=0 and as PyTorch's workers, per-worker
seeding checked against the generators seeded by hand, errors raised in the main process, and worker
processes that are always gone afterwards (read from /proc, so zombies count too)."""
from __future__ import annotations

import gc
import os
import random
import re
import signal
import sys
import threading
import time

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.utils.data as data

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads child processes from /proc")


def children() -> set[int]:
    """Pids of this process's children, running or zombie, but for multiprocessing's resource tracker (which
    'spawn' starts once, for the whole session)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read()
            except OSError:
                continue
            # the field after the state is the ppid
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"resource_tracker" not in command:
                found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_workers_left():
    """Every test must leave no worker process behind, running or zombie."""
    before = children()
    yield
    gc.collect()  # loaders and iterators a test dropped
    assert children() <= before


def mentions(*words: str) -> str:
    return "(?s)" + "".join(f"(?=.*{re.escape(str(w))})" for w in words)


def numbered(n: int) -> data.TensorDataset:
    """Sample i is (features [2i, 2i+1], label i)."""
    return data.TensorDataset(np.arange(2 * n, dtype=np.float32).reshape(n, 2), np.arange(n))


class Items(data.Dataset):
    """A dataset with a __getitem__ of its own (so batches go through default_collate): item i is
    (i as float32, [i, -i]), plus whatever `extra(i)` returns."""

    def __init__(self, n: int, extra=None) -> None:
        self.n, self.extra = n, extra

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        item = (np.float32(i), np.array([i, -i]))
        return item if self.extra is None else item + (self.extra(i),)


def arrays(batch) -> list:
    return [t.numpy() for t in batch]


def epochs(loader, count: int = 2) -> list:
    return [[arrays(batch) for batch in loader] for _ in range(count)]


def assert_same(first: list, second: list) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        if isinstance(a, list):
            assert_same(a, b)
        else:
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


# ------------------------------------------------------------ same batches as without workers


@pytest.mark.parametrize("num_workers, persistent", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("make", [lambda: numbered(23), lambda: Items(23)], ids=["TensorDataset", "Dataset"])
def test_batches_and_order_equal_single_process(make, num_workers, persistent):
    kwargs = dict(batch_size=4, shuffle=True, seed=5, drop_last=False)
    expected = epochs(data.DataLoader(make(), **kwargs), 3)
    loader = data.DataLoader(make(), num_workers=num_workers, persistent_workers=persistent, **kwargs)
    assert loader.prefetch_factor == 2  # PyTorch's default with workers
    assert_same(epochs(loader, 3), expected)
    del loader


def test_global_generator_draws_the_same_orders_as_without_workers():
    tg.manual_seed(3)
    expected = epochs(data.DataLoader(numbered(11), batch_size=3, shuffle=True))
    after = tg.rng.get_generator().bit_generator.state
    tg.manual_seed(3)
    assert_same(epochs(data.DataLoader(numbered(11), batch_size=3, shuffle=True, num_workers=2)), expected)
    assert tg.rng.get_generator().bit_generator.state == after  # the workers' seeds did not consume draws


@pytest.mark.parametrize("prefetch_factor", [1, 3])
def test_custom_collate_sampler_and_prefetch(prefetch_factor):
    def pairs(items):
        return [(float(x), int(y[1])) for x, y in items]

    kwargs = dict(batch_size=3, sampler=[5, 1, 1, 7, 0, 3, 2], collate_fn=pairs)
    ours = list(data.DataLoader(Items(8), num_workers=2, prefetch_factor=prefetch_factor, **kwargs))
    assert ours == list(data.DataLoader(Items(8), **kwargs)) == [[(5.0, -5), (1.0, -1), (1.0, -1)],
                                                                 [(7.0, -7), (0.0, 0), (3.0, -3)], [(2.0, -2)]]


def test_in_order_false_yields_every_batch_once():
    ours = [y.tolist() for _, y in data.DataLoader(numbered(10), batch_size=3, num_workers=2, in_order=False)]
    assert sorted(ours) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_checkpoint_mid_epoch_with_workers_resumes_as_without():
    kwargs = dict(batch_size=2, shuffle=True, seed=9)
    straight = epochs(data.DataLoader(numbered(9), **kwargs), 2)
    loader = data.DataLoader(numbered(9), num_workers=2, **kwargs)
    iterator = iter(loader)
    taken = [arrays(next(iterator)) for _ in range(2)]  # batches 3 and 4 are prefetched, not yielded
    state = loader.state_dict()
    del iterator
    assert state["position"] == 2
    resumed = data.DataLoader(numbered(9), num_workers=2, **kwargs)
    resumed.load_state_dict(state)
    rest = [arrays(batch) for batch in resumed]
    assert_same([taken + rest, epochs(resumed, 1)[0]], straight)
    unordered = data.DataLoader(numbered(9), num_workers=2, in_order=False, **kwargs)
    with pytest.raises(RuntimeError, match=mentions("state_dict", "in_order=False")):
        unordered.state_dict()


def test_spawn_context_gives_the_same_batches():
    kwargs = dict(batch_size=4, shuffle=True, seed=2)
    # one worker: a spawned process imports NumPy and tinygrad_cnn afresh, which is the slow part
    loader = data.DataLoader(numbered(10), num_workers=1, multiprocessing_context="spawn", **kwargs)
    assert_same(epochs(loader, 1), epochs(data.DataLoader(numbered(10), **kwargs), 1))


# ------------------------------------------------------------ against PyTorch


def test_batches_equal_pytorchs_workers():
    torch = pytest.importorskip("torch")
    x, y = np.arange(26, dtype=np.float64).reshape(13, 2), np.arange(13)
    torch_ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    theirs = [[t.numpy() for t in b] for b in torch.utils.data.DataLoader(torch_ds, batch_size=4, num_workers=2)]
    theirs_single = [[t.numpy() for t in b] for b in torch.utils.data.DataLoader(torch_ds, batch_size=4)]
    assert_same(theirs, theirs_single)
    ours = [arrays(b) for b in data.DataLoader(data.TensorDataset(x, y), batch_size=4, num_workers=2)]
    assert_same(ours, theirs)  # SequentialSampler: the same values, dtypes and batches
    shuffled = data.DataLoader(data.TensorDataset(x, y), batch_size=4, shuffle=True, num_workers=2, seed=0)
    torch_shuffled = torch.utils.data.DataLoader(torch_ds, batch_size=4, shuffle=True, num_workers=2)
    # random orders come from different generators: compare the samples of an epoch as sets
    ours_rows = sorted(map(tuple, np.concatenate([b[0].numpy() for b in shuffled]).tolist()))
    their_rows = sorted(map(tuple, np.concatenate([b[0].numpy() for b in torch_shuffled]).tolist()))
    assert ours_rows == their_rows == sorted(map(tuple, x.tolist()))


@pytest.mark.parametrize("kwargs", [
    dict(prefetch_factor=2), dict(persistent_workers=True), dict(timeout=-1),
    dict(multiprocessing_context="bogus", num_workers=2), dict(multiprocessing_context="spawn"),
])
def test_option_errors_like_torch(kwargs):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(3)), **kwargs)
    with pytest.raises(ValueError, match=mentions("DataLoader", next(iter(kwargs)))) as ours:
        data.DataLoader(numbered(3), **kwargs)
    first_words = str(theirs.value).split()[:2]
    assert all(word in str(ours.value) for word in first_words), (ours.value, theirs.value)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(num_workers=2, prefetch_factor=0), ValueError, ["prefetch_factor", "0"]),
    (dict(num_workers=2, prefetch_factor=1.5), TypeError, ["prefetch_factor", "1.5"]),
    (dict(timeout="1"), TypeError, ["timeout", "'1'"]),
    (dict(num_workers=2, multiprocessing_context=3), TypeError, ["multiprocessing_context", "3"]),
    (dict(num_workers=2, persistent_workers=1), TypeError, ["persistent_workers", "1"]),
])
def test_option_type_errors(kwargs, error, words):
    with pytest.raises(error, match=mentions("DataLoader", *words)):
        data.DataLoader(numbered(3), **kwargs)


def test_requires_grad_crosses_processes_as_in_pytorch():
    leaf = tg.ones(2, requires_grad=True)
    identity = dict(batch_size=2, num_workers=2, collate_fn=lambda items: items)
    batch = next(iter(data.DataLoader(Items(4, extra=lambda i: leaf), **identity)))
    assert batch[0][2].requires_grad and batch[0][2].is_leaf  # a leaf that requires grad stays one
    assert not next(iter(data.DataLoader(Items(4, extra=lambda i: leaf), batch_size=2, num_workers=2)))[2].requires_grad
    with pytest.raises(RuntimeError, match=mentions("worker process 0", "not a leaf", "detach")):
        next(iter(data.DataLoader(Items(4, extra=lambda i: leaf * 2), **identity)))  # PyTorch hangs here


# ------------------------------------------------------------ seeding and worker info


class Draws(data.Dataset):
    """Item i: the worker's id and seed, and one draw from each generator a transform might use."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        info = data.get_worker_info()
        return (info.id, info.seed, info.num_workers, len(info.dataset), tg.rand(1).item(), np.random.rand(),
                random.random())


def draws_per_worker(loader) -> dict:
    out = {}
    for batch in loader:
        for wid, seed, count, size, *values in zip(*(t.tolist() for t in batch)):
            out.setdefault((wid, seed, count, size), []).append(values)
    return out


def test_workers_are_seeded_from_the_epoch_base_seed_plus_their_id():
    assert data.get_worker_info() is None  # in the main process
    loader = data.DataLoader(Draws(), batch_size=2, num_workers=2, seed=4)
    first, second = draws_per_worker(loader), draws_per_worker(loader)
    for epoch in (first, second):
        (w0, seed0, n0, size0), (w1, seed1, n1, size1) = sorted(epoch)
        assert (w0, w1, n0, n1, size0, size1) == (0, 1, 2, 2, 8, 8) and seed1 == seed0 + 1
        for (wid, seed, _, _), values in epoch.items():
            # each worker's first draws, by hand: the generators seeded as the worker says it seeds them
            legacy = np.random.RandomState(np.random.SeedSequence([seed - wid, wid]).generate_state(4))
            assert values[0] == pytest.approx([np.float32(np.random.default_rng(seed).random()),
                                               legacy.random_sample(), random.Random(seed).random()])
    assert sorted(first)[0][1] != sorted(second)[0][1]  # a new base seed every epoch
    assert draws_per_worker(data.DataLoader(Draws(), batch_size=2, num_workers=2, seed=4)) == first  # reproducible


def test_global_seed_makes_worker_draws_reproducible():
    def run():
        tg.manual_seed(11)
        return draws_per_worker(data.DataLoader(Draws(), batch_size=2, num_workers=2))

    assert run() == run()


def test_worker_init_fn_runs_once_per_worker_before_loading():
    class Seen(data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return os.environ.get("TEST_WORKER_INIT", "")

    def init(worker_id):
        os.environ["TEST_WORKER_INIT"] = os.environ.get("TEST_WORKER_INIT", "") + f"w{worker_id}"

    loader = data.DataLoader(Seen(), batch_size=1, num_workers=2, worker_init_fn=init, persistent_workers=True)
    assert [b for b in loader] + [b for b in loader] == [["w0"], ["w1"]] * 6
    assert "TEST_WORKER_INIT" not in os.environ  # it ran in the workers only
    del loader


def test_persistent_workers_serve_every_epoch_and_stop_with_the_loader():
    class Pid(data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return os.getpid()

    loader = data.DataLoader(Pid(), batch_size=1, num_workers=2, persistent_workers=True)
    first = {int(b) for b in loader}
    assert first == {int(b) for b in loader} and len(first) == 2 and os.getpid() not in first
    assert first <= children()
    abandoned = iter(loader)
    next(abandoned)
    fresh = [int(b) for b in loader]  # a new epoch drops what the abandoned one had prefetched
    assert len(fresh) == 4 and set(fresh) == first
    with pytest.raises(RuntimeError, match="newer iter"):
        next(abandoned)
    del loader, abandoned
    gc.collect()
    assert not first & children()
    non_persistent = data.DataLoader(Pid(), batch_size=1, num_workers=2)
    assert {int(b) for b in non_persistent}.isdisjoint({int(b) for b in non_persistent})  # new workers per epoch


# ------------------------------------------------------------ errors and shutdown


class Failing(data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"bad item {i}")
        return np.float32(i)


def test_worker_exception_is_reraised_with_worker_id_and_traceback():
    loader = data.DataLoader(Failing(), batch_size=2, num_workers=2)
    iterator = iter(loader)
    assert [next(iterator).tolist() for _ in range(2)] == [[0.0, 1.0], [2.0, 3.0]]  # batches before it arrive
    with pytest.raises(ValueError, match=mentions("Caught ValueError in DataLoader worker process 0",
                                                  "Original Traceback", "__getitem__", "bad item 5")):
        next(iterator)
    assert list(iterator) == []  # the workers are shut down


def test_worker_init_fn_exception_is_reraised():
    def init(worker_id):
        raise KeyError(f"no config for {worker_id}")

    with pytest.raises(KeyError, match=mentions("Caught KeyError in DataLoader worker process 0",
                                                "no config for 0")) as caught:
        list(data.DataLoader(numbered(4), num_workers=2, worker_init_fn=init))
    assert str(caught.value).startswith("Caught KeyError")  # the traceback as text, not a quoted repr


def test_unpicklable_batch_is_an_error_not_a_hang():
    with pytest.raises(Exception, match=mentions("worker process", "pickle")):
        list(data.DataLoader(Items(4, extra=lambda i: threading.Lock()), batch_size=2, num_workers=2,
                             collate_fn=lambda items: items))


def test_failing_sampler_stops_the_workers():
    class Sampler:
        def __len__(self):
            return 10

        def __iter__(self):
            yield from range(8)
            raise ValueError("sampler broke")

    iterator = iter(data.DataLoader(numbered(10), sampler=Sampler(), num_workers=2))
    labels = []
    with pytest.raises(ValueError, match="sampler broke"):  # when prefetching reaches it, as in PyTorch
        for _, y in iterator:
            labels += y.tolist()
    assert labels == list(range(len(labels))) and len(labels) < 8
    assert list(iterator) == []


def test_killed_worker_gives_runtime_error():
    class Dies(data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return np.float32(i)

    with pytest.raises(RuntimeError, match=mentions("DataLoader worker 1", "killed by signal SIGKILL")):
        list(data.DataLoader(Dies(), batch_size=3, num_workers=2))


class Sleepy(data.Dataset):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __len__(self) -> int:
        return 20

    def __getitem__(self, i):
        time.sleep(self.seconds)
        return np.float32(i)


def test_timeout():
    with pytest.raises(RuntimeError, match=mentions("DataLoader timed out after 0.2 seconds")):
        list(data.DataLoader(Sleepy(3.0), num_workers=2, timeout=0.2))


def test_abandoned_iterator_stops_its_workers():
    iterator = iter(data.DataLoader(Sleepy(0.01), batch_size=2, num_workers=2))
    next(iterator)
    assert len(children()) >= 2
    del iterator  # the fixture checks that they are gone


def test_keyboard_interrupt_stops_the_workers():
    # A background job of a non-interactive shell (as CI may run us) starts with SIGINT ignored, and Python
    # then keeps it ignored: install Python's own handler, which raises KeyboardInterrupt, for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupt_the_loop()
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt_the_loop():
    iterator = iter(data.DataLoader(Sleepy(0.5), num_workers=2))
    next(iterator)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        for _ in iterator:
            pass
    timer.join()
    assert time.monotonic() - started < 3  # no waiting for the slow batches in flight
    del iterator  # the fixture checks that the workers are gone
