"""Passes split among threads (ops/threads.py): the split itself, set_num_threads, and BatchNorm's
statistics, forward and VJP, whose results must not depend on the number of threads, nor on where
the channels are cut into pieces and cache-sized slices, nor on the memory layout of the input."""
from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn.ops import conv, matmul, normalization, threads

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


def test_in_parallel_raises_only_after_every_run_has_ended():
    """The calling thread's piece fails at once while another thread is still writing: the exception
    reaches the caller only after that thread is done, so no buffer is written after the call."""
    tg.set_num_threads(2)
    finished = []

    def work(start, stop):
        if start == 0:
            raise ValueError("first piece")
        time.sleep(0.2)
        finished.append((start, stop))

    with pytest.raises(ValueError, match="first piece"):
        threads.in_parallel(work, 10)
    assert finished == [(5, 10)]


def test_both_runs_the_second_job_on_another_thread_at_the_same_time():
    """The first job waits for a signal that only the second gives: they must run at once, the
    second on another thread; work either splits with in_parallel runs whole there."""
    tg.set_num_threads(2)
    signal, seen = threading.Event(), {}

    def pieces_of_a_split():
        pieces = []
        threads.in_parallel(lambda start, stop: pieces.append((start, stop)), 10)
        return pieces

    def first():
        seen["first"] = threading.get_ident()
        assert signal.wait(timeout=30), "the second job did not run while the first did"
        return "a", pieces_of_a_split()

    def second():
        seen["second"] = threading.get_ident()
        signal.set()
        return "b", pieces_of_a_split()

    (a, first_pieces), (b, second_pieces) = threads.both(first, second)
    assert (a, b) == ("a", "b") and seen["first"] == threading.get_ident() != seen["second"]
    assert first_pieces == second_pieces == [(0, 10)]
    assert len(pieces_of_a_split()) == 2  # outside `both`, the split is back


def test_both_raises_only_after_both_jobs_have_ended_and_runs_in_turn_with_one_thread():
    tg.set_num_threads(2)
    finished = []

    def fails():
        raise ValueError("first job")

    def slow():
        time.sleep(0.2)
        finished.append(True)

    with pytest.raises(ValueError, match="first job"):
        threads.both(fails, slow)
    assert finished == [True]
    tg.set_num_threads(1)
    assert threads.both(threading.get_ident, threading.get_ident) == (threading.get_ident(),) * 2


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
        patch.setattr(conv, "COLUMN_BLOCK", 1)  # one output row per block of im2col columns
        patch.setattr(matmul, "SPLIT_WORK", 0)  # every product split
        yield


def _conv_step(x, weight, upstream, stride, padding, dilation, groups, batch_last):
    xt = tg.tensor(_batch_last(x) if batch_last else x, requires_grad=True)
    wt = tg.tensor(weight, requires_grad=True)
    out = F.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    out.backward(tg.tensor(upstream))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


@given(batch=st.integers(1, 3), groups=st.integers(1, 2), channels=st.integers(1, 5), out_per_group=st.integers(1, 3),
       size=st.integers(3, 9), kernel=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2),
       dilation=st.integers(1, 2), batch_last=st.booleans(), seed=st.integers(0, 2**31))
def test_conv2d_same_for_any_number_of_threads(batch, groups, channels, out_per_group, size, kernel, stride, padding,
                                              dilation, batch_last, seed):
    """im2col blocks of one output row shared out among threads, and the strided transposed convolution's
    channels (or groups): what one thread computes, to float32 rounding (each product is OpenBLAS's on a
    part of the rows), and PyTorch's."""
    if dilation * (kernel - 1) + 1 > size + 2 * padding:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels * groups, size, size)).astype(np.float32)
    weight = rng.standard_normal((out_per_group * groups, channels, kernel, kernel)).astype(np.float32)
    out_size = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    upstream = rng.standard_normal((batch, out_per_group * groups, out_size, out_size)).astype(np.float32)
    runs = []
    for num_threads in (1, 2, 3):
        tg.set_num_threads(num_threads)
        with split_everything():
            runs.append(_conv_step(x, weight, upstream, stride, padding, dilation, groups, batch_last))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    out = torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    out.backward(torch.tensor(upstream))
    for ours, theirs in zip(runs[0], (out.detach(), xt.grad, wt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-4)


@given(shapes=st.sampled_from([((5, 7), (7, 3)), ((2, 9), (9, 6)), ((3, 1, 4, 5), (2, 5, 8)), ((6, 2), (1, 2, 5))]),
       seed=st.integers(0, 2**31))
def test_matmul_split_by_rows_or_columns_as_numpy(shapes, seed):
    """Products split among threads by rows of x (more rows than columns) or columns of y, batch dims
    broadcast: NumPy's product to float32 rounding, for any number of threads; gradients as PyTorch's."""
    rng = np.random.default_rng(seed)
    x, y = (rng.standard_normal(shape).astype(np.float32) for shape in shapes)
    for num_threads in (1, 2, 3):
        tg.set_num_threads(num_threads)
        with split_everything():
            xt, yt = tg.tensor(x, requires_grad=True), tg.tensor(y, requires_grad=True)
            out = xt @ yt
            out.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), x @ y, rtol=1e-6, atol=1e-6)
        xr, yr = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        (xr @ yr).sum().backward()
        np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(yt.grad.numpy(), yr.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_blas_held_to_one_thread_at_import_and_released_on_request():
    """Importing tinygrad_cnn holds NumPy's OpenBLAS to one thread (where it can reach it); released, our
    products are left whole to OpenBLAS, and held again they split: the same numbers either way."""
    if not threads.blas_threads_held():
        pytest.skip("NumPy's OpenBLAS is not reachable here (not Linux, or another BLAS)")
    set_blas, get_blas = threads._numpy_openblas()
    assert get_blas() == 1
    x = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
    held = (tg.tensor(x) @ tg.tensor(x.T)).numpy()
    try:
        assert threads.release_blas_threads() and not threads.blas_threads_held()
        assert get_blas() == threads._blas["before"]
        np.testing.assert_allclose((tg.tensor(x) @ tg.tensor(x.T)).numpy(), held, rtol=1e-5, atol=1e-4)
        assert not threads.release_blas_threads()  # nothing left to release
    finally:
        assert threads.hold_blas_threads()
    assert get_blas() == 1 and threads.blas_threads_held()


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
