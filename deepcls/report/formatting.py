"""Formatting only: numbers, tables and the command line's answers as strings (notebooks, the HTML
index, RESULTS.md, the terminal)."""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from deepcls.analysis.costs import duration
from deepcls.config import get_profile
from deepcls.errors import ConfigError
from deepcls.numeric import short_device

if TYPE_CHECKING:
    from deepcls.store.runs import RunRecord


def pct(value: float | None, std: float | None = None) -> str:
    """``81.39`` -> ``"81.39"``; with a std ``"81.39 ± 0.42"``; missing -> ``"—"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{value:.2f}"
    return f"{value:.2f} ± {std:.2f}"


def signed(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.2f}"


def banner(profile: str) -> str:
    """Markdown line naming the profile and what it means, shown at the top of every notebook."""
    return f"> **Profile: `{profile}`** — {get_profile(profile).description}."


RESULTS_COLUMNS = ("table", "row", "reported_test", "seeds_done")
LEDGER_COLUMNS = ("id", "metric", "role", "conclusion", "verdict")
PLAN_COLUMNS = ("table", "row", "seed", "config", "conclusions", "seconds")


def require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """ConfigError, in one line, when ``frame`` lacks the columns of the frame deepcls gives ``what``
    (a display function given another frame would fail with a KeyError deep inside)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{what}: the frame has no column {', '.join(missing)}; pass the frame deepcls gives")


def format_results(results: pd.DataFrame) -> pd.DataFrame:
    """The comparison columns of reading.results_table as display strings."""
    require(results, RESULTS_COLUMNS, "format_results needs a results table (dc.results_table)")
    return pd.DataFrame(
        {
            "table": results["table"],
            "row": results["row"],
            "setting": results["setting"],
            "reported train": results["reported_train"].map(pct),
            "reported test": results["reported_test"].map(pct),
            "reproduced train": results["train_mean"].map(pct),
            "reproduced test": [pct(m, s) for m, s in zip(results["test_mean"], results["test_std"])],
            "final-epoch test": results["final_test_mean"].map(pct),
            "Δ test": results["delta_test"].map(signed),
            "epochs": results["epochs"],
            "seeds": results["seeds_done"],
            "wall time": results["wall_time_s"].map(duration),
            "numeric class": [_classes(c) for c in results.get("numeric_class", [None] * len(results))],
            "status": [
                status + (f", continues {c}" if c else "")
                for status, c in zip(results["status"], results.get("continues", [""] * len(results)))
            ],
            "profile": results["profile"],
        }
    )


def _classes(labels: str | None) -> str:
    """The numeric classes behind a line (deepcls.numeric.class_label), "/"-joined; "—" when none."""
    return "/".join(labels.split(" | ")) if isinstance(labels, str) and labels else "—"


SAID_ONCE = ("table", "profile")  # stated once above a page's table when every row holds one value


def html_table(
    frame: pd.DataFrame, classes: str = "results", *, said_once: Sequence[str] = SAID_ONCE, markup: Sequence[str] = ()
) -> str:
    """A display frame as a page's HTML <table>: no index column (pandas' row numbers mean nothing to
    a reader), each ``said_once`` column whose rows all hold one value stated once above the table
    rather than repeated down it, every cell escaped but those of the ``markup`` columns (HTML). A
    named index (a pivot's rows, such as ``model``) is data and becomes the first column."""
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    frame = frame.rename_axis(columns=None)
    said = [c for c in said_once if c in frame and len(frame) and frame[c].nunique(dropna=False) == 1]
    shown = frame.drop(columns=said)
    for column in shown.columns:
        if column not in markup and not pd.api.types.is_numeric_dtype(shown[column]):
            escaped = [html.escape(v, quote=False) if isinstance(v, str) else v for v in shown[column]]
            shown[column] = pd.Series(escaped, index=shown.index, dtype=object)
    shown.columns = [html.escape(str(c), quote=False) for c in shown.columns]
    table = shown.to_html(index=False, classes=classes, border=0, escape=False)
    head = " · ".join(f"{html.escape(c)} <strong>{html.escape(str(frame[c].iloc[0]))}</strong>" for c in said)
    return f'<p class="said-once">{head}</p>\n{table}' if said else table


