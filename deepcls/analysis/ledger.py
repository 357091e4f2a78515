"""Which of the report's conclusions hold: every conclusion as data, answered from the store.

A conclusion compares two sides (rows of the report's tables) or measures one quantity. Each
side is the complete runs of a row over every stored seed (failed runs are never read; diverged
ones are counted and named). For each conclusion the ledger gives, under the report's metric and
the honest one, n per side, mean ± std per side, the difference with its 95% interval (scipy.stats:
Welch's t for two rows; paired t for two lengths of one run; one-sample t for a quantity against a
threshold; Clopper-Pearson for a collapse rate, Fisher's exact test for two), its 90% interval and
the two one-sided tests (TOST) against the line's equivalence margin, and a verdict:

- ``holds`` / ``reversed``: the 95% interval excludes 0 on the claimed / other side (a difference
  that also lies inside the margin is real but negligible, and the line says so);
- ``equivalent``: the 90% interval lies inside ±margin (TOST at 5% a side);
- ``inconclusive``: neither; the line says how many seeds per side would decide it either way;
- ``undecided``: fewer than :data:`MIN_SEEDS` runs on a side (:data:`MIN_COLLAPSE_SEEDS` for a
  collapse rate) — it says how many more and what they cost;
- ``not comparable``: a side collapsed to chance in some seeds — the rate is given and the
  runs that trained are compared.

A seconds-per-epoch line is not read from runs at all: wall times of runs trained at different
times measure the machines as much as the models. It reads the paired benchmark of both sides'
training steps stored beside the runs (deepcls.store.timings, measured by ``deepcls ledger
--time``): a paired t interval over its repeats, its n the repeats.

Multiple-testing control runs over the report's claims only (:func:`_false_discoveries`); a
two-row line whose verdict changes with the pooled spread of its family of rows is fragile
(:func:`pooled_spreads`).

Epoch conclusions never compare a maximum over a prefix with the longer run that contains it:
both lengths are read from the longer run's own trajectory, at the final epoch of each length
(honest) or the mean of its last three epochs (in place of the report's highest-over-epochs).
Within one numeric class (deepcls.numeric) the first k epochs of a constant-lr run are bit for bit
the k-epoch run of its config and seed (tested in test_train.py), so the pair is one run read at
two lengths; a k-epoch run stored from another class is another sample and is not read here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from deepcls.analysis.costs import UNKNOWN, Cost, row_costs
from deepcls.analysis.measures import QUANTITIES, collapsed, test_accuracy
from deepcls.analysis.results import SEEDS_LOOKED_UP, records, results_table
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.numeric import class_label, short_device
from deepcls.paper import grids as experiments
from deepcls.paper.conclusions import CONCLUSIONS, Conclusion, Side
from deepcls.store.runs import RunRecord, RunStore
from deepcls.store.timings import StepTiming, load_timing

MIN_SEEDS = 3  # runs per side before a difference is decided
MIN_COLLAPSE_SEEDS = 5  # runs before a collapse rate is decided
FAILS_RATE = 0.5  # "it fails": it collapses in most seeds (Clopper-Pearson interval above this)
LEDGER_SEEDS = SEEDS_LOOKED_UP
CONFIDENCE = 0.95
MOST_SEEDS = 100  # beyond this many seeds per side the ledger says "over 100"
METRICS = ("report", "honest")
EQUIVALENCE = 0.90  # TOST at 5% a side: the 90% interval inside +-margin
VERDICTS = ("holds", "reversed", "equivalent", "inconclusive", "undecided", "not comparable")
DECIDED = VERDICTS[:4]  # the verdicts of a test with enough seeds


# ---------------------------------------------------------------------------- the ledger
def side_records(
    conclusions: Sequence[Conclusion], profile: str, store: RunStore, read: tuple | None = None
) -> dict[Side, list[RunRecord]]:
    """Every side's complete stored runs (one per seed found in :data:`LEDGER_SEEDS`; failed and
    diverged runs are never seeds). ``read``: :func:`_side_results`, where the caller has it already."""
    results, sides = read or _side_results(conclusions, profile, store)
    return {s: records(results, *s, store) if s in set(zip(results["table"], results["row"])) else [] for s in sides}


def diverged_runs(
    conclusions: Sequence[Conclusion], profile: str, store: RunStore, read: tuple | None = None
) -> dict[Side, int]:
    """Every side's diverged runs: counted and shown, never read as accuracies."""
    results, sides = read or _side_results(conclusions, profile, store)
    counts = dict(zip(zip(results["table"], results["row"]), results["diverged"])) if len(results) else {}
    return {s: int(counts.get(s, 0)) for s in sides}


