"""deepcls.atomic: a write replaces a regular file or nothing; a device, FIFO or folder given as the
output path is refused before anything is written, and stays what it was; a write keeps the file's
mode and writes through a symbolic link."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_RUN, save_run

from deepcls.atomic import write_text, write_with
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.store.runs import RunStore


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def device(path: Path) -> Path:
    """A character device node like /dev/null, made in the test's folder (root only)."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


KINDS: dict[str, Callable[[Path], Path]] = {"FIFO": fifo, "device": device, "folder": folder}
IS = {"FIFO": stat.S_ISFIFO, "device": stat.S_ISCHR, "folder": stat.S_ISDIR}


@pytest.fixture(params=sorted(KINDS))
def special(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    kind = request.param
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    return kind, KINDS[kind](tmp_path / f"a-{kind}")


def test_an_atomic_write_refuses_what_is_not_a_file_and_leaves_it_as_it_was(special: tuple[str, Path]) -> None:
    kind, path = special
    link = path.parent / "link"
    link.symlink_to(path.name)
    for target in (path, link):
        with pytest.raises(StoreError, match=f"is a {kind}, not a file: refusing to write over it"):
            write_text(target, "x")
    assert IS[kind](os.stat(path).st_mode) and link.is_symlink()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "link"])  # no temporary left


@pytest.mark.parametrize(
    "command", [["ledger", "--profile", "quick", "--csv"], ["markdown", "--path"], ["runs", "export", "--out"]]
)
def test_the_cli_refuses_a_special_output_path_in_one_line(
    command: list[str], special: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], stored_run
) -> None:
    kind, path = special
    results = ["--results-dir", str(tmp_path / "results")]
    if command[0] == "runs":  # a run to export, so that only the output path is wrong
        config = RunConfig(dataset="mnist", model="vgg7", width="reduced", epochs=1, profile="quick")
        stored_run(tmp_path / "results", config)
        results = ["--profile", "quick", *results]
    assert main([*command, str(path), *results]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("deepcls: error: ") and str(path) in err[0], err
    assert IS[kind](os.stat(path).st_mode)


def test_a_writer_killed_before_its_rename_leaves_a_temporary_the_next_write_removes(tmp_path: Path) -> None:
    """SIGKILL between writing and renaming (as at markdown's rename): the temporary stays, named for
    the dead process; the next write to the path removes it. A live writer's temporary is kept."""
    target = tmp_path / "RESULTS.md"
    target.write_text("old\n")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(target)], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL
    leftovers = list(tmp_path.glob(".tmp-RESULTS.md-*"))
    assert len(leftovers) == 1 and leftovers[0].read_text() == "half"
    live = tmp_path / f".tmp-RESULTS.md-{os.getpid()}-abcd1234"  # this process: still running
    live.write_text("mine")
    write_text(target, "new\n")
    assert target.read_text() == "new\n" and sorted(tmp_path.iterdir()) == sorted([target, live])


KILLED_WRITER = """
import os, signal, sys
from deepcls.atomic import write_with

def writer(tmp):
    tmp.write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)

write_with(sys.argv[1], writer)
"""


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_atomic_write_keeps_the_mode_and_writes_through_a_link(tmp_path: Path) -> None:
    with umask(0o022):
        write_text(tmp_path / "README.md", "new")
        write_with(tmp_path / "arrays.npz", lambda tmp: np.savez(tmp, a=np.arange(3)), suffix=".npz")
        assert mode(tmp_path / "README.md") == 0o644 and mode(tmp_path / "arrays.npz") == 0o644
        run = save_run(RunStore(tmp_path / "store"), TINY_RUN, "new")
        assert mode(run) == 0o755 and mode(run / "metrics.json") == 0o644
    (tmp_path / "README.md").chmod(0o640)
    write_text(tmp_path / "README.md", "again")
    assert mode(tmp_path / "README.md") == 0o640 and (tmp_path / "README.md").read_text() == "again"

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("old")
    (tmp_path / "link.md").symlink_to(Path("docs") / "README.md")
    write_text(tmp_path / "link.md", "through")
    assert (tmp_path / "link.md").is_symlink() and (tmp_path / "docs" / "README.md").read_text() == "through"
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["README.md"]

    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(OSError, match="symbolic links"):
        write_text(tmp_path / "loop", "x")
