"""Run archives: run folders packed into one ``.tar.gz`` and imported into another store, verified.

An archive moves runs between machines (a GPU node without a shared filesystem, a cluster job):
:func:`pack_runs` writes ``runs/<run-id>/<file>`` entries; :func:`merge_runs` streams it into a
staging folder inside the store, verifies every run, and only then moves each in as one
transaction (:meth:`RunStore.adopt`). An archive is taken as untrusted input: anything but the
entries ``pack_runs`` writes, within the limits below, is refused as a whole with one StoreError,
and the store is left as it was.
"""

from __future__ import annotations

import gzip
import os
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import IO, TypeVar

from deepcls.atomic import atomic_path
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.store.runs import FINISHED, RUN_FILES, DamagedRun, RunRecord, RunStore, disagreement
from deepcls.store.weights import HASH_KEY, WEIGHTS_FILE, sha256

MAX_MEMBERS = 10_000  # entries in one archive (a run is 1 folder and up to 6 files)
MAX_FILE_BYTES = 256 * 2**20  # one file (trained weights are the largest: tens of MB)
MAX_UNPACKED_BYTES = 2**30  # all files together; export a larger set in parts (by --profile or run ids)
_HEADER_BYTES = 4096  # allowance per entry for tar headers and padding, on top of the files
_CHUNK = 2**20
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_REQUIRED = ("config.json", "metrics.json", "history.csv")
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, tarfile.TarError)  # what a bad .tar.gz raises
T = TypeVar("T")


def pack_runs(store: RunStore, run_ids: Iterable[str], archive: str | os.PathLike) -> Path:
    """One ``.tar.gz`` of run folders, as ``runs/<run-id>/<file>``: the files a run folder holds
    (``RUN_FILES``), as plain files readable by all, without owners."""
    archive = Path(archive)

    def plain(info: tarfile.TarInfo) -> tarfile.TarInfo:  # a fresh TarInfo of tar.add's, so changed in place
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o755 if info.isdir() else 0o644, 0, 0, "", ""
        return info

    with atomic_path(archive, suffix=".tar.gz") as tmp, tarfile.open(tmp, "w:gz") as tar:
        for run_id in sorted(run_ids):
            folder = store.run_dir(run_id)
            tar.add(folder, arcname=f"runs/{run_id}", recursive=False, filter=plain)
            for name in sorted(RUN_FILES):
                if (folder / name).is_file() and not (folder / name).is_symlink():
                    tar.add(folder / name, arcname=f"runs/{run_id}/{name}", filter=plain)
    return archive


def merge_runs(archive: str | os.PathLike, store: RunStore, replace: bool = False) -> tuple[list[str], list[str]]:
    """Move the finished runs of an archive into ``store``: (merged, skipped because the store has
    them finished already; ``replace`` replaces those). A failed or damaged record of a run is
    replaced without ``replace``. Every run is verified before any is moved: only the files a run
    folder holds, plain and within the size limits; the config hashing to the folder name; a finished
    status whose accuracies agree with its history. A bad archive is one StoreError and changes
    nothing; an interrupted import leaves nothing that the next start of the store does not remove."""
    store.ensure_writable()
    with store.staging() as staging:
        ids = _extract(Path(archive), staging)  # any error, KeyboardInterrupt too: staging() removes it all
        if not ids:
            raise StoreError(f"{archive} holds no runs; refused")
        incoming = RunStore(staging)
        configs = [_verified(incoming, run_id, archive) for run_id in ids]
        merged, skipped = [], []
        for config in configs:
            moved = store.adopt(config, incoming.run_dir(config), replace)
            (merged if moved else skipped).append(config.run_id)
        return merged, skipped


# ---------------------------------------------------------------------- extraction
def _extract(archive: Path, staging: Path) -> list[str]:
    """Stream the archive's entries into ``staging/runs/<run-id>/<file>``, refusing any entry that
    ``pack_runs`` would not write or that passes a limit; the run ids, in archive order."""
    ids: dict[str, None] = {}
    entries = unpacked = 0
    raw = _read(archive, lambda: open(archive, "rb"))  # closed by the with below
    with raw, gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
        bounded = _Bounded(unzipped, MAX_UNPACKED_BYTES + _HEADER_BYTES * MAX_MEMBERS, archive)
        tar = _read(archive, lambda: tarfile.open(fileobj=bounded, mode="r|"))  # a stream: read once, in order
        with tar:
            while (member := _read(archive, tar.next)) is not None:
                entries += 1
                if entries > MAX_MEMBERS:
                    raise StoreError(f"{archive} has more than {MAX_MEMBERS} entries (MAX_MEMBERS); refused")
                run_id, file = _place(archive, member)
                if run_id is not None:
                    ids.setdefault(run_id)
                if run_id is None or file is None:  # a folder: made for its first file (none for a flood of them)
                    continue
                if member.size > MAX_FILE_BYTES:
                    raise StoreError(
                        f"{archive}: {_show(member.name)} is {member.size} bytes, over the limit of one file "
                        f"(MAX_FILE_BYTES = {MAX_FILE_BYTES}); refused"
                    )
                unpacked += member.size
                if unpacked > MAX_UNPACKED_BYTES:
                    raise StoreError(_too_big(archive))
                folder = staging / "runs" / run_id
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / file
                if target.exists():
                    raise StoreError(f"{archive}: {_show(member.name)} appears twice; refused")
                if hasattr(tarfile, "data_filter"):  # a second fence (Python >= 3.10.12)
                    _read(archive, lambda m=member: tarfile.data_filter(m, str(staging)))
                source = _read(archive, lambda m=member: tar.extractfile(m))
                _copy(archive, source, target, member.size)
    return list(ids)


