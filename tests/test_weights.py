"""Trained networks as artifacts (deepcls.store.weights, deepcls.engine.evaluate): every complete run
keeps its weights as safetensors, checked against metrics.json, and re-measures to its own number."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from helpers import SMALL_VGG7

import deepcls as dc
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.store.archive import merge_runs, pack_runs
from deepcls.store.runs import RunStore
from deepcls.store.weights import HASH_KEY, WEIGHTS_FILE, WeightsError, cache_path, sha256

TINY = RunConfig(**SMALL_VGG7, epochs=1, subset=500, test_subset=200, batch_size=50, threads=1)
PACKAGE = Path(dc.__file__).parent


def test_a_trained_run_loads_and_re_measures_exactly_its_stored_accuracy(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = dc.fit(TINY, results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    store = RunStore(tmp_path)
    cached = cache_path(tmp_path, TINY)
    assert cached.is_file() and not (record.path / WEIGHTS_FILE).exists()  # the committed store stays small
    assert record.metrics[HASH_KEY] == sha256(cached.read_bytes())

    model = dc.load_model(TINY.run_id, store=store)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    found = dc.evaluate_run(TINY, store, str(data_dir), "cpu")
    assert found.measured == record.metrics["final_test_acc"] and found.tolerance == 0 and found.agrees

    images, labels = next(dc.test_batches(TINY, store, str(data_dir), batch_size=8))
    with torch.no_grad():
        predicted = model(images).argmax(1)
    assert images.shape == (8, 1, 28, 28) and predicted.shape == labels.shape

    args = ["evaluate", TINY.run_id, "--results-dir", str(tmp_path), "--data-dir", str(data_dir), "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    stored = f"{record.metrics['final_test_acc']:.2f}"
    assert f"final test accuracy: stored {stored}, re-measured {stored}" in out
    assert "difference +0.00 points: agrees (bit-equal on the device it trained on)" in out

    damaged = bytearray(cached.read_bytes())
    damaged[-1] ^= 0xFF
    cached.write_bytes(bytes(damaged))
    with pytest.raises(WeightsError, match="SHA-256 differs from metrics.json"):
        dc.load_model(TINY, store=store)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepcls: error: ") and "is not run" in err and len(err.splitlines()) == 1

    cached.unlink()
    with pytest.raises(WeightsError, match="--force --keep-weights"):
        dc.load_model(TINY, store=store)


def test_kept_weights_travel_in_the_run_folder_and_an_extended_run_keeps_its_own(
    data_dir: Path, tmp_path: Path
) -> None:
    """``keep_weights`` puts them in the run folder; a 2-epoch run continued from the kept 1-epoch
    state (same trajectory) has weights of its own, and both re-measure exactly."""
    one = dc.fit(TINY, results_dir=str(tmp_path), data_dir=str(data_dir), progress=False, keep_weights=True)
    assert (one.path / WEIGHTS_FILE).is_file() and not cache_path(tmp_path, TINY).exists()
    two = dc.fit(TINY.replace(epochs=2), results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    assert two.metrics["extended_from"] == TINY.run_id and two.metrics[HASH_KEY] != one.metrics[HASH_KEY]
    store = RunStore(tmp_path)
    for record in (one, two):
        assert dc.evaluate_run(record.run_id, store, str(data_dir), "cpu").measured == record.metrics["final_test_acc"]

    pack_runs(store, [one.run_id], tmp_path / "runs.tar.gz")  # the weights travel with the run
    elsewhere = RunStore(tmp_path / "elsewhere")
    assert merge_runs(tmp_path / "runs.tar.gz", elsewhere) == ([one.run_id], [])
    assert dc.evaluate_run(one.run_id, elsewhere, str(data_dir), "cpu").agrees
    (one.path / WEIGHTS_FILE).write_bytes((one.path / WEIGHTS_FILE).read_bytes()[:-1] + b" ")
    pack_runs(store, [one.run_id], tmp_path / "swapped.tar.gz")
    with pytest.raises(StoreError, match="weights.safetensors is not the one its metrics.json names"):
        merge_runs(tmp_path / "swapped.tar.gz", RunStore(tmp_path / "third"))


def test_a_run_stored_without_weights_says_how_to_get_them(tmp_path: Path, stored_run) -> None:
    stored_run(tmp_path, TINY)  # a record without a weights hash, as runs stored before weights were kept
    with pytest.raises(WeightsError, match=rf"run {TINY.run_id} was stored without weights: retrain it with --force"):
        dc.load_model(TINY, store=RunStore(tmp_path))
    stored_run(tmp_path, TINY.replace(seed=1), status="failed")
    with pytest.raises(StoreError, match="is failed"):
        dc.load_model(TINY.replace(seed=1), store=RunStore(tmp_path))
    metrics = json.loads((RunStore(tmp_path).run_dir(TINY) / "metrics.json").read_text())
    assert HASH_KEY not in metrics


def test_nothing_is_ever_unpickled() -> None:
    """Every ``torch.load`` in the package passes ``weights_only=True``; weights never go through it."""
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                safe = any(k.arg == "weights_only" and ast.unparse(k.value) == "True" for k in node.keywords)
                calls.append((path.relative_to(PACKAGE).as_posix(), safe))
    assert calls and all(safe for _, safe in calls), calls
    assert "torch.load" not in (PACKAGE / "store" / "weights.py").read_text()
    assert "torch.load" not in (PACKAGE / "engine" / "evaluate.py").read_text()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda state: state.pop(sorted(state)[0]), "is missing"),
        (lambda state: state.update(extra=torch.zeros(1)), "extra is not the model's"),
        (lambda state: state.update({sorted(state)[0]: torch.zeros(3, 1)}), "has shape (3, 1), the model's"),
    ],
    ids=["missing", "extra", "shape"],
)
def test_weights_that_do_not_fit_name_the_tensor(edit, named: str, data_dir: Path, tmp_path: Path) -> None:
    """Weights whose hash checks out (written by another version, or by hand) but whose tensors are not
    the model's: one line naming the tensor, not torch's 'Error(s) in loading state_dict for VGG'."""
    from safetensors.torch import load, save

    dc.fit(TINY, results_dir=str(tmp_path), data_dir=str(data_dir), progress=False)
    cached = cache_path(tmp_path, TINY)
    state = load(cached.read_bytes())
    edit(state)
    data = save(state)
    cached.write_bytes(data)
    metrics_path = RunStore(tmp_path).run_dir(TINY) / "metrics.json"
    metrics_path.write_text(json.dumps(json.loads(metrics_path.read_text()) | {HASH_KEY: sha256(data)}))
    with pytest.raises(StoreError, match="weights do not fit its model: tensor ") as raised:
        dc.load_model(TINY.run_id, store=RunStore(tmp_path))
    assert named in str(raised.value) and "\n" not in str(raised.value)
