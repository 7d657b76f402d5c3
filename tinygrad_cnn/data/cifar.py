"""CIFAR-10 from the "python version" batch files (cifar-10-batches-py): `data_batch_1` ... `data_batch_5`
for training, `test_batch` for testing.

Each file is a pickle of a dict with b"data", a (N, 3072) uint8 array (the 1024 red, then green, then
blue pixels of each 32x32 image, rows top to bottom) and b"labels", a list of N ints in 0..9.

Safety. Unpickling can run arbitrary code, so the files are read with a restricted unpickler
(`SafeUnpickler`) that builds plain data (dicts, lists, bytes, str, int, ...) and, of all the globals
a pickle can name, allows only the three NumPy rebuilds an array from (`_reconstruct`, `ndarray`,
`dtype`: the official files pickle b"data" as an array). They make arrays and nothing else; every other
global is refused (`find_class` raises `pickle.UnpicklingError`), so nothing in a file can run.
b"data" may also be bytes (N * 3072 pixels) or a list of N rows.
"""
from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
IMAGE_SHAPE = (3, 32, 32)


# How NumPy rebuilds a pickled array, under the module names NumPy 1 and 2 pickle it with, and how
# Python 3's protocol 2 rebuilds bytes (the array's raw data): functions that only make arrays and bytes
_ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): np.zeros(0).__reduce__()[0],
                  ("numpy._core.multiarray", "_reconstruct"): np.zeros(0).__reduce__()[0],
                  ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler for plain data: dicts, lists, bytes, str, int (and the tuples, floats, None and
    booleans the protocol builds without a global), and NumPy arrays. Every other global is refused,
    so nothing can run."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ARRAY_GLOBALS:
            return _ARRAY_GLOBALS[module, name]
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}: only plain data "
                                     f"(dict, list, bytes, str, int) and NumPy arrays are allowed")


def safe_loads(data: bytes) -> Any:
    """`pickle.loads` with `SafeUnpickler`: plain data only, no globals."""
    return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 3072) and labels int64 (N,) of one batch file; b"data" is bytes or a list of rows."""
    try:
        batch = safe_loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path}: expected a dict with b'data' and b'labels', got {type(batch).__name__}")
    data, labels = batch[b"data"], batch[b"labels"]
    try:
        images = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
        images = images.reshape(-1, 3072)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (ValueError, TypeError, OverflowError) as e:
        raise ValueError(f"{path}: b'data' must hold N rows of 3072 uint8 pixels and b'labels' N ints ({e})") \
            from None
    if len(images) != len(labels):
        raise ValueError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def is_cifar10_dir(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds CIFAR-10's python batch files (it has `data_batch_1` or `test_batch`)."""
    return any((Path(directory) / name).is_file() for name in (TRAIN_FILES[0], TEST_FILE))


def read_cifar10_batches(directory: str | os.PathLike, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10's pixels as stored, and labels, from the python batch files in `directory`, read without
    running code (see the module docstring).

    Reads `data_batch_1` ... `data_batch_5` (those present, at least the first) when `train`, else
    `test_batch`.

    Returns:
        images: uint8 array (N, 3, 32, 32).
        labels: int64 array (N,).
    """
    directory = Path(directory)
    names = TRAIN_FILES if train else (TEST_FILE,)
    paths = [directory / name for name in names if (directory / name).is_file()]
    if not paths or paths[0].name != names[0]:
        raise FileNotFoundError(f"no {'training' if train else 'test'} batch file {names[0]} in {directory}")
    batches = [_read_batch(path) for path in paths]
    images = np.concatenate([b[0] for b in batches]).reshape(-1, *IMAGE_SHAPE)
    return images, np.concatenate([b[1] for b in batches])


def load_cifar10_dataset(directory: str | os.PathLike, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 as `read_cifar10_batches` reads it, with the images as float32 (N, 3, 32, 32) in [0, 1]
    and the labels int64 (N,)."""
    images, labels = read_cifar10_batches(directory, train)
    return images.astype(np.float32) / np.float32(255), labels
