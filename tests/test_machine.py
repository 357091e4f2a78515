"""The machine probe (deepcls.machine): measured once per process, and invisible to training."""

from __future__ import annotations

import math

import torch

from deepcls import machine


def test_the_probe_is_measured_once_and_leaves_the_global_rng_alone() -> None:
    """Training draws dropout masks from the global RNG: timing the machine must not move it."""
    machine._measure.cache_clear()
    state = torch.get_rng_state()
    first = machine.probe_seconds("cpu", 1)
    assert torch.equal(torch.get_rng_state(), state)
    assert math.isfinite(first) and first > 0
    assert machine.probe_seconds(torch.device("cpu"), 1) == first  # cached: one measurement per process
    assert machine._measure.cache_info().misses == 1