def _side_results(conclusions: Sequence[Conclusion], profile: str, store: RunStore) -> tuple[pd.DataFrame, list[Side]]:
    sides = sorted({s for c in conclusions for s in (c.a, c.b) if s is not None})
    grid = experiments.grid(sorted({t for t, _ in sides}), profile, LEDGER_SEEDS)
    return results_table(grid, store), sides


def side_config(side: Side, profile: str) -> RunConfig:
    """The config of ``side``'s row at ``profile`` (seed 0)."""
    return experiments.grid(side[0], profile, (0,), rows=[side[1]])["config"].iloc[0]


def timing_of(conclusion: Conclusion, profile: str, store: RunStore) -> tuple[StepTiming | None, str]:
    """A seconds line's stored paired benchmark, or None and why it is not read."""
    again = f"measure it: deepcls ledger --time --profile {profile} --conclusions {conclusion.id}"
    try:
        timing = load_timing(store, profile, conclusion.id)
    except StoreError as err:
        return None, f"{err}; {again}"
    if timing is None:
        return None, f"not measured; {again}"
    if not timing.matches(side_config(conclusion.a, profile), side_config(conclusion.b, profile)):
        return None, f"the stored timing measured other configs; {again}"
    return timing, ""


def ledger(
    profile: str, store: RunStore, conclusions: Sequence[Conclusion] = CONCLUSIONS, on: str | None = None
) -> pd.DataFrame:
    """One line per conclusion and metric (``report``, ``honest``): n, mean ± std per side, the
    difference and its 95% interval, the verdict and whether the report's margin lies inside. An
    undecided line says what its missing seeds cost on device ``on`` (deepcls.engine.runtime.target_device).

    Lines of :data:`CONCLUSIONS` are always answered within the whole ledger, so that a subset (one
    notebook's lines, ``--conclusions``) shows the adjusted p-values and pooled spreads of the full
    family, not of the subset."""
    asked = [c.id for c in conclusions]
    if set(asked) <= {c.id for c in CONCLUSIONS}:
        conclusions = CONCLUSIONS
    read = _side_results(conclusions, profile, store)  # one reading of the store for runs and counts
    found = side_records(conclusions, profile, store, read)
    diverged = diverged_runs(conclusions, profile, store, read)
    costs = row_costs(profile, store, LEDGER_SEEDS, on)
    pooled = pooled_spreads(found, profile)
    lines = []
    for conclusion in conclusions:
        timed = timing_of(conclusion, profile, store) if conclusion.quantity == "seconds" else None
        for metric in METRICS:
            line = answer(conclusion, found, metric, profile) if timed is None else _timed(conclusion, *timed)
            if line["verdict"] == "undecided" and timed is None:
                line["reading"] += _cost_note(conclusion, found, costs)
            if " | " in line["devices"]:  # float rounding differs: not one trajectory per setting
                mixed = "/".join(dict.fromkeys(short_device(d) for d in line["devices"].split(" | ")))
                line["reading"] = "; ".join(filter(None, [line["reading"], f"runs on mixed devices ({mixed})"]))
            if line.get("reading_way"):
                line["reading"] = "; ".join(filter(None, [line["reading"], line.pop("reading_way")]))
            line |= _fragility(line | {"metric": metric}, conclusion, found, pooled)
            line["diverged_a"] = diverged.get(conclusion.a, 0)
            line["diverged_b"] = diverged.get(conclusion.b, 0) if conclusion.b else None
            gone = [f"side {s} {k} diverged" for s, k in (("a", line["diverged_a"]), ("b", line["diverged_b"])) if k]
            if gone:
                line["reading"] = "; ".join(filter(None, [line["reading"], ", ".join(gone) + " (not read)"]))
            if line["fragile"]:
                note = f"fragile: {line['pooled_verdict']} with the pooled spread of its family of rows"
                line["reading"] = "; ".join(filter(None, [line["reading"], note]))
            lines.append(
                {
                    "id": conclusion.id,
                    "conclusion": conclusion.wording,
                    "metric": metric,
                    "measure": conclusion.measure,
                    "role": conclusion.role,
                    "profile": profile,
                    **line,
                }
            )
    table = _false_discoveries(pd.DataFrame(lines))
    table = table[table["id"].isin(asked)]
    order = {i: k for k, i in enumerate(asked)}
    return table.iloc[sorted(range(len(table)), key=lambda k: order[table["id"].iloc[k]])].reset_index(drop=True)


