"""The report: committed notebooks, papermill execution at the smoke profile on the real data,
the rendered HTML opened in headless Chromium, and the overview's reported numbers."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from deepcls.analysis import ledger
from deepcls.analysis.ledger import CONCLUSIONS
from deepcls.analysis.results import results_table
from deepcls.config import threads_per_job
from deepcls.execution.runner import run_grid
from deepcls.numeric import resolve_device
from deepcls.paper import grids as ex
from deepcls.report import cache, plots, verdicts
from deepcls.report import formatting as tables
from deepcls.report.build import (
    FOREST,
    LEDGER_CSV,
    LEDGER_RUNS_CSV,
    NOTEBOOKS_DIR,
    OUTCOMES,
    NotebookOutcome,
    _earlier_outcomes,
    build_report,
    notebook_names,
    summary_line,
    write_index,
)
from deepcls.report.markdown import LEDGER_PROFILES, ledger_anchor, results_document
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


SMOKE_NOTEBOOKS = ["05_squeeze_excitation", "00_overview"]
"""What the report tests build: a table notebook and the overview (nbmake executes every notebook, once;
notebooks/test_trained_runs.py checks the runs they all train)."""


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Execute :data:`SMOKE_NOTEBOOKS` at the smoke profile into a fresh results dir, once (two at a time)."""
    root = tmp_path_factory.mktemp("results")
    code = build_report(profile="smoke", jobs=2, data_dir=str(data_dir), results_dir=str(root), only=SMOKE_NOTEBOOKS)
    assert code == 0, "a notebook failed at the smoke profile; see the printed error"
    return root


def test_the_built_notebooks_execute_train_their_runs_and_render(smoke_report: Path) -> None:
    for name in SMOKE_NOTEBOOKS:
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
    expected = {c.run_id for c in ex.table_grid("resnet_se", "smoke")["config"]}  # the overview trains nothing
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
    pages = [*(f"{n}.html" for n in SMOKE_NOTEBOOKS), "index.html"]  # the header links every page to the index
    assert sorted(targets) == sorted([*pages, LEDGER_CSV, LEDGER_RUNS_CSV])
    for target in targets:
        assert (report / target).is_file(), target


def test_browser_renders_a_notebook_page_with_tables_and_figures(smoke_report: Path) -> None:
    page = _browse(smoke_report / "report" / "smoke" / "05_squeeze_excitation.html")
    assert page.tags.count("table") >= 3  # results, conclusions, bird -> airplane counts
    assert len(page.images) >= 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    for link in page.links:
        assert link.startswith(("http", "#")) or link == "index.html", f"unexpected relative link {link}"


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
        build_report(
            profile="paper",
            data_dir=str(data_dir),
            results_dir=str(root),
            train=False,
            only=["00_overview"],
            rerun=True,
        )
        == 0
    )
    index = (root / "report" / "paper" / "index.html").read_text()  # rewritten, still linking both pages
    assert 'href="05_squeeze_excitation.html"' in index and 'href="00_overview.html"' in index
    assert "No row with a reported test accuracy has been run yet." in index


def _files(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root``: its modification time and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in root.rglob("*")
        if p.is_file()
    }


def test_a_second_build_of_an_unchanged_store_executes_nothing_writes_nothing_and_says_so(
    smoke_report: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(smoke_report)
    code = build_report(profile="smoke", data_dir=str(data_dir), results_dir=str(smoke_report), only=SMOKE_NOTEBOOKS)
    assert code == 0 and _files(smoke_report) == before  # the same bytes, not even rewritten: no timestamp churn
    out = capsys.readouterr().out
    assert all(f"[smoke] {name}: reused (unchanged)" in out for name in SMOKE_NOTEBOOKS)
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"report smoke: executed 0 notebooks, reused 2, trained 0 runs, wrote 0 files, \d+ s", summary)


