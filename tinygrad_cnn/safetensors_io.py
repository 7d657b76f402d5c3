"""`save_safetensors(tensors, path)` and `load_safetensors(path)`: a flat dict of named Tensors in the
safetensors format, as `safetensors.torch.save_file` / `load_file` write and read it, so that weights go to
and from PyTorch (and anything else that reads safetensors):

    save_safetensors(model.state_dict(), "model.safetensors")      # torch: load_file + load_state_dict
    model.load_state_dict(load_safetensors("from_torch.safetensors"))

Built on the NumPy API of the optional `safetensors` package (`pip install 'tinygrad_cnn[safetensors]'`).
A safetensors file holds named arrays and a str -> str metadata dict, nothing that could run code.

Differences from PyTorch's save_file: a tensor is always written in row-major order, where save_file refuses
a non-contiguous one. Which of our tensors are contiguous is NumPy's business (a transposed weight, a view
after loading) and need not match PyTorch's, so refusing would fail on tensors PyTorch would save.
Tensors that share memory are refused with a RuntimeError, as save_file does: loaded back, they would be
separate copies.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Union

import numpy as np

from .tensor import Tensor

INSTALL_HINT = "pip install 'tinygrad_cnn[safetensors]'"
PathLike = Union[str, os.PathLike]


def _safetensors_numpy() -> Any:
    """The `safetensors.numpy` module; ImportError with the install command if the package is missing."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"safetensors files need the safetensors package, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return safetensors.numpy


def save_safetensors(tensors: Mapping[str, Tensor], path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write the named Tensors `tensors` (e.g. a `state_dict()`) to the safetensors file `path`, with their
    dtypes and shapes, and the text `metadata` (str -> str) in its header.

    As PyTorch's save_file, raises ValueError if `tensors` is not a dict of Tensors, TypeError for a name or
    metadata that is not a str, RuntimeError for tensors that share memory (tied weights: save one name,
    tie them again after loading)."""
    if not isinstance(tensors, Mapping):
        raise ValueError(f"save_safetensors: expected a dict of str to Tensor, got {type(tensors).__name__}")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_safetensors: tensor names must be str, got {name!r} ({type(name).__name__})")
        if not isinstance(value, Tensor):
            raise ValueError(f"save_safetensors: {name!r} is a {type(value).__name__}, not a Tensor")
        arrays[name] = value.detach().numpy()
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"save_safetensors: metadata must map str to str, got {key!r}: {value!r}")
    shared = _shared_groups(arrays)
    if shared:
        names = "; ".join(", ".join(group) for group in shared)
        raise RuntimeError(f"save_safetensors: some tensors share memory and would load as separate copies: "
                           f"{names}. Save one name of each group (or a .clone() of the others) and tie them "
                           "again after loading")
    module = _safetensors_numpy()
    # not np.ascontiguousarray, which turns a 0-d array (num_batches_tracked) into shape (1,)
    module.save_file({name: np.require(a, requirements="C") for name, a in arrays.items()}, os.fspath(path),
                     metadata=None if metadata is None else dict(metadata))


def load_safetensors(path: PathLike) -> dict[str, Tensor]:
    """The named Tensors of the safetensors file `path`, with their dtypes and shapes, not requiring grad.
    The header's metadata is `safetensors.safe_open(path, framework="np").metadata()`. A missing file is a
    FileNotFoundError; a file that is not safetensors, the library's SafetensorError."""
    module = _safetensors_numpy()
    # Tensor() copies: the library's arrays are read-only views of the file, which in-place ops would fail on
    return {name: Tensor(array) for name, array in module.load_file(os.fspath(path)).items()}


def _shared_groups(arrays: Mapping[str, np.ndarray]) -> list[list[str]]:
    """Groups of names (2 or more) whose arrays' memory ranges overlap, found by a sweep over the ranges
    sorted by start. Empty arrays share nothing."""
    byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # np.byte_bounds before NumPy 2.0
    spans = sorted((*byte_bounds(a), name) for name, a in arrays.items() if a.size)
    groups: list[list[str]] = []
    end = None
    for start, stop, name in spans:
        if end is not None and start < end:
            groups[-1].append(name)
            end = max(end, stop)
        else:
            groups.append([name])
            end = stop
    return [sorted(group) for group in groups if len(group) > 1]
