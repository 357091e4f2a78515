"""Which of the report's conclusions hold: every conclusion as data, answered from the store.

A conclusion compares two sides (rows of the report's tables) or measures one quantity. Each side is
the complete runs of a row (failed runs are never read; diverged ones are counted and named), read
at a **look**: seeds arrive whenever compute does, so a line is read at fixed seed counts per side
(:data:`LOOKS`, the first seeds of each side) and its p-values are Jennison & Turnbull's repeated
p-values of a Pocock group-sequential design over those looks, which keep their error rate however
often seeds are added after looking (deepcls.analysis.statistics). Pocock rather than
O'Brien-Fleming: most rows will stay at 3 seeds a while, and O'Brien-Fleming spends almost nothing
at the first look (a nominal p of 0.00005).

The **final epoch is the primary metric**; the report's highest-over-epochs is secondary, answered
the same way and labelled so. Per line and metric: n, mean ± std per side, the difference with its
95% interval (Welch's t, with empirical-Bayes moderated variances where the line's family of rows
has at least :data:`MODERATED_ROWS` rows — limma's squeeze, each set of rows sharing a trajectory
counted once; a paired t for two lengths of one run; a one-sample t against a threshold; exact
tests for collapse rates and for the rank of digit confusions), its 90% interval and TOST p against
the line's margin, P(A > B), a prediction interval for one run of each side (what the report's
single run is judged against), a seeds-and-test-images bootstrap where the runs kept their
per-image predictions, and the seeds per side a planned test would need.

**One fixed family, verdicts after the correction.** Every claim line of conclusions.csv is in the
family, tested or not (an untested claim counts with p = 1), so adding seeds never changes its
size; sanity lines (set-up checks that hold by construction) are outside it, and a user's own
``extension`` lines are a family of their own, corrected among themselves, so adding one never
changes the report's verdicts. A line's family p is
the smaller of its sequential two-sided and TOST p-values: their nulls (no difference; a difference
beyond the margin) cannot both be true, so a false verdict stays as unlikely as the level. Holm's
step-down adjusts them: each verdict is quoted on its own, so the ledger controls the chance that
*any* named verdict is wrong (Benjamini-Hochberg would be valid too under the positive dependence a
shared baseline row creates, but lets 5% of named verdicts be false). Verdicts:

- ``holds`` / ``reversed`` / ``equivalent``: adjusted p below 0.05 (a real difference inside the
  margin is ``holds`` and said to be negligible);
- ``suggestive``: significant before the correction only (the line names which);
- ``inconclusive``: neither; ``undecided``: fewer than :data:`MIN_SEEDS` runs a side
  (:data:`MIN_COLLAPSE_SEEDS` for a collapse rate, the fewest that can decide); ``not comparable``:
  a side collapsed to chance in some seeds.

A seconds-per-epoch line is a sanity line read from the paired benchmark stored beside the runs
(deepcls.store.timings, ``deepcls ledger --time``), stated as a ratio with its interval. Epoch lines
read both lengths from the longer run's own trajectory (bit for bit the shorter run within one
numeric class, tested in test_train.py). Runs of several numeric classes inside one line are named.
Every line carries its registration (deepcls.paper.conclusions): today every margin is post-hoc.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from deepcls import progress
from deepcls.analysis import statistics as st
from deepcls.analysis.costs import UNKNOWN, Cost, row_costs
from deepcls.analysis.measures import CONFUSED_PAIRS, QUANTITIES, collapsed, test_accuracy
from deepcls.analysis.results import SEEDS_LOOKED_UP, records, results_table
from deepcls.config import RunConfig
from deepcls.errors import ConfigError, StoreError, unknown
from deepcls.models import model_info
from deepcls.numeric import class_label
from deepcls.paper import grids as experiments
from deepcls.paper.conclusions import CONCLUSIONS, CORRECTED_ROLES, REGISTRATIONS, Conclusion, Side
from deepcls.store.runs import RunRecord, RunStore
from deepcls.store.timings import StepTiming, load_timing

LOOKS = (3, 6, 10, 16)  # seeds per side at which a line is read: the group-sequential design's looks
DESIGN = "pocock"
MIN_SEEDS = LOOKS[0]  # runs per side before a difference is decided
MIN_COLLAPSE_SEEDS = 6  # the fewest runs whose exact test can show a collapse rate above 1/2 (6 of 6: p = 0.031)
FAILS_RATE = 0.5  # "it fails": it collapses in most seeds
TOP_PAIRS = 5  # "prone to confusion": among the 5 most confused digit pairs (what every run lists)
MODERATED_ROWS = 3  # rows (trajectories) a family needs before its variances are moderated
LEDGER_SEEDS = SEEDS_LOOKED_UP
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
EQUIVALENCE = 0.90  # TOST at 5% a side: the 90% interval inside +-margin
POWER = 0.80  # the planned power of the seeds a line needs
PRIMARY = "honest"  # the final epoch; the report's highest-over-epochs ("report") is secondary
METRICS = ("report", "honest")
VERDICTS = ("holds", "reversed", "equivalent", "suggestive", "inconclusive", "undecided", "not comparable")
DECIDED = VERDICTS[:3]  # named only after the correction
TESTED = VERDICTS[:5]  # the verdicts of a line with enough seeds


@dataclass(frozen=True)
class Reading:
    """What the ledger reads from the store, once: every side's complete runs (each seed of
    :data:`LEDGER_SEEDS` found), its diverged runs, and each side's config (seed 0), from one grid."""

    profile: str
    found: dict[Side, list[RunRecord]]
    diverged: dict[Side, int]
    configs: dict[Side, RunConfig]


