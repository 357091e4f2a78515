"""Process-wide settings, applied once by the entry points (CLI, runner workers, notebooks' runner
calls) rather than by a training run: the device, torch's thread count, the allocator, cuDNN."""

from __future__ import annotations

import os

import torch

from deepcls.allocator import keep_freed_memory
from deepcls.errors import ConfigError


def device_type(device: str) -> str:
    """``cuda``, ``cpu`` or ``mps``: where a run of this device setting trains (no check that it exists)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device).type


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; any other name as given, if this machine has it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            have = f"it has {count} CUDA device(s)" if count else "CUDA is not available"
            raise ConfigError(f"device {device!r} is not on this machine ({have}); use --device auto or cpu")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} is not on this machine (MPS is not available); use --device auto or cpu")
    return resolved


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of ``jobs`` concurrent trainings: the cores shared out, at least one
    (two 1-thread trainings on 2 cores do ~1.3x the work of one 2-thread training)."""
    return max(1, cores() // jobs)


def configure(device: str | torch.device = "auto", threads: int | None = None) -> torch.device:
    """Set up this process for training on ``device``; returns the resolved device.

    ``threads`` sets torch's intra-op thread count (None leaves it). On the CPU, freed memory is
    kept inside the process (deepcls.allocator); on CUDA, cuDNN times its kernels once for the
    fixed batch shapes, and convolutions and matmuls stay in fp32: cuDNN's default TF32 would round
    GPU runs differently from the CPU runs the ledger compares them with (a different seed of the
    same row may have trained on either), while the report's small models are bound by kernel
    launches, not arithmetic.
    """
    resolved = resolve_device(device) if isinstance(device, str) else device
    if threads:
        torch.set_num_threads(threads)
    if resolved.type == "cpu":
        keep_freed_memory()
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return resolved