_TO_TRAIN = re.compile(r"(\d+) seeds? to train")  # deepcls.analysis.results' wording for missing seeds


def status_html(line: pd.Series) -> str:
    """A results line's status cell: short ("3 seeds, complete", "1 of 3 seeds", "pending"), with
    the run ids behind it and what else the store says (diverged runs, the shorter run it
    continues) in a <details> element beneath, so a cell never grows into a chain of run ids."""
    done, status = int(line["seeds_done"]), str(line["status"])
    missing = _TO_TRAIN.search(status)
    if not done:
        short = status.split(" (")[0]  # pending, diverged
    elif missing:
        short = f"{done} of {done + int(missing.group(1))} seeds"
    else:
        short = f"{done} seed{'s' * (done != 1)}, complete"
    diverged = int(line.get("diverged", 0) or 0)
    if diverged and done:
        short += f", {diverged} diverged"
    details = [f"continues {line['continues']}"] if line.get("continues") else []
    details += [f"<code>{html.escape(run_id)}</code>" for run_id in line.get("run_ids", ())]
    if not details:
        return html.escape(short)
    return f"<details><summary>{html.escape(short)}</summary>{'<br>'.join(details)}</details>"


def to_html(results: pd.DataFrame) -> str:
    """A results table (dc.results_table) as a page shows it (:func:`html_table`): the columns of
    :func:`format_results`, ``table`` and ``profile`` said once where every row shares them, and
    short status cells (:func:`status_html`)."""
    shown = format_results(results).assign(status=[status_html(line) for _, line in results.iterrows()])
    return html_table(shown, markup=("status",))


def ledger_html(ledger: pd.DataFrame, link: Callable[[str], str | None] | None = None) -> str:
    """The ledger (dc.ledger) as a page shows it: the lines of :func:`format_ledger` without their
    id, each conclusion linked to ``link(id)`` (its entry in RESULTS.md) where that gives one."""
    shown = format_ledger(ledger)
    targets = [link(i) if link else None for i in shown["id"]]
    shown["conclusion"] = [
        f'<a href="{html.escape(t)}">{html.escape(c)}</a>' if t else html.escape(c)
        for c, t in zip(shown["conclusion"], targets)
    ]
    return html_table(shown.drop(columns=["id"]), "results ledger", markup=("conclusion",))


def to_markdown(results: pd.DataFrame) -> str:
    """A formatted results table as a GitHub-flavoured Markdown table."""
    return frame_to_markdown(format_results(results).drop(columns=["setting"]))