def read(conclusions: Sequence[Conclusion], profile: str, store: RunStore) -> Reading:
    """One reading of the store for ``conclusions``: the grid of their tables is resolved once."""
    sides = sorted({s for c in conclusions for s in (c.a, c.b) if s is not None})
    grid = experiments.grid(sorted({t for t, _ in sides}), profile, LEDGER_SEEDS)
    results = results_table(grid, store)
    stored = set(zip(results["table"], results["row"]))
    first = grid[grid["seed"] == LEDGER_SEEDS[0]]
    configs = {(t, int(r)): c for t, r, c in zip(first["table"], first["row"], first["config"])}
    counts = dict(zip(zip(results["table"], results["row"]), results["diverged"])) if len(results) else {}
    return Reading(
        profile=profile,
        found={s: records(results, *s, store) if s in stored else [] for s in sides},
        diverged={s: int(counts.get(s, 0)) for s in sides},
        configs=configs,
    )


# ---------------------------------------------------------------------------- the ledger
def side_config(side: Side, profile: str, reading: Reading | None = None) -> RunConfig:
    """The config of ``side``'s row at ``profile`` (seed 0)."""
    if reading is not None and side in reading.configs:
        return reading.configs[side]
    return experiments.grid(side[0], profile, (0,), rows=[side[1]])["config"].iloc[0]


def timing_of(
    conclusion: Conclusion, profile: str, store: RunStore, reading: Reading | None = None
) -> tuple[StepTiming | None, str]:
    """A seconds line's stored paired benchmark, or None and why it is not read."""
    again = f"measure it: deepcls ledger --time --profile {profile} --conclusions {conclusion.id}"
    try:
        timing = load_timing(store, profile, conclusion.id)
    except StoreError as err:
        return None, f"{err}; {again}"
    if timing is None:
        return None, f"not measured; {again}"
    configs = (side_config(s, profile, reading) for s in (conclusion.a, conclusion.b))
    if not timing.matches(*configs):
        return None, f"the stored timing measured other configs; {again}"
    return timing, ""


def look_at(n: int, looks: Sequence[int] = LOOKS) -> int | None:
    """The index of the last look that ``n`` runs a side reach (None below the first)."""
    reached = [k for k, look in enumerate(looks) if n >= look]
    return reached[-1] if reached else None


def at_look(runs: list[RunRecord], look: int | None) -> list[RunRecord]:
    """The runs a line reads at look index ``look``: the first seeds, as many as the look counts
    (every run below the first look, for the means an undecided line still shows)."""
    runs = sorted(runs, key=lambda r: r.config.seed)
    return runs if look is None else runs[: LOOKS[look]]


def ledger(
    profile: str, store: RunStore, conclusions: Sequence[Conclusion] = CONCLUSIONS, on: str | None = None
) -> pd.DataFrame:
    """One line per conclusion and metric (``report``, ``honest``): n, mean ± std per side, the
    difference and its intervals, the p-values before and after the correction, the verdict and
    whether the report's one run lies inside our prediction interval. An undecided line says what its
    missing seeds cost on device ``on`` (deepcls.numeric.target_device).

    Lines of :data:`CONCLUSIONS` are always answered within the whole ledger, so that a subset (one
    notebook's lines, ``--conclusions``) shows the adjusted p-values of the full family."""
    asked = [c.id for c in conclusions]
    if set(asked) <= {c.id for c in CONCLUSIONS}:
        conclusions = CONCLUSIONS
    reading = read(conclusions, profile, store)
    costs = row_costs(profile, store, LEDGER_SEEDS, on)
    priors = {metric: moderation(reading, metric) for metric in METRICS}
    lines = []
    for conclusion in progress.reading(conclusions, "weighing conclusions"):
        timed = timing_of(conclusion, profile, store, reading) if conclusion.quantity == "seconds" else None
        for metric in METRICS:
            with warnings.catch_warnings(record=True) as caught:  # scipy's numerical warnings: the line's note
                warnings.simplefilter("always")
                if timed is None:
                    line = answer(conclusion, reading, metric, priors[metric])
                else:
                    line = _timed(conclusion, *timed)
            said = dict.fromkeys(" ".join(str(w.message).split()) for w in caught)
            line["reading"] = _join(line["reading"], *(f"numerical warning: {w}" for w in said))
            if line["verdict"] == "undecided" and timed is None:
                line["reading"] += _cost_note(conclusion, reading.found, costs)
            classes = [c for c in line.pop("classes", []) if c]
            if len(set(classes)) > 1:  # float rounding differs: not one trajectory per setting
                mixed = "/".join(dict.fromkeys(classes))
                line["reading"] = _join(line["reading"], f"runs of mixed numeric classes ({mixed})")
            line["diverged_a"] = reading.diverged.get(conclusion.a, 0)
            line["diverged_b"] = reading.diverged.get(conclusion.b, 0) if conclusion.b else None
            gone = [f"side {s} {k} diverged" for s, k in (("a", line["diverged_a"]), ("b", line["diverged_b"])) if k]
            if gone:
                line["reading"] = _join(line["reading"], ", ".join(gone) + " (not read)")
            lines.append(
                {
                    "id": conclusion.id,
                    "conclusion": conclusion.wording,
                    "metric": metric,
                    "measure": conclusion.measure,
                    "role": conclusion.role,
                    "profile": profile,
                    **_registration(conclusion, line.pop("finished", [])),
                    **line,
                }
            )
    table = correct(pd.DataFrame(lines))
    table = table[table["id"].isin(asked)]
    order = {i: k for k, i in enumerate(asked)}
    return table.iloc[sorted(range(len(table)), key=lambda k: order[table["id"].iloc[k]])].reset_index(drop=True)


