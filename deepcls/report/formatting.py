"""Formatting only: numbers and results tables as strings (notebooks, the HTML index, RESULTS.md)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import pandas as pd

from deepcls.analysis.costs import duration
from deepcls.config import get_profile
from deepcls.errors import ConfigError
from deepcls.numeric import short_device


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


def to_html(results: pd.DataFrame) -> str:
    """A formatted results table as an HTML <table> (class ``results``)."""
    return format_results(results).to_html(index=False, classes="results", border=0, escape=True)


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
    if role != "claim":
        return f"{_p(raw)} (sanity)"
    return f"{_p(raw)} → {_p(adjusted)}"


def _registered(registration: object, fixed_on: object) -> str:
    return f"{registration} {fixed_on}".strip() if isinstance(registration, str) else "—"


def terminal_ledger(ledger: pd.DataFrame, width: int = 100) -> str:
    """The ledger for a terminal ``width`` columns wide: a line per conclusion with its id (what
    ``--conclusions`` takes), our final-epoch margin with its 95% interval, the p-value before and
    after the correction and the verdict; under it, indented and folded to the width, the secondary
    verdict and the note. The wording, sides and every number are in ``--markdown`` and ``--csv``."""
    shown = format_ledger(ledger)
    frame = pd.DataFrame(
        {
            "id": shown["id"],
            "final epoch [95%]": shown["ours, final epoch [95%]"],
            "p → adjusted": shown["p → adjusted"],
            "verdict": shown["verdict"],
        }
    )
    widths = {c: max(len(c), frame[c].str.len().max()) for c in frame}
    head = "  ".join(c.ljust(widths[c]) for c in frame).rstrip()
    lines = [head]
    for (_, row), secondary, note in zip(frame.iterrows(), shown["secondary verdict"], shown["note"]):
        lines.append("  ".join(str(row[c]).ljust(widths[c]) for c in frame).rstrip())
        said = f"secondary metric: {secondary}" + (f"; {note}" if note else "")
        lines += textwrap.wrap(said, width=max(40, width), initial_indent="    ", subsequent_indent="    ")
    return "\n".join(lines)


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
