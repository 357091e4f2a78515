"""fit(): learning, determinism, real-MNIST accuracy, divergence (also one only evaluation shows),
reuse, resume after SIGKILL, a failed retrain that keeps the finished run, a last batch of one, metrics."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import REPO_ROOT, SMALL_VGG7, TINY_RUN, cli_args, count_steps, files_of, leftovers, results, toy, train

from deepcls.cli import build_parser, config_from_args
from deepcls.config import RunConfig, threads_per_job
from deepcls.data import balanced_subset, get_spec
from deepcls.engine import runtime
from deepcls.engine.fit import Trainer
from deepcls.errors import ConfigError
from deepcls.execution.chains import Outcome
from deepcls.execution.runner import extension_chains, run_grid
from deepcls.models import register_family, register_model
from deepcls.numeric import resolve_precision
from deepcls.paper import grids as ex
from deepcls.progress import LOG_BAR_INTERVAL, bar_timing
from deepcls.store import checkpoints
from deepcls.store.runs import RunRecord, RunStore
from deepcls.version import __version__

SMALL = RunConfig(**SMALL_VGG7, batch_norm=True, epochs=3, subset=1000, test_subset=200, batch_size=50)
# One epoch on all 60000 real training images, scored on all 10000 test images: 98.76% in ~6 s on
# 2 CPU cores (seeds 0-4: 98.7-99.0%). BN and a decaying triangular lr make one epoch enough.
MNIST_ONE_EPOCH = RunConfig(
    dataset="mnist",
    model="vgg7",
    width="reduced",
    batch_norm=True,
    classifier_width=256,
    batch_size=128,
    optimizer="adam",
    lr=3e-3,
    schedule="triangle",
    warmup=0.1,
    epochs=1,
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, RunRecord]:
    root = tmp_path_factory.mktemp("small")
    return root, train(SMALL, root, data_dir)


def test_training_lowers_the_loss(small_run: tuple[Path, RunRecord]) -> None:
    _, record = small_run
    assert record.status == "complete" and not record.reused
    loss = record.history["train_loss"]
    assert list(record.history["epoch"]) == [1, 2, 3]
    assert loss.iloc[0] > loss.iloc[-1]
    assert record.history["train_acc"].iloc[-1] > 20  # well above chance (10%)


def test_same_config_gives_identical_history(small_run: tuple[Path, RunRecord], data_dir: Path, tmp_path: Path) -> None:
    _, first = small_run
    second = train(SMALL, tmp_path, data_dir)
    assert second.run_id == first.run_id
    pd.testing.assert_frame_equal(results(second.history), results(first.history), check_exact=True)
    np.testing.assert_array_equal(second.confusion, first.confusion)


def test_an_independent_process_and_store_train_the_same_history(
    small_run: tuple[Path, RunRecord], data_dir: Path, tmp_path: Path
) -> None:
    """A seed pins a run within its numeric class: ``deepcls train`` in a fresh process, into a fresh
    store, with the thread count of the first training, gives its history bit for bit."""
    _, first = small_run
    threads = str(first.metrics["numeric_class"]["threads"])
    command = [sys.executable, "-m", "deepcls", "train", *cli_args(SMALL), "--threads", threads, "--quiet"]
    subprocess.run(
        [*command, "--results-dir", str(tmp_path), "--data-dir", str(data_dir)], check=True, capture_output=True
    )
    second = RunStore(tmp_path).load(SMALL)
    assert second.metrics["numeric_class"] == first.metrics["numeric_class"]
    pd.testing.assert_frame_equal(results(second.history), results(first.history), check_exact=True)


def test_the_first_epochs_of_a_constant_lr_run_are_the_shorter_run(
    small_run: tuple[Path, RunRecord], data_dir: Path, tmp_path: Path
) -> None:
    """Why an epoch line may read two lengths from one trajectory: within a numeric class, a 2-epoch
    run trained on its own (a fresh store: nothing to continue) is the 3-epoch run's first 2 epochs."""
    _, longer = small_run
    assert SMALL.extendable
    shorter = train(SMALL.replace(epochs=2), tmp_path, data_dir)
    assert shorter.metrics["extended_from"] is None
    expected = results(longer.history).iloc[:2]
    pd.testing.assert_frame_equal(results(shorter.history), expected, check_exact=True)


