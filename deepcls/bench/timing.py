"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import torch

from deepcls.data import BatchLoader

WARMUP = 3


def seconds_per_call(fn: Callable[[], object], steps: int, warmup: int = WARMUP) -> float:
    """Mean seconds of ``fn()`` over ``steps`` calls made after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize()
    return (time.perf_counter() - start) / steps


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