def test_a_changed_run_executes_only_the_notebooks_that_read_it(
    smoke_report: Path, data_dir: Path, tmp_path: Path, stored_run, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "results"
    shutil.copytree(smoke_report, root, ignore=shutil.ignore_patterns(".cache"))  # checkpoints: no page reads them
    build = functools.partial(
        build_report, profile="smoke", data_dir=str(data_dir), results_dir=str(root), only=SMOKE_NOTEBOOKS
    )
    stored_run(root, ex.grid("resnet_mnist", "smoke")["config"].iloc[0], test_acc=97.0)  # only the overview reads it
    page = (root / "report" / "smoke" / "05_squeeze_excitation.html").stat().st_mtime_ns
    assert build() == 0
    out = capfd.readouterr().out
    assert "[smoke] executing 00_overview (runs changed) ..." in out
    assert "[smoke] 05_squeeze_excitation: reused (unchanged)" in out
    assert (root / "report" / "smoke" / "05_squeeze_excitation.html").stat().st_mtime_ns == page
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("report smoke: executed 1 notebook (00_overview), reused 1, trained 0 runs, wrote ")

    se = ex.grid("resnet_se", "smoke")  # a run both read: the SE row's wall time doubled
    metrics = RunStore(root).run_dir(se.loc[se["row"] == 1, "config"].iloc[0]) / "metrics.json"
    numbers = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**numbers, "wall_time_s": 2 * numbers["wall_time_s"]}))
    assert build() == 0
    out, err = capfd.readouterr()
    assert re.search(r"\[smoke\] executing 05_squeeze_excitation \([^)]*runs changed\) \.\.\.", out), out
    assert "[smoke] executing 00_overview (runs changed) ..." in out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("report smoke: executed 2 notebooks (05, 00), reused 0, trained 0 runs, wrote ")
    assert "KeyboardInterrupt" not in out + err  # the kernels were stopped without an interrupt

    shutil.rmtree(RunStore(root).run_dir(se["config"].iloc[0]))  # a run to train: first, in view, as the CLI does
    assert build(trainer=functools.partial(run_grid, data_dir=str(data_dir), results_dir=str(root))) == 0
    out = capfd.readouterr().out
    lines = out.strip().splitlines()
    assert re.fullmatch(r"\[smoke\] training 1 run first \(resnet_se\): ≈ \d.* on \S.*", lines[0])
    assert lines[1].startswith("[smoke] Ctrl-C stops, keeping checkpoints") and len(lines[1]) <= 100
    assert re.search(r"\[smoke\] executing 05_squeeze_excitation \([^)]*runs changed\) \.\.\.", out), out
    assert lines[-1].startswith("report smoke: executed 2 notebooks (05, 00), reused 0, trained 1 run, wrote ")
    assert RunStore(root).status(se["config"].iloc[0]) == "complete"


def test_a_notebook_reads_the_tables_its_code_names_and_the_overview_reads_everything() -> None:
    def reads(name: str) -> cache.Reads:
        return cache.notebook_reads(nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4))

    assert reads("00_overview") == cache.Reads(None, trains=False)  # ALL_TABLES, never trains
    assert reads("05_squeeze_excitation") == cache.Reads(("resnet_se",), trains=True)
    assert reads("01_resnet_cifar10").tables == ("resnet_augmentation", "resnet_cifar10", "resnet_vflip")
    assert reads("08_vgg_first_kernel").tables == ("vgg_mnist",)
    magic = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("%matplotlib inline\nstudy.results('vgg_mnist')")]
    )
    assert cache.notebook_reads(magic) == cache.Reads(("vgg_mnist",), trains=True)
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("study.results('vgg_mnist'")])
    assert cache.notebook_reads(broken) == cache.Reads(None, trains=True)  # unparsed: the whole store, may train


def test_an_executed_copy_with_no_record_of_what_it_read_is_executed_again(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS_DIR / "05_squeeze_excitation.ipynb", as_version=4)
    out = tmp_path / "notebooks" / "smoke"
    out.mkdir(parents=True)
    nbformat.write(notebook, out / "05_squeeze_excitation.ipynb")  # outputs from before the cache, or by hand
    prints = cache.Fingerprints("smoke", RunStore(tmp_path))
    decision = cache.ExecutionCache(out).decide("05_squeeze_excitation", notebook, prints, train=False)
    assert decision.execute and decision.reason == "no record of what it read"
    executions = cache.ExecutionCache(out)
    executions.record("05_squeeze_excitation", prints.parts(notebook))
    assert not executions.decide("05_squeeze_excitation", notebook, prints, train=False).execute


