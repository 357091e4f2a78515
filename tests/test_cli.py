"""The deepcls command line: train end to end, info, --help, and one-line errors: exit code 2 for
bad input, 1 for a run that fails or a full disk (the rerun resumes), 130 for Ctrl-C."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import errno
import importlib
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from helpers import REPO_ROOT, SMALL_VGG7, TINY_RUN, cli_args, leftovers, one_line, results, run_cli, train

from deepcls.cli import build_parser, main
from deepcls.config import RunConfig
from deepcls.data import AUGMENTATION_NAMES
from deepcls.engine.fit import Trainer
from deepcls.models import list_models
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore

SMALL_ARGS = [
    "--dataset",
    "mnist",
    "--model",
    "vgg7",
    "--width",
    "reduced",
    "--classifier-width",
    "64",
    "--epochs",
    "1",
    "--subset",
    "500",
    "--test-subset",
    "100",
    "--batch-size",
    "50",
]
SMALL = RunConfig(**SMALL_VGG7, epochs=1, subset=500, test_subset=100, batch_size=50)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_train_end_to_end_then_reuse(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    env = {**os.environ, "DEEPCLS_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "deepcls", "train", *SMALL_ARGS, "--results-dir", str(results), "--quiet"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    run_dir = results / "runs" / SMALL.run_id
    assert done.stdout.startswith(f"trained {SMALL.run_id}: status complete, epochs 1")
    assert f"stored in {run_dir}" in done.stdout
    assert (run_dir / "metrics.json").is_file()
    assert "epoch 1/1" not in done.stderr  # --quiet: no progress bar

    code, out, _ = run_cli(
        ["train", *SMALL_ARGS, "--results-dir", str(results), "--data-dir", str(data_dir), "--quiet"], capsys
    )
    assert code == 0
    assert out.startswith(f"reused {SMALL.run_id}: status complete")
    assert f"stored in {run_dir}" in out


def test_info_lists_models_and_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["info"], capsys)
    assert code == 0 and err == ""
    assert out.startswith("deepcls ")
    for name in ("mnist", "cifar10", *list_models()):
        assert f"  {name} " in out
    assert re.search(r"  bf16: (yes|no|native \((AMX|AVX512_BF16)\)|emulated \(no AMX or AVX512-BF16)", out)


def subcommands() -> list[str]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(actions[0].choices)


def test_every_command_the_readme_shows_parses() -> None:
    """The README's command-line examples are what the parser accepts (documentation that cannot rot)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme.replace("\\\n", " "), re.S)
    shown = [
        line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("deepcls ")
    ]
    assert {line.split()[1] for line in shown} >= set(subcommands())
    for line in shown:
        build_parser().parse_args(line.split()[1:])


@pytest.mark.parametrize("command", [[], *([name] for name in subcommands())], ids=lambda c: c[0] if c else "deepcls")
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*command, "--help"], capsys)
    assert code == 0 and err == ""
    assert out.startswith("usage: deepcls")
    if command == ["train"]:
        assert "--lr" in out and "--results-dir" in out and "--augment" in out
        assert all(name in " ".join(out.split()) for name in AUGMENTATION_NAMES)  # help lists every augmentation


