"""The offline GPU procedure (README "On a GPU") dry-run end to end on the CPU at the smoke profile:
data split into verified parts, rebuilt, runs trained several at once within a budget, one archive
and a timing table out, merged into another store."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.store.archive import sha256
from deepcls.store.runs import RunStore

DEVICE_FILES, DEVICE_FILE_BYTES = 8, 16 * 2**20  # what a device call brings back from $OUT


def test_the_gpu_window_procedure_end_to_end_on_the_cpu(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts, data, out, here = tmp_path / "parts", tmp_path / "data", tmp_path / "out", tmp_path / "here"
    split = ["gpu", "split-data", "--names", "mnist", "--data-dir", str(data_dir), "--out", str(parts)]
    assert main([*split, "--part-mb", "4"]) == 0  # 11.5 MB in three parts
    manifest = json.loads((parts / "mnist.npz.manifest.json").read_text())
    assert len(manifest["parts"]) == 3 and all(p["size"] <= 4 * 2**20 for p in manifest["parts"])

    window = ["gpu", "window", "--out", str(out), "--profile", "smoke", "--seeds", "0,1", "--tables", "vgg_mnist"]
    window += ["--rows", "6,9", "--parts", str(parts), "--data-dir", str(data), "--runs-at-once", "3"]
    window += ["--results-dir", str(tmp_path / "gpu"), "--budget-s", "600", "--quiet"]
    assert main(window) == 0
    assert sha256(data / "mnist.npz") == sha256(data_dir / "mnist.npz") == manifest["sha256"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs_in_grid"] == summary["runs_trained"] == 4 and summary["runs_missing"] == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) <= DEVICE_FILES and all(p.stat().st_size <= DEVICE_FILE_BYTES for p in files)
    assert "| run_id |" in (out / "timing.md").read_text()

    assert main(["gpu", "merge", str(out / "deepcls-runs.tar.gz"), "--results-dir", str(here)]) == 0
    assert "merged 4 runs" in capsys.readouterr().out
    store = RunStore(here)
    assert len(store.run_ids()) == 4
    for run_id in store.run_ids():
        record = store.load(run_id)
        assert record.config.run_id == run_id and record.status == "complete"
        assert record.config.profile == "smoke" and len(record.metrics["trained_alongside"]) >= 2
    assert main(["gpu", "merge", str(out / "deepcls-runs.tar.gz"), "--results-dir", str(here)]) == 0
    assert "merged 0 runs, skipped 4" in capsys.readouterr().out

    # run again: everything is stored, nothing trains, and the archive is empty
    assert main(window) == 0 and json.loads((out / "summary.json").read_text())["runs_trained"] == 0


def test_a_damaged_or_missing_part_is_one_error_and_writes_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts, data = tmp_path / "parts", tmp_path / "data"
    main(["gpu", "split-data", "--names", "mnist", "--data-dir", str(data_dir), "--out", str(parts), "--part-mb", "5"])
    second = parts / "mnist.npz.part-02"
    raw = bytearray(second.read_bytes())
    raw[1000] ^= 1
    second.write_bytes(bytes(raw))
    join = ["gpu", "join-data", "--parts", str(parts), "--data-dir", str(data)]
    assert main(join) == 2
    assert "mnist.npz.part-02 of mnist.npz is damaged" in capsys.readouterr().err
    second.unlink()
    assert main(join) == 2
    assert "mnist.npz.part-02 of mnist.npz is missing" in capsys.readouterr().err
    assert not data.exists() or list(data.iterdir()) == []


def test_merge_refuses_an_archive_whose_run_does_not_hash_to_its_folder(
    tmp_path: Path, stored_run, capsys: pytest.CaptureFixture[str]
) -> None:
    config = RunConfig(dataset="mnist", model="vgg7", epochs=1, profile="smoke")
    stored_run(tmp_path / "src", config)
    run = RunStore(tmp_path / "src").run_dir(config)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "run_id": config.run_id}))
    archive = tmp_path / "runs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(run, arcname="runs/mnist-vgg7-0000000000")
    assert main(["gpu", "merge", str(archive), "--results-dir", str(tmp_path / "here")]) == 2
    assert f"it hashes to {config.run_id}" in capsys.readouterr().err
    assert RunStore(tmp_path / "here").run_ids() == []


def test_the_window_trains_the_tables_in_the_order_named() -> None:
    """``--tables`` is a priority: a short window spends itself on the first tables named."""
    from deepcls.execution.window import tables_first
    from deepcls.paper import grids as experiments
    from deepcls.paper.conclusions import conclusions_first

    named = ["resnet_mnist", "vgg_mnist", "resnet_cifar10"]
    grid = tables_first(conclusions_first(experiments.grid(named, "paper", [0, 1])), named)
    first = grid.drop_duplicates("config", keep="first")["table"].tolist()  # a shared config goes with its first
    assert first == sorted(first, key=named.index)
    assert set(first) == set(named)
    assert tables_first(grid, None) is grid
