"""``deepcls bench`` end to end on the real data: both loops timed on one device, side by side."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deepcls.cli import main
from deepcls.numeric import resolve_device


def test_bench_times_both_loops_on_the_engines_device(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
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
    ]
    code = main([*args, "--data-dir", str(data_dir), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["device"] == str(resolve_device("auto"))  # the reference loop runs there too
    for loop in ("reference", "deepcls"):
        assert result[loop]["train_images_per_s"] > 0 and result[loop]["eval_images_per_s"] > 0
    on_cuda = resolve_device("auto").type == "cuda"
    assert (result["modes"]["graphs"] is None) == (not on_cuda)  # graphs need CUDA: no number is made up
    assert result["modes"]["eager"] == result["deepcls"] and result["modes"]["2 at once"]["train_images_per_s"] > 0


def test_denormals_bench_times_both_sides_each_in_its_own_process(capsys: pytest.CaptureFixture[str]) -> None:
    from deepcls.bench import denormals

    assert denormals.main(["--threads", "2", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "denormals kept (reference)" in out and "flushing: False" in out  # the reference really keeps them
    assert "denormals flushed (deepcls)" in out and "flushing: True" in out
    assert re.search(r"speed-up: \d+\.\dx", out)
