"""The machine probe (deepcls.engine.probe): measured once per process, and invisible to training."""

from __future__ import annotations

import math

import pytest
import torch

from deepcls.engine import probe as machine


def test_the_probe_is_measured_once_and_leaves_the_global_rng_alone() -> None:
    """Training draws dropout masks from the global RNG: timing the machine must not move it."""
    machine._measure.cache_clear()
    state = torch.get_rng_state()
    first = machine.probe_seconds("cpu", 1)
    assert torch.equal(torch.get_rng_state(), state)
    assert math.isfinite(first) and first > 0
    assert machine.probe_seconds(torch.device("cpu"), 1) == first  # cached: one measurement per process
    assert machine._measure.cache_info().misses == 1


def test_cpu_bf16_names_the_arithmetic_the_cpu_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """AMX wins over AVX512-BF16; with neither, bf16 is emulated."""
    from deepcls.engine import summary as metrics

    for caps, kind in (
        ({"amx_bf16": True, "avx512_bf16": True}, "amx"),
        ({"amx_bf16": False, "avx512_bf16": True}, "avx512_bf16"),
        ({"amx_bf16": False, "avx512_bf16": False}, "emulated"),
        ({}, "emulated"),
    ):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        assert metrics.cpu_bf16() == kind


def test_a_probe_on_busy_cores_says_it_reads_high(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two trainings on 2 cores leave no core for a 1-thread probe; one training leaves one."""
    said = machine.busy_note("cpu", 1, load=2.0, have=2)
    assert said.startswith("This machine was busy while it probed (1-minute load 2.0 on 2 cores, probe on 1 thread)")
    assert machine.busy_note("cpu", 1, load=1.2, have=2) == ""
    assert "probe on 2 threads" in machine.busy_note("cpu", 2, load=1.2, have=2)
    assert machine.busy_note("cuda", 1, load=8.0, have=2) == ""  # the accelerator does not share the cores
    for load, busy in ((5.0, True), (0.0, False)):  # by default this machine's own 1-minute load average
        monkeypatch.setattr(machine.os, "getloadavg", lambda load=load: (load, load, load))
        assert (f"(1-minute load {load:.1f} on " in machine.busy_note("cpu", 1, have=2)) is busy
