"""RunStore: atomic run directories, lookup, the frame() query, checkpoints and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.engine.fit import HISTORY_COLUMNS, fit
from deepcls.errors import StoreError
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = {"config.json", "history.csv", "metrics.json", "confusion.npy", "samples.npz"}


def config(**changes: Any) -> RunConfig:
    return RunConfig(**{"dataset": "mnist", "model": "vgg7", "width": "reduced", "epochs": 2, **changes})


def history(epochs: int = 2, acc: float = 90.0) -> pd.DataFrame:
    rows = [[e, 1e-3, 1.0 / e, acc - 5 + e, 1.2 / e, acc + e, 0.5, 1000.0] for e in range(1, epochs + 1)]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


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
    return store.save(cfg, history(acc=acc - 2), metrics(cfg, acc, status), confusion, samples)


def leftovers(store: RunStore) -> list[str]:
    return sorted(p.name for p in store.runs.iterdir() if p.name.startswith("."))


def test_save_writes_a_complete_run_and_load_reads_it_back(tmp_path: Path) -> None:
    store, cfg = RunStore(tmp_path), config(augment="flip")
    path = save(store, cfg)
    assert path == tmp_path / "runs" / cfg.run_id
    assert {p.name for p in path.iterdir()} == RUN_FILES
    assert leftovers(store) == []
    record = store.load(cfg)
    assert record.config == cfg and record.run_id == cfg.run_id and record.status == "complete"
    pd.testing.assert_frame_equal(record.history, history(acc=90.0))
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
    assert leftovers(store) == []


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
    assert leftovers(store) == []


def test_a_run_trained_elsewhere_is_stored_atomically_from_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the ray executor does: a worker's run folder, as bytes, lands in the driver's store."""
    worker, driver, cfg = RunStore(tmp_path / "worker"), RunStore(tmp_path / "driver"), config()
    save(worker, cfg)
    files = worker.run_files(cfg)
    assert set(files) == RUN_FILES
    assert driver.save_files(cfg.run_id, files) == driver.run_dir(cfg)
    assert driver.run_files(cfg) == files and driver.load(cfg).config == cfg and leftovers(driver) == []

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
    assert driver.run_files(cfg) == files and leftovers(driver) == []  # the stored run is untouched


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


def test_checkpoint_round_trip_and_drop(tmp_path: Path) -> None:
    store, cfg = RunStore(tmp_path), config()
    assert checkpoints.load_checkpoint(store, cfg) is None
    state = {"model": {"w": torch.arange(4.0)}, "history": [{"epoch": 1, "train_loss": 0.5}]}
    checkpoints.save_checkpoint(store, cfg, state)
    path = checkpoints.checkpoint_path(store, cfg)
    assert path == tmp_path / ".cache" / "checkpoints" / f"{cfg.run_id}.pt"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    loaded = checkpoints.load_checkpoint(store, cfg)
    assert loaded is not None and torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["history"] == state["history"]
    checkpoints.drop_checkpoint(store, cfg)
    assert not path.exists() and checkpoints.load_checkpoint(store, cfg) is None
    checkpoints.drop_checkpoint(store, cfg)  # dropping twice is fine


def test_progress_names_checkpointed_epochs_and_a_run_training_now(tmp_path: Path) -> None:
    store, cfg = RunStore(tmp_path), config(epochs=5)
    assert checkpoints.progress(store, cfg) is None and not store.training(cfg)
    checkpoints.save_checkpoint(store, cfg, {"model": {"w": torch.zeros(3)}, "history": [{"epoch": 1}, {"epoch": 2}]})
    assert checkpoints.progress(store, cfg) == "2/5 epochs checkpointed"
    with store.claim(cfg.replace(epochs=9)):  # another length of the same config holds the lock
        assert store.training(cfg)
        assert checkpoints.progress(store, cfg) == "2/5 epochs checkpointed, training now"
    assert not store.training(cfg) and checkpoints.progress(store, cfg) == "2/5 epochs checkpointed"


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
    env = {**os.environ, "PYTHONPATH": str(REPO)}
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
