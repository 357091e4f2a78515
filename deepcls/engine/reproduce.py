"""Retrain stored runs from their own ``config.json`` and compare the histories epoch by epoch.

A seed pins a run within one numeric class (deepcls.numeric): on the CPU the same config, seed,
precision, thread count and bf16 arithmetic give a bit-identical history. So a retrain in the
stored run's class must come out identical, and anything else is a bug worth an exit status; a
retrain in another class is another sample (or, where the classes happen to round alike, identical
too), and the comparison says how far it landed against the seed noise of the run's row (the spread
of the final test accuracy over its stored seeds).

A bit-identical retrain also hands the stored run its network: runs stored without weights (all runs
of deepcls 0.1.0) gain the retrain's weights and their SHA-256, so ``evaluate``, ``load_model`` and
``predict`` work on them afterwards. Nothing else of the stored run changes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepcls.config import RunConfig
from deepcls.data import fingerprint
from deepcls.engine.evaluate import stored_run, training_threads
from deepcls.engine.fit import fit
from deepcls.engine.runtime import configure, thread_count
from deepcls.errors import DataError
from deepcls.numeric import class_label, resolve_device, run_precision, same_numeric_class
from deepcls.store.checkpoints import stored_fingerprint
from deepcls.store.runs import RunRecord, RunStore
from deepcls.store.weights import (
    HASH_KEY,
    WEIGHTS_FILE,
    WeightsError,
    cache_path,
    read_weights,
    sha256,
    write_cached,
)

COMPARED = ("train_loss", "train_acc", "test_loss", "test_acc")  # history columns a seed pins (not the clock's)


@dataclass(frozen=True)
class Reproduction:
    """A stored run beside its retrain: whether the histories are bit-equal, the largest test-accuracy
    difference and its epoch, the row's seed noise (sd of the final test accuracy over ``seeds``
    stored seeds), both numeric classes and what became of the weights."""

    run_id: str
    identical: bool
    same_class: bool
    stored_class: str
    retrained_class: str
    largest: float
    at_epoch: int | None
    seed_noise: float | None
    seeds: int
    weights: str

    @property
    def failed(self) -> bool:
        """A retrain in the stored run's own class that is not bit-identical."""
        return self.same_class and not self.identical

    def lines(self) -> list[str]:
        """Two lines of at most 100 columns: the verdict, then the classes and the weights."""
        if self.identical:
            verdict = "identical"
        else:
            noise = f"{self.seed_noise:.2f}" if self.seed_noise is not None else "unknown"
            verdict = (
                f"differs: largest |Δ test accuracy| {self.largest:.2f} at epoch {self.at_epoch}; "
                f"its row's seed noise {noise} (sd, {self.seeds} seed{'s' * (self.seeds != 1)})"
            )
        classes = (
            f"{self.stored_class} (stored and retrained)"
            if self.stored_class == self.retrained_class
            else f"stored {self.stored_class}, retrained {self.retrained_class}"
        )
        return [f"{self.run_id}: {verdict}", f"  {classes}; weights {self.weights}"]  # ≤ 100 columns


