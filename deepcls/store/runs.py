"""The run store: ``<root>/runs/<run-id>/`` written atomically, cache lookup, run locks.

A run directory holds ``config.json``, ``history.csv``, ``metrics.json``, ``confusion.npy``,
``samples.npz``, ``predictions.npz`` (every test image's predicted label; runs trained before
0.3.0 lack it) and, when asked, ``weights.safetensors`` (:data:`RUN_FILES`; deepcls.store.weights:
by default a complete run's weights are kept in ``<root>/.cache/weights``). It is assembled in a
temporary directory and swapped into place (one atomic exchange on Linux; elsewhere two renames whose middle state
the next ``RunStore`` restores), so a reader sees the old run or the new one, never a
half-written one or none. A run folder with a damaged file is reported in one line and
treated as missing. The checkpoints that unfinished and extendable runs continue from live in
``<root>/.cache/checkpoints`` (ignored by git), which this module only creates and cleans up:
reading and writing them, and deciding where a run starts, is deepcls.store.checkpoints's job
(that module builds on this one); every file of a run there is named ``<run-id>.*``, so replacing a
run (``adopt``) removes them all. ``claim`` locks a run
(``<root>/.cache/locks``) while it trains, so parallel notebooks or shells never train it twice.
The locks are ``filelock``'s, so they hold on every platform (Windows included).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import math
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import filelock
import numpy as np
import pandas as pd

from deepcls.api import checked
from deepcls.atomic import temporary_folder
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.numeric import class_label

FINISHED = ("complete", "diverged")  # outcomes that are reused instead of retrained
RUN_FILES = frozenset(  # every file a run folder can hold: what save() writes, and the trained weights
    {"config.json", "history.csv", "metrics.json", "confusion.npy", "samples.npz", "predictions.npz"}
    | {"weights.safetensors"}
)
_RENAME_EXCHANGE = 2  # renameat2 flag: swap two paths atomically (Linux >= 3.15)


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
    predictions: dict[str, np.ndarray] | None = None  # per test image: ``index``, ``true``, ``predicted``
    reused: bool = False  # True when fit() returned it without training

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.metrics["status"]


class DamagedRun(StoreError):
    """A stored run folder with a file that cannot be read back: ``file`` (its name) and ``reason``."""

    def __init__(self, message: str, file: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.file, self.reason = file, reason


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"deepcls: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


class RunStore:
    """Read and write runs under one results directory."""

    @functools.partial(checked, name="dc.RunStore")  # a call that does not fit is one ConfigError line
    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = resolve_results_dir(root)
        if "\0" in str(self.root):
            raise StoreError(f"results directory {str(self.root)!r} is no path (it holds a NUL character)")
        try:
            if os.path.lexists(self.root):  # a link loop or a dangling link: said, not read as an empty store
                os.stat(self.root)
            if self.root.exists() and not self.root.is_dir():
                raise StoreError(f"results directory {self.root} is a file, not a folder")
            self.runs = self.root / "runs"
            self.checkpoints = self.root / ".cache" / "checkpoints"
            self._warned: set[str] = set()
            self.recover()
        except OSError as err:  # a name the file system refuses (too long, ...), a folder it may not read
            raise StoreError(f"results directory {self.root} cannot be read ({err.strerror or err})") from None

    # ------------------------------------------------------------------ paths
    def run_dir(self, run: RunConfig | str) -> Path:
        """``runs/<run-id>``; StoreError for a name that is not a folder of its own there (a run id read
        from a file or a command line, such as ``../x``, never reaches outside the store)."""
        run_id = run.run_id if isinstance(run, RunConfig) else run
        if not (isinstance(run_id, str) and _plain_name(run_id)):
            raise StoreError(f"{run_id!r} is not a run id (a folder name under {self.runs})")
        return self.runs / run_id

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
    def status(self, config: RunConfig | str) -> str | None:
        """The stored outcome of a run, or None when it has never finished or is damaged."""
        record = self.record(config)
        return None if record is None else record.metrics["status"]

    def has(self, config: RunConfig) -> bool:
        return self.status(config) in FINISHED

    def record(self, run: RunConfig | str) -> RunRecord | None:
        """The stored run, or None when there is none or it is damaged (said once, in one line)."""
        try:
            return self.load(run)
        except DamagedRun as err:
            self._warn_once(str(err))
            return None
        except StoreError:
            return None

    def run_ids(self) -> list[str]:
        if not self.runs.exists():
            return []
        # names starting with "." are save()'s temporaries (.tmp-*, .old-*), left by a killed process
        return sorted(
            p.name for p in self.runs.iterdir() if not p.name.startswith(".") and (p / "metrics.json").exists()
        )

    def load(self, run: RunConfig | str) -> RunRecord:
        """The stored run; StoreError when there is none, DamagedRun naming the file that cannot be read."""
        run_id = run.run_id if isinstance(run, RunConfig) else run
        path = self._readable_dir(run_id)
        if not (path / "metrics.json").exists():
            if path.is_dir() and any(path.iterdir()):  # save() swaps whole folders in: one lost its metrics
                message = f"run {run_id} is damaged, treated as missing (retrained when asked): {path / 'metrics.json'}"
                raise DamagedRun(f"{message} (missing)", "metrics.json", "missing")
            raise StoreError(f"no stored run {run_id!r} in {self.runs}")
        name = "metrics.json"
        try:
            metrics = json.loads((path / name).read_text(encoding="utf-8"))
            if not isinstance(metrics, dict) or metrics.get("status") not in (*FINISHED, "failed"):
                raise ValueError("no valid status")
            name = "config.json"
            config = RunConfig.from_dict(json.loads((path / name).read_text(encoding="utf-8")))
            if config.run_id != run_id:
                raise ValueError(f"it hashes to {config.run_id}")
            name = "history.csv"
            history = pd.read_csv(path / name)
            if "epoch" not in history.columns:
                raise ValueError("no epoch column")
            name = "confusion.npy"
            confusion = np.load(path / name, allow_pickle=False) if (path / name).exists() else None
            name = "samples.npz"
            samples: dict[str, np.ndarray] = {}
            if (path / name).exists():
                with np.load(path / name, allow_pickle=False) as npz:
                    samples = {k: npz[k] for k in npz.files}
            name = "predictions.npz"
            predictions = None
            if (path / name).exists():
                with np.load(path / name, allow_pickle=False) as npz:
                    predictions = {k: npz[k] for k in ("index", "true", "predicted")}
        except Exception as err:  # any damage: bad JSON, encoding, CSV, array, a config that no longer validates
            reason = f"{type(err).__name__}: {err}"[:200]
            raise DamagedRun(
                f"run {run_id} is damaged, treated as missing (retrained when asked): {path / name} ({reason})",
                name,
                reason,
            ) from None
        record = RunRecord(
            path=path,
            config=config,
            history=history,
            metrics=metrics,
            confusion=confusion,
            samples=samples,
            predictions=predictions,
        )
        if record.status in FINISHED and (problem := disagreement(record)):
            raise DamagedRun(
                f"run {run_id} is damaged, treated as missing (retrained when asked): {path / 'metrics.json'} "
                f"({problem})",
                "metrics.json",
                problem,
            )
        return record

    def _readable_dir(self, run_id: str) -> Path:
        """The run's folder; while save() is between its two renames (no atomic exchange), the old one."""
        path = self.run_dir(run_id)
        aside = self._aside(path)
        return aside if not path.exists() and aside.exists() else path

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warn(message)

    def frame(self, runs: Iterable[RunConfig | str] | None = None) -> pd.DataFrame:
        """One row per stored run: config fields, scalar metrics and the run's numeric class (its label,
        deepcls.numeric.class_label) as columns."""
        ids = self.run_ids() if runs is None else [r.run_id if isinstance(r, RunConfig) else r for r in runs]
        rows = []
        for run_id in ids:
            record = self.record(run_id)
            if record is None:
                continue
            row = {"run_id": run_id, **record.config.identity()}
            row["augment"] = ",".join(record.config.augment) or "none"
            row.update({k: v for k, v in record.metrics.items() if np.isscalar(v) or v is None})
            row["numeric_class"] = class_label(record.metrics, record.config.to_dict())
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
        weights: bytes | None = None,
        *,
        predictions: dict[str, np.ndarray] | None = None,
    ) -> Path:
        """Write a run directory atomically (replacing an older one) and return its path; ``weights``
        (safetensors bytes, deepcls.store.weights) go in it as ``weights.safetensors``, ``predictions``
        (deepcls.engine.summary.predictions) compressed as ``predictions.npz``."""

        def write(tmp: Path) -> None:
            (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2, allow_nan=False) + "\n")
            history.to_csv(tmp / "history.csv", index=False)
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            if confusion is not None:
                np.save(tmp / "confusion.npy", confusion)
            if samples:
                np.savez(tmp / "samples.npz", **samples)
            if predictions is not None:
                np.savez_compressed(tmp / "predictions.npz", **predictions)
            if weights is not None:
                (tmp / "weights.safetensors").write_bytes(weights)

        return self._write_run(config.run_id, write)

    def save_files(self, run_id: str, files: Mapping[str, bytes]) -> Path:
        """Write a run directory trained elsewhere from its files' bytes (``run_files``), atomically."""
        # the names came over the network: a plain run id, and only the files a run folder holds
        if not _plain_name(run_id) or not set(files) <= RUN_FILES:
            raise StoreError(f"refusing to store run {run_id!r} with files {sorted(files)}")

        def write(tmp: Path) -> None:
            for name, data in files.items():
                (tmp / name).write_bytes(data)

        return self._write_run(run_id, write)

    def run_files(self, run: RunConfig | str) -> dict[str, bytes]:
        """The files of a stored run as ``{name: bytes}`` (what ``save_files`` writes)."""
        return {p.name: p.read_bytes() for p in sorted(self.run_dir(run).iterdir()) if p.is_file()}

    def _write_run(self, run_id: str, write: Callable[[Path], None]) -> Path:
        """``write(tmp)`` fills a temporary directory, which then replaces ``runs/<run_id>`` atomically."""
        self.runs.mkdir(parents=True, exist_ok=True)
        target = self.run_dir(run_id)
        with self.writing():
            tmp = temporary_folder(self.runs, f".tmp-{target.name}-")  # the umask's mode, not mkdtemp's 0700
            try:
                write(tmp)
                tmp = self._swap_in(tmp, target)
            finally:
                _remove(tmp)  # the half-written run, or the replaced one
        return target

    def _swap_in(self, new: Path, target: Path) -> Path:
        """Put the folder ``new`` (in ``runs/``, named as a temporary that recover() removes) at
        ``target``, so that readers see the old run or the new one; return where the old one is now
        (to be removed). One atomic exchange where the system has it, else two renames whose middle
        state readers see through and the next start restores. The caller holds ``writing()``."""
        if not os.path.lexists(target):
            os.replace(new, target)
            return new
        if _exchange(new, target):
            return new
        aside = self._aside(target)
        os.replace(target, aside)  # killed now: recover() puts it back, readers find it
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(aside, target)
            raise
        return aside

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A new empty folder under ``runs/`` to assemble runs in before :meth:`adopt` moves them in,
        removed on exit, or by the next start after a kill. Writes are held while it lives, so no
        start removes it meanwhile."""
        self.runs.mkdir(parents=True, exist_ok=True)
        with self.writing():
            folder = temporary_folder(self.runs, ".tmp-import-")
            try:
                yield folder
            finally:
                _remove(folder)

    def adopt(self, config: RunConfig, folder: Path, replace: bool = False) -> bool:
        """Move the verified run folder ``folder`` (inside :meth:`staging`) in as the run of ``config``,
        in place of no run, a failed or damaged record of it, or (``replace``) a finished one; False,
        changing nothing, when a finished run is stored and not ``replace``. Under the run's lock
        (waits while it trains). The replaced run's resume checkpoint and kept final state go first:
        they hold its weights, and a longer run must not continue them as the new run's."""
        target = self.run_dir(config)
        with self.claim(config):
            try:
                finished = self.load(config).status in FINISHED
            except StoreError:  # none, or damaged
                finished = False
            if finished and not replace:
                return False
            for path in self.checkpoints.glob(f"{config.run_id}.*"):  # <run-id>.pt, <run-id>.final.pt
                path.unlink(missing_ok=True)
            _remove(self._swap_in(folder, target))
        return True

    @staticmethod
    def _aside(path: Path) -> Path:
        return path.with_name(f".old-{path.name}")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Held (shared) while writing a run or checkpoint, so recover() never takes a live temporary."""
        with self._store_lock("read"):
            yield

    @contextmanager
    def _store_lock(self, mode: Literal["read", "write"]) -> Iterator[bool]:
        """The store-wide lock: ``"read"`` is shared (any number of writers of runs and checkpoints, in
        any processes; waits while recover() holds it), ``"write"`` exclusive and never waiting
        (recover(); yields False while anyone holds it).

        ``filelock.FileLock`` is exclusive only, so this is ``filelock.ReadWriteLock``: SQLite's
        shared/exclusive transaction locks on ``store.lock.db``, which the operating system drops with
        a killed process, as it did the ``flock`` this replaces (a reference count in a file would not
        be, and one crash would stop recovery for good). A new instance per hold, not the per-path
        singleton: two stores in one process, or two threads, must be two holders, as two ``flock``
        descriptors were."""
        path = self.root / ".cache" / "locks" / "store.lock.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.ReadWriteLock(path, is_singleton=False)
        try:
            try:
                if mode == "write":
                    lock.acquire_write(blocking=False)  # alone: filelock 3.21 rejects a timeout beside it
                else:
                    lock.acquire_read(timeout=-1)
                held = True
            except filelock.Timeout:
                held = False
            try:
                yield held
            finally:
                if held:
                    lock.release()
        finally:
            lock.close()  # its SQLite connection

    def recover(self) -> None:
        """Undo what a killed save() left: restore a run renamed aside whose replacement never
        arrived, remove temporaries (run folders and checkpoint files). Skipped while another
        process writes, and on a store this process cannot write."""
        found = [p for folder in (self.runs, self.checkpoints) if folder.is_dir() for p in folder.iterdir()]
        leftovers = [p for p in found if p.name.startswith((".tmp-", ".old-"))]
        if self.root.is_dir():  # archive imports of earlier versions staged beside the runs
            leftovers += [p for p in self.root.iterdir() if p.name.startswith(".merge-") and p.is_dir()]
        if not leftovers:
            return
        try:
            with self._store_lock("write") as held:
                if not held:
                    return
                for path in leftovers:
                    if path.name.startswith(".old-") and not os.path.lexists(live := path.with_name(path.name[5:])):
                        os.replace(path, live)
                        warn(f"restored run {live.name}, which an interrupted save had moved aside")
                    else:
                        _remove(path)
        except (OSError, sqlite3.Error):  # a read-only store: readers still see the runs (an aside one
            return  # through _readable_dir)

    # ------------------------------------------------------------------ locking
    @contextmanager
    def claim(self, config: RunConfig) -> Iterator[None]:
        """Hold an exclusive lock on ``config`` while it trains; wait (with a note) if another
        process holds it. All lengths of an extendable config share one lock, so a 50-epoch run
        started beside its 30-epoch sibling waits and then continues it."""
        lock = self._run_lock(config)
        if not _try_acquire(lock):
            print(
                f"deepcls: {config.run_id}: waiting for another process training this run (or another length of it)",
                file=sys.stderr,
                flush=True,
            )
            lock.acquire(timeout=-1)
        try:
            yield
        finally:
            lock.release()

    def _lock_path(self, config: RunConfig) -> Path:
        return self.root / ".cache" / "locks" / f"{config.lineage.run_id}.lock"

    def _run_lock(self, config: RunConfig) -> filelock.FileLock:
        """A new exclusive lock on the run's lock file. Not a singleton, so another ``RunStore`` (or
        call) in this process contends for it like another process; not thread-local, so the hold
        belongs to the claim (a generator may be closed from another thread), as a ``flock`` did."""
        path = self._lock_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(path, thread_local=False, is_singleton=False)

    def training(self, config: RunConfig) -> bool:
        """True while some process holds the lock of ``config`` (this or another length of it)."""
        if not self._lock_path(config).exists():
            return False
        lock = self._run_lock(config)
        if not _try_acquire(lock):
            return True
        lock.release()
        return False


def _try_acquire(lock: filelock.FileLock) -> bool:
    """Take ``lock`` if no one holds it, without waiting."""
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return False
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where the system cannot."""
    renameat2 = getattr(_libc(), "renameat2", None) if sys.platform.startswith("linux") else None
    if renameat2 is None:
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # e.g. a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _remove(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder with what it holds, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _plain_name(name: str) -> bool:
    """A file name of its own: no folder, not hidden (a store's temporaries start with ".")."""
    return bool(name) and not name.startswith(".") and Path(name).name == name


