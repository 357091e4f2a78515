"""TensorBoard logs of runs' histories: one folder per run id under a directory the user names, so
that many runs show side by side in one viewer (``tensorboard --logdir DIR``).

Each epoch is one step (``global_step`` = the epoch number, 1-based as in ``history.csv``) holding a
scalar per history column, under the tags of :data:`TAGS` (accuracies in %, as stored). A run's
folder holds its history once, whatever happened before: opening a log for a run removes the event
files its folder holds and writes the epochs the run already has (restored from a checkpoint,
continued from a shorter run, or read from the store), then the epochs trained now are added one by
one, each flushed as it ends. So a resumed run whose killed call had logged epochs past its last
checkpoint never shows an epoch twice, and a run trained again with ``force`` shows only its new
history.

The event files are written by ``torch.utils.tensorboard`` (it needs the optional ``tensorboard``
package, the ``deepcls[tensorboard]`` extra), imported only when a log is asked for: importing
deepcls never imports it.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd

from deepcls.api import check, shown
from deepcls.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from deepcls.config import RunConfig
    from deepcls.store.runs import RunRecord, RunStore

INSTALL = "pip install 'deepcls[tensorboard]'"
STEP = "epoch"  # the history column that numbers the steps
TAGS = {  # history column -> tag; TensorBoard groups tags by the part before "/" (train beside test)
    "train_loss": "loss/train",
    "test_loss": "loss/test",
    "train_acc": "accuracy/train",
    "test_acc": "accuracy/test",
    "lr": "lr",
    "images_per_s": "speed/images_per_s",
    "seconds": "speed/epoch_seconds",
}
EVENT_FILES = "events.out.tfevents.*"  # the names SummaryWriter gives its files


def log_dir(value: Any, caller: str = "dc.fit") -> Path | None:
    """The folder ``value`` names for TensorBoard logs, created and writable, or None (logging off).

    Checked before anything trains, so that a typo or the missing extra costs no run: a value that
    is no path, names a file or cannot be written, or a missing ``tensorboard`` package, is one
    ConfigError line (``caller`` names the function the value was given to)."""
    check(caller, "tensorboard", value, str | os.PathLike | None)
    if value is None:
        return None
    path = os.fspath(value)
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise ConfigError(f"{caller}: tensorboard must name a folder, got {shown(value)}")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"tensorboard folder {folder} is a file, not a folder")
    summary_writer()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:  # a parent that is a file, no permission, a name the file system refuses
        raise ConfigError(f"tensorboard folder {folder} cannot be written ({err.strerror or err})") from None
    return folder


def summary_writer() -> type[SummaryWriter]:
    """``torch.utils.tensorboard.SummaryWriter``; one ConfigError line saying how to install it when
    the ``tensorboard`` package is missing."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; its absence is said here, in one line)
        from torch.utils.tensorboard import SummaryWriter
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] != "tensorboard":
            raise
        raise ConfigError(f"TensorBoard logs need the tensorboard package: {INSTALL}") from None
    return SummaryWriter


class EpochLog:
    """The TensorBoard log of one run: its history so far written on opening, in place of whatever
    its folder held, then one step per epoch as the run trains (:meth:`add`).

    ``end`` is when the last epoch of ``history`` ended (default now): the epochs written on opening
    get wall times that count back from it by their ``seconds``, so that TensorBoard's relative-time
    axis shows how long they took."""

    def __init__(
        self,
        folder: Path,
        run_id: str,
        history: Sequence[Mapping[str, Any]] | pd.DataFrame,
        end: float | None = None,
    ) -> None:
        run_folder = folder / run_id
        for stale in run_folder.glob(EVENT_FILES):
            stale.unlink(missing_ok=True)
        # purge_step=1: a viewer that already read the removed files drops what it holds from them
        self.writer = summary_writer()(log_dir=str(run_folder), purge_step=1)
        rows = history.to_dict("records") if isinstance(history, pd.DataFrame) else list(history)
        for row, walltime in zip(rows, _end_times(rows, time.time() if end is None else end)):
            self._write(row, walltime)
        self.writer.flush()

    def add(self, row: Mapping[str, Any]) -> None:
        """One epoch's history row, on disk when this returns (a running TensorBoard shows it)."""
        self._write(row)
        self.writer.flush()

    def _write(self, row: Mapping[str, Any], walltime: float | None = None) -> None:
        step = int(row[STEP])
        for column, value in row.items():
            if column != STEP and _finite(value):  # a column a run stored before it existed is NaN
                self.writer.add_scalar(TAGS.get(column, column), float(value), step, walltime=walltime)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> EpochLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def write_record(folder: Path, record: RunRecord) -> None:
    """A stored run's history as its log, so that the viewer shows a run that is reused rather than
    trained (by ``fit``, or found stored by a grid) exactly as ``history.csv`` holds it."""
    with EpochLog(folder, record.run_id, record.history, end=_timestamp(record.metrics.get("finished_at"))):
        pass


def write_stored(folder: Path, store: RunStore, runs: Iterable[RunConfig | str]) -> None:
    """:func:`write_record` for each of ``runs`` that ``store`` holds (a missing or damaged one is skipped)."""
    for run in runs:
        if (record := store.record(run)) is not None:
            write_record(folder, record)


def _end_times(rows: Sequence[Mapping[str, Any]], end: float) -> list[float]:
    """When each row's epoch ended, counting back from ``end`` by the later epochs' ``seconds``."""
    times, t = [], end
    for row in reversed(rows):
        times.append(t)
        seconds = row.get("seconds")
        t -= float(seconds) if _finite(seconds) else 0.0
    return times[::-1]


def _timestamp(text: Any) -> float | None:
    """An ISO time (metrics.json's ``finished_at``) as seconds since the epoch; None when unreadable."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