def _false_discoveries(table: pd.DataFrame) -> pd.DataFrame:
    """Multiple-testing control over the family of the report's claims, per metric: the tested claim
    lines' p-values adjusted by Benjamini-Yekutieli (``p_adjusted``; empty for sanity lines). BY is
    chosen over Benjamini-Hochberg because most lines share a baseline row, so their tests are
    dependent, and BY controls the false discovery rate under any dependence; it is chosen over Holm
    because the ledger asks which claims hold, a discovery question, not whether any one fails. A
    holds or reversed the control does not keep (adjusted p >= 0.05) says so."""
    table = table.assign(p_adjusted=math.nan)
    if "p_value" not in table:
        return table
    for metric in METRICS:
        tested = table.index[
            (table["metric"] == metric)
            & (table["role"] == "claim")
            & table["verdict"].isin(DECIDED)
            & table["p_value"].notna()
        ]
        if len(tested) < 2:
            table.loc[tested, "p_adjusted"] = table.loc[tested, "p_value"]
            continue
        adjusted = stats.false_discovery_control(table.loc[tested, "p_value"].to_numpy(float), method="by")
        table.loc[tested, "p_adjusted"] = adjusted
        for i in tested:
            if table.at[i, "verdict"] in ("holds", "reversed") and table.at[i, "p_adjusted"] >= 1 - CONFIDENCE:
                note = (
                    f"not kept by the multiple-testing control over the {len(tested)} tested claims "
                    f"(Benjamini-Yekutieli adjusted p = {table.at[i, 'p_adjusted']:.3f})"
                )
                table.at[i, "reading"] = "; ".join(filter(None, [table.at[i, "reading"], note]))
    return table


def pooled_spreads(found: dict[Side, list[RunRecord]], profile: str) -> dict[tuple[str, str, str], dict]:
    """Per family of rows (dataset, model family) and metric, the pooled std of test accuracy over
    every row with at least :data:`MIN_SEEDS` complete, non-collapsed runs (each config once), its
    degrees of freedom and Bartlett's test of equal variances across those rows (pooling is fair where
    it finds no evidence against them, p >= 0.05)."""
    groups: dict[tuple[str, str, str], dict[tuple[str, ...], list[float]]] = {}
    for runs in found.values():
        runs = [r for r in runs if not collapsed(r)]
        if len(runs) < MIN_SEEDS:
            continue
        key = tuple(sorted(r.run_id for r in runs))
        family = (runs[0].config.dataset, "vgg" if runs[0].config.model.startswith("vgg") else "resnet")
        for metric in METRICS:
            values = _known(_readable(test_accuracy, r, metric) for r in runs)
            if len(values) >= MIN_SEEDS:
                groups.setdefault((*family, metric), {})[key] = values
    out = {}
    for family, rows in groups.items():
        values = list(rows.values())
        df = sum(len(v) - 1 for v in values)
        sd = math.sqrt(sum((len(v) - 1) * float(np.var(v, ddof=1)) for v in values) / df)
        testable = len(values) >= 2 and all(np.var(v) > 0 for v in values)  # Bartlett needs spread in every row
        fair = stats.bartlett(*values).pvalue if testable else math.nan
        out[family] = {"sd": sd, "df": df, "rows": len(values), "bartlett_p": float(fair)}
    return out


