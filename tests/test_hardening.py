"""Hardening (issue 18): a finished run is never lost, a damaged store never crashes a command.

One or more tests per numbered item of the issue, asserting the store's state after; faults are
injected with monkeypatch, a SIGKILL between two renames, damaged files and a full disk.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from test_cli import run_cli
from test_train import FAST, cli_args, count_steps, results

import deepcls.store.runs as store_module
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.data import DATASETS, OFFICIAL_FINGERPRINTS, BatchLoader, Split, fingerprint, get_spec, load_dataset
from deepcls.engine.fit import Trainer, fit
from deepcls.errors import ConfigError, DataError
from deepcls.models import build_model
from deepcls.paper import grids as ex
from deepcls.report.build import OUTCOMES, NotebookOutcome, build_report
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore

REPO = Path(__file__).resolve().parents[1]
TINY = RunConfig(**FAST, epochs=1, subset=200, test_subset=100, batch_size=64)


def train(config: RunConfig, root: Path, data_dir: Path, **kwargs: Any) -> Any:
    return fit(config, results_dir=str(root), data_dir=str(data_dir), progress=False, **kwargs)


def leftovers(root: Path) -> list[str]:
    """Temporaries (.tmp-*, .old-*) in the run folder and the checkpoint folder."""
    folders = (root / "runs", root / ".cache" / "checkpoints")
    return sorted(p.name for f in folders if f.is_dir() for p in f.iterdir() if p.name.startswith("."))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def fake_run(store: RunStore, config: RunConfig, tag: str, acc: float = 50.0) -> Path:
    """A stored complete run with every file, without training; ``tag`` tells versions apart."""
    history = pd.DataFrame({"epoch": [1], "train_acc": [acc], "test_acc": [acc], "seconds": [1.0]})
    metrics = {
        "status": "complete",
        "tag": tag,
        "highest_train_acc": acc,
        "highest_test_acc": acc,
        "final_test_acc": acc,
        "wall_time_s": 1.0,
        "device": "cpu",
        "extended_from": None,
    }
    confusion = np.diag(np.full(10, 10, dtype=np.int64))
    labels = np.repeat(np.arange(10, dtype=np.uint8), 10)  # every image right: the diagonal above
    predictions = {"index": np.arange(100, dtype=np.int32), "true": labels, "predicted": labels}
    return store.save(config, history, metrics, confusion, {"correct_index": np.arange(3)}, predictions=predictions)


def _predictions(true: list[int], predicted: list[int]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, index=np.arange(len(true)), true=np.array(true), predicted=np.array(predicted))
    return buffer.getvalue()


def one_line(err: str, start: str = "deepcls: error: ") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


# ---------------------------------------------------------------------- 1. a failed --force keeps the run
def test_a_failed_force_retrain_keeps_the_finished_run(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    first = train(TINY, tmp_path, data_dir)
    before = snapshot(first.path)

    def no_compiler(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> Any:
        raise RuntimeError("simulated --compile failure: no working C++ compiler found")

    monkeypatch.setattr(Trainer, "step", no_compiler)
    with pytest.raises(RuntimeError, match="no working C\\+\\+ compiler"):
        train(TINY, tmp_path, data_dir, force=True)
    store = RunStore(tmp_path)
    assert snapshot(store.run_dir(TINY)) == before  # history, confusion matrix and samples all kept
    assert store.status(TINY) == "complete" and leftovers(tmp_path) == []


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


# ---------------------------------------------------------------------- 2. replacing a run is atomic
KILLED_SAVE = """
import json, os, signal, sys
import pandas as pd
import deepcls.store.runs as S
from deepcls.cli import main
from deepcls.config import RunConfig

root, when, config = sys.argv[1], sys.argv[2], RunConfig.from_dict(json.loads(sys.argv[3]))
real_replace, real_exchange = os.replace, S._exchange

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(a, b):  # SIGKILL right after the old run was renamed aside
    real_replace(a, b)
    if os.path.basename(b).startswith(".old-"):
        die()

def exchange(a, b):  # SIGKILL right after the swap, before the old run is deleted
    assert real_exchange(a, b)
    die()

if when == "between-renames":
    S._exchange = lambda a, b: False
    os.replace = replace
else:
    S._exchange = exchange
