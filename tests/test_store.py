"""RunStore: atomic run directories (a save killed half-way is recovered on the next start), lookup,
the frame() query, claims, damaged run files (every command says one line and shows the other runs;
train retrains them) and one-line errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import (
    REPO_ROOT,
    SIGKILL_POINTS,
    TINY_RUN,
    cli_args,
    grid_config,
    history_frame,
    leftovers,
    one_line,
    results,
    run_cli,
    save_run,
    train,
)

import deepcls.store.runs as store_module
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.engine.fit import fit
from deepcls.errors import StoreError
from deepcls.report.build import NotebookOutcome
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore

RUN_FILES = {"config.json", "history.csv", "metrics.json", "confusion.npy", "samples.npz"}


def config(**changes: Any) -> RunConfig:
    return RunConfig(**{"dataset": "mnist", "model": "vgg7", "width": "reduced", "epochs": 2, **changes})


def metrics(cfg: RunConfig, acc: float = 92.0, status: str = "complete") -> dict[str, Any]:
    return {
        "run_id": cfg.run_id,
        "status": status,
        "final_test_acc": acc,
        "highest_test_acc": acc,
        "best_epoch": 2,
        "diverged_epoch": None,
        "per_class_acc": [acc] * 10,
        "most_confused": [[4, 9, 3]],
    }


def save(store: RunStore, cfg: RunConfig, acc: float = 92.0, status: str = "complete") -> Path:
    confusion = np.diag(np.full(10, 10, dtype=np.int64))
    samples = {"correct_index": np.arange(5), "wrong_index": np.arange(5, 8)}
    return store.save(cfg, history_frame(acc=acc), metrics(cfg, acc, status), confusion, samples)


def test_save_writes_a_complete_run_and_load_reads_it_back(tmp_path: Path) -> None:
    store, cfg = RunStore(tmp_path), config(augment="flip")
    path = save(store, cfg)
    assert path == tmp_path / "runs" / cfg.run_id
    assert {p.name for p in path.iterdir()} == RUN_FILES
    assert leftovers(store.root) == []
    record = store.load(cfg)
    assert record.config == cfg and record.run_id == cfg.run_id and record.status == "complete"
    pd.testing.assert_frame_equal(record.history, history_frame(acc=92.0))
    assert record.confusion is not None and record.confusion.sum() == 100
    assert record.samples["wrong_index"].tolist() == [5, 6, 7]
    assert not record.reused
    assert store.status(cfg) == "complete" and store.has(cfg)
    assert store.load(cfg.run_id).config == cfg


def test_run_dir_appears_only_when_every_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, cfg = RunStore(tmp_path), config()
    real_savez = np.savez
    seen: list[bool] = []

    def savez(file: Any, **arrays: np.ndarray) -> None:  # the last file written
        seen.append(store.run_dir(cfg).exists())
        real_savez(file, **arrays)

    monkeypatch.setattr(np, "savez", savez)
    save(store, cfg)
    assert seen == [False]
    assert {p.name for p in store.run_dir(cfg).iterdir()} == RUN_FILES


def test_save_replaces_an_existing_run(tmp_path: Path) -> None:
    store, cfg = RunStore(tmp_path), config()
    save(store, cfg, acc=80.0)
    save(store, cfg, acc=95.0)
    assert store.load(cfg).metrics["final_test_acc"] == 95.0
    assert store.run_ids() == [cfg.run_id]
    assert leftovers(store.root) == []


def test_failure_midway_leaves_no_partial_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, fresh, existing = RunStore(tmp_path), config(seed=1), config(seed=2)
    save(store, existing, acc=80.0)

    def broken_save(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken_save)
    for cfg in (fresh, existing):
        with pytest.raises(OSError, match="disk full"):
            save(store, cfg, acc=99.0)
    assert not store.run_dir(fresh).exists() and store.status(fresh) is None
    assert store.load(existing).metrics["final_test_acc"] == 80.0  # the old run is untouched
    assert store.run_ids() == [existing.run_id]
    assert leftovers(store.root) == []


def test_a_run_trained_elsewhere_is_stored_atomically_from_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the ray executor does: a worker's run folder, as bytes, lands in the driver's store."""
    worker, driver, cfg = RunStore(tmp_path / "worker"), RunStore(tmp_path / "driver"), config()
    save(worker, cfg)
    files = worker.run_files(cfg)
    assert set(files) == RUN_FILES
    assert driver.save_files(cfg.run_id, files) == driver.run_dir(cfg)
    assert driver.run_files(cfg) == files and driver.load(cfg).config == cfg and leftovers(driver.root) == []

    refused = [("../escape", ["metrics.json"]), (cfg.run_id, ["../metrics.json"]), (cfg.run_id, [".x"])]
    refused.append((cfg.run_id, ["metrics.json", "run.sh"]))  # only the files a run folder holds
    for run_id, names in refused:
        with pytest.raises(StoreError, match="refusing to store"):
            driver.save_files(run_id, dict.fromkeys(names, b"{}"))

    def broken_write(self: Path, data: bytes) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", broken_write)
    with pytest.raises(OSError, match="disk full"):
        driver.save_files(cfg.run_id, {**files, "metrics.json": b"{}"})
    monkeypatch.undo()
    assert driver.run_files(cfg) == files and leftovers(driver.root) == []  # the stored run is untouched


