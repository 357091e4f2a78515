"""The checkpoint side of the run store, and where a run starts training.

deepcls.store.runs keeps finished runs; this module keeps what an unfinished or extendable run
continues from, in ``<root>/.cache/checkpoints`` (ignored by git). ``<run-id>.pt`` is the resume
checkpoint written after every epoch (or every few seconds' worth of them), so an interrupted run
resumes and ends with the same history. The final state of a complete run whose schedule does not
depend on its length (``config.extendable``) is kept as ``<run-id>.final.pt``, so a longer run of
the same config (Table 3's 20, 30 and 50 epochs) continues from it instead of replaying the shared
epochs. Every file of a run here is named ``<run-id>.*``: RunStore.adopt, replacing a run, removes
them all. Checkpoints are read with ``weights_only=True`` (never unpickled); a damaged one is
discarded with one warning line and the run starts over.

:func:`start_point` is the one place that decides where a run starts: its finished stored run
(reused as is), its resume checkpoint, the kept final state of a shorter run of the same lineage,
or a fresh model. A stored run or checkpoint trained on other data (its data fingerprint differs)
is never reused or continued. deepcls.engine.fit only restores the state it is handed.
"""

from __future__ import annotations

import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepcls.atomic import write_with
from deepcls.config import RunConfig
from deepcls.data import OFFICIAL_FINGERPRINTS, dataset_path
from deepcls.errors import DataError
from deepcls.store.runs import FINISHED, RunRecord, RunStore, warn


# ------------------------------------------------------------------ where a run starts
@dataclass(frozen=True)
class Start:
    """Where a run starts: the finished stored run to return without training (``reuse``), else the
    checkpoint ``state`` to restore, read from ``source`` (``extended_from``: the shorter run whose
    kept final state it continues, if any), else (all None) a fresh model at epoch 0."""

    reuse: RunRecord | None = None
    state: dict[str, Any] | None = None
    source: Path | None = None
    extended_from: str | None = None


def start_point(
    store: RunStore, config: RunConfig, data_dir: str | None = None, *, force: bool = False, resume: bool = True
) -> Start:
    """Where ``config`` starts training in ``store``, given the data file in ``data_dir``.

    Its finished stored run, unless ``force`` (DataError when that run was trained on other data
    than the file at hand); else its resume checkpoint; else the kept final state of the longest
    complete shorter run of its lineage (the same trajectory, M of N epochs already run). A
    checkpoint from other data is discarded with one warning line. ``force`` starts from scratch,
    dropping the resume checkpoint. With ``resume=False`` only the stored run is looked for and no
    checkpoint is read, dropped or discarded: the call to make before taking ``store.claim(config)``
    (and before the data is loaded); the full call is made again under the claim.
    """
    if force:
        if resume:
            drop_checkpoint(store, config)
        return Start()
    if (record := _reusable(store, config, data_dir)) is not None:
        return Start(reuse=record)
    if not resume:
        return Start()
    from deepcls.data import fingerprint  # the dataset's file (and torch): only where a run trains

    data = fingerprint(config.dataset, data_dir)
    source, state = checkpoint_path(store, config), _resumable(store, config, data)
    if state is None and (prefix := prefix_run(store, config)) is not None:
        source, state = final_path(store, prefix), _resumable(store, prefix, data, final=True)
        if state is not None:  # the same trajectory, M of N epochs already run
            state["extended_from"] = prefix.run_id
    if state is None:
        return Start()
    return Start(state=state, source=source, extended_from=state.get("extended_from"))


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
    from deepcls.data import fingerprint

    current = fingerprint(config.dataset, data_dir)
    if current is not None and current != stored_fingerprint(record):
        raise DataError(
            f"run {config.run_id} was trained on a different {config.dataset}.npz than "
            f"{dataset_path(config.dataset, data_dir)} (data fingerprint {stored_fingerprint(record)[:12]} there, "
            f"{current[:12]} here); use the file it was trained on, or retrain on this one with --force"
        )
    return dataclasses.replace(record, reused=True)


def _resumable(store: RunStore, config: RunConfig, data: str | None, final: bool = False) -> dict[str, Any] | None:
    """The resume (or, with ``final``, the kept final) checkpoint of ``config`` if it was trained on
    the same data; one from other data is discarded with one warning line."""
    state = load_final(store, config) if final else load_checkpoint(store, config)
    if state is not None and state.get("data_fingerprint", OFFICIAL_FINGERPRINTS[config.dataset]) != data:
        path = final_path(store, config) if final else checkpoint_path(store, config)
        discard(path, "was trained on other data (its data fingerprint differs)")
        return None
    return state


