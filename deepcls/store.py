"""The run store: ``<root>/runs/<run-id>/`` written atomically, cache lookup, resume checkpoints.

A run directory holds ``config.json``, ``history.csv``, ``metrics.json``,
``confusion.npy`` and ``samples.npz``. It is assembled in a temporary directory and
renamed into place, so a killed process never leaves a half-written run. Epoch
checkpoints for resuming live in ``<root>/.cache/checkpoints`` (ignored by git). The final
state of a complete run whose schedule does not depend on its length (``config.extendable``)
is kept there as ``<run-id>.final.pt``, so a longer run of the same config (Table 3's 20, 30
and 50 epochs) continues from it instead of replaying the shared epochs. ``claim`` locks a run
(``<root>/.cache/locks``) while it trains, so parallel notebooks or shells never train it twice.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.fileio import write_with

try:
    import fcntl
except ImportError:  # Windows: no locking
    fcntl = None  # type: ignore[assignment]

FINISHED = ("complete", "diverged")  # outcomes that are reused instead of retrained


def resolve_results_dir(results_dir: str | os.PathLike | None = None) -> Path:
    """``results_dir`` if given, else ``$DEEPCLS_RESULTS_DIR``, else ``./results``."""
    if results_dir is not None:
        return Path(results_dir)
    return Path(os.environ.get("DEEPCLS_RESULTS_DIR") or "results")


@dataclass(frozen=True)
class RunRecord:
    """One stored run, as read back from its directory."""

    path: Path
    config: RunConfig
    history: pd.DataFrame
    metrics: dict[str, Any]
    confusion: np.ndarray | None
    samples: dict[str, np.ndarray]
    reused: bool = False  # True when fit() returned it without training

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.metrics["status"]


class RunStore:
    """Read and write runs under one results directory."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = resolve_results_dir(root)
        self.runs = self.root / "runs"
        self.checkpoints = self.root / ".cache" / "checkpoints"

    # ------------------------------------------------------------------ paths
    def run_dir(self, run: RunConfig | str) -> Path:
        return self.runs / (run.run_id if isinstance(run, RunConfig) else run)

    def ensure_writable(self) -> None:
        """Fail early, with one line, if runs cannot be written here."""
        try:
            for folder in (self.runs, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=folder):
                    pass
        except OSError as err:
            raise StoreError(f"results directory {self.root} is not writable ({err.strerror or err})") from None

    # ------------------------------------------------------------------ lookup
    def status(self, config: RunConfig) -> str | None:
        """The stored outcome of a config, or None when it has never finished."""
        path = self.run_dir(config) / "metrics.json"
        if not path.exists():
            return None
        return json.loads(path.read_text())["status"]

    def has(self, config: RunConfig) -> bool:
        return self.status(config) in FINISHED

    def run_ids(self) -> list[str]:
        if not self.runs.exists():
            return []
        # names starting with "." are save()'s temporaries (.tmp-*, .old-*), left by a killed process
        return sorted(
            p.name for p in self.runs.iterdir() if not p.name.startswith(".") and (p / "metrics.json").exists()
        )

    def load(self, run: RunConfig | str) -> RunRecord:
        path = self.run_dir(run)
        if not (path / "metrics.json").exists():
            raise StoreError(f"no stored run {path.name!r} in {self.runs}")
        confusion = path / "confusion.npy"
        sample_arrays: dict[str, np.ndarray] = {}
        if (path / "samples.npz").exists():
            with np.load(path / "samples.npz", allow_pickle=False) as npz:
                sample_arrays = {k: npz[k] for k in npz.files}
        return RunRecord(
            path=path,
            config=RunConfig.from_dict(json.loads((path / "config.json").read_text())),
            history=pd.read_csv(path / "history.csv"),
            metrics=json.loads((path / "metrics.json").read_text()),
            confusion=np.load(confusion, allow_pickle=False) if confusion.exists() else None,
            samples=sample_arrays,
        )

    def frame(self, runs: Iterable[RunConfig | str] | None = None) -> pd.DataFrame:
        """One row per stored run: config fields and scalar metrics as columns."""
        ids = self.run_ids() if runs is None else [r.run_id if isinstance(r, RunConfig) else r for r in runs]
        rows = []
        for run_id in ids:
            if not (self.run_dir(run_id) / "metrics.json").exists():
                continue
            record = self.load(run_id)
            row = {"run_id": run_id, **record.config.identity()}
            row["augment"] = ",".join(record.config.augment) or "none"
            row.update({k: v for k, v in record.metrics.items() if np.isscalar(v) or v is None})
            rows.append(row)
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ writing
    def save(
        self,
        config: RunConfig,
        history: pd.DataFrame,
        metrics: dict[str, Any],
        confusion: np.ndarray | None = None,
        samples: dict[str, np.ndarray] | None = None,
    ) -> Path:
        """Write a run directory atomically (replacing an older one) and return its path."""

        def write(tmp: Path) -> None:
            (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
            history.to_csv(tmp / "history.csv", index=False)
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            if confusion is not None:
                np.save(tmp / "confusion.npy", confusion)
            if samples:
                np.savez(tmp / "samples.npz", **samples)

        return self._write_run(config.run_id, write)

    def save_files(self, run_id: str, files: Mapping[str, bytes]) -> Path:
        """Write a run directory trained elsewhere from its files' bytes (``run_files``), atomically."""
        if not all(_plain_name(name) for name in (run_id, *files)):  # the names came over the network
            raise StoreError(f"refusing to store run {run_id!r} with files {sorted(files)}")

        def write(tmp: Path) -> None:
            for name, data in files.items():
                (tmp / name).write_bytes(data)

        return self._write_run(run_id, write)

    def run_files(self, run: RunConfig | str) -> dict[str, bytes]:
        """The files of a stored run as ``{name: bytes}`` (what ``save_files`` writes)."""
        return {p.name: p.read_bytes() for p in sorted(self.run_dir(run).iterdir()) if p.is_file()}

    def _write_run(self, run_id: str, write: Callable[[Path], None]) -> Path:
        """``write(tmp)`` fills a temporary directory, which then replaces ``runs/<run_id>``."""
        self.runs.mkdir(parents=True, exist_ok=True)
        target = self.run_dir(run_id)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=self.runs))
        try:
            write(tmp)
            if target.exists():
                old = target.with_name(f".old-{target.name}-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    # ------------------------------------------------------------------ locking
    @contextmanager
    def claim(self, config: RunConfig) -> Iterator[None]:
        """Hold an exclusive lock on ``config`` while it trains; wait (with a note) if another
        process holds it. All lengths of an extendable config share one lock, so a 50-epoch run
        started beside its 30-epoch sibling waits and then continues it."""
        path = self._lock_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    print(
                        f"deepcls: {config.run_id}: waiting for another process training this run "
                        "(or another length of it)",
                        file=sys.stderr,
                        flush=True,
                    )
                    fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _lock_path(self, config: RunConfig) -> Path:
        return self.root / ".cache" / "locks" / f"{config.lineage.run_id}.lock"

    def training(self, config: RunConfig) -> bool:
        """True while some process holds the lock of ``config`` (this or another length of it)."""
        path = self._lock_path(config)
        if fcntl is None or not path.exists():
            return False
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def progress(self, config: RunConfig) -> str | None:
        """How far an unfinished run has got: epochs in its resume checkpoint, and whether it
        is training now; None when there is neither."""
        parts = []
        path = self.checkpoint_path(config)
        if path.exists():  # mmap: reads the history without pulling the weights into memory
            done = len(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["history"])
            parts.append(f"{done}/{config.epochs} epochs checkpointed")
        if self.training(config):
            parts.append("training now")
        return ", ".join(parts) or None

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self, config: RunConfig) -> Path:
        return self.checkpoints / f"{config.run_id}.pt"

    def save_checkpoint(self, config: RunConfig, state: dict[str, Any]) -> None:
        write_with(self.checkpoint_path(config), lambda tmp: torch.save(state, tmp), suffix=".pt")

    def load_checkpoint(self, config: RunConfig) -> dict[str, Any] | None:
        path = self.checkpoint_path(config)
        if not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def drop_checkpoint(self, config: RunConfig) -> None:
        self.checkpoint_path(config).unlink(missing_ok=True)

    def final_path(self, config: RunConfig) -> Path:
        return self.checkpoints / f"{config.run_id}.final.pt"

    def finish_checkpoint(self, config: RunConfig, status: str) -> None:
        """Drop the resume checkpoint; keep it as the final state when a longer run can extend it."""
        path = self.checkpoint_path(config)
        if status == "complete" and config.extendable and path.exists():
            os.replace(path, self.final_path(config))
        else:
            path.unlink(missing_ok=True)

    def prefix_run(self, config: RunConfig) -> RunConfig | None:
        """The longest complete shorter run of the same config whose final state is kept, if any."""
        if not config.extendable:
            return None
        for epochs in range(config.epochs - 1, 0, -1):
            shorter = config.replace(epochs=epochs)
            if self.final_path(shorter).exists() and self.status(shorter) == "complete":
                return shorter
        return None

    def load_final(self, config: RunConfig) -> dict[str, Any]:
        return torch.load(self.final_path(config), map_location="cpu", weights_only=True)


def _plain_name(name: str) -> bool:
    """A file name of its own: no folder, not hidden (a store's temporaries start with ".")."""
    return bool(name) and not name.startswith(".") and Path(name).name == name
