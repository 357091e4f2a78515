"""A stored run's trained network: built from its own config, loaded from its checked weights
(deepcls.store.weights), and re-measured on its own test split.

Re-measuring runs the training's own evaluation pass (deepcls.engine.fit.Trainer.evaluate: the same
test subset, padding, memory format, precision and batch size), so on the device and thread count
a run trained with it gives the stored final test accuracy bit for bit. Elsewhere float rounding
differs (another CPU's kernels, a GPU's bf16) and may flip a few borderline images:
:data:`OTHER_DEVICE_TOLERANCE` says how many points that may move the accuracy.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from deepcls.config import RunConfig
from deepcls.data import BatchLoader, Split, balanced_subset, get_spec, load_dataset
from deepcls.engine.fit import Trainer
from deepcls.engine.runtime import configure, thread_count
from deepcls.errors import ConfigError, StoreError
from deepcls.models import build_for_dataset, input_padding
from deepcls.numeric import device_name, numeric_class, resolve_device, run_precision, same_numeric_class
from deepcls.store.runs import RunRecord, RunStore
from deepcls.store.weights import HASH_KEY, read_weights

OTHER_DEVICE_TOLERANCE = 0.2  # points (20 of 10,000 test images) on a device or thread count other than the run's


def stored_run(run: RunConfig | str | RunRecord, store: RunStore | None = None) -> RunRecord:
    """The complete stored run named by a config, a run id or a record; StoreError in one line otherwise."""
    if isinstance(run, RunRecord):
        return run
    store = store or RunStore()
    run_id = run.run_id if isinstance(run, RunConfig) else run
    try:
        record = store.record(run)
    except OSError as err:  # a name the file system refuses (too long, ...), or a folder it cannot read
        raise StoreError(f"cannot read run {run_id!r} at {err.filename or store.runs}: {err.strerror or err}") from None
    if record is None:
        raise StoreError(f"no readable stored run {run_id!r} in {store.runs}")
    if record.status != "complete":
        raise StoreError(f"run {run_id} is {record.status}: only a complete run keeps its weights")
    return record


def load_model(
    run: RunConfig | str | RunRecord, store: RunStore | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """The trained network of a stored complete run, in eval mode on ``device``: built from the
    run's config, its weights checked against the SHA-256 in its metrics.json. It takes images
    normalized as deepcls.data.BatchLoader makes them (:func:`test_batches`)."""
    target = _device(device)  # an unknown device is refused before the store is read
    store = store or RunStore()
    record = stored_run(run, store)
    state = read_weights(record.path, store.root, record.run_id, record.metrics.get(HASH_KEY))
    config = record.config
    model = build_for_dataset(config.model, config.dataset, init=config.init, **config.model_options())
    if problem := misfit(model.state_dict(), state):
        raise StoreError(f"run {record.run_id}'s weights do not fit its model: {problem}")
    model.load_state_dict(state)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(target).eval()


def _device(device: str | torch.device) -> torch.device:
    """A device given by name (deepcls's names: cpu, cuda, cuda:N, mps, auto) checked as a run's
    device is, so an unknown one is a ConfigError line before any work; a torch.device as given."""
    return device if isinstance(device, torch.device) else resolve_device(device)


def misfit(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str | None:
    """The first tensor by which a state does not fit a model, named (torch's own error names only the
    model's class), or None."""
    if missing := sorted(set(expected) - set(given)):
        return f"tensor {missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    if extra := sorted(set(given) - set(expected)):
        return f"tensor {extra[0]} is not the model's" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
    for name, tensor in expected.items():
        if tuple(given[name].shape) != tuple(tensor.shape):
            return f"tensor {name} has shape {tuple(given[name].shape)}, the model's {tuple(tensor.shape)}"
    return None


def test_batches(
    run: RunConfig | str | RunRecord,
    store: RunStore | None = None,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the run's own test split (its ``test_subset``), normalized as in training: what
    :func:`load_model`'s network takes. A batch size that is not a whole number >= 1 or an unknown device
    is a ConfigError line before the store or the data is read."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    device = _device(device)
    config = run if isinstance(run, RunConfig) else stored_run(run, store).config
    spec = get_spec(config.dataset)
    _, test = load_dataset(config.dataset, data_dir)
    if config.test_subset is not None:
        index = balanced_subset(test.y, config.test_subset, spec.num_classes)
        test = Split(test.x[index], test.y[index])
    pad_to = input_padding(config.model, spec)
    loader = BatchLoader(
        test, spec, batch_size=batch_size, device=device, pad_to=pad_to, channels_last=config.channels_last
    )
    return loader.epoch(0)


@dataclass(frozen=True)
class Evaluation:
    """A stored run's final test accuracy beside the one re-measured on ``device`` (its short name)."""

    run_id: str
    stored: float
    measured: float
    trained_on: str
    device: str
    tolerance: float

    @property
    def difference(self) -> float:
        return self.measured - self.stored

    @property
    def agrees(self) -> bool:
        return abs(self.difference) <= self.tolerance

    def lines(self) -> list[str]:
        """``deepcls evaluate``'s answer: where it trained and was measured, both accuracies, the verdict."""
        allowed = "bit-equal on the device it trained on" if self.tolerance == 0 else f"within {self.tolerance:g}"
        return [
            f"run {self.run_id}: trained on {self.trained_on}, evaluated on {self.device}",
            f"final test accuracy: stored {self.stored:.2f}, re-measured {self.measured:.2f}",
            f"difference {self.difference:+.2f} points: {'agrees' if self.agrees else 'DIFFERS'} ({allowed})",
        ]


def training_threads(record: RunRecord) -> int | None:
    """The CPU thread count a run trained with, from its metrics.json device (``cpu: ... x4 threads``)."""
    found = re.search(r" x(\d+) threads$", str(record.metrics.get("device", "")))
    return int(found.group(1)) if found else None


def evaluate_run(
    run: RunConfig | str | RunRecord,
    store: RunStore | None = None,
    data_dir: str | os.PathLike | None = None,
    device: str = "auto",
) -> Evaluation:
    """Re-measure a stored run's final test accuracy with its kept weights on ``device`` (on the CPU
    with the thread count it trained with, so that its own machine reproduces it exactly)."""
    checked = resolve_device(device)  # an unknown device is refused before the store is read
    store = store or RunStore()
    record = stored_run(run, store)
    model = load_model(record, store)
    config = record.config
    resolved = configure(checked)
    precision = run_precision(config.to_dict(), record.metrics)
    with thread_count(training_threads(record) if resolved.type == "cpu" else None):
        trainer = Trainer(dataclasses.replace(config, device=str(resolved), precision=precision), data_dir)
        trainer.model.load_state_dict(model.state_dict())
        _, accuracy, _ = trainer.evaluate()
        here = device_name(resolved)
        same_class = same_numeric_class(record.metrics, numeric_class(resolved, trainer.precision))
    trained_on = str(record.metrics.get("device", "?"))
    return Evaluation(
        run_id=record.run_id,
        stored=float(record.metrics["final_test_acc"]),
        measured=float(accuracy),
        trained_on=trained_on,
        device=here,
        tolerance=0.0 if here == trained_on and same_class else OTHER_DEVICE_TOLERANCE,
    )
