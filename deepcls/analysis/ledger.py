"""Which of the report's conclusions hold: every conclusion as data, answered from the store.

A conclusion compares two sides (rows of the report's tables) or measures one quantity. Each
side is the runs of a row over every stored seed. For each conclusion the ledger gives, under
the report's metric and the honest one, n per side, mean ± std per side, the difference with
its 95% interval (scipy.stats: Welch's t for two rows; paired t for two lengths of one run;
one-sample t for a quantity against a threshold; exact binomial for a collapse rate) and a
verdict:

- ``holds`` / ``reversed``: the interval excludes 0 (or the threshold) on the claimed / other side;
- ``no detectable difference``: it does not;
- ``undecided``: fewer than :data:`MIN_SEEDS` runs on a side (:data:`MIN_COLLAPSE_SEEDS` for a
  collapse rate) — it says how many more and what they cost;
- ``not comparable``: a side collapsed to chance in some seeds — the rate is given and the
  runs that trained are compared; or, for seconds, the sides were timed on different devices or
  thread counts, or without a machine probe on what were likely different machines.

Epoch conclusions never compare a maximum over a prefix with the longer run that contains it:
both lengths are read from the longer run's own trajectory (the first k epochs of a
constant-lr run *are* the k-epoch run), at the final epoch of each length (honest) or the mean
of its last three epochs (in place of the report's highest-over-epochs).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from deepcls.analysis.costs import UNKNOWN, Cost, row_costs
from deepcls.analysis.measures import (
    QUANTITIES,
    collapsed,
    fastest_epoch,
    machine_scale,
    probed,
    run_probe,
    test_accuracy,
)
from deepcls.analysis.results import SEEDS_LOOKED_UP, records, results_table
from deepcls.paper import grids as experiments
from deepcls.paper.conclusions import CONCLUSIONS, Conclusion, Side
from deepcls.store.runs import RunRecord, RunStore, short_device

MIN_SEEDS = 3  # runs per side before a difference is decided
MIN_COLLAPSE_SEEDS = 5  # runs before a collapse rate is decided
LEDGER_SEEDS = SEEDS_LOOKED_UP
CONFIDENCE = 0.95
POWER = 0.8  # how often a margin of the report's size should show, for "seeds to show it"
MOST_SEEDS = 100  # beyond this many seeds per side the ledger says "over 100"
METRICS = ("report", "honest")
VERDICTS = ("holds", "reversed", "no detectable difference", "undecided", "not comparable")
DECIDED = VERDICTS[:3]  # the verdicts of a test with enough seeds


# ---------------------------------------------------------------------------- the ledger
def side_records(conclusions: Sequence[Conclusion], profile: str, store: RunStore) -> dict[Side, list[RunRecord]]:
    """Every side's stored runs (one per seed found in :data:`LEDGER_SEEDS`); for a seconds line also
    those of the longer rows of its sides' chains (:func:`longer_rows`)."""
    sides = {s for c in conclusions for s in (c.a, c.b) if s is not None}
    timed = [s for c in conclusions if c.quantity == "seconds" for s in (c.a, c.b) if s is not None]
    sides = sorted(sides | {longer for s in timed for longer in longer_rows(s, profile)})
    grid = experiments.grid(sorted({t for t, _ in sides}), profile, LEDGER_SEEDS)
    results = results_table(grid, store)
    return {s: records(results, *s, store) if s in set(zip(results["table"], results["row"])) else [] for s in sides}


@functools.cache
def longer_rows(side: Side, profile: str) -> tuple[Side, ...]:
    """The rows of ``side``'s table that train its config for more epochs, shortest first: one chain
    (deepcls.execution.runner). Epoch k of a run does not depend on its length, so their epochs time its work."""
    grid = experiments.grid(side[0], profile, (0,))
    lineage = {row: config.lineage for row, config in zip(grid["row"], grid["config"])}
    epochs = {row: config.epochs for row, config in zip(grid["row"], grid["config"])}
    chain = [row for row in lineage if lineage[row] == lineage[side[1]] and epochs[row] > epochs[side[1]]]
    return tuple((side[0], row) for row in sorted(chain, key=epochs.get))


