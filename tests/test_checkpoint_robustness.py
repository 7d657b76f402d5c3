"""Damaged and interrupted checkpoints: every single-byte change and every truncation of a checkpoint
either raises CheckpointError or loads exactly what was saved (a change in bytes that nothing reads),
never another exception; saves killed half way leave temporary files that the next save removes, while
the temporary file of a save still writing in another process is left alone."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn.checkpoint import (_HOST, CheckpointError, load_checkpoint, remove_stale_temporaries,
                                     save_checkpoint)

STATE = {"model": {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "fc.bias": np.array([0.5, -1.0])},
         "epoch": 3, "config": {"lr": 0.002, "optimizer": "adam"}, "history": [{"loss": 0.25}]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("good") / "run.npz"
    save_checkpoint(path, STATE)
    return path.read_bytes()


def assert_loads_as_saved_or_refused(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        state = load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e)
        return
    assert state.keys() == STATE.keys()
    assert (state["epoch"], state["config"], state["history"]) == (STATE["epoch"], STATE["config"], STATE["history"])
    for name, array in STATE["model"].items():
        assert state["model"][name].dtype == array.dtype
        np.testing.assert_array_equal(state["model"][name], array)


def test_every_byte_flipped(saved, tmp_path):
    path = tmp_path / "flipped.npz"
    refused = 0
    for i in range(len(saved)):
        damaged = bytearray(saved)
        damaged[i] ^= 0xFF
        assert_loads_as_saved_or_refused(path, bytes(damaged))
        try:
            load_checkpoint(path)
        except CheckpointError:
            refused += 1
    assert refused > len(saved) // 2  # most bytes matter: the check above is not passing by loading everything


@given(st.data())
def test_any_byte_changed(saved, tmp_path_factory, data):
    i = data.draw(st.integers(0, len(saved) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != saved[i]), label="value")
    damaged = bytearray(saved)
    damaged[i] = value
    assert_loads_as_saved_or_refused(tmp_path_factory.mktemp("changed") / "run.npz", bytes(damaged))


def test_every_truncation(saved, tmp_path):
    path = tmp_path / "truncated.npz"
    for n in range(len(saved)):
        path.write_bytes(saved[:n])
        with pytest.raises(CheckpointError):
            load_checkpoint(path)


# ================================================================ temporary files of killed saves

def start_save(path, then: str) -> subprocess.Popen:
    """A process that saves a checkpoint to `path`, writes half of it to the temporary file, prints
    'writing', and then runs `then` (Python source) before writing the rest."""
    source = textwrap.dedent(f"""
        import io, os, signal, sys
        import numpy as np
        from tinygrad_cnn.checkpoint import atomic_write
        payload = io.BytesIO()
        np.savez(payload, epoch=np.array(2))
        half = len(payload.getvalue()) // 2
        def write(f):
            f.write(payload.getvalue()[:half])
            f.flush()
            print("writing", flush=True)
            {then}
            f.write(payload.getvalue()[half:])
        atomic_write({str(path)!r}, write)
    """)
    return subprocess.Popen([sys.executable, "-c", source], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def temporaries(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.skipif(os.name != "posix", reason="stale temporary files are recognised by their writer's pid on POSIX")
def test_the_next_save_removes_what_killed_saves_left(tmp_path):
    path = tmp_path / "run.npz"
    save_checkpoint(path, {"epoch": 1})
    left = []
    for _ in range(3):  # killed (SIGKILL: no cleanup can run) in the middle of writing
        killed = start_save(path, "os.kill(os.getpid(), signal.SIGKILL)")
        assert killed.stdout.readline() == "writing\n"
        assert killed.wait(timeout=60) == -signal.SIGKILL
        left.append(temporaries(tmp_path))
    assert [len(names) for names in left] == [1, 1, 1]  # each killed save removed the one before
    assert len({names[0] for names in left}) == 3 and load_checkpoint(path)["epoch"] == 1
    save_checkpoint(path, {"epoch": 2})
    assert temporaries(tmp_path) == [] and load_checkpoint(path)["epoch"] == 2


@pytest.mark.skipif(os.name != "posix", reason="stale temporary files are recognised by their writer's pid on POSIX")
def test_a_concurrent_save_still_writing_is_left_alone(tmp_path):
    path = tmp_path / "run.npz"
    writer = start_save(path, "sys.stdin.readline()")  # waits half way until told to go on
    try:
        assert writer.stdout.readline() == "writing\n"
        (busy,) = temporaries(tmp_path)
        save_checkpoint(path, {"epoch": 1})
        assert remove_stale_temporaries(path) == [] and temporaries(tmp_path) == [busy]
        writer.stdin.write("go on\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
    finally:
        writer.kill()
    assert temporaries(tmp_path) == [] and int(np.load(path)["epoch"]) == 2  # the other save completed


def test_other_files_are_never_removed(tmp_path):
    """Files that only look alike: another checkpoint's temporaries, another host's, other names."""
    path = tmp_path / "run.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended
    keep = [f".other.npz.{{host}}.{pid}.0123abcd.tmp", f".run.npz.elsewhere.{pid}.0123abcd.tmp",
            f".run.npz.{{host}}.{pid}.0123abcd.tmp.bak", "run.npz.tmp", f".run.npz.{{host}}.{pid}.xyz.tmp"]
    for name in keep:
        (tmp_path / name.format(host=_HOST)).write_bytes(b"x")
    save_checkpoint(path, {"epoch": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([n.format(host=_HOST) for n in keep] + ["run.npz"])


def test_an_unwritable_path_is_named_in_the_error(tmp_path):
    (tmp_path / "run.npz").mkdir()  # a directory where the checkpoint should go
    with pytest.raises(IsADirectoryError, match=f"cannot write {tmp_path / 'run.npz'}"):
        save_checkpoint(tmp_path / "run.npz", {"epoch": 1})
    assert temporaries(tmp_path) == []
