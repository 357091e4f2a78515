"""Run archives (deepcls.store.archive) and time-boxed training: end to end on the CPU at the smoke
profile, runs trained several at once within a budget, exported as one archive, imported into
another store, verified. Archives are untrusted input, imported as transactions: a kill or Ctrl-C
loses no run, and bad, hostile or random (fuzzed) archives are refused in one line, leaving the
store as it was."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import REPO_ROOT, SIGKILL_POINTS, files_of, leftovers, one_line, save_run

import deepcls.store.runs as store_module
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.store import archive as archive_module
from deepcls.store import checkpoints
from deepcls.store.archive import merge_runs, pack_runs
from deepcls.store.runs import FINISHED, RunStore

ONE = RunConfig(dataset="mnist", model="vgg7", epochs=1, profile="smoke")  # extendable: constant lr
RUNS = [ONE, *(ONE.replace(epochs=2, seed=seed) for seed in (1, 2, 3))]
Entry = tuple[tarfile.TarInfo, bytes | None]


def damage(store: RunStore, config: RunConfig) -> None:
    (store.run_dir(config) / "metrics.json").write_text('{"status": "compl')


def exported(tmp_path: Path, configs: list[RunConfig] = RUNS, tag: str = "archive") -> Path:
    """An archive, as ``deepcls runs export`` writes it, of complete runs of ``configs``."""
    source = RunStore(tmp_path / "source")
    for config in configs:
        save_run(source, config, tag)
    return pack_runs(source, [c.run_id for c in configs], tmp_path / "runs.tar.gz")


def entries_of(archive: Path) -> list[Entry]:
    with tarfile.open(archive, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()]  # type: ignore[union-attr]


def tar_bytes(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def write_archive(path: Path, entries: list[Entry]) -> Path:
    path.write_bytes(gzip.compress(tar_bytes(entries), compresslevel=1))
    return path


def info(name: str, data: bytes | None = b"", kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> Entry:
    member = tarfile.TarInfo(name)
    member.type, member.mode = kind, mode
    if kind == tarfile.REGTYPE:
        member.size = len(data or b"")
    return member, data if kind == tarfile.REGTYPE else None


def changed(member: tarfile.TarInfo, **attrs: Any) -> tarfile.TarInfo:
    """A copy of a tar entry with other attributes (``TarInfo.replace`` leaves out size and type)."""
    new = copy.copy(member)
    for key, value in attrs.items():
        setattr(new, key, value)
    return new


def link(name: str, target: str) -> Entry:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = tarfile.SYMTYPE, target
    return member, None


def edited(entries: list[Entry], suffix: str, change: Callable[[bytes], bytes]) -> list[Entry]:
    """The entries with the first file whose name ends in ``suffix`` rewritten."""
    out, done = [], False
    for member, data in entries:
        if not done and member.name.endswith(suffix) and data is not None:
            data, done = change(data), True
            member = changed(member, size=len(data))
        out.append((member, data))
    return out


def metrics_edit(**changes: Any) -> Callable[[bytes], bytes]:
    """An edit of a JSON file's values; a file that an earlier fuzz change left no JSON object stays as it is."""

    def edit(data: bytes) -> bytes:
        try:
            values = json.loads(data)
        except ValueError:
            return data
        return json.dumps({**values, **changes}).encode() if isinstance(values, dict) else data

    return edit


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under a store (its locks aside), with the bytes of each file."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(root.rglob("*"))
        if ".cache/locks" not in str(p)
    }


