"""Timing helpers shared by the benchmarks, on torch.utils.benchmark (which waits for queued GPU
work before reading its clock)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import torch

# torch.utils.benchmark imports cpp_extension, which warns on every CPU-only machine
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

from deepcls.data import BatchLoader  # noqa: E402

WARMUP = 3


def seconds_per_call(fn: Callable[[], object], steps: int, warmup: int = WARMUP) -> float:
    """Mean seconds of ``fn()`` over ``steps`` calls made after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.timeit(steps).mean


def synchronize() -> None:
    """Wait for queued GPU work, so that a timer reads finished work, not launched work."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def endless(loader: BatchLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches over consecutive epochs, without end."""
    epoch = 0
    while True:
        yield from loader.epoch(epoch)
        epoch += 1
