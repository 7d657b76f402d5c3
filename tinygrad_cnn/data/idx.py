"""The IDX file format, in which MNIST, Fashion-MNIST and KMNIST are distributed.

Layout (all integers big-endian):

    bytes 0-1   0x00 0x00
    byte  2     the element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     the number of dims, d
    then        d sizes, each a 4-byte unsigned int
    then        the elements, in C (row-major) order, each big-endian

Files may be gzip-compressed (as they are downloaded); `read_idx` recognises gzip by its
magic bytes or a `.gz` suffix, `write_idx` compresses when the path ends in `.gz`.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..tensor import Tensor

# IDX type code -> big-endian NumPy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not (raw[:2] == _GZIP_MAGIC or path.suffix == ".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise ValueError(f"{path}: not a valid gzip file ({e})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (plain or gzip), in native byte order.

    Raises ValueError naming the file if it is corrupt: bad gzip data, a wrong magic number,
    a truncated header or data, or bytes past the end of the data.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need at least 4)")
    magic = int.from_bytes(raw[:4], "big")
    zeros, code, ndim = raw[:2], raw[2], raw[3]
    if zeros != b"\x00\x00" or code not in IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: not an IDX file: bad magic number 0x{magic:08X} (expected 0x0000TTDD with "
                         f"type TT in {', '.join(f'{c:02X}' for c in IDX_DTYPES)} and DD >= 1 dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dims need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: a corrupt header cannot overflow
    found = len(raw) - header
    if found != expected:
        problem = "truncated data" if found < expected else "unexpected bytes after the data"
        raise ValueError(f"{path}: {problem}: shape {shape} of {dtype.newbyteorder('=')} needs {expected} bytes, "
                         f"found {found}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: Any) -> None:
    """Write `array` (NumPy or Tensor, at least 1-d) as an IDX file; gzip-compressed if `path` ends in .gz.

    The dtype must be one IDX can hold: uint8, int8, int16, int32, float32 or float64.
    """
    path = Path(path)
    arr = np.asarray(array.detach().numpy() if isinstance(array, Tensor) else array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX cannot store dtype {arr.dtype}; convert first, e.g. .astype(np.uint8) "
                        f"(supported: uint8, int8, int16, int32, float32, float64)")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: IDX holds arrays of 1 to 255 dims, got shape {arr.shape}")
    if max(arr.shape) >= 2 ** 32:
        raise ValueError(f"write_idx: every size must fit in 32 bits, got shape {arr.shape}")
    payload = (bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
               + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes())
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)  # mtime=0: the same array gives the same bytes
    path.write_bytes(payload)


def _find(directory: Path, prefix: str, kind: str, idx: str) -> Path:
    names = [f"{prefix}-{kind}{sep}{idx}-ubyte{gz}" for sep in ("-", ".") for gz in ("", ".gz")]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no {'training' if prefix == 'train' else 'test'} {kind} file in {directory}; "
                            f"tried {', '.join(names)}")


def load_idx_dataset(directory: str | os.PathLike, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style images and labels from the standard IDX files in `directory`.

    Looks for `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (or `t10k-...` when
    `train=False`), also spelled `train-images.idx3-ubyte`, each possibly with `.gz`.

    Returns:
        images: uint8 array (N, H, W), 28x28 for MNIST, Fashion-MNIST and KMNIST.
        labels: int64 array (N,).
    """
    directory = Path(directory)
    prefix = "train" if train else "t10k"
    images_path = _find(directory, prefix, "images", "idx3")
    labels_path = _find(directory, prefix, "labels", "idx1")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    return images, labels.astype(np.int64)