def _join(*notes: str) -> str:
    return "; ".join(filter(None, notes))


def _registration(conclusion: Conclusion, finished: list[str]) -> dict:
    """The line's registration (deepcls.paper.conclusions): post-hoc or registered, when, and how many
    of the runs it reads were trained after that date (the ones confirmatory for it)."""
    entry = REGISTRATIONS.get(conclusion.id)
    if entry is None:  # a line of the caller's own, not in conclusions.csv
        return {"registration": "unregistered", "fixed_on": "", "confirmatory": None}
    after = sum(bool(f) and f[:10] > entry.fixed_on.isoformat() for f in finished)
    return {
        "registration": "post-hoc" if entry.post_hoc else "registered",
        "fixed_on": entry.fixed_on.isoformat(),
        "confirmatory": after,
    }


def correct(table: pd.DataFrame) -> pd.DataFrame:
    """Verdicts after the correction, per metric and per family (:data:`CORRECTED_ROLES`: the claim
    lines of the ledger, and apart from them the extension lines), each family fixed (tested or
    not: an untested line counts with p = 1): Holm-adjusted family p-values (``p_adjusted``; empty
    for sanity lines) and the family's size (``family``); a line is holds, reversed or equivalent
    only when its adjusted p is below 0.05, and suggestive when only its uncorrected tests pass.
    Sanity lines keep their uncorrected verdict."""
    table = table.assign(p_adjusted=math.nan, family=math.nan)
    for metric, role in itertools.product(METRICS, CORRECTED_ROLES):
        claims = table.index[(table["metric"] == metric) & (table["role"] == role)]
        if not len(claims):
            continue
        family = [_family_p(table.loc[i]) for i in claims]
        table.loc[claims, "p_adjusted"] = st.adjust(family, "holm")
        table.loc[claims, "family"] = len(claims)
        for i in claims:
            before = table.at[i, "verdict"]
            if before not in TESTED:
                continue
            adjusted = table.at[i, "p_adjusted"]
            if adjusted < ALPHA:
                verdict = _named(table.loc[i])
            elif before in DECIDED:
                verdict = "suggestive"
                note = f"suggestive: {before} before the correction (Holm-adjusted p = {adjusted:.3f})"
                table.at[i, "reading"] = _join(note, table.at[i, "reading"])
            else:
                verdict = "inconclusive"
            table.at[i, "verdict"] = verdict
    return table


def _family_p(line: pd.Series) -> float:
    """A claim line's p in the family: the smaller of its sequential two-sided and TOST p-values; 1
    for a line without a test (too few seeds, a collapsed side)."""
    if line["verdict"] not in TESTED:
        return 1.0
    found = [p for p in (line.get("p_sequential"), line.get("p_sequential_tost")) if p is not None and p == p]
    return float(min(found)) if found else 1.0


def _named(line: pd.Series) -> str:
    """The verdict a line that survives the correction is named by: the test that gave its family p
    (its two-sided test keeps the direction its uncorrected verdict found)."""
    two, tost = line.get("p_sequential"), line.get("p_sequential_tost")
    tost = math.inf if tost is None or tost != tost else tost
    if two is not None and two == two and two <= tost:
        return line["verdict"] if line["verdict"] in ("holds", "reversed") else "inconclusive"
    return "equivalent"


# ---------------------------------------------------------------------------- variance moderation
def _family_of(record: RunRecord) -> tuple[str, str]:
    """A row's family for variance moderation: its dataset and its model's declared family."""
    return record.config.dataset, model_info(record.config.model).family


