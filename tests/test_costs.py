"""What one more seed costs on the device it would train on (deepcls.analysis.costs), on constructed stores."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from helpers import grid_config

from deepcls.analysis import costs
from deepcls.analysis import plan as planner
from deepcls.analysis.costs import Cost, duration
from deepcls.analysis.ledger import Conclusion
from deepcls.config import RunConfig
from deepcls.store.runs import RunStore

PROFILE = "quick"
CPU = "cpu: x86_64 x1 threads"
H200 = "cuda: NVIDIA H200"


def store_run(root: Path, cfg: RunConfig, seconds: float, device: str) -> None:
    """A complete run of ``cfg`` that took ``seconds`` on ``device``, with its MACs as training records them."""
    epochs = range(1, cfg.epochs + 1)  # each at the same pace
    history = pd.DataFrame({"epoch": epochs, "train_acc": 50.0, "test_acc": 45.0, "seconds": seconds / cfg.epochs})
    metrics = {"status": "complete", "final_test_acc": 45.0, "highest_test_acc": 45.0, "highest_train_acc": 50.0}
    metrics |= {"wall_time_s": seconds, "device": device, "macs": costs.macs(cfg), "epochs_run": cfg.epochs}
    RunStore(root).save(cfg, history, metrics, None)


def work(cfg: RunConfig) -> float:
    return costs.macs(cfg) * (cfg.subset or 50_000) * cfg.epochs


def test_a_rows_own_runs_on_the_device_give_its_cost_and_other_rows_are_scaled_by_their_macs(tmp_path: Path) -> None:
    """The 3x3 stem timed only on an H200 is costed on the CPU from its MACs, at the CPU's measured rate."""
    base, stem = grid_config("resnet_cifar10", 3), grid_config("resnet_stem", 1)
    store_run(tmp_path, base, 100.0, CPU)
    store_run(tmp_path, grid_config("resnet_cifar10", 3, seed=1), 120.0, CPU)
    store_run(tmp_path, stem, 5.0, H200)
    found = costs.row_costs(PROFILE, RunStore(tmp_path), range(3), on="CPU x1")
    assert found[("resnet_cifar10", 3)] == Cost(110.0, "CPU x1")
    rate = 110.0 / work(base)  # both runs of the row have the same work: the median is their mean here
    assert found[("resnet_stem", 1)] == Cost(pytest.approx(rate * work(stem)), "CPU x1", estimated=True)
    assert found[("resnet_stem", 1)].seconds > 10 * 110.0  # the 3x3/s1 stem keeps 16x the activations
    assert found[("vgg_width", 1)].estimated and found[("vgg_width", 1)].seconds > 0  # never run: from its size
    assert "estimated from MACs" in found[("resnet_stem", 1)].text(2)


def test_a_run_costs_its_epochs_at_its_median_epochs_pace_not_its_wall_time(tmp_path: Path) -> None:
    """One epoch slowed by other load (a paused process, a CI run beside it) is not what one more run
    costs; a history without seconds (none stored so) falls back to the wall time."""
    base = grid_config("resnet_cifar10", 5)  # 5 epochs in this profile
    seconds = [100.0, 101.0, 99.0, 1000.0, 100.5]
    history = pd.DataFrame({"epoch": range(1, 6), "train_acc": 50.0, "test_acc": 45.0, "seconds": seconds})
    metrics = {"status": "complete", "final_test_acc": 45.0, "highest_test_acc": 45.0, "highest_train_acc": 50.0}
    metrics |= {"wall_time_s": sum(seconds), "device": CPU, "macs": costs.macs(base), "epochs_run": 5}
    RunStore(tmp_path).save(base, history, metrics, None)
    found = costs.row_costs(PROFILE, RunStore(tmp_path), range(3), on="CPU x1")
    assert found[("resnet_cifar10", 5)] == Cost(pytest.approx(5 * 100.5), "CPU x1")
    assert costs._typical_seconds(history.drop(columns="seconds"), 1300.0) == 1300.0