def replace_section(text: str, name: str, body: str) -> str:
    """Replace what stands between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"markers {start} ... {end} not found")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def _interval(difference: float, low: float, high: float) -> str:
    if difference is None or (isinstance(difference, float) and math.isnan(difference)):
        return "—"
    if isinstance(low, float) and math.isnan(low):
        return f"{difference:+.2f}"
    return f"{difference:+.2f} [{low:+.2f}, {high:+.2f}]"


def _margin(margin: float | None) -> str:
    """An equivalence margin to three significant digits ("—": none)."""
    return f"±{margin:.3g}" if isinstance(margin, float) and margin == margin else "—"


def _reported(margin: float | None, inside: bool | None) -> str:
    """The report's margin, and whether our interval under the report's own metric contains it."""
    text = signed(margin)
    if inside is None or (isinstance(inside, float) and math.isnan(inside)):
        return text
    return f"{text} ({'inside' if inside else 'outside'})"


def _side(mean: float | None, std: float | None, n: int | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return ""
    return f"{pct(mean, std)} (n={int(n)})"


def format_ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger (deepcls.analysis.ledger.ledger) as one display line per conclusion: sides and our
    margin with its 95% interval on the final epoch (primary), P(A > B), our margin on the report's
    metric (secondary), the report's margin (and whether one run of ours would land there), the
    equivalence margin, the p-value before and after the correction, the verdicts, the registration
    and a short note (:func:`short_note`)."""
    require(ledger, LEDGER_COLUMNS, "format_ledger needs a ledger (dc.ledger)")
    report, honest = (ledger[ledger["metric"] == m].set_index("id") for m in ("report", "honest"))
    ids = list(dict.fromkeys(ledger["id"]))
    h, r = honest.loc[ids], report.loc[ids]
    ratios = zip(_column(h, "ratio"), _column(h, "ratio_low"), _column(h, "ratio_high"))
    return pd.DataFrame(
        {
            "conclusion": h["conclusion"],
            "measure": h["measure"],
            "side a, final epoch": [_side(m, s, n) for m, s, n in zip(h["mean_a"], h["std_a"], h["n_a"])],
            "side b, final epoch": [_side(m, s, n) for m, s, n in zip(h["mean_b"], h["std_b"], h["n_b"])],
            "ours, final epoch [95%]": [
                _ratio(*q) if q[0] == q[0] else _interval(d, lo, hi)
                for (d, lo, hi), q in zip(zip(h["difference"], h["low"], h["high"]), ratios)
            ],
            "P(a > b)": [_share(v) for v in _column(h, "prob_greater")],
            "secondary: report's metric [95%]": [
                _interval(d, lo, hi) for d, lo, hi in zip(r["difference"], r["low"], r["high"])
            ],
            "report (inside one run of ours?)": [
                _reported(m, inside) for m, inside in zip(r["reported"], _column(r, "report_inside"))
            ],
            "margin": [_margin(m) for m in _column(h, "margin")],
            "p → adjusted": [
                _p_pair(p, a, role) for p, a, role in zip(_column(h, "p_value"), h["p_adjusted"], h["role"])
            ],
            "verdict": list(h["verdict"]),
            "secondary verdict": list(r["verdict"]),
            "registered": [_registered(x, d) for x, d in zip(_column(h, "registration"), _column(h, "fixed_on"))],
            "note": [short_note(_note(a, b)) for a, b in zip(h["reading"], r["reading"])],
        }
    ).reset_index(names="id")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A ledger column, or NaNs where a ledger of lines without it lacks it."""
    return frame[name] if name in frame else pd.Series(math.nan, index=frame.index)


def _ratio(ratio: float, low: float, high: float) -> str:
    return f"{ratio:.2f}x [{low:.2f}, {high:.2f}]"


def _share(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.2f}"


def _p(value: float | None) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _p_pair(raw: float | None, adjusted: float | None, role: str) -> str:
    """The line's two-sided p before the correction, and its adjusted family p (sanity lines: none)."""
    if role == "sanity":
        return f"{_p(raw)} (sanity)"
    return f"{_p(raw)} → {_p(adjusted)}"


def _registered(registration: object, fixed_on: object) -> str:
    return f"{registration} {fixed_on}".strip() if isinstance(registration, str) else "—"


def terminal_table(frame: pd.DataFrame, details: Sequence[str], width: int = 100, right: Sequence[str] = ()) -> str:
    """``frame``'s short columns aligned on one line per row (``right``: right-aligned), and under each
    row its ``details`` line, indented and folded to ``width`` columns: what a terminal table shows
    when the whole row would not fit (the full tables are in ``--wide``, ``--markdown`` and ``--csv``)."""
    cells = frame.astype(str)
    widths = {c: max(len(c), int(cells[c].str.len().max()) if len(cells) else 0) for c in cells}

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(widths[c]) if c in right else v.ljust(widths[c]) for c, v in zip(cells, values)
        ).rstrip()

    lines = [line([c.rjust(widths[c]) if c in right else c for c in cells])]
    for values, detail in zip(cells.itertuples(index=False), details):
        lines.append(line(values))
        lines += textwrap.wrap(detail, width=max(40, width), initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)


