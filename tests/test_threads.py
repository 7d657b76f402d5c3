"""Passes split among threads (ops/threads.py): the split itself, set_num_threads, and BatchNorm's
statistics, forward and VJP, whose results must not depend on the number of threads, nor on where
the channels are cut into pieces and cache-sized slices, nor on the memory layout of the input."""
from __future__ import annotations

import contextlib
import multiprocessing

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.ops import normalization, threads

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _restore_threads():
    before = tg.get_num_threads()
    yield
    tg.set_num_threads(before)


def test_num_threads_default_and_setting():
    assert tg.get_num_threads() >= 1
    tg.set_num_threads(3)
    assert tg.get_num_threads() == 3


@pytest.mark.parametrize("value, message", [(0, "a positive integer, got 0"), (-2, "a positive integer, got -2"),
                                            (2.0, "an int, got float"), (True, "an int, got bool"),
                                            ("2", "an int, got str")])
def test_set_num_threads_refuses_what_torch_refuses(value, message):
    with pytest.raises(RuntimeError, match=f"set_num_threads: expected {message}"):
        tg.set_num_threads(value)
    with pytest.raises(RuntimeError):
        torch.set_num_threads(value)
    assert torch.get_num_threads() >= 1


@given(count=st.integers(0, 40), num_threads=st.integers(1, 5), minimum=st.integers(1, 12))
def test_in_parallel_covers_the_range_once(count, num_threads, minimum):
    tg.set_num_threads(num_threads)
    seen = np.zeros(count, int)
    pieces = []

    def work(start, stop):
        seen[start:stop] += 1
        pieces.append(stop - start)

    threads.in_parallel(work, count, minimum)
    assert seen.tolist() == [1] * count
    assert len(pieces) <= num_threads and (len(pieces) == 1 or min(pieces) >= minimum)


def test_in_parallel_raises_what_a_piece_raises():
    tg.set_num_threads(2)

    def work(start, stop):
        if start > 0:
            raise ValueError(f"piece {start}:{stop}")

    with pytest.raises(ValueError, match="piece 5:10"):
        threads.in_parallel(work, 10)


def _batch_last(a: np.ndarray) -> np.ndarray:
    """The same values, lying (C, ..., N) in memory as our convolutions return them."""
    order = (*range(1, a.ndim), 0)
    return np.ascontiguousarray(a.transpose(order)).transpose(np.argsort(order))


LAYOUTS = {"contiguous": lambda a: a, "batch-last": _batch_last, "fortran": np.asfortranarray,
           "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2]}


def _ours(x, weight, bias, upstream, running):
    xt, wt, bt = (tg.tensor(a, requires_grad=True) for a in (x, weight, bias))
    out = F.batch_norm(xt, *running, wt, bt, training=True)
    out.backward(tg.tensor(upstream))
    return [out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), *(r.numpy() for r in running)]


@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple), batch=st.integers(2, 5),
       channels=st.integers(1, 12), layout=st.sampled_from(sorted(LAYOUTS)), grad_layout=st.sampled_from(sorted(LAYOUTS)),
       seed=st.integers(0, 2**31))
def test_batch_norm_same_for_any_threads_and_layout_and_equal_to_torch(shape, batch, channels, layout, grad_layout,
                                                                      seed):
    rng = np.random.default_rng(seed)
    full = (batch, channels, *shape)
    x = LAYOUTS[layout](rng.standard_normal(full) * 3 + rng.standard_normal((1, channels) + (1,) * len(shape)) * 5)
    upstream = LAYOUTS[grad_layout](rng.standard_normal(full))
    weight, bias = rng.standard_normal(channels), rng.standard_normal(channels)
    results = []
    for num_threads in (1, 2, 3):
        tg.set_num_threads(num_threads)
        results.append(_ours(x, weight, bias, upstream, (tg.zeros(channels, dtype=tg.float64),
                                                         tg.ones(channels, dtype=tg.float64))))
    for other in results[1:]:  # bit for bit: each channel is computed by one thread, in the same slices
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    xt, wt, bt = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, weight, bias))
    running = torch.zeros(channels, dtype=torch.float64), torch.ones(channels, dtype=torch.float64)
    out = torch.nn.functional.batch_norm(xt, *running, wt, bt, training=True)
    out.backward(torch.tensor(np.ascontiguousarray(upstream)))
    expected = [out.detach(), xt.grad, wt.grad, bt.grad, *running]
    for ours, theirs in zip(results[0], expected):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("values_per_channel", [1000, 1 << 17, 3 << 16])
def test_batch_norm_slices_of_channels_in_float32(values_per_channel):
    """Channels cut into cache-sized slices (~128K values) shared among threads, in float32: as PyTorch's to
    float32 accuracy, and the same for 1 and 2 threads."""
    rng = np.random.default_rng(0)
    x = _batch_last(rng.standard_normal((values_per_channel // 100, 7, 10, 10)).astype(np.float32))
    upstream = _batch_last(rng.standard_normal(x.shape).astype(np.float32))
    weight, bias = rng.standard_normal(7).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    runs = []
    for num_threads in (1, 2):
        tg.set_num_threads(num_threads)
        runs.append(_ours(x, weight, bias, upstream, (tg.zeros(7), tg.ones(7))))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    wt, bt = torch.tensor(weight, requires_grad=True), torch.tensor(bias, requires_grad=True)
    out = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True)
    out.backward(torch.tensor(np.ascontiguousarray(upstream)))
    for ours, theirs in zip(runs[0], (out.detach(), xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=2e-3, atol=2e-3 * float(np.abs(theirs.numpy()).max()))


def _batch_norm_in_child(queue):
    x = tg.tensor(_batch_last(np.arange(2 * 3 * 4 * 1000, dtype=np.float32).reshape(2, 3, 4, 1000)))
    queue.put(float(F.batch_norm(x, None, None, training=True).abs().sum()))


def test_threads_work_in_a_forked_child_after_the_parent_used_them():
    """A DataLoader worker is a fork of a process whose thread pool exists: it must make its own."""
    tg.set_num_threads(2)
    x = tg.tensor(_batch_last(np.arange(2 * 3 * 4 * 1000, dtype=np.float32).reshape(2, 3, 4, 1000)))
    expected = float(F.batch_norm(x, None, None, training=True).abs().sum())
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_batch_norm_in_child, args=(queue,))
    child.start()
    try:
        assert queue.get(timeout=60) == expected
    finally:
        child.join(timeout=60)
    assert child.exitcode == 0


@contextlib.contextmanager
def split_everything():
    """Split even small arrays among threads, so that small examples reach the pieces' edges."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(normalization, "SLICE", 1)  # one channel per slice
        yield


@given(channels=st.integers(1, 7), seed=st.integers(0, 2**31), layout=st.sampled_from(sorted(LAYOUTS)))
def test_batch_norm_pieces_of_one_channel(channels, seed, layout):
    rng = np.random.default_rng(seed)
    x = LAYOUTS[layout](rng.standard_normal((3, channels, 4, 5)))
    upstream, weight, bias = rng.standard_normal(x.shape), rng.standard_normal(channels), rng.standard_normal(channels)
    runs = []
    for num_threads in (1, 4):
        tg.set_num_threads(num_threads)
        with split_everything():
            runs.append(_ours(x, weight, bias, upstream, (tg.zeros(channels, dtype=tg.float64),
                                                          tg.ones(channels, dtype=tg.float64))))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
