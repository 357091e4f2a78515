"""One GPU window: data in, a profile's missing runs trained within a time budget, one archive out.

``deepcls gpu window`` on a fresh, offline GPU machine: it rebuilds the datasets from their
verified parts (deepcls.store.archive), trains what the store lacks (the runs the report's claims
compare first) with several runs at once (deepcls.execution.interleaved), stops cleanly before the budget
runs out (running it again resumes), and writes into ``--out`` one ``.tar.gz`` of the run folders
it finished and a timing table. ``deepcls gpu merge`` puts the archive's runs into a store here.
README "On a GPU" gives the procedure step by step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from deepcls.data import get_spec
from deepcls.engine import runtime
from deepcls.engine import summary as metrics
from deepcls.execution.interleaved import RUNS_AT_ONCE
from deepcls.execution.runner import Chain, ConcurrentExecutor, Executor, Options, Outcome, run_grid
from deepcls.paper import grids as experiments
from deepcls.paper.conclusions import conclusions_first
from deepcls.report.formatting import frame_to_markdown
from deepcls.store.archive import join_all, pack_runs
from deepcls.store.runs import RunStore

ARCHIVE = "deepcls-runs.tar.gz"
CHECKPOINT_EVERY_S = 60.0  # a resume point per run per minute, not per (seconds-long) epoch
TIMING_COLUMNS = ["run_id", "table", "row", "seed", "model", "dataset", "epochs", "status", "wall_time_s"]


def gpu_window(
    out_dir: str,
    *,
    profile: str = "paper",
    seeds: Sequence[int] = (0, 1, 2),
    tables: Sequence[str] | None = None,
    rows: Sequence[int] | None = None,
    budget_s: float | None = None,
    runs: int = RUNS_AT_ONCE,
    parts_dir: str | None = None,
    data_dir: str | None = None,
    results_dir: str | None = None,
    progress: bool | None = None,
) -> dict:
    """Train a profile's missing runs within ``budget_s`` seconds; write the archive of the runs it
    finished and ``timing.csv`` / ``timing.md`` into ``out_dir``; returns the summary."""
    start = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if parts_dir is not None:
        join_all(parts_dir, data_dir or "data")
    store = RunStore(results_dir)
    before = set(store.run_ids())
    grid = experiments.grid(tables or list(experiments.ALL_TABLES), profile, seeds, rows)
    grid = tables_first(conclusions_first(grid), tables)
    configs = list(dict.fromkeys(grid["config"]))
    device = runtime.configure(configs[0].device if configs else "auto")
    train_start = time.monotonic()
    budget = None if budget_s is None else max(0.0, budget_s - (train_start - start))
    log = partial(print, flush=True)
    executor = _Logged(ConcurrentExecutor(runs=runs, budget_s=budget, checkpoint_every_s=CHECKPOINT_EVERY_S, log=log))
    outcomes = run_grid(configs, store=store, data_dir=data_dir, executor=executor, progress=progress)
    trained = time.monotonic() - train_start
    new = sorted(set(store.run_ids()) - before)
    finished = [r for r in new if store.has(store.load(r).config)]
    pack_runs(store, finished, out / ARCHIVE)

    lines = grid.assign(run_id=[c.run_id for c in grid["config"]]).drop_duplicates("run_id").set_index("run_id")
    table = pd.DataFrame([_timing_line(store, run_id, lines) for run_id in new], columns=_columns())
    table.to_csv(out / "timing.csv", index=False)
    missing = [c for c in configs if not store.has(c)]
    summary = {
        "device": metrics.device_name(device),
        "torch": torch.__version__,
        "profile": profile,
        "seeds": list(seeds),
        "runs_at_once": runs,
        "budget_s": budget_s,
        "training_s": round(trained, 1),
        "runs_in_grid": len(configs),
        "runs_trained": len(finished),
        "runs_failed": sorted(o.run_id for o in outcomes if o.error),
        "runs_missing": len(missing),
        "images_trained": int(table["images_trained"].sum()) if len(table) else 0,
    }
    summary["images_per_s"] = round(summary["images_trained"] / trained) if trained > 0 else None
    header = "\n".join(f"- {k}: {v}" for k, v in summary.items())
    (out / "timing.md").write_text(f"# GPU window\n\n{header}\n\n{frame_to_markdown(table)}\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def tables_first(grid: pd.DataFrame, tables: Sequence[str] | None) -> pd.DataFrame:
    """``grid`` with the runs of the tables named first ahead of the others (a config several tables
    share goes with its first), keeping its order within each table: a short window trains what the
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
    """An executor that prints one line per finished run (a killed window still shows its progress)."""

    def __init__(self, executor: Executor) -> None:
        self.executor, self.start = executor, time.monotonic()

    def run(self, chains: list[Chain], options: Options) -> Iterator[list[Outcome]]:
        print(f"window: {sum(len(c) for c in chains)} runs to train", flush=True)
        for outcomes in self.executor.run(chains, options):
            for o in outcomes:
                print(f"window: {time.monotonic() - self.start:6.0f} s  {o.run_id}  {o.error or 'stored'}", flush=True)
            yield outcomes


def _columns() -> list[str]:
    return [*TIMING_COLUMNS, "images_trained", "images_per_s", "final_test_acc", "trained_alongside"]


def _timing_line(store: RunStore, run_id: str, lines: pd.DataFrame) -> dict:
    record = store.load(run_id)
    m, config = record.metrics, record.config
    line = lines.loc[run_id] if run_id in lines.index else {}
    epochs = len(record.history)  # trained here: those after the shorter run it continues, if any
    if m.get("extended_from") and (store.run_dir(m["extended_from"]) / "metrics.json").exists():
        epochs -= store.load(m["extended_from"]).config.epochs
    samples = epochs * (config.subset or get_spec(config.dataset).train_size)
    return {
        "run_id": run_id,
        "table": line.get("table"),
        "row": line.get("row"),
        "seed": config.seed,
        "model": config.model,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "status": m["status"],
        "wall_time_s": round(m.get("wall_time_s") or 0.0, 1),
        "images_trained": samples,
        "images_per_s": round(m["images_per_s"]) if m.get("images_per_s") else None,
        "final_test_acc": m.get("final_test_acc"),
        "trained_alongside": len(m.get("trained_alongside") or []),
    }