def terminal_ledger(ledger: pd.DataFrame, width: int = 100) -> str:
    """The ledger for a terminal ``width`` columns wide: a line per conclusion with its id (what
    ``--conclusions`` takes), our final-epoch margin with its 95% interval, the p-value before and
    after the correction and the verdict; under it, folded to the width, the secondary verdict and
    the note. The wording, sides and every number are in ``--wide``, ``--markdown`` and ``--csv``."""
    shown = format_ledger(ledger)
    frame = shown[["id", "ours, final epoch [95%]", "p → adjusted", "verdict"]]
    frame = frame.rename(columns={"ours, final epoch [95%]": "final epoch [95%]"})
    details = [
        f"secondary metric: {secondary}" + (f"; {note}" if note else "")
        for secondary, note in zip(shown["secondary verdict"], shown["note"])
    ]
    return terminal_table(frame, details, width)


def terminal_results(results: pd.DataFrame, width: int = 100) -> str:
    """The results table for a terminal ``width`` columns wide: per row the reported and reproduced
    test accuracy (mean ± sd over seeds, best epoch as the report reads it), the final epoch, their
    difference, seeds and status; under it the setting, train accuracies, epochs, wall time, numeric
    class and progress. Every column is in ``--wide`` and ``--markdown``."""
    shown = format_results(results)
    short = {"reported test": "reported", "reproduced test": "reproduced", "final-epoch test": "final", "Δ test": "Δ"}
    frame = shown[["table", "row", *short, "seeds"]].rename(columns=short).assign(status=list(results["status"]))
    progress = results["progress"] if "progress" in results else [""] * len(results)
    details = [
        "; ".join(
            part
            for part in (
                s["setting"],
                f"train {s['reported train']} reported, {s['reproduced train']} reproduced",
                f"{s['epochs']} epochs" + (f", {s['wall time']} on {s['numeric class']}" if s["seeds"] else ""),
                s["status"].partition(", ")[2],
                p,
            )
            if part
        )
        for (_, s), p in zip(shown.iterrows(), progress)
    ]
    return terminal_table(frame, details, width, right=("row", "reported", "reproduced", "final", "Δ", "seeds"))


def terminal_plan(plan: pd.DataFrame, width: int = 100) -> str:
    """``deepcls ledger --plan`` for a terminal ``width`` columns wide: per run its table, row, seed,
    run id, what it should cost and the running total; under it the conclusions it decides and where
    the cost was measured (or estimated from MACs)."""
    shown = format_plan(plan)
    known = [not math.isnan(s) for s in plan["seconds"]]
    frame = shown[["table", "row", "seed", "run id"]].assign(
        **{"≈ cost": [duration(s) if k else "never run" for s, k in zip(plan["seconds"], known)]},
        total=shown["total"],
    )
    if "progress" in shown:
        frame["progress"] = shown["progress"]
    details = [
        f"decides {decides}" + (f"; cost on {on}" + (" (from MACs)" if estimated else "") if k else "")
        for decides, on, estimated, k in zip(shown["decides"], plan["timed_on"], plan["estimated"], known)
    ]
    return terminal_table(frame, details, width, right=("row", "seed", "≈ cost", "total"))


NOTE_CHARS = 120  # a ledger cell's note; the whole reading is in ledger.csv and --evidence


def short_note(note: str, limit: int = NOTE_CHARS) -> str:
    """``note`` cut to whole clauses (``"; "``-separated) within ``limit`` characters, ending in "…"
    where something was left out; a first clause longer than that is cut at a word."""
    if len(note) <= limit:
        return note
    kept = ""
    for clause in note.split("; "):
        candidate = f"{kept}; {clause}" if kept else clause
        if len(candidate) > limit - 2:
            break
        kept = candidate
    if not kept:
        kept = note[: limit - 2].rsplit(" ", 1)[0]
    return kept + " …"