def _fragility(line: dict, conclusion: Conclusion, found: dict[Side, list[RunRecord]], pooled: dict) -> dict:
    """Beside a two-row accuracy line's Welch interval, one from the pooled std of its family of rows;
    a verdict that differs between the two is ``fragile``."""
    out = {"pooled_low": math.nan, "pooled_high": math.nan, "pooled_verdict": None, "fragile": None}
    a_runs = found.get(conclusion.a, [])
    if conclusion.kind != "compare" or line["verdict"] not in DECIDED or not a_runs:
        return out
    family = pooled.get((a_runs[0].config.dataset, "vgg" if a_runs[0].config.model.startswith("vgg") else "resnet",
                         line["metric"]))  # fmt: skip
    if not family or family["rows"] < 2 or not family["bartlett_p"] >= 1 - CONFIDENCE:
        return out
    n_a, n_b, d = line["n_a"], line["n_b"], line["difference"]
    se = family["sd"] * math.sqrt(1 / n_a + 1 / n_b)
    half = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, family["df"]) * se
    half90 = stats.t.ppf(1 - (1 - EQUIVALENCE) / 2, family["df"]) * se
    margin = line["margin"]
    inside = -margin < d - half90 and d + half90 < margin
    verdict = "holds" if d - half > 0 else "reversed" if d + half < 0 else "equivalent" if inside else "inconclusive"
    return {
        "pooled_low": d - half,
        "pooled_high": d + half,
        "pooled_verdict": verdict,
        "fragile": verdict != line["verdict"],
    }


def run_values(
    conclusion: Conclusion, found: dict[Side, list[RunRecord]], metric: str, profile: str
) -> dict[str, list[tuple[RunRecord, float | None]]]:
    """Each side's runs (``a``, ``b``) with the value the line reads from them under ``metric``: None
    for a run that collapsed to chance (left out of a difference, counted in a rate), NaN where the run
    lacks it (no confusion matrix). An epoch line's side b is side a's runs read at b's length."""
    a_runs, b_runs = found.get(conclusion.a, []), found.get(conclusion.b, []) if conclusion.b else []
    if conclusion.kind == "collapse":
        return {"a": [(r, float(collapsed(r))) for r in a_runs], "b": [(r, float(collapsed(r))) for r in b_runs]}
    if conclusion.kind == "epochs":  # both lengths from the longer run's trajectory, paired by seed
        k = shorter_epochs(conclusion, profile)
        return {
            "a": [(r, _readable(test_accuracy, r, metric, r.config.epochs)) for r in a_runs],
            "b": [(r, _readable(test_accuracy, r, metric, k)) for r in a_runs],
        }
    value = QUANTITIES[conclusion.quantity] if conclusion.kind == "quantity" else test_accuracy

    def read(record: RunRecord) -> float | None:
        if collapsed(record):
            return None
        try:
            return float(value(record, metric))
        except (KeyError, IndexError, ValueError, TypeError):  # a history without what this line reads
            return math.nan

    return {"a": [(r, read(r)) for r in a_runs], "b": [(r, read(r)) for r in b_runs]}


def _the_reports_way(conclusion: Conclusion, runs: list[RunRecord], profile: str) -> dict:
    """An epoch line's check of the report's margin against ours measured as the report measured it:
    the highest test accuracy over each length, both read from each longer run's own trajectory (a
    difference of maxima over nested prefixes, never below 0). The line's own interval stays the
    honest one; only ``report_inside`` is read this way, and the note says so."""
    k = shorter_epochs(conclusion, profile)
    gains = _known(
        _readable(lambda r: r.history["test_acc"].max() - r.history["test_acc"].iloc[:k].max(), r) for r in runs
    )
    reported = reported_margin(conclusion)
    if reported is None or len(gains) < 2:
        return {}
    ci = stats.ttest_1samp(gains, 0.0).confidence_interval(CONFIDENCE)
    inside = bool(ci.low <= reported <= ci.high)
    where = "inside" if inside else "outside"
    way = f"[{ci.low:+.2f}, {ci.high:+.2f}]"
    note = f"the report's margin is {where} ours measured its way (highest of each length: {way})"
    return {"report_inside": inside, "report_way_low": ci.low, "report_way_high": ci.high, "reading_way": note}


def _readable(value, record: RunRecord, *args) -> float:
    """``value(record, *args)``, or NaN where the run's history lacks it (left out, and said)."""
    try:
        return float(value(record, *args))
    except (KeyError, IndexError, ValueError, TypeError):
        return math.nan


def shorter_epochs(conclusion: Conclusion, profile: str) -> int:
    """An epoch conclusion's shorter length: side b's epochs in the profile."""
    return experiments.grid(conclusion.b[0], profile, rows=[conclusion.b[1]])["config"].iloc[0].epochs