def _timing_runs(side: Side, found: dict[Side, list[RunRecord]], profile: str) -> list[RunRecord]:
    """One run per seed whose epochs time ``side``'s config: its own, or where that one never timed its
    machine, the shortest run of its chain that did (its epochs are those of one config and seed)."""
    runs = {r.config.seed: r for r in found.get(side, [])}
    for longer in longer_rows(side, profile):
        for record in found.get(longer, []):
            held = runs.get(record.config.seed)
            if probed(record) and (held is None or not probed(held)):
                runs[record.config.seed] = record
    return [runs[seed] for seed in sorted(runs)]


def counted(conclusion: Conclusion, found: dict[Side, list[RunRecord]], profile: str) -> dict[Side, list[RunRecord]]:
    """The runs that count for ``conclusion``: all its sides' runs, except that a seconds line, once
    any of its runs timed its machine (deepcls.engine.probe), counts only such runs — a side's own, or a
    longer run of its chain (:func:`longer_rows`) where its own never timed its machine: the others'
    machines are unknown, and a difference between machines is no model's doing."""
    sides = [s for s in (conclusion.a, conclusion.b) if s is not None]
    if conclusion.quantity != "seconds":
        return found
    timed = {s: _timing_runs(s, found, profile) for s in sides}
    if not any(probed(r) for runs in timed.values() for r in runs):
        return found
    return {**found, **{s: [r for r in runs if probed(r)] for s, runs in timed.items()}}


def _left_out(conclusion: Conclusion, found: dict[Side, list[RunRecord]], kept: dict[Side, list[RunRecord]]) -> str:
    sides = [s for s in (conclusion.a, conclusion.b) if s is not None]
    seeds = {s: {r.config.seed for r in kept.get(s, [])} for s in sides}
    left = sum(r.config.seed not in seeds[s] for s in sides for r in found.get(s, []))
    return f"{left} run{'s' * (left != 1)} timed before the machine probe left out" if left else ""


def ledger(
    profile: str, store: RunStore, conclusions: Sequence[Conclusion] = CONCLUSIONS, on: str | None = None
) -> pd.DataFrame:
    """One line per conclusion and metric (``report``, ``honest``): n, mean ± std per side, the
    difference and its 95% interval, the verdict and whether the report's margin lies inside. An
    undecided line says what its missing seeds cost on device ``on`` (deepcls.engine.runtime.target_device)."""
    found = side_records(conclusions, profile, store)
    costs = row_costs(profile, store, LEDGER_SEEDS, on)
    lines = []
    for conclusion in conclusions:
        mine = counted(conclusion, found, profile)
        for metric in METRICS:
            line = answer(conclusion, mine, metric, profile)
            line["reading"] = "; ".join(filter(None, [line["reading"], _left_out(conclusion, found, mine)]))
            if line["verdict"] == "undecided":
                line["reading"] += _cost_note(conclusion, mine, costs)
            if line["verdict"] == "no detectable difference" and line.get("seeds_to_show") is not None:
                line["reading"] = "; ".join(filter(None, [line["reading"], _power_note(conclusion, mine, costs, line)]))
            if " | " in line["devices"]:  # float rounding differs: not one trajectory per setting
                mixed = "/".join(dict.fromkeys(short_device(d) for d in line["devices"].split(" | ")))
                line["reading"] = "; ".join(filter(None, [line["reading"], f"runs on mixed devices ({mixed})"]))
            lines.append(
                {
                    "id": conclusion.id,
                    "conclusion": conclusion.wording,
                    "metric": metric,
                    "measure": conclusion.measure,
                    "profile": profile,
                    **line,
                }
            )
    return _false_discoveries(pd.DataFrame(lines))


