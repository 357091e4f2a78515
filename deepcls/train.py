"""fit(config) -> RunRecord: the only training loop.

One epoch = a pass over the device-resident training split (shuffled and augmented from a
generator seeded by (seed, epoch)) followed by a full evaluation of the test split. Loss
and accuracy are accumulated on the device and read back every ``SYNC_EVERY`` steps, which
is also when a NaN/inf loss stops the run as ``diverged`` (a non-finite test loss too). After
every epoch a checkpoint is written, so an interrupted run resumes and ends with the same history.
Each run records the fingerprint of the data file it was trained on (``data_fingerprint`` in
metrics.json); a stored run or checkpoint from other data is never reused or continued.
"""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import deepcls
from deepcls import metrics
from deepcls.config import RunConfig
from deepcls.data import (
    OFFICIAL_FINGERPRINTS,
    BatchLoader,
    DatasetSpec,
    Split,
    balanced_subset,
    dataset_path,
    epoch_seed,
    fingerprint,
    get_spec,
    load_dataset,
)
from deepcls.errors import DataError
from deepcls.models import build_for_dataset, input_padding, model_summary
from deepcls.optim import lr_factor, make_optimizer
from deepcls.progress import bar_timing, show_progress
from deepcls.runtime import resolve_device
from deepcls.store import FINISHED, RunRecord, RunStore

SYNC_EVERY = 50  # steps between host reads of the running loss (and divergence checks)
EVAL_BATCH = 1000
HISTORY_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"]


def fit(
    config: RunConfig,
    *,
    results_dir: str | None = None,
    data_dir: str | None = None,
    store: RunStore | None = None,
    force: bool = False,
    progress: bool | None = None,
    bar_position: int | None = None,
) -> RunRecord:
    """Train ``config`` (or reuse its stored run) and return the stored record.

    ``progress`` shows a tqdm bar (on line ``bar_position`` when several processes share a
    terminal); None means on unless ``$DEEPCLS_PROGRESS`` is ``0``.
    """
    store = store or RunStore(results_dir)
    if not force and (stored := _reusable(store, config, data_dir)) is not None:
        return stored
    trainer = Trainer(config, data_dir)  # bad data fails here, before anything is written
    store.ensure_writable()
    with store.claim(config):
        if not force and (stored := _reusable(store, config, data_dir)) is not None:
            return stored  # another process finished it while we waited
        if force:
            store.drop_checkpoint(config)
        source = store.checkpoint_path(config)
        checkpoint = _resumable(store, config, trainer.data_fingerprint)
        if checkpoint is None and not force and (prefix := store.prefix_run(config)) is not None:
            source = store.final_path(prefix)
            checkpoint = _resumable(store, prefix, trainer.data_fingerprint, final=True)
            if checkpoint is not None:  # the same trajectory, M of N epochs already run
                checkpoint["extended_from"] = prefix.run_id
        if checkpoint is not None:
            try:
                trainer.restore(checkpoint)
            except Exception as err:  # weights of another shape or kind: start over from a fresh model
                store.discard(source, f"does not fit the model ({type(err).__name__})")
                trainer = Trainer(config, data_dir)
        return trainer.train(store, show_progress(progress), bar_position)


def stored_fingerprint(record: RunRecord) -> str:
    """The data a stored run was trained on; runs stored before fingerprints were recorded were all
    trained on the official files."""
    return record.metrics.get("data_fingerprint") or OFFICIAL_FINGERPRINTS[record.config.dataset]


def _reusable(store: RunStore, config: RunConfig, data_dir: str | None) -> RunRecord | None:
    """The finished stored run of ``config``, if any; DataError when it was trained on other data
    than the file at hand (when the file is missing it cannot differ: the run is reused)."""
    record = store.record(config)
    if record is None or record.status not in FINISHED:
        return None
    current = fingerprint(config.dataset, data_dir)
    if current is not None and current != stored_fingerprint(record):
        raise DataError(
            f"run {config.run_id} was trained on a different {config.dataset}.npz than "
            f"{dataset_path(config.dataset, data_dir)} (data fingerprint {stored_fingerprint(record)[:12]} there, "
            f"{current[:12]} here); use the file it was trained on, or retrain on this one with --force"
        )
    return dataclasses.replace(record, reused=True)


