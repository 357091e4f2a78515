"""The report: committed notebooks, papermill execution at the smoke profile on the real data,
the rendered HTML opened in headless Chromium, and the overview's reported numbers."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from deepcls.analysis import ledger
from deepcls.analysis.findings import NOISE_ROW, NOISE_SEEDS
from deepcls.analysis.ledger import CONCLUSIONS
from deepcls.analysis.results import results_table
from deepcls.config import threads_per_job
from deepcls.numeric import resolve_device
from deepcls.paper import grids as ex
from deepcls.report import formatting as tables
from deepcls.report import verdicts
from deepcls.report.build import (
    FOREST,
    LEDGER_CSV,
    LEDGER_RUNS_CSV,
    NOTEBOOKS_DIR,
    build_report,
    notebook_names,
    write_index,
)
from deepcls.store.runs import RunStore

REPO = Path(__file__).resolve().parent.parent
REFERENCE_CSV = REPO / "deepcls" / "paper" / "paper_tables.csv"
PAPER_TABLES_SHA256 = "7a357fcf99a405c36844ef280cd2c019f319d85c77c81f2ecec2ae7394889a00"


def test_notebooks_are_committed_without_outputs_and_take_parameters() -> None:
    names = notebook_names()
    assert len(names) == 10 and names[-1] == "00_overview"
    for name in names:
        nb = json.loads((NOTEBOOKS_DIR / f"{name}.ipynb").read_text())
        nbformat.validate(nbformat.from_dict(nb))
        assert all(c.get("id") for c in nb["cells"]), f"{name}: a cell without an id (nbformat 4.5)"
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), name
        params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1, f"{name} needs one 'parameters' cell"
        for key in ("profile", "seeds", "data_dir", "results_dir", "force"):
            assert f"{key} =" in "".join(params[0]["source"]), (name, key)


def test_overview_reported_numbers_match_the_paper_tables() -> None:
    paper = pd.read_csv(REFERENCE_CSV)
    paper = paper[paper["table"] != "resnet_init"]  # a claim without numbers, expanded into 3 runs
    results = results_table(ex.grid(ex.ALL_TABLES, "paper"), RunStore("/nonexistent-store"))
    merged = results.merge(paper, on=["table", "row"], how="inner", suffixes=("", "_paper"))
    assert len(merged) == len(paper)
    pd.testing.assert_series_equal(merged["reported_test"], merged["highest_test_acc"], check_names=False)
    pd.testing.assert_series_equal(merged["reported_train"], merged["highest_train_acc"], check_names=False)
    assert (results["status"] == "pending").all()


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Execute every notebook at the smoke profile into a fresh results dir, once (two at a time)."""
    root = tmp_path_factory.mktemp("results")
    code = build_report(profile="smoke", jobs=2, data_dir=str(data_dir), results_dir=str(root))
    assert code == 0, "a notebook failed at the smoke profile; see the printed error"
    return root


def test_every_notebook_executes_and_renders(smoke_report: Path) -> None:
    for name in notebook_names():
        executed = json.loads((smoke_report / "notebooks" / "smoke" / f"{name}.ipynb").read_text())
        errors = [
            o
            for c in executed["cells"]
            if c["cell_type"] == "code"
            for o in c["outputs"]
            if o["output_type"] == "error"
        ]
        assert not errors, (name, errors)
        assert (smoke_report / "report" / "smoke" / f"{name}.html").stat().st_size > 10_000
    expected = {c.run_id for t in ex.ALL_TABLES for c in ex.table_grid(t, "smoke")["config"]}
    table, row = NOISE_ROW  # notebook 01 trains this row with several seeds
    noise = ex.table_grid(table, "smoke", seeds=NOISE_SEEDS)
    expected |= {c.run_id for c in noise.loc[noise["row"] == row, "config"]}
    assert {run.name for run in (smoke_report / "runs").iterdir()} == expected