def test_the_summary_line_names_what_it_executed_when_that_fits_100_columns() -> None:
    assert summary_line("smoke", ["00_overview"], 1, 0, 3, 41.4) == (
        "report smoke: executed 1 notebook (00_overview), reused 1, trained 0 runs, wrote 3 files, 41 s"
    )
    assert summary_line("quick", ["01_resnet_cifar10", "00_overview"], 8, 2, 6, 41.4) == (
        "report quick: executed 2 notebooks (01, 00), reused 8, trained 2 runs, wrote 6 files, 41 s"
    )
    line = summary_line("paper", notebook_names(), 0, 1, 21, 990.0)
    assert line == "report paper: executed 10 notebooks, reused 0, trained 1 run, wrote 21 files, 16.5 min"


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
    unlinked = re.sub(r'<a href="[^"]*">(.*?)</a>', r"\1", page)  # each conclusion links to RESULTS.md
    assert expected.to_html(index=False, classes="results ledger", border=0, escape=True) in unlinked
    assert "SE blocks raise test accuracy" in page and html.escape(verdicts.summary(table)) in page
    words = verdicts.summary_table(table).to_html(index=False, classes="results verdicts", border=0)
    assert words in page and "How to read the ledger" in page and "Holm" in page  # the glossary above the ledger
    se = table[(table["id"] == "se_helps") & (table["metric"] == "honest")].iloc[0]  # 80.8 vs 81.37, 3 seeds each
    assert se["verdict"] in ("reversed", "suggestive") and se["p_adjusted"] >= se["p_value"]


WINDOW = (1400, 900)  # a laptop's browser window: no page of the report may scroll sideways in it
LAYOUT_PROBE = """addEventListener("load", () => {
  const pages = [...document.querySelectorAll("iframe")].map(frame => {
    const page = frame.contentDocument;
    const sideways = [...page.querySelectorAll("*")].filter(e =>
      ["auto", "scroll"].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1);
    return {
      page: frame.getAttribute("src"),
      width: page.documentElement.scrollWidth,
      sideways: sideways.map(e => `${e.tagName}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}`),
      index_cells: page.querySelectorAll("tbody th").length,
      links: [...page.querySelectorAll("a")].map(a => a.getAttribute("href")),
      ledger_links: [...page.querySelectorAll("table.ledger a")].map(a => a.getAttribute("href")),
    };
  });
  document.getElementById("layout").textContent = JSON.stringify(pages);
});"""


