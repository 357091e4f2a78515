"""Time-boxed training and run archives, end to end on the CPU at the smoke profile: runs trained
several at once within a budget, exported as one archive, imported into another store, verified."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.store.runs import RunStore


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
    config = RunConfig(dataset="mnist", model="vgg7", epochs=1, profile="smoke")
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