history = pd.DataFrame({"epoch": [1], "test_acc": [99.0]})
metrics = {"status": "complete", "tag": "new", "final_test_acc": 99.0, "highest_test_acc": 99.0}
S.RunStore(root).save(config, history, metrics)
"""


@pytest.mark.parametrize("when", ["between-renames", "after-exchange"])
def test_a_kill_while_replacing_a_run_is_recovered_on_the_next_start(when: str, tmp_path: Path) -> None:
    fake_run(RunStore(tmp_path), TINY, "old")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", KILLED_SAVE, str(tmp_path), when, json.dumps(TINY.to_dict())]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    live = tmp_path / "runs" / TINY.run_id
    if when == "between-renames":  # the old run is aside, its replacement never arrived
        assert not live.exists() and [n[:5] for n in leftovers(tmp_path)] == [".old-", ".tmp-"]
        expected = "old"
    else:  # swapped: the new run is live, the old one waits in the temporary to be deleted
        assert live.exists() and [n[:5] for n in leftovers(tmp_path)] == [".tmp-"]
        expected = "new"
    store = RunStore(tmp_path)  # the next start recovers
    assert store.load(TINY).metrics["tag"] == expected and leftovers(tmp_path) == []


def test_a_reader_during_a_replacement_sees_the_old_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an atomic exchange there is a moment with no run under its id: readers (whose start
    must not 'recover' a live save) read the run set aside."""
    store = RunStore(tmp_path)
    fake_run(store, TINY, "old")
    monkeypatch.setattr(store_module, "_exchange", lambda a, b: False)
    seen, real_replace = [], os.replace

    def replace(a: Any, b: Any) -> None:
        real_replace(a, b)
        if Path(b).name.startswith(".old-"):
            reader = RunStore(tmp_path)
            seen.append((reader.status(TINY), reader.load(TINY).metrics["tag"], reader.run_dir(TINY).exists()))

    monkeypatch.setattr(os, "replace", replace)
    fake_run(store, TINY, "new")
    assert seen == [("complete", "old", False)]
    assert store.load(TINY).metrics["tag"] == "new" and leftovers(tmp_path) == []