def test_a_device_with_no_runs_falls_back_to_the_rows_own_times(tmp_path: Path) -> None:
    store_run(tmp_path, grid_config("resnet_stem", 1), 5.0, H200)
    found = costs.row_costs(PROFILE, RunStore(tmp_path), range(3), on="H100")
    assert found[("resnet_stem", 1)] == Cost(5.0, "H200")
    assert math.isnan(found[("vgg_width", 1)].seconds) and found[("vgg_width", 1)].text() == "cost unknown (never run)"


def test_the_plan_puts_a_row_that_is_cheap_only_on_a_gpu_after_the_cpu_rows(tmp_path: Path) -> None:
    """Planned for the CPU, a conclusion whose runs took minutes on an H200 but hours here goes last."""
    stem = Conclusion("stem", "3x3 stem beats 7x7", "compare", ("resnet_stem", 1), ("resnet_cifar10", 3))
    se = Conclusion("se", "SE helps", "compare", ("resnet_se", 1), ("resnet_cifar10", 3))
    store_run(tmp_path, grid_config("resnet_stem", 1), 5.0, H200)
    store_run(tmp_path, grid_config("resnet_se", 1), 110.0, CPU)
    for seed in range(3):
        store_run(tmp_path, grid_config("resnet_cifar10", 3, seed), 100.0, CPU)
    on_cpu = planner.plan(PROFILE, RunStore(tmp_path), [stem, se], on="CPU x1")
    assert list(on_cpu["table"]) == ["resnet_se", "resnet_se", "resnet_stem", "resnet_stem"]
    assert list(on_cpu["estimated"]) == [False, False, True, True]
    on_gpu = planner.plan(PROFILE, RunStore(tmp_path), [stem, se], on="H200")  # the H200's rate, from the stem run
    assert list(on_gpu["estimated"]) == [True, True, False, False]  # the 7x7 rows cost less there: SE first


def test_the_cli_names_the_device_it_plans_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepcls.cli import main

    store_run(tmp_path, grid_config("resnet_se", 1), 110.0, CPU)
    args = ["ledger", "--profile", PROFILE, "--conclusions", "se_helps", "--plan", "--results-dir", str(tmp_path)]
    assert main([*args, "--jobs", "2", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "110 s on CPU x1" in out and "on CPU x1" in " ".join(out.split("\n\n")[-1].split())


def test_the_plan_on_the_cli_costs_runs_on_this_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deepcls.cli import main

    store_run(tmp_path, grid_config("resnet_se", 1), 110.0, CPU)
    args = ["ledger", "--profile", PROFILE, "--conclusions", "se_helps", "--plan", "--results-dir", str(tmp_path)]
    assert main([*args, "--wide"]) == 0
    out = capsys.readouterr().out
    assert f"{duration(110.0)} on CPU x1" in out and "probe" not in out
    assert main(args) == 0  # at the terminal's width: the cost, and where it was measured folded beneath
    out = capsys.readouterr().out
    assert duration(110.0) in out and "cost on CPU x1" in out and "probe" not in out


def test_the_mac_table_holds_every_grid_architecture_as_counted_now() -> None:
    """deepcls/models/macs.csv (read so that tables and the ledger need no torch) is what the models
    count today: rewrite it with `python -m deepcls.analysis.costs` after changing a model or a table."""
    shipped = pd.read_csv(costs.MAC_TABLE)
    counted = costs.mac_table()
    assert shipped["architecture"].tolist() == counted["architecture"].tolist()
    assert shipped["macs"].tolist() == counted["macs"].tolist()


def test_a_model_the_mac_table_lacks_is_counted() -> None:
    cfg = grid_config("vgg_mnist", 9).replace(classifier_width=64)
    assert costs._architecture(cfg) not in costs._counted()
    assert costs.macs(cfg) == costs.count_macs(cfg) > 0
