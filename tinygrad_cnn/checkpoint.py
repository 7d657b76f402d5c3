"""Checkpoints: a nested dict of training state in one `.npz` file, written atomically.

    save_checkpoint("run.npz", {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3})
    state = load_checkpoint("run.npz")

Layout. `save_checkpoint` flattens the nested dict (the counterpart of what `torch.save` pickles):

- every NumPy array (and Tensor, saved as its array) becomes one npz entry named by its path of
  keys joined with '/': `model/conv1.weight`, `optimizer/state/0/exp_avg`;
- everything else (numbers, strings, bools, None, lists) goes into one JSON document, the entry
  `checkpoint.json`, in which an array stands as `{"__array__": "<entry name>"}`, a tuple as
  `{"__tuple__": [...]}`, and a dict with keys that are not all strings (the optimizer's state is
  keyed by parameter index) as `{"__items__": [[key, value], ...]}`.

JSON keeps Python ints of any size, which the RNG state needs (PCG64's state is a 128-bit int), and
the file opens with `np.load(path, allow_pickle=False)`: no pickle, so loading runs no code.

Atomicity. The file is written to a temporary file in the same directory, flushed and fsynced, and
then renamed over the old one (`os.replace`, atomic on POSIX and Windows): a crash or kill during
the save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from .tensor import Tensor

FORMAT = "tinygrad_cnn checkpoint"
VERSION = 1
_TREE = "checkpoint.json"


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint, or one that does not fit the model or data at hand."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`.

    Until the rename, `path` keeps its old content; if `write` raises, the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name opened with "x" (not mkstemp, whose files are private whatever the umask)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the checkpoint
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _flatten(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """`obj` as JSON-ready data, its arrays moved into `arrays` under their path."""
    if isinstance(obj, Tensor):
        obj = obj.detach().numpy()
    if isinstance(obj, np.ndarray):
        if path in arrays:
            raise ValueError(f"save_checkpoint: two arrays would be stored as {path!r}; rename a key")
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _flatten(v, f"{path}/{k}" if path else k, arrays) for k, v in obj.items()}
        return {"__items__": [[k, _flatten(v, f"{path}/{k}", arrays)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save_checkpoint: cannot store a {type(obj).__name__} at {path!r}")


def _unflatten(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if obj.keys() == {"__array__"}:
            return arrays[obj["__array__"]]
        if obj.keys() == {"__tuple__"}:
            return tuple(_unflatten(v, arrays) for v in obj["__tuple__"])
        if obj.keys() == {"__items__"}:
            return {k: _unflatten(v, arrays) for k, v in obj["__items__"]}
        return {k: _unflatten(v, arrays) for k, v in obj.items()}
    return obj


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write the nested dict `state` (arrays, Tensors, numbers, strings, None, lists, tuples, dicts) to `path`."""
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten({"format": FORMAT, "version": VERSION, **state}, "", arrays)
    if _TREE in arrays:
        raise ValueError(f"save_checkpoint: the key {_TREE!r} is reserved")
    arrays[_TREE] = np.array(json.dumps(tree))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The dict that `save_checkpoint` wrote to `path`, arrays as NumPy arrays.

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointError: the file is not a complete tinygrad_cnn checkpoint (corrupt, truncated, other format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a checkpoint: not an .npz (zip) file, or a truncated one")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _TREE not in npz.files:
                raise CheckpointError(f"{path}: not a tinygrad_cnn checkpoint (an .npz without {_TREE})")
            tree = json.loads(str(npz[_TREE][()]))
            if not isinstance(tree, dict) or tree.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a tinygrad_cnn checkpoint")
            if tree.get("version") != VERSION:
                raise CheckpointError(f"{path}: checkpoint version {tree.get('version')!r}, "
                                      f"this tinygrad_cnn reads version {VERSION}")
            state = _unflatten(tree, {name: npz[name] for name in npz.files if name != _TREE})
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        # np.load reports a damaged file with any of these, depending on where the damage is
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    del state["format"], state["version"]
    return state
