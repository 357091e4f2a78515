"""Execute the notebooks with papermill, render them to HTML and write the report's index.

``results/notebooks/<profile>/`` gets the executed copies, ``results/report/<profile>/``
one HTML page per notebook (input cells hidden) and ``index.html`` linking them all with
the overview table. A failing notebook is shown as failed; the rest still render and the
call returns 1 at the end. Only the notebooks whose inputs changed are executed again
(deepcls.report.cache), and only the files whose content changed are written.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pandas as pd
import papermill
from nbconvert import HTMLExporter

from deepcls.analysis import ledger
from deepcls.analysis.results import results_table
from deepcls.atomic import write_text, write_with
from deepcls.config import RunConfig, get_profile, threads_per_job
from deepcls.errors import ConfigError, StoreError, unknown
from deepcls.numeric import target_device
from deepcls.paper.grids import ALL_TABLES, REPORT_TITLE, grid
from deepcls.report import formatting as tables
from deepcls.report import plots, verdicts
from deepcls.report.cache import (
    MANIFEST,
    Decision,
    ExecutionCache,
    Fingerprints,
    stored_runs,
    sync_folder,
    trained_since,
    write_if_changed,
)
from deepcls.report.kernel import KERNEL_ARGUMENTS, FinishedKernelManager
from deepcls.report.markdown import LEDGER_PROFILES, SHOWN_PROFILES, ledger_anchor, profile_summary, results_document
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
            extra_arguments=list(KERNEL_ARGUMENTS),
            kernel_manager_class=FinishedKernelManager,  # no interrupt, and no "KeyboardInterrupt" line, at shutdown
        )
    except Exception as err:  # papermill raises PapermillExecutionError, kernels other errors
        message = getattr(err, "ename", type(err).__name__) + ": " + str(getattr(err, "evalue", err))
        outcome = NotebookOutcome(name, False, message.strip().splitlines()[0][:500])
        if not executed.exists():
            return outcome
    render_html(executed, html_dir / f"{name}.html")
    return outcome


def render_html(notebook: Path, target: Path) -> None:
    """Notebook -> standalone HTML with input cells hidden, written atomically; the report's style
    (:data:`PAGE_CSS`: images a page wide, tables that wrap rather than scroll) and a header linking
    back to ``index.html`` beside it are put in."""
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = body.replace("</head>", f"<style>\n{PAGE_CSS}</style>\n</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + _nav(_title(target.stem)), body, count=1)
    write_text(target, body)


def _nav(here: str) -> str:
    """The header of every page: a link to the report's index and where the reader is."""
    return f'\n<nav class="report-nav"><a href="index.html">← deepcls report index</a> · {html.escape(here)}</nav>\n'