def test_frame_has_one_row_per_run_with_config_and_metric_columns(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    assert store.frame().empty and store.run_ids() == []
    configs = [config(lr=1e-3), config(lr=1e-2, augment="flip,crop"), config(model="vgg9")]
    for i, cfg in enumerate(configs):
        save(store, cfg, acc=90.0 + i, status="diverged" if i == 2 else "complete")
    frame = store.frame()
    assert len(frame) == 3 and sorted(frame["run_id"]) == sorted(c.run_id for c in configs)
    row = frame.set_index("run_id").loc[configs[1].run_id]
    assert row["lr"] == 1e-2 and row["augment"] == "flip,crop" and row["model"] == "vgg7"
    assert row["final_test_acc"] == 91.0 and row["status"] == "complete"
    assert frame.set_index("run_id").loc[configs[0].run_id, "augment"] == "none"
    assert "per_class_acc" not in frame.columns  # lists are not columns
    assert not {"device", "threads"} & set(frame.columns)  # speed-only fields are not identity
    assert list(store.frame([configs[2]])["model"]) == ["vgg9"]
    assert list(store.frame([configs[0].run_id])["lr"]) == [1e-3]


def test_leftover_temporary_dirs_are_not_runs(tmp_path: Path) -> None:
    """A process killed inside save() leaves .tmp-<id>-* behind: it must not count as a run."""
    store, cfg = RunStore(tmp_path), config()
    save(store, cfg)
    stale = store.runs / f".tmp-{cfg.run_id}-abc123"
    stale.mkdir()
    (stale / "metrics.json").write_text(json.dumps(metrics(cfg)))
    assert store.run_ids() == [cfg.run_id]
    assert len(store.frame()) == 1


def test_load_of_unknown_run_is_a_store_error(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    with pytest.raises(StoreError, match="no stored run 'mnist-vgg7-0000000000'"):
        store.load("mnist-vgg7-0000000000")
    with pytest.raises(StoreError):
        store.load(config())
    assert store.status(config()) is None and not store.has(config())


def test_unwritable_results_dir_is_one_line_store_error(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    root = tmp_path / "file" / "results"
    with pytest.raises(StoreError, match="not writable") as info:
        RunStore(root).ensure_writable()
    assert "\n" not in str(info.value) and str(root) in str(info.value)
    with pytest.raises(StoreError, match="not writable"):  # fit checks before training
        fit(config(), results_dir=str(root), data_dir=str(data_dir), progress=False)


def test_results_dir_defaults_to_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPCLS_RESULTS_DIR", str(tmp_path / "env-results"))
    assert RunStore().root == tmp_path / "env-results"
    assert RunStore(tmp_path / "explicit").root == tmp_path / "explicit"


HOLD_CLAIM = """
import json, sys
from deepcls.config import RunConfig
from deepcls.store.runs import RunStore
with RunStore(sys.argv[1]).claim(RunConfig.from_dict(json.loads(sys.argv[2]))):
    print("claimed", flush=True)
    sys.stdin.readline()  # hold the lock until told to let go
"""


def test_training_sees_a_run_another_process_holds_until_it_lets_go(tmp_path: Path) -> None:
    cfg = config(epochs=5)
    argv = [sys.executable, "-c", HOLD_CLAIM, str(tmp_path), json.dumps(cfg.replace(epochs=9).to_dict())]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "claimed\n"
        store = RunStore(tmp_path)
        assert store.training(cfg) and store.training(cfg.replace(epochs=9))  # any length of the config
        assert checkpoints.progress(store, cfg) == "training now" and not store.training(config(seed=1))
        holder.communicate("\n", timeout=60)  # let go, and end
    finally:
        holder.kill()
        holder.wait()
    assert holder.returncode == 0
    assert not store.training(cfg) and checkpoints.progress(store, cfg) is None


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"final_test_acc": float("nan")}, "final_test_acc nan is no accuracy from 0 to 100"),
        ({"highest_test_acc": 1e9}, "highest_test_acc 1000000000.0 is no accuracy from 0 to 100"),
        ({"final_test_acc": -50.0}, "final_test_acc -50.0 is no accuracy from 0 to 100"),
        ({"final_test_acc": 91.0}, "final_test_acc 91.0 disagrees with history.csv (92.0)"),
        ({"epochs_run": 5}, "epochs_run 5 disagrees with history.csv (2)"),
    ],
    ids=["nan", "huge", "negative", "not-the-history", "epochs"],
)
def test_a_run_with_impossible_numbers_is_damaged_named_once_and_left_out(
    edit: dict[str, Any], reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A metrics.json edited by hand or by a bug is never averaged: tables and the ledger see the
    same n (the run is missing everywhere), and one warning names it."""
    store = RunStore(tmp_path)
    good, bad = config(seed=0), config(seed=1)
    save(store, good), save(store, bad)
    path = store.run_dir(bad) / "metrics.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | edit))  # NaN as JSON's NaN, as a bug would write it
    assert store.record(good) is not None and store.record(bad) is None and store.record(bad) is None
    assert list(store.frame()["run_id"]) == [good.run_id]
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"deepcls: warning: run {bad.run_id} is damaged, treated as missing (retrained when asked): "
        f"{path} (metrics.json's {reason})"
    ]


def test_a_results_folder_that_is_a_link_loop_is_one_error_not_an_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(StoreError, match="cannot be read \\(Too many levels of symbolic links\\)"):
        RunStore(tmp_path / "a")
    assert main(["results", "--profile", "smoke", "--results-dir", str(tmp_path / "a")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Too many levels of symbolic links" in err


KILLED_SAVE = (
    SIGKILL_POINTS
    + """
import json
import pandas as pd
from deepcls.config import RunConfig

root, when, config = sys.argv[1], sys.argv[2], RunConfig.from_dict(json.loads(sys.argv[3]))
if when == "between-renames":  # SIGKILL right after the old run was renamed aside
    kill_after_replace(lambda b: os.path.basename(b).startswith(".old-"))
else:
    kill_after_exchange()
history = pd.DataFrame({"epoch": [1], "test_acc": [99.0]})
metrics = {"status": "complete", "tag": "new", "final_test_acc": 99.0, "highest_test_acc": 99.0}
S.RunStore(root).save(config, history, metrics)
"""
)


@pytest.mark.parametrize("when", ["between-renames", "after-exchange"])
def test_a_kill_while_replacing_a_run_is_recovered_on_the_next_start(when: str, tmp_path: Path) -> None:
    save_run(RunStore(tmp_path), TINY_RUN, "old")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-c", KILLED_SAVE, str(tmp_path), when, json.dumps(TINY_RUN.to_dict())]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    live = tmp_path / "runs" / TINY_RUN.run_id
    if when == "between-renames":  # the old run is aside, its replacement never arrived
        assert not live.exists() and [n[:5] for n in leftovers(tmp_path)] == [".old-", ".tmp-"]
        expected = "old"
    else:  # swapped: the new run is live, the old one waits in the temporary to be deleted
        assert live.exists() and [n[:5] for n in leftovers(tmp_path)] == [".tmp-"]
        expected = "new"
    store = RunStore(tmp_path)  # the next start recovers
    assert store.load(TINY_RUN).metrics["tag"] == expected and leftovers(tmp_path) == []


def test_a_reader_during_a_replacement_sees_the_old_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an atomic exchange there is a moment with no run under its id: readers (whose start
    must not 'recover' a live save) read the run set aside."""
    store = RunStore(tmp_path)
    save_run(store, TINY_RUN, "old")
    monkeypatch.setattr(store_module, "_exchange", lambda a, b: False)
    seen, real_replace = [], os.replace

    def replace(a: Any, b: Any) -> None:
        real_replace(a, b)
        if Path(b).name.startswith(".old-"):
            reader = RunStore(tmp_path)
            seen.append(
                (reader.status(TINY_RUN), reader.load(TINY_RUN).metrics["tag"], reader.run_dir(TINY_RUN).exists())
            )

    monkeypatch.setattr(os, "replace", replace)
    save_run(store, TINY_RUN, "new")
    assert seen == [("complete", "old", False)]
    assert store.load(TINY_RUN).metrics["tag"] == "new" and leftovers(tmp_path) == []


def test_the_next_start_removes_stale_temporaries_and_keeps_live_files(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    save_run(store, TINY_RUN, "live")
    checkpoints.save_checkpoint(store, TINY_RUN, {"model": {}, "history": []})
    stale = [
        tmp_path / "runs" / f".tmp-{TINY_RUN.run_id}-abc",  # a save killed while writing
        tmp_path / "runs" / f".old-{TINY_RUN.run_id}",  # a save killed before deleting the replaced run
        tmp_path / ".cache" / "checkpoints" / f".tmp-{TINY_RUN.run_id}.pt-xyz.pt",  # a killed checkpoint write
    ]
    stale[0].mkdir()
    (stale[0] / "history.csv").write_text("epo")
    stale[1].mkdir()
    stale[2].write_bytes(b"\0" * 1000)
    store = RunStore(tmp_path)
    assert not any(p.exists() for p in stale) and leftovers(tmp_path) == []
    assert store.load(TINY_RUN).metrics["tag"] == "live" and checkpoints.checkpoint_path(store, TINY_RUN).exists()


def _predictions(true: list[int], predicted: list[int]) -> bytes:
    """The bytes of a predictions.npz holding these labels."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, index=np.arange(len(true)), true=np.array(true), predicted=np.array(predicted))
    return buffer.getvalue()


DAMAGE = {
    "metrics.json truncated": ("metrics.json", b'{"status": "comp'),
    "metrics.json without status": ("metrics.json", b'{"tag": "x"}'),
    "config.json not UTF-8": ("config.json", b"\xff\xfe\x00garbage"),
    "config.json of another run": ("config.json", json.dumps(TINY_RUN.replace(seed=7).to_dict()).encode()),
    "history.csv empty": ("history.csv", b""),
    "confusion.npy garbage": ("confusion.npy", b"\x93NUMPY garbage"),
    "samples.npz garbage": ("samples.npz", b"PK\x03\x04 not a zip"),
    "predictions.npz garbage": ("predictions.npz", b"PK\x03\x04 not a zip"),
    "predictions.npz other than the confusion": ("predictions.npz", _predictions([0] * 100, [1] * 100)),
    "predictions.npz of other lengths": ("predictions.npz", _predictions([0] * 100, [0] * 99)),
}


@pytest.fixture
def damaged_store(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, RunConfig, RunConfig, str]:
    """Two smoke-profile vgg_mnist rows stored (6 and 7); ``request.param`` damages one file of row 6."""
    damaged, intact = (grid_config("vgg_mnist", row, profile="smoke") for row in (6, 7))
    root = tmp_path / "results"
    save_run(RunStore(root), damaged, "damaged", acc=11.0)
    save_run(RunStore(root), intact, "intact", acc=77.0)
    name, content = DAMAGE[request.param]
    (root / "runs" / damaged.run_id / name).write_bytes(content)
    return root, damaged, intact, name


@pytest.mark.parametrize("damaged_store", DAMAGE, indirect=True)
def test_every_command_over_a_damaged_run_says_one_line_and_shows_the_rest(
    damaged_store: tuple[Path, RunConfig, RunConfig, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, damaged, intact, name = damaged_store
    store = RunStore(root)
    assert store.status(damaged) is None and not store.has(damaged) and store.status(intact) == "complete"
    assert list(store.frame()["run_id"]) == [intact.run_id]
    capsys.readouterr()

    args = ["--profile", "smoke", "--tables", "vgg_mnist", "--results-dir", str(root)]
    code, out, err = run_cli(["results", *args, "--markdown"], capsys)
    line = one_line(err, "deepcls: warning: ")
    assert code == 0 and f"run {damaged.run_id} is damaged" in line and name in line
    rows = {int(r.split("|")[2]): r for r in out.splitlines()[2:]}
    assert "77.00" in rows[7] and "complete" in rows[7] and "pending" in rows[6] and len(rows) == 10

    written = tmp_path / "RESULTS.md"
    code, out, err = run_cli(
        ["markdown", "--profiles", "smoke", "--path", str(written), "--results-dir", str(root)], capsys
    )
    assert code == 0 and name in one_line(err, "deepcls: warning: ") and "| vgg_mnist | 7 |" in written.read_text()

    from deepcls.report.build import write_index

    write_index("smoke", [NotebookOutcome("01_x", True)], tmp_path, str(root))  # what `report` reads itself
    page = (tmp_path / "index.html").read_text()
    assert "overview table failed" not in page and "Traceback" not in page and "77.00" in page


@pytest.mark.parametrize("damage", DAMAGE)
def test_train_retrains_a_damaged_run(
    damage: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "results"
    record = train(TINY_RUN, root, data_dir)
    name, content = DAMAGE[damage]
    (record.path / name).write_bytes(content)
    capsys.readouterr()
    argv = ["train", *cli_args(TINY_RUN), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and out.startswith(f"trained {TINY_RUN.run_id}: status complete")
    assert name in one_line(err, "deepcls: warning: ")
    again = RunStore(root).load(TINY_RUN)
    pd.testing.assert_frame_equal(results(again.history), results(record.history), check_exact=True)
    assert leftovers(root) == []


def test_a_run_id_read_from_a_file_stays_inside_the_store(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "here")
    save_run(RunStore(tmp_path), TINY_RUN, "outside")  # a run folder beside the store, not in it
    for name in ("../../runs/" + TINY_RUN.run_id, "..", ".old-x", "a/b", ""):
        with pytest.raises(StoreError, match="is not a run id"):
            store.run_dir(name)
        assert store.record(name) is None and store.status(name) is None
