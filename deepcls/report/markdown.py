"""``results/RESULTS.md``: every profile's ledger and results tables, read from the store
(``deepcls markdown``, ``make readme`` and the report write it; nothing in it is typed by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from deepcls.analysis import findings, ledger
from deepcls.analysis.costs import REFERENCE_DEVICE
from deepcls.analysis.results import results_table
from deepcls.atomic import write_text
from deepcls.config import get_profile
from deepcls.errors import DeepclsError
from deepcls.numeric import short_device
from deepcls.paper import grids as experiments
from deepcls.report import formatting as tables
from deepcls.report import verdicts
from deepcls.store.runs import RunStore


def profile_summary(profile: str, store: RunStore, results: pd.DataFrame | None = None) -> str:
    """The sentences under a profile's heading (RESULTS.md and HTML index): agreement with the report
    (or, for ``best``, the rows beaten) and the measured seed noise. ``results``: the profile's results
    table, where the caller has read it already."""
    if results is None:
        results = results_table(experiments.grid(experiments.ALL_TABLES, profile), store)
    summary = findings.beats(results) if profile == "best" else findings.agreement(results)
    return " ".join(filter(None, [summary, findings.noise(results)]))


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
            f"{get_profile(profile).description}. {profile_summary(profile, store, results)}{listed}\n\n"
            f"{tables.to_markdown(shown)}"
        )
    return "\n\n".join(parts)


LEDGER_PROFILES = ("paper", "quick")
SHOWN_PROFILES = ("paper", "best", "quick")  # RESULTS.md's results tables, in this order


def ledger_anchor(profile: str, conclusion: str) -> str:
    """The id of a conclusion's line in the ledger of ``profile`` in RESULTS.md: what the HTML
    index links each of its ledger lines to."""
    return f"{profile}-{conclusion}"


def ledger_section(profiles: Sequence[str], store: RunStore) -> str:
    """Markdown: per profile the ledger of the report's conclusions (deepcls.analysis.ledger), the costs of
    missing seeds on one CPU thread whatever machine writes it, so that RESULTS.md is one document. Each
    conclusion's cell opens with an anchor (:func:`ledger_anchor`)."""
    parts = []
    for profile in profiles:
        table = ledger.ledger(profile, store, on=REFERENCE_DEVICE)
        shown = tables.format_ledger(table)
        shown["conclusion"] = [
            f'<a id="{ledger_anchor(profile, i)}"></a>{c}' for i, c in zip(shown.pop("id"), shown["conclusion"])
        ]
        words = tables.frame_to_markdown(verdicts.summary_table(table))
        parts.append(
            f"### Profile `{profile}`\n\n{verdicts.summary(table)}\n\n{words}\n\n{tables.frame_to_markdown(shown)}"
        )
    return "\n\n".join(parts)


LEDGER_METHOD = """Every conclusion of the report is a line of data (`deepcls/paper/conclusions.csv`): the two rows it
compares, or a measurable form of it (a train-test gap, seconds per epoch, a confusion count per
10,000 images, the epoch-to-epoch swing of test accuracy, a collapse-to-chance rate, the rank of
digit confusions), the report's own margin, an equivalence margin with its registration
(`deepcls/paper/registration.csv`) and its role: a claim of the report, a sanity check of the set-up
or an extension of one's own. The ledger answers each from the stored complete seeds, read at fixed
looks, under the final epoch (primary) and the report's highest-over-epochs (secondary): n and mean
± std per side, our margin in the claimed direction with its 95% interval (Welch's t on
empirical-Bayes moderated variances where a family of rows allows, a paired t for two lengths of one
run or the repeats of a paired benchmark, a one-sample t against a threshold, exact tests for rates
and ranks), P(a > b), where one run of ours would fall, and the p-value before and after Holm's
correction over every claim. Failed runs are never read; diverged runs are counted and named.
`deepcls ledger --profile P --evidence` lists the runs behind every line.

How to read it:

{glossary}"""


def results_document(profiles: Sequence[str], store: RunStore) -> str:
    """The whole of ``RESULTS.md``: the ledger of the report's conclusions, then every profile's table."""
    for profile in profiles:
        get_profile(profile)
    ledgers = [p for p in LEDGER_PROFILES if p in profiles]
    return (
        "# deepcls results\n\n"
        "Generated from the run store (`results/runs`) by `make readme` (`deepcls markdown`) and by\n"
        "`make report`; every number is a stored run's, with its profile, seeds and numeric class beside it.\n\n"
        "## Which of the report's conclusions hold\n\n"
        f"{LEDGER_METHOD.format(glossary=verdicts.GLOSSARY)}\n\n{ledger_section(ledgers, store)}\n\n"
        "## Reported beside reproduced\n\n"
        "Per row: the report's highest train/test accuracy, ours (mean ± std over the complete seeds\n"
        "stored, `seeds` of them; highest over epochs, as the report measures) and the final-epoch test\n"
        "accuracy, the wall time and the numeric classes the runs trained in (device, the CPU's bf16\n"
        "arithmetic — `?` where a run did not record it —, threads, precision).\n\n"
        f"{results_section(profiles, store)}\n"
    )


HEADLINE_PROFILE = "paper"
HEADLINE_SEEDS = (0, 1, 2)  # fixed, so that seeds added later change RESULTS.md, never the README
HEADLINE_ROWS = (
    ("resnet_cifar10", 3),
    ("resnet_cifar10", 1),
    ("resnet_cifar10", 2),
    ("resnet_cifar10", 8),
    ("resnet_cifar10", 9),
    ("resnet_se", 1),
    ("resnet_mnist", 1),
    ("vgg_mnist", 9),
    ("vgg_mnist", 10),
)


def headline_table(store: RunStore) -> str:
    """The README's table of key ``paper`` rows: reported, ours over :data:`HEADLINE_SEEDS` (n, mean
    ± sd of the highest test accuracy) and the final epoch, with the device they trained on."""
    tables_needed = sorted({t for t, _ in HEADLINE_ROWS})
    results = results_table(experiments.grid(tables_needed, HEADLINE_PROFILE), store, seeds=HEADLINE_SEEDS)
    results = results.set_index(["table", "row"])
    lines = [
        "| table | row | setting | reported | ours, highest (n) | ours, final epoch | device |",
        "|---|---|---|---|---|---|---|",
    ]
    for table, row in HEADLINE_ROWS:
        line = results.loc[(table, row)]
        ours = f"{tables.pct(line['test_mean'], line['test_std'])} ({line['seeds_done']})"
        lines.append(
            f"| {table} | {row} | {line['setting']} | {tables.pct(line['reported_test'])} | {ours} | "
            f"{tables.pct(line['final_test_mean'])} | {short_device(line['device'])} |"
        )
    return "\n".join(lines)


def headline_text(path: str | Path, store: RunStore) -> str:
    """The README at ``path`` with its ``headline`` section rewritten; DeepclsError in one line when
    it cannot be read or has no such section."""
    path = Path(path)
    try:
        return tables.replace_section(path.read_text(encoding="utf-8"), "headline", headline_table(store))
    except (OSError, ValueError) as err:
        raise DeepclsError(f"{path}: {err}") from None


def write_results(path: str | Path, profiles: Sequence[str], store: RunStore) -> Path:
    """Write :func:`results_document` to ``path`` atomically."""
    path = Path(path)
    write_text(path, results_document(profiles, store))
    return path