def answer(conclusion: Conclusion, found: dict[Side, list[RunRecord]], metric: str, profile: str) -> dict:
    """The numbers and the verdict of one conclusion under one metric, from the runs of its sides."""
    a_runs, b_runs = found.get(conclusion.a, []), found.get(conclusion.b, []) if conclusion.b else []
    read = a_runs if conclusion.kind == "epochs" else a_runs + b_runs  # an epoch line reads only side a's runs
    devices = sorted({r.metrics.get("device", "?") for r in read})
    base = {
        "reported": reported_margin(conclusion),
        "devices": " | ".join(devices),
        "n_a": len(a_runs),
        "n_b": len(b_runs) if conclusion.b else None,
    }
    if conclusion.kind == "collapse":
        return {**base, **_collapse(conclusion, a_runs, b_runs)}
    values = run_values(conclusion, found, metric, profile)
    unreadable = sum(v is not None and math.isnan(v) for s in ("a", "b") for _, v in values[s])
    left = f"{unreadable} run{'s' * (unreadable != 1)} left out: no value to read" if unreadable else ""
    if conclusion.kind == "epochs":
        pairs = [(x, y) for (_, x), (_, y) in zip(values["a"], values["b"]) if not (math.isnan(x) or math.isnan(y))]
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        line = _difference(conclusion, a, b, paired=True, collapsed=(0, 0))
        line["reading"] = "; ".join(filter(None, [line["reading"], left]))
        if metric == "report":
            line |= _the_reports_way(conclusion, a_runs, profile)
        return {**base, "n_a": len(a), "n_b": len(b), **line}
    a = _known(v for _, v in values["a"] if v is not None)  # a run without a confusion matrix has no count
    b = _known(v for _, v in values["b"] if v is not None) if conclusion.b else None
    gone = tuple(sum(v is None for _, v in values[s]) for s in ("a", "b"))
    line = _difference(conclusion, a, b, paired=False, collapsed=gone)
    line["reading"] = "; ".join(filter(None, [line["reading"], left]))
    return {**base, **line}


def evidence(profile: str, store: RunStore, conclusions: Sequence[Conclusion] = CONCLUSIONS) -> pd.DataFrame:
    """The runs behind every ledger line, so a verdict can be checked seed by seed: one row per
    conclusion, side and run — its table row, seed, the epochs read (an epoch line reads side b at the
    shorter length of side a's runs), run id, device and numeric class, whether it collapsed, and the value each metric
    reads (empty for a collapsed run left out of a difference; 1/0 for a collapse rate). A seconds
    line's rows are its benchmark's repeats (seed: the repeat; run id empty)."""
    found = side_records(conclusions, profile, store)
    rows = []
    for conclusion in conclusions:
        if conclusion.quantity == "seconds":
            rows += _timing_evidence(conclusion, profile, store)
            continue
        values = {metric: run_values(conclusion, found, metric, profile) for metric in METRICS}
        shorter = shorter_epochs(conclusion, profile) if conclusion.kind == "epochs" else None
        for name, side in (("a", conclusion.a), ("b", conclusion.b)):
            if side is None:
                continue
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
                        **{metric: values[metric][name][i][1] for metric in METRICS},
                    }
                )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


EVIDENCE_COLUMNS = ["profile", "id", "side", "table", "row", "seed", "epochs", "run_id", "device", "numeric_class"]
EVIDENCE_COLUMNS += ["collapsed"]
EVIDENCE_COLUMNS += METRICS


def _timing_evidence(conclusion: Conclusion, profile: str, store: RunStore) -> list[dict]:
    timing, _ = timing_of(conclusion, profile, store)
    if timing is None:
        return []
    rows = []
    for name, side, seconds in (("a", conclusion.a, timing.seconds_a), ("b", conclusion.b, timing.seconds_b)):
        for repeat, value in enumerate(seconds):
            rows.append(
                {"profile": profile, "id": conclusion.id, "side": name, "table": side[0], "row": side[1]}
                | {"seed": repeat, "epochs": None, "run_id": "", "device": timing.device, "numeric_class": ""}
                | {"collapsed": False}
                | dict.fromkeys(METRICS, value)
            )
    return rows


