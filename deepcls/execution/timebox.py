"""Time-boxed training: a grid's missing runs, several at once, stopped cleanly before a deadline.

For a job with a wall-time limit (a cluster allocation, a rented GPU): ``deepcls results --train
--budget-s S`` trains what the store lacks, the tables named first and within them the runs the
report's conclusions compare first, with several runs in flight (deepcls.execution.interleaved,
whose deadline scheduler parks the runs that cannot finish in time; running it again resumes
them). ``deepcls runs export`` then packs the finished runs for another store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import partial

import pandas as pd

from deepcls.data import get_spec
from deepcls.engine import runtime
from deepcls.execution.chains import Chain, Executor, Options, Outcome
from deepcls.execution.interleaved import RUNS_AT_ONCE
from deepcls.execution.runner import ConcurrentExecutor, run_grid
from deepcls.numeric import device_name
from deepcls.paper.conclusions import conclusions_first
from deepcls.store.runs import RunStore

CHECKPOINT_EVERY_S = 60.0  # a resume point per run per minute, not per (seconds-long) epoch


def train_within(
    grid: pd.DataFrame,
    store: RunStore,
    *,
    tables: Sequence[str] | None = None,
    budget_s: float | None = None,
    runs: int = RUNS_AT_ONCE,
    data_dir: str | None = None,
    progress: bool | None = None,
    keep_weights: bool = False,
) -> dict:
    """Train ``grid``'s missing runs within ``budget_s`` seconds; returns what was trained and how
    fast (images trained per second of the whole job)."""
    start = time.monotonic()
    before = set(store.run_ids())
    grid = tables_first(conclusions_first(grid), tables)
    configs = list(dict.fromkeys(grid["config"]))
    device = runtime.configure(configs[0].device if configs else "auto")
    log = partial(print, flush=True)
    executor = _Logged(ConcurrentExecutor(runs=runs, budget_s=budget_s, checkpoint_every_s=CHECKPOINT_EVERY_S, log=log))
    outcomes = run_grid(
        configs, store=store, data_dir=data_dir, executor=executor, progress=progress, keep_weights=keep_weights
    )
    trained = time.monotonic() - start
    new = sorted(set(store.run_ids()) - before)
    images = sum(_images_trained(store, run_id) for run_id in new)
    return {
        "device": device_name(device),
        "runs_at_once": runs,
        "budget_s": budget_s,
        "training_s": round(trained, 1),
        "runs_in_grid": len(configs),
        "runs_trained": sum(store.has(store.load(r).config) for r in new),
        "runs_failed": sorted(o.run_id for o in outcomes if o.error),
        "runs_missing": sum(not store.has(c) for c in configs),
        "images_trained": images,
        "images_per_s": round(images / trained) if trained > 0 else None,
    }


def tables_first(grid: pd.DataFrame, tables: Sequence[str] | None) -> pd.DataFrame:
    """``grid`` with the runs of the tables named first ahead of the others (a config several tables
    share goes with its first), keeping its order within each table: a short job trains what the
    caller needs most (e.g. the rows an acceptance point names) before the rest."""
    if not tables:
        return grid
    place = {t: i for i, t in enumerate(tables)}
    rank: dict = {}
    for config, table in zip(grid["config"], grid["table"]):
        rank[config] = min(place.get(table, len(place)), rank.get(config, len(place)))
    order = sorted(range(len(grid)), key=lambda i: rank[grid["config"].iloc[i]])
    return grid.iloc[order].reset_index(drop=True)


class _Logged:
    """An executor that prints one line per finished run (a killed job still shows its progress)."""

    def __init__(self, executor: Executor) -> None:
        self.executor, self.start = executor, time.monotonic()

    def run(self, chains: list[Chain], options: Options) -> Iterator[list[Outcome]]:
        print(f"{sum(len(c) for c in chains)} runs to train", flush=True)
        for outcomes in self.executor.run(chains, options):
            for o in outcomes:
                print(f"{time.monotonic() - self.start:6.0f} s  {o.run_id}  {o.error or 'stored'}", flush=True)
            yield outcomes


def _images_trained(store: RunStore, run_id: str) -> int:
    """Training images a new run went through here: its epochs after the shorter run it continues."""
    record = store.load(run_id)
    m, config = record.metrics, record.config
    epochs = len(record.history)
    if m.get("extended_from") and (store.run_dir(m["extended_from"]) / "metrics.json").exists():
        epochs -= store.load(m["extended_from"]).config.epochs
    return epochs * (config.subset or get_spec(config.dataset).train_size)
