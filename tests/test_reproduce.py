"""deepcls reproduce: a retrain from a stored run's own config.json, compared epoch by epoch; an
identical retrain hands a run stored without weights its network back."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import REPO_ROOT, SMALL_VGG7

from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.engine.evaluate import load_model
from deepcls.engine.fit import fit
from deepcls.engine.reproduce import Reproduction
from deepcls.errors import StoreError
from deepcls.store.runs import RunStore
from deepcls.store.weights import HASH_KEY, cache_path

TINY = RunConfig(**SMALL_VGG7, epochs=2, subset=200, test_subset=100, batch_size=50, profile="smoke")
# The cheapest committed run (quick, VGG-7 on MNIST, stored by 0.1.0 without weights) and its row's other seeds.
COMMITTED = "mnist-vgg7-8f37d2627c"
ITS_ROW = (COMMITTED, "mnist-vgg7-37f13d2ffc", "mnist-vgg7-a8ac9020fc")


def reproduce(capsys: pytest.CaptureFixture[str], root: Path, data_dir: Path, *runs: str) -> tuple[int, list[str]]:
    code = main(["reproduce", *runs, "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"])
    return code, capsys.readouterr().out.splitlines()


def test_a_fresh_run_whose_weights_were_deleted_is_identical_and_gets_them_back(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = fit(TINY, results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    metrics = (record.path / "metrics.json").read_bytes()
    cache_path(tmp_path, record.run_id).unlink()
    with pytest.raises(StoreError, match="not in"):
        load_model(record.run_id, RunStore(tmp_path))

    code, lines = reproduce(capsys, tmp_path, data_dir, record.run_id)
    assert code == 0
    assert lines[0] == f"{record.run_id}: identical"
    assert lines[1].endswith("(stored and retrained); weights restored from the retrain")
    assert all(len(line) <= 100 for line in lines)
    assert (record.path / "metrics.json").read_bytes() == metrics  # it had its hash: nothing else changes
    assert not list((tmp_path / ".cache").glob("reproduce-*"))  # the scratch store is gone
    assert main(["evaluate", record.run_id, "--results-dir", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    assert "agrees (bit-equal" in capsys.readouterr().out


def test_a_committed_run_is_retrained_and_compared(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for run_id in ITS_ROW:
        shutil.copytree(REPO_ROOT / "results" / "runs" / run_id, tmp_path / "runs" / run_id)
    before = {p.name: p.read_bytes() for p in (tmp_path / "runs" / COMMITTED).iterdir()}

    code, lines = reproduce(capsys, tmp_path, data_dir, COMMITTED)
    assert code == 0  # its numeric class was not recorded: a difference is a sample, not a failure
    verdict = re.fullmatch(
        rf"{COMMITTED}: (identical|differs: largest \|Δ test accuracy\| \d+\.\d\d at epoch \d; "
        r"its row's seed noise \d+\.\d\d \(sd, 3 seeds\))",
        lines[0],
    )
    assert verdict, lines
    assert lines[1].startswith("  stored CPU ? x2 bf16, retrained CPU ")  # both numeric classes, named
    after = {p.name: p.read_bytes() for p in (tmp_path / "runs" / COMMITTED).iterdir()}
    if verdict.group(1) == "identical":  # the run gains its network and the hash that checks it
        metrics = json.loads(after.pop("metrics.json"))
        assert HASH_KEY in metrics and json.loads(before.pop("metrics.json")) == {
            k: v for k, v in metrics.items() if k != HASH_KEY
        }
        load_model(COMMITTED, RunStore(tmp_path))
    else:
        assert lines[1].endswith("weights not restored (the retrain differs)")
    assert after == before  # every number and file of the record as it was


def test_a_same_class_retrain_that_differs_fails_and_says_by_how_much() -> None:
    found = Reproduction(
        run_id="mnist-vgg7-0123456789",
        identical=False,
        same_class=True,
        stored_class="CPU amx x1 bf16",
        retrained_class="CPU amx x1 bf16",
        largest=0.35,
        at_epoch=3,
        seed_noise=0.21,
        seeds=3,
        weights="not restored (the retrain differs)",
    )
    assert found.failed
    assert found.lines() == [
        "mnist-vgg7-0123456789: differs: largest |Δ test accuracy| 0.35 at epoch 3; its row's seed noise "
        "0.21 (sd, 3 seeds)",
        "  CPU amx x1 bf16 (stored and retrained); weights not restored (the retrain differs)",
    ]
    assert not Reproduction(**{**found.__dict__, "same_class": False}).failed


def test_reproduce_refuses_unknown_runs_and_an_empty_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", "--results-dir", str(tmp_path)]) == 2
    assert main(["reproduce", "--profile", "paper", "--results-dir", str(tmp_path)]) == 2
    assert main(["reproduce", "mnist-vgg7-0123456789", "--results-dir", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(e.startswith("deepcls: error: ") for e in errors)
