"""The committed run store (results/runs) is what the code wrote, and results/RESULTS.md shows exactly it."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from deepcls.analysis import ledger
from deepcls.cli import main
from deepcls.config import RUN_PROFILES as PROFILES
from deepcls.report import cache, verdicts
from deepcls.report import formatting as tables
from deepcls.report.build import LEDGER_CSV, LEDGER_RUNS_CSV, NOTEBOOKS_DIR, notebook_names
from deepcls.store.runs import RunStore

REPO = Path(__file__).resolve().parents[1]
STORE = RunStore(REPO / "results")
REPORTS = sorted(p.parent.name for p in (REPO / "results" / "report").glob(f"*/{LEDGER_CSV}"))


def test_every_committed_run_loads_and_hashes_to_its_folder_name() -> None:
    folders = sorted(p.name for p in STORE.runs.iterdir())
    assert folders == STORE.run_ids() and len(folders) > 80  # no stray or unreadable folder
    for run_id in folders:
        assert STORE.load(run_id).config.run_id == run_id


def test_every_committed_run_keeps_its_id_and_its_numbers() -> None:
    """Precision left the run id (deepcls 0.2.0) without moving any: each of the runs stored before
    (their ids and accuracies, snapshot in committed_accuracies.csv) is still there under its id, with
    every accuracy unchanged to the last digit, and hashes to it."""
    with open(Path(__file__).parent / "committed_accuracies.csv", newline="") as f:
        before = {row.pop("run_id"): row for row in csv.DictReader(f)}
    assert len(before) == 202 and set(before) <= set(STORE.run_ids())
    for run_id, accuracies in before.items():
        record = STORE.load(run_id)
        assert record.config.run_id == run_id
        assert {k: float(v) for k, v in accuracies.items()} == {k: record.metrics[k] for k in accuracies}, run_id


@pytest.mark.parametrize("run_id", STORE.run_ids())
def test_committed_run_is_complete_and_consistent(run_id: str) -> None:
    record = STORE.load(run_id)
    m, history = record.metrics, record.history
    assert record.config.run_id == run_id and m["profile"] in PROFILES
    assert m["status"] == "complete" and m["epochs_run"] == record.config.epochs == len(history)
    assert list(history["epoch"]) == list(range(1, len(history) + 1))
    assert m["highest_test_acc"] == pytest.approx(history["test_acc"].max())
    assert m["final_test_acc"] == pytest.approx(history["test_acc"].iloc[-1])
    assert m["highest_train_acc"] == pytest.approx(history["train_acc"].max())
    assert record.confusion is not None and np.trace(record.confusion) / record.confusion.sum() * 100 == (
        pytest.approx(m["final_test_acc"], abs=1e-6)
    )
    assert m["device"] and m["wall_time_s"] > 0
    if m.get("extended_from"):
        shorter = STORE.load(m["extended_from"])
        assert shorter.config == record.config.replace(epochs=shorter.config.epochs)
        n = len(shorter.history)
        assert history.iloc[:n][["train_acc", "test_acc"]].equals(shorter.history[["train_acc", "test_acc"]])


def test_results_md_is_what_the_committed_store_gives(tmp_path: Path) -> None:
    written = tmp_path / "RESULTS.md"
    assert main(["markdown", "--path", str(written), "--results-dir", str(REPO / "results")]) == 0
    committed = (REPO / "results" / "RESULTS.md").read_text()
    assert written.read_text() == committed, "results/RESULTS.md is stale: run `make readme`"


def test_the_readme_headline_is_what_the_committed_store_gives(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text())
    assert (
        main(
            [
                "markdown",
                "--path",
                str(tmp_path / "R.md"),
                "--readme",
                str(readme),
                "--results-dir",
                str(REPO / "results"),
            ]
        )
        == 0
    )
    assert readme.read_text() == (REPO / "README.md").read_text(), "README headline is stale: run `make readme`"


def test_every_file_the_readme_links_is_committed() -> None:
    """Relative links and images of the README (the ledger's forest plot among them) resolve."""
    targets = re.findall(r"\]\((?!https?:|#)([^)\s]+)\)", (REPO / "README.md").read_text())
    assert "results/report/paper/forest.png" in targets
    missing = [t for t in targets if not (REPO / t).is_file()]
    assert not missing, f"README links to missing files: {missing}"


@pytest.mark.parametrize("profile", REPORTS)
def test_committed_report_shows_the_ledger_the_store_gives(profile: str) -> None:
    """The committed report of a profile (its CSVs, index.html and the executed overview notebook the
    HTML was rendered from) was rebuilt after the runs it reads were committed: a commit that adds
    runs but not the re-rendered report, or the HTML but not its notebooks, fails here."""
    conclusions = ledger.ledger(profile, STORE)
    report = REPO / "results" / "report" / profile
    assert (report / LEDGER_CSV).read_text() == verdicts.to_csv(conclusions), "run `deepcls report --no-train`"
    assert (report / LEDGER_RUNS_CSV).read_text() == ledger.evidence(profile, STORE).to_csv(index=False)
    summary = verdicts.summary(conclusions)
    assert html.escape(summary) in (report / "index.html").read_text()
    executed = json.loads((REPO / "results" / "notebooks" / profile / "00_overview.ipynb").read_text())
    outputs = [o.get("data", {}) for cell in executed["cells"] for o in cell.get("outputs", [])]
    shown = ["".join(data["text/html"]) for data in outputs if "text/html" in data]
    table = tables.html_table(tables.format_ledger(conclusions))  # what the overview's ledger cell displays
    assert table in shown, "the executed overview notebook is stale: commit results/notebooks with the report"


@pytest.mark.parametrize("profile", REPORTS)
def test_a_clone_reuses_every_committed_notebook(profile: str) -> None:
    """The execution cache committed with a profile's notebooks answers the store and the package as
    they are (the runs read, the ledger lines, the source, deepcls's version): `deepcls report --no-train`
    on a clone executes nothing. A commit that moves any of them without rebuilding the report fails here."""
    out = REPO / "results" / "notebooks" / profile
    prints, executions = cache.Fingerprints(profile, STORE), cache.ExecutionCache(out)
    decisions = [
        executions.decide(name, nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4), prints, train=False)
        for name in notebook_names()
    ]
    stale = [f"{d.name} ({d.reason})" for d in decisions if d.execute]
    assert not stale, f"run `deepcls report --no-train --profile {profile}`: {', '.join(stale)}"
