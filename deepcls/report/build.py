"""Execute the notebooks with papermill, render them to HTML and write the report's index.

``results/notebooks/<profile>/`` gets the executed copies, ``results/report/<profile>/``
one HTML page per notebook (input cells hidden) and ``index.html`` linking them all with
the overview table. A failing notebook is shown as failed; the rest still render and the
call returns 1 at the end.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from deepcls.analysis import ledger
from deepcls.analysis.results import results_table
from deepcls.atomic import write_text, write_with
from deepcls.config import get_profile, threads_per_job
from deepcls.errors import ConfigError, StoreError
from deepcls.paper.grids import ALL_TABLES, REPORT_TITLE, grid
from deepcls.report import formatting as tables
from deepcls.report import plots, verdicts
from deepcls.report.markdown import SHOWN_PROFILES, profile_summary, write_results
from deepcls.store.runs import RunStore, resolve_results_dir

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
OVERVIEW = "00_overview"


@dataclass(frozen=True)
class NotebookOutcome:
    name: str
    ok: bool
    error: str = ""


def notebook_names(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Notebook stems in report order: the overview last, since it reads what the others ran."""
    names = sorted(p.stem for p in notebooks_dir.glob("*.ipynb"))
    return [n for n in names if n != OVERVIEW] + ([OVERVIEW] if OVERVIEW in names else [])


def execute(
    name: str, out_dir: Path, html_dir: Path, parameters: dict, notebooks_dir: Path = NOTEBOOKS_DIR
) -> NotebookOutcome:
    """Run one notebook with papermill, then render whatever it produced to HTML."""
    source = notebooks_dir / f"{name}.ipynb"
    executed = out_dir / f"{name}.ipynb"
    outcome = NotebookOutcome(name, True)
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(notebooks_dir.parent),
            progress_bar=False,
            report_mode=False,
            # the kernel listens on loopback only; its "running over TCP without encryption" warning,
            # once per notebook, would bury the console's progress and outcomes
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except Exception as err:  # papermill raises PapermillExecutionError, kernels other errors
        message = getattr(err, "ename", type(err).__name__) + ": " + str(getattr(err, "evalue", err))
        outcome = NotebookOutcome(name, False, message.strip().splitlines()[0][:500])
        if not executed.exists():
            return outcome
    render_html(executed, html_dir / f"{name}.html")
    return outcome