ACCURACIES = ("highest_train_acc", "highest_test_acc", "final_train_acc", "final_test_acc")


def disagreement(record: RunRecord) -> str | None:
    """Why a finished run's numbers cannot be one run's, or None: an accuracy that is no number from 0
    to 100 (metrics.json or history.csv), more epochs than its config, or metrics.json's summary
    disagreeing with its history (runs of every deepcls version hold what is checked here)."""
    history, metrics, epochs = record.history, record.metrics, record.config.epochs
    rows = len(history)
    for key in ACCURACIES:
        value = metrics.get(key)
        if value is not None and not _percent(value):
            return f"metrics.json's {key} {value!r} is no accuracy from 0 to 100"
    if "test_acc" not in history.columns:
        return "history.csv has no test_acc column"
    if record.status == "complete" and rows == 0:
        return f"it is complete with 0 of its {epochs} epochs"
    if rows > epochs:
        return f"history.csv has {rows} epochs, the config {epochs}"
    if history["epoch"].tolist() != list(range(1, rows + 1)):
        return "history.csv's epochs are not numbered 1, 2, ..."
    if record.predictions is not None and (problem := _predictions_disagree(record)):
        return problem
    acc = pd.to_numeric(history["test_acc"], errors="coerce")
    for column in ("train_acc", "test_acc"):
        if column in history and not pd.to_numeric(history[column], errors="coerce").between(0, 100).all():
            return f"history.csv has a {column} that is no number from 0 to 100"  # NaN included
    expected = {
        "final_test_acc": float(acc.iloc[-1]) if rows else None,
        "highest_test_acc": float(acc.max()) if rows else None,
        "best_epoch": int(history["epoch"][acc.idxmax()]) if rows else None,
        "epochs_run": rows,
    }
    for key, want in expected.items():
        if key not in metrics and key in ("best_epoch", "epochs_run"):  # not in every version's metrics
            continue
        if not _same(metrics.get(key), want):
            return f"metrics.json's {key} {metrics.get(key)!r} disagrees with history.csv ({want})"
    return None


def _predictions_disagree(record: RunRecord) -> str | None:
    """Why predictions.npz cannot be the run's final predictions: arrays of different lengths, or a
    confusion matrix rebuilt from them other than confusion.npy."""
    index, true, predicted = (record.predictions[k] for k in ("index", "true", "predicted"))
    if not index.ndim == 1 or not index.shape == true.shape == predicted.shape:
        return f"predictions.npz holds {index.shape} indices, {true.shape} and {predicted.shape} labels"
    confusion = record.confusion
    if confusion is not None:
        classes = confusion.shape[0]
        if max(true.max(initial=0), predicted.max(initial=0)) >= classes:
            return "predictions.npz names a class confusion.npy does not have"
        rebuilt = np.zeros_like(confusion)
        np.add.at(rebuilt, (true, predicted), 1)
        if (rebuilt != confusion).any():
            return "predictions.npz disagrees with confusion.npy"
    return None


def _percent(value: object) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 <= value <= 100  # type: ignore[arg-type,operator]


def _same(got: object, want: float | None) -> bool:
    if want is None:
        return got is None
    number = isinstance(got, (int, float)) and not isinstance(got, bool)
    return number and math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