def imported(archive: Path, root: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    code = main(["runs", "import", str(archive), "--results-dir", str(root), *flags])
    out, err = capsys.readouterr()
    return code, out, err


def held_store(root: Path) -> RunStore:
    """A store holding ``RUNS[0]`` complete (tag old), ``RUNS[1]`` failed, ``RUNS[2]`` damaged."""
    store = RunStore(root)
    store.ensure_writable()
    save_run(store, RUNS[0], "old")
    save_run(store, RUNS[1], "old", status="failed")
    save_run(store, RUNS[2], "old")
    damage(store, RUNS[2])
    return store


# ---------------------------------------------------------------------- end to end
def test_a_time_boxed_job_exports_its_runs_and_another_store_imports_them(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gpu, here, archive = tmp_path / "gpu", tmp_path / "here", tmp_path / "runs.tar.gz"
    job = ["results", "--profile", "smoke", "--seeds", "0,1", "--tables", "vgg_mnist", "--rows", "6,9", "--train"]
    job += ["--budget-s", "600", "--runs-at-once", "3", "--data-dir", str(data_dir), "--results-dir", str(gpu)]
    assert main(job) == 0
    out = capsys.readouterr().out
    assert "runs_in_grid: 4" in out and "runs_trained: 4" in out and "runs_missing: 0" in out
    assert "images_per_s: " in out

    assert main(["runs", "export", "--profile", "smoke", "--out", str(archive), "--results-dir", str(gpu)]) == 0
    assert capsys.readouterr().out == f"exported 4 runs to {archive}\n"
    assert main(["runs", "import", str(archive), "--results-dir", str(here)]) == 0
    assert "imported 4 runs, skipped 0" in capsys.readouterr().out
    store = RunStore(here)
    assert sorted(store.run_ids()) == sorted(RunStore(gpu).run_ids())
    for run_id in store.run_ids():
        record = store.load(run_id)
        assert record.config.run_id == run_id and record.status == "complete"
        assert record.config.profile == "smoke" and len(record.metrics["trained_alongside"]) >= 2
    assert main(["runs", "import", str(archive), "--results-dir", str(here)]) == 0
    assert "imported 0 runs, skipped 4" in capsys.readouterr().out

    # run again: everything is stored, nothing trains
    assert main(job) == 0 and "runs_trained: 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags",
    [["--budget-s", "nan"], ["--budget-s", "-10"], ["--runs-at-once", "0"], ["--budget-s", "5"], ["--seeds", "0,0"]],
)
def test_a_bad_job_flag_is_one_error_line(flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = [] if flags == ["--budget-s", "5"] else ["--train"]  # a budget without --train is refused too
    assert main(["results", "--profile", "smoke", "--results-dir", str(tmp_path), *train, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepcls: error: ") and len(err.splitlines()) == 1
    assert RunStore(tmp_path).run_ids() == []


def test_export_names_a_run_the_store_does_not_have(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "runs",
                "export",
                "mnist-vgg7-0000000000",
                "--out",
                str(tmp_path / "a.tar.gz"),
                "--results-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "run mnist-vgg7-0000000000 is not a finished run" in capsys.readouterr().err
    assert not (tmp_path / "a.tar.gz").exists()


def test_import_refuses_an_archive_whose_run_does_not_hash_to_its_folder(
    tmp_path: Path, stored_run, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ONE
    stored_run(tmp_path / "src", config)
    run = RunStore(tmp_path / "src").run_dir(config)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "run_id": config.run_id}))
    archive = tmp_path / "runs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(run, arcname="runs/mnist-vgg7-0000000000")
    assert main(["runs", "import", str(archive), "--results-dir", str(tmp_path / "here")]) == 2
    assert f"it hashes to {config.run_id}" in capsys.readouterr().err
    assert RunStore(tmp_path / "here").run_ids() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "diverged"}, "it is diverged, yet records all 2 of its epochs"),
        ({"diverged_epoch": 3}, "it is complete, yet names a diverged epoch 3"),
    ],
)
def test_import_refuses_a_run_whose_outcome_training_cannot_have_written(
    change: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A diverged run's history stops before the epoch it diverged in; a complete one ran every epoch."""
    entries = edited(entries_of(exported(tmp_path, [RUNS[1]])), "/metrics.json", metrics_edit(**change))
    store = held_store(tmp_path / "here")
    before = snapshot(store.root)
    code, _, err = imported(write_archive(tmp_path / "odd.tar.gz", entries), store.root, capsys)
    assert code == 2 and f"run {RUNS[1].run_id}: {message}; refused" in one_line(err)
    assert snapshot(store.root) == before and leftovers(store.root) == []


def test_import_takes_a_run_that_diverged_as_training_leaves_one(tmp_path: Path) -> None:
    source = RunStore(tmp_path / "source")
    save_run(source, ONE, "archive", status="diverged")  # no epoch recorded: it diverged in its first
    store = RunStore(tmp_path / "here")
    archive = pack_runs(source, [ONE.run_id], tmp_path / "runs.tar.gz")
    assert merge_runs(archive, store) == ([ONE.run_id], [])
    assert store.status(ONE) == "diverged" and store.load(ONE).metrics["diverged_epoch"] == 1
    later = edited(entries_of(archive), "/metrics.json", metrics_edit(diverged_epoch=2))
    with pytest.raises(StoreError, match="it names diverged epoch 2, not 1, the one after the 0 its history records"):
        merge_runs(write_archive(tmp_path / "later.tar.gz", later), RunStore(tmp_path / "other"))


def test_a_time_boxed_job_trains_the_tables_in_the_order_named() -> None:
    """``--tables`` is a priority: a short job spends itself on the first tables named."""
    from deepcls.execution.timebox import tables_first
    from deepcls.paper import grids as experiments
    from deepcls.paper.conclusions import conclusions_first

    named = ["resnet_mnist", "vgg_mnist", "resnet_cifar10"]
    grid = tables_first(conclusions_first(experiments.grid(named, "paper", [0, 1])), named)
    first = grid.drop_duplicates("config", keep="first")["table"].tolist()  # a shared config goes with its first
    assert first == sorted(first, key=named.index)
    assert set(first) == set(named)


# ---------------------------------------------------------------------- imports lose no run
@pytest.mark.parametrize("held", ["failed", "damaged", "empty folder"])
def test_a_finished_run_replaces_a_failed_or_damaged_record_of_itself(
    held: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = RunStore(tmp_path / "here"), RUNS[1]
    if held == "empty folder":
        store.run_dir(config).mkdir(parents=True)
    else:
        save_run(store, config, "old", status="failed" if held == "failed" else "complete")
    if held == "damaged":
        damage(store, config)
    checkpoints.save_checkpoint(store, config, {"model": {}, "history": []})  # the failed run's, for a resume
    code, out, _ = imported(exported(tmp_path, [config]), store.root, capsys)
    assert code == 0 and "imported 1 runs, skipped 0" in out
    assert store.load(config).metrics["tag"] == "archive" and store.status(config) == "complete"
    assert not checkpoints.checkpoint_path(store, config).exists() and leftovers(store.root) == []


def test_a_finished_run_is_kept_without_replace_and_swapped_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, config = RunStore(tmp_path / "here"), RUNS[0]
    save_run(store, config, "old")
    archive = exported(tmp_path, [config])
    assert imported(archive, store.root, capsys)[1].startswith("imported 0 runs, skipped 1")
    assert store.load(config).metrics["tag"] == "old"
    assert imported(archive, store.root, capsys, "--replace")[1].startswith("imported 1 runs, skipped 0")
    assert store.load(config).metrics["tag"] == "archive" and leftovers(store.root) == []


KILLED_IMPORT = (
    SIGKILL_POINTS
    + """
from pathlib import Path
from deepcls.cli import main

root, when, run_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
live = root / "runs" / run_id
real_rmtree = S.shutil.rmtree

def rmtree(path, *args, **kwargs):
    real_rmtree(path, *args, **kwargs)
    if not live.exists():
        die()

if when == "between-renames":  # SIGKILL as soon as the run has no folder of its own
    kill_after_replace(lambda b: not live.exists())
    S.shutil.rmtree = rmtree
elif when == "after-exchange":
    kill_after_exchange()
else:  # while verifying, after every file is unpacked
    S.json.loads = lambda *a, **k: die()
main(["runs", "import", sys.argv[4], "--results-dir", str(root), "--replace"])
"""
)


@pytest.mark.parametrize("when", ["between-renames", "after-exchange", "while-verifying"])
def test_a_kill_during_an_import_is_recovered_on_the_next_start(when: str, tmp_path: Path) -> None:
    root, config = tmp_path / "here", RUNS[0]
    save_run(RunStore(root), config, "old")
    archive = exported(tmp_path, [config])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-c", KILLED_IMPORT, str(root), when, config.run_id, str(archive)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert leftovers(root) != []  # a staging folder, an aside run or both
    store = RunStore(root)  # the next start recovers
    assert store.load(config).metrics["tag"] == ("archive" if when == "after-exchange" else "old")
    assert leftovers(root) == []


def test_a_reader_during_a_replacing_import_always_finds_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an atomic exchange the run is renamed aside for a moment: readers read it there."""
    root, config = tmp_path / "here", RUNS[0]
    save_run(RunStore(root), config, "old")
    archive = exported(tmp_path, [config])
    monkeypatch.setattr(store_module, "_exchange", lambda a, b: False)
    seen: list[str | None] = []
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def look() -> None:
        seen.append(RunStore(root).status(config))

    def replace(a: Any, b: Any) -> None:
        real_replace(a, b)
        look()

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        real_rmtree(path, *args, **kwargs)
        look()

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    merged, _ = merge_runs(archive, RunStore(root), replace=True)
    monkeypatch.undo()
    assert merged == [config.run_id] and seen and set(seen) == {"complete"}
    assert RunStore(root).load(config).metrics["tag"] == "archive"


def test_a_replaced_runs_kept_final_state_is_not_continued(tmp_path: Path) -> None:
    store, config = RunStore(tmp_path / "here"), RUNS[0]
    save_run(store, config, "old")
    store.ensure_writable()
    torch.save({"model": {}, "history": [{"epoch": 1}]}, checkpoints.final_path(store, config))
    assert checkpoints.prefix_run(store, config.replace(epochs=2)) == config  # a longer run would continue it
    merge_runs(exported(tmp_path, [config]), store, replace=True)
    assert store.load(config).metrics["tag"] == "archive"
    assert (
        not checkpoints.final_path(store, config).exists()
        and checkpoints.prefix_run(store, config.replace(epochs=2)) is None
    )


def test_an_import_stopped_by_ctrl_c_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = held_store(tmp_path / "here")
    before = snapshot(store.root)
    archive = exported(tmp_path)

    def stop(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.RunStore, "adopt", stop)
    with pytest.raises(KeyboardInterrupt):
        merge_runs(archive, store)
    assert snapshot(store.root) == before and leftovers(store.root) == []


# ---------------------------------------------------------------------- paths taken on trust
@pytest.mark.parametrize(
    "name",
    ["../evil", "runs/../evil", "runs/../../../evil", "runs/RUN/../RUN/metrics.json", "runs/RUN/../../x/config.json"],
)
def test_an_entry_outside_a_run_folder_is_refused_in_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "outside").mkdir()
    store = held_store(tmp_path / "here")
    entries = entries_of(exported(tmp_path, [RUNS[3]]))
    before, around = snapshot(store.root), sorted(p.name for p in tmp_path.iterdir())
    entries.append(info(name.replace("RUN", RUNS[3].run_id), b"{}"))
    code, _, err = imported(write_archive(tmp_path / "bad.tar.gz", entries), store.root, capsys)
    assert code == 2 and "unexpected entry" in one_line(err)
    assert snapshot(store.root) == before and leftovers(store.root) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*around, "bad.tar.gz"])
    assert list((tmp_path / "outside").iterdir()) == []


# ---------------------------------------------------------------------- what imports refuse
def _many_folders(tmp_path: Path) -> list[Entry]:
    return [info("runs", kind=tarfile.DIRTYPE)] + [info(f"runs/r{i}", kind=tarfile.DIRTYPE) for i in range(20_000)]


def _with_subfolder(tmp_path: Path) -> list[Entry]:
    run = f"runs/{RUNS[3].run_id}"
    return entries_of(exported(tmp_path, [RUNS[3]])) + [
        info(f"{run}/extra", kind=tarfile.DIRTYPE),
        info(f"{run}/extra/config.json", b"{}"),
    ]


def _executable(tmp_path: Path) -> list[Entry]:
    return [(changed(m, mode=0o755) if m.isreg() else m, d) for m, d in entries_of(exported(tmp_path))]


def _no_history(tmp_path: Path) -> list[Entry]:
    entries = edited(entries_of(exported(tmp_path, [RUNS[3]])), "history.csv", lambda d: d.splitlines()[0] + b"\n")
    return edited(entries, "metrics.json", metrics_edit(final_test_acc=None, highest_test_acc=None, epochs_run=0))


def _disagreeing(tmp_path: Path) -> list[Entry]:
    return edited(entries_of(exported(tmp_path, [RUNS[3]])), "metrics.json", metrics_edit(final_test_acc=99.5))


def _junk_file(tmp_path: Path) -> list[Entry]:
    return entries_of(exported(tmp_path, [RUNS[3]])) + [info(f"runs/{RUNS[3].run_id}/notes.txt", b"hi")]


def _failed(tmp_path: Path) -> list[Entry]:
    return edited(entries_of(exported(tmp_path, [RUNS[3]])), "metrics.json", metrics_edit(status="failed"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (_many_folders, "more than 10000 entries (MAX_MEMBERS)"),
        (_with_subfolder, "unexpected entry"),
        (_executable, "is executable"),
        (_junk_file, "is no file a run folder holds"),
        (_no_history, "complete with 0 of its 2 epochs"),
        (_disagreeing, "metrics.json's final_test_acc 99.5 disagrees with history.csv"),
        (_failed, "is failed, not finished"),
    ],
)
def test_an_archive_holding_what_no_run_folder_holds_is_refused_in_one_line(
    build: Callable[[Path], list[Entry]], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = held_store(tmp_path / "here")
    before = snapshot(store.root)
    code, _, err = imported(write_archive(tmp_path / "bad.tar.gz", build(tmp_path)), store.root, capsys)
    assert code == 2 and message in one_line(err)
    assert snapshot(store.root) == before and leftovers(store.root) == []


def test_a_small_archive_that_unpacks_to_gigabytes_is_refused_before_it_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 GiB of zeros behind one header: gzip members of 1 MiB each, concatenated (a valid gzip)."""
    folder = info("runs", kind=tarfile.DIRTYPE)[0]
    member = tarfile.TarInfo(f"runs/{ONE.run_id}/weights.safetensors")
    member.size = 2**31
    zeros = gzip.compress(bytes(2**20))
    path = tmp_path / "bomb.tar.gz"
    with open(path, "wb") as out:
        out.write(gzip.compress(folder.tobuf(tarfile.PAX_FORMAT) + member.tobuf(tarfile.PAX_FORMAT)))
        for _ in range(2**11):
            out.write(zeros)
    assert path.stat().st_size < 3 * 2**20
    store = held_store(tmp_path / "here")
    before, start = snapshot(store.root), time.monotonic()
    code, _, err = imported(path, store.root, capsys)
    assert code == 2 and "over the limit of one file (MAX_FILE_BYTES" in one_line(err)
    assert snapshot(store.root) == before and time.monotonic() - start < 10


def test_archives_past_the_total_size_limit_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(archive_module, "MAX_UNPACKED_BYTES", 2000)
    store = held_store(tmp_path / "here")
    before = snapshot(store.root)
    code, _, err = imported(exported(tmp_path), store.root, capsys)
    assert code == 2 and "unpacks to more than 2000 bytes (MAX_UNPACKED_BYTES)" in one_line(err)
    assert snapshot(store.root) == before and leftovers(store.root) == []


# ---------------------------------------------------------------------- one line, not a traceback
def _truncated(tmp_path: Path) -> Path:
    data = exported(tmp_path).read_bytes()
    return _bytes(tmp_path, data[: len(data) // 2])


def _bytes(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "bad.tar.gz").write_bytes(data)
    return tmp_path / "bad.tar.gz"


BAD_ARCHIVES: dict[str, Callable[[Path], Path]] = {
    "truncated gzip": _truncated,
    "'./' entry": lambda t: write_archive(t / "bad.tar.gz", [info("./", kind=tarfile.DIRTYPE)]),
    "empty name": lambda t: write_archive(t / "bad.tar.gz", [info("", b"x")]),
    "FIFO": lambda t: write_archive(t / "bad.tar.gz", [info(f"runs/{ONE.run_id}/metrics.json", kind=tarfile.FIFOTYPE)]),
    "device": lambda t: write_archive(t / "bad.tar.gz", [info(f"runs/{ONE.run_id}/history.csv", kind=tarfile.CHRTYPE)]),
    "symlink": lambda t: write_archive(t / "bad.tar.gz", [link(f"runs/{ONE.run_id}/config.json", "/etc/passwd")]),
    "no gzip": lambda t: _bytes(t, tar_bytes([info("runs", kind=tarfile.DIRTYPE)])),
    "empty file": lambda t: _bytes(t, b""),
    "gzip of garbage": lambda t: _bytes(t, gzip.compress(os.urandom(3000))),
    "bad deflate": lambda t: _bytes(t, gzip.compress(b"x" * 10000)[:12] + b"\xff" * 40),
    "a folder": lambda t: t,
    "missing": lambda t: t / "nothing.tar.gz",
}


@pytest.mark.parametrize("kind", list(BAD_ARCHIVES))
def test_a_bad_archive_is_one_error_line(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = held_store(tmp_path / "here")
    before = snapshot(store.root)
    code, _, err = imported(BAD_ARCHIVES[kind](tmp_path), store.root, capsys)
    assert code == 2, err
    one_line(err)
    assert snapshot(store.root) == before and leftovers(store.root) == []


# ---------------------------------------------------------------------- fuzz
BAD_NAMES = [
    "../evil",
    "../../../outside/evil",
    "/tmp/deepcls-evil",
    "",
    "./",
    ".",
    "runs/..",
    "runs/../evil",
    "runs/RUN/../../outside/evil",
    "runs/RUN/sub/config.json",
    "runs/RUN/notes.txt",
    "runs/.tmp-x/config.json",
    "runs/RUN/./config.json",
    "runs//config.json",
    "runs/RUN/config.json/",
    "runs/élan/metrics.json",
    "x" * 300,
    "runs/RUN/" + "y" * 200,
    "RUNS/RUN/config.json",
]
LINK_TARGETS = ["../../../outside/sentinel", "/etc/passwd", "config.json", "../RUN"]


def fuzzed(rng: random.Random, runs: dict[str, list[Entry]]) -> bytes:
    """A random archive: some real run folders, then a few random changes to entries, files or bytes."""
    chosen = rng.sample(sorted(runs), rng.randint(1, len(runs)))
    entries = [info("runs", kind=tarfile.DIRTYPE)] + [e for run_id in chosen for e in runs[run_id]]
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        entries = mutate(rng, entries, rng.choice(chosen))
    data = gzip.compress(tar_bytes(entries), compresslevel=1)
    damage_kind = rng.random()
    if damage_kind < 0.1:
        data = data[: rng.randrange(len(data))]
    elif damage_kind < 0.15:
        position = rng.randrange(len(data))
        data = data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) + data[position + 1 :]
    elif damage_kind < 0.18:
        data += os.urandom(rng.randint(1, 600))
    elif damage_kind < 0.2:
        data = tar_bytes(entries)
    return data


def mutate(rng: random.Random, entries: list[Entry], run_id: str) -> list[Entry]:
    files = [i for i, (m, _) in enumerate(entries) if m.isreg()]
    i = rng.choice(files) if files else 0
    member, data = entries[i]
    kind = rng.randrange(13)
    if kind == 0:  # a name from the list of bad ones
        entries[i] = (member.replace(name=rng.choice(BAD_NAMES).replace("RUN", run_id), deep=False), data)
    elif kind == 1:  # another member type
        new = rng.choice([tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.DIRTYPE])
        link = rng.choice(LINK_TARGETS).replace("RUN", run_id)
        entries[i] = (changed(member, type=new, size=0, linkname=link), None)
    elif kind == 2:
        entries[i] = (changed(member, mode=rng.choice([0o755, 0o4644, 0o700, 0o000])), data)
    elif kind == 3:
        entries.insert(rng.randrange(len(entries) + 1), entries[i])
    elif kind == 4:
        del entries[i]
    elif kind in (5, 6) and data:  # flipped bytes or a cut
        raw = bytearray(data)
        if kind == 5:
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        else:
            del raw[rng.randrange(len(raw)) :]
        entries[i] = (changed(member, size=len(raw)), bytes(raw))
    elif kind == 7:  # metrics.json that says something else
        change = rng.choice(
            [
                {"final_test_acc": 12.5},
                {"highest_test_acc": None},
                {"status": rng.choice(["failed", "running", "diverged", 3])},
                {"run_id": RUNS[0].run_id},
                {"epochs_run": 7},
                {"best_epoch": 1},
            ]
        )
        entries = edited(entries, f"{run_id}/metrics.json", metrics_edit(**change))
    elif kind == 8:  # history.csv with a row less, or a column less
        cut = rng.choice([lambda d: b"\n".join(d.splitlines()[:-1]) + b"\n", lambda d: d.replace(b"test_acc", b"acc")])
        entries = edited(entries, f"{run_id}/history.csv", cut)
    elif kind == 9:  # a config of another length: it hashes to another run
        entries = edited(entries, f"{run_id}/config.json", metrics_edit(epochs=5))
    elif kind == 10:  # a file past MAX_FILE_BYTES, or many past MAX_UNPACKED_BYTES
        big = rng.choice([70_000, 40_000])
        for n in range(1 if big == 70_000 else 8):
            name = f"runs/{run_id}/weights.safetensors" if n == 0 else f"runs/{RUNS[n % 4].run_id}/weights.safetensors"
            entries.append(info(name, os.urandom(64) * (big // 64)))
    elif kind == 11:  # past MAX_MEMBERS
        entries += [info(f"runs/r{n}", kind=tarfile.DIRTYPE) for n in range(50)]
    elif kind == 12:  # the trained weights, small: a run folder may hold them
        entries.append(info(f"runs/{run_id}/weights.safetensors", os.urandom(rng.randint(0, 3000))))
    return entries


def test_fuzz_random_archives_never_escape_crash_or_lose_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "MAX_MEMBERS", 40)
    monkeypatch.setattr(archive_module, "MAX_FILE_BYTES", 64_000)
    monkeypatch.setattr(archive_module, "MAX_UNPACKED_BYTES", 200_000)
    rng = random.Random(40)
    source = RunStore(tmp_path / "source")
    for config in RUNS:
        save_run(source, config, "archive")
    runs = {
        c.run_id: [info(f"runs/{c.run_id}", kind=tarfile.DIRTYPE)]
        + [info(f"runs/{c.run_id}/{n}", d) for n, d in source.run_files(c).items()]
        for c in RUNS
    }
    template, root = tmp_path / "template", tmp_path / "here"
    held_store(template)
    shutil.copytree(template, root)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sentinel").write_text("keep")
    (tmp_path / "archives").mkdir()

    def around() -> dict[str, bytes | None]:
        seen = {p.name: None for p in tmp_path.parent.iterdir()}
        for folder in ("outside", "source", "template"):
            seen.update({f"{folder}/{k}": v for k, v in snapshot(tmp_path / folder).items()})
        seen.update({p.name: None for p in tmp_path.iterdir() if p.name not in ("archives",)})
        seen["/tmp/deepcls-evil"] = b"" if os.path.lexists("/tmp/deepcls-evil") else None
        return seen

    outside = around()
    complete = RUNS[0].run_id
    outcomes = {"refused": 0, "imported": 0}
    start = time.monotonic()
    for n in range(300):
        path = tmp_path / "archives" / f"{n}.tar.gz"
        path.write_bytes(fuzzed(rng, runs))
        replace = rng.random() < 0.5
        before = snapshot(root)
        try:
            merged, skipped = merge_runs(path, RunStore(root), replace)
        except StoreError as err:
            assert "\n" not in str(err)
            assert snapshot(root) == before, f"archive {n} was refused ({err}) but changed the store"
            outcomes["refused"] += 1
        else:
            outcomes["imported"] += 1
            with tarfile.open(path) as tar:  # what the archive held for each run it named
                held: dict[str, dict[str, bytes]] = {}
                for member in tar.getmembers():
                    parts = member.name.split("/")
                    if member.isreg():
                        held.setdefault(parts[1], {})[parts[2]] = tar.extractfile(member).read()  # type: ignore[union-attr]
            for run_id in merged:
                assert files_of(RunStore(root).run_dir(run_id)) == held[run_id]
                archived = json.loads(held[run_id]["metrics.json"])["status"]  # a change may have made it diverged
                assert RunStore(root).status(run_id) == archived and archived in FINISHED
            assert complete not in merged or replace
            if complete not in merged:
                assert files_of(root / "runs" / complete) == files_of(template / "runs" / complete)
            assert set(skipped) <= {complete}
            shutil.rmtree(root)
            shutil.copytree(template, root)
        assert leftovers(root) == [], n
        assert around() == outside, f"archive {n} wrote outside the store"
        path.unlink()
    assert outcomes["refused"] > 100 and outcomes["imported"] > 30, outcomes
    assert time.monotonic() - start < 120


def test_an_unchanged_fuzz_archive_is_imported(tmp_path: Path) -> None:
    """The fuzz test's unchanged archives are good ones (so that its refusals are the changes')."""
    source = RunStore(tmp_path / "source")
    save_run(source, RUNS[3], "archive")
    runs = [info(f"runs/{RUNS[3].run_id}", kind=tarfile.DIRTYPE)]
    runs += [info(f"runs/{RUNS[3].run_id}/{n}", d) for n, d in source.run_files(RUNS[3]).items()]
    path = write_archive(tmp_path / "good.tar.gz", [info("runs", kind=tarfile.DIRTYPE), *runs])
    assert merge_runs(path, RunStore(tmp_path / "here")) == ([RUNS[3].run_id], [])
