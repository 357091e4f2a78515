"""``deepcls bench`` end to end on the real data: both loops timed on one device, the ratio theirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepcls.cli import main


def test_bench_times_both_loops_on_the_same_device(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "bench",
            "--model",
            "vgg7",
            "--dataset",
            "mnist",
            "--batch-size",
            "16",
            "--steps",
            "2",
            "--runs-at-once",
            "2",
            "--data-dir",
            str(data_dir),
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["device"] == "cpu"  # no GPU here; on one, the reference loop runs there too
    for loop in ("reference", "deepcls"):
        assert result[loop]["train_images_per_s"] > 0 and result[loop]["eval_images_per_s"] > 0
    assert result["train_ratio"] == pytest.approx(
        result["deepcls"]["train_images_per_s"] / result["reference"]["train_images_per_s"]
    )
    assert result["modes"]["graphs"] is None  # CUDA graphs need a CUDA device: no number is made up
    assert result["modes"]["eager"] == result["deepcls"] and result["modes"]["2 at once"]["train_images_per_s"] > 0