def _bad_inputs() -> dict[str, tuple[list[str], str]]:
    """``tests/bad_cli_inputs.csv`` (case, arguments, the error expected), plus the devices this machine lacks."""
    with open(Path(__file__).with_name("bad_cli_inputs.csv"), newline="") as f:
        cases = {line["case"]: (line["arguments"].split(), line["message"]) for line in csv.DictReader(f)}
    if not torch.cuda.is_available():
        cases["no cuda"] = (["--device", "cuda"], "CUDA is not available")
    if not torch.backends.mps.is_available():
        cases["no mps"] = (["--device", "mps"], "MPS is not available")
    return cases


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code, out, err = run_cli(["train", *SMALL_ARGS, *extra, "--results-dir", str(results), "--quiet"], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("deepcls: error: ") and message in err
    assert out == ""
    assert not results.exists()


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["fly"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("deepcls: error: ")


def test_results_with_zero_jobs_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        [
            "results",
            "--profile",
            "smoke",
            "--tables",
            "vgg_mnist",
            "--train",
            "--jobs",
            "0",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        capsys,
    )
    assert code == 2 and out == "" and err == "deepcls: error: argument --jobs: must be >= 1, got 0\n"
    assert not (tmp_path / "results").exists()


def test_missing_data_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No mnist.npz and (offline) no download: one line, no traceback, no file under the results dir."""
    empty, results = tmp_path / "empty", tmp_path / "results"
    empty.mkdir()

    def offline(*args: object, **kwargs: object) -> None:  # as on a machine without network, even in CI
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, out, err = run_cli(
        ["train", *SMALL_ARGS, "--data-dir", str(empty), "--results-dir", str(results), "--quiet"], capsys
    )
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("deepcls: error: ")
    assert f"{empty / 'mnist.npz'} not found" in err
    assert files_under(results) == []


def test_unwritable_results_dir_is_one_line(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("a regular file, so nothing can be created below it")
    results = tmp_path / "file" / "results"
    code, out, err = run_cli(
        ["train", *SMALL_ARGS, "--data-dir", str(data_dir), "--results-dir", str(results), "--quiet"], capsys
    )
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("deepcls: error: results directory")
    assert "not writable" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_results_prints_the_reported_numbers_as_markdown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        main(
            [
                "results",
                "--profile",
                "paper",
                "--tables",
                "vgg_mnist",
                "--rows",
                "9,10",
                "--results-dir",
                str(tmp_path),
                "--markdown",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and "| vgg_mnist | 9 | 99.95 | 99.52 |" in lines[2] and "pending" in lines[3]
    assert not (tmp_path / "runs").exists()


def test_results_shows_how_far_an_unfinished_run_has_got(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from deepcls.paper import grids as experiments
    from deepcls.store.runs import RunStore

    config = experiments.table_grid("vgg_mnist", "paper").query("row == 9")["config"].iloc[0]
    checkpoints.save_checkpoint(RunStore(tmp_path), config, {"history": [{"epoch": e} for e in range(1, 8)]})
    assert (
        main(
            ["results", "--profile", "paper", "--tables", "vgg_mnist", "--rows", "9,10", "--results-dir", str(tmp_path)]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()  # each row's line, then its details folded beneath
    assert out[1].split()[:2] == ["vgg_mnist", "9"] and out[1].endswith("pending")
    said = " ".join(" ".join(out).split())
    assert "7/30 epochs checkpointed" in said and said.count("checkpointed") == 1


def test_markdown_writes_results_md_into_the_results_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["markdown", "--profiles", "paper", "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# deepcls results\n") and "### Profile `paper` (0 of " in text
    assert "| vgg_mnist | 10 | 99.92 | 99.59 |" in text and "## Which of the report's conclusions hold" in text
    assert capsys.readouterr().out == f"wrote {tmp_path / 'RESULTS.md'}\n"
    assert main(["markdown", "--profiles", "huge", "--results-dir", str(tmp_path)]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err


def test_results_md_lists_only_the_rows_run_of_a_profile_run_on_few(tmp_path: Path, stored_run) -> None:
    from deepcls.paper import grids as ex

    grid = ex.table_grid("vgg_mnist", "best")
    stored_run(tmp_path, grid.loc[grid["row"] == 10, "config"].iloc[0], test_acc=99.7, final_test_acc=99.5)
    assert main(["markdown", "--profiles", "best", "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "### Profile `best` (1 of " in text and "Only the rows run are listed" in text
    assert "| vgg_mnist | 10 | 99.92 | 99.59 |" in text and "| vgg_mnist | 9 |" not in text
    assert "1 of 1 reported rows beaten on test accuracy (median Δ +0.11), 0 on the final epoch alone" in text


def test_results_md_states_the_measured_seed_noise_once_two_seeds_are_stored(tmp_path: Path, stored_run) -> None:
    from deepcls.analysis.findings import NOISE_ROW
    from deepcls.paper import grids as ex

    readme = tmp_path / "RESULTS.md"
    grid = ex.table_grid(NOISE_ROW[0], "quick", seeds=(0, 1))
    configs = grid.loc[grid["row"] == NOISE_ROW[1], "config"]
    for config, acc in zip(configs, (40.0, 41.0)):
        assert main(["markdown", "--profiles", "quick", "--results-dir", str(tmp_path)]) == 0
        assert "Seed noise" not in readme.read_text()  # not before 2 seeds
        stored_run(tmp_path, config, test_acc=acc)
    assert main(["markdown", "--profiles", "quick", "--results-dir", str(tmp_path)]) == 0
    assert (
        "Seed noise, pooled over 1 ResNet CIFAR-10 row with several seeds (1 df): sd 0.71 on the highest test "
        "accuracy and 0.71 on the final epoch, so one-run differences under 2.00 and 2.00 points are seed noise."
    ) in readme.read_text()


def test_on_a_cpu_that_emulates_bf16_a_default_train_is_fp32_and_an_explicit_bf16_warns_once(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most laptops and many servers have neither AMX nor AVX512-BF16: there precision=auto trains
    in fp32 and records why (the CPU's bf16 class); bf16 asked for still runs, with one warning."""
    from deepcls import numeric

    fitting = importlib.import_module("deepcls.engine.fit")
    from deepcls.store.runs import RunStore

    monkeypatch.setattr(numeric, "cpu_bf16", lambda: "emulated")
    monkeypatch.setattr(fitting, "_warned", set())
    data = ["--data-dir", str(data_dir), "--quiet"]
    code, _, err = run_cli(["train", *SMALL_ARGS, *data, "--results-dir", str(tmp_path / "auto")], capsys)
    assert code == 0 and "warning" not in err
    numeric_class = RunStore(tmp_path / "auto").load(SMALL).metrics["numeric_class"]
    assert numeric_class["precision"] == "fp32" and numeric_class["bf16"] == "emulated"
    assert numeric_class["device_name"] == numeric.cpu_model() and numeric_class["threads"] >= 1

    args = ["train", *SMALL_ARGS, *data, "--precision", "bf16", "--force"]
    for attempt in range(2):  # once per process, not once per run
        code, _, err = run_cli([*args, "--results-dir", str(tmp_path / "bf16")], capsys)
        assert code == 0
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert warnings == ([f"deepcls: warning: {numeric.EMULATED_BF16_WARNING}"] if attempt == 0 else [])
    assert RunStore(tmp_path / "bf16").load(SMALL).metrics["numeric_class"]["precision"] == "bf16"


def test_ledger_plans_trains_and_decides_a_conclusion(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real smoke runs: the plan lists 3 seeds of both sides, --train trains them, the line is decided."""
    ledger_args = [
        "ledger",
        "--profile",
        "smoke",
        "--conclusions",
        "first_kernel_5_beats_3",
        "--results-dir",
        str(tmp_path),
    ]
    assert run_cli([*ledger_args, "--evidence"], capsys)[:2] == (
        0,
        "No stored run is behind these conclusions at `smoke` yet.\n",
    )
    code, out, _ = run_cli([*ledger_args, "--plan", "--wide"], capsys)
    plan = [line for line in out.splitlines()[1:] if "never run" in line]
    assert " ".join(out.split()).endswith(
        "6 runs take the 1 undecided line to their next look: none of their rows has been run, so no cost is"
        " known yet. `deepcls ledger --profile smoke --train` trains them, the most expected decisions per hour"
        " first."
    )
    assert (
        code == 0 and len(plan) == 6 and all("never run" in line and "first_kernel_5_beats_3" in line for line in plan)
    )
    assert sorted(line.split()[1:3] for line in plan) == sorted([r, s] for r in ("9", "10") for s in "012")
    code, out, _ = run_cli([*ledger_args, "--train", "--data-dir", str(data_dir)], capsys)
    line = next(line for line in out.splitlines() if line.startswith("first_kernel_5_beats_3 "))
    assert code == 0 and "undecided" not in line  # at smoke the VGGs may collapse: "not comparable" is decided
    out = run_cli([*ledger_args, "--plan", "--wide"], capsys)[1]  # the next look: seeds 3-5 a side, unless decided
    later = [line.split()[1:3] for line in out.splitlines()[1:] if "first_kernel_5_beats_3" in line]
    assert out.endswith("at `smoke`: nothing to train.\n") or sorted(later) == sorted(
        [r, s] for r in ("9", "10") for s in "345"
    )
    assert len(list((tmp_path / "runs").iterdir())) == 6
    other = [a if a != "first_kernel_5_beats_3" else "vgg7_batch128_beats_32" for a in ledger_args]
    out = run_cli([*other, "--plan"], capsys)[1]  # costed from the stored runs' pace on this device
    assert "estimated from their MACs" in " ".join(out.split()) and "cost unknown" not in out
    code, out, _ = run_cli([*ledger_args, "--evidence"], capsys)  # the runs behind the decided line
    lines = out.splitlines()[1:]
    assert (
        code == 0
        and len(lines) == 6
        and sorted(line.split()[1:5:3] for line in lines) == sorted([side, seed] for side in "ab" for seed in "012")
    )
    assert {line.split()[6] for line in lines} == {p.name for p in (tmp_path / "runs").iterdir()}
    code, out, err = run_cli([*ledger_args, "--evidence", "--train"], capsys)
    assert code == 2 and out == "" and "not allowed with argument" in err


def test_ledger_csv_holds_every_conclusion_under_both_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty store: every line undecided, written atomically; `-` prints the same; a folder as the
    path is one error line and leaves nothing behind."""
    import pandas as pd

    from deepcls.analysis.ledger import CONCLUSIONS
    from deepcls.report.verdicts import CSV_COLUMNS

    path = tmp_path / "out" / "ledger.csv"
    args = ["ledger", "--profile", "paper", "--results-dir", str(tmp_path / "store")]
    code, out, _ = run_cli([*args, "--csv", str(path)], capsys)
    assert code == 0 and out.startswith(f"wrote {path}: Of the report's 33 claims, on the final epoch after Holm's")
    frame = pd.read_csv(path)
    assert list(frame.columns) == CSV_COLUMNS and len(frame) == 2 * len(CONCLUSIONS)
    assert set(frame["verdict"]) == {"undecided"} and set(frame["metric"]) == {"report", "honest"}
    assert run_cli([*args, "--csv", "-"], capsys)[1] == path.read_text()
    code, out, err = run_cli([*args, "--csv", str(tmp_path / "out")], capsys)
    assert code == 2 and out == "" and err.startswith("deepcls: error: ") and err.count("\n") == 1
    assert f"{tmp_path / 'out'} is a folder, not a file" in err  # the user's path, refused before writing
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ledger.csv"]


def test_ledger_runs_takes_the_plans_first_runs_and_says_what_they_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["ledger", "--profile", "smoke", "--conclusions", "first_kernel_5_beats_3,vgg7_batch128_beats_32"]
    args += ["--results-dir", str(tmp_path), "--plan", "--wide"]
    whole = [line.split()[:4] for line in run_cli(args, capsys)[1].splitlines() if "never run" in line]
    code, out, _ = run_cli([*args, "--runs", "3"], capsys)
    assert code == 0 and [line.split()[:4] for line in out.splitlines() if "never run" in line] == whole[:3]
    said = " ".join(out.split())
    assert f"The first 3 of {len(whole)} runs that take the undecided lines to their next look" in said
    assert "They complete 0. `deepcls ledger --profile smoke --train --runs 3` trains them." in said
    for bad, message in (
        ("0", "argument --runs: must be >= 1, got 0"),
        ("x", "argument --runs: must be a whole number >= 1, got 'x'"),
    ):
        code, out, err = run_cli([*args, "--runs", bad], capsys)
        assert code == 2 and out == "" and err == f"deepcls: error: {message}\n"
    code, out, err = run_cli([*(a for a in args if a != "--plan"), "--runs", "3"], capsys)
    assert code == 2 and err == "deepcls: error: --runs needs --plan or --train\n"
    assert not (tmp_path / "runs").exists()


def test_ledger_unknown_conclusion_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["ledger", "--conclusions", "se_helps,nope", "--results-dir", str(tmp_path)], capsys)
    assert (
        code == 2 and out == "" and err.startswith("deepcls: error: unknown conclusion(s) nope; known: adam_beats_sgd")
    )
    assert not (tmp_path / "runs").exists()


def test_output_piped_to_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`deepcls ledger | head -1`: no "Broken pipe" error line, exit 0."""
    done = subprocess.run(
        f"{sys.executable} -m deepcls ledger --profile paper --results-dir {tmp_path} | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.stdout == "Of the rep" and done.stderr == ""


def test_ledger_plan_and_train_together_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["ledger", "--plan", "--train", "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and out == "" and err == "deepcls: error: argument --train: not allowed with argument --plan\n"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "arguments",
    [
        ["ledger", "--plan", "--jobs", "0"],
        ["ledger", "--plan", "--runs", "0"],
        ["ledger", "--csv", ""],
        ["results", "--jobs", "-1"],
        ["report", "--jobs", "0"],
    ],
)
def test_a_count_below_one_or_an_empty_path_is_one_error_line(
    arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli([*arguments, "--profile", "smoke", "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("deepcls: error: argument")
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------- edges: refused before anything starts
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["results", "--tables", ""], "--tables names nothing; leave it out for all"),
        (["ledger", "--conclusions", " , "], "--conclusions names nothing; leave it out for all"),
        (["results", "--executor", "ray"], "--executor acts only with --train"),
        (["results", "--address", "10.0.0.1:6379", "--keep-weights"], "--address, --keep-weights act only with"),
        (["ledger", "--jobs", "2"], "--jobs acts only with --train"),
        (["results", "--train", "--executor", "ray", "--gpus-per-run", "nan"], "must be a finite number >= 0"),
        (["evaluate", "mnist-vgg7-0123456789", "--device", "tpu"], "device must be auto, cpu, cuda, cuda:N or mps"),
    ],
    ids=["empty-tables", "empty-conclusions", "executor", "address", "jobs", "nan-gpus", "tpu"],
)
def test_edges_are_one_line_before_anything_starts(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli([*argv, "--results-dir", str(tmp_path / "store")], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "store" / "runs").exists()


def test_ledger_plan_takes_jobs_without_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["ledger", "--plan", "--jobs", "2", "--results-dir", str(tmp_path)], capsys)
    assert code == 0 and err == ""


def test_a_ray_executor_refuses_bad_numbers_and_addresses_before_it_starts() -> None:
    from deepcls.errors import ConfigError
    from deepcls.execution.ray_cluster import RayExecutor

    for bad in ({"num_gpus": float("nan")}, {"num_cpus": float("inf")}, {"num_cpus": "1"}):
        with pytest.raises(ConfigError, match="must be a finite number >= 0"):
            RayExecutor(**bad)
    for address in ("not an address", "head:0", "head:99999", ":6379"):
        with pytest.raises(ConfigError, match="the Ray address must be HOST:PORT"):
            RayExecutor(address=address)
    for address in ("auto", "local", "ray://head:10001", "10.0.0.1:6379", "[::1]:6379"):
        RayExecutor(address=address)  # accepted: nothing starts until run()


def test_exports_deduplicate_and_empty_archives_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    import tarfile

    from deepcls.engine.fit import fit

    store = tmp_path / "store"
    config = RunConfig(**SMALL_VGG7, epochs=1, subset=100, test_subset=100, batch_size=50)
    fit(config, results_dir=str(store), data_dir=str(data_dir), progress=False)
    out = tmp_path / "runs.tar.gz"
    code, _, err = run_cli(
        ["runs", "export", config.run_id, config.run_id, "--out", str(out), "--results-dir", str(store)], capsys
    )
    assert code == 0, err
    with tarfile.open(out) as archive:
        names = archive.getnames()
    assert len(names) == len(set(names))
    assert run_cli(["runs", "import", str(out), "--results-dir", str(tmp_path / "other")], capsys)[0] == 0

    empty = tmp_path / "none.tar.gz"
    code, _, err = run_cli(["runs", "export", "--out", str(empty), "--results-dir", str(tmp_path / "empty")], capsys)
    assert code == 2 and "an empty archive is refused" in err and not empty.exists()
    with tarfile.open(empty, "w:gz"):
        pass
    code, _, err = run_cli(["runs", "import", str(empty), "--results-dir", str(tmp_path / "other")], capsys)
    assert code == 2 and "holds no runs; refused" in err and err.count("\n") == 1


def test_markdown_checks_the_readme_before_it_writes_results_md(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "README.md").write_text("no headline section here\n")
    args = ["markdown", "--path", str(tmp_path / "R.md"), "--results-dir", str(tmp_path)]
    code, _, err = run_cli([*args, "--readme", str(tmp_path / "README.md")], capsys)
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "R.md").exists()
    assert (tmp_path / "README.md").read_text() == "no headline section here\n"


def test_the_ledger_fits_a_100_column_terminal_and_names_every_conclusion_id(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The committed paper ledger at COLUMNS=100: no line wider, each conclusion's id (what
    --conclusions takes) first on its line, notes folded beneath."""
    from deepcls.analysis.ledger import CONCLUSIONS

    monkeypatch.setenv("COLUMNS", "100")
    assert main(["ledger", "--profile", "paper", "--results-dir", str(REPO_ROOT / "results")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100
    assert [line.split()[0] for line in lines if line.split() and line.split()[0] in {c.id for c in CONCLUSIONS}] == [
        c.id for c in CONCLUSIONS
    ]


@pytest.mark.parametrize(
    "command",
    [["results", "--profile", "paper"], ["ledger", "--profile", "paper", "--plan"]],
    ids=["results", "plan"],
)
def test_results_and_the_plan_fit_a_100_column_terminal(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each row's short columns on one line, the rest folded beneath it; --wide keeps every column."""
    monkeypatch.setenv("COLUMNS", "100")
    assert main([*command, "--results-dir", str(REPO_ROOT / "results")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and max(map(len, lines)) <= 100
    assert main([*command, "--wide", "--results-dir", str(REPO_ROOT / "results")]) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) > 100  # all of it, however wide


NO_TORCH = """
import sys
from deepcls.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
assert "torch" not in sys.modules, "imported torch"
sys.exit(code)
"""


@pytest.mark.parametrize(
    "command",
    [["--help"], ["train", "--help"], ["results", "--profile", "paper"], ["ledger", "--profile", "paper"]],
    ids=["help", "train-help", "results", "ledger"],
)
def test_help_results_and_the_ledger_never_import_torch(command: list[str]) -> None:
    """Reading commands start in well under a second: torch (seconds to import) stays out."""
    env = {**os.environ, "DEEPCLS_RESULTS_DIR": str(REPO_ROOT / "results")}
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *command], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout


def test_train_help_documents_every_option_with_its_values_and_no_markup() -> None:
    """Every RunConfig field's flag says what it is, its unit or valid values (from the field's metadata)."""
    out = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "``" not in out and "``" not in build_parser().format_help()
    for field in dataclasses.fields(RunConfig):
        assert field.metadata["help"].split(";")[0][:30] in out, field.name
    for said in ("from: constant, step, cosine, triangle", "from: auto, fp32, bf16", "a count, not a fraction"):
        assert said in out
    assert all(name in out for name in list_models())


def _commands(parser: argparse.ArgumentParser, name: str = "deepcls") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser, nested ones (``runs export``) included, with its name."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _commands(child, f"{name} {sub}")


def test_every_option_and_argument_of_every_command_says_what_it_is() -> None:
    undocumented = [
        f"{name} {action.option_strings[-1] if action.option_strings else action.dest}"
        for name, parser in _commands(build_parser())
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help
    ]
    assert not undocumented
    for name, parser in _commands(build_parser()):
        width = max(map(len, parser.format_help().splitlines()))
        assert width <= 100, name


# ---------------------------------------------------------------------- failures, a full disk, Ctrl-C: one line
def test_a_run_that_fails_in_the_loop_ends_the_command_in_one_line(
    data_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Any other failure (here a --compile without a compiler): one line, exit 1, the run recorded as failed."""

    def no_compiler(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> Any:
        raise RuntimeError("simulated --compile failure:\nno working C++ compiler found")

    monkeypatch.setattr(Trainer, "step", no_compiler)
    args = ["train", "--dataset", "mnist", "--model", "vgg7", "--subset", "64", "--test-subset", "64", "--epochs", "1"]
    args += ["--data-dir", str(data_dir), "--results-dir", str(tmp_path), "--quiet"]
    assert main(args) == 1
    line = one_line(capsys.readouterr().err)
    assert "failed: RuntimeError: simulated --compile failure: no working C++ compiler found" in line
    assert "DEEPCLS_TRACEBACK=1" in line
    store = RunStore(tmp_path)
    assert [store.status(d.name) for d in (tmp_path / "runs").iterdir()] == ["failed"]
    monkeypatch.setenv("DEEPCLS_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="no working C"):
        main(args)


def test_a_full_disk_during_training_is_one_line_naming_the_file(data_dir: Path, tmp_path: Path) -> None:
    """A results folder on a 48 KB file system (a tmpfs mounted in a mount namespace of its own):
    the first checkpoint fills it, and the command says "No space left on device" with the file,
    not torch's "enforce fail ... unexpected pos"."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("a full disk is tried on a tmpfs in a mount namespace: unshare -m failed (needs root)")
        pytest.skip("a full disk is tried on a tmpfs in a mount namespace: unshare -m needs root")
    small = tmp_path / "small"
    small.mkdir()
    args = ["train", "--dataset", "mnist", "--model", "resnet18", "--epochs", "2", "--subset", "200"]
    args += ["--test-subset", "100", "--batch-size", "64", "--precision", "fp32", "--threads", "1", "--quiet"]
    args += ["--data-dir", str(data_dir), "--results-dir", str(small)]
    script = 'mount -t tmpfs -o size=48k tmpfs "$1" && shift && exec "$@"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(small), sys.executable, "-m", "deepcls", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = one_line(done.stderr)
    assert done.returncode == 1 and line.startswith("deepcls: error: No space left on device (")
    assert f"{small}/.cache/checkpoints/" in line and line.endswith("run the same command again to resume")
    assert "enforce fail" not in done.stderr and not any(small.iterdir())  # the tmpfs went with its namespace


def test_a_full_disk_is_one_line_and_the_rerun_resumes_identically(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TINY_RUN.replace(epochs=2)
    reference = train(config, tmp_path / "reference", data_dir)
    root = tmp_path / "results"
    real_checkpoint, written = checkpoints.save_checkpoint, []

    def full(path: Path) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def checkpoint_then_full(store: RunStore, cfg: RunConfig, state: dict) -> None:
        if written:
            raise full(checkpoints.checkpoint_path(store, cfg))
        real_checkpoint(store, cfg, state)
        written.append(cfg)

    def save_full(self: RunStore, cfg: RunConfig, *args: Any, **kwargs: Any) -> None:
        raise full(self.runs)

    monkeypatch.setattr(checkpoints, "save_checkpoint", checkpoint_then_full)
    monkeypatch.setattr(RunStore, "save", save_full)  # the failed record cannot be written either
    argv = ["train", *cli_args(config), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert code == 1 and out == "" and "No space left on device" in one_line(err) and "resume" in err
    store = RunStore(root)
    assert (
        store.run_ids() == []
        and leftovers(root) == []
        and len(checkpoints.load_checkpoint(store, config)["history"]) == 1
    )
    monkeypatch.undo()
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and out.startswith(f"trained {config.run_id}: status complete, epochs 2")
    pd.testing.assert_frame_equal(results(store.load(config).history), results(reference.history), check_exact=True)


def test_ctrl_c_is_one_line(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(self: Trainer, epoch: int, bar: Any) -> tuple[float, float]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    root = tmp_path / "results"
    argv = ["train", *cli_args(TINY_RUN), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert code == 130 and "interrupted; run the same command again to resume" in one_line(err)
    assert RunStore(root).run_ids() == [] and leftovers(root) == []


# ---------------------------------------------------------------------- bad values, unusable results folders
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["results", "--profile", "smoke", "--rows", "999"], "no row 999 in table(s)"),
        (["bench", "--steps", "0"], "--steps and --batch-size must be >= 1, got 0"),
        (["bench", "--steps", "-5"], "--steps and --batch-size must be >= 1, got -5"),
        (["bench", "--batch-size", "32,0"], "--steps and --batch-size must be >= 1"),
        (["bench", "--runs-at-once", "-1"], "--runs-at-once must be >= 0"),
    ],
)
def test_bad_command_values_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == "" and message in one_line(err)


@pytest.mark.parametrize(
    ("command", "below", "message"),
    [
        (["results"], "", "is a file, not a folder"),
        (["report", "--no-train"], "", "is a file, not a folder"),
        (["report", "--no-train"], "results", "is not writable"),
    ],
)
def test_a_results_dir_that_is_a_file_or_unwritable_is_one_line(
    command: list[str], below: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = [*command, "--profile", "smoke", "--results-dir", str(blocker / below)]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == "" and message in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and blocker.read_text() == "not a folder"