def reproduce(
    run: RunConfig | str | RunRecord,
    store: RunStore | None = None,
    data_dir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> Reproduction:
    """Retrain ``run`` (a complete stored run) from its config in a scratch store beside ``store``'s
    cache, in its own precision and (on the CPU) thread count, and compare it with what is stored."""
    store = store or RunStore()
    record = stored_run(run, store)
    current = fingerprint(record.config.dataset, data_dir)
    if current is not None and current != stored_fingerprint(record):
        raise DataError(
            f"run {record.run_id} was trained on a different {record.config.dataset}.npz than the one at hand: "
            "a retrain could not reproduce it"
        )
    config = record.config.replace(precision=run_precision(record.config.to_dict(), record.metrics))
    device = configure(resolve_device(config.device))
    scratch_parent = store.root / ".cache"
    scratch_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reproduce-", dir=scratch_parent) as scratch:
        with thread_count(training_threads(record) if device.type == "cpu" else None):
            retrained = fit(
                config.replace(device=str(device)), results_dir=scratch, data_dir=data_dir, progress=progress
            )
        stored_h, new_h = record.history, retrained.history
        identical = len(stored_h) == len(new_h) and all(
            np.array_equal(stored_h[c].to_numpy(), new_h[c].to_numpy()) for c in COMPARED
        )
        same_class = _same_class(record, retrained)
        epochs = min(len(stored_h), len(new_h))
        gaps = np.abs(stored_h["test_acc"].to_numpy()[:epochs] - new_h["test_acc"].to_numpy()[:epochs])
        at = int(np.argmax(gaps)) if epochs else None
        weights = _restore_weights(store, record, cache_path(Path(scratch), record.run_id), identical)
    noise, seeds = seed_noise(store, record.config)
    return Reproduction(
        run_id=record.run_id,
        identical=identical,
        same_class=same_class,
        stored_class=class_label(record.metrics, record.config.to_dict()),
        retrained_class=class_label(retrained.metrics, retrained.config.to_dict()),
        largest=float(gaps[at]) if at is not None else math.nan,
        at_epoch=int(stored_h["epoch"].iloc[at]) if at is not None else None,
        seed_noise=noise,
        seeds=seeds,
        weights=weights,
    )


def _same_class(stored: RunRecord, retrained: RunRecord) -> bool:
    """Whether the retrain ran in the stored run's numeric class. A run stored before classes were
    recorded matches only where everything it did record agrees (device and threads, its CPU's bf16
    arithmetic, precision, torch)."""
    here = retrained.metrics["numeric_class"]
    if stored.metrics.get("numeric_class"):
        return same_numeric_class(stored.metrics, here)
    return (
        "cpu_bf16" in stored.metrics
        and same_numeric_class(stored.metrics, here)
        and stored.metrics.get("device") == retrained.metrics.get("device")
        and stored.metrics.get("torch_version") == retrained.metrics.get("torch_version")
        and run_precision(stored.config.to_dict(), stored.metrics) == here["precision"]
    )


def _restore_weights(store: RunStore, record: RunRecord, retrained: Path, identical: bool) -> str:
    """Give the stored run the retrain's weights (the file ``retrained``) where it lacks them and the
    retrain is identical."""
    try:
        read_weights(record.path, store.root, record.run_id, record.metrics.get(HASH_KEY))
        return "kept (the run has its own)"
    except WeightsError:  # no hash, no file, or a damaged one: a retrain may restore them
        pass
    if not identical:
        return "not restored (the retrain differs)"
    data = retrained.read_bytes()
    expected = record.metrics.get(HASH_KEY)
    if expected is not None and sha256(data) != expected:
        return "not restored (not the ones metrics.json names)"
    with store.claim(record.config):
        write_cached(store.root, record.run_id, data)
        if expected is None:  # the run folder records the hash; every other file stays byte for byte
            files = store.run_files(record.run_id)
            files.pop(WEIGHTS_FILE, None)
            metrics = json.loads(files["metrics.json"]) | {HASH_KEY: sha256(data)}
            files["metrics.json"] = (json.dumps(metrics, indent=2) + "\n").encode()
            store.save_files(record.run_id, files)
    return "restored from the retrain"


def seed_noise(store: RunStore, config: RunConfig) -> tuple[float | None, int]:
    """The sd of the final test accuracy over the complete stored seeds of ``config``'s row (every
    field but the seed equal), and how many seeds that is; None below two seeds."""
    row = {k: v for k, v in config.identity().items() if k != "seed"}
    finals = []
    prefix = f"{config.dataset}-{config.model}-"
    for run_id in store.run_ids():
        if not run_id.startswith(prefix):
            continue
        other = store.record(run_id)
        if other is None or other.status != "complete":
            continue
        if {k: v for k, v in other.config.identity().items() if k != "seed"} == row:
            finals.append(float(other.metrics["final_test_acc"]))
    return (float(np.std(finals, ddof=1)) if len(finals) >= 2 else None), len(finals)


def pick_runs(store: RunStore, runs: list[str], profile: str | None, sample: int | None) -> list[str]:
    """The runs named, else every complete stored run of ``profile``; ``sample`` of them drawn at
    random with a fixed seed (the same draw every time)."""
    if not runs:
        runs = [
            r
            for r in store.run_ids()
            if (record := store.record(r)) is not None
            and record.status == "complete"
            and (profile is None or record.config.profile == profile)
        ]
    if sample is not None and sample < len(runs):
        chosen = np.random.default_rng(0).choice(len(runs), size=sample, replace=False)
        runs = [runs[i] for i in sorted(chosen)]
    return runs
