"""Grids of the report's tables: paper settings exactly, reduced profiles, claims and results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcls.analysis.findings import agreement, beats
from deepcls.analysis.results import results_table
from deepcls.errors import ConfigError
from deepcls.paper import grids as ex
from deepcls.paper.grids import paper_table
from deepcls.report.formatting import format_results
from deepcls.store.runs import RunStore


def test_paper_profile_uses_exactly_the_reported_settings() -> None:
    for _, row in paper_table().query("table != 'resnet_init'").iterrows():
        config = ex.row_config(row, "paper")
        assert (config.dataset, config.model) == (row["dataset"], row["model"])
        assert (config.epochs, config.batch_size, config.optimizer, config.lr) == (
            row["epochs"],
            row["batch_size"],
            row["optimizer"],
            row["lr"],
        )
        assert config.augment == ex.AUGMENT[row["augmentation"]]
        assert config.subset is None and config.test_subset is None and config.profile == "paper"
        assert config.schedule == "constant" and config.weight_decay == 0 and config.label_smoothing == 0


def test_variants_change_only_what_they_name() -> None:
    configs = {(row["table"], row["row"]): ex.row_config(row, "paper") for _, row in ex.table_rows().iterrows()}
    base = configs[("resnet_cifar10", 3)]
    assert configs[("resnet_se", 1)] == base.replace(se=True)
    assert configs[("resnet_stem", 1)] == base.replace(stem="cifar")
    assert configs[("resnet_se", 0)] == configs[("resnet_stem", 0)] == configs[("resnet_init", 1)] == base
    assert configs[("resnet_vflip", 0)] == base and configs[("resnet_vflip", 1)] == base.replace(
        augment=("flip", "vflip", "rotate")
    )
    assert {configs[("resnet_init", i)].init for i in (1, 2, 3)} == {"default", "xavier", "he"}
    assert configs[("vgg_mnist", 10)] == configs[("vgg_mnist", 9)].replace(first_kernel=5)
    assert base.stem == "imagenet" and configs[("vgg_mnist", 3)].width == "reduced"


@pytest.mark.parametrize("profile", ["smoke", "quick", "best"])
def test_reduced_and_best_profiles_keep_models_and_label_every_run(profile: str) -> None:
    for table in ex.ALL_TABLES:
        grid = ex.table_grid(table, profile, seeds=(0, 1))
        assert len(grid) == 2 * len(ex.table_rows(table))
        for _, line in grid.iterrows():
            config = line["config"]
            assert config.profile == profile and config.model == line["model"]
            assert config.seed == line["seed"]
            if profile != "best":
                assert config.epochs <= line["epochs"] and config.subset is not None
    quick = ex.row_config(paper_table("resnet_cifar10").iloc[4], "quick")  # 50 epochs in the report
    assert (quick.epochs, quick.subset, quick.test_subset) == (5, 3000, 2000)


def test_unknown_profile_and_table_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        ex.table_grid("vgg_mnist", "huge")
    with pytest.raises(ConfigError, match="unknown table 'vgg_imagenet'"):
        ex.table_rows("vgg_imagenet")


def test_results_table_without_a_store_is_all_pending(tmp_path) -> None:
    results = results_table(ex.grid(["vgg_mnist"], "paper", (0, 1), rows=[9, 10]), RunStore(str(tmp_path)))
    assert list(results["row"]) == [9, 10] and (results["status"] == "pending").all()
    assert results["delta_test"].isna().all() and list(results["seeds_asked"]) == [2, 2]
    assert list(results["run_ids"]) == [(), ()]


def test_results_table_pools_every_stored_seed_whatever_the_grid_asks(tmp_path, stored_run) -> None:
    configs = list(ex.grid("vgg_mnist", "quick", (0, 1, 2), rows=[1])["config"])
    for config, acc in zip(configs, (50.0, 52.0, 54.0)):
        stored_run(tmp_path, config, test_acc=acc)
    store = RunStore(str(tmp_path))
    line = results_table(ex.grid("vgg_mnist", "quick", (0,), rows=[1]), store).iloc[0]
    assert (line["seeds_done"], line["test_mean"], line["test_std"]) == (3, 52.0, 2.0)
    assert line["status"] == "complete" and len(line["run_ids"]) == 3
    only = results_table(ex.grid("vgg_mnist", "quick", (0,), rows=[1]), store, seeds=[1, 2]).iloc[0]
    assert (only["seeds_done"], only["test_mean"]) == (2, 53.0)
    assert format_results(results_table(ex.grid("vgg_mnist", "quick", rows=[1]), store))["seeds"].iloc[0] == 3


def test_a_failed_run_is_never_pooled_and_a_diverged_one_is_counted(tmp_path, stored_run) -> None:
    configs = list(ex.grid("vgg_mnist", "quick", (0, 1, 2, 3), rows=[1])["config"])
    stored_run(tmp_path, configs[0], test_acc=50.0)
    stored_run(tmp_path, configs[1], test_acc=60.0)
    stored_run(tmp_path, configs[2], test_acc=99.0, status="failed")
    stored_run(tmp_path, configs[3], test_acc=10.0, status="diverged")
    store = RunStore(str(tmp_path))
    line = results_table(ex.grid("vgg_mnist", "quick", (0, 1, 2), rows=[1]), store).iloc[0]
    assert (line["seeds_done"], line["diverged"], line["test_mean"]) == (2, 1, 55.0)
    assert set(line["run_ids"]) == {configs[0].run_id, configs[1].run_id}
    assert line["status"] == "complete (1 diverged, 1 seed to train)"
    failed_only = RunStore(str(tmp_path / "failed"))
    stored_run(tmp_path / "failed", configs[2], status="failed")
    pending = results_table(ex.grid("vgg_mnist", "quick", (2,), rows=[1]), failed_only).iloc[0]
    assert (pending["seeds_done"], pending["status"]) == (0, "pending") and np.isnan(pending["test_mean"])


def test_results_table_names_the_row_a_run_continues(tmp_path, stored_run) -> None:
    grid = ex.table_grid("resnet_mnist", "quick")
    first, second = (grid.loc[grid["row"] == r, "config"].iloc[0] for r in (1, 2))
    assert second.epochs > first.epochs and second.replace(epochs=first.epochs) == first
    stored_run(tmp_path, first)
    stored_run(tmp_path, second, extended_from=first.run_id)
    results = results_table(ex.grid("resnet_mnist", "quick", rows=[1, 2]), RunStore(str(tmp_path)))
    assert list(results["continues"]) == ["", "row 1"]
    assert list(format_results(results)["status"]) == ["complete", "complete, continues row 1"]


def test_results_name_the_numeric_classes_their_runs_trained_in(tmp_path, stored_run) -> None:
    grid = ex.table_grid("vgg_mnist", "quick", seeds=(0, 1))
    first, second = grid.loc[grid["row"] == 1, "config"]
    stored_run(tmp_path, first, device="cpu: x86_64 x1 threads")
    stored_run(tmp_path, second, device="cuda: NVIDIA H200")
    results = results_table(ex.grid("vgg_mnist", "quick", (0, 1), rows=[1, 2]), RunStore(str(tmp_path)))
    # runs stored without a numeric class show what they recorded: the CPU's bf16 arithmetic unknown
    assert list(format_results(results)["numeric class"]) == ["CPU ? x1 auto/H200 auto", "—"]


def test_a_continued_run_shared_by_another_table_is_named_by_its_own_tables_row(tmp_path, stored_run) -> None:
    grid = ex.table_grid("resnet_cifar10", "quick")
    first, second = (grid.loc[grid["row"] == r, "config"].iloc[0] for r in (3, 4))
    assert first in list(ex.table_grid("resnet_se", "quick")["config"])  # the SE table repeats row 3 as row 0
    stored_run(tmp_path, first)
    stored_run(tmp_path, second, extended_from=first.run_id)
    results = results_table(ex.grid(["resnet_cifar10", "resnet_se"], "quick", rows=[0, 3, 4]), RunStore(str(tmp_path)))
    assert results.loc[results["table"] == "resnet_cifar10", "continues"].tolist() == ["", "row 3"]


def test_agreement_counts_distinct_runs_within_half_a_point_and_names_the_others() -> None:
    frame = pd.DataFrame(
        {
            "table": ["t", "t", "t", "t"],
            "row": [1, 2, 3, 4],
            "status": ["complete", "complete", "pending", "complete"],
            "delta_test": [-0.03, 87.74, np.nan, -0.6],
        }
    )
    assert agreement(frame) == (
        "1 of 3 distinct runs with a reported test accuracy are within 0.5 points "
        "of it (median Δ -0.03); further: t 2 (+87.74), t 4 (-0.60)."
    )
    shared = frame.assign(
        table=["t", "u", "t", "t"],
        row=[1, 1, 3, 4],
        delta_test=[-0.03, -0.03, np.nan, -0.6],
        run_ids=["a", "a", "b", "c"],
    )  # row u 1 repeats run a: counted once
    assert agreement(shared) == (
        "1 of 2 distinct runs with a reported test accuracy are within 0.5 points "
        "of it (median Δ -0.32); further: t 4 (-0.60)."
    )
    assert agreement(frame.iloc[:1]).endswith("(median Δ -0.03).")
    assert agreement(frame.iloc[2:3]) == "No row with a reported test accuracy has been run yet."
    many = pd.DataFrame(
        {"table": ["t"] * 8, "row": range(1, 9), "status": ["complete"] * 8, "delta_test": [-1.0 - r for r in range(8)]}
    )
    assert agreement(many).endswith(
        "further: t 8 (-8.00), t 7 (-7.00), t 6 (-6.00), t 5 (-5.00), t 4 (-4.00) and 3 more."
    )


def test_beats_counts_reported_rows_per_distinct_run_and_the_final_epoch() -> None:
    frame = pd.DataFrame(
        {  # run a stands for rows t 1, t 2 and u 1 (u 1 repeats t 1's reported row)
            "table": ["t", "t", "u", "t", "t"],
            "row": [1, 2, 1, 3, 4],
            "status": ["complete", "complete", "complete", "complete", "pending"],
            "run_ids": ["a", "a", "a", "b", "c"],
            "reported_test": [81.0, 86.0, 81.0, 70.0, 75.0],
            "test_mean": [85.0, 85.0, 85.0, 72.0, np.nan],
            "final_test_mean": [84.0, 84.0, 84.0, 69.0, np.nan],
        }
    )
    frame["delta_test"] = frame["test_mean"] - frame["reported_test"]
    assert beats(frame).startswith(
        "2 of 3 reported rows beaten on test accuracy (median Δ +2.00), 1 on the "
        "final epoch alone, by 2 distinct run(s):"
    )
    assert beats(frame.iloc[4:]) == "No row with a reported test accuracy has been run yet."
