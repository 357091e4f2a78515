"""Reading the store: a grid (deepcls.paper.grids) and a RunStore -> the results table.

Pure aggregation: nothing here trains. Rows whose runs the store lacks show as ``pending``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepcls.paper.grids import describe
from deepcls.store.runs import RunRecord, RunStore


def results_table(grid: pd.DataFrame, store: RunStore) -> pd.DataFrame:
    """Reported beside reproduced, one line per (table, row): mean and std over the seeds stored.

    ``run_ids`` holds the tuple of each line's run ids (one per seed, stored or not).
    """
    grid = grid.assign(run_id=[c.run_id for c in grid["config"]])
    stored = store.frame(c for c in dict.fromkeys(grid["config"]) if store.status(c) is not None)
    metrics = stored.set_index("run_id") if not stored.empty else pd.DataFrame()
    row_of = {(t, r): f"row {row}" for t, r, row in zip(grid["table"], grid["run_id"], grid["row"])}
    profile = grid["config"].iloc[0].profile if len(grid) else None
    lines = []
    for (table, row), group in grid.groupby(["table", "row"], sort=False):
        first = group.iloc[0]
        done = [metrics.loc[r] for r in group["run_id"] if r in metrics.index]
        shorter = {e for m in done if isinstance(e := m.get("extended_from"), str)}
        lines.append(
            {
                "table": table,
                "row": row,
                "model": first["model"],
                "dataset": first["dataset"],
                "setting": describe(first["config"]),
                "source": first["source"],
                "reported_train": first["highest_train_acc"],
                "reported_test": first["highest_test_acc"],
                **_aggregate(done, len(group)),
                "epochs": first["config"].epochs,
                "batch_size": first["config"].batch_size,
                "profile": profile,
                "run_ids": tuple(group["run_id"]),
                "continues": ", ".join(sorted(row_of.get((table, r), r) for r in shorter)),
                "progress": "; ".join(p for c in group["config"] if not store.has(c) and (p := store.progress(c))),
            }
        )
    table_frame = pd.DataFrame(lines)
    if not table_frame.empty:
        table_frame["delta_test"] = table_frame["test_mean"] - table_frame["reported_test"]
    return table_frame


def _aggregate(done: list[pd.Series], expected: int) -> dict:
    if not done:
        return {
            "train_mean": np.nan,
            "test_mean": np.nan,
            "test_std": np.nan,
            "final_test_mean": np.nan,
            "seeds_done": 0,
            "wall_time_s": np.nan,
            "status": "pending",
            "device": None,
        }
    frame = pd.DataFrame(done)
    statuses = sorted(set(frame["status"]))
    status = statuses[0] if len(statuses) == 1 else "/".join(statuses)
    if len(done) < expected:
        status += f" ({len(done)}/{expected} seeds)"
    return {
        "train_mean": frame["highest_train_acc"].astype(float).mean(),
        "test_mean": frame["highest_test_acc"].astype(float).mean(),
        "test_std": frame["highest_test_acc"].astype(float).std(ddof=1) if len(done) > 1 else np.nan,
        "final_test_mean": frame["final_test_acc"].astype(float).mean(),
        "seeds_done": len(done),
        "wall_time_s": frame["wall_time_s"].astype(float).sum(),
        "status": status,
        "device": " | ".join(dict.fromkeys(frame["device"].astype(str))),
    }


def records(results: pd.DataFrame, table: str, row: int, store: RunStore) -> list[RunRecord]:
    """The stored RunRecords (one per seed) behind one line of a results table."""
    line = results[(results["table"] == table) & (results["row"] == row)].iloc[0]
    return [store.load(r) for r in line["run_ids"] if store.status(r) is not None]


def first_record(results: pd.DataFrame, table: str, row: int, store: RunStore) -> RunRecord | None:
    """The first seed's stored run of a line, or None while it is pending."""
    found = records(results, table, row, store)
    return found[0] if found else None
