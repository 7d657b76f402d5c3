"""`save(obj, f)` and `load(f)`, as torch.save and torch.load(weights_only=True), in a format that holds data only.

    save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, "run.pt")
    state = load("run.pt")

`obj` is a Tensor, a NumPy array or scalar, a bool, int, float, str or None, or dicts (str or int keys), lists and
tuples nesting them: what a state_dict or a training checkpoint holds.

Format. An uncompressed .npz (a zip of .npy files, as `np.savez` writes), whatever the file's name:

- every Tensor, array and NumPy scalar is one .npy entry, named after its path of keys joined by '/'
  (`model/fc1.weight`, `optimizer/state/0/exp_avg`), so `np.load(f)["model/fc1.weight"]` reads it too;
- the entry `checkpoint.json` (the name the training checkpoints have always used, so every file has one marker)
  is a JSON document `{"format": "tinygrad_cnn.save", "version": 1, "obj": ...}` describing `obj`. In it an
  entry stands as `{"__tensor__": [name, requires_grad]}`, `{"__array__": name}` or `{"__scalar__": name}`, a
  tuple as `{"__tuple__": [...]}`, and a dict whose keys are not all strings (an optimizer's state is keyed by
  parameter index) as `{"__items__": [[key, value], ...]}`; JSON keeps the rest, Python ints of any size included
  (PCG64's state is a 128-bit int).

Why loading runs no code: a torch.save file is a pickle, and unpickling calls whatever functions the file names.
`load` reads JSON and .npy entries with `allow_pickle=False` only: an object array, the one .npy that would need
pickle, is refused, and a pickle or a torch.save file is recognised and refused before anything is read from it.
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import zipfile
import zlib
from typing import IO, Any, Callable, Union

import numpy as np

from .device import to_device
from .tensor import Tensor

FileLike = Union[str, os.PathLike, IO[bytes]]

FORMAT = "tinygrad_cnn.save"
VERSION = 1
DESCRIPTION = "checkpoint.json"
_MARKERS = ("__tensor__", "__array__", "__scalar__", "__tuple__", "__items__")
# The description is passed to np.savez as a keyword argument along with the arrays, so no array may be named
# like it or like one of np.savez's own parameters.
_RESERVED = {DESCRIPTION, "file", "allow_pickle"}
_UNSAFE = re.compile(r"[^\w.-]", re.ASCII)  # entry names stay plain ASCII: the description keeps the exact keys
# Training checkpoints written before this module existed: their description is the checkpoint dict itself,
# marked by its own keys (see checkpoint.py). They load as that dict, their Tensors as the arrays they were saved as.
_OLD_CHECKPOINT = {"format": "tinygrad_cnn checkpoint", "version": 1}
# What reading a damaged file can raise, depending on where the damage is (or what a crafted description holds);
# zipfile raises NotImplementedError for a header naming an unknown zip version or compression method.
_DAMAGE = (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, RuntimeError, RecursionError,
           NotImplementedError, zipfile.BadZipFile, zlib.error)


class FileFormatError(ValueError):
    """`load` was given a file that `save` did not write (or a damaged one, or one of a newer version)."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"load: cannot read {file} (expected a file written by tinygrad_cnn.save): {reason}")
        self.file, self.reason = file, reason


def save(obj: Any, f: FileLike) -> None:
    """Write `obj` to `f`, a path (written as given: no suffix is added) or a binary file object.

    Tensors come back from `load` as leaf Tensors with their dtype, shape and requires_grad (their `.grad` is not
    saved); a Tensor or array that appears twice is saved twice, and comes back as two (PyTorch keeps one).
    Subclasses of dict, list and tuple (an OrderedDict state_dict, a namedtuple) come back as dict, list and tuple.

    Raises:
        TypeError: `obj` holds something else (a function, an object of a class, an object array, a float key),
            named by its path in `obj`, before anything is written.
    """
    arrays: dict[str, np.ndarray] = {}
    description = {"format": FORMAT, "version": VERSION, "obj": _encode(obj, (), arrays)}
    arrays[DESCRIPTION] = np.array(json.dumps(description))
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as file:  # not np.savez(path): it would append .npz to the name
            np.savez(file, **arrays)
    else:
        np.savez(f, **arrays)


def load(f: FileLike, map_location: Any = None, *, weights_only: bool = True) -> Any:
    """The object that `save` wrote to `f` (a path or a binary file object), Tensors as Tensors, arrays as arrays.

    `map_location` (None or 'cpu') and `weights_only` (True) are accepted for PyTorch scripts: everything loads on
    the CPU, and the format holds nothing but data, so loading is always weights-only.

    Raises:
        FileFormatError (a ValueError): `f` is not a file written by `save` (a pickle, a torch.save file, a plain
            .npz or .npy, other bytes), a damaged one, or one of a newer format version.
    """
    if weights_only is not True:
        raise ValueError(f"load: weights_only={weights_only!r} is not supported: the format holds only data "
                         "(tensors, arrays, numbers, strings), so load is always weights_only=True")
    to_device(map_location, "load")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as file:
            return _read(file, os.fspath(f))
    name = getattr(f, "name", None)
    name = name if isinstance(name, str) else f"<{type(f).__name__}>"
    return _read(f if f.seekable() else io.BytesIO(f.read()), name)  # zipfile needs to seek


# ---------------------------------------------------------------- writing

