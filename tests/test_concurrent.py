"""Runs trained together (deepcls.execution.interleaved) train what they train alone; the CUDA-graph code
paths' CPU-side logic (which batches replay a graph, the lr as a tensor, undoing warm-up steps); a
stopped grid stops its worker processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import REPO_ROOT, SMALL_VGG7, results

from deepcls.config import RunConfig
from deepcls.engine.fit import Trainer, fit
from deepcls.engine.graphs import state_kept, use_graphs
from deepcls.engine.optim import lr_factor
from deepcls.errors import ConfigError
from deepcls.execution import interleaved as concurrent
from deepcls.execution.runner import ConcurrentExecutor, LocalExecutor, default_executor, run_grid
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore

TINY = dict(dataset="mnist", epochs=2, subset=200, test_subset=100, batch_size=64)  # 3 full batches + 8
VGG = dict(model="vgg7", width="reduced", classifier_width=64)  # its classifier has dropout
# A ResNet and a VGG, with and without BN, dropout and SE, Adam and SGD, augmented or not; the
# lengths 1 and 2 of one VGG form a chain (the 2-epoch run continues the 1-epoch one).
TOGETHER = [
    RunConfig(**TINY, model="resnet18", augment="flip,rotate"),
    RunConfig(**TINY, model="resnet18", se=True, optimizer="sgd", lr=0.05, schedule="triangle", warmup=0.2, seed=1),
    RunConfig(**{**TINY, "epochs": 1}, **VGG),
    RunConfig(**TINY, **VGG),
    RunConfig(**TINY, **VGG, batch_norm=True, optimizer="sgd", lr=0.02, nesterov=True, seed=2, augment="crop"),
]
EXACT = {"check_exact": True}  # tolerance on the CPU: none, the histories are equal bit for bit


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, pd.DataFrame]:
    root = tmp_path_factory.mktemp("alone")
    return {c.run_id: fit(c, results_dir=str(root), data_dir=str(data_dir), progress=False).history for c in TOGETHER}


def test_runs_trained_together_equal_runs_trained_alone(
    alone: dict[str, pd.DataFrame], data_dir: Path, tmp_path: Path
) -> None:
    executor = ConcurrentExecutor(runs=3)  # fewer lanes than chains: a lane is refilled
    outcomes = run_grid(TOGETHER, results_dir=str(tmp_path), data_dir=str(data_dir), executor=executor, progress=False)
    assert sorted(o.run_id for o in outcomes) == sorted(c.run_id for c in TOGETHER)
    assert all(o.error is None for o in outcomes)
    store = RunStore(tmp_path)
    ids = {c.run_id for c in TOGETHER}
    for config in TOGETHER:
        record = store.load(config)  # the folder and run id of the run trained alone
        assert record.config == config and record.status == "complete"
        pd.testing.assert_frame_equal(results(record.history), results(alone[config.run_id]), **EXACT)
        company = record.metrics["trained_alongside"]
        assert company and config.run_id not in company and set(company) <= ids
        assert record.metrics["cuda_graphs"] is False
    short, longer = TOGETHER[2], TOGETHER[3]
    assert store.load(longer).metrics["extended_from"] == short.run_id


class Clock:
    """A stand-in for the time module: every reading is one second after the last."""

    def __init__(self) -> None:
        self.ticks = itertools.count()

    def monotonic(self) -> float:
        return float(next(self.ticks))


def test_a_time_budget_stops_cleanly_and_the_next_call_resumes(
    alone: dict[str, pd.DataFrame], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TOGETHER[3]
    monkeypatch.setattr(concurrent, "time", Clock())
    options: dict[str, Any] = dict(results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    # one lane: the budget is read once per turn; 7 s = start, 4 steps of epoch 1, its evaluation
    finished = list(concurrent.train_together([[config]], runs=1, budget_s=7, **options))
    store = RunStore(tmp_path)
    assert finished == [] and store.status(config) is None  # stopped: neither complete nor failed
    assert len(checkpoints.load_checkpoint(store, config)["history"]) == 1  # ... with its first epoch kept
    assert not store.training(config)  # and its lock released

    monkeypatch.undo()
    assert list(concurrent.train_together([[config]], runs=1, **options)) == [[(config.run_id, None)]]
    pd.testing.assert_frame_equal(results(store.load(config).history), results(alone[config.run_id]), **EXACT)


def test_runs_that_fit_take_the_fewest_steps_first_with_a_margin() -> None:
    assert concurrent.runs_that_fit([700, 100, 300], seconds_per_step=0.1, time_left=1e6) == 3
    # 100 + 300 steps at 0.1 s: 40 s, x1.5 = 60 s <= 60; 1,100 steps would be 165 s
    assert concurrent.runs_that_fit([700, 100, 300], seconds_per_step=0.1, time_left=60) == 2
    assert concurrent.runs_that_fit([700], seconds_per_step=0.1, time_left=60) == 0
    assert concurrent.runs_that_fit([], seconds_per_step=0.1, time_left=60) == 0


def test_a_short_budget_finishes_the_runs_that_fit_instead_of_none(
    alone: dict[str, pd.DataFrame], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three 8-step runs taking turns, every step 1 s, 20 s budget: in lockstep all three would end
    at ~27 s and none would be stored. Measured after 3 s, two are parked; the first finishes at
    11 s, then the next steps on alone (its 7 steps x 1.5 exceed the 9 s left, but it is the one
    closest to the end) and finishes at 19 s; the third is stopped at the budget."""
    configs = [TOGETHER[0], TOGETHER[1], TOGETHER[4]]
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(concurrent, "time", SimpleNamespace(monotonic=lambda: clock.now))
    monkeypatch.setattr(concurrent, "PLAN_EVERY_S", 3.0)
    turn = concurrent._Slot.turn

    def one_second_turn(slot: Any) -> bool:
        clock.now += 1.0
        return turn(slot)

    monkeypatch.setattr(concurrent._Slot, "turn", one_second_turn)
    lines: list[str] = []
    options: dict[str, Any] = dict(results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    chains = [[c] for c in configs]
    finished = list(concurrent.train_together(chains, runs=3, budget_s=20, log=lines.append, **options))

    assert finished == [[(configs[0].run_id, None)], [(configs[1].run_id, None)]]
    store = RunStore(tmp_path)
    for config in configs[:2]:
        pd.testing.assert_frame_equal(results(store.load(config).history), results(alone[config.run_id]), **EXACT)
    assert store.status(configs[2]) is None and not store.training(configs[2])
    assert sum("parked" in line and "will not fit" in line for line in lines) == 2
    assert any("1 running, 2 parked, 0 waiting" in line for line in lines)


def test_the_executor_is_chosen_by_device(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = [RunConfig(**TINY, **VGG, device="cpu")]
    assert isinstance(default_executor(cpu), LocalExecutor)
    assert isinstance(default_executor([RunConfig(**TINY, **VGG, device="cuda")]), ConcurrentExecutor)
    assert isinstance(default_executor([RunConfig(**TINY, **VGG, device="cuda")], jobs=2), LocalExecutor)
    with pytest.raises(ConfigError, match="runs at once"):
        ConcurrentExecutor(runs=0)


# ---------------------------------------------------------------------------- CUDA graphs, CPU side


def test_graphs_are_a_speed_knob_chosen_by_device() -> None:
    config = RunConfig(**TINY, **VGG)
    assert config.replace(graphs=True).run_id == config.replace(graphs=False).run_id == config.run_id
    assert use_graphs(None, torch.device("cuda")) and not use_graphs(None, torch.device("cpu"))
    assert not use_graphs(None, torch.device("cuda"), compiled=True)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Trainer(config.replace(graphs=True, device="cpu"))


class Recorder:
    """Stands in for a captured graph on the CPU: records the batch sizes, runs the eager function."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.sizes = fn, []

    def __call__(self, *inputs: torch.Tensor) -> Any:
        self.sizes.append(len(inputs[0]))
        return self.fn(*inputs)


def test_full_batches_go_to_the_graphs_and_the_partial_batch_runs_eagerly(
    alone: dict[str, pd.DataFrame], data_dir: Path, tmp_path: Path
) -> None:
    config = TOGETHER[3].replace(test_subset=2500)  # evaluation: two full batches of 1000 and one of 500
    trainer = Trainer(config, str(data_dir))
    trainer.graphs = True  # what a CUDA run does, with the graphs replaced by recorders
    trainer.step_graph, trainer.eval_graph = Recorder(trainer.eager_step), Recorder(trainer.infer)
    eager = Recorder(trainer.eager_step)
    trainer.eager_step = eager  # type: ignore[method-assign]
    record = trainer.train(RunStore(tmp_path), progress=False)
    assert trainer.step_graph.sizes == [64] * 3 * config.epochs and eager.sizes == [8] * config.epochs
    assert trainer.eval_graph.sizes == [1000, 1000] * config.epochs
    reference = alone[TOGETHER[3].run_id]  # same training; the test subset only changes test columns
    columns = ["epoch", "lr", "train_loss", "train_acc"]
    pd.testing.assert_frame_equal(record.history[columns], reference[columns], **EXACT)


def test_the_lr_as_a_device_tensor_follows_the_schedule(data_dir: Path) -> None:
    config = RunConfig(**TINY, **VGG, schedule="triangle", warmup=0.3)
    factors = [lr_factor(config.schedule, i, 20, config.warmup) for i in range(20)]
    seen: dict[bool, list[float]] = {}
    for as_tensor in (False, True):
        trainer = Trainer(config, str(data_dir))
        trainer.graphs = as_tensor  # place_lr/set_lr as under CUDA graphs (no capture on the CPU)
        trainer.place_lr()
        group = trainer.optimizer.param_groups[0]
        address, seen[as_tensor] = group["lr"], []
        for factor in factors:
            trainer.set_lr(config.lr * factor)
            seen[as_tensor].append(float(group["lr"]))
        assert group["lr"] is address or not as_tensor  # filled in place: the graph reads one address
    assert len(set(seen[False])) > 10
    np.testing.assert_allclose(seen[True], seen[False], rtol=1e-7)  # a float32 tensor


def test_restore_places_the_lr_as_the_run_needs_it(data_dir: Path) -> None:
    config = RunConfig(**TINY, **VGG)
    state = Trainer(config, str(data_dir)).state()
    trainer = Trainer(config, str(data_dir))
    trainer.graphs = True
    trainer.restore(state)
    group = trainer.optimizer.param_groups[0]
    assert isinstance(group["lr"], torch.Tensor) and group["capturable"]
    assert float(group["lr"]) == pytest.approx(config.lr, rel=1e-7)  # float32; set_lr fills it before each step
    trainer.graphs = False
    trainer.restore(trainer.state())  # a checkpoint written under CUDA graphs, resumed without them
    group = trainer.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(config.lr, rel=1e-7) and not group["capturable"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_warm_up_steps_before_capture_leave_no_trace(
    optimizer: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TOGETHER[4].replace(optimizer=optimizer, lr=0.02 if optimizer == "sgd" else 1e-3)
    plain = fit(config, results_dir=str(tmp_path / "plain"), data_dir=str(data_dir), progress=False)
    real_step = Trainer.step
    warmed: list[int] = []

    def step_after_warm_up(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> Any:
        if not warmed:  # what Graphed does before capturing: eager steps, then everything undone
            with state_kept(self.model, self.optimizer):
                for _ in range(2):
                    self.eager_step(x, y)
                    torch.rand(3)  # draws from the global RNG (as dropout does)
            warmed.append(len(y))
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "step", step_after_warm_up)
    warm = fit(config, results_dir=str(tmp_path / "warm"), data_dir=str(data_dir), progress=False)
    assert warmed == [64]
    pd.testing.assert_frame_equal(results(warm.history), results(plain.history), **EXACT)


def test_checkpoints_every_epoch_or_at_most_every_n_seconds() -> None:
    def due(every_s: float, epoch: int, schedule: str = "constant") -> bool:
        config = RunConfig(**TINY, **VGG, schedule=schedule)  # 2 epochs
        trainer = SimpleNamespace(config=config, checkpoint_every_s=every_s, last_checkpoint=time.monotonic())
        return Trainer.checkpoint_due(trainer, epoch)  # type: ignore[arg-type]

    assert due(0, 0) and due(0, 1)  # the default: after every epoch
    assert not due(3600, 0) and not due(3600, 1, "cosine")
    assert due(3600, 1)  # the last epoch of an extendable run: a longer run continues from it


# ---------------------------------------------------------------------- a stopped grid's worker processes
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
    long = RunConfig(**SMALL_VGG7, epochs=1000, subset=2000, test_subset=200, batch_size=50)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
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
