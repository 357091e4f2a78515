"""fit(config) -> RunRecord: the only training loop.

One epoch = a pass over the device-resident training split (shuffled and augmented from a
generator seeded by (seed, epoch)) followed by a full evaluation of the test split. Loss
and accuracy are accumulated on the device and read back every ``SYNC_EVERY`` steps, which
is also when a NaN/inf loss stops the run as ``diverged`` (a non-finite test loss too). After
every epoch a checkpoint is written, so an interrupted run resumes and ends with the same history.
Each run records the fingerprint of the data file it was trained on (``data_fingerprint`` in
metrics.json); a stored run or checkpoint from other data is never reused or continued. Whether a
run is reused, resumed, extended or started afresh is decided by deepcls.store.checkpoints
(``start_point``); this module only restores the state it is handed.

The loop is a generator that yields after every training step (``fit_steps``): ``fit`` runs it to
its end, and deepcls.execution.interleaved interleaves the steps of several runs in one process. On CUDA the
full batches of a step and of the evaluation replay CUDA graphs (deepcls.engine.graphs).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from deepcls import api
from deepcls.config import RunConfig
from deepcls.data import (
    BatchLoader,
    DatasetSpec,
    Split,
    balanced_subset,
    epoch_seed,
    fingerprint,
    get_spec,
    load_dataset,
)
from deepcls.engine import summary as metrics
from deepcls.engine.graphs import Graphed, state_kept, use_graphs
from deepcls.engine.optim import lr_factor, make_optimizer
from deepcls.engine.runtime import flushes_denormals
from deepcls.engine.tensorboard import EpochLog, log_dir, write_record
from deepcls.errors import ConfigError
from deepcls.models import build_for_dataset, input_padding, model_summary
from deepcls.numeric import device_name, numeric_class, precision_warning, resolve_device, resolve_precision
from deepcls.progress import bar_timing, show_progress
from deepcls.store import checkpoints
from deepcls.store.runs import RunRecord, RunStore, warn
from deepcls.store.weights import HASH_KEY, sha256, weights_bytes, write_cached
from deepcls.version import __version__

SYNC_EVERY = 50  # steps between host reads of the running loss (and divergence checks)
EVAL_BATCH = 1000
HISTORY_COLUMNS = [
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "seconds",
    "images_per_s",
]
TIMING_COLUMNS = ["seconds", "images_per_s"]  # measured by the clock: differ between reruns
T = TypeVar("T")
_warned: set[str] = set()
Steps = Generator[tuple[int, int], None, T]  # yields (steps done, steps in all) after every training step


def fit(config: RunConfig, **options: Any) -> RunRecord:
    """Train ``config`` (or reuse its stored run) and return the stored record.

    ``options`` are :func:`fit_steps`'s: ``results_dir``, ``data_dir``, ``store``, ``force``,
    ``progress`` (a tqdm bar, on line ``bar_position`` when several processes share a terminal;
    None means on unless ``$DEEPCLS_PROGRESS`` is ``0``), ``bar_position``, ``tensorboard`` (a folder
    for TensorBoard logs; off by default). An option fit_steps does not take, or of the wrong type,
    is one ConfigError line before anything starts.
    """
    if problem := api.call_problem(fit_steps, (config,), options):
        raise ConfigError(f"dc.fit: {problem}")
    return run_to_end(fit_steps(config, **options))


def fit_steps(
    config: RunConfig,
    *,
    results_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    store: RunStore | None = None,
    force: bool = False,
    progress: bool | None = None,
    bar_position: int | None = None,
    notes: dict[str, Any] | None = None,
    checkpoint_every_s: float = 0.0,
    keep_weights: bool = False,
    tensorboard: str | os.PathLike | None = None,
) -> Steps[RunRecord]:
    """:func:`fit` one training step at a time: yields after each step, returns the record.

    ``notes`` (a dict the caller may keep filling while the run trains) is merged into the run's
    ``metrics.json``. Closing the generator stops the run as a kill would: its epoch checkpoint
    stays for a resume, and nothing is recorded as failed. ``checkpoint_every_s`` > 0 writes the
    resume checkpoint only when that long has passed since the last one (on a GPU an epoch takes
    seconds and a ResNet checkpoint with Adam's moments is 135 MB). A complete run's weights are
    kept in the store's cache, or with ``keep_weights`` in its run folder (deepcls.store.weights).
    ``tensorboard``: each epoch is also written to ``<tensorboard>/<run-id>/`` as it ends, with the
    epochs a resumed run already has written again (each epoch once: deepcls.engine.tensorboard); a
    stored run that is reused gets its stored history written there.
    """
    tensorboard_dir = log_dir(tensorboard)  # bad input: said before anything is read or trained

    def reused(record: RunRecord) -> RunRecord:
        if tensorboard_dir is not None:
            write_record(tensorboard_dir, record)
        return record

    store = store or RunStore(results_dir)
    start = checkpoints.start_point(store, config, data_dir, force=force, resume=False)  # reads no checkpoint
    if start.reuse is not None:
        return reused(start.reuse)

    def new_trainer() -> Trainer:
        trainer = Trainer(config, data_dir)  # bad data fails here, before anything is written
        trainer.checkpoint_every_s = checkpoint_every_s
        trainer.keep_weights = keep_weights
        trainer.tensorboard_dir = tensorboard_dir
        if notes is not None:  # the caller's dict, so that what it adds later is saved too
            notes.update(trainer.notes)
            trainer.notes = notes
        return trainer

    trainer = new_trainer()
    if (warning := precision_warning(config.precision, trainer.device)) and warning not in _warned:
        _warned.add(warning)  # once per process, not once per run of a grid; evaluating never warns
        warn(warning)
    store.ensure_writable()
    with store.claim(config):
        start = checkpoints.start_point(store, config, data_dir, force=force)
        if start.reuse is not None:
            return reused(start.reuse)  # another process finished it while we waited
        if start.state is not None and start.source is not None:
            try:
                trainer.restore(start.state)
            except Exception as err:  # weights of another shape or kind: start over from a fresh model
                checkpoints.discard(start.source, f"does not fit the model ({type(err).__name__})")
                trainer = new_trainer()
        return (yield from trainer.steps(store, show_progress(progress), bar_position))


def run_to_end(steps: Steps[T]) -> T:
    """Run a step generator to its end and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


class Trainer:
    """One training run: data on the device, model, optimizer and the history so far."""

    def __init__(self, config: RunConfig, data_dir: str | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)  # process-wide settings: deepcls.engine.runtime.configure
        self.precision = resolve_precision(config.precision, self.device)
        self.graphs = use_graphs(config.graphs, self.device, config.compile)
        if self.graphs and self.device.type != "cuda":  # bad input: said before any data is read
            raise ConfigError(f"graphs=True needs a CUDA device; this run trains on {self.device}")
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
        self.optimizer = make_optimizer(config, self.model.parameters(), capturable=self.graphs)
        self.place_lr()
        # full batches replay CUDA graphs (deepcls.engine.graphs); the last partial batch runs eagerly
        self.step_graph = Graphed(self.eager_step, lambda: state_kept(self.model, self.optimizer))
        self.eval_graph = Graphed(self.infer)
        self.history: list[dict[str, float]] = []
        self.extended_from: str | None = None  # run id of the shorter run this one continues
        self.notes: dict[str, Any] = {"cuda_graphs": self.graphs}  # added to metrics.json
        self.checkpoint_every_s = 0.0  # 0: after every epoch
        self.keep_weights = False  # a complete run's weights in its run folder, not the cache
        self.tensorboard_dir: Path | None = None  # where each epoch is also logged (deepcls.engine.tensorboard)
        self.last_checkpoint = time.monotonic()

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
        self.place_lr()  # a loaded lr is a host float (or another run's device tensor)
        self.history = state["history"]
        self.extended_from = state.get("extended_from")

    def autocast(self) -> torch.autocast:
        enabled = self.precision == "bf16"
        if self.graphs:  # the autocast weight cache is not allowed inside graph capture
            return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled, cache_enabled=False)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def place_lr(self) -> None:
        """The lr of each param group as a host float, or with CUDA graphs as a device tensor the
        captured optimizer step reads (filled by :meth:`set_lr`) and a capturable optimizer."""
        for group in self.optimizer.param_groups:
            lr = float(group["lr"])
            group["lr"] = torch.tensor(lr, device=self.device) if self.graphs else lr
            if "capturable" in group:  # Adam's (a checkpoint keeps the flag it was written with)
                group["capturable"] = self.graphs

    def set_lr(self, lr: float) -> None:
        """Set the lr of the next step (a fill of the device tensor under CUDA graphs: no new address)."""
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    # ------------------------------------------------------------------ loop
    def train(self, store: RunStore, progress: bool = True, bar_position: int | None = None) -> RunRecord:
        return run_to_end(self.steps(store, progress, bar_position))

    def steps(self, store: RunStore, progress: bool = True, bar_position: int | None = None) -> Steps[RunRecord]:
        """The remaining epochs and the saved record, yielding after every training step."""
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
        log = None if self.tensorboard_dir is None else EpochLog(self.tensorboard_dir, cfg.run_id, self.history)
        try:
            for epoch in range(len(self.history), cfg.epochs):
                bar.set_description(f"{cfg.model} {cfg.dataset} epoch {epoch + 1}/{cfg.epochs}")
                start = time.perf_counter()
                train_loss, train_acc = yield from self.train_epoch(epoch, bar)
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
                if log is not None:
                    log.add(self.history[-1])
                if self.checkpoint_due(epoch):
                    checkpoints.save_checkpoint(store, cfg, self.state())
        except Exception as err:  # recorded as an outcome; the checkpoint stays for a retry
            self.record_failure(store, err)
            raise
        finally:
            bar.close()
            if log is not None:
                log.close()
        if predictions is None and self.history and status == "complete":  # resumed after the last checkpoint
            _, _, predictions = self.evaluate()
        record = self.save(store, status, diverged_epoch, predictions)
        checkpoints.finish_checkpoint(store, cfg, status)
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

    def checkpoint_due(self, epoch: int) -> bool:
        """After every epoch, or (``checkpoint_every_s`` > 0) once that long has passed since the last
        checkpoint; always after the last epoch of a run that a longer run may continue."""
        now = time.monotonic()
        last_of_extendable = epoch + 1 == self.config.epochs and self.config.extendable
        if self.checkpoint_every_s > 0 and now - self.last_checkpoint < self.checkpoint_every_s:
            if not last_of_extendable:
                return False
        self.last_checkpoint = now
        return True

    def train_epoch(self, epoch: int, bar: tqdm) -> Steps[tuple[float, float]]:
        """One pass over the training split, yielding after each step; returns (mean loss,
        accuracy %) or (nan, ...)."""
        cfg, steps = self.config, len(self.train_loader)
        self.model.train()
        torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout masks replay on resume
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen, start = 0, time.perf_counter()
        for i, (x, y) in enumerate(self.train_loader.epoch(epoch)):
            self.set_lr(cfg.lr * lr_factor(cfg.schedule, epoch * steps + i, cfg.epochs * steps, cfg.warmup))
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
            yield epoch * steps + i + 1, cfg.epochs * steps
        return (loss_sum / seen).item(), 100.0 * correct.item() / seen

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step; returns the (detached) loss and the logits, no host sync.

        Under CUDA graphs a full batch replays the captured step and the returned tensors are
        overwritten by the next one: use them before the next step."""
        if self.graphs and len(y) == self.config.batch_size:
            return self.step_graph(x, y)  # type: ignore[return-value]
        return self.eager_step(x, y)

    def eager_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
            full = self.graphs and len(y) == self.test_loader.batch_size
            (logits,) = self.eval_graph(x) if full else self.infer(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            preds.append(logits.argmax(1))
        pred = torch.cat(preds)
        n = self.test_loader.num_samples
        acc = 100.0 * (pred == self.test_loader.y).sum().item() / n
        return loss_sum.item() / n, acc, pred.cpu().numpy()

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        with self.autocast():
            return (self.forward(x),)

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
            "device": device_name(self.device),
            "numeric_class": numeric_class(self.device, self.precision),
            **({"flush_denormal": flushes_denormals()} if self.device.type == "cpu" else {}),
            "torch_version": torch.__version__,
            "deepcls_version": __version__,
            "data_fingerprint": self.data_fingerprint,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **self.notes,
        }
        if error is not None:
            summary["error"] = " ".join(error.split())[:500]
        confusion, samples, predicted = None, None, None
        if predictions is not None:
            labels = self.test_loader.y.cpu().numpy()
            confusion = metrics.confusion_matrix(labels, predictions, self.spec.num_classes)
            summary.update(metrics.confusion_summary(confusion))
            samples = metrics.samples(labels, predictions, self.test_index.numpy())
            predicted = metrics.predictions(labels, predictions, self.test_index.numpy())
        weights = None
        if status == "complete":  # the weights the final test accuracy was measured with
            weights = weights_bytes(self.model.state_dict())
            summary[HASH_KEY] = sha256(weights)
            if not self.keep_weights:
                write_cached(store.root, cfg.run_id, weights)
        store.save(
            cfg, history, summary, confusion, samples, weights if self.keep_weights else None, predictions=predicted
        )
        return store.load(cfg)


def _subset_index(split: Split, n: int | None, spec: DatasetSpec) -> torch.Tensor:
    return torch.arange(len(split)) if n is None else balanced_subset(split.y, n, spec.num_classes)


def _subset(split: Split, n: int | None, spec: DatasetSpec) -> Split:
    if n is None:
        return split
    index = balanced_subset(split.y, n, spec.num_classes)
    return Split(split.x[index], split.y[index])