def _resumable(store: RunStore, config: RunConfig, data: str, final: bool = False) -> dict[str, Any] | None:
    """The resume (or, with ``final``, the kept final) checkpoint of ``config`` if it was trained on
    the same data; one from other data is discarded with one warning line."""
    state = store.load_final(config) if final else store.load_checkpoint(config)
    if state is not None and state.get("data_fingerprint", OFFICIAL_FINGERPRINTS[config.dataset]) != data:
        path = store.final_path(config) if final else store.checkpoint_path(config)
        store.discard(path, "was trained on other data (its data fingerprint differs)")
        return None
    return state


class Trainer:
    """One training run: data on the device, model, optimizer and the history so far."""

    def __init__(self, config: RunConfig, data_dir: str | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)  # process-wide settings: deepcls.runtime.configure
        self.spec: DatasetSpec = get_spec(config.dataset)
        train, test = load_dataset(config.dataset, data_dir)
        self.data_fingerprint = fingerprint(config.dataset, data_dir)
        train = _subset(train, config.subset, self.spec)
        self.test_index = _subset_index(test, config.test_subset, self.spec)
        test = Split(test.x[self.test_index], test.y[self.test_index])
        pad_to = input_padding(config.model, self.spec)
        common = dict(device=self.device, pad_to=pad_to, channels_last=config.channels_last, seed=config.seed)
        self.train_loader = BatchLoader(
            train, self.spec, batch_size=config.batch_size, train=True, augment=config.augment, **common
        )
        self.test_loader = BatchLoader(test, self.spec, batch_size=EVAL_BATCH, **common)

        torch.manual_seed(config.seed)
        self.model = build_for_dataset(config.model, config.dataset, init=config.init, **config.model_options()).to(
            self.device
        )
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.size = model_summary(self.model, tuple(self.test_loader.x.shape[1:]))
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.history: list[dict[str, float]] = []
        self.extended_from: str | None = None  # run id of the shorter run this one continues

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "extended_from": self.extended_from,
            "data_fingerprint": self.data_fingerprint,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = state["history"]
        self.extended_from = state.get("extended_from")

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    # ------------------------------------------------------------------ loop
    def train(self, store: RunStore, progress: bool = True, bar_position: int | None = None) -> RunRecord:
        cfg = self.config
        steps = len(self.train_loader)
        bar = tqdm(
            total=cfg.epochs * steps,
            initial=len(self.history) * steps,
            disable=not progress,
            desc=f"{cfg.model} {cfg.dataset}",
            unit="step",
            dynamic_ncols=True,
            position=bar_position,
            **bar_timing(),
        )
        status, diverged_epoch, predictions = "complete", None, None
        try:
            for epoch in range(len(self.history), cfg.epochs):
                bar.set_description(f"{cfg.model} {cfg.dataset} epoch {epoch + 1}/{cfg.epochs}")
                start = time.perf_counter()
                train_loss, train_acc = self.train_epoch(epoch, bar)
                train_seconds = time.perf_counter() - start
                if not math.isfinite(train_loss):
                    status, diverged_epoch = "diverged", epoch + 1
                    break
                test_loss, test_acc, epoch_predictions = self.evaluate()
                if not math.isfinite(test_loss):  # a blow-up that shows only in the weights the step left
                    status, diverged_epoch = "diverged", epoch + 1
                    break
                predictions = epoch_predictions
                self.history.append(
                    {
                        "epoch": epoch + 1,
                        "lr": cfg.lr * lr_factor(cfg.schedule, (epoch + 1) * steps - 1, cfg.epochs * steps, cfg.warmup),
                        "train_loss": train_loss,
                        "train_acc": train_acc,
                        "test_loss": test_loss,
                        "test_acc": test_acc,
                        "seconds": time.perf_counter() - start,
                        "images_per_s": self.train_loader.num_samples / train_seconds,
                    }
                )
                store.save_checkpoint(cfg, self.state())
        except Exception as err:  # recorded as an outcome; the checkpoint stays for a retry
            self.record_failure(store, err)
            raise
        finally:
            bar.close()
        if predictions is None and self.history and status == "complete":  # resumed after the last checkpoint
            _, _, predictions = self.evaluate()
        record = self.save(store, status, diverged_epoch, predictions)
        store.finish_checkpoint(cfg, status)
        return record

    def record_failure(self, store: RunStore, err: Exception) -> None:
        """Store a ``failed`` record, unless a finished run is stored (a --force retrain failed: the
        run it was to replace stays) or the store cannot be written (disk full: the error says it)."""
        if store.has(self.config):
            return
        try:
            self.save(store, "failed", None, None, error=f"{type(err).__name__}: {err}")
        except OSError:
            pass

    def train_epoch(self, epoch: int, bar: tqdm) -> tuple[float, float]:
        """One pass over the training split; returns (mean loss, accuracy %) or (nan, ...)."""
        cfg, steps = self.config, len(self.train_loader)
        self.model.train()
        torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout masks replay on resume
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen, start = 0, time.perf_counter()
        for i, (x, y) in enumerate(self.train_loader.epoch(epoch)):
            lr = cfg.lr * lr_factor(cfg.schedule, epoch * steps + i, cfg.epochs * steps, cfg.warmup)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss, logits = self.step(x, y)
            loss_sum += loss * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            bar.update(1)
            if (i + 1) % SYNC_EVERY == 0 or i + 1 == steps:
                mean_loss = (loss_sum / seen).item()
                if not math.isfinite(mean_loss):
                    return math.nan, math.nan
                bar.set_postfix(
                    loss=f"{mean_loss:.3f}",
                    acc=f"{100 * correct.item() / seen:.2f}%",
                    img_s=f"{seen / (time.perf_counter() - start):.0f}",
                    refresh=False,
                )
        return (loss_sum / seen).item(), 100.0 * correct.item() / seen

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the (detached) loss and the logits, no host sync."""
        with self.autocast():
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach()

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, np.ndarray]:
        """Full pass over the test split: (mean loss, accuracy %, predictions)."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        preds = []
        for x, y in self.test_loader.epoch():
            with self.autocast():
                logits = self.forward(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            preds.append(logits.argmax(1))
        pred = torch.cat(preds)
        n = self.test_loader.num_samples
        acc = 100.0 * (pred == self.test_loader.y).sum().item() / n
        return loss_sum.item() / n, acc, pred.cpu().numpy()

    # ------------------------------------------------------------------ results
    def save(
        self,
        store: RunStore,
        status: str,
        diverged_epoch: int | None,
        predictions: np.ndarray | None,
        error: str | None = None,
    ) -> RunRecord:
        cfg = self.config
        history = pd.DataFrame(self.history, columns=HISTORY_COLUMNS)
        summary: dict[str, Any] = {
            "run_id": cfg.run_id,
            "status": status,
            "profile": cfg.profile,
            "epochs_run": len(history),
            "diverged_epoch": diverged_epoch,
            "extended_from": self.extended_from,
            **metrics.accuracy_summary(history),
            "wall_time_s": float(history["seconds"].sum()),
            "images_per_s": float(history["images_per_s"].mean()) if len(history) else None,
            "params": self.size["params"],
            "macs": self.size["macs"],
            "device": metrics.device_name(self.device),
            "torch_version": torch.__version__,
            "deepcls_version": deepcls.__version__,
            "data_fingerprint": self.data_fingerprint,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if error is not None:
            summary["error"] = " ".join(error.split())[:500]
        confusion, samples = None, None
        if predictions is not None:
            labels = self.test_loader.y.cpu().numpy()
            confusion = metrics.confusion_matrix(labels, predictions, self.spec.num_classes)
            summary.update(metrics.confusion_summary(confusion))
            samples = metrics.samples(labels, predictions, self.test_index.numpy())
        store.save(cfg, history, summary, confusion, samples)
        return store.load(cfg)


def _subset_index(split: Split, n: int | None, spec: DatasetSpec) -> torch.Tensor:
    return torch.arange(len(split)) if n is None else balanced_subset(split.y, n, spec.num_classes)


def _subset(split: Split, n: int | None, spec: DatasetSpec) -> Split:
    if n is None:
        return split
    index = balanced_subset(split.y, n, spec.num_classes)
    return Split(split.x[index], split.y[index])