def build_report(
    profile: str = "quick",
    jobs: int = 1,
    data_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    force: bool = False,
    only: list[str] | None = None,
    notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
    train: bool = True,
    rerun: bool = False,
    trainer: Callable[[list[RunConfig]], object] | None = None,
) -> int:
    """Execute the notebooks (or ``only`` these) whose inputs changed, render them and write the index;
    0 if every notebook ran.

    The execution cache (deepcls.report.cache) reuses a notebook whose source, profile, deepcls version,
    runs read and ledger lines are those its executed copy was made from; ``rerun=True`` executes every
    one anyway, as ``force=True`` (retrain the stored runs) does. A file whose content is unchanged is not
    written (``index.html``: apart from its generation time), so a build on an unchanged store leaves the
    results folder as it was. ``trainer`` (``deepcls report`` passes deepcls.execution.runner.run_grid,
    ``jobs`` at once) is given the runs the notebooks would train (their tables' seed 0, not stored) before
    any executes, after a line saying about how long they take here, so they train with progress in view;
    without it the notebooks train them. ``train=False`` renders from the store alone: runs not stored yet
    show as pending. The last line says what was executed, reused, trained and written, and how long.
    """
    started = time.monotonic()
    get_profile(profile)
    notebooks_dir = Path(notebooks_dir)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    names = notebook_names(notebooks_dir)
    if only:
        if strangers := sorted(set(only) - set(names)):
            raise ConfigError(unknown("notebook(s)", strangers, names))
        names = [n for n in names if n in only]
    root = resolve_results_dir(results_dir).resolve()
    out_dir, html_dir = root / "notebooks" / profile, root / "report" / profile
    store = RunStore(root)
    store.ensure_writable()
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
    sources = {n: _source(notebooks_dir / f"{n}.ipynb") for n in names}
    cache, runs_before = ExecutionCache(out_dir), stored_runs(store)
    written: list[str] = []

    def decide(name: str, fingerprints: Fingerprints) -> Decision:
        source = sources[name]
        if rerun or force or source is None:
            why = "asked to rerun" if rerun else "force retrains its runs" if force else "its source is unreadable"
            return Decision(name, True, why)
        return cache.decide(name, source, fingerprints, train)

    def run(decision: Decision) -> NotebookOutcome:
        name = decision.name
        if not decision.execute:  # its page is rendered again: the page's layout may have moved on
            page = staging / f"{name}.html"
            render_html(out_dir / f"{name}.ipynb", page)
            written.extend([page.name] * write_if_changed(html_dir / page.name, page.read_bytes()))
            page.unlink()
            print(f"[{profile}] {name}: reused ({decision.reason})", flush=True)
            return NotebookOutcome(name, True)
        print(f"[{profile}] executing {name} ({decision.reason}) ...", flush=True)
        outputs = (out_dir / f"{name}.ipynb", html_dir / f"{name}.html")
        before = [_modified(p) for p in outputs]
        outcome = execute(name, out_dir, html_dir, parameters, notebooks_dir)
        written.extend(p.name for p, then in zip(outputs, before) if _modified(p) != then)
        print(f"[{profile}] {name}: {'ok' if outcome.ok else 'FAILED: ' + outcome.error}", flush=True)
        return outcome

    env = {"DEEPCLS_PROGRESS": "0"}  # kernels inherit it: no progress bars in the pages
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads_per_job(jobs))
    fingerprints = Fingerprints(profile, store)
    decisions = [decide(n, fingerprints) for n in names if n != OVERVIEW]
    if train and not force and trainer is not None:  # trained first, in view, not silently inside the notebooks
        planned = [fingerprints.to_train(sources[d.name]) for d in decisions if d.execute and sources[d.name]]
        if planned and not (missing := pd.concat(planned).drop_duplicates("config")).empty:
            for line in training_note(missing, profile, store, jobs):
                print(f"[{profile}] {line}", flush=True)
            trainer(list(missing["config"]))
            fingerprints = Fingerprints(profile, store)
            decisions = [decide(n, fingerprints) for n in names if n != OVERVIEW]
    staging = Path(tempfile.mkdtemp(prefix="deepcls-report-"))  # pages rendered here, copied in if changed
    try:
        with _environment(**env):
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                outcomes = list(pool.map(run, [d for d in decisions if d.execute]))
            outcomes += [run(d) for d in decisions if not d.execute]
            if OVERVIEW in names:  # it reads every run: decided once the others have trained theirs
                if any(d.execute for d in decisions):
                    fingerprints = Fingerprints(profile, store)
                decisions.append(decide(OVERVIEW, fingerprints))
                outcomes.append(run(decisions[-1]))
        executed = [d.name for d in decisions if d.execute]
        if executed:
            fingerprints = Fingerprints(profile, store)
        for outcome in outcomes:
            if outcome.name in executed:
                _remember(cache, outcome, sources[outcome.name], fingerprints)
        known = set(notebook_names(notebooks_dir))
        written += [MANIFEST] * cache.save(known)
        ran = {o.name for o in outcomes}
        earlier = [o for o in _earlier_outcomes(html_dir) if o.name not in ran and o.name in known]
        shown = sorted(outcomes + earlier, key=lambda o: o.name)
        recorded = json.dumps({o.name: o.error if not o.ok else None for o in shown}, indent=1)
        written += [OUTCOMES] * write_if_changed(html_dir / OUTCOMES, recorded.encode())
        write_index(profile, shown, staging, str(root))
        written += sync_folder(staging, html_dir, GENERATED)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    results = root / "RESULTS.md"
    written += [results.name] * write_if_changed(results, results_document(SHOWN_PROFILES, store).encode())
    print(f"report: {html_dir / 'index.html'}")
    print(f"results: {results}")
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        print(f"failed notebooks: {', '.join(failed)}")
    trained = trained_since(runs_before, stored_runs(store))
    took = time.monotonic() - started
    print(summary_line(profile, executed, len(names) - len(executed), trained, len(written), took))
    return 1 if failed else 0


def _source(path: Path) -> nbformat.NotebookNode | None:
    """A notebook's source for the execution cache; None when it cannot be read (it is executed, and
    papermill says what is wrong with it as the notebook's failure)."""
    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # not JSON, not a notebook, not readable: every such file is executed
        return None


def _remember(
    cache: ExecutionCache, outcome: NotebookOutcome, source: nbformat.NotebookNode | None, fingerprints: Fingerprints
) -> None:
    """Record an executed notebook's key, from the store as its execution left it; a failed one (or one
    whose inputs cannot be hashed) is executed again by the next build."""
    if outcome.ok and source is not None:
        try:
            cache.record(outcome.name, fingerprints.parts(source))
            return
        except Exception:  # a store the key cannot read: the next build executes it again and shows why
            pass
    cache.forget(outcome.name)