def _false_discoveries(table: pd.DataFrame) -> pd.DataFrame:
    """Benjamini-Hochberg over the lines each metric tested (decided, with a p-value): at 95% about one
    line in twenty would hold or reverse by chance alone, so a verdict the control does not keep says so."""
    table = table.assign(q_value=math.nan)
    if "p_value" not in table:
        return table
    for metric in METRICS:
        tested = table.index[(table["metric"] == metric) & table["verdict"].isin(DECIDED) & table["p_value"].notna()]
        if len(tested) < 2:
            continue
        table.loc[tested, "q_value"] = stats.false_discovery_control(table.loc[tested, "p_value"].to_numpy(float))
        for i in tested:
            if table.at[i, "verdict"] in ("holds", "reversed") and table.at[i, "q_value"] >= 1 - CONFIDENCE:
                note = (
                    f"not kept by the false-discovery control over the {len(tested)} tested lines "
                    f"(Benjamini-Hochberg q = {table.at[i, 'q_value']:.3f})"
                )
                table.at[i, "reading"] = "; ".join(filter(None, [table.at[i, "reading"], note]))
    return table


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
            "a": [(r, test_accuracy(r, metric, r.config.epochs)) for r in a_runs],
            "b": [(r, test_accuracy(r, metric, k)) for r in a_runs],
        }
    value = QUANTITIES[conclusion.quantity] if conclusion.kind == "quantity" else test_accuracy
    if conclusion.quantity == "seconds":
        scale = machine_scale([*a_runs, *b_runs])
        value = lambda record, metric: fastest_epoch(record, scale)  # noqa: E731

    def read(record: RunRecord) -> float | None:
        return None if collapsed(record) else value(record, metric)

    return {"a": [(r, read(r)) for r in a_runs], "b": [(r, read(r)) for r in b_runs]}


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
    if conclusion.kind == "epochs":
        a, b = [v for _, v in values["a"]], [v for _, v in values["b"]]
        return {**base, "n_b": len(b), **_difference(conclusion, a, b, paired=True, collapsed=(0, 0))}
    a = _known(v for _, v in values["a"] if v is not None)  # a run without a confusion matrix has no count
    b = _known(v for _, v in values["b"] if v is not None) if conclusion.b else None
    gone = tuple(sum(v is None for _, v in values[s]) for s in ("a", "b"))
    line = _difference(conclusion, a, b, paired=False, collapsed=gone)
    if conclusion.quantity == "seconds":
        line = _timed(line, devices, [*a_runs, *b_runs], {"side a": a, "side b": b or []})
    return {**base, **line}


def evidence(profile: str, store: RunStore, conclusions: Sequence[Conclusion] = CONCLUSIONS) -> pd.DataFrame:
    """The runs behind every ledger line, so a verdict can be checked seed by seed: one row per
    conclusion, side and run — its table row, seed, the epochs read (an epoch line reads side b at the
    shorter length of side a's runs), run id, device, its machine's probe seconds (deepcls.engine.probe; empty
    for a run trained before the probe), whether it collapsed, and the value each metric reads (empty
    for a collapsed run left out of a difference; 1/0 for a collapse rate)."""
    found = side_records(conclusions, profile, store)
    rows = []
    for conclusion in conclusions:
        mine = counted(conclusion, found, profile)
        values = {metric: run_values(conclusion, mine, metric, profile) for metric in METRICS}
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
                        "probe_s": run_probe(record),
                        "collapsed": collapsed(record),
                        **{metric: values[metric][name][i][1] for metric in METRICS},
                    }
                )
    columns = ["profile", "id", "side", "table", "row", "seed", "epochs", "run_id", "device", "probe_s", "collapsed"]
    columns += METRICS
    return pd.DataFrame(rows, columns=columns)


def _timed(line: dict, devices: list[str], runs: list[RunRecord], sides: dict[str, list[float]]) -> dict:
    """A seconds line compares one device and thread count on one machine's scale: runs that timed
    their machine are scaled by it (deepcls.engine.probe); runs that did not are read as measured."""
    if len(devices) > 1:
        return line | {"verdict": "not comparable", "reading": "sides timed on different devices or thread counts"}
    scale = machine_scale(runs)  # deepcls.analysis.ledger.counted: all runs timed their machine, or none did
    spread = _spread(sides)
    if scale is None and spread:  # seeds of one config spread over 2x: different machines, most likely
        unknown = f"timed on machines of unknown speed (no run carries a machine probe): fastest epochs {spread}"
        return line | {"verdict": "not comparable", "reading": unknown}
    scaled = f"on the scale of a machine whose probe takes {scale:.3f} s" if scale is not None else ""
    disturbed = f"fastest epochs {spread}: other load on the machine" if spread else ""
    return line | {"reading": "; ".join(filter(None, (line["reading"], scaled, disturbed)))}