class _Elements(HTMLParser):
    """Collects tags, link targets and image sources of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: dict[str, str] = {}  # element id -> tag

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids[attributes["id"] or ""] = tag
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"] or "")
        if tag == "img":
            self.images.append(attributes.get("src") or "")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is required in CI (.ci/run installs Debian's chromium)")
    pytest.skip("no Chromium on this machine (apt-get install chromium)")


# No connection attempts beyond loopback: the machine's network is closed (and tests stay local).
QUIET_BROWSER = (
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _browse(page: Path) -> _Elements:
    """Load a page in headless Chromium and parse the DOM it rendered."""
    out = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", *QUIET_BROWSER, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "</html>" in out.lower() or "</body>" in out.lower(), "Chromium rendered nothing"
    elements = _Elements()
    elements.feed(out)
    return elements


def test_parallel_notebooks_share_out_the_cores(smoke_report: Path) -> None:
    store = RunStore(smoke_report)
    threads = os.environ.get("OMP_NUM_THREADS") or str(threads_per_job(2))
    devices = {store.load(run_id).metrics["device"] for run_id in store.run_ids()}
    if resolve_device("auto").type == "cuda":  # the notebooks train on the GPU; threads do not apply
        assert devices and all(d.startswith("cuda:") for d in devices), devices
    else:
        assert devices and all(d.startswith("cpu:") and d.endswith(f" x{threads} threads") for d in devices), devices


def test_browser_renders_index_with_overview_and_working_links(smoke_report: Path) -> None:
    report = smoke_report / "report" / "smoke"
    index = _browse(report / "index.html")
    assert index.tags.count("table") == 3 and index.tags.count("tr") > 2 * len(
        CONCLUSIONS
    )  # verdicts, ledger, overview
    assert index.ids.get("forest-plot") == "img" and index.ids.get("conclusions") == "h2"
    assert any(src.startswith("data:image/png;base64,") for src in index.images)
    forest = next(src for src in index.images if src.startswith("data:image/png;base64,"))
    assert base64.b64decode(forest.split(",", 1)[1]) == (report / FOREST).read_bytes()  # the README's copy
    targets = [link for link in index.links if not link.startswith(("http", "#"))]
    assert sorted(targets) == sorted([*(f"{n}.html" for n in notebook_names()), LEDGER_CSV, LEDGER_RUNS_CSV])
    for target in targets:
        assert (report / target).is_file(), target


def test_browser_renders_a_notebook_page_with_tables_and_figures(smoke_report: Path) -> None:
    page = _browse(smoke_report / "report" / "smoke" / "05_squeeze_excitation.html")
    assert page.tags.count("table") >= 3  # results, conclusions, bird -> airplane counts
    assert len(page.images) >= 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    for link in page.links:
        assert link.startswith(("http", "#")), f"unexpected relative link {link}"


def test_shipped_paper_tables_are_the_reports_tables_unchanged() -> None:
    """The shipped copy of the report's tables is byte for byte the one the project was built from
    (its SHA-256, recorded when it was copied): an edit to the reported numbers fails here."""
    assert hashlib.sha256(REFERENCE_CSV.read_bytes()).hexdigest() == PAPER_TABLES_SHA256


def test_report_without_training_shows_pending_rows(tmp_path: Path, data_dir: Path) -> None:
    root = tmp_path / "empty-store"
    code = build_report(
        profile="paper",
        data_dir=str(data_dir),
        results_dir=str(root),
        train=False,
        only=["05_squeeze_excitation", "00_overview"],
    )
    assert code == 0
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())  # nothing trained
    page = (root / "report" / "paper" / "05_squeeze_excitation.html").read_text()
    assert page.count(">pending<") >= 2 and "Traceback" not in page  # both rows, claims, placeholders
    index = (root / "report" / "paper" / "index.html").read_text()
    assert index.count(">pending<") == len(ex.table_rows())
    assert (
        build_report(profile="paper", data_dir=str(data_dir), results_dir=str(root), train=False, only=["00_overview"])
        == 0
    )
    index = (root / "report" / "paper" / "index.html").read_text()  # rewritten, still linking both pages
    assert 'href="05_squeeze_excitation.html"' in index and 'href="00_overview.html"' in index
    assert "No row with a reported test accuracy has been run yet." in index


def test_the_index_ledger_is_what_the_store_gives(tmp_path: Path, stored_run) -> None:
    grid = ex.grid("resnet_se", "paper", (0, 1, 2))
    for config, acc in zip(grid["config"], (81.4, 81.2, 81.5, 80.7, 80.9, 80.8)):
        stored_run(tmp_path, config, test_acc=acc)
    write_index("paper", [], tmp_path, str(tmp_path))
    page = (tmp_path / "index.html").read_text()
    table = ledger.ledger("paper", RunStore(tmp_path))
    expected = tables.format_ledger(table).drop(columns=["id"])
    assert (tmp_path / LEDGER_CSV).read_text() == verdicts.to_csv(table) and f'href="{LEDGER_CSV}"' in page
    runs = ledger.evidence("paper", RunStore(tmp_path)).to_csv(index=False)
    assert (tmp_path / LEDGER_RUNS_CSV).read_text() == runs and f'href="{LEDGER_RUNS_CSV}"' in page
    assert expected.to_html(index=False, classes="results ledger", border=0, escape=True) in page
    assert "SE blocks raise test accuracy" in page and html.escape(verdicts.summary(table)) in page
    words = verdicts.summary_table(table).to_html(index=False, classes="results verdicts", border=0)
    assert words in page and "How to read the ledger" in page and "Holm" in page  # the glossary above the ledger
    se = table[(table["id"] == "se_helps") & (table["metric"] == "honest")].iloc[0]  # 80.8 vs 81.37, 3 seeds each
    assert se["verdict"] in ("reversed", "suggestive") and se["p_adjusted"] >= se["p_value"]
