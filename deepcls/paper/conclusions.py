"""The report's conclusions as data (``conclusions.csv``), when each was fixed (``registration.csv``),
and the training order that fills them first.

Each line carries an equivalence ``margin`` by one rule: the smallest difference that would matter
to a reader of the report, in the line's own unit, per dataset. Accuracy points (test accuracy,
train-test gaps, class accuracies, test error): 0.5 on CIFAR-10 and 0.1 on MNIST (50 and 10 test
images in 10,000: about a fortieth and a tenth of the reported error rates); confusion counts per
10,000 images: 50 (0.5 points); the epoch-to-epoch swing: 0.25 points (half its 0.5 threshold);
seconds: 5% of side b. Collapse rates and the rank of digit confusions have none: they are exact
tests. ``role`` says what the line is: ``claim`` (a conclusion the report draws; the multiple-testing
family), ``sanity`` (a check of the set-up that holds by construction, such as MNIST being easier
than CIFAR-10, augmented batches widening the train-test gap, or ResNet-34 taking longer per epoch)
or ``extension`` (a conclusion of the user's own, on rows they added: a multiple-testing family of
its own, never counted among the report's claims, so that adding one leaves the report's verdicts
as they are).

``registration.csv`` dates every margin and definition: one entry per change, with the commit that
made it and whether the line's data had been seen by then. Every entry so far was fixed after its
data were seen (the margins came after all 72 ``paper`` runs had finished), so every verdict is
post-hoc; only runs trained after a line's latest entry are confirmatory for it.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass
from importlib import resources

import pandas as pd

Side = tuple[str, int]  # (table, row)
ROLES = ("claim", "sanity", "extension")
CORRECTED_ROLES = ("claim", "extension")  # each a multiple-testing family of its own; sanity lines are in none
EXACT = ("pair_rank",)  # quantities decided by an exact test, without an equivalence margin


@dataclass(frozen=True)
class Conclusion:
    """One conclusion of the report, in a measurable form (a line of ``paper/conclusions.csv``).

    ``kind``: ``compare`` (side ``a`` beats ``b`` on test accuracy), ``epochs`` (the longer run
    ``a`` beats itself at ``b``'s length), ``quantity`` (``measure`` of ``a`` minus ``measure``
    of ``b``, or against ``threshold`` when ``b`` is None), ``collapse`` (``a`` collapses to
    chance in some seeds; with ``b``: more often than ``b``). ``reported`` is the report's own
    margin (or value) in the claimed direction, None where it gives no number.
    """

    id: str
    wording: str
    kind: str
    a: Side
    b: Side | None = None
    reported: float | None = None
    measure: str = "test accuracy (points)"
    quantity: str | None = None  # a key of QUANTITIES for kind "quantity"
    threshold: float = 0.0  # a one-sided quantity holds when its interval lies above this (below: sign -1)
    sign: int = 1
    source: str = ""
    margin: float | None = 0.5  # equivalence margin, in the line's unit (see the module docstring)
    relative: bool = False  # ``margin`` is a fraction of side b's mean (the seconds line)
    role: str = "claim"  # "claim" (the report's multiple-testing family), "sanity" or "extension" (a user's own)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"conclusion {self.id}: role {self.role!r} is not one of {', '.join(ROLES)}")
        if self.kind != "collapse" and self.quantity not in EXACT and not (self.margin is not None and self.margin > 0):
            raise ValueError(f"conclusion {self.id}: a comparison needs an equivalence margin > 0")
        if self.quantity == "seconds" and self.b is None:
            raise ValueError(f"conclusion {self.id}: seconds are timed against a second side")

    @property
    def sides(self) -> tuple[Side, ...]:
        """Its sides: ``a``, and ``b`` where it has one."""
        return (self.a,) if self.b is None else (self.a, self.b)


def _side(table: str, row: str) -> Side | None:
    return (table, int(row)) if table else None


def load_conclusions() -> tuple[Conclusion, ...]:
    """``deepcls/paper/conclusions.csv``: one line per conclusion of the report (the data of this module)."""
    with resources.files("deepcls.paper").joinpath("conclusions.csv").open() as f:
        return tuple(
            Conclusion(
                id=line["id"],
                wording=line["wording"],
                kind=line["kind"],
                a=_side(line["a_table"], line["a_row"]),
                b=_side(line["b_table"], line["b_row"]),
                reported=float(line["reported"]) if line["reported"] else None,
                measure=line["measure"],
                quantity=line["quantity"] or None,
                threshold=float(line["threshold"] or 0),
                sign=int(line["sign"] or 1),
                source=line["source"],
                margin=float(line["margin"].rstrip("%")) / (100 if line["margin"].endswith("%") else 1)
                if line["margin"]
                else None,
                relative=line["margin"].endswith("%"),
                role=line["role"],
            )
            for line in csv.DictReader(f)
        )


def _unique(conclusions: tuple[Conclusion, ...]) -> tuple[Conclusion, ...]:
    ids = [c.id for c in conclusions]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:  # a repeated line would count twice in the multiple-testing family
        raise ValueError(f"conclusions.csv repeats {', '.join(repeated)}")
    return conclusions


CONCLUSIONS = _unique(load_conclusions())


@dataclass(frozen=True)
class Registration:
    """One dated entry of ``registration.csv``: a line's margin and definition as fixed on ``fixed_on``
    in ``commit`` (empty: the commit that added the entry), and whether its data had been seen."""

    id: str
    fixed_on: datetime.date
    commit: str
    margin: str
    definition: str
    data_seen: bool
    why: str

    @property
    def post_hoc(self) -> bool:
        """Fixed after the line's data were seen: a verdict under it describes, it does not confirm."""
        return self.data_seen