def _spread(sides: dict[str, list[float]]) -> str:
    """The sides whose timings spread over 2x on one device, and how far: not the model. On one
    machine's scale that is other load on the machine; without a probe, as likely another machine."""
    return ", ".join(f"{name} {min(v):.0f}-{max(v):.0f} s" for name, v in sides.items() if v and max(v) > 2 * min(v))


def reported_margin(conclusion: Conclusion) -> float | None:
    """The report's margin on the scale of ``difference`` (a one-sided quantity: over its threshold)."""
    if conclusion.reported is None or conclusion.b is not None or conclusion.kind == "collapse":
        return conclusion.reported
    return conclusion.sign * (conclusion.reported - conclusion.threshold)


def _difference(
    conclusion: Conclusion, a: list[float], b: list[float] | None, *, paired: bool, collapsed: tuple[int, int]
) -> dict:
    """Means, stds, the a - b difference (one side: a's margin over the threshold) with its interval,
    and the verdict."""
    mean_a, std_a = _mean_std(a)
    mean_b, std_b = _mean_std(b) if b is not None else (None, None)
    line = {
        "mean_a": mean_a,
        "std_a": std_a,
        "mean_b": mean_b,
        "std_b": std_b,
        "difference": math.nan,
        "low": math.nan,
        "high": math.nan,
    }
    one_sided = b is None
    if one_sided and a:  # the margin over the threshold, positive in the claimed direction
        line["difference"] = conclusion.sign * (mean_a - conclusion.threshold)
    if one_sided and len(a) >= 2:
        test = stats.ttest_1samp(a, conclusion.threshold)
        ci = test.confidence_interval(CONFIDENCE)
        low, high = sorted(conclusion.sign * (x - conclusion.threshold) for x in (ci.low, ci.high))
        line.update(low=low, high=high, p_value=float(test.pvalue))
    elif not one_sided and len(a) >= 2 and len(b) >= 2:
        test = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=False)
        ci = test.confidence_interval(CONFIDENCE)
        line.update(difference=mean_a - mean_b, low=ci.low, high=ci.high, p_value=float(test.pvalue))
    elif not one_sided and a and b:
        line["difference"] = mean_a - mean_b
    n = min(len(a), len(b)) if not one_sided else len(a)
    claimed, against = line["low"] > 0, line["high"] < 0
    if any(collapsed):
        sides = [
            f"{name} collapsed in {k} of {k + len(v)}"
            for name, k, v in (("side a", collapsed[0], a), ("side b", collapsed[1], b or []))
            if k
        ]
        line.update(verdict="not comparable", reading="; ".join(sides) + "; compared: the runs that trained")
    elif n < MIN_SEEDS:
        line.update(verdict="undecided", reading=f"{n} of {MIN_SEEDS} seeds on the smaller side")
    elif claimed or against:
        line.update(verdict="holds" if claimed else "reversed", reading="")
    else:
        line.update(verdict="no detectable difference", reading="")
    reported = reported_margin(conclusion)
    if line["verdict"] == "no detectable difference" and reported:
        if one_sided or paired:
            spread, samples = float(np.std(np.subtract(a, b) if paired else a, ddof=1)), 1
        else:
            spread, samples = math.sqrt((std_a**2 + std_b**2) / 2), 2
        if spread > 0:
            line["seeds_to_show"] = seeds_to_show(reported, spread, samples) or math.inf
    line["report_inside"] = (
        bool(line["low"] <= reported <= line["high"]) if reported is not None and not math.isnan(line["low"]) else None
    )
    return line


def seeds_to_show(effect: float, spread: float, samples: int, power: float = POWER) -> int | None:
    """Seeds per side that show a true difference ``effect`` (its interval excludes 0) with
    probability ``power``, when runs spread by ``spread``: the power of the two-sided t-test at
    CONFIDENCE from the noncentral t distribution; ``samples`` is 2 for two sides (``spread`` their
    pooled std), 1 for a paired or one-sample test. None beyond MOST_SEEDS."""
    for n in range(2, MOST_SEEDS + 1):
        df = samples * (n - 1)
        shift = abs(effect) / spread * math.sqrt(n / samples)
        critical = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, df)
        if stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift) >= power:
            return n
    return None


