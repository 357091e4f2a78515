"""Seconds per epoch of two configs' training steps, timed side by side in one process.

What one model costs per epoch beside another is a property of the two models on one machine, not
of any run: wall times of runs trained at different times, or on different machines, differ by the
machines. So both configs' trainers are built once here, each with one fixed full batch, and
torch.utils.benchmark times blocks of each model's steps in turn, the order alternating between
repeats so that a drift in the machine's speed falls on both. Each repeat's median seconds per step
times the config's steps per epoch is one paired observation (deepcls.store.timings), which
deepcls.analysis.ledger reads with a paired t interval.

A step is the engine's own (deepcls.engine.fit.Trainer.step: forward, loss, backward, optimiser
step, in the config's precision and memory format). Loading and augmenting batches is the same
work for both models and is left out, as is the evaluation pass.
"""

from __future__ import annotations

import datetime as dt

import torch
from tqdm.auto import tqdm

from deepcls.bench.timing import benchmark, synchronize
from deepcls.config import RunConfig
from deepcls.engine.fit import Trainer
from deepcls.engine.runtime import configure
from deepcls.numeric import resolve_precision, target_device
from deepcls.progress import bar_timing, show_progress
from deepcls.store.timings import StepTiming, step_config

REPEATS = 10
MIN_RUN_TIME = 0.5  # seconds per block of one model's steps (Timer.blocked_autorange)


def time_pair(
    conclusion: str,
    a: RunConfig,
    b: RunConfig,
    data_dir: str | None = None,
    *,
    repeats: int = REPEATS,
    min_run_time: float = MIN_RUN_TIME,
    progress: bool | None = None,
) -> StepTiming:
    """Time ``a``'s and ``b``'s training steps ``repeats`` times each, alternating, on ``a``'s device
    with torch's current thread count; the pairs are seconds per epoch."""
    if repeats < 1 or not min_run_time > 0:
        raise ValueError("repeats must be >= 1 and min_run_time > 0")
    device = configure(a.device)
    precision = resolve_precision(a.precision, device)  # recorded as timed: auto is bf16 or fp32 by machine
    trainers = [Trainer(config, data_dir) for config in (a, b)]
    steps = []
    for trainer in trainers:
        x, y = next(iter(trainer.train_loader.epoch(0)))  # a full batch: the loader's first
        trainer.step(x, y)  # first call: allocations, kernel selection
        timer = benchmark.Timer(
            stmt="trainer.step(x, y)",
            globals={"trainer": trainer, "x": x, "y": y},
            num_threads=torch.get_num_threads(),
        )
        steps.append(timer)
    synchronize()
    per_epoch = [len(t.train_loader) for t in trainers]
    seconds: list[list[float]] = [[], []]
    order = tqdm(
        range(repeats),
        desc=f"timing {a.model} vs {b.model}",
        unit="repeat",
        disable=not show_progress(progress),
        **bar_timing(),
    )
    for repeat in order:
        for side in (0, 1) if repeat % 2 == 0 else (1, 0):
            median = steps[side].blocked_autorange(min_run_time=min_run_time).median
            seconds[side].append(float(median) * per_epoch[side])
    threads = torch.get_num_threads() if device.type == "cpu" else None
    return StepTiming(
        conclusion=conclusion,
        profile=a.profile,
        configs=(step_config(a, precision), step_config(b, precision)),
        device=target_device(str(device), threads=threads),
        steps=(per_epoch[0], per_epoch[1]),
        seconds_a=tuple(seconds[0]),
        seconds_b=tuple(seconds[1]),
        measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        torch=torch.__version__,
    )
