"""A fuzz test of the store reader: random damage to any file of one run beside healthy ones gives
nothing but one-line warnings naming the run, and the results table and the ledger agree on n."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import grid_config

from deepcls.analysis import ledger
from deepcls.analysis.results import results_table
from deepcls.config import RunConfig
from deepcls.paper import grids as ex
from deepcls.paper.conclusions import Conclusion
from deepcls.store.runs import RunStore

PROFILE = "quick"
SE = Conclusion("se_fuzz", "SE blocks help", "compare", ("resnet_se", 1), ("resnet_se", 0), 0.15)
TRIALS = 30


def healthy_store(root: Path) -> None:
    """Three seeds a side of the SE comparison, each run with every file a run folder holds."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 10, 300).astype(np.uint8)
    for row in (0, 1):
        for seed in range(3):
            predicted = np.where(rng.random(300) < 0.8, true, (true + 1) % 10).astype(np.uint8)
            accuracy = round(100 * float(np.mean(predicted == true)), 2)
            confusion = np.zeros((10, 10), dtype=np.int64)
            np.add.at(confusion, (true, predicted), 1)
            history = pd.DataFrame(
                {"epoch": [1, 2], "train_acc": [50.0, 90.0], "test_acc": [40.0, accuracy], "seconds": [1.0, 1.0]}
            )
            metrics = {"status": "complete", "highest_train_acc": 90.0, "final_train_acc": 90.0}
            metrics |= {"highest_test_acc": max(40.0, accuracy), "final_test_acc": accuracy, "best_epoch": 2}
            metrics |= {"epochs_run": 2, "wall_time_s": 2.0, "device": "cpu: x86_64 x1 threads"}
            predictions = {"index": np.arange(300, dtype=np.int32), "true": true, "predicted": predicted}
            samples = {"correct_index": np.arange(3), "wrong_index": np.arange(3, 5)}
            RunStore(root).save(
                grid_config("resnet_se", row, seed), history, metrics, confusion, samples, predictions=predictions
            )


def damage(path: Path, rng: random.Random) -> str:
    """One random kind of damage to the file at ``path``; what it did."""
    data = path.read_bytes()
    kind = rng.choice(["truncate", "flip", "garbage", "empty", "delete", "append", "number"])
    if kind == "number" and path.suffix == ".json":
        values = json.loads(data)
        keys = [k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if keys:
            key = rng.choice(keys)
            values[key] = rng.choice([float("nan"), 1e9, -50.0, "x", None, 100.01, [1]])
            path.write_text(json.dumps(values))
            return f"{path.name}: {key} = {values[key]!r}"
        kind = "flip"
    if kind == "number":
        kind = "flip"
    if kind == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "flip":
        buffer = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(buffer))
    elif kind == "garbage":
        path.write_bytes(rng.randbytes(rng.randint(1, 200)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "delete":
        path.unlink()
    else:
        path.write_bytes(data + rng.randbytes(rng.randint(1, 50)))
    return f"{path.name}: {kind}"


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("healthy")
    healthy_store(root)
    return root


@pytest.mark.parametrize("trial", range(TRIALS))
def test_random_damage_to_one_run_is_one_warning_and_tables_and_ledger_agree_on_n(
    trial: int, healthy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(trial)
    root = tmp_path / "results"
    shutil.copytree(healthy, root)
    victim = grid_config("resnet_se", rng.choice([0, 1]), rng.randrange(3))
    files = sorted(p for p in (root / "runs" / victim.run_id).iterdir() if p.is_file())
    what = damage(rng.choice(files), rng)
    capsys.readouterr()

    store = RunStore(root)
    results = results_table(ex.grid("resnet_se", PROFILE), store).set_index("row")
    table = ledger.ledger(PROFILE, store, [SE])
    line = table[table["metric"] == "honest"].iloc[0]
    err = capsys.readouterr().err
    for warning in err.splitlines():  # nothing but one-line warnings, each naming the damaged run
        assert warning.startswith("deepcls: warning: ") and victim.run_id in warning, (what, err)
    seeds = {row: int(results.loc[row, "seeds_done"]) for row in (0, 1)}
    assert (line["n_a"], line["n_b"]) == (seeds[1], seeds[0]), what  # tables and ledger agree on n
    damaged = 3 - seeds[victim_row(victim)]
    assert damaged in (0, 1) and sum(seeds.values()) == 6 - damaged, what
    if damaged:
        assert len(err.splitlines()) >= 1, what  # a run left out is always named


def victim_row(victim: RunConfig) -> int:
    return 1 if victim.se else 0


def test_the_healthy_store_is_read_whole(healthy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = RunStore(healthy)
    line = ledger.ledger(PROFILE, store, [SE]).iloc[0]
    assert (line["n_a"], line["n_b"]) == (3, 3) and capsys.readouterr().err == ""
    assert results_table(ex.grid("resnet_se", PROFILE), store)["seeds_done"].tolist() == [3, 3]
