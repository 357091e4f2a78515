"""What more than one test file uses: the repository's root and a small VGG, the command line run
in-process, quiet training, run records written without training, a script that kills itself while
replacing a run, the store read back, and a model family of one's own.

Test files import it as ``from helpers import ...`` (pytest puts tests/ on ``sys.path``); fixtures
stay in conftest.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.engine.fit import HISTORY_COLUMNS, TIMING_COLUMNS, Trainer, fit
from deepcls.engine.summary import accuracy_summary
from deepcls.paper import grids
from deepcls.store.runs import RunRecord, RunStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SMALL_VGG7 = {"dataset": "mnist", "model": "vgg7", "width": "reduced", "classifier_width": 64}
"""A VGG-7 small enough for seconds-long training tests on real MNIST (``RunConfig(**SMALL_VGG7, ...)``)."""
TINY_RUN = RunConfig(**SMALL_VGG7, epochs=1, subset=200, test_subset=100, batch_size=64)
"""One epoch of that VGG on 200 images, scored on 100: a run to store, damage, resume and retrain."""


# ---------------------------------------------------------------------- the command line
def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """main(argv) in-process: (exit code, stdout, stderr), whether it returns or exits."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, start: str = "deepcls: error: ") -> str:
    """The one line a command wrote to stderr, asserted to be one line opening with ``start``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


def cli_args(config: RunConfig) -> list[str]:
    """The `deepcls train` options that reproduce ``config``."""
    args: list[str] = []
    defaults = RunConfig().to_dict()
    for name, value in config.to_dict().items():
        if value == defaults[name]:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return args


# ---------------------------------------------------------------------- training
def train(config: RunConfig, root: Path, data_dir: Path, **kwargs: Any) -> RunRecord:
    """fit() into the store at ``root`` without a progress bar."""
    return fit(config, results_dir=str(root), data_dir=str(data_dir), progress=False, **kwargs)


def count_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every training step from now on (the list fills as steps run)."""
    steps: list[int] = []
    real_step = Trainer.step

    def counting_step(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps.append(len(y))
        return real_step(self, x, y)

    monkeypatch.setattr(Trainer, "step", counting_step)
    return steps


def results(history: pd.DataFrame) -> pd.DataFrame:
    """The history without its wall-clock columns: what must replay exactly."""
    return history.drop(columns=TIMING_COLUMNS)


# ---------------------------------------------------------------------- run records without training
def grid_config(table: str, row: int, seed: int = 0, profile: str = "quick") -> RunConfig:
    """The config of one row of a report table at a profile."""
    grid = grids.table_grid(table, profile, (seed,))
    return grid.loc[grid["row"] == row, "config"].iloc[0]


def history_frame(epochs: int = 2, acc: float = 90.0) -> pd.DataFrame:
    """A history.csv of every column whose test accuracy climbs a point an epoch to ``acc``."""
    rows = [[e, 1e-3, 1.0 / e, acc - 7 + e, 1.2 / e, acc - epochs + e, 0.5, 1000.0] for e in range(1, epochs + 1)]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def save_run(store: RunStore, config: RunConfig, tag: str, status: str = "complete", acc: float = 90.0) -> Path:
    """A run folder as the trainer writes it, every file agreeing with the others: a finished run
    ends at test accuracy ``acc`` with all 100 test images right; any other status has no epochs (a
    diverged one diverged in its first). ``tag`` (in metrics.json) tells versions of one run apart."""
    epochs = config.epochs if status == "complete" else 0
    history = history_frame(epochs, acc)
    metrics = {
        "run_id": config.run_id,
        "status": status,
        "profile": config.profile,
        "epochs_run": len(history),
        "diverged_epoch": 1 if status == "diverged" else None,
        "extended_from": None,
        "wall_time_s": 1.0,
        "device": "cpu",
        **accuracy_summary(history),
        "tag": tag,
    }
    if not epochs:
        return store.save(config, history, metrics)
    confusion = np.diag(np.full(10, 10, dtype=np.int64))
    samples = {"correct_index": np.arange(5), "wrong_index": np.arange(5, 8)}
    labels = np.repeat(np.arange(10, dtype=np.uint8), 10)  # every image right: the diagonal above
    predictions = {"index": np.arange(100, dtype=np.int32), "true": labels, "predicted": labels}
    return store.save(config, history, metrics, confusion, samples, predictions=predictions)


# ---------------------------------------------------------------------- killed mid-replacement
SIGKILL_POINTS = """
import os, signal, sys
import deepcls.store.runs as S

real_replace, real_exchange = os.replace, S._exchange

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def kill_after_exchange():  # SIGKILL right after the atomic swap, before the replaced run is deleted
    def exchange(a, b):
        assert real_exchange(a, b)
        die()
    S._exchange = exchange

def kill_after_replace(condition):  # no atomic swap: SIGKILL after the first rename to b with condition(b)
    def replace(a, b):
        real_replace(a, b)
        if condition(b):
            die()
    S._exchange = lambda a, b: False
    os.replace = replace
"""
"""The start of a ``python -c`` script that kills itself at a chosen point of replacing a stored run
(``die``, ``kill_after_exchange``, ``kill_after_replace``), to show the next start recovers."""


# ---------------------------------------------------------------------- reading a store back
def files_of(folder: Path) -> dict[str, bytes]:
    """Each file in ``folder`` (a run folder) by name, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def leftovers(root: Path) -> list[str]:
    """Temporaries that a killed save, checkpoint write or import leaves in the store at ``root``:
    anything hidden in the run and checkpoint folders, staging folders in the store itself."""
    folders = (root / "runs", root / ".cache" / "checkpoints")
    found = [p.name for folder in folders if folder.is_dir() for p in folder.iterdir() if p.name.startswith(".")]
    if root.is_dir():
        found += [p.name for p in root.iterdir() if p.name.startswith((".tmp", ".old", ".merge"))]
    return sorted(found)


# ---------------------------------------------------------------------- a family of one's own
class Toy(nn.Module):
    """One conv (optionally batch-normed) and a linear head: a family of one's own, registered by a test
    (a function of an importable module, so worker processes build it too)."""

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool) -> None:
        super().__init__()
        norm = nn.BatchNorm2d(4) if batch_norm else nn.Identity()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 4, 3), norm, nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def toy(name: str, *, in_channels: int, num_classes: int, batch_norm: bool = False) -> nn.Module:
    """The builder of the ``toy`` family."""
    return Toy(in_channels, num_classes, batch_norm)
