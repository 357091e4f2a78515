"""Reading the store: a grid (deepcls.paper.grids) and a RunStore -> the results table.

Pure aggregation: nothing here trains. Rows whose runs the store lacks show as ``pending``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from deepcls.config import RunConfig
from deepcls.errors import ConfigError
from deepcls.paper.grids import row_label
from deepcls.progress import reading
from deepcls.store import checkpoints
from deepcls.store.runs import RunRecord, RunStore

SEEDS_LOOKED_UP = tuple(range(10))  # seeds a line looks for in the store (the ledger reads the same)
OUTCOMES = ("complete", "diverged", "failed")


def results_table(grid: pd.DataFrame, store: RunStore, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Reported beside reproduced, one line per (table, row), pooled over every stored seed.

    A line reads each seed of its config the store holds (:data:`SEEDS_LOOKED_UP` and the grid's
    own), or only ``seeds`` when given. Only complete runs are seeds: ``seeds_done`` counts them and
    the means and std are theirs; diverged runs are counted in ``diverged`` and shown, never
    averaged; failed runs are never read (training retries them). ``run_ids`` holds the complete
    runs' ids, ``seeds_asked`` how many seeds the grid asked for.
    """
    _check_frame("grid", grid, GRID_COLUMNS, "a grid from dc.grid")
    if not all(isinstance(c, RunConfig) for c in grid["config"]):
        raise ConfigError("grid's config column must hold RunConfigs (a grid from dc.grid)")
    grid = grid.assign(run_id=[c.run_id for c in grid["config"]])
    row_of = {(t, r): f"row {row}" for t, r, row in zip(grid["table"], grid["run_id"], grid["row"])}
    profile = grid["config"].iloc[0].profile if len(grid) else None
    lines = []
    groups = grid.groupby(["table", "row"], sort=False)
    for (table, row), group in reading(groups, "reading runs", total=groups.ngroups):
        first = group.iloc[0]
        wanted = sorted(set(SEEDS_LOOKED_UP) | {c.seed for c in group["config"]})
        if seeds is not None:
            wanted = sorted(set(seeds))
        configs = [replace(first["config"], seed=s) for s in wanted]
        found = store.frame(c for c in configs if store.status(c) is not None)
        done = found[found["status"] == "complete"] if not found.empty else found
        diverged = int((found["status"] == "diverged").sum()) if not found.empty else 0
        shorter = {e for e in done.get("extended_from", []) if isinstance(e, str)}
        asked = [c for c in group["config"] if seeds is None or c.seed in seeds]
        lines.append(
            {
                "table": table,
                "row": row,
                "model": first["model"],
                "dataset": first["dataset"],
                "setting": row_label(first),
                "source": first["source"],
                "reported_train": first["highest_train_acc"],
                "reported_test": first["highest_test_acc"],
                **_aggregate(done, diverged, sum(not store.has(c) for c in asked)),
                "epochs": first["config"].epochs,
                "batch_size": first["config"].batch_size,
                "profile": profile,
                "run_ids": tuple(done["run_id"]) if not done.empty else (),
                "seeds_asked": len(asked),
                "continues": ", ".join(sorted(row_of.get((table, r), r) for r in shorter)),
                "progress": "; ".join(p for c in asked if not store.has(c) and (p := checkpoints.progress(store, c))),
            }
        )
    table_frame = pd.DataFrame(lines)
    if not table_frame.empty:
        table_frame["delta_test"] = table_frame["test_mean"] - table_frame["reported_test"]
    return table_frame


def _aggregate(done: pd.DataFrame, diverged: int, missing: int) -> dict:
    """Means over the complete runs; the status says what else there is (diverged, missing seeds)."""
    notes = [f"{diverged} diverged"] * bool(diverged) + [f"{missing} seed{'s' * (missing != 1)} to train"] * bool(
        missing and len(done)
    )
    status = ("complete" if len(done) else ("diverged" if diverged else "pending")) + (
        f" ({', '.join(notes)})" if notes else ""
    )
    if done.empty:
        return {
            "train_mean": np.nan,
            "test_mean": np.nan,
            "test_std": np.nan,
            "final_test_mean": np.nan,
            "final_test_std": np.nan,
            "seeds_done": 0,
            "diverged": diverged,
            "wall_time_s": np.nan,
            "status": status,
            "device": None,
            "numeric_class": None,
        }
    return {
        "train_mean": _numbers(done, "highest_train_acc").mean(),
        "test_mean": _numbers(done, "highest_test_acc").mean(),
        "test_std": _numbers(done, "highest_test_acc").std(ddof=1) if len(done) > 1 else np.nan,
        "final_test_mean": _numbers(done, "final_test_acc").mean(),
        "final_test_std": _numbers(done, "final_test_acc").std(ddof=1) if len(done) > 1 else np.nan,
        "seeds_done": len(done),
        "diverged": diverged,
        "wall_time_s": _numbers(done, "wall_time_s").sum(),
        "status": status,
        "device": " | ".join(dict.fromkeys(done["device"].astype(str))),
        "numeric_class": " | ".join(dict.fromkeys(done["numeric_class"].astype(str))),
    }


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    """A metrics column as floats; a missing column or a value that is not a number reads as NaN."""
    return pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(np.nan, index=frame.index)


def records(results: pd.DataFrame, table: str, row: int, store: RunStore) -> list[RunRecord]:
    """The complete stored RunRecords (one per seed) behind one line of a results table; a line the
    table lacks is a ConfigError naming the lines it has."""
    _check_frame("results", results, ("table", "row", "run_ids"), "a results table from dc.results_table")
    lines = results[(results["table"] == table) & (results["row"] == row)]
    if lines.empty:
        there = ", ".join(map(str, dict.fromkeys(results["table"]))) or "none"
        raise ConfigError(f"no line {table!r} row {row!r} in the results table (its tables: {there})")
    return [store.load(r) for r in lines.iloc[0]["run_ids"]]


GRID_COLUMNS = ("table", "row", "model", "dataset", "source", "highest_train_acc", "highest_test_acc", "config")


def _check_frame(name: str, frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """ConfigError in one line when ``frame`` lacks a column this module reads (a frame of another kind)."""
    if missing := [c for c in columns if c not in frame.columns]:
        raise ConfigError(f"{name} must be {what}: it has no column {', '.join(missing)}")


def first_record(results: pd.DataFrame, table: str, row: int, store: RunStore) -> RunRecord | None:
    """The first seed's stored run of a line, or None while it is pending."""
    found = records(results, table, row, store)
    return found[0] if found else None
