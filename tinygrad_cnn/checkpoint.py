"""Checkpoints: a nested dict of training state in one file, written atomically.

    save_checkpoint("run.npz", {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3})
    state = load_checkpoint("run.npz")

Format. The file is what `tinygrad_cnn.save` writes (see serialization.py: an .npz of the arrays plus a JSON
description, `checkpoint.json`; nothing in it can run code on load) of the dict `state` with two more keys,
`format` ("tinygrad_cnn checkpoint") and `version`. Checkpoints written before `save` existed (`checkpoint.json`
was the checkpoint dict itself) still load: `tinygrad_cnn.load` reads them.

Atomicity. The file is written to a temporary file in the same directory, flushed and fsynced, and
then renamed over the old one (`os.replace`, atomic on POSIX and Windows): a crash or kill during
the save leaves the previous checkpoint intact. Its temporary file (`.NAME.HOST.PID.RANDOM.tmp`) stays
behind; the next save to the same path removes it, once no process PID runs on this host (POSIX only).
A temporary file whose writer is alive, or ran on another host (a shared file system), is never removed:
it may be a concurrent save that is still writing.
"""
from __future__ import annotations

import glob
import os
import re
import secrets
import socket
from pathlib import Path
from typing import IO, Any, Callable

from .serialization import FileFormatError, load, save

# The keys every checkpoint dict carries (serialization.py knows them too: they mark the checkpoints written
# before it existed).
FORMAT = "tinygrad_cnn checkpoint"
VERSION = 1
_KEYS = {"format", "version"}
# The host in temporary names, in characters that cannot be confused with the name's '.' separators
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint, or one that does not fit the model or data at hand."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`.

    Until the rename, `path` keeps its old content; if `write` raises, the temporary file is removed, and
    those that killed saves to `path` left behind are removed first (see the module docstring).
    Raises OSError naming `path` (not the temporary file) if it cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # a fresh name opened with "x" (not mkstemp, whose files are private whatever the umask)
    tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the checkpoint
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and str(tmp) in (e.filename, e.filename2):  # the user knows `path`, not `tmp`
            raise type(e)(e.errno, f"cannot write {path}: {e.strerror}") from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that saves to `path` killed before their rename left behind: those
    written on this host by a process that no longer runs. Return the paths removed."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_HOST)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.fullmatch(candidate.name)
        if match and not _running(int(match[1])):
            candidate.unlink(missing_ok=True)  # missing: another save removed it first
            removed.append(candidate)
    return removed


def _running(pid: int) -> bool:
    """Whether process `pid` runs on this host. True where that cannot be told (not POSIX: on Windows
    os.kill(pid, 0) would end the process), so an unknown writer's file is kept."""
    if os.name != "posix" or pid == os.getpid():  # our own pid: another thread's save may be writing it
        return True
    try:
        os.kill(pid, 0)  # signal 0: no signal is sent, only the existence check
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or a pid no system has): keep its file
        return True
    return True


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write the dict `state` (what `tinygrad_cnn.save` takes: Tensors, arrays, numbers, strings, None, and dicts,
    lists and tuples of them) to `path`, atomically."""
    if state.keys() & _KEYS:
        raise ValueError(f"save_checkpoint: the keys {sorted(_KEYS)} are reserved")
    atomic_write(path, lambda f: save({"format": FORMAT, "version": VERSION, **state}, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The dict that `save_checkpoint` wrote to `path`, its Tensors (a model's weights) as Tensors, arrays as arrays.

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointError: the file is not a complete tinygrad_cnn checkpoint (corrupt, truncated, other format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = load(path)
    except FileFormatError as e:
        raise CheckpointError(f"{path}: not a checkpoint: {e.reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_cnn checkpoint (a file of tinygrad_cnn.save holding "
                              "something else)")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state.get('version')!r}, "
                              f"this tinygrad_cnn reads version {VERSION}")
    del state["format"], state["version"]
    return state
