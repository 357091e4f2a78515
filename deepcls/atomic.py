"""Atomic file writing: a reader sees the old file or the new one, never a half-written one.

The new file keeps the mode of the one it replaces (a new one gets the umask's default, as ``open``
gives), and a symlink is written through: its target is replaced, the link stays. Only a regular
file is ever replaced: a rename over a device, a FIFO or a socket would turn it into a plain file
(``--out /dev/full`` run as root), so such a target is refused before anything is written.

A temporary file is named for the process writing it (``.tmp-<name>-<pid>-<token>``): a writer
killed before its rename leaves one behind, and the next write to the same path removes the
temporaries of processes that no longer run.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deepcls.errors import StoreError


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    ``suffix`` keeps an extension that a writer insists on (``np.savez`` appends ``.npz``).
    """
    path = _through_links(Path(path))
    refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".tmp-{path.name}-"
    remove_orphans(path.parent, prefix)
    tmp = temporary_file(path.parent, f"{prefix}{os.getpid()}-", suffix)
    try:
        yield tmp
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # the replaced file's mode, not mkstemp's 0600
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is None:  # a failed write names no file: say which one (a full disk: which disk)
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def refuse_special(path: Path) -> None:
    """StoreError, in one line, when ``path`` exists and is not a regular file (nor a link to one)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISREG(mode):
        return
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device", stat.S_ISFIFO: "a FIFO"}
    kind = next((name for test, name in kinds.items() if test(mode)), "not a regular file")
    raise StoreError(f"{path} is {kind}, not a file: refusing to write over it; give the path of a file")


def remove_orphans(folder: Path, prefix: str) -> None:
    """Remove the temporaries ``<prefix><pid>-*`` in ``folder`` whose writing process is gone (it was
    killed between writing and renaming); a running writer's are left alone."""
    for leftover in folder.glob(f"{prefix}*-*"):
        pid = leftover.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            leftover.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True


def temporary_file(folder: Path, prefix: str, suffix: str = "") -> Path:
    """A new empty file of a name no one else has in ``folder``, with the umask's default mode."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path


def temporary_folder(folder: Path, prefix: str) -> Path:
    """A new empty folder of a name no one else has in ``folder``, with the umask's default mode."""
    while True:
        path = folder / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def _through_links(path: Path) -> Path:
    """The file a symlink ends at (``path`` itself when it is none); OSError for a link loop."""
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    if real.is_symlink():
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
    return real


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_with(path: str | os.PathLike, writer: Callable[[Path], object], suffix: str = "") -> None:
    """Call ``writer(tmp)`` and move the result to ``path`` atomically."""
    with atomic_path(path, suffix) as tmp:
        writer(tmp)
