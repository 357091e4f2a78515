"""Reading results: the report's claims checked, per-row differences, collapse to one class.

Everything here takes a results table (deepcls.analysis.results.results_table) and, for per-run details,
the RunStore it came from; nothing here trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from deepcls.analysis.measures import CHANCE_CEILING, collapsed
from deepcls.analysis.results import first_record, records
from deepcls.config import REDUCED
from deepcls.data import DATASETS, get_spec
from deepcls.models import build_for_dataset, build_model, input_padding, model_info, model_summary
from deepcls.paper.grids import SE_BIRD_AS_AIRPLANE
from deepcls.store.runs import RunRecord, RunStore

AGREEMENT_POINTS = 0.5
"""|Δ test| (percentage points) counted as agreement with the report — a judgement call for
single runs: on MNIST, changing only the thread count moved a 20-epoch best by 0.13."""


def differences(results: pd.DataFrame, within: float = AGREEMENT_POINTS) -> pd.DataFrame:
    """Per run row with a reported test accuracy: Δ test, Δ train and what the pair suggests.

    The reading is a rule of thumb, not a proof. Both train accuracies are the highest over
    epochs on augmented batches, so a row where ours is lower on train *and* test points at the
    model or the optimisation (e.g. an unstated width), not at test-set luck; lower test at
    equal or higher train points at generalisation or single-run noise. Reduced profiles
    (smoke/quick) differ by design.
    """
    run = results[results["reported_test"].notna() & results["test_mean"].notna()]
    lines = []
    for _, line in run.iterrows():
        d_test = line["test_mean"] - line["reported_test"]
        d_train = line["train_mean"] - line["reported_train"]
        lines.append(
            {
                "table": line["table"],
                "row": line["row"],
                "setting": line["setting"],
                "Δ test": round(d_test, 2),
                "Δ train": round(d_train, 2),
                "seeds": line["seeds_done"],
                "reading": _reading(line, d_test, d_train, within),
                "profile": line["profile"],
            }
        )
    return pd.DataFrame(lines, columns=["table", "row", "setting", "Δ test", "Δ train", "seeds", "reading", "profile"])


def _reading(line: pd.Series, d_test: float, d_train: float, within: float) -> str:
    """At most 50 characters (pandas' default column width in the notebooks)."""
    if line["profile"] in REDUCED:
        return f"not comparable: reduced {line['profile']} budget"
    if abs(d_test) <= within:
        return f"agrees (within {within:g} points)"
    reported_chance, ours_chance = line["reported_test"] <= CHANCE_CEILING, line["test_mean"] <= CHANCE_CEILING
    if reported_chance != ours_chance:
        return (
            "report's run at chance (one class), ours trained"
            if reported_chance
            else "ours at chance (one class), report's trained"
        )
    direction = "lower" if d_test < 0 else "higher"
    if np.isnan(d_train):
        return f"tests {direction}; no reported train acc to compare"
    if (d_train < 0) == (d_test < 0):
        return f"{direction} train too: model/optimisation differs"
    return f"tests {direction}, train not: generalisation/noise"


def vflip_reading(results: pd.DataFrame, within: float = AGREEMENT_POINTS) -> pd.DataFrame:
    """The vflip probe (table ``resnet_vflip``) against the report's Adam flip+rotation row.

    Ours trains well above that row's reported 81.19 at the same test accuracy. If one of
    Table 1 row 1's two "horizontal flip"s was a vertical flip, adding it should bring our
    train accuracy down to the report's without moving test accuracy further away than the
    baseline's. The verdict (on the probe's line) says whether it does.
    """
    lines = results[results["table"] == "resnet_vflip"].set_index("row")
    reported_train, reported_test = lines.loc[0, "reported_train"], lines.loc[0, "reported_test"]
    out = []
    for row, name in ((0, "flip + rotation (Table 2 row 3)"), (1, "flip + vertical flip + rotation")):
        line = lines.loc[row]
        out.append(
            {
                "augmentation": name,
                "train": round(line["train_mean"], 2),
                "test": round(line["test_mean"], 2),
                "Δ train vs report": round(line["train_mean"] - reported_train, 2),
                "Δ test vs report": round(line["test_mean"] - reported_test, 2),
                "seeds": line["seeds_done"],
                "reading": "",
                "profile": line["profile"],
            }
        )
    base, probe = out
    if any(np.isnan(x) for x in (base["train"], probe["train"])):
        probe["reading"] = "pending"
    elif probe["profile"] in REDUCED:
        probe["reading"] = f"not comparable: reduced {probe['profile']} budget"
    elif abs(probe["Δ train vs report"]) >= abs(base["Δ train vs report"]):
        probe["reading"] = "not closer on train: reading doesn't explain it"
    elif abs(probe["Δ test vs report"]) <= max(abs(base["Δ test vs report"]), within):
        probe["reading"] = "closer on train, test as close: consistent"
    else:
        probe["reading"] = "closer on train but test drops: not supported"
    return pd.DataFrame(out)


NOISE_ROW = ("resnet_cifar10", 3)
"""The row trained with several seeds to measure one setting's spread (notebook 01, RESULTS.md)."""
NOISE_SEEDS = (0, 1, 2)


def seed_noise(results: pd.DataFrame) -> pd.DataFrame:
    """How far runs that differ only in their seed land apart, per line of a multi-seed table.

    With σ the std over seeds of the highest test accuracy, the difference of two single runs has
    std √2·σ: under 2√2·σ (the noise band) two one-run rows, the report's or ours, are not told
    apart. The report's number is within noise of our mean over k seeds within 2σ·√(1 + 1/k).
    """
    out = []
    for _, line in results.iterrows():
        k, expected = int(line["seeds_done"]), max(int(line["seeds_asked"]), int(line["seeds_done"]))
        sigma = line["test_std"] if k >= 2 else np.nan
        band = 2 * np.sqrt(2) * sigma
        if k < 2:
            reading = f"pending: {k} of {expected} seeds run, 2 needed"
        elif line["profile"] in REDUCED:
            reading = f"reduced {line['profile']} budget: not the paper's noise"
        else:
            gap = abs(line["reported_test"] - line["test_mean"])
            where = "within" if gap <= 2 * sigma * np.sqrt(1 + 1 / k) else "outside"
            reading = (
                f"one-run differences under {band:.2f} points are seed noise; "
                f"the report's {line['reported_test']:.2f} is {where} noise of our mean"
            )
        out.append(
            {
                "table": line["table"],
                "row": line["row"],
                "seeds": f"{k} of {expected}",
                "test mean": round(line["test_mean"], 2),
                "test std": round(sigma, 2),
                "final-epoch mean": round(line["final_test_mean"], 2),
                "noise band": round(band, 2),
                "reported test": line["reported_test"],
                "reading": reading,
                "profile": line["profile"],
            }
        )
    return pd.DataFrame(out)


def best_line(results: pd.DataFrame) -> pd.Series:
    """The line with the highest reproduced test accuracy (the first line if none ran yet)."""
    scores = results["test_mean"]
    return results.loc[scores.idxmax()] if scores.notna().any() else results.iloc[0]


def best_record(results: pd.DataFrame, store: RunStore) -> tuple[RunRecord | None, str]:
    """The first seed's run of the best line (:func:`best_line`) and that line's setting."""
    line = best_line(results)
    return first_record(results, line["table"], line["row"], store), line["setting"]


def confusions(record: RunRecord | None, true: str, predicted: str) -> int | None:
    """How often the run's final model predicted ``predicted`` for images of class ``true``."""
    if record is None or record.confusion is None:
        return None
    names = DATASETS[record.config.dataset].classes
    return int(record.confusion[names.index(true), names.index(predicted)])


def bird_as_airplane(without: RunRecord | None, with_se: RunRecord | None) -> pd.DataFrame:
    """The report's SE claim in its own numbers: test birds called airplanes, without and with SE."""
    return pd.DataFrame(
        {
            "bird → airplane": ["without SE", "with SE"],
            "reported": [SE_BIRD_AS_AIRPLANE["without_se"], SE_BIRD_AS_AIRPLANE["with_se"]],
            "reproduced": [confusions(without, "bird", "airplane"), confusions(with_se, "bird", "airplane")],
            "test images": [
                int(r.confusion.sum()) if r and r.confusion is not None else None for r in (without, with_se)
            ],
        }
    )


def model_sizes(model: str, widths: Sequence[str], input_shape: tuple[int, ...] = (3, 32, 32)) -> pd.DataFrame:
    """Parameters and multiply-accumulates of one model at several widths (the report's VGG widths)."""
    sizes = {w: model_summary(build_model(model, width=w), input_shape) for w in widths}
    return pd.DataFrame(
        {
            "model": model,
            "width": list(sizes),
            "parameters (M)": [round(s["params"] / 1e6, 1) for s in sizes.values()],
            "multiply-accumulates (M)": [round(s["macs"] / 1e6) for s in sizes.values()],
        }
    )


def collapse_check(results: pd.DataFrame, table: str, rows: Sequence[int], store: RunStore) -> pd.DataFrame:
    """Per row: reproduced test accuracy and whether each seed's final model collapsed."""
    lines = []
    for row in rows:
        line = results[(results["table"] == table) & (results["row"] == row)].iloc[0]
        runs = records(results, table, row, store)
        lines.append(
            {
                "row": row,
                "setting": line["setting"],
                "reported test": line["reported_test"],
                "reproduced test": line["test_mean"],
                "collapsed to one class": ", ".join("yes" if collapsed(r) else "no" for r in runs) or "pending",
            }
        )
    return pd.DataFrame(lines)


def input_signal_at_init(
    dataset: str,
    models: Sequence[str],
    inits: Sequence[str] = ("default", "xavier", "he"),
    *,
    images: int = 64,
    seed: int = 0,
    **options,
) -> pd.DataFrame:
    """How much a freshly initialised model's output depends on its input, per model and init.

    The value is the std over ``images`` unit-variance noise images (the scale of normalised
    data) of each logit, averaged over classes. Near zero, every image gets the same output
    and the early layers get almost no gradient: the start from which deep plain networks can
    stay at chance (``options`` go to build_model, e.g. ``width="reduced"``). It runs in float64:
    in float32 the smallest values (1e-9 after VGG-19's default init) differ in their leading digit
    between CPUs, and a committed report must read the same whatever machine rendered it.
    """
    spec = get_spec(dataset)
    generator = torch.Generator().manual_seed(seed)
    spread = {}
    for model in models:
        side = input_padding(model, spec) or spec.image_shape[0]
        x = torch.randn(images, spec.channels, side, side, generator=generator)
        for init in inits:
            torch.manual_seed(seed)
            net = build_for_dataset(model, dataset, init=init, **options).eval().double()
            with torch.no_grad():
                spread[(model, init)] = float(f"{net(x.double()).std(0).mean().item():.4g}")
    frame = pd.Series(spread).unstack()
    return frame.loc[list(models), list(inits)].rename_axis(index="model", columns="init")


# ---------------------------------------------------------------- sentences
AGREEMENT_LISTED = 5  # rows named beyond the threshold, largest |Δ| first


def _compared(results: pd.DataFrame) -> pd.DataFrame:
    """Run rows with a reported test accuracy; a run that several tables repeat against the same
    reported number (the report's baseline row) counts once, under its first row."""
    run = results[(results["status"] != "pending") & results["delta_test"].notna()]
    return run.drop_duplicates(subset=["run_ids", "delta_test"]) if "run_ids" in run else run


def agreement(results: pd.DataFrame, within: float = AGREEMENT_POINTS) -> str:
    """One sentence on how the distinct run rows compare with the report's test accuracies."""
    run = _compared(results)
    if run.empty:
        return "No row with a reported test accuracy has been run yet."
    delta = run["delta_test"]
    close = int((delta.abs() <= within).sum())
    sentence = (
        f"{close} of {len(run)} distinct runs with a reported test accuracy are within {within:g} points "
        f"of it (median Δ {delta.median():+.2f})"
    )
    far = run[delta.abs() > within].sort_values("delta_test", key=abs, ascending=False)
    if far.empty:
        return sentence + "."
    named = far.head(AGREEMENT_LISTED)
    listed = ", ".join(f"{t} {r} ({d:+.2f})" for t, r, d in zip(named["table"], named["row"], named["delta_test"]))
    more = f" and {len(far) - len(named)} more" if len(far) > len(named) else ""
    return f"{sentence}; further: {listed}{more}."


def beats(results: pd.DataFrame) -> str:
    """One sentence for an improved recipe: how many reported rows its runs beat, on the highest
    and on the honest final-epoch test accuracy. The recipe replaces the settings rows vary
    (optimizer, lr, batch size, augmentation), so one run can stand for several rows."""
    run = _compared(results)
    if run.empty:
        return "No row with a reported test accuracy has been run yet."
    final = int((run["final_test_mean"] > run["reported_test"]).sum())
    return (
        f"{int((run['delta_test'] > 0).sum())} of {len(run)} reported rows beaten on test accuracy "
        f"(median Δ {run['delta_test'].median():+.2f}), {final} on the final epoch alone, by "
        f"{run['run_ids'].nunique()} distinct run(s): the recipe replaces the optimizer, lr, batch size and "
        f"augmentation, so rows that vary only those share a run."
    )


def noise(results: pd.DataFrame) -> str:
    """One sentence on seed noise: the std of test accuracy pooled over the ResNet CIFAR-10 rows with
    several complete seeds (each config once; both metrics), and the band 2√2·sd under which two
    one-run results are not told apart; "" while no such row has 2 seeds."""
    lines = results[
        (results["dataset"] == "cifar10")
        & (results["model"].map(lambda m: model_info(m).family) == "resnet")
        & (results["seeds_done"] >= 2)
    ].drop_duplicates("run_ids")
    if lines.empty:
        return ""
    df = int((lines["seeds_done"] - 1).sum())
    sd = {
        column: math.sqrt(float(((lines["seeds_done"] - 1) * lines[column] ** 2).sum()) / df)
        for column in ("test_std", "final_test_std")
    }
    rows = f"{len(lines)} ResNet CIFAR-10 row{'s' * (len(lines) != 1)}"
    return (
        f"Seed noise, pooled over {rows} with several seeds ({df} df): sd {sd['test_std']:.2f} on the "
        f"highest test accuracy and {sd['final_test_std']:.2f} on the final epoch, so one-run differences "
        f"under {2 * math.sqrt(2) * sd['test_std']:.2f} and {2 * math.sqrt(2) * sd['final_test_std']:.2f} "
        "points are seed noise."
    )
