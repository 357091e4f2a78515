"""How fast the machine a run trains on is: the seconds one fixed workload takes there.

Wall times do not compare across machines: two machines that both call themselves ``cpu: x86_64 x1
threads`` can train one config at paces several times apart. A run therefore times one forward and
backward pass of a small fixed convolution net on its own device and threads, once per training
process (a resumed run times the machine it resumed on), and keeps it beside each epoch's seconds in
``history.csv`` (``probe_s``). Seconds divided by the probe compare across machines;
deepcls.analysis.ledger puts a seconds-per-epoch conclusion on one machine's scale with it, and
deepcls.analysis.costs says how this machine compares with the one a stored cost was measured on.

The workload's shapes are those of the 7x7-stem ResNet's middle (64 channels, 3x3 convolutions,
batch 32 of 32x32 maps), so memory traffic and arithmetic are mixed as in the runs it scales.
"""

from __future__ import annotations

import functools
import logging
import os

import torch
from torch import nn

# torch.utils.benchmark imports cpp_extension, which warns on every CPU-only machine
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

from deepcls.config import cores  # noqa: E402

PROBE_BATCH = 32
MIN_RUN_TIME = 0.5  # seconds of timing, split into blocks (torch.utils.benchmark.Timer.blocked_autorange)


def _workload(device: torch.device) -> nn.Module:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    torch.manual_seed(0)
    return nn.Sequential(
        *block(3, 64), *block(64, 64), *block(64, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)
    ).to(device)


@functools.cache
def _measure(device: torch.device, threads: int) -> float:
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # the runs' global RNG (dropout masks) stays untouched
        model = _workload(device)
        x = torch.randn(PROBE_BATCH, 3, 32, 32, device=device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    step()  # first call: allocations, kernel selection
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    return float(timer.blocked_autorange(min_run_time=MIN_RUN_TIME).median)


def probe_seconds(device: torch.device | str, threads: int | None = None) -> float:
    """Median seconds of one probe step on ``device`` with ``threads`` (torch's current count by
    default); measured once per process, device and thread count (the GPU engine's many runs share
    one measurement)."""
    return _measure(torch.device(device), threads or torch.get_num_threads())


def busy_note(device: torch.device | str, threads: int, load: float | None = None, have: int | None = None) -> str:
    """A caveat when other work held the cores a CPU probe needed (``load``: the 1-minute load average,
    this machine's by default; ``have``: its cores): the probe may then read high, and so would the
    costs put on it. Empty on an accelerator or an idle enough CPU."""
    if torch.device(device).type != "cpu":
        return ""
    if load is None:
        if not hasattr(os, "getloadavg"):
            return ""
        load = os.getloadavg()[0]
    have = have or cores()
    if load <= have - threads + 0.5:  # a free core for each probing thread
        return ""
    return (
        f"This machine was busy while it probed (1-minute load {load:.1f} on {have} cores, probe on {threads} "
        f"thread{'s' if threads != 1 else ''}): the probe, and the costs put on it, may read high; "
        "ask again when it is idle."
    )