def test_metrics_confusion_and_samples(small_run: tuple[Path, RunRecord], data_dir: Path) -> None:
    root, record = small_run
    m, h = record.metrics, record.history
    assert (root / "runs" / SMALL.run_id) == record.path
    assert m["status"] == "complete" and m["run_id"] == SMALL.run_id and m["epochs_run"] == 3
    assert m["diverged_epoch"] is None
    assert m["highest_test_acc"] == h["test_acc"].max() >= m["final_test_acc"] == h["test_acc"].iloc[-1]
    assert m["highest_train_acc"] == h["train_acc"].max() and m["final_train_acc"] == h["train_acc"].iloc[-1]
    assert h.loc[h["epoch"] == m["best_epoch"], "test_acc"].item() == m["highest_test_acc"]
    assert m["wall_time_s"] == pytest.approx(h["seconds"].sum()) and m["wall_time_s"] > 0
    assert m["device"].startswith(("cpu", "cuda")) and m["torch_version"] == torch.__version__
    numeric = m["numeric_class"]  # what can change a run's numbers for a fixed config and seed
    assert numeric["device_kind"] == "cpu" and numeric["bf16"] in ("amx", "avx512_bf16", "emulated")
    assert numeric["threads"] == torch.get_num_threads() and numeric["torch"] == torch.__version__
    assert numeric["precision"] == resolve_precision("auto", torch.device("cpu"))  # bf16 only where it is native
    assert m["deepcls_version"] == __version__ != "0.1.0"
    assert m["flush_denormal"] is True  # set before torch's threads started (tests/conftest.py, as the CLI)
    assert m["params"] > 0 and m["macs"] > 0

    confusion = record.confusion
    assert confusion is not None and confusion.shape == (10, 10)
    assert confusion.sum() == SMALL.test_subset
    assert confusion.sum(1).tolist() == [SMALL.test_subset // 10] * 10  # class-balanced test subset
    assert 100 * np.trace(confusion) / confusion.sum() == pytest.approx(m["final_test_acc"])
    per_class = 100 * confusion.diagonal() / confusion.sum(1)
    assert m["per_class_acc"] == pytest.approx(per_class.round(2).tolist())
    for true, pred, count in m["most_confused"]:
        assert true != pred and count == confusion[true, pred] > 0
    counts = [c for _, _, c in m["most_confused"]]
    assert counts == sorted(counts, reverse=True)

    y_test = np.load(data_dir / "mnist.npz")["y_test"]
    subset = set(balanced_subset(torch.from_numpy(y_test), SMALL.test_subset, 10).tolist())
    s = record.samples
    assert set(s) == {"correct_index", "correct_pred", "wrong_index", "wrong_pred", "wrong_true"}
    assert set(s["correct_index"].tolist()) | set(s["wrong_index"].tolist()) <= subset
    assert len(s["correct_index"]) > 0 and len(s["wrong_index"]) > 0
    np.testing.assert_array_equal(s["correct_pred"], y_test[s["correct_index"]])
    np.testing.assert_array_equal(s["wrong_true"], y_test[s["wrong_index"]])

    # every test image's final prediction: the confusion matrix rebuilt from them is the stored one
    predictions = record.predictions
    assert predictions is not None and set(predictions) == {"index", "true", "predicted"}
    assert sorted(predictions["index"].tolist()) == sorted(subset)
    np.testing.assert_array_equal(predictions["true"], y_test[predictions["index"]])
    rebuilt = np.zeros((10, 10), dtype=confusion.dtype)
    np.add.at(rebuilt, (y_test[predictions["index"]], predictions["predicted"]), 1)
    np.testing.assert_array_equal(rebuilt, confusion)
    assert (record.path / "predictions.npz").stat().st_size < 8_000  # a few bytes an image, not a copy of the data
    assert (s["wrong_pred"] != s["wrong_true"]).all()


def test_finished_run_is_reused_without_training(
    small_run: tuple[Path, RunRecord], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, first = small_run

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a stored run must not be retrained")

    monkeypatch.setattr(Trainer, "step", no_training)
    reused = train(SMALL, root, data_dir)
    assert reused.reused and reused.path == first.path
    pd.testing.assert_frame_equal(reused.history, first.history)

    monkeypatch.undo()
    steps = count_steps(monkeypatch)
    forced = train(SMALL, root, data_dir, force=True)
    assert not forced.reused and forced.status == "complete"
    assert sum(steps) == SMALL.epochs * SMALL.subset
    pd.testing.assert_frame_equal(results(forced.history), results(first.history), check_exact=True)


def test_a_longer_run_continues_the_shorter_one_exactly(
    small_run: tuple[Path, RunRecord], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, scratch = small_run  # SMALL (3 epochs) trained from scratch in another store
    short = train(SMALL.replace(epochs=2), tmp_path, data_dir)
    store = RunStore(tmp_path)
    assert (
        checkpoints.final_path(store, short.config).exists()
        and not checkpoints.checkpoint_path(store, short.config).exists()
    )
    assert checkpoints.prefix_run(store, SMALL) == short.config
    assert checkpoints.prefix_run(store, SMALL.replace(schedule="cosine")) is None  # lr depends on the length
    assert checkpoints.prefix_run(store, SMALL.replace(lr=2e-3)) is None

    steps = count_steps(monkeypatch)
    longer = train(SMALL, tmp_path, data_dir)
    assert sum(steps) == SMALL.subset  # only the third epoch was trained
    assert longer.metrics["extended_from"] == short.run_id and scratch.metrics["extended_from"] is None
    pd.testing.assert_frame_equal(results(longer.history), results(scratch.history), check_exact=True)
    np.testing.assert_array_equal(longer.confusion, scratch.confusion)

    steps.clear()
    forced = train(SMALL, tmp_path, data_dir, force=True)  # force trains the whole run again
    assert sum(steps) == SMALL.epochs * SMALL.subset and forced.metrics["extended_from"] is None


def test_a_run_another_process_is_training_is_waited_for_then_reused(
    small_run: tuple[Path, RunRecord], data_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _, first = small_run
    store, outcome = RunStore(tmp_path), {}
    with store.claim(SMALL.replace(epochs=5)):  # "another process" trains a longer run of the same config
        worker = threading.Thread(target=lambda: outcome.update(record=train(SMALL, tmp_path, data_dir)))
        worker.start()
        deadline, err = time.monotonic() + 120, ""
        while "waiting for another process" not in err and time.monotonic() < deadline:
            time.sleep(0.2)
            err += capfd.readouterr().err
        assert f"{SMALL.run_id}: waiting for another process" in err and worker.is_alive()
        assert not store.has(SMALL) and not checkpoints.checkpoint_path(store, SMALL).exists()
        shutil.copytree(first.path, store.run_dir(SMALL))  # ... which stores this run before letting go
    worker.join(timeout=120)
    record = outcome["record"]
    assert record.reused and record.path == store.run_dir(SMALL)
    pd.testing.assert_frame_equal(results(record.history), results(first.history))


def test_divergence_is_recorded_and_the_store_stays_usable(data_dir: Path, tmp_path: Path) -> None:
    absurd = RunConfig(**SMALL_VGG7, optimizer="sgd", lr=1e6, epochs=2, subset=500, test_subset=100, batch_size=50)
    record = train(absurd, tmp_path, data_dir)
    m = record.metrics
    assert record.status == "diverged" and m["diverged_epoch"] == 1 and m["epochs_run"] == 0
    assert m["final_test_acc"] is None and record.history.empty
    store = RunStore(tmp_path)
    assert store.status(absurd) == "diverged"
    assert not checkpoints.checkpoint_path(store, absurd).exists()
    assert train(absurd, tmp_path, data_dir).reused  # a diverged run is a result, not retried

    normal = SMALL.replace(epochs=1, subset=200, test_subset=100)
    assert train(normal, tmp_path, data_dir).status == "complete"
    assert set(store.run_ids()) == {absurd.run_id, normal.run_id}


def test_a_crash_is_recorded_as_failed_and_the_grid_goes_on(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = SMALL.replace(epochs=1, subset=200, test_subset=100, seed=1)
    normal = SMALL.replace(epochs=1, subset=200, test_subset=100, seed=2)
    real_step = Trainer.step

    def step(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> Any:
        if self.config.seed == 1:
            raise RuntimeError("simulated out of memory")
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "step", step)
    with pytest.warns(UserWarning, match="simulated out of memory"):
        outcomes = run_grid([broken, normal], results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    assert [(o.run_id, o.error) for o in outcomes] == [
        (broken.run_id, "RuntimeError: simulated out of memory"),
        (normal.run_id, None),
    ]
    store = RunStore(tmp_path)
    assert store.status(broken) == "failed" and store.status(normal) == "complete"
    assert "simulated out of memory" in store.load(broken).metrics["error"]
    assert not store.has(broken)  # a failed run is retried next time
    monkeypatch.setattr(Trainer, "step", real_step)
    assert train(broken, tmp_path, data_dir).status == "complete"


def test_parallel_grid_trains_each_run_once_and_chains_the_lengths_of_a_config(data_dir: Path, tmp_path: Path) -> None:
    short = SMALL.replace(epochs=1, subset=300, test_subset=100)
    longer, cosine = short.replace(epochs=2), short.replace(schedule="cosine", seed=3)
    assert [[c.epochs for c in chain] for chain in extension_chains([longer, cosine, short])] == [[1, 2], [1]]
    outcomes = run_grid(
        [longer, cosine, short, cosine], results_dir=str(tmp_path), data_dir=str(data_dir), progress=False, jobs=2
    )
    store = RunStore(tmp_path)
    assert sorted(o.run_id for o in outcomes) == sorted(c.run_id for c in (short, longer, cosine))
    assert all(o.error is None for o in outcomes) and len(store.run_ids()) == 3
    assert {store.status(c) for c in (short, longer, cosine)} == {"complete"}
    assert store.load(longer).metrics["extended_from"] == short.run_id  # same worker, shortest first
    assert {store.load(c).metrics["device"].split(" x")[-1] for c in (short, longer, cosine)} == {
        f"{threads_per_job(2)} threads"
    }
    with pytest.raises(ConfigError, match="jobs must be >= 1"):
        run_grid([short], results_dir=str(tmp_path), jobs=0)


def test_a_family_declared_in_the_grids_process_trains_in_its_worker_processes(
    own_registry: None, data_dir: Path, tmp_path: Path
) -> None:
    """A family registered by the user's own code (a notebook, a script), not by a module the package
    imports: the grid's spawned workers are given the declarations and build its models too."""
    register_family("toy", builder=toy, options=("batch_norm",))
    register_model("toy1", "toy", min_input_size=8)
    runs = [RunConfig(dataset="mnist", model="toy1", epochs=1, subset=200, test_subset=100, seed=s) for s in (0, 1)]
    outcomes = run_grid(runs, results_dir=str(tmp_path), data_dir=str(data_dir), progress=False, jobs=2)
    assert set(outcomes) == {Outcome(c.run_id) for c in runs}  # no error: both built and trained
    assert {RunStore(tmp_path).status(c) for c in runs} == {"complete"}

    register_family("inline", builder=lambda name, **options: toy(name, **options))  # defined here: not importable
    register_model("inline1", "inline", min_input_size=8)
    runs = [c.replace(model="inline1") for c in runs]
    with pytest.raises(ConfigError) as info:
        run_grid(runs, results_dir=str(tmp_path), data_dir=str(data_dir), progress=False, jobs=2)
    message = str(info.value)
    assert "family inline: worker processes cannot import its builder" in message and "jobs=1" in message
    assert "\n" not in message and not any(RunStore(tmp_path).has(c) for c in runs)


def test_resume_after_sigkill_matches_an_uninterrupted_run(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(**SMALL_VGG7, batch_norm=True, epochs=4, subset=4000, test_subset=500, batch_size=100)
    killed_root, reference_root = tmp_path / "killed", tmp_path / "reference"
    store = RunStore(killed_root)
    checkpoint = checkpoints.checkpoint_path(store, config)
    assert config_from_args(build_parser().parse_args(["train", *cli_args(config)])) == config
    argv = [sys.executable, "-m", "deepcls", "train", *cli_args(config), "--results-dir", str(killed_root), "--quiet"]
    env = {**os.environ, "DEEPCLS_DATA_DIR": str(data_dir)}
    env.pop("DEEPCLS_RESULTS_DIR", None)
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists():
            assert proc.poll() is None, f"finished before a checkpoint was seen: {proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not store.run_dir(config).exists() and store.status(config) is None
    assert [p.name for p in store.runs.iterdir() if p.name.startswith(".tmp-")] == []
    state = checkpoints.load_checkpoint(store, config)
    assert state is not None
    done = len(state["history"])
    assert 1 <= done < config.epochs

    epochs_trained: list[int] = []
    real_train_epoch = Trainer.train_epoch

    def recording_train_epoch(self: Trainer, epoch: int, bar: Any) -> tuple[float, float]:
        epochs_trained.append(epoch)
        return real_train_epoch(self, epoch, bar)

    monkeypatch.setattr(Trainer, "train_epoch", recording_train_epoch)
    resumed = train(config, killed_root, data_dir)
    assert epochs_trained == list(range(done, config.epochs))  # resumed, not restarted
    assert resumed.status == "complete" and not resumed.reused
    assert not checkpoint.exists()

    monkeypatch.undo()
    uninterrupted = train(config, reference_root, data_dir)
    assert list(resumed.history["epoch"]) == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(results(resumed.history), results(uninterrupted.history), check_exact=True)
    np.testing.assert_array_equal(resumed.confusion, uninterrupted.confusion)


@pytest.mark.slow
def test_one_epoch_on_real_mnist_reaches_98_percent(data_dir: Path, tmp_path: Path) -> None:
    start = time.perf_counter()
    record = train(MNIST_ONE_EPOCH, tmp_path, data_dir)
    elapsed = time.perf_counter() - start
    assert record.status == "complete" and record.metrics["epochs_run"] == 1
    assert record.confusion is not None and record.confusion.sum() == 10_000  # the full test set
    assert MNIST_ONE_EPOCH.subset is None and MNIST_ONE_EPOCH.test_subset is None
    print(f"real MNIST, 1 epoch of 60000: test accuracy {record.metrics['final_test_acc']:.2f}% in {elapsed:.1f} s")
    assert record.metrics["final_test_acc"] >= 98.0


def test_progress_bars_refresh_every_30_s_into_a_log_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with open(tmp_path / "run.log", "w") as log:
        monkeypatch.setattr(sys, "stderr", log)
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
        assert bar_timing() == {"mininterval": LOG_BAR_INTERVAL, "maxinterval": LOG_BAR_INTERVAL}


def test_cuda_runs_compute_in_fp32_like_the_cpu_runs_they_are_compared_with():
    """cuDNN convolves in TF32 by default; a GPU seed of a row would then round differently from
    its CPU seeds. Setting the flags needs no GPU."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    flags = cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark, cudnn.deterministic
    algorithms = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        with mock.patch.dict(os.environ):
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
            cudnn.allow_tf32 = matmul.allow_tf32 = cudnn.benchmark = True
            assert runtime.configure(torch.device("cuda")).type == "cuda"
            assert not cudnn.allow_tf32 and not matmul.allow_tf32
            # and deterministic kernels where they cost little: a seed pins a CUDA run as far as it can
            assert cudnn.deterministic and not cudnn.benchmark
            assert (
                torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
            )
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.benchmark, cudnn.deterministic = flags
        torch.use_deterministic_algorithms(algorithms[0], warn_only=algorithms[1])


def test_a_failed_force_retrain_keeps_the_finished_run(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    first = train(TINY_RUN, tmp_path, data_dir)
    before = files_of(first.path)

    def no_compiler(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> Any:
        raise RuntimeError("simulated --compile failure: no working C++ compiler found")

    monkeypatch.setattr(Trainer, "step", no_compiler)
    with pytest.raises(RuntimeError, match="no working C\\+\\+ compiler"):
        train(TINY_RUN, tmp_path, data_dir, force=True)
    store = RunStore(tmp_path)
    assert files_of(store.run_dir(TINY_RUN)) == before  # history, confusion matrix and samples all kept
    assert store.status(TINY_RUN) == "complete" and leftovers(tmp_path) == []


def test_a_blow_up_that_shows_only_at_evaluation_is_diverged(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_step = RunConfig(**SMALL_VGG7, optimizer="sgd", lr=1e30, epochs=1, subset=64, test_subset=100, batch_size=64)
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


def test_a_batch_norm_model_trains_with_a_last_batch_of_one(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RunConfig(dataset="mnist", model="resnet18", epochs=1, subset=33, test_subset=100, batch_size=32)
    steps = count_steps(monkeypatch)
    record = train(config, tmp_path, data_dir)
    assert record.status == "complete" and steps == [33]


def test_no_committed_or_planned_run_has_a_last_batch_of_one() -> None:
    """So joining such a batch to the one before changes no stored history."""
    committed = RunStore(REPO_ROOT / "results")
    configs = [committed.load(r).config for r in committed.run_ids()]
    configs += [c for p in ("smoke", "quick", "paper", "best") for c in ex.grid(ex.ALL_TABLES, p, (0, 1, 2))["config"]]
    sizes = {(min(c.subset or 10**9, get_spec(c.dataset).train_size), c.batch_size) for c in configs}
    assert len(configs) > 500 and [(n, b) for n, b in sizes if n % b == 1] == []