def _timed(conclusion: Conclusion, timing: StepTiming | None, problem: str) -> dict:
    """A seconds line from its paired benchmark: side a's seconds per epoch minus side b's, paired by
    repeat; undecided, saying why, without a usable one."""
    n = timing.repeats if timing else 0
    base = {"reported": reported_margin(conclusion), "devices": timing.device if timing else "", "n_a": n, "n_b": n}
    if timing is None:
        line = _difference(conclusion, [], [], paired=True, collapsed=(0, 0))
        return {**base, **line, "verdict": "undecided", "reading": problem}
    line = _difference(conclusion, list(timing.seconds_a), list(timing.seconds_b), paired=True, collapsed=(0, 0))
    if line["verdict"] == "undecided":
        line["reading"] = f"{n} of {MIN_SEEDS} repeats"
    how = (
        f"paired benchmark on {timing.device}, {timing.measured_at[:10]}: {n} alternating repeats of "
        f"{timing.steps[0]} and {timing.steps[1]} training steps; "
        f"side a takes {line['mean_a'] / line['mean_b']:.2f}x side b's time"
    )
    return {**base, **line, "reading": "; ".join(filter(None, [how, line["reading"].replace("seeds", "repeats")]))}


def reported_margin(conclusion: Conclusion) -> float | None:
    """The report's margin on the scale of ``difference`` (a one-sided quantity: over its threshold)."""
    if conclusion.reported is None or conclusion.b is not None or conclusion.kind == "collapse":
        return conclusion.reported
    return conclusion.sign * (conclusion.reported - conclusion.threshold)


def _tests(
    a: list[float], b: list[float] | None, *, paired: bool, threshold: float, margin: float
) -> tuple[object, float]:
    """The two-sided t-test of the line (Welch's for two sides, paired for one trajectory, one-sample
    against the threshold) and the TOST p-value against ``margin``: the larger p of the two one-sided
    tests (scipy's ``alternative``) that the difference lies above -margin and below +margin."""
    if b is None:
        low = stats.ttest_1samp(a, threshold - margin, alternative="greater")
        high = stats.ttest_1samp(a, threshold + margin, alternative="less")
        return stats.ttest_1samp(a, threshold), max(low.pvalue, high.pvalue)
    test = (
        (lambda x, y, **k: stats.ttest_rel(x, y, **k))
        if paired
        else (lambda x, y, **k: stats.ttest_ind(x, y, equal_var=False, **k))
    )
    low = test(np.add(a, margin), b, alternative="greater")
    high = test(np.subtract(a, margin), b, alternative="less")
    return test(a, b), max(low.pvalue, high.pvalue)


def decide(low: float, high: float, p_tost: float) -> str:
    """The verdict of a line with enough seeds, from its 95% interval and its TOST p-value. A
    difference that is significant *and* inside the margin keeps its holds/reversed (it is real)
    and the line says it is negligible."""
    if low > 0:
        return "holds"
    if high < 0:
        return "reversed"
    return "equivalent" if p_tost < 1 - CONFIDENCE else "inconclusive"


def _difference(
    conclusion: Conclusion, a: list[float], b: list[float] | None, *, paired: bool, collapsed: tuple[int, int]
) -> dict:
    """Means, stds, the a - b difference (one side: a's margin over the threshold) with its 95%
    interval, its 90% interval and TOST p-value against the equivalence margin, and the verdict."""
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
    }
    one_sided = b is None
    sign = conclusion.sign if one_sided else 1
    if one_sided and a:  # the margin over the threshold, positive in the claimed direction
        line["difference"] = sign * (mean_a - conclusion.threshold)
    elif not one_sided and a and b:
        line["difference"] = mean_a - mean_b
    if (len(a) >= 2 and one_sided) or (not one_sided and len(a) >= 2 and len(b) >= 2):
        test, p_tost = _tests(a, b, paired=paired, threshold=conclusion.threshold, margin=margin or 0.0)
        shift = conclusion.threshold if one_sided else 0.0
        for level, names in ((CONFIDENCE, ("low", "high")), (EQUIVALENCE, ("tost_low", "tost_high"))):
            ci = test.confidence_interval(level)
            line.update(zip(names, sorted(sign * (x - shift) for x in (ci.low, ci.high))))
        line.update(p_value=float(test.pvalue), p_tost=float(p_tost), df=float(test.df))
    n = min(len(a), len(b)) if not one_sided else len(a)
    if any(collapsed):
        sides = [
            f"{name} collapsed in {k} of {k + len(v)}"
            for name, k, v in (("side a", collapsed[0], a), ("side b", collapsed[1], b or []))
            if k
        ]
        line.update(verdict="not comparable", reading="; ".join(sides) + "; compared: the runs that trained")
    elif n < MIN_SEEDS:
        line.update(verdict="undecided", reading=f"{n} of {MIN_SEEDS} seeds on the smaller side")
    else:
        line.update(verdict=decide(line["low"], line["high"], line["p_tost"]), reading="")
        if line["verdict"] in ("holds", "reversed") and -margin < line["tost_low"] and line["tost_high"] < margin:
            line["reading"] = f"negligible: inside the ±{margin:.3g} equivalence margin"
        if line["verdict"] == "inconclusive":
            samples = 1 if one_sided or paired else 2
            spread = (
                float(np.std(np.subtract(a, b), ddof=1))
                if paired
                else (float(std_a) if one_sided else math.sqrt((std_a**2 + std_b**2) / 2))
            )
            line["reading"] = _decide_note(line["difference"], spread, margin, samples, samples * (n - 1), conclusion)
    reported = reported_margin(conclusion)
    line["report_inside"] = (
        bool(line["low"] <= reported <= line["high"]) if reported is not None and not math.isnan(line["low"]) else None
    )
    return line