def test_the_next_start_removes_stale_temporaries_and_keeps_live_files(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    fake_run(store, TINY, "live")
    checkpoints.save_checkpoint(store, TINY, {"model": {}, "history": []})
    stale = [
        tmp_path / "runs" / f".tmp-{TINY.run_id}-abc",  # a save killed while writing
        tmp_path / "runs" / f".old-{TINY.run_id}",  # a save killed before deleting the replaced run
        tmp_path / ".cache" / "checkpoints" / f".tmp-{TINY.run_id}.pt-xyz.pt",  # a killed checkpoint write
    ]
    stale[0].mkdir()
    (stale[0] / "history.csv").write_text("epo")
    stale[1].mkdir()
    stale[2].write_bytes(b"\0" * 1000)
    store = RunStore(tmp_path)
    assert not any(p.exists() for p in stale) and leftovers(tmp_path) == []
    assert store.load(TINY).metrics["tag"] == "live" and checkpoints.checkpoint_path(store, TINY).exists()


# ---------------------------------------------------------------------- 3. the data fingerprint
@pytest.fixture
def zero_mnist(tmp_path: Path, data_dir: Path) -> Path:
    """A folder with a valid mnist.npz whose images are all zero (the real labels)."""
    folder = tmp_path / "zeros"
    folder.mkdir()
    with np.load(data_dir / "mnist.npz", allow_pickle=False) as npz:
        arrays = {k: np.zeros_like(npz[k]) if k.startswith("x_") else npz[k] for k in npz.files}
    np.savez(folder / "mnist.npz", **arrays)
    return folder


@pytest.mark.parametrize("name", list(DATASETS))
def test_the_shared_copies_have_the_official_fingerprint(name: str, data_dir: Path) -> None:
    assert fingerprint(name, data_dir) == OFFICIAL_FINGERPRINTS[name]


def test_the_fingerprint_hashes_the_arrays_not_the_file(tmp_path: Path) -> None:
    spec = get_spec("mnist")
    h, w, _ = spec.image_shape
    rng = np.random.default_rng(0)
    arrays = {
        **{f"x_{s}": rng.integers(0, 255, (n, h, w), dtype=np.uint8) for s, n in (("train", 60_000), ("test", 10))},
        **{f"y_{s}": np.arange(n, dtype=np.int64) % 10 for s, n in (("train", 60_000), ("test", 10))},
    }
    arrays["x_test"] = np.zeros((10_000, h, w), np.uint8)
    arrays["y_test"] = np.arange(10_000, dtype=np.int64) % 10
    plain, packed, nhwc = (tmp_path / d for d in ("plain", "packed", "nhwc"))
    for folder in (plain, packed, nhwc):
        folder.mkdir()
    np.savez(plain / "mnist.npz", **arrays)
    np.savez_compressed(packed / "mnist.npz", **arrays)
    np.savez(nhwc / "mnist.npz", **{k: v[..., None] if k.startswith("x_") else v for k, v in arrays.items()})
    assert fingerprint("mnist", plain) == fingerprint("mnist", packed) == fingerprint("mnist", nhwc)
    arrays["y_test"][0] = 1
    np.savez(plain / "mnist.npz", **arrays)  # a new version of the file: hashed again
    assert fingerprint("mnist", plain) != fingerprint("mnist", packed)
    assert fingerprint("mnist", tmp_path / "nowhere") is None


def test_a_run_trained_on_other_data_is_refused_then_retrained_with_force(
    data_dir: Path, zero_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "results"
    wrong = train(TINY, root, zero_mnist)
    assert wrong.metrics["data_fingerprint"] == fingerprint("mnist", zero_mnist) != OFFICIAL_FINGERPRINTS["mnist"]
    before = snapshot(wrong.path)
    argv = ["train", *cli_args(TINY), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    line = one_line(err)
    assert code == 2 and out == "" and f"run {TINY.run_id} was trained on a different mnist.npz" in line
    assert "--force" in line and snapshot(wrong.path) == before
    code, out, _ = run_cli([*argv, "--force"], capsys)
    assert code == 0 and out.startswith(f"trained {TINY.run_id}")
    record = RunStore(root).load(TINY)
    assert record.metrics["data_fingerprint"] == OFFICIAL_FINGERPRINTS["mnist"]
    assert record.history["train_loss"].iloc[0] != wrong.history["train_loss"].iloc[0]


def test_a_run_stored_without_fingerprint_stands_for_the_official_files(
    data_dir: Path, zero_mnist: Path, tmp_path: Path
) -> None:
    committed = RunStore(REPO / "results")
    older = (r for r in committed.run_ids() if r.startswith("mnist-"))  # runs before fingerprints were stored
    run_id = next(r for r in older if "data_fingerprint" not in committed.load(r).metrics)
    config = committed.load(run_id).config
    assert fit(config, store=committed, data_dir=str(data_dir), progress=False).reused
    with pytest.raises(DataError, match=f"run {run_id} was trained on a different mnist.npz"):
        fit(config, store=committed, data_dir=str(zero_mnist), progress=False)
    # with no data file at hand nothing can differ: the stored run is reused (nothing is trained)
    assert fit(config, store=committed, data_dir=str(tmp_path / "no-data"), progress=False).reused


def test_a_checkpoint_from_other_data_is_discarded_and_the_run_starts_over(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    config = TINY.replace(epochs=2)
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


# ---------------------------------------------------------------------- 4. divergence at evaluation
def test_a_blow_up_that_shows_only_at_evaluation_is_diverged(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_step = RunConfig(**FAST, optimizer="sgd", lr=1e30, epochs=1, subset=64, test_subset=100, batch_size=64)
    train_losses, real_train_epoch = [], Trainer.train_epoch

    def recording(self: Trainer, epoch: int, bar: Any) -> Any:  # a step generator, as train_epoch is
        loss, acc = yield from real_train_epoch(self, epoch, bar)
        train_losses.append(loss)
        return loss, acc

    monkeypatch.setattr(Trainer, "train_epoch", recording)
    record = train(one_step, tmp_path, data_dir)
    assert np.isfinite(train_losses).all()  # the one step's loss was fine: only evaluation shows it
    assert record.status == "diverged" and record.metrics["diverged_epoch"] == 1 and record.history.empty
    assert "NaN" not in (record.path / "metrics.json").read_text()
    assert train(one_step, tmp_path, data_dir).reused  # an outcome, not retried


# ---------------------------------------------------------------------- 5. damaged run files
DAMAGE = {
    "metrics.json truncated": ("metrics.json", b'{"status": "comp'),
    "metrics.json without status": ("metrics.json", b'{"tag": "x"}'),
    "config.json not UTF-8": ("config.json", b"\xff\xfe\x00garbage"),
    "config.json of another run": ("config.json", json.dumps(TINY.replace(seed=7).to_dict()).encode()),
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
    grid = ex.table_grid("vgg_mnist", "smoke")
    damaged, intact = (grid.loc[grid["row"] == r, "config"].iloc[0] for r in (6, 7))
    root = tmp_path / "results"
    fake_run(RunStore(root), damaged, "damaged", acc=11.0)
    fake_run(RunStore(root), intact, "intact", acc=77.0)
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
    record = train(TINY, root, data_dir)
    name, content = DAMAGE[damage]
    (record.path / name).write_bytes(content)
    capsys.readouterr()
    argv = ["train", *cli_args(TINY), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and out.startswith(f"trained {TINY.run_id}: status complete")
    assert name in one_line(err, "deepcls: warning: ")
    again = RunStore(root).load(TINY)
    pd.testing.assert_frame_equal(results(again.history), results(record.history), check_exact=True)
    assert leftovers(root) == []


# ---------------------------------------------------------------------- 6. damaged checkpoints
def test_a_damaged_resume_checkpoint_is_discarded_and_the_run_starts_over(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TINY.replace(epochs=2)
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
    short, longer = TINY, TINY.replace(epochs=2)
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
    checkpoints.save_checkpoint(store, TINY, {"model": {"w": torch.zeros(2)}, "optimizer": {}, "history": []})
    record = train(TINY, tmp_path, data_dir)
    assert record.status == "complete" and "does not fit the model" in capfd.readouterr().err


# ---------------------------------------------------------------------- 7. a last batch of one image
def test_a_last_training_batch_of_one_joins_the_batch_before() -> None:
    spec = get_spec("mnist")

    def sizes(n: int, batch: int, train: bool) -> list[int]:
        split = Split(torch.zeros(n, 28, 28, 1, dtype=torch.uint8), torch.arange(n) % 10)
        loader = BatchLoader(split, spec, batch_size=batch, train=train)
        got = [len(y) for _, y in loader.epoch(0)]
        assert len(got) == len(loader)
        return got

    assert sizes(33, 32, True) == [33] and sizes(65, 32, True) == [32, 33]
    assert sizes(33, 32, False) == [32, 1]  # evaluation has no batch norm statistics to spoil
    assert sizes(64, 32, True) == [32, 32] and sizes(66, 32, True) == [32, 32, 2]  # every other split unchanged


def test_a_batch_norm_model_trains_with_a_last_batch_of_one(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(dataset="mnist", model="resnet18", epochs=1, subset=33, test_subset=100, batch_size=32)
    steps = count_steps(monkeypatch)
    record = train(config, tmp_path, data_dir)
    assert record.status == "complete" and steps == [33]


def test_no_committed_or_planned_run_has_a_last_batch_of_one() -> None:
    """So joining such a batch to the one before changes no stored history."""
    committed = RunStore(REPO / "results")
    configs = [committed.load(r).config for r in committed.run_ids()]
    configs += [c for p in ("smoke", "quick", "paper", "best") for c in ex.grid(ex.ALL_TABLES, p, (0, 1, 2))["config"]]
    sizes = {(min(c.subset or 10**9, get_spec(c.dataset).train_size), c.batch_size) for c in configs}
    assert len(configs) > 500 and [(n, b) for n, b in sizes if n % b == 1] == []


# ---------------------------------------------------------------------- 8. a full disk, Ctrl-C
def test_a_full_disk_is_one_line_and_the_rerun_resumes_identically(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TINY.replace(epochs=2)
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
    argv = ["train", *cli_args(TINY), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert code == 130 and "interrupted; run the same command again to resume" in one_line(err)
    assert RunStore(root).run_ids() == [] and leftovers(root) == []


# ---------------------------------------------------------------------- 9. report, results, bench input
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


# ---------------------------------------------------------------------- 10. a VGG fed too small an input
def test_a_vgg_says_what_input_it_needs() -> None:
    model = build_model("vgg16", in_channels=1, width="reduced", classifier_width=16).eval()
    with pytest.raises(ConfigError, match=r"needs inputs of at least 32x32 \(5 2x2 poolings\), got 28x28; zero-pad"):
        model(torch.zeros(2, 1, 28, 28))
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert build_model("vgg7", in_channels=1, width="reduced", classifier_width=16)(torch.zeros(2, 1, 28, 28)).shape


# ---------------------------------------------------------------------- 11. clear output
def test_a_partial_rebuild_keeps_showing_the_pages_that_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import deepcls.report.build as report

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("01_broken", "02_fine", "00_overview"):
        (notebooks / f"{name}.ipynb").write_text("{}")
    html_dir = tmp_path / "results" / "report" / "smoke"

    def execute(name: str, out_dir: Path, html: Path, parameters: dict, notebooks_dir: Path) -> NotebookOutcome:
        (html / f"{name}.html").write_text(name)  # a failing notebook still renders what it ran
        if name == "01_broken":
            return NotebookOutcome(name, False, "ZeroDivisionError: division by zero")
        return NotebookOutcome(name, True)

    monkeypatch.setattr(report, "execute", execute)
    kwargs = {"profile": "smoke", "results_dir": str(tmp_path / "results"), "notebooks_dir": notebooks, "train": False}
    assert build_report(**kwargs) == 1
    assert build_report(**kwargs, only=["02_fine"]) == 0
    page = (html_dir / "index.html").read_text()
    assert page.count('class="failed"') == 1 and "ZeroDivisionError" in page and page.count('class="ok"') == 2
    assert json.loads((html_dir / OUTCOMES).read_text())["01_broken"].startswith("ZeroDivisionError")


def test_a_symlink_loop_as_data_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").symlink_to(tmp_path / "mnist.npz")
    with pytest.raises(DataError, match="cannot be opened \\(Too many levels of symbolic links\\)"):
        load_dataset("mnist", tmp_path)
    (tmp_path / "mnist.npz").unlink()
    (tmp_path / "mnist.npz").symlink_to(tmp_path / "gone.npz")
    with pytest.raises(DataError, match="is a symbolic link to a missing file"):
        load_dataset("mnist", tmp_path)


def test_a_failed_download_leaves_no_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="download failed"):
        load_dataset("mnist", tmp_path / "new" / "data")
    assert list(tmp_path.iterdir()) == []


GRID_OF_TWO = """
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background shell ignores it)
from deepcls.execution import runner
from deepcls.config import RunConfig
configs = [RunConfig(**{**json.loads(sys.argv[2]), "seed": seed}) for seed in (0, 1)]
runner.run_grid(configs, results_dir=sys.argv[1], data_dir=sys.argv[3], jobs=2, progress=False)
"""


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # gone meanwhile
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_a_grid_stops_its_worker_processes(stop: signal.Signals, data_dir: Path, tmp_path: Path) -> None:
    """SIGTERM kills the grid's process (its workers see they are orphans and end); SIGINT to it
    alone, as a scheduler may send, ends the grid, which terminates its workers. Either way no run
    trains on unseen, holding a core and its lock."""
    long = RunConfig(**FAST, epochs=1000, subset=2000, test_subset=200, batch_size=50)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", GRID_OF_TWO, str(tmp_path), json.dumps(long.to_dict()), str(data_dir)]
    grid = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    locks = [RunStore(tmp_path)._lock_path(long.replace(seed=s)) for s in (0, 1)]  # noqa: SLF001
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not all(lock.exists() for lock in locks):  # both workers have claimed their runs: training
            assert grid.poll() is None and time.monotonic() < deadline, grid.stderr.read() if grid.stderr else ""
            time.sleep(0.2)
        workers = children(grid.pid)
        assert len(workers) >= 2
        grid.send_signal(stop)
        assert grid.wait(timeout=60) != 0
        deadline = time.monotonic() + 30
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(w) for w in workers)
    finally:  # a failing run of this test leaves no training behind
        for pid in [grid.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        grid.wait()
    assert list((tmp_path / "runs").glob("*")) == []  # nothing stored half-way


def test_the_python_api_refuses_what_the_cli_refuses() -> None:
    """A seed given twice would count one run as two; a budget must be a positive finite time."""
    from deepcls.execution.runner import ConcurrentExecutor

    with pytest.raises(ConfigError, match="seeds repeat a value"):
        ex.grid("resnet_se", "quick", (0, 0))
    for budget in (float("nan"), float("inf"), -10.0, 0.0):
        with pytest.raises(ConfigError, match="a budget must be a positive number of seconds"):
            ConcurrentExecutor(budget_s=budget)