def load_registrations(conclusions: tuple[Conclusion, ...]) -> dict[str, Registration]:
    """Each conclusion's latest entry of ``deepcls/paper/registration.csv``. Every line needs one, and
    its margin must be the line's in ``conclusions.csv``: a changed margin is a new dated entry."""
    latest: dict[str, Registration] = {}
    with resources.files("deepcls.paper").joinpath("registration.csv").open() as f:
        for line in csv.DictReader(f):
            entry = Registration(
                id=line["id"],
                fixed_on=datetime.date.fromisoformat(line["fixed_on"]),
                commit=line["commit"],
                margin=line["margin"],
                definition=line["definition"],
                data_seen={"yes": True, "no": False}[line["data_seen"]],
                why=line["why"],
            )
            if entry.id in latest and entry.fixed_on < latest[entry.id].fixed_on:
                raise ValueError(f"registration.csv: {entry.id}'s entries are not in date order")
            latest[entry.id] = entry
    for conclusion in conclusions:
        entry = latest.get(conclusion.id)
        if entry is None:
            raise ValueError(f"registration.csv has no entry for {conclusion.id}")
        margin = "" if conclusion.margin is None else f"{conclusion.margin:g}"
        margin = f"{100 * conclusion.margin:g}%" if conclusion.relative else margin
        if entry.margin != margin or entry.definition != conclusion.measure:
            raise ValueError(f"registration.csv: {conclusion.id}'s latest entry is not its margin and definition")
    return latest


REGISTRATIONS = load_registrations(CONCLUSIONS)


def conclusions_first(grid: pd.DataFrame) -> pd.DataFrame:
    """The grid (deepcls.paper.grids.grid) ordered for training so that the conclusions fill first:
    the runs of the first conclusion's sides (every seed), then the next's, then the runs no
    conclusion reads; otherwise in grid order. A config several tables share takes its earliest place."""
    rank: dict[Side, int] = {}
    for i, conclusion in enumerate(CONCLUSIONS):
        for side in (conclusion.a, conclusion.b):
            if side is not None:
                rank.setdefault(side, i)
    config_rank: dict = {}
    for config, t, r in zip(grid["config"], grid["table"], grid["row"]):
        config_rank[config] = min(rank.get((t, r), len(CONCLUSIONS)), config_rank.get(config, len(CONCLUSIONS)))
    order = sorted(range(len(grid)), key=lambda i: config_rank[grid["config"].iloc[i]])
    return grid.iloc[order].reset_index(drop=True)
