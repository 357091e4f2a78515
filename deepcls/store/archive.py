"""Moving data to an offline GPU machine and its runs back, losslessly and verified.

The device machine of this workplace takes at most 64 MiB per call (the working tree included)
and returns at most 8 files of 16 MiB. CIFAR-10's npz is 170 MB and already compressed, so it
travels in byte-exact parts: :func:`split_file` writes ``<name>.part-NN`` files of at most
``part_bytes`` and a ``<name>.manifest.json`` with the SHA-256 and size of every part and of the
whole file; :func:`join_parts` checks each part, reassembles the file, checks the whole and only
then moves it into place. The runs come back as one archive of run folders (:func:`pack_runs`);
:func:`merge_runs` extracts it beside a store, checks every run loads and hashes to its folder name,
and only then moves it in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from deepcls.data.atomic import atomic_path, write_text
from deepcls.errors import DataError, StoreError
from deepcls.store.runs import FINISHED, RunStore

PART_BYTES = 44 * 2**20  # + the ~13 MB working tree stays under the 64 MiB a device call carries
CHUNK = 2**20


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def split_file(path: str | os.PathLike, out_dir: str | os.PathLike, part_bytes: int = PART_BYTES) -> Path:
    """Write ``path`` as parts of at most ``part_bytes`` into ``out_dir``; returns the manifest's path."""
    path, out = Path(path), Path(out_dir)
    if part_bytes < 1:
        raise DataError(f"part size must be positive, got {part_bytes}")
    if not path.is_file():
        raise DataError(f"{path} not found: nothing to split")
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as source:
        for number in range(1, 10_000):
            data = source.read(part_bytes)
            if not data and number > 1:
                break
            part = out / f"{path.name}.part-{number:02d}"
            with atomic_path(part) as tmp:
                tmp.write_bytes(data)
            parts.append({"file": part.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    manifest = out / f"{path.name}.manifest.json"
    whole = {"name": path.name, "size": path.stat().st_size, "sha256": sha256(path), "parts": parts}
    write_text(manifest, json.dumps(whole, indent=2) + "\n")
    return manifest


def join_parts(manifest: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Reassemble the file a manifest describes into ``out_dir``, every part and the whole verified;
    a missing, short or altered part is one DataError naming it, and nothing is written."""
    manifest = Path(manifest)
    try:
        whole = json.loads(manifest.read_text())
        parts = whole["parts"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{manifest} is not a readable part manifest ({err})") from None
    target = Path(out_dir) / whole["name"]
    digest = hashlib.sha256()
    with atomic_path(target) as tmp, open(tmp, "wb") as sink:
        for part in parts:
            path = manifest.parent / part["file"]
            if not path.is_file():
                raise DataError(f"part {path} of {whole['name']} is missing")
            data = path.read_bytes()
            if len(data) != part["size"] or hashlib.sha256(data).hexdigest() != part["sha256"]:
                raise DataError(f"part {path} of {whole['name']} is damaged (size or SHA-256 differs)")
            sink.write(data)
            digest.update(data)
        sink.flush()
        if sink.tell() != whole["size"] or digest.hexdigest() != whole["sha256"]:
            raise DataError(f"{whole['name']} reassembled from {manifest.parent} does not match its SHA-256")
    return target


def join_all(parts_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Join every ``*.manifest.json`` in ``parts_dir`` into ``out_dir``; the files written."""
    manifests = sorted(Path(parts_dir).glob("*.manifest.json"))
    if not manifests:
        raise DataError(f"no *.manifest.json in {parts_dir}")
    return [join_parts(m, out_dir) for m in manifests]


# ---------------------------------------------------------------------------- runs


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