def _collapse(conclusion: Conclusion, a_runs: list[RunRecord], b_runs: list[RunRecord]) -> dict:
    """Collapse rates with exact binomial intervals; with two sides, Fisher's exact test."""
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
    elif conclusion.b is None:  # "it fails": it collapses in at least some seeds
        verdict, note = ("holds", "") if k_a > 0 else ("reversed", "; never collapsed")
    else:
        significant = line.get("p_value", 1.0) < 1 - CONFIDENCE
        verdict = ("holds" if line["difference"] > 0 else "reversed") if significant else "no detectable difference"
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
    """The sides whose runs decide it (an epoch conclusion reads both lengths from side a's runs)."""
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


def _power_note(conclusion: Conclusion, found: dict[Side, list[RunRecord]], costs: dict[Side, Cost], line: dict) -> str:
    """What it would take to show the report's margin if it were true: a line with no detectable
    difference may lack seeds, or may speak against a margin that large."""
    need, have = line["seeds_to_show"], min(line["n_a"], line["n_b"] or line["n_a"])
    per = " per side" if conclusion.b is not None and conclusion.kind != "epochs" else ""
    to_show = f"to show the report's {line['reported']:+.2f} {POWER:.0%} of the time"
    if math.isinf(need):
        return f"{to_show} takes over {MOST_SEEDS} seeds{per}"
    if need <= have:
        return f"{to_show} takes {need} seeds{per}: a margin that large would likely have shown"
    return f"{to_show} takes {need} seeds{per}" + _cost_note(conclusion, found, costs, need).replace("; needs", ":")


def about(tables: Sequence[str]) -> tuple[Conclusion, ...]:
    """The conclusions with a side in one of ``tables`` (what a table's notebook shows)."""
    return tuple(c for c in CONCLUSIONS if any(s is not None and s[0] in tables for s in (c.a, c.b)))


# ---------------------------------------------------------------------------- summaries
def verdict_counts(table: pd.DataFrame, metric: str = "honest") -> dict[str, int]:
    """How many conclusions got each verdict under ``metric``."""
    counts = table[table["metric"] == metric]["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


CSV_COLUMNS = [
    "profile", "id", "metric", "conclusion", "measure", "n_a", "mean_a", "std_a", "n_b", "mean_b", "std_b",
    "difference", "low", "high", "p_value", "q_value", "reported", "report_inside", "verdict", "seeds_to_show",
    "devices", "reading",
]  # fmt: skip


def to_csv(table: pd.DataFrame) -> str:
    """The ledger's numbers for other tools: one line per conclusion and metric, full precision
    (counts as integers; ``seeds_to_show`` is ``inf`` beyond MOST_SEEDS)."""
    frame = table.reindex(columns=CSV_COLUMNS)
    for column in ("n_a", "n_b", "seeds_to_show"):
        values = [v if v is None or not math.isfinite(v) else int(v) for v in frame[column]]
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame.to_csv(index=False)


def summary(table: pd.DataFrame) -> str:
    """One sentence: how many conclusions hold, reverse, show no detectable difference... on the final
    epoch and on the report's metric."""
    parts = []
    for metric, name in (("honest", "on the final epoch"), ("report", "on the report's highest-over-epochs")):
        counts = verdict_counts(table, metric)
        lines = table[table["metric"] == metric]
        shown = lines["verdict"].isin(("holds", "reversed"))
        q_values = lines["q_value"] if "q_value" in lines else pd.Series(math.nan, index=lines.index)
        doubtful = int((shown & (q_values >= 1 - CONFIDENCE)).sum())
        items = [f"{n} {v}" for v, n in counts.items() if n]
        if doubtful:  # said after the holds and reversals it is about
            last, both = sum(1 for v in ("holds", "reversed") if counts[v]) - 1, counts["holds"] + counts["reversed"]
            items[last] += f" ({doubtful} of these {both} not kept by the false-discovery control)"
        parts.append(f"{name}: " + ", ".join(items))
    n = table["id"].nunique()
    return (
        f"{n} conclusion{'s' if n != 1 else ''}, 95% intervals over seeds (at least {MIN_SEEDS} per side to decide; "
        f"{MIN_COLLAPSE_SEEDS} for a collapse rate) — " + "; ".join(parts) + "."
    )
