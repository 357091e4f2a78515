"""TensorBoard logs (deepcls.engine.tensorboard): the event files of a real training run hold its
history.csv epoch by epoch, each epoch once through resumes and reuse; off by default; bad values
and the missing extra are one error line; importing deepcls never imports tensorboard."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import SMALL_VGG7

import deepcls as dc
from deepcls.config import RunConfig
from deepcls.engine.fit import HISTORY_COLUMNS, fit
from deepcls.engine.tensorboard import EVENT_FILES, STEP, TAGS, EpochLog
from deepcls.errors import ConfigError
from deepcls.execution.runner import run_grid
from deepcls.store.runs import RunRecord, RunStore

SMOKE = RunConfig(**SMALL_VGG7, epochs=2, subset=256, test_subset=256, batch_size=64)  # the smoke profile's size
FLOAT32 = 1e-6  # event files hold scalars as float32


@pytest.fixture
def events() -> Any:
    """``events(folder) -> {tag: [ScalarEvent(wall_time, step, value), ...]}``, read back with
    TensorBoard's own reader (in CI, which installs the dev extra, a missing tensorboard fails
    rather than skips)."""
    if not os.environ.get("CI"):
        pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read(folder: Path) -> dict[str, list[Any]]:
        accumulator = EventAccumulator(str(folder))
        accumulator.Reload()
        return {tag: accumulator.Scalars(tag) for tag in accumulator.Tags()["scalars"]}

    return read


def train(config: RunConfig, root: Path, data_dir: Path, **options: Any) -> RunRecord:
    return fit(config, results_dir=str(root / "results"), data_dir=str(data_dir), progress=False, **options)


def assert_logs_history(scalars: dict[str, list[Any]], history: pd.DataFrame) -> None:
    """Every finite history column under its tag, one value per epoch, steps 1..epochs, equal to
    ``history`` within float32; nothing else."""
    columns = [c for c in history.columns if c != STEP and history[c].notna().all()]
    assert sorted(scalars) == sorted(TAGS.get(c, c) for c in columns)
    steps = list(range(1, len(history) + 1))
    assert history[STEP].tolist() == steps
    for column in columns:
        logged = scalars[TAGS.get(column, column)]
        assert [event.step for event in logged] == steps, column
        for event, expected in zip(logged, history[column]):
            assert math.isclose(event.value, expected, rel_tol=FLOAT32, abs_tol=FLOAT32), (column, event, expected)


def event_files(root: Path) -> list[Path]:
    return sorted(root.rglob(EVENT_FILES))


def test_a_trained_run_logs_its_history_csv(tmp_path: Path, data_dir: Path, events: Any) -> None:
    record = train(SMOKE, tmp_path, data_dir, tensorboard=tmp_path / "tb")
    stored = pd.read_csv(record.path / "history.csv")
    assert list(stored.columns) == HISTORY_COLUMNS and len(stored) == SMOKE.epochs
    assert set(HISTORY_COLUMNS) - {STEP} <= set(TAGS)  # every column has a tag of its group
    assert [p.parent for p in event_files(tmp_path / "tb")] == [tmp_path / "tb" / record.run_id]
    scalars = events(tmp_path / "tb" / record.run_id)
    assert_logs_history(scalars, stored)
    assert [e.value for e in scalars["accuracy/test"]] == pytest.approx(stored["test_acc"].tolist(), rel=FLOAT32)


def test_a_continued_run_and_a_reused_one_log_each_epoch_once(tmp_path: Path, data_dir: Path, events: Any) -> None:
    tb = tmp_path / "tb"
    longer = SMOKE.replace(epochs=3)
    assert longer.extendable
    train(SMOKE, tmp_path, data_dir)  # trained without a log: the longer run's first epochs are written from its state
    stale = EpochLog(tb, longer.run_id, [{STEP: 3, "test_acc": -1.0}])  # as a call killed after logging epoch 3
    stale.close()
    record = train(longer, tmp_path, data_dir, tensorboard=tb)
    assert record.metrics["extended_from"] == SMOKE.run_id  # only the third epoch was trained now
    assert len(event_files(tb / longer.run_id)) == 1
    assert_logs_history(events(tb / longer.run_id), record.history)

    reused = train(longer, tmp_path, data_dir, tensorboard=tb)  # stored: nothing trains, its history is written
    assert reused.reused and len(event_files(tb / longer.run_id)) == 1
    scalars = events(tb / longer.run_id)
    assert_logs_history(scalars, record.history)
    times = [e.wall_time for e in scalars["accuracy/test"]]  # counted back from when the run finished
    # a wall time near 1.8e9 s holds a double's 2.4e-7 s resolution: differences are good to about 1e-6 s
    spans = pytest.approx(record.history["seconds"][1:].sum(), abs=1e-5)
    assert times == sorted(times) and times[-1] - times[0] == spans


def test_a_grid_logs_the_runs_it_trains_and_those_it_finds_stored(
    tmp_path: Path, data_dir: Path, events: Any, stored_run: Any
) -> None:
    results, tb = tmp_path / "results", tmp_path / "tb"
    trained, found = SMOKE.replace(epochs=1), SMOKE.replace(seed=1)
    stored_run(results, found, test_acc=40.0, final_test_acc=45.0)  # its two epochs, accuracies only
    run_grid([trained, found], results_dir=results, data_dir=data_dir, progress=False, tensorboard=tb)
    store = RunStore(results)
    assert sorted(p.name for p in tb.iterdir()) == sorted([trained.run_id, found.run_id])
    for config in (trained, found):
        assert_logs_history(events(tb / config.run_id), store.load(config).history)
    assert [e.value for e in events(tb / found.run_id)["accuracy/test"]] == [40.0, 45.0]


def test_off_by_default_writes_no_event_file(tmp_path: Path, data_dir: Path) -> None:
    train(SMOKE.replace(epochs=1), tmp_path, data_dir)
    assert event_files(tmp_path) == []


def test_importing_deepcls_imports_no_tensorboard() -> None:
    code = (
        "import sys, deepcls, deepcls.engine.fit, deepcls.execution.runner, deepcls.engine.tensorboard\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorboard' or 'utils.tensorboard' in m))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, r"^dc\.fit: argument tensorboard must be str \| os\.PathLike \| None, got int 5$"),
        ("", r"^dc\.fit: tensorboard must name a folder, got ''$"),
        ("a\0b", r"^dc\.fit: tensorboard must name a folder, got 'a\\x00b'$"),
        ("FILE", r"^tensorboard folder .*/FILE is a file, not a folder$"),
        ("FILE/logs", r"^tensorboard folder .*/FILE/logs cannot be written \(Not a directory\)$"),
    ],
)
def test_a_bad_folder_is_one_error_line_before_anything_runs(tmp_path: Path, value: Any, message: str) -> None:
    (tmp_path / "FILE").write_text("not a folder")
    if isinstance(value, str) and value.startswith("FILE"):
        value = str(tmp_path / value)
    with pytest.raises(ConfigError, match=message) as raised:
        dc.fit(SMOKE, results_dir=str(tmp_path / "results"), tensorboard=value)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "results").exists()  # refused before the store was touched


def test_a_grid_refuses_a_bad_folder_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "FILE").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"^tensorboard folder .*/FILE is a file, not a folder$"):
        dc.run_grid([SMOKE], results_dir=str(tmp_path / "results"), tensorboard=str(tmp_path / "FILE"))
    with pytest.raises(ConfigError, match=r"^dc\.run_grid: argument tensorboard must be str \| os\.PathLike"):
        dc.run_grid([SMOKE], results_dir=str(tmp_path / "results"), tensorboard=5)
    assert not (tmp_path / "results").exists()


def test_the_missing_extra_is_one_line_saying_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an install without the extra imports
    with pytest.raises(ConfigError, match=r"^TensorBoard logs need the tensorboard package: ") as raised:
        dc.fit(SMOKE, results_dir=str(tmp_path / "results"), tensorboard=tmp_path / "tb")
    assert str(raised.value).endswith("pip install 'deepcls[tensorboard]'")
    assert not (tmp_path / "tb").exists() and not (tmp_path / "results").exists()
