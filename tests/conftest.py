"""Shared pytest settings: the seed of the random stall patterns is printed with every case."""

import os

import pytest

STALL_SEED = int(os.environ.get("SPIKEHQ_STALL_SEED", "20261123"))


@pytest.fixture
def stall_seed() -> int:
    print(f"stall seed {STALL_SEED} (set SPIKEHQ_STALL_SEED to change)")
    return STALL_SEED