def _layouts(pages: list[Path], tmp: Path) -> list[dict]:
    """Open every page in headless Chromium as a frame of a WINDOW-sized wrapper page (file access
    between files lets the wrapper read each page's document) and read back, per page, its scroll
    width, the elements that scroll sideways, the row headers of table bodies (pandas' index column)
    and its links: one browser start for a whole report."""
    frames = "".join(f'<iframe src="{p.as_uri()}" width="{WINDOW[0]}" height="{WINDOW[1]}"></iframe>' for p in pages)
    wrapper = tmp / "layout.html"
    wrapper.write_text(f'<!doctype html><html><body><pre id="layout"></pre>{frames}<script>{LAYOUT_PROBE}</script>')
    flags = ["--allow-file-access-from-files", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=60000"]
    out = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            *QUIET_BROWSER,
            *flags,
            "--dump-dom",
            wrapper.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', out, re.S)
    assert found and found.group(1), "Chromium laid out no page"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("built", ["smoke", "committed"])
def test_every_page_fits_the_window_shows_no_index_column_and_links_home(
    built: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Every HTML page of the report (those a smoke build writes, and the committed ones of every
    profile), laid out in headless Chromium at 1,400 x 900: nothing scrolls sideways, no table shows
    pandas' index column, the page links to its index; an index whose profile RESULTS.md lists links
    each ledger line to that line there."""
    root = request.getfixturevalue("smoke_report") if built == "smoke" else REPO / "results"
    pages = sorted((root / "report").glob("*/*.html"))
    assert pages and all((page.parent / "index.html") in pages for page in pages)
    layouts = _layouts(pages, tmp_path)
    assert [page["page"] for page in layouts] == [p.as_uri() for p in pages]
    for page, path in zip(layouts, pages):
        where = path.relative_to(root)
        assert page["width"] <= WINDOW[0] and not page["sideways"], (where, page["width"], page["sideways"])
        assert page["index_cells"] == 0, f"{where}: a table shows pandas' index column"
        assert "index.html" in page["links"], f"{where}: no link back to index.html"
        profile = path.parent.name
        if path.name == "index.html" and profile in LEDGER_PROFILES:
            anchors = [link.removeprefix("../../RESULTS.md#") for link in page["ledger_links"]]
            assert len(anchors) == len(CONCLUSIONS) and all(a.startswith(f"{profile}-") for a in anchors), where
            results_md = (root / "RESULTS.md").read_text()
            assert all(f'<a id="{a}"></a>' in results_md for a in anchors), f"{where}: a ledger link RESULTS.md lacks"


def test_each_ledger_line_of_the_index_links_to_its_results_md_entry(tmp_path: Path, stored_run) -> None:
    for config, acc in zip(ex.grid("resnet_se", "paper", (0, 1, 2))["config"], (81.4, 81.2, 81.5, 80.7, 80.9, 80.8)):
        stored_run(tmp_path, config, test_acc=acc)
    store = RunStore(tmp_path)
    write_index("paper", [], tmp_path, str(tmp_path))
    page = (tmp_path / "index.html").read_text()
    document = results_document(["paper"], store)
    lines = ledger.ledger("paper", store).drop_duplicates("id")
    assert len(lines) == len(CONCLUSIONS)
    for conclusion, wording in zip(lines["id"], lines["conclusion"]):
        anchor = ledger_anchor("paper", conclusion)
        assert f'<a href="../../RESULTS.md#{anchor}">{html.escape(wording, quote=False)}</a>' in page
        assert f'<a id="{anchor}"></a>{wording}' in document
    write_index("smoke", [], tmp_path, str(tmp_path))  # RESULTS.md has no ledger of this profile: no links
    assert "RESULTS.md#" not in (tmp_path / "index.html").read_text()


def test_a_results_table_says_its_constant_columns_once_and_keeps_run_ids_in_details(
    tmp_path: Path, stored_run
) -> None:
    grid = ex.grid("resnet_se", "paper", (0, 1, 2))
    for config in grid.loc[grid["row"] == 0, "config"]:
        stored_run(tmp_path, config, test_acc=81.0)
    stored_run(tmp_path, grid.loc[grid["row"] == 1, "config"].iloc[0], test_acc=81.5)
    results = results_table(grid, RunStore(tmp_path))
    page = tables.to_html(results)
    assert page.startswith('<p class="said-once">table <strong>resnet_se</strong> · profile <strong>paper</strong></p>')
    head = page.split("<tbody>")[0]
    assert "<th>table</th>" not in head and "<th>profile</th>" not in head and "<th>row</th>" in head
    assert "<th" not in page.split("<tbody>")[1]  # no index column
    assert "<summary>3 seeds, complete</summary>" in page and "<summary>1 of 3 seeds</summary>" in page
    assert all(f"<code>{run_id}</code>" in page for run_id in results["run_ids"].sum())
    figure = plots.reported_vs_reproduced(results)  # bars named by table and row
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["resnet_se · 0", "resnet_se · 1"]
    plots.plt.close(figure)


# ---------------------------------------------------------------------- what a build records of each notebook
def test_a_partial_rebuild_keeps_showing_the_pages_that_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deepcls.report.build as report

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("01_broken", "02_fine", "00_overview"):
        (notebooks / f"{name}.ipynb").write_text("{}")
    html_dir = tmp_path / "results" / "report" / "smoke"

    def execute(name: str, out_dir: Path, html: Path, parameters: dict, notebooks_dir: Path) -> NotebookOutcome:
        (html / f"{name}.html").write_text(name)  # a failing notebook still renders what it ran
        if name == "01_broken":
            return NotebookOutcome(name, False, "ZeroDivisionError: division by zero")
        return NotebookOutcome(name, True)

    monkeypatch.setattr(report, "execute", execute)
    kwargs = {"profile": "smoke", "results_dir": str(tmp_path / "results"), "notebooks_dir": notebooks, "train": False}
    assert build_report(**kwargs) == 1
    assert build_report(**kwargs, only=["02_fine"]) == 0
    page = (html_dir / "index.html").read_text()
    assert page.count('class="failed"') == 1 and "ZeroDivisionError" in page and page.count('class="ok"') == 2
    assert json.loads((html_dir / OUTCOMES).read_text())["01_broken"].startswith("ZeroDivisionError")


def test_a_notebook_name_read_from_the_outcomes_file_stays_beside_the_index(tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "outcomes.json").write_text(json.dumps({"../../outside": "boom", "train": "failed"}))
    assert [o.name for o in _earlier_outcomes(tmp_path / "html")] == ["train"]