def seeds_to_decide(difference: float, spread: float, margin: float, samples: int) -> int | None:
    """Seeds per side after which a line whose true difference and spread are the ones observed is
    decided, either way: its 95% interval excludes 0, or its 90% interval fits inside ±margin. The
    intervals' half-widths use the t quantile at Welch's degrees of freedom for equal sides
    (``samples`` x (n - 1); ``samples`` is 2 for two sides, 1 for a paired or one-sample line).
    None beyond MOST_SEEDS."""
    d = abs(difference)
    for n in range(2, MOST_SEEDS + 1):
        df, scale = samples * (n - 1), spread * math.sqrt(samples / n)
        shows = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, df) * scale < d
        fits = d + stats.t.ppf(1 - (1 - EQUIVALENCE) / 2, df) * scale < margin
        if shows or fits:
            return n
    return None


def _decide_note(difference: float, spread: float, margin: float, samples: int, df: int, conclusion: Conclusion) -> str:
    """How many seeds per side would decide an inconclusive line, as a range over the uncertainty of
    its observed spread (the spread's 95% interval from the chi-square distribution)."""
    if not spread > 0:
        return ""
    lo, hi = (spread * math.sqrt(df / stats.chi2.ppf(q, df)) for q in (1 - (1 - CONFIDENCE) / 2, (1 - CONFIDENCE) / 2))
    fewest, most = seeds_to_decide(difference, lo, margin, samples), seeds_to_decide(difference, hi, margin, samples)
    per = " per side" if samples == 2 else ""
    text = lambda n: str(n) if n is not None else f"over {MOST_SEEDS}"  # noqa: E731
    span = text(fewest) if fewest == most else f"{text(fewest)}-{text(most)}"
    return f"{span} seeds{per} would decide it at the observed difference (range: the spread's 95% interval)"


def _collapse(conclusion: Conclusion, a_runs: list[RunRecord], b_runs: list[RunRecord]) -> dict:
    """Collapse rates with their exact (Clopper-Pearson) 95% intervals; with two sides, Fisher's exact
    test of the two rates. A rate decides only where its interval does: 0 of 5 is [0, 0.52], which
    supports neither "it fails" nor "it never fails"."""
    k_a, n_a = sum(map(collapsed, a_runs)), len(a_runs)
    line = {
        "mean_a": k_a / n_a if n_a else math.nan,
        "std_a": None,
        "mean_b": None,
        "std_b": None,
        "difference": math.nan,
        "low": math.nan,
        "high": math.nan,
        "report_inside": None,
    }
    if n_a:
        ci = stats.binomtest(k_a, n_a).proportion_ci(CONFIDENCE, method="exact")
        line.update(difference=k_a / n_a, low=ci.low, high=ci.high)
    reading = f"collapsed in {k_a} of {n_a}"
    n = n_a
    if conclusion.b is not None:
        k_b, n_b = sum(map(collapsed, b_runs)), len(b_runs)
        line["mean_b"] = k_b / n_b if n_b else math.nan
        reading += f" vs {k_b} of {n_b}"
        n = min(n_a, n_b)
        if n_a and n_b:
            line["difference"] = k_a / n_a - k_b / n_b
            p = stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue
            line.update(low=math.nan, high=math.nan, p_value=p)
    if n < MIN_COLLAPSE_SEEDS:
        verdict, note = "undecided", f"; {n} of {MIN_COLLAPSE_SEEDS} seeds"
    elif conclusion.b is None:  # "it fails": it collapses in most seeds, by its exact interval
        above, below = line["low"] > FAILS_RATE, line["high"] < FAILS_RATE
        verdict = "holds" if above else "reversed" if below else "inconclusive"
        note = f" (exact 95% interval [{line['low']:.2f}, {line['high']:.2f}] against a rate of {FAILS_RATE:g})"
    else:
        significant = line.get("p_value", 1.0) < 1 - CONFIDENCE
        verdict = ("holds" if line["difference"] > 0 else "reversed") if significant else "inconclusive"
        note = f" (Fisher p = {line['p_value']:.3f})"
    return {**line, "verdict": verdict, "reading": reading + note}


