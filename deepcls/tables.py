"""Formatting only: numbers and results tables as strings (notebooks, the HTML index, the README)."""

from __future__ import annotations

import math

import pandas as pd

from deepcls.profiles import get_profile


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


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def short_device(names: str | None) -> str:
    """A run's ``metrics.json`` device, short: ``"cuda: NVIDIA H200"`` -> ``"H200"``,
    ``"cpu: x86_64 x1 threads"`` -> ``"CPU x1"``; several (seeds on different machines) joined by "/"."""
    if not isinstance(names, str) or not names:
        return "—"
    short = []
    for name in names.split(" | "):
        kind, _, detail = name.partition(": ")
        if kind == "cuda":
            short.append(detail.removeprefix("NVIDIA ").strip())
        else:
            threads = next((w for w in detail.split() if w.startswith("x") and w[1:].isdigit()), "")
            short.append(f"{kind.upper()} {threads}".strip())
    return "/".join(dict.fromkeys(short))


def banner(profile: str) -> str:
    """Markdown line naming the profile and what it means, shown at the top of every notebook."""
    return f"> **Profile: `{profile}`** — {get_profile(profile).description}."


def format_results(results: pd.DataFrame) -> pd.DataFrame:
    """The comparison columns of reading.results_table as display strings."""
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
            "device": results["device"].map(short_device) if "device" in results else "—",
            "status": [
                status + (f", continues {c}" if c else "")
                for status, c in zip(results["status"], results.get("continues", [""] * len(results)))
            ],
            "profile": results["profile"],
        }
    )


def to_html(results: pd.DataFrame) -> str:
    """A formatted results table as an HTML <table> (class ``results``)."""
    return format_results(results).to_html(index=False, classes="results", border=0, escape=True)


def to_markdown(results: pd.DataFrame) -> str:
    """A formatted results table as a GitHub-flavoured Markdown table."""
    return markdown_table(format_results(results).drop(columns=["setting"]))


def markdown_table(frame: pd.DataFrame) -> str:
    """Any frame as a GitHub-flavoured Markdown table (values as ``str`` gives them)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in line) + " |" for line in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def replace_section(text: str, name: str, body: str) -> str:
    """Replace what stands between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"markers {start} ... {end} not found")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"
