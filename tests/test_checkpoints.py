"""Resume checkpoints (deepcls.store.checkpoints): saved, read back, dropped and reported, and what
training does with one it cannot continue from (damaged, from other data, of another model, a
damaged final state): it says so in one warning line and starts over, to the same history."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import TINY_RUN, cli_args, count_steps, one_line, results, run_cli, train

from deepcls.store import checkpoints
from deepcls.store.runs import RunStore


def test_checkpoint_round_trip_and_drop(tmp_path: Path) -> None:
    store, cfg = RunStore(tmp_path), TINY_RUN
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
    store, cfg = RunStore(tmp_path), TINY_RUN.replace(epochs=5)
    assert checkpoints.progress(store, cfg) is None and not store.training(cfg)
    checkpoints.save_checkpoint(store, cfg, {"model": {"w": torch.zeros(3)}, "history": [{"epoch": 1}, {"epoch": 2}]})
    assert checkpoints.progress(store, cfg) == "2/5 epochs checkpointed"
    with store.claim(cfg.replace(epochs=9)):  # another length of the same config holds the lock
        assert store.training(cfg)
        assert checkpoints.progress(store, cfg) == "2/5 epochs checkpointed, training now"
    assert not store.training(cfg) and checkpoints.progress(store, cfg) == "2/5 epochs checkpointed"


def test_a_checkpoint_from_other_data_is_discarded_and_the_run_starts_over(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    config = TINY_RUN.replace(epochs=2)
    reference = train(config, tmp_path / "reference", data_dir)
    store = RunStore(tmp_path / "results")
    checkpoints.save_checkpoint(
        store, config, {"model": {}, "optimizer": {}, "history": [{}], "data_fingerprint": "0" * 64}
    )
    steps = count_steps(monkeypatch)
    record = train(config, store.root, data_dir)
    assert len(steps) == 2 * 4  # both epochs trained: 200 images in batches of 64
    line = one_line(capfd.readouterr().err, "deepcls: warning: ")
    assert "was trained on other data" in line and "discarded" in line
    pd.testing.assert_frame_equal(results(record.history), results(reference.history), check_exact=True)


def test_a_damaged_resume_checkpoint_is_discarded_and_the_run_starts_over(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TINY_RUN.replace(epochs=2)
    reference = train(config, tmp_path / "reference", data_dir)
    store = RunStore(tmp_path / "results")
    path = checkpoints.checkpoint_path(store, config)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 half of a checkpoint")
    assert checkpoints.progress(store, config) == "checkpoint damaged, the run will start over"  # `results` reads it
    capsys.readouterr()
    argv = ["train", *cli_args(config), "--results-dir", str(store.root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and "damaged; discarded, the run starts over" in one_line(err, "deepcls: warning: ")
    record = store.load(config)
    pd.testing.assert_frame_equal(results(record.history), results(reference.history), check_exact=True)


def test_a_damaged_final_state_is_not_continued(
    data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    short, longer = TINY_RUN, TINY_RUN.replace(epochs=2)
    reference = train(longer, tmp_path / "reference", data_dir)
    root = tmp_path / "results"
    train(short, root, data_dir)
    final = checkpoints.final_path(RunStore(root), short)
    assert final.exists()
    final.write_bytes(final.read_bytes()[:1000])  # truncated
    capfd.readouterr()
    record = train(longer, root, data_dir)
    assert "damaged; discarded" in one_line(capfd.readouterr().err, "deepcls: warning: ")
    assert record.metrics["extended_from"] is None and not final.exists()
    pd.testing.assert_frame_equal(results(record.history), results(reference.history), check_exact=True)


def test_a_checkpoint_that_does_not_fit_the_model_is_discarded(
    data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store = RunStore(tmp_path)
    checkpoints.save_checkpoint(store, TINY_RUN, {"model": {"w": torch.zeros(2)}, "optimizer": {}, "history": []})
    record = train(TINY_RUN, tmp_path, data_dir)
    assert record.status == "complete" and "does not fit the model" in capfd.readouterr().err