def _known(values: Iterable[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _mean_std(values: list[float] | None) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


# ---------------------------------------------------------------------------- what undecided lines need
def seeds_needed(conclusion: Conclusion) -> int:
    """Runs per side before the conclusion is decided."""
    return MIN_COLLAPSE_SEEDS if conclusion.kind == "collapse" else MIN_SEEDS


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
    """The conclusions with a side in one of ``tables`` (what a table's notebook shows)."""
    return tuple(c for c in CONCLUSIONS if any(s is not None and s[0] in tables for s in (c.a, c.b)))


# ---------------------------------------------------------------------------- summaries
def verdict_counts(table: pd.DataFrame, metric: str = "honest") -> dict[str, int]:
    """How many conclusions got each verdict under ``metric``."""
    counts = table[table["metric"] == metric]["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


CSV_COLUMNS = [
    "profile", "id", "metric", "role", "conclusion", "measure", "n_a", "mean_a", "std_a", "n_b", "mean_b",
    "std_b", "difference", "low", "high", "tost_low", "tost_high", "margin", "p_value", "p_tost", "p_adjusted",
    "pooled_low", "pooled_high", "fragile", "reported", "report_inside", "verdict", "devices", "reading",
]  # fmt: skip


def to_csv(table: pd.DataFrame) -> str:
    """The ledger's numbers for other tools: one line per conclusion and metric, full precision
    (counts as integers; ``p_adjusted`` empty for sanity lines)."""
    frame = table.reindex(columns=CSV_COLUMNS)
    for column in ("n_a", "n_b"):
        values = [v if v is None or not math.isfinite(v) else int(v) for v in frame[column]]
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame.to_csv(index=False)


def summary(table: pd.DataFrame) -> str:
    """One sentence: how many conclusions get each verdict on the final epoch and on the report's
    metric, how many of the claims' holds and reversals the multiple-testing control does not keep,
    and how many verdicts are fragile."""
    parts = []
    for metric, name in (("honest", "on the final epoch"), ("report", "on the report's highest-over-epochs")):
        counts = verdict_counts(table, metric)
        lines = table[table["metric"] == metric]
        shown = lines["verdict"].isin(("holds", "reversed"))
        adjusted = lines["p_adjusted"] if "p_adjusted" in lines else pd.Series(math.nan, index=lines.index)
        doubtful = int((shown & (adjusted >= 1 - CONFIDENCE)).sum())
        fragile = int(lines["fragile"].fillna(False).astype(bool).sum()) if "fragile" in lines else 0
        items = [f"{n} {v}" for v, n in counts.items() if n]
        if doubtful:
            items.append(f"{doubtful} holds/reversed not kept by the multiple-testing control")
        if fragile:
            items.append(f"{fragile} fragile")
        parts.append(f"{name}: " + ", ".join(items))
    n = table["id"].nunique()
    claims = table.loc[table["role"] == "claim", "id"].nunique() if "role" in table else n
    return (
        f"{n} conclusions ({claims} claims of the report, {n - claims} sanity checks), 95% intervals over seeds "
        f"(at least {MIN_SEEDS} per side to decide; {MIN_COLLAPSE_SEEDS} for a collapse rate) — "
        + "; ".join(parts)
        + "."
    )
