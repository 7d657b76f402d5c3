"""Devices, as torch.device. Everything runs on NumPy, so 'cpu' is the only device; `device=`
arguments and `.to(device)` accept it (and check it), so PyTorch scripts run unchanged.

This is where a GPU array backend would plug in: a device names where a tensor's array lives,
and `to_device` is the one place that moves arrays between devices.
"""
from __future__ import annotations

from typing import Any


class device:
    """A device: `device('cpu')`, `device('cpu', 0)`, `device('cuda:0')` (made, but no tensor can
    go there)."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {type!r}")
        name, _, number = type.partition(":")
        if name not in ("cpu", "cuda", "mps", "meta", "xpu"):
            raise RuntimeError(f"device: expected one of cpu, cuda, mps, meta, xpu device type at start of "
                               f"device string: {type!r}")
        if number:
            if index is not None or not number.isdigit():
                raise RuntimeError(f"device: invalid device string {type!r}")
            index = int(number)
        self.type, self.index = name, index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"


CPU = device("cpu")


def to_device(target: Any, op: str) -> None:
    """Check that `target` (None, a string or a device) is the CPU: the one place arrays would move."""
    if target is None:
        return
    target = target if isinstance(target, device) else device(target) if isinstance(target, str) else None
    if target is None:
        raise TypeError(f"{op}: device must be a string or a tinygrad_cnn.device")
    if target.type != "cpu":
        raise RuntimeError(f"{op}: device {str(target)!r} is not available: tinygrad_cnn runs on the CPU only "
                           "(NumPy); use 'cpu' (cuda.is_available() is False)")


class _Unavailable:
    """`cuda` and `accelerator`: the namespaces a script checks before moving to a GPU."""

    def __init__(self, name: str) -> None:
        self.__name__ = name

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0


cuda = _Unavailable("cuda")
accelerator = _Unavailable("accelerator")