def _modified(path: Path) -> int | None:
    """A file's modification time (None while it does not exist): whether a step wrote it."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def training_note(missing: pd.DataFrame, profile: str, store: RunStore, jobs: int) -> list[str]:
    """What a build will train before its notebooks show it, and about how long that takes here (from
    the store's times, deepcls.analysis.costs): on a clone of the report, the ``paper`` profile's missing
    runs can take hours on a CPU, which the one who asked should know before they start."""
    from deepcls.analysis.costs import Cost, row_costs

    keys = list(zip(missing["table"], missing["row"]))
    device = target_device("auto", threads_per_job(jobs))
    costs = row_costs(profile, store, (0,), on=device)
    if any(math.isnan(costs[k].seconds) for k in keys):  # no run here to scale from: the reference device's
        costs = row_costs(profile, store, (0,))
    each = [costs[k] for k in keys]
    devices = "/".join(dict.fromkeys(c.device for c in each))  # one, unless a row was timed only elsewhere
    total = Cost(sum(c.seconds for c in each), devices, any(c.estimated for c in each))
    count = len(missing)
    by_table = ", ".join(f"{t} {n}" if n > 1 else t for t, n in missing["table"].value_counts(sort=False).items())
    return [
        f"training {count} run{'s' * (count != 1)} first ({by_table}): {total.text()}",
        "Ctrl-C stops, keeping checkpoints (the next build resumes them); --no-train renders without",
    ]


def summary_line(profile: str, executed: list[str], reused: int, trained: int, written: int, seconds: float) -> str:
    """The build in one line of at most 100 characters, naming the executed notebooks when they fit:
    by name, else by number (``01``), else not at all (the lines above name them)."""
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    counts = f"reused {reused}, trained {trained} run{'s' * (trained != 1)}, wrote {written} file{'s' * (written != 1)}"
    head = f"report {profile}: executed {len(executed)} notebook{'s' * (len(executed) != 1)}"
    numbers = [n.split("_", 1)[0] if n.split("_", 1)[0].isdigit() else n for n in executed]
    lines = [f"{head} ({', '.join(shown)}), {counts}, {took}" for shown in (executed, numbers) if executed]
    return next((line for line in lines if len(line) <= 100), f"{head}, {counts}, {took}")


# write_index's "Generated <time> UTC" line: an index that differs from the written one only there is not written
GENERATED = re.compile(rb"Generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


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
        forest = _png(plots.forest(conclusions))
        write_with(html_dir / FOREST, lambda tmp: tmp.write_bytes(forest.getvalue()))  # for the README
        write_text(html_dir / LEDGER_CSV, verdicts.to_csv(conclusions))
        write_text(html_dir / LEDGER_RUNS_CSV, ledger.evidence(profile, store).to_csv(index=False))
        conclusions_html = (
            f"<p>{html.escape(verdicts.summary(conclusions))}</p>\n"
            + tables.html_table(verdicts.summary_table(conclusions), "results verdicts")
            + f"\n<details open><summary>How to read the ledger</summary>{verdicts.glossary_html()}</details>\n"
            f'<img id="forest-plot" alt="forest plot: our margin and 95% interval per conclusion, the report\'s '
            f'margin marked" src="data:image/png;base64,{base64.b64encode(forest.getvalue()).decode()}">\n'
            + tables.ledger_html(conclusions, functools.partial(_results_link, profile))
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
        css=PAGE_CSS,
        nav=_nav(f"profile {profile}"),
        title=html.escape(REPORT_TITLE),
        profile=html.escape(profile),
        description=html.escape(prof.description),
        items=items,
        overview=overview,
        conclusions=conclusions_html,
        stamp=stamp,
    )
    write_text(html_dir / "index.html", page)


def _results_link(profile: str, conclusion: str) -> str | None:
    """Where a ledger line of the index reads on in RESULTS.md (two folders up, beside ``report/``):
    its line in the profile's ledger there; None for a profile whose ledger RESULTS.md leaves out."""
    return f"../../RESULTS.md#{ledger_anchor(profile, conclusion)}" if profile in LEDGER_PROFILES else None


def _png(figure: plots.plt.Figure) -> io.BytesIO:
    """A matplotlib figure as PNG bytes (closed: a report renders many)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer


def _title(name: str) -> str:
    return name.split("_", 1)[-1].replace("_", " ")


# The style every page of the report shares (the index and the notebooks' pages): nothing wider than
# a 1,400-pixel window (images at the page's width, table cells that wrap, run ids that break), the
# header back to the index, the line that states a table's constant columns once.
PAGE_CSS = """img, .jp-RenderedImage img { max-width: 100%; width: 100%; height: auto; }
table.results, .jp-RenderedHTMLCommon table { max-width: 100%; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { white-space: normal; padding: .3em .4em; }
.jp-RenderedHTMLCommon table { font-size: 12px; }
details code { word-break: break-all; }
details summary { cursor: pointer; }
.report-nav { font-family: system-ui, sans-serif; padding: .5rem 1rem; border-bottom: 1px solid #ddd; }
p.said-once { margin-bottom: .3rem; }
"""

INDEX_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>deepcls report ({profile}) — {title}</title>
<style>
{css}
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 84rem; padding: 0 1rem; }}
.banner {{ background: #eef3f8; border-left: 4px solid #2a6f97; padding: .6rem 1rem; }}
li.failed {{ color: #a4161a; }}
table.results {{ border-collapse: collapse; font-size: .8rem; }}
table.results th, table.results td {{ padding: .25rem .35rem; border-bottom: 1px solid #ddd; text-align: right; }}
table.results td:nth-child(3) {{ text-align: left; }}
table.verdicts td:first-child, table.verdicts td:last-child {{ text-align: left; }}
table.ledger td:first-child {{ text-align: left; }}
</style></head>
<body>
{nav}
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