# ------------------------------------------------------------------ resume checkpoints
def checkpoint_path(store: RunStore, config: RunConfig) -> Path:
    """``.cache/checkpoints/<run-id>.pt``: the resume checkpoint of an unfinished run."""
    return store.checkpoints / f"{config.run_id}.pt"


def save_checkpoint(store: RunStore, config: RunConfig, state: dict[str, Any]) -> None:
    """Write the resume checkpoint of ``config`` atomically. torch serialises into memory and Python
    writes the bytes: on a full disk torch's own writer fails with "enforce fail ... unexpected pos",
    Python's with "No space left on device" and the path."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    with store.writing():
        write_with(checkpoint_path(store, config), lambda tmp: tmp.write_bytes(buffer.getbuffer()), suffix=".pt")


def load_checkpoint(store: RunStore, config: RunConfig) -> dict[str, Any] | None:
    """The resume checkpoint, or None; a damaged one is discarded with one warning line."""
    return _load_state(checkpoint_path(store, config))


def drop_checkpoint(store: RunStore, config: RunConfig) -> None:
    """Remove the resume checkpoint of ``config``, if there is one."""
    checkpoint_path(store, config).unlink(missing_ok=True)


def discard(path: Path, reason: str) -> None:
    """Remove a checkpoint that cannot be used, saying why in one line."""
    warn(f"checkpoint {path} {reason}; discarded, the run starts over")
    path.unlink(missing_ok=True)


def checkpointed_epochs(store: RunStore, config: RunConfig) -> int:
    """Epochs an unfinished run has in its resume checkpoint (0 without one, or a damaged one)."""
    path = checkpoint_path(store, config)
    state = _read_checkpoint(path, mmap=True) if path.exists() else None
    return len(state["history"]) if state else 0


def progress(store: RunStore, config: RunConfig) -> str | None:
    """How far an unfinished run has got: epochs in its resume checkpoint, and whether it
    is training now; None when there is neither."""
    parts = []
    path = checkpoint_path(store, config)
    if path.exists():  # mmap: reads the history without pulling the weights into memory
        state = _read_checkpoint(path, mmap=True)
        if state is None:
            parts.append("checkpoint damaged, the run will start over")
        else:
            parts.append(f"{len(state['history'])}/{config.epochs} epochs checkpointed")
    if store.training(config):
        parts.append("training now")
    return ", ".join(parts) or None


# ------------------------------------------------------------------ kept final states
def final_path(store: RunStore, config: RunConfig) -> Path:
    """``.cache/checkpoints/<run-id>.final.pt``: the kept final state of a complete extendable run."""
    return store.checkpoints / f"{config.run_id}.final.pt"


def finish_checkpoint(store: RunStore, config: RunConfig, status: str) -> None:
    """Drop the resume checkpoint; keep it as the final state when a longer run can extend it."""
    path = checkpoint_path(store, config)
    if status == "complete" and config.extendable and path.exists():
        os.replace(path, final_path(store, config))
    else:
        path.unlink(missing_ok=True)


def prefix_run(store: RunStore, config: RunConfig) -> RunConfig | None:
    """The longest complete shorter run of the same config whose final state is kept, if any."""
    if not config.extendable:
        return None
    for epochs in range(config.epochs - 1, 0, -1):
        shorter = config.replace(epochs=epochs)
        if final_path(store, shorter).exists() and store.status(shorter) == "complete":
            return shorter
    return None


def load_final(store: RunStore, config: RunConfig) -> dict[str, Any] | None:
    """The kept final state of a complete run, or None; a damaged one is discarded with one line."""
    return _load_state(final_path(store, config))


# ------------------------------------------------------------------ reading
def _load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    state = _read_checkpoint(path)
    if state is None:
        warn(f"checkpoint {path} is damaged; discarded, the run starts over")
        path.unlink(missing_ok=True)
    return state


def _read_checkpoint(path: Path, mmap: bool = False) -> dict[str, Any] | None:
    """A checkpoint's state dict (never unpickled), or None when it is damaged or not one of ours.
    torch is imported here, not with the module: tables that only ask a run's progress stay torch-free
    until a checkpoint exists."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception:  # truncated, not a zip, bad pickle opcodes: torch raises many types
        return None
    ok = isinstance(state, dict) and "history" in state
    return state if ok and isinstance(state["history"], list) else None
