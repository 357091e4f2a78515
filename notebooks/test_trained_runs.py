"""After nbmake has executed every notebook (``pytest --nbmake notebooks/``, part of ``make test``; the
notebooks sort before this file): the fresh store holds exactly the runs they train at the smoke
profile, every table's grid at seed 0 and notebook 01's seeds of the noise row, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deepcls.analysis.findings import NOISE_ROW, NOISE_SEEDS
from deepcls.paper import grids as ex

NOTEBOOKS = Path(__file__).resolve().parent


def test_the_notebooks_train_every_smoke_run_and_nothing_else(passed_notebooks: set[str]) -> None:
    if missing := sorted({p.stem for p in NOTEBOOKS.glob("*.ipynb")} - passed_notebooks):
        pytest.skip(f"reads the store once every notebook has passed in this session; not yet: {', '.join(missing)}")
    expected = {c.run_id for t in ex.ALL_TABLES for c in ex.table_grid(t, "smoke")["config"]}
    table, row = NOISE_ROW  # notebook 01 trains this row with several seeds
    noise = ex.table_grid(table, "smoke", seeds=NOISE_SEEDS)
    expected |= {c.run_id for c in noise.loc[noise["row"] == row, "config"]}
    stored = {run.name for run in (Path(os.environ["DEEPCLS_RESULTS_DIR"]) / "runs").iterdir()}
    if os.environ.get("DEEPCLS_NBMAKE_RESULTS_DIR"):  # a store kept across sessions may hold earlier runs too
        assert expected <= stored, sorted(expected - stored)
    else:
        assert stored == expected
