"""`Generator`, torch.Generator on the CPU, and `numpy_generator`, the one place that turns any
`generator=` argument (a Generator, a numpy.random.Generator or None) into the NumPy generator
to draw from.

A Generator wraps a NumPy PCG64 generator: the same seed gives the same numbers here every
time, but not the numbers torch.Generator gives. It lives apart from `rng` (the global
generator) because its state is a Tensor and `tensor` draws from `rng`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .device import CPU, device, to_device
from .rng import get_generator
from .tensor import Tensor

# torch.Generator()'s seed, so that Generator().initial_seed() is PyTorch's too
_DEFAULT_SEED = 67280421310721
_U64 = 2 ** 64
# get_state() layout, little-endian: PCG64 state (16 bytes), increment (16), the buffered 32-bit half of a draw
# (4) and whether it is there (1), the initial seed (8)
_STATE_FIELDS = (("state", 16), ("inc", 16), ("uinteger", 4), ("has_uint32", 1), ("seed", 8))
_STATE_SIZE = sum(size for _, size in _STATE_FIELDS)


class Generator:
    """A source of random numbers to pass as `generator=` (torch.Generator, CPU only).

        g = Generator().manual_seed(0)
        tg.rand(2, generator=g)          # the same two numbers after every manual_seed(0)

    Args:
        device: 'cpu' (or a tinygrad_cnn.device); another device raises RuntimeError.
    """

    def __init__(self, device: str | device = "cpu") -> None:
        to_device(device, "Generator")
        self.device = CPU
        self._numpy = np.random.Generator(np.random.PCG64(_DEFAULT_SEED))
        self._seed = _DEFAULT_SEED

    def manual_seed(self, seed: int) -> Generator:
        """Restart from `seed` (an int in [-2**63, 2**64); negative ones wrap around as in PyTorch); returns self."""
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)):
            raise RuntimeError(f"Generator.manual_seed: expected an int seed, but got {type(seed).__name__}")
        if not -2 ** 63 <= seed < _U64:
            raise ValueError(f"Generator.manual_seed: seed {seed} is out of range [-2**63, 2**64)")
        self._seed = int(seed) % _U64
        self._numpy.bit_generator.state = np.random.PCG64(self._seed).state
        return self

    def seed(self) -> int:
        """Restart from a fresh seed taken from the operating system's entropy, and return it."""
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed of the last manual_seed() or seed() (67280421310721 for a new Generator, as PyTorch's)."""
        return self._seed

    def get_state(self) -> Tensor:
        """The full state as a 1-D uint8 Tensor (PyTorch: a ByteTensor), for `set_state` or `tinygrad_cnn.save`."""
        pcg = self._numpy.bit_generator.state
        values = {**pcg["state"], "uinteger": pcg["uinteger"], "has_uint32": pcg["has_uint32"], "seed": self._seed}
        raw = b"".join(int(values[name]).to_bytes(size, "little") for name, size in _STATE_FIELDS)
        return Tensor._wrap(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Tensor) -> Generator:
        """Continue from a state that `get_state()` returned; returns self."""
        if not isinstance(new_state, Tensor):
            raise TypeError(f"Generator.set_state: expected a uint8 Tensor from get_state(), "
                            f"got {type(new_state).__name__}")
        if new_state.dtype != np.uint8 or new_state.shape != (_STATE_SIZE,):
            raise RuntimeError(f"Generator.set_state: expected a uint8 Tensor of shape ({_STATE_SIZE},) from "
                               f"get_state(), got {new_state.dtype} of shape {tuple(new_state.shape)}")
        raw, values, offset = new_state.numpy().tobytes(), {}, 0
        for name, size in _STATE_FIELDS:
            values[name] = int.from_bytes(raw[offset:offset + size], "little")
            offset += size
        self._numpy.bit_generator.state = {"bit_generator": "PCG64",
                                           "state": {"state": values["state"], "inc": values["inc"]},
                                           "has_uint32": values["has_uint32"], "uinteger": values["uinteger"]}
        self._seed = values["seed"]
        return self


def check_generator(generator: Any, where: str) -> None:
    """Raise TypeError unless `generator` can be passed as `generator=`; `where` names the caller."""
    if generator is not None and not isinstance(generator, (Generator, np.random.Generator)):
        raise TypeError(f"{where}: generator must be a tinygrad_cnn.Generator, a numpy.random.Generator "
                        f"(e.g. np.random.default_rng(0)) or None, got {type(generator).__name__}")


def numpy_generator(generator: Generator | np.random.Generator | None, where: str) -> np.random.Generator:
    """The NumPy generator a `generator=` argument draws from: a Generator's own, a NumPy one as it is, or for
    None the global one (looked up now, so a `manual_seed` after building a sampler still counts)."""
    check_generator(generator, where)
    if generator is None:
        return get_generator()
    return generator._numpy if isinstance(generator, Generator) else generator
