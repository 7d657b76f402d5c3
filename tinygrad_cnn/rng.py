"""The one random generator behind every random call (rand, randn, init, dropout, shuffling),
so `manual_seed(n)` makes a whole run reproducible."""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator (as torch.manual_seed) and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_generator() -> np.random.Generator:
    return _generator
