"""What one more run of a grid row should cost on the device it would train on.

A row's stored times say it only for the device they were measured on: a row that takes minutes
on a GPU can take hours on one CPU thread. So a row's cost on a device is the mean time of its
runs there (each at its median epoch's pace, below); a row with none there is estimated from its
size — multiply-accumulates per image × training images × epochs — times the seconds per such unit
that the device took, median over the profile's runs on it (any profile's, where this one has none).
Where the device has no runs at all, the row's own times stand, named with the device they were
measured on.

A run's seconds are its epochs at the pace of its median epoch, not its wall time: a few epochs
slowed by other load on the machine (a CI run beside it, a paused process) are not what one more
run costs.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepcls.atomic import write_text
from deepcls.config import PROFILE_NAMES, RunConfig
from deepcls.data import get_spec
from deepcls.numeric import short_device
from deepcls.paper import grids as experiments
from deepcls.paper.conclusions import Side
from deepcls.progress import reading
from deepcls.store.runs import RunStore


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Cost:
    """Seconds one more seed of a row should take (NaN: never run, nothing to estimate from) on
    ``device`` (short name); ``estimated`` when they come from the row's size, not its own runs there."""

    seconds: float
    device: str
    estimated: bool = False

    def text(self, runs: int = 1) -> str:
        """What ``runs`` such runs cost, for a reader: ``"≈ 76.0 min on CPU x1"``."""
        if math.isnan(self.seconds):
            return "cost unknown (never run)"
        estimated = ", estimated from MACs" if self.estimated else ""
        return f"≈ {duration(runs * self.seconds)} on {self.device}{estimated}"


UNKNOWN = Cost(math.nan, "")
REFERENCE_DEVICE = "CPU x1"  # what RESULTS.md's costs are on: one CPU thread per run, as its runs were trained


# Every grid row's MACs, counted once (write_mac_table): reading tables and the ledger then needs no
# model built and no torch; a model the table lacks (one of your own) is counted when asked.
MAC_TABLE = Path(__file__).resolve().parents[1] / "models" / "macs.csv"


def _architecture(config: RunConfig) -> str:
    """What a model's MACs depend on: its name, dataset and model options (not its init or training)."""
    return json.dumps([config.model, config.dataset, config.model_options()], sort_keys=True)


@functools.cache
def _counted() -> dict[str, int]:
    if not MAC_TABLE.exists():
        return {}
    table = pd.read_csv(MAC_TABLE)
    return dict(zip(table["architecture"], table["macs"].astype(int)))


@functools.cache
def macs(config: RunConfig) -> int:
    """Multiply-accumulates of one forward pass of one image: from MAC_TABLE, else counted by
    building the model (deepcls.models.model_summary, which imports torch)."""
    counted = _counted().get(_architecture(config))
    return counted if counted is not None else count_macs(config)


def count_macs(config: RunConfig) -> int:
    """Build ``config``'s model and count its MACs for one image of its dataset."""
    from deepcls.models import build_for_dataset, input_padding, model_summary

    spec = get_spec(config.dataset)
    side = input_padding(config.model, spec) or spec.image_shape[0]
    model = build_for_dataset(config.model, config.dataset, init=config.init, **config.model_options())
    return model_summary(model, (spec.channels, side, side))["macs"]


def mac_table() -> pd.DataFrame:
    """Every architecture of every table's rows at every profile, with its MACs counted now."""
    configs = {}
    for profile in PROFILE_NAMES:
        for config in experiments.grid(experiments.ALL_TABLES, profile, (0,))["config"]:
            configs.setdefault(_architecture(config), config)
    rows = [(key, count_macs(config)) for key, config in sorted(configs.items())]
    return pd.DataFrame(rows, columns=["architecture", "macs"])


def write_mac_table(path: Path = MAC_TABLE) -> Path:
    """Count and write MAC_TABLE (``python -m deepcls.analysis.costs`` after adding a model or a table)."""
    write_text(path, mac_table().to_csv(index=False))
    return path


def _work(macs: float, dataset: str, subset: float | None, epochs: float) -> float:
    """What a run trains: MACs per image × training images × epochs."""
    images = subset if subset and not math.isnan(subset) else get_spec(dataset).train_size
    return macs * images * epochs


def _typical_seconds(history: pd.DataFrame, wall_time_s: float) -> float:
    """A run's epochs at the pace of its median epoch; its wall time where the history has no seconds."""
    seconds = history["seconds"].dropna() if "seconds" in history else pd.Series(dtype=float)
    return float(seconds.median() * len(seconds)) if len(seconds) else wall_time_s


def _runs(store: RunStore) -> pd.DataFrame:
    """Every stored complete run with what it took: index run_id; profile, device (short), seconds (its
    epochs at its median epoch's pace), work (NaN where metrics.json predates the MAC count)."""
    rows = {}
    for run_id in store.run_ids():
        record = store.record(run_id)
        if record is None or record.metrics["status"] != "complete":
            continue
        m, config = record.metrics, record.config
        wall, epochs = m.get("wall_time_s"), m.get("epochs_run")
        if wall is None or math.isnan(float(wall)):
            continue
        known = m.get("macs") is not None and epochs is not None
        rows[run_id] = {
            "profile": config.profile,
            "device": short_device(m.get("device")),
            "seconds": _typical_seconds(record.history, float(wall)),
            "work": _work(m["macs"], config.dataset, config.subset, epochs) if known else math.nan,
        }
    columns = ["profile", "device", "seconds", "work"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns) if rows else pd.DataFrame(columns=columns)


def row_costs(profile: str, store: RunStore, seeds: Sequence[int], on: str | None = None) -> dict[Side, Cost]:
    """One more seed's cost of every row of every table at ``profile`` on device ``on`` (a short
    name; REFERENCE_DEVICE by default), from the row's stored ``seeds`` (see the module)."""
    on = on or REFERENCE_DEVICE
    runs = _runs(store)
    there = runs[(runs["device"] == on) & runs["work"].notna()]
    if (there["profile"] == profile).any():
        there = there[there["profile"] == profile]  # a profile's subsets and epochs set its overheads
    rate = float((there["seconds"] / there["work"]).median()) if len(there) else math.nan
    grid = experiments.grid(experiments.ALL_TABLES, profile, tuple(seeds))
    out: dict[Side, Cost] = {}
    groups = grid.groupby(["table", "row"], sort=False)
    for (table, row), lines in reading(groups, "costing rows", total=groups.ngroups):
        own = runs.loc[runs.index.intersection([c.run_id for c in lines["config"]])]
        mine = own[own["device"] == on]
        if len(mine):
            out[(table, row)] = Cost(float(mine["seconds"].mean()), on)
        elif not math.isnan(rate):
            config = lines["config"].iloc[0]
            out[(table, row)] = Cost(rate * _work(macs(config), config.dataset, config.subset, config.epochs), on, True)
        elif len(own):
            out[(table, row)] = Cost(float(own["seconds"].mean()), "/".join(dict.fromkeys(own["device"])))
        else:
            out[(table, row)] = UNKNOWN
    return out


if __name__ == "__main__":
    print(f"wrote {write_mac_table()}")
