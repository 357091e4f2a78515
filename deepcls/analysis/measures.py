"""What one stored run yields for a conclusion of the report: its test accuracy under either
metric, its train–test gap, its fluctuation, confusion counts, whether it collapsed to chance.
deepcls.analysis.ledger compares these over seeds (seconds per epoch come from a paired benchmark
instead, deepcls.store.timings)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from deepcls.analysis.statistics import pair_rank
from deepcls.data import DATASETS
from deepcls.store.runs import RunRecord

CHANCE_CEILING = 12.0
"""Test accuracy (%) at or below which a 10-class model is at chance: it predicts (nearly) one class."""


def _history(record: RunRecord, epochs: int | None) -> pd.DataFrame:
    return record.history if epochs is None else record.history.iloc[:epochs]


def test_accuracy(record: RunRecord, metric: str, epochs: int | None = None) -> float:
    """The report's metric: highest test accuracy over epochs (for an epoch conclusion, the mean of
    the last three epochs of the length); the honest one: the final epoch's."""
    history = _history(record, epochs)
    if metric == "honest":
        return float(history["test_acc"].iloc[-1])
    return float(history["test_acc"].iloc[-3:].mean() if epochs is not None else history["test_acc"].max())


def _gap(record: RunRecord, metric: str) -> float:
    h = record.history
    if metric == "honest":
        return float(h["train_acc"].iloc[-1] - h["test_acc"].iloc[-1])
    return float(h["train_acc"].max() - h["test_acc"].max())


def _swing(record: RunRecord) -> float:
    """Mean |change| of test accuracy between consecutive epochs of the second half of training
    (epochs 11-20 of 20), where the learning curve has flattened: over all epochs the rise of the
    curve alone, (last - first) / (epochs - 1), would count as fluctuation."""
    acc = record.history["test_acc"]
    half = len(acc) // 2
    return float(acc.iloc[max(half - 1, 0) :].diff().abs().iloc[1:].mean())


def _per_10k(record: RunRecord, true: str, predicted: str) -> float:
    names = DATASETS[record.config.dataset].classes
    confusion = record.confusion
    if confusion is None:
        return math.nan
    return float(confusion[names.index(true), names.index(predicted)] * 10_000 / confusion.sum())


def _other_classes(record: RunRecord) -> float:
    names = DATASETS[record.config.dataset].classes
    c = record.confusion
    if c is None:
        return math.nan
    keep = [i for i, n in enumerate(names) if n not in ("bird", "airplane")]
    return float(np.mean([100 * c[i, i] / c[i].sum() for i in keep]))


CONFUSED_PAIRS = ((2, 7), (3, 5))  # the report's digit pairs "prone to confusion"


def _pair_rank(record: RunRecord) -> float:
    """The worse rank (1: most confused) of 2<->7 and 3<->5 among the 45 digit pairs."""
    c = record.confusion
    if c is None:
        return math.nan
    ranks, _ = pair_rank(c, CONFUSED_PAIRS)
    return float(max(ranks))


QUANTITIES: dict[str, Callable[[RunRecord, str], float]] = {
    "gap": _gap,
    "swing": lambda r, m: _swing(r),
    "bird_airplane": lambda r, m: _per_10k(r, "bird", "airplane"),
    "other_classes": lambda r, m: _other_classes(r),
    "error": lambda r, m: 100 - test_accuracy(r, m),
    "pair_rank": lambda r, m: _pair_rank(r),
}


def collapsed(record: RunRecord) -> bool:
    """At chance at the end (final test accuracy at most :data:`CHANCE_CEILING`): the final model
    predicts (nearly) one class. The one collapse rule: tables, findings and the ledger all use it."""
    acc = pd.to_numeric(record.history.get("test_acc", pd.Series(dtype=float)), errors="coerce").dropna()
    return bool(len(acc)) and float(acc.iloc[-1]) <= CHANCE_CEILING
