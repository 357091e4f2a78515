"""Run archives: run folders packed into one ``.tar.gz`` and imported into another store, verified.

An archive moves runs between machines (a GPU node without a shared filesystem, a cluster job):
:func:`pack_runs` writes ``runs/<run-id>/<file>`` entries; :func:`merge_runs` extracts it beside
the store, checks every run loads and hashes to its folder name, and only then moves it in.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from deepcls.data.atomic import atomic_path
from deepcls.errors import StoreError
from deepcls.store.runs import FINISHED, RunStore


def pack_runs(store: RunStore, run_ids: Iterable[str], archive: str | os.PathLike) -> Path:
    """One ``.tar.gz`` of run folders, as ``runs/<run-id>/<file>``."""
    archive = Path(archive)
    with atomic_path(archive, suffix=".tar.gz") as tmp, tarfile.open(tmp, "w:gz") as tar:
        for run_id in sorted(run_ids):
            tar.add(store.run_dir(run_id), arcname=f"runs/{run_id}")
    return archive


def merge_runs(archive: str | os.PathLike, store: RunStore, replace: bool = False) -> tuple[list[str], list[str]]:
    """Move the finished runs of an archive into ``store``: (merged, skipped because the store has
    them already; ``replace`` overwrites those). Every run is checked to load and to hash to its
    folder name before any is moved; a bad archive is one StoreError and changes nothing."""
    store.ensure_writable()
    staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=store.root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    parts = Path(member.name).parts
                    if not (member.isdir() or member.isfile()) or parts[0] != "runs" or len(parts) > 3:
                        raise StoreError(f"{archive}: unexpected entry {member.name!r} (want runs/<run-id>/<file>)")
                tar.extractall(staging, filter="data")
        except (OSError, tarfile.TarError) as err:
            raise StoreError(f"{archive} is not a readable run archive ({err})") from None
        incoming = RunStore(staging)
        ids = incoming.run_ids()
        for run_id in ids:
            record = incoming.load(run_id)
            if record.config.run_id != run_id or record.metrics.get("run_id") != run_id:
                raise StoreError(f"{archive}: run folder {run_id} holds run {record.config.run_id}")
            if record.status not in FINISHED:
                raise StoreError(f"{archive}: run {run_id} is {record.status}, not finished")
        merged, skipped = [], []
        store.runs.mkdir(parents=True, exist_ok=True)
        for run_id in ids:
            target = store.run_dir(run_id)
            if target.exists() and not replace:
                skipped.append(run_id)
                continue
            if target.exists():
                shutil.rmtree(target)
            os.replace(incoming.run_dir(run_id), target)
            merged.append(run_id)
        return merged, skipped
    finally:
        shutil.rmtree(staging, ignore_errors=True)