def _encode(obj: Any, keys: tuple[str | int, ...], arrays: dict[str, np.ndarray]) -> Any:
    """`obj` as JSON-ready data, its Tensors, arrays and NumPy scalars moved into `arrays`."""
    if isinstance(obj, Tensor):
        return {"__tensor__": [_store(obj.detach().numpy(), keys, arrays), obj.requires_grad]}
    if type(obj) is np.ndarray:  # not a subclass: a masked array would lose its mask
        return {"__array__": _store(obj, keys, arrays)}
    if isinstance(obj, np.generic):  # before float: np.float64 is one, and must come back as np.float64
        return {"__scalar__": _store(np.asarray(obj), keys, arrays)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, (*keys, i), arrays) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, (str, int))]
        if bad:
            raise TypeError(f"save: {_where(keys)} has a key of type {type(bad[0]).__name__} ({bad[0]!r}); "
                            "keys must be str or int")
        # a dict that looks like a marker is stored as items, so it is not read back as what it looks like
        if all(isinstance(k, str) for k in obj) and not (len(obj) == 1 and next(iter(obj)) in _MARKERS):
            return {k: _encode(v, (*keys, k), arrays) for k, v in obj.items()}
        return {"__items__": [[k, _encode(v, (*keys, k), arrays)] for k, v in obj.items()]}
    raise TypeError(f"save: {_where(keys)} is a {type(obj).__name__}; save stores Tensors, NumPy arrays and "
                    "scalars, bools, ints, floats, strings, None, and dicts, lists and tuples of them")


def _store(array: np.ndarray, keys: tuple[str | int, ...], arrays: dict[str, np.ndarray]) -> str:
    """Put `array` into `arrays` under a new entry name made from `keys`; return the name."""
    if array.dtype.hasobject:  # np.savez would pickle it
        raise TypeError(f"save: {_where(keys)} is a NumPy array of dtype {array.dtype}, which only pickle could "
                        "store")
    segments = [_UNSAFE.sub("_", str(k)) for k in keys]
    base = "/".join(s if s.strip(".") else "_" for s in segments)[:200] or "obj"  # no '.' or '..' path parts
    name, n = base, 0
    while name in arrays or name in _RESERVED:  # keys that differ in unsafe characters, or 'a/b' and 'a' -> 'b'
        n += 1
        name = f"{base}#{n}"  # '#' is not in any base, so this name is new
    arrays[name] = array
    return name


def _where(keys: tuple[str | int, ...]) -> str:
    return "obj" + "".join(f"[{k!r}]" for k in keys)


# ---------------------------------------------------------------- reading

def _read(file: IO[bytes], name: str) -> Any:
    start = file.tell()
    head = file.read(8)
    file.seek(start)
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise FileFormatError(name, _not_a_zip(head)) from None
    except _DAMAGE as e:  # a zip whose central directory is damaged
        raise FileFormatError(name, f"damaged ({type(e).__name__}: {e})") from None
    with archive:
        if DESCRIPTION + ".npy" not in archive.namelist():
            torch_file = any(entry.endswith("/data.pkl") for entry in archive.namelist())
            raise FileFormatError(name, "a PyTorch file (torch.save); read it with torch.load" if torch_file
                                  else f"a zip or .npz file without {DESCRIPTION}")
        try:
            read = functools.partial(_read_array, archive, name)
            description = read(DESCRIPTION)
            if description.shape != () or description.dtype.kind != "U":
                raise ValueError(f"{DESCRIPTION} is not a JSON string")
            description = json.loads(description[()])
            if not isinstance(description, dict):
                raise ValueError(f"{DESCRIPTION} is not a JSON object")
            if {k: description.get(k) for k in _OLD_CHECKPOINT} == _OLD_CHECKPOINT:
                return _decode(description, read)
            if description.get("format") != FORMAT:
                raise FileFormatError(name, f"a {DESCRIPTION} of another format ({description.get('format')!r})")
            if description.get("version") != VERSION:
                raise FileFormatError(name, f"format version {description.get('version')!r}; this tinygrad_cnn "
                                      f"reads version {VERSION}")
            return _decode(description["obj"], read)
        except FileFormatError:
            raise
        except _DAMAGE as e:
            raise FileFormatError(name, f"damaged ({type(e).__name__}: {e})") from None


def _not_a_zip(head: bytes) -> str:
    """What a file that is not a zip archive is, from its first bytes."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):  # pickle's PROTO opcode
        return "a pickle (torch.save wrote those before PyTorch 1.6), which load never reads: unpickling can run code"
    if head.startswith(b"\x93NUMPY"):
        return "a .npy file; read it with numpy.load"
    return "not an .npz (zip) file, or a truncated one"


def _read_array(archive: zipfile.ZipFile, name: str, entry: str) -> np.ndarray:
    with archive.open(entry + ".npy") as member:
        try:
            return np.lib.format.read_array(member, allow_pickle=False)
        except ValueError as e:  # an object array (which would need pickle) or a damaged header
            raise FileFormatError(name, f"entry {entry!r} is damaged or holds pickled data, which load never "
                                  f"reads ({e})") from None


def _decode(node: Any, read: Callable[[str], np.ndarray]) -> Any:
    """The object that `_encode` made `node` from, reading entries with `read`."""
    if isinstance(node, list):
        return [_decode(v, read) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and (marker := next(iter(node))) in _MARKERS:
        value = node[marker]
        if marker == "__tensor__":
            entry, requires_grad = value
            return Tensor(read(entry), requires_grad=bool(requires_grad))
        if marker == "__array__":
            return read(value)
        if marker == "__scalar__":
            return read(value)[()]
        if marker == "__tuple__":
            return tuple(_decode(v, read) for v in value)
        return {k: _decode(v, read) for k, v in value}
    return {k: _decode(v, read) for k, v in node.items()}
