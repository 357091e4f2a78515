"""The README's generated section: results per profile, read from the store (``deepcls readme``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deepcls.analysis import findings, ledger
from deepcls.analysis.costs import REFERENCE_DEVICE
from deepcls.analysis.results import results_table
from deepcls.config import get_profile
from deepcls.data.atomic import write_text
from deepcls.errors import DeepclsError
from deepcls.paper import grids as experiments
from deepcls.report import formatting as tables
from deepcls.store.runs import RunStore


def profile_summary(profile: str, store: RunStore) -> str:
    """The sentences under a profile's heading (README and HTML index): agreement with the report
    (or, for ``best``, the rows beaten) and the measured seed noise."""
    results = results_table(experiments.grid(experiments.ALL_TABLES, profile), store)
    summary = findings.beats(results) if profile == "best" else findings.agreement(results)
    table, row = findings.NOISE_ROW
    spread = results_table(experiments.grid(table, profile, findings.NOISE_SEEDS, rows=[row]), store)
    return " ".join(filter(None, [summary, findings.noise(spread)]))


def results_section(profiles: Sequence[str], store: RunStore) -> str:
    """Markdown: per profile a heading, its description and summary, and its results table."""
    parts = []
    for profile in profiles:
        results = results_table(experiments.grid(experiments.ALL_TABLES, profile), store)
        run = results[results["status"] != "pending"]
        shown, listed = results, ""
        if 0 < len(run) < len(results) / 2:  # a profile run on a few rows lists only those
            shown, listed = run, f" Only the rows run are listed; `deepcls results --profile {profile}` shows all."
        parts.append(
            f"### Profile `{profile}` ({len(run)} of {len(results)} rows run)\n\n"
            f"{get_profile(profile).description}. {profile_summary(profile, store)}{listed}\n\n"
            f"{tables.to_markdown(shown)}"
        )
    return "\n\n".join(parts)


LEDGER_PROFILES = ("paper", "quick")


def ledger_section(profiles: Sequence[str], store: RunStore) -> str:
    """Markdown: per profile the ledger of the report's conclusions (deepcls.analysis.ledger), the costs of
    missing seeds on one CPU thread whatever machine writes it, so that the README is one document."""
    parts = []
    for profile in profiles:
        table = ledger.ledger(profile, store, on=REFERENCE_DEVICE)
        shown = tables.format_ledger(table).drop(columns=["id"])
        parts.append(f"### Profile `{profile}`\n\n{ledger.summary(table)}\n\n{tables.frame_to_markdown(shown)}")
    return "\n\n".join(parts)


def update_readme(path: str | Path, profiles: Sequence[str], store: RunStore) -> None:
    """Rewrite the ``ledger`` and ``results`` sections of the README at ``path`` (atomically)."""
    path = Path(path)
    if not path.is_file():
        raise DeepclsError(f"{path} not found")
    for profile in profiles:
        get_profile(profile)
    try:
        text = tables.replace_section(path.read_text(), "results", results_section(profiles, store))
        if "<!-- ledger:start -->" in text:  # the conclusions ledger, where the README has a place for it
            text = tables.replace_section(text, "ledger", ledger_section(LEDGER_PROFILES, store))
    except ValueError as err:
        raise DeepclsError(f"{path}: {err}") from None
    write_text(path, text)