def moderation(reading: Reading, metric: str) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Per family of rows (dataset, model family): the empirical-Bayes prior of test accuracy's
    variance under ``metric`` — (s0², d0, the family's residual df) — from every row with at least 2
    non-collapsed runs, each trajectory once (rows that are lengths of one run, 20/30/50 epochs, share
    their seeds' trajectories: only the longest is counted; a config in two tables once). Families
    with fewer than :data:`MODERATED_ROWS` rows get none (their lines use Welch's plain variances)."""
    rows: dict[tuple[str, str], dict[RunConfig, tuple[int, list[float]]]] = {}
    for runs in reading.found.values():
        runs = [r for r in runs if not collapsed(r)]
        values = _known(_readable(test_accuracy, r, metric) for r in runs)
        if len(values) < 2:
            continue
        lineage, epochs = runs[0].config.lineage, runs[0].config.epochs
        family = rows.setdefault(_family_of(runs[0]), {})
        if lineage not in family or family[lineage][0] < epochs:
            family[lineage] = (epochs, values)
    priors = {}
    for family, kept in rows.items():
        if len(kept) < MODERATED_ROWS:
            continue
        variances = [float(np.var(v, ddof=1)) for _, v in kept.values()]
        dfs = [len(v) - 1 for _, v in kept.values()]
        try:
            _, _, s0_squared, d0 = st.moderated_variances(variances, dfs)
        except ValueError:  # fewer than two rows with any spread
            continue
        priors[family] = (s0_squared, d0, float(sum(dfs)))
    return priors


def _moderated(values: list[float], prior: tuple[float, float, float] | None) -> tuple[float, float]:
    """A side's variance and its df: the sample's, or moderated towards the family's prior."""
    variance, df = float(np.var(values, ddof=1)), float(len(values) - 1)
    if prior is None:
        return variance, df
    s0_squared, d0, pooled = prior
    if math.isinf(d0):
        return s0_squared, pooled
    return (d0 * s0_squared + df * variance) / (d0 + df), min(d0 + df, pooled)


# ---------------------------------------------------------------------------- one line
def run_values(
    conclusion: Conclusion,
    found: dict[Side, list[RunRecord]],
    metric: str,
    profile: str,
    reading: Reading | None = None,
) -> dict[str, list[tuple[RunRecord, float | None]]]:
    """Each side's runs (``a``, ``b``) with the value the line reads from them under ``metric``: None
    for a run that collapsed to chance (left out of a difference, counted in a rate), NaN where the run
    lacks it (no confusion matrix). An epoch line's side b is side a's runs read at b's length."""
    a_runs, b_runs = found.get(conclusion.a, []), found.get(conclusion.b, []) if conclusion.b else []
    if conclusion.kind == "collapse":
        return {"a": [(r, float(collapsed(r))) for r in a_runs], "b": [(r, float(collapsed(r))) for r in b_runs]}
    if conclusion.kind == "epochs":  # both lengths from the longer run's trajectory, paired by seed
        k = shorter_epochs(conclusion, profile, reading)
        return {
            "a": [(r, _readable(test_accuracy, r, metric, r.config.epochs)) for r in a_runs],
            "b": [(r, _readable(test_accuracy, r, metric, k)) for r in a_runs],
        }
    value = QUANTITIES[conclusion.quantity] if conclusion.kind == "quantity" else test_accuracy

    def value_of(record: RunRecord) -> float | None:
        if collapsed(record):
            return None
        try:
            return float(value(record, metric))
        except (KeyError, IndexError, ValueError, TypeError):  # a history without what this line reads
            return math.nan

    return {"a": [(r, value_of(r)) for r in a_runs], "b": [(r, value_of(r)) for r in b_runs]}


def _readable(value, record: RunRecord, *args) -> float:
    """``value(record, *args)``, or NaN where the run's history lacks it (left out, and said)."""
    try:
        return float(value(record, *args))
    except (KeyError, IndexError, ValueError, TypeError):
        return math.nan


def shorter_epochs(conclusion: Conclusion, profile: str, reading: Reading | None = None) -> int:
    """An epoch conclusion's shorter length: side b's epochs in the profile."""
    return side_config(conclusion.b, profile, reading).epochs


def answer(
    conclusion: Conclusion, reading: Reading, metric: str, priors: dict[tuple[str, str], tuple] | None = None
) -> dict:
    """The numbers and the uncorrected verdict of one conclusion under one metric, from the runs of
    its sides at the line's look (:func:`correct` names the verdict after the correction)."""
    found = reading.found
    a_all, b_all = found.get(conclusion.a, []), found.get(conclusion.b, []) if conclusion.b else []
    both = conclusion.b is not None and conclusion.kind != "epochs"
    n = min(len(a_all), len(b_all)) if both else len(a_all)
    look = look_at(n) if conclusion.kind != "collapse" or n >= MIN_COLLAPSE_SEEDS else None
    a_runs, b_runs = at_look(a_all, look), at_look(b_all, look)
    view = {conclusion.a: a_runs} | ({conclusion.b: b_runs} if conclusion.b else {})
    read_runs = a_runs if conclusion.kind == "epochs" else a_runs + b_runs  # an epoch line reads only side a
    later = len(a_all) + (len(b_all) if both else 0) - len(read_runs)
    base = {
        "reported": reported_margin(conclusion),
        "devices": " | ".join(sorted({r.metrics.get("device", "?") for r in read_runs})),
        "classes": sorted({class_label(r.metrics, r.config.to_dict()) for r in read_runs}),
        "finished": [str(r.metrics.get("finished_at") or "") for r in read_runs],
        "look": LOOKS[look] if look is not None else None,
        "n_a": len(a_runs),
        "n_b": len(b_runs) if conclusion.b else None,
    }
    if later and look is not None:
        nxt = f"the next look at {LOOKS[look + 1]} a side" if look + 1 < len(LOOKS) else "the design's last look"
        base["look_note"] = f"read at the look of {LOOKS[look]} seeds a side; {later} later run(s) wait for {nxt}"
    if conclusion.kind == "collapse":
        line = _collapse(conclusion, a_runs, b_runs, look)
    elif conclusion.quantity == "pair_rank":
        line = _ranks(conclusion, a_runs, look)
    else:
        line = _measured(conclusion, reading, view, metric, look, priors or {})
    line["reading"] = _join(line.get("reading", ""), line.pop("reading_way", ""), base.pop("look_note", ""))
    return {**base, **line}


def _measured(
    conclusion: Conclusion, reading: Reading, view: dict[Side, list[RunRecord]], metric: str, look: int | None,
    priors: dict[tuple[str, str], tuple],
) -> dict:  # fmt: skip
    """A difference of accuracies or quantities, or a quantity against its threshold."""
    values = run_values(conclusion, view, metric, reading.profile, reading)
    unreadable = sum(v is not None and math.isnan(v) for s in ("a", "b") for _, v in values[s])
    left = f"{unreadable} run{'s' * (unreadable != 1)} left out: no value to read" if unreadable else ""
    if conclusion.kind == "epochs":
        pairs = [(x, y) for (_, x), (_, y) in zip(values["a"], values["b"]) if not (math.isnan(x) or math.isnan(y))]
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        line = _difference(conclusion, a, b, kind="paired", collapsed=(0, 0), look=look)
        if metric == "report":
            line |= _the_reports_way(conclusion, view.get(conclusion.a, []), reading)
        line.update(n_a=len(a), n_b=len(b))
    else:
        a = _known(v for _, v in values["a"] if v is not None)
        b = _known(v for _, v in values["b"] if v is not None) if conclusion.b else None
        gone = tuple(sum(v is None for _, v in values[s]) for s in ("a", "b"))
        prior = None
        if conclusion.kind == "compare" and view.get(conclusion.a) and view.get(conclusion.b):
            families = {_family_of(view[s][0]) for s in (conclusion.a, conclusion.b)}
            prior = priors.get(families.pop()) if len(families) == 1 else None
        kind = "one-sample" if b is None else "moderated" if prior else "welch"
        line = _difference(conclusion, a, b, kind=kind, collapsed=gone, look=look, prior=prior)
        if conclusion.kind == "compare" and not any(gone):
            line |= _images(view.get(conclusion.a, []), view.get(conclusion.b, []))
    line["reading"] = _join(line["reading"], left)
    return line


def _the_reports_way(conclusion: Conclusion, runs: list[RunRecord], reading: Reading) -> dict:
    """An epoch line's check of the report's margin measured as the report measured it: the highest
    test accuracy over each length, both read from each longer run's own trajectory (a difference of
    maxima over nested prefixes, never below 0), against a prediction interval for one run."""
    k = shorter_epochs(conclusion, reading.profile, reading)
    gains = _known(
        _readable(lambda r: r.history["test_acc"].max() - r.history["test_acc"].iloc[:k].max(), r) for r in runs
    )
    reported = reported_margin(conclusion)
    if reported is None or len(gains) < 2:
        return {}
    low, high = st.prediction_interval(gains, CONFIDENCE)
    inside = bool(low <= reported <= high)
    note = (
        f"the report's margin is {'inside' if inside else 'outside'} where one run of ours would fall, "
        f"measured its way (highest of each length: [{low:+.2f}, {high:+.2f}])"
    )
    return {"report_inside": inside, "predict_low": low, "predict_high": high, "reading_way": note}


def _images(a_runs: list[RunRecord], b_runs: list[RunRecord]) -> dict:
    """The two-way (seeds x test images) bootstrap interval of a two-row accuracy difference, where
    every run kept its per-image predictions over the same test images; otherwise says it is not."""
    runs = a_runs + b_runs
    kept = [r.predictions for r in runs]
    if min(len(a_runs), len(b_runs)) < 2 or any(k is None for k in kept):
        return {"image_noise": "not counted"}
    if len({k["index"].tobytes() for k in kept}) != 1:  # other test images: nothing to pair
        return {"image_noise": "not counted"}

    def correct(side: list[RunRecord]) -> np.ndarray:
        return np.stack([r.predictions["predicted"] == r.predictions["true"] for r in side])

    _, low, high = st.two_way_bootstrap(correct(a_runs), correct(b_runs), level=CONFIDENCE)
    return {"image_noise": "counted", "boot_low": low, "boot_high": high}


def _t_line(difference: float, se: float, df: float, margin: float) -> dict:
    """A t statistic's 95% and 90% intervals, two-sided p and TOST p against ``margin``."""
    test = st.t_test(difference, se, df, margin, level=CONFIDENCE, equivalence=EQUIVALENCE)
    return {
        "low": test["low"],
        "high": test["high"],
        "tost_low": test["tost_low"],
        "tost_high": test["tost_high"],
        "p_value": test["p_value"],
        "p_tost": test["p_tost"],
        "df": df,
    }


def _difference(
    conclusion: Conclusion,
    a: list[float],
    b: list[float] | None,
    *,
    kind: str,
    collapsed: tuple[int, int],
    look: int | None,
    prior: tuple | None = None,
) -> dict:
    """Means, stds, the a - b difference (one side: a's margin over the threshold) with its 95% and
    90% intervals, p-values (raw and sequential) and the uncorrected verdict. ``kind``: ``welch``,
    ``moderated`` (Welch's df on moderated variances), ``paired`` or ``one-sample``."""
    mean_a, std_a = _mean_std(a)
    mean_b, std_b = _mean_std(b) if b is not None else (None, None)
    margin = conclusion.margin * (abs(mean_b) if conclusion.relative and mean_b else 1) if conclusion.margin else None
    line = {
        "mean_a": mean_a,
        "std_a": std_a,
        "mean_b": mean_b,
        "std_b": std_b,
        "difference": math.nan,
        "low": math.nan,
        "high": math.nan,
        "tost_low": math.nan,
        "tost_high": math.nan,
        "margin": margin,
        "test": kind,
        "reading": "",
    }
    one_sided = b is None
    sign = conclusion.sign if one_sided else 1
    if one_sided and a:  # the margin over the threshold, positive in the claimed direction
        line["difference"] = sign * (mean_a - conclusion.threshold)
    elif not one_sided and a and b:
        line["difference"] = mean_a - mean_b
    n = min(len(a), len(b)) if not one_sided else len(a)
    spread = math.nan  # the sd a planned test of this line would face, with its df
    if n >= 2:
        if kind == "paired":
            d = np.subtract(a, b)
            spread, df = float(np.std(d, ddof=1)), n - 1
            se = spread / math.sqrt(n)
            pi = st.prediction_interval(d, CONFIDENCE)
            line["prob_greater"] = float(stats.norm.cdf(np.mean(d) / spread)) if spread > 0 else math.nan
        elif one_sided:
            spread, df = float(std_a), n - 1
            se = spread / math.sqrt(n)
            pi = tuple(sorted(sign * (x - conclusion.threshold) for x in st.prediction_interval(a, CONFIDENCE)))
        else:
            (var_a, df_a), (var_b, df_b) = _moderated(a, prior), _moderated(b, prior)
            cap = prior[2] if prior else math.inf  # moderated dfs never exceed the family's residual df
            se, df = st.welch_se(var_a, len(a), df_a, var_b, len(b), df_b)
            scale, pdf = st.welch_se(var_a, len(a), df_a, var_b, len(b), df_b, new_run=True)
            df, pdf = min(df, cap), min(pdf, cap)
            half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, pdf)) * scale
            pi = (line["difference"] - half, line["difference"] + half)
            line["prob_greater"] = st.prob_greater(a, b)
            if prior is not None:
                line["prior_df"] = prior[1]
        if kind in ("welch", "moderated"):
            spread = math.sqrt((var_a + var_b) / 2)
        line |= _t_line(line["difference"], se, df, margin or 0.0)
        line["predict_low"], line["predict_high"] = pi
        if look is not None:
            line["p_sequential"] = st.repeated_p(line["p_value"], look, LOOKS, DESIGN)
            if margin:
                line["p_sequential_tost"] = st.repeated_p(line["p_tost"], look, LOOKS, DESIGN, two_sided=False)
    if any(collapsed):
        sides = [
            f"{name} collapsed in {k} of {k + len(v)}"
            for name, k, v in (("side a", collapsed[0], a), ("side b", collapsed[1], b or []))
            if k
        ]
        line.update(verdict="not comparable", reading="; ".join(sides) + "; compared: the runs that trained")
    elif n < MIN_SEEDS or look is None:
        line.update(verdict="undecided", reading=f"{n} of {MIN_SEEDS} seeds on the smaller side")
    else:
        line["verdict"] = decide(line["p_value"], line["difference"], line.get("p_tost", math.nan))
        if line["verdict"] in ("holds", "reversed") and -margin < line["tost_low"] and line["tost_high"] < margin:
            line["reading"] = f"negligible: inside the ±{margin:.3g} equivalence margin"
    reported = reported_margin(conclusion)
    if reported is not None and not math.isnan(line.get("predict_low", math.nan)):
        line["report_inside"] = bool(line["predict_low"] <= reported <= line["predict_high"])
    if margin and reported is not None and not conclusion.relative and margin >= abs(reported):
        note = (
            f"its margin ±{margin:.3g} is not below the report's {reported:+.3g}: equivalent cannot refute the report"
        )
        line["reading"] = _join(line["reading"], note)
    samples = 1 if kind in ("paired", "one-sample") else 2
    if spread == spread and spread > 0:
        line.update(spread=spread, samples=samples)
    if line["verdict"] in ("undecided", "inconclusive") and margin and spread == spread and spread > 0:
        line |= _planned(spread, df, margin, samples)
        line["reading"] = _join(line["reading"], _plan_note(line, samples))
    return line


def decide(p_value: float, difference: float, p_tost: float) -> str:
    """The verdict of a line's uncorrected tests: holds/reversed where the two-sided test rejects
    (its 95% interval excludes 0), equivalent where TOST does, inconclusive otherwise."""
    if p_value < ALPHA:
        return "holds" if difference > 0 else "reversed"
    return "equivalent" if p_tost < ALPHA else "inconclusive"


def _planned(spread: float, df: float, margin: float, samples: int) -> dict:
    """Seeds per side (``samples`` 2) or pairs (1) for 80% power at the line's margin — to show a
    difference as large as the margin, and to show equivalence when there is none — at the observed
    spread and at its 95% upper bound (the spread's chi-square interval)."""
    upper = spread * math.sqrt(df / stats.chi2.ppf(ALPHA / 2, df))
    out = {}
    for name, plan in (("seeds_power", st.seeds_for_power), ("seeds_equivalence", st.seeds_for_equivalence)):
        for suffix, sd in (("", spread), ("_high", upper)):
            try:
                out[name + suffix] = plan(margin, sd, samples=samples, alpha=ALPHA, power=POWER)
            except ValueError:  # beyond what the search covers
                out[name + suffix] = math.inf
    return out


def _plan_note(line: dict, samples: int) -> str:
    """How many seeds a planned test of the line needs, in words."""
    per = " per side" if samples == 2 else ""

    def seeds(low: float, high: float) -> str:
        text = lambda n: "over 10,000" if math.isinf(n) else f"{n:,}"  # noqa: E731
        return text(low) if low == high else f"{text(low)}-{text(high)}"

    return (
        f"80% power at the margin: {seeds(line['seeds_power'], line['seeds_power_high'])} seeds{per} to show a "
        f"difference, {seeds(line['seeds_equivalence'], line['seeds_equivalence_high'])} to show equivalence "
        "(range: the spread's 95% upper bound)"
    )


def _collapse(conclusion: Conclusion, a_runs: list[RunRecord], b_runs: list[RunRecord], look: int | None) -> dict:
    """Collapse rates with their exact (Clopper-Pearson) 95% intervals; one side: the exact binomial
    test of a rate of 1/2 ("it fails": most seeds collapse); two sides: Fisher's exact test."""
    k_a, n_a = sum(map(collapsed, a_runs)), len(a_runs)
    line = {
        "mean_a": k_a / n_a if n_a else math.nan,
        "std_a": None,
        "mean_b": None,
        "std_b": None,
        "difference": math.nan,
        "low": math.nan,
        "high": math.nan,
        "test": "exact",
    }
    if n_a:
        low, high = st.clopper_pearson(k_a, n_a, CONFIDENCE)
        line.update(difference=k_a / n_a, low=low, high=high)
        line["p_value"] = st.binomial_p(k_a, n_a, FAILS_RATE)
    reading = f"collapsed in {k_a} of {n_a}"
    n = n_a
    if conclusion.b is not None:
        k_b, n_b = sum(map(collapsed, b_runs)), len(b_runs)
        line["mean_b"] = k_b / n_b if n_b else math.nan
        reading += f" vs {k_b} of {n_b}"
        n = min(n_a, n_b)
        line.update(low=math.nan, high=math.nan, p_value=math.nan)
        if n_a and n_b:
            line["difference"] = k_a / n_a - k_b / n_b
            line["p_value"] = stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue
    if n < MIN_COLLAPSE_SEEDS or look is None:
        return {**line, "verdict": "undecided", "reading": f"{reading}; {n} of {MIN_COLLAPSE_SEEDS} seeds"}
    line["p_sequential"] = st.repeated_p(line["p_value"], look, LOOKS, DESIGN)
    verdict = decide(line["p_value"], line["difference"] - (FAILS_RATE if conclusion.b is None else 0), math.nan)
    how = f"exact 95% interval [{line['low']:.2f}, {line['high']:.2f}]" if conclusion.b is None else "Fisher"
    return {**line, "verdict": verdict, "reading": f"{reading} ({how}, p = {line['p_value']:.3f})"}


def _ranks(conclusion: Conclusion, runs: list[RunRecord], look: int | None) -> dict:
    """The digit-confusion line: the worse rank of the named pairs among all pairs, per run, and the
    exact probability that both rank in the top :data:`TOP_PAIRS` of every run by chance (a null it
    can fail: one run with a pair outside the top gives p = 1)."""
    ranked = [(r, st.pair_rank(r.confusion, CONFUSED_PAIRS)) for r in runs if r.confusion is not None]
    worst = [max(ranks) for _, (ranks, _) in ranked]
    mean, std = _mean_std(worst)
    line = {
        "mean_a": mean,
        "std_a": std,
        "mean_b": None,
        "std_b": None,
        "difference": mean,  # the mean worse rank: the verdict is the exact test's, not an interval's
        "low": math.nan,
        "high": math.nan,
        "test": "exact",
        "n_a": len(worst),
    }
    if len(worst) < MIN_SEEDS or look is None:
        return {**line, "verdict": "undecided", "reading": f"{len(worst)} of {MIN_SEEDS} seeds"}
    total = ranked[0][1][1]
    line["p_value"] = st.rank_p([ranks for _, (ranks, _) in ranked], total, TOP_PAIRS)
    line["p_sequential"] = st.repeated_p(line["p_value"], look, LOOKS, DESIGN, two_sided=False)
    within = sum(w <= TOP_PAIRS for w in worst)
    verdict = "holds" if line["p_value"] < ALPHA else "inconclusive"
    reading = f"both pairs in the top {TOP_PAIRS} of {total} in {within} of {len(worst)} runs (worse ranks {worst})"
    return {**line, "verdict": verdict, "reading": reading}


def _timed(conclusion: Conclusion, timing: StepTiming | None, problem: str) -> dict:
    """A seconds line from its paired benchmark, stated as a ratio: side a's seconds per epoch over
    side b's with its 95% interval, and decided on it (a paired t on the log ratios of the repeats;
    equivalent within the margin's ratio); the difference in seconds is shown beside it. Undecided,
    saying why, without a usable one."""
    n = timing.repeats if timing else 0
    base = {"reported": reported_margin(conclusion), "devices": timing.device if timing else "", "n_a": n, "n_b": n}
    if timing is None:
        line = _difference(conclusion, [], [], kind="paired", collapsed=(0, 0), look=None)
        return {**base, **line, "verdict": "undecided", "reading": problem}
    a, b = list(timing.seconds_a), list(timing.seconds_b)
    line = _difference(conclusion, a, b, kind="paired", collapsed=(0, 0), look=look_at(n))
    line.pop("p_sequential", None), line.pop("p_sequential_tost", None)  # one benchmark, not looks
    if n < MIN_SEEDS:
        line.update(verdict="undecided", reading=f"{n} of {MIN_SEEDS} repeats")
    ratio, low, high = st.ratio_interval(a, b, CONFIDENCE)
    line.update(ratio=ratio, ratio_low=low, ratio_high=high)
    if n >= MIN_SEEDS:  # decided on the ratio: a busy machine scales both sides' times, it does not shift them
        logs = np.log(np.divide(a, b))
        bound = math.log1p(conclusion.margin) if conclusion.relative else math.log1p(conclusion.margin / np.mean(b))
        test = st.t_test(float(np.mean(logs)), float(np.std(logs, ddof=1)) / math.sqrt(n), n - 1, bound)
        line.update(p_value=test["p_value"], p_tost=test["p_tost"])
        line["verdict"] = decide(test["p_value"], float(np.mean(logs)), test["p_tost"])
        line["reading"] = ""
    how = (
        f"side a takes {ratio:.2f}x [{low:.2f}, {high:.2f}] side b's time: paired benchmark on {timing.device}, "
        f"{timing.measured_at[:10]}, {n} alternating repeats of {timing.steps[0]} and {timing.steps[1]} training steps"
    )
    return {**base, **line, "reading": _join(how, line["reading"].replace("seeds", "repeats"))}


def reported_margin(conclusion: Conclusion) -> float | None:
    """The report's margin on the scale of ``difference`` (a one-sided quantity: over its threshold)."""
    if conclusion.reported is None or conclusion.b is not None or conclusion.kind == "collapse":
        return conclusion.reported
    return conclusion.sign * (conclusion.reported - conclusion.threshold)


def _known(values: Iterable[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _mean_std(values: list[float] | None) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


# ---------------------------------------------------------------------------- the runs behind it
def evidence(
    profile: str, store: RunStore, conclusions: Sequence[Conclusion] = CONCLUSIONS, reading: Reading | None = None
) -> pd.DataFrame:
    """The runs behind every ledger line, so a verdict can be checked seed by seed: one row per
    conclusion, side and run — its table row, seed, the epochs read (an epoch line reads side b at the
    shorter length of side a's runs), run id, device and numeric class, whether it collapsed, whether
    the line reads it at its look, and the value each metric reads (empty for a collapsed run left out
    of a difference; 1/0 for a collapse rate). A seconds line's rows are its benchmark's repeats
    (seed: the repeat; run id empty). ``reading``: the store as the ledger read it (:func:`read`)."""
    reading = reading or read(conclusions, profile, store)
    found = reading.found
    rows = []
    for conclusion in conclusions:
        if conclusion.quantity == "seconds":
            rows += _timing_evidence(conclusion, profile, store, reading)
            continue
        values = {metric: run_values(conclusion, found, metric, profile, reading) for metric in METRICS}
        shorter = shorter_epochs(conclusion, profile, reading) if conclusion.kind == "epochs" else None
        both = conclusion.b is not None and conclusion.kind != "epochs"
        a_all, b_all = found.get(conclusion.a, []), found.get(conclusion.b, []) if conclusion.b else []
        look = look_at(min(len(a_all), len(b_all)) if both else len(a_all))
        for name, side in (("a", conclusion.a), ("b", conclusion.b)):
            if side is None:
                continue
            read_ids = {r.run_id for r in at_look(found.get(side if name == "a" or both else conclusion.a, []), look)}
            for i, (record, _) in enumerate(values["honest"][name]):
                rows.append(
                    {
                        "profile": profile,
                        "id": conclusion.id,
                        "side": name,
                        "table": side[0],
                        "row": side[1],
                        "seed": record.config.seed,
                        "epochs": shorter if name == "b" and shorter else record.config.epochs,
                        "run_id": record.run_id,
                        "device": record.metrics.get("device", "?"),
                        "numeric_class": class_label(record.metrics, record.config.to_dict()),
                        "collapsed": collapsed(record),
                        "read": look is None or record.run_id in read_ids,
                        **{metric: values[metric][name][i][1] for metric in METRICS},
                    }
                )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


EVIDENCE_COLUMNS = ["profile", "id", "side", "table", "row", "seed", "epochs", "run_id", "device", "numeric_class"]
EVIDENCE_COLUMNS += ["collapsed", "read"]
EVIDENCE_COLUMNS += METRICS


def _timing_evidence(conclusion: Conclusion, profile: str, store: RunStore, reading: Reading) -> list[dict]:
    timing, _ = timing_of(conclusion, profile, store, reading)
    if timing is None:
        return []
    rows = []
    for name, side, seconds in (("a", conclusion.a, timing.seconds_a), ("b", conclusion.b, timing.seconds_b)):
        for repeat, value in enumerate(seconds):
            rows.append(
                {"profile": profile, "id": conclusion.id, "side": name, "table": side[0], "row": side[1]}
                | {"seed": repeat, "epochs": None, "run_id": "", "device": timing.device, "numeric_class": ""}
                | {"collapsed": False, "read": True}
                | dict.fromkeys(METRICS, value)
            )
    return rows


# ---------------------------------------------------------------------------- what undecided lines need
def seeds_needed(conclusion: Conclusion, have: int = 0) -> int:
    """Runs per side at the line's next look: the first look past ``have`` runs (the fewest a collapse
    rate can decide with, :data:`MIN_COLLAPSE_SEEDS`, at least); ``have`` once past the last look."""
    fewest = MIN_COLLAPSE_SEEDS if conclusion.kind == "collapse" else MIN_SEEDS
    ahead = [look for look in LOOKS if look >= fewest and look > have]
    return ahead[0] if ahead else have


def trained_sides(conclusion: Conclusion) -> list[Side]:
    """The sides whose runs decide it (an epoch conclusion reads both lengths from side a's runs; a
    seconds line reads a benchmark, no runs)."""
    if conclusion.quantity == "seconds":
        return []
    return [conclusion.a] if conclusion.kind == "epochs" or conclusion.b is None else [conclusion.a, conclusion.b]


def _cost_note(
    conclusion: Conclusion, found: dict[Side, list[RunRecord]], costs: dict[Side, Cost], need: int | None = None
) -> str:
    need = need or seeds_needed(conclusion)
    parts = []
    for side in trained_sides(conclusion):
        more = need - len(found.get(side, []))
        if more <= 0:
            continue
        parts.append(f"{side[0]} {side[1]}: {more} more, {costs.get(side, UNKNOWN).text(more)}")
    return ("; needs " + "; ".join(parts)) if parts else ""


def about(tables: Sequence[str]) -> tuple[Conclusion, ...]:
    """The conclusions with a side in one of ``tables`` (what a table's notebook shows); ConfigError
    for no table or one the report does not have."""
    known = experiments.ALL_TABLES
    if strangers := sorted(set(tables) - set(known)):
        raise ConfigError(unknown("table(s)", strangers, known))
    if not tables:
        raise ConfigError(f"no table given; known: {', '.join(known)}")
    return tuple(c for c in CONCLUSIONS if any(s is not None and s[0] in tables for s in (c.a, c.b)))


def verdict_counts(table: pd.DataFrame, metric: str = PRIMARY, role: str | None = None) -> dict[str, int]:
    """How many lines got each verdict under ``metric`` (``role``: only the claim, sanity or extension
    lines)."""
    lines = table[table["metric"] == metric]
    if role is not None:
        lines = lines[lines["role"] == role]
    counts = lines["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}