def _note(honest: str, report: str) -> str:
    """One note for both metrics: where they differ each is named, and what ends both (the devices)
    is said once."""
    if honest == report:
        return honest
    h, r = honest.split("; ") if honest else [], report.split("; ") if report else []
    shared = 0
    while shared < min(len(h), len(r)) and h[len(h) - 1 - shared] == r[len(r) - 1 - shared]:
        shared += 1
    named = [
        f"{name}: {'; '.join(parts[: len(parts) - shared])}"
        for name, parts in (("final epoch", h), ("report's metric", r))
        if len(parts) > shared
    ]
    return "; ".join(named + h[len(h) - shared :])


def format_evidence(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs behind the ledger (deepcls.analysis.ledger.evidence), one display line each: the value each
    metric reads to two decimals ("collapsed" where a collapsed run is left out, "—" where a run lacks
    it), the run's numeric class (a benchmark's device for a seconds line)."""
    classes = runs["numeric_class"] if "numeric_class" in runs else [""] * len(runs)

    def value(v: float | None, gone: bool) -> str:
        if v is None or math.isnan(v):
            return "collapsed" if gone else "—"
        return f"{v:.2f}"

    return pd.DataFrame(
        {
            "conclusion": runs["id"],
            "side": runs["side"],
            "table": runs["table"],
            "row": runs["row"],
            "seed": runs["seed"],
            "epochs": ["—" if e is None or e != e else int(e) for e in runs["epochs"]],
            "run id": runs["run_id"],
            "numeric class": [
                c if isinstance(c, str) and c else short_device(d) for c, d in zip(classes, runs["device"])
            ],
            "final epoch": [value(v, g) for v, g in zip(runs["honest"], runs["collapsed"])],
            "report's metric": [value(v, g) for v, g in zip(runs["report"], runs["collapsed"])],
        }
    )


def format_plan(plan: pd.DataFrame) -> pd.DataFrame:
    """The runs :func:`deepcls.analysis.plan.plan` lists, with what each should still cost and the running
    total; a ``progress`` column only while some run is interrupted or training."""
    require(plan, PLAN_COLUMNS, "format_plan needs a plan (dc.plan)")
    hours = plan["seconds"].cumsum() / 3600
    shown = pd.DataFrame(
        {
            "table": plan["table"],
            "row": plan["row"],
            "seed": plan["seed"],
            "run id": [c.run_id for c in plan["config"]],
            "≈ cost": [
                "never run" if math.isnan(s) else f"{duration(s)} on {d}" + (" (from MACs)" if e else "")
                for s, d, e in zip(plan["seconds"], plan["timed_on"], plan["estimated"])
            ],
            "total": ["—" if math.isnan(h) else f"{h:.1f} h" for h in hours],
            "decides": [", ".join(ids) for ids in plan["conclusions"]],
        }
    )
    if plan["progress"].astype(bool).any():
        shown.insert(5, "progress", plan["progress"])
    return shown


def plan_summary(
    plan: pd.DataFrame, profile: str, later: pd.DataFrame | None = None, *, jobs: int = 1, wall_s: float | None = None
) -> str:
    """One sentence: how many runs :func:`deepcls.analysis.plan.plan` lists, what they should cost (with ``jobs``
    at once, ``--jobs``: also ``wall_s``, deepcls.analysis.plan.wall_seconds), the command; with ``later`` (the
    plan's runs left out, ``--runs``), which conclusions the listed ones complete."""
    require(plan, PLAN_COLUMNS, "plan_summary needs a plan (dc.plan)")
    later = later if later is not None else plan.iloc[:0]
    require(later, PLAN_COLUMNS, "plan_summary needs the plan's later runs as a plan (dc.plan)")
    if plan.empty and later.empty:
        return f"Every conclusion has its seeds at `{profile}`: nothing to train."
    n = len({i for ids in plan["conclusions"] for i in ids})
    never = int(plan["seconds"].isna().sum())
    if never == len(plan):
        cost = "none of their rows has been run, so no cost is known yet"
    else:
        devices = "/".join(dict.fromkeys(d for d in plan["timed_on"] if d))
        estimated = int(plan["estimated"].sum())
        notes = [f"{estimated} estimated from their MACs"] if estimated else []
        notes += [f"{never} runs of rows never run not counted"] if never else []
        if jobs > 1 and wall_s is not None:
            notes.insert(0, f"about {duration(wall_s)} of wall time with {jobs} at once")
        cost = f"≈ {duration(plan['seconds'].sum())} on {devices}" + (f" ({'; '.join(notes)})" if notes else "")
    command = f"`deepcls ledger --profile {profile} --train" + (f" --jobs {jobs}" if jobs > 1 else "")
    if len(later):
        waiting = {i for ids in later["conclusions"] for i in ids}
        done = sorted({i for ids in plan["conclusions"] for i in ids} - waiting)
        return (
            f"The first {len(plan)} of {len(plan) + len(later)} runs that take the undecided lines to their next "
            f"look: {cost}. They complete {len(done)}{': ' + ', '.join(done) if done else ''}. "
            f"{command} --runs {len(plan)}` trains them."
        )
    return (
        f"{len(plan)} runs take the {n} undecided line{'s' if n != 1 else ''} to their next look: {cost}. "
        f"{command}` trains them, the most expected decisions per hour first."
    )


def frame_to_markdown(frame: pd.DataFrame) -> str:
    """Any display frame as a GitHub-flavoured Markdown table (``|`` escaped)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in line) + " |" for line in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def machine_info() -> str:
    """``deepcls info``: deepcls's and its libraries' versions, the device with its bf16 arithmetic and
    what ``--precision auto`` picks on it, the data folder with each dataset's state, and the models."""
    import platform

    import torch
    import torchvision

    from deepcls.data import DATASETS, dataset_path, resolve_data_dir
    from deepcls.models import list_models, model_info
    from deepcls.numeric import cpu_bf16, cpu_model, resolve_device, resolve_precision
    from deepcls.version import __version__

    lines = [
        f"deepcls {__version__}  torch {torch.__version__}  torchvision {torchvision.__version__}  "
        f"python {platform.python_version()}"
    ]
    device = resolve_device("auto")
    if device.type == "cuda":
        bf16 = "yes" if torch.cuda.is_bf16_supported() else "no"
    else:  # runs either way on the CPU; without AMX or AVX512-BF16 converted in software
        kind = cpu_bf16()
        bf16 = "emulated (no AMX or AVX512-BF16 on this CPU)" if kind == "emulated" else f"native ({kind.upper()})"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    lines.append(f"device: {device} ({name})  threads: {torch.get_num_threads()}  bf16: {bf16}")
    lines.append(f"precision: auto trains in {resolve_precision('auto', device)} here")
    lines.append(f"data dir: {resolve_data_dir()}")
    for name, spec in DATASETS.items():
        path = dataset_path(name)
        state = "present" if path.exists() else "missing (downloaded on first use)"
        lines.append(f"  {name:8s} {spec.train_size}/{spec.test_size} images {spec.image_shape}  {state}")
    lines.append("models:")
    for name in list_models():
        info = model_info(name)
        lines.append(
            f"  {name:9s} {info.family:6s} min input {info.min_input_size}  options: {', '.join(info.options)}"
        )
    return "\n".join(lines)


def run_outcome(record: RunRecord) -> str:
    """``deepcls train``'s answer: reused or trained, the run's status, epochs and accuracies, where it is."""
    m = record.metrics
    verb = "reused" if record.reused else "trained"
    return (
        f"{verb} {record.run_id}: status {m['status']}, epochs {m['epochs_run']}, "
        f"highest test {pct(m['highest_test_acc'])}%, final test {pct(m['final_test_acc'])}%\n"
        f"stored in {record.path}"
    )


def predictions(images: Sequence[str], classes: Sequence[Sequence[tuple[str, float]]]) -> str:
    """``deepcls predict``'s answer: a line per image with its top classes and their probabilities."""
    return "\n".join(
        f"{image}: " + ", ".join(f"{name} {100 * probability:.1f}%" for name, probability in top)
        for image, top in zip(images, classes)
    )
