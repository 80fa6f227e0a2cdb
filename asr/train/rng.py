"""Random number generators for exact resume: seeds derived from counters, and every global
RNG's state as values a checkpoint can hold.

A training step seeds torch, numpy and `random` from (seed, rank, epoch, batch), so what it
draws (dropout, SpecAugment) depends on nothing else: a resumed run repeats an uninterrupted
one's draws exactly, whatever consumed random numbers in between.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from a tuple of integers (e.g. seed, epoch, index)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> 1)


def seed_step(*keys: int) -> None:
    """Seed torch, numpy and random from `keys`."""
    seed = derive_seed(*keys)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_states() -> dict[str, Any]:
    """Every global RNG's state, as tensors and plain values (loadable with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