def _place(archive: Path, member: tarfile.TarInfo) -> tuple[str | None, str | None]:
    """Where an entry goes: (run id, file name), None for the ``runs`` folder itself; StoreError for
    any other entry."""
    parts = member.name.split("/")
    run_id = parts[1] if len(parts) > 1 and parts[0] == "runs" and _RUN_ID.fullmatch(parts[1]) else None
    if member.isdir() and (parts == ["runs"] or (run_id is not None and len(parts) == 2)):
        return run_id, None
    if run_id is None or len(parts) != 3 or member.isdir():
        raise StoreError(f"{archive}: unexpected entry {_show(member.name)} (want runs/<run-id>/<file>); refused")
    if not member.isreg():
        raise StoreError(f"{archive}: {_show(member.name)} is a {_kind(member)}, not a plain file; refused")
    if parts[2] not in RUN_FILES:
        known = ", ".join(sorted(RUN_FILES))
        raise StoreError(f"{archive}: {_show(member.name)} is no file a run folder holds ({known}); refused")
    if member.mode & 0o111:
        raise StoreError(f"{archive}: {_show(member.name)} is executable (mode {member.mode:o}); refused")
    return run_id, parts[2]


def _copy(archive: Path, source: IO[bytes] | None, target: Path, size: int) -> None:
    """Copy ``size`` bytes of an entry to a new file; errors reading are the archive's, writing the disk's."""
    with open(target, "xb") as out:
        left = size
        while left > 0:
            chunk = _read(archive, partial(source.read, min(left, _CHUNK))) if source is not None else b""
            if not chunk:
                raise StoreError(f"{archive} is truncated (it ends inside {target.name}); refused")
            out.write(chunk)
            left -= len(chunk)


class _Bounded:
    """A reader that refuses to go past ``limit`` bytes of the unpacked stream (a gzip bomb stops there)."""

    def __init__(self, stream: IO[bytes], limit: int, archive: Path) -> None:
        self.stream, self.left, self.archive = stream, limit, archive

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(self.left + 1 if size < 0 or size > self.left else size)
        self.left -= len(data)
        if self.left < 0:
            raise StoreError(_too_big(self.archive))
        return data


def _read(archive: Path, call: Callable[[], T]) -> T:
    """``call()``, a read of the archive: its errors are one StoreError (not the disk's writing errors)."""
    try:
        return call()
    except _READ_ERRORS as err:
        raise _unreadable(archive, err) from None


def _unreadable(archive: Path, err: BaseException) -> StoreError:
    reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return StoreError(f"{archive} is not a readable run archive ({reason[:200]})")


def _too_big(archive: Path) -> str:
    return f"{archive} unpacks to more than {MAX_UNPACKED_BYTES} bytes (MAX_UNPACKED_BYTES); refused"


def _kind(member: tarfile.TarInfo) -> str:
    kinds = {"issym": "symlink", "islnk": "hard link", "ischr": "character device", "isblk": "block device"}
    kind = next((word for test, word in kinds.items() if getattr(member, test)()), None)
    return kind or ("FIFO" if member.isfifo() else f"tar entry of type {member.type!r}")


def _show(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "...")


# ---------------------------------------------------------------------- verification
def _outcome_disagrees(record: RunRecord) -> str | None:
    """Why a finished run's status cannot be what training wrote, or None. A run arriving from elsewhere
    must be whole, as ``fit`` leaves one: complete after every epoch of its config and no divergence,
    or diverged at the epoch after its last recorded one (that epoch's numbers were not finite, so its
    history stops before it). A store's own runs are read more leniently (a stored run may predate its
    config's length); an import is where numbers from another machine enter."""
    rows, epochs = len(record.history), record.config.epochs
    at = record.metrics.get("diverged_epoch")
    if record.status == "complete":
        if rows != epochs:
            return f"it is complete with {rows} of its {epochs} epochs"
        if at is not None:
            return f"it is complete, yet names a diverged epoch {at!r}"
    elif rows >= epochs:
        return f"it is diverged, yet records all {epochs} of its epochs"
    elif type(at) is not int or at != rows + 1:
        return f"it names diverged epoch {at!r}, not {rows + 1}, the one after the {rows} its history records"
    return None


def _verified(incoming: RunStore, run_id: str, archive: str | os.PathLike) -> RunConfig:
    """The config of an extracted run that passes every check; StoreError naming the first that fails."""
    folder = incoming.run_dir(run_id)
    missing = [name for name in _REQUIRED if not (folder / name).is_file()]
    if missing:
        raise StoreError(f"{archive}: run {run_id} lacks {', '.join(missing)}; refused")
    try:
        record = incoming.load(run_id)
    except DamagedRun as err:
        raise StoreError(f"{archive}: run {run_id} has a bad {err.file} ({err.reason}); refused") from None
    named = record.metrics.get("run_id")
    if named != run_id:
        raise StoreError(f"{archive}: run folder {run_id} holds metrics of run {named!r}; refused")
    if record.status not in FINISHED:
        raise StoreError(f"{archive}: run {run_id} is {record.status}, not finished; refused")
    if problem := disagreement(record) or _outcome_disagrees(record):
        raise StoreError(f"{archive}: run {run_id}: {problem}; refused")
    weights = folder / WEIGHTS_FILE
    if weights.is_file() and sha256(weights.read_bytes()) != record.metrics.get(HASH_KEY):
        raise StoreError(f"{archive}: run {run_id}'s {WEIGHTS_FILE} is not the one its metrics.json names; refused")
    return record.config