def render_html(notebook: Path, target: Path) -> None:
    """Notebook -> standalone HTML with input cells hidden, written atomically."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    write_text(target, body)


def build_report(
    profile: str = "quick",
    jobs: int = 1,
    data_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    force: bool = False,
    only: list[str] | None = None,
    notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
    train: bool = True,
) -> int:
    """Execute and render every notebook (or ``only`` these) and write the index; 0 if all ran.

    ``train=False`` renders from the store alone: runs not stored yet show as pending.
    """
    get_profile(profile)
    notebooks_dir = Path(notebooks_dir)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    names = notebook_names(notebooks_dir)
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown notebook(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in only]
    root = resolve_results_dir(results_dir).resolve()
    out_dir, html_dir = root / "notebooks" / profile, root / "report" / profile
    RunStore(root).ensure_writable()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        html_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"cannot write the report under {root} ({err.strerror or err})") from None
    parameters = {
        "profile": profile,
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "results_dir": str(root),
        "force": force,
        "train": train,
    }

    def run(name: str) -> NotebookOutcome:
        print(f"[{profile}] executing {name} ...", flush=True)
        outcome = execute(name, out_dir, html_dir, parameters, notebooks_dir)
        print(f"[{profile}] {name}: {'ok' if outcome.ok else 'FAILED: ' + outcome.error}", flush=True)
        return outcome

    body = [n for n in names if n != OVERVIEW]
    env = {"DEEPCLS_PROGRESS": "0"}  # kernels inherit it: no progress bars in the pages
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads_per_job(jobs))
    with _environment(**env):
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(run, body))
        if OVERVIEW in names:
            outcomes.append(run(OVERVIEW))
    executed = {o.name for o in outcomes}
    known = set(notebook_names(notebooks_dir))
    earlier = [o for o in _earlier_outcomes(html_dir) if o.name not in executed and o.name in known]
    shown = sorted(outcomes + earlier, key=lambda o: o.name)
    write_text(html_dir / OUTCOMES, json.dumps({o.name: o.error if not o.ok else None for o in shown}, indent=1))
    write_index(profile, shown, html_dir, str(root))
    print(f"report: {html_dir / 'index.html'}")
    print(f"results: {write_results(root / 'RESULTS.md', SHOWN_PROFILES, RunStore(root))}")
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        print(f"failed notebooks: {', '.join(failed)}")
    return 1 if failed else 0


FOREST = "forest.png"  # the ledger's forest plot, beside index.html (the README links the paper one)
LEDGER_CSV = "ledger.csv"  # the ledger's numbers, beside index.html
LEDGER_RUNS_CSV = "ledger_runs.csv"  # the runs behind them (deepcls.analysis.ledger.evidence), beside index.html
OUTCOMES = "outcomes.json"  # beside index.html: {notebook: null if it ran, else its error}, kept across builds


def _earlier_outcomes(html_dir: Path) -> list[NotebookOutcome]:
    """The outcomes of earlier builds, so a partial rebuild keeps showing a page that failed as failed.
    Pages of a build before outcomes were recorded count as ok; an unreadable record as none. A name
    that is not a page of its own beside index.html (``../x``) is no notebook's and is dropped."""
    try:
        recorded = json.loads((html_dir / OUTCOMES).read_text(encoding="utf-8"))
        outcomes = [NotebookOutcome(n, e is None, str(e or "")) for n, e in recorded.items()]
    except (OSError, ValueError, AttributeError):
        outcomes = [NotebookOutcome(p.stem, True) for p in html_dir.glob("*.html") if p.stem != "index"]
    outcomes = [o for o in outcomes if o.name and not o.name.startswith(".") and Path(o.name).name == o.name]
    return [o for o in outcomes if not o.ok or (html_dir / f"{o.name}.html").exists()]


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def write_index(profile: str, outcomes: list[NotebookOutcome], html_dir: Path, results_dir: str) -> None:
    """index.html: profile banner, the conclusions ledger with its forest plot, links with status, and the
    overview table from the store."""
    prof = get_profile(profile)
    try:
        store = RunStore(results_dir)
        results = results_table(grid(ALL_TABLES, profile), store)
        overview = f"<p>{html.escape(profile_summary(profile, store, results))}</p>\n{tables.to_html(results)}"
        conclusions = ledger.ledger(profile, store)
        shown = tables.format_ledger(conclusions).drop(columns=["id"])
        forest = _png(plots.forest(conclusions))
        write_with(html_dir / FOREST, lambda tmp: tmp.write_bytes(forest.getvalue()))  # for the README
        write_text(html_dir / LEDGER_CSV, verdicts.to_csv(conclusions))
        write_text(html_dir / LEDGER_RUNS_CSV, ledger.evidence(profile, store).to_csv(index=False))
        conclusions_html = (
            f"<p>{html.escape(verdicts.summary(conclusions))}</p>\n"
            + verdicts.summary_table(conclusions).to_html(index=False, classes="results verdicts", border=0)
            + f"\n<details open><summary>How to read the ledger</summary>{verdicts.glossary_html()}</details>\n"
            f'<img id="forest-plot" alt="forest plot: our margin and 95% interval per conclusion, the report\'s '
            f'margin marked" src="data:image/png;base64,{base64.b64encode(forest.getvalue()).decode()}">\n'
            + shown.to_html(index=False, classes="results ledger", border=0, escape=True)
            + f'\n<p><a id="ledger-csv" href="{LEDGER_CSV}">The numbers as CSV</a>: both metrics, full precision, '
            "p-values (<code>deepcls ledger --csv PATH</code> writes the same numbers); "
            f'<a id="ledger-runs" href="{LEDGER_RUNS_CSV}">the runs behind them</a>: per conclusion, side and '
            "seed, the run id, its device and the value each metric reads (<code>deepcls ledger --evidence</code>)."
            "</p>"
        )
    except Exception as err:  # the index must still render and say why, in one line
        reason = html.escape(f"{type(err).__name__}: {err}")
        overview = conclusions_html = f"<p><strong>overview table failed</strong>: <code>{reason}</code></p>"
    items = "\n".join(
        f'<li class="{"ok" if o.ok else "failed"}"><a href="{o.name}.html">{html.escape(_title(o.name))}</a>'
        + ("" if o.ok else f" — <strong>failed</strong>: <code>{html.escape(o.error)}</code>")
        + "</li>"
        for o in outcomes
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = INDEX_TEMPLATE.format(
        title=html.escape(REPORT_TITLE),
        profile=html.escape(profile),
        description=html.escape(prof.description),
        items=items,
        overview=overview,
        conclusions=conclusions_html,
        stamp=stamp,
    )
    write_text(html_dir / "index.html", page)


def _png(figure: plots.plt.Figure) -> io.BytesIO:
    """A matplotlib figure as PNG bytes (closed: a report renders many)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer


def _title(name: str) -> str:
    return name.split("_", 1)[-1].replace("_", " ")


INDEX_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>deepcls report ({profile}) — {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; }}
.banner {{ background: #eef3f8; border-left: 4px solid #2a6f97; padding: .6rem 1rem; }}
li.failed {{ color: #a4161a; }}
table.results {{ border-collapse: collapse; font-size: .85rem; }}
table.results th, table.results td {{ padding: .25rem .5rem; border-bottom: 1px solid #ddd; text-align: right; }}
table.results td:nth-child(3) {{ text-align: left; }}
table.verdicts td:first-child, table.verdicts td:nth-child(4) {{ text-align: left; }}
</style></head>
<body>
<h1>deepcls — reproducing “{title}”</h1>
<p class="banner">Profile <strong>{profile}</strong>: {description}.</p>
<h2 id="conclusions">Which of the report's conclusions hold</h2>
<p>Each conclusion of the report answered from the stored seeds: our margin in the claimed direction with its 95%
interval on the final epoch (primary) and on the report's metric (secondary), and a verdict named only after Holm's
correction over every claim of the report. <code>deepcls/paper/conclusions.csv</code> defines each line,
<code>deepcls/paper/registration.csv</code> dates its margin; <code>ledger.csv</code> has every number.</p>
{conclusions}
<h2>Notebooks</h2>
<ul id="notebooks">
{items}
</ul>
<h2>Overview: reported vs reproduced</h2>
<p>Highest accuracies over epochs (the report's metric), the final-epoch test accuracy (the
honest one), Δ = reproduced − reported test accuracy. “pending” rows have not been run at this profile.</p>
{overview}
<p><small>Generated {stamp} by <code>deepcls report --profile {profile}</code>.</small></p>
</body></html>
"""
