"""Grids of the report's tables: paper settings exactly, reduced profiles, claims and results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcls import experiments as ex
from deepcls.errors import ConfigError
from deepcls.reference import paper_table
from deepcls.store import RunStore
from deepcls.tables import agreement, format_results


def test_paper_profile_uses_exactly_the_reported_settings() -> None:
    for _, row in paper_table().query("table != 'resnet_init'").iterrows():
        config = ex.row_config(row, "paper")
        assert (config.dataset, config.model) == (row["dataset"], row["model"])
        assert (config.epochs, config.batch_size, config.optimizer, config.lr) == (
            row["epochs"], row["batch_size"], row["optimizer"], row["lr"])
        assert config.augment == ex.AUGMENT[row["augmentation"]]
        assert config.subset is None and config.test_subset is None and config.profile == "paper"
        assert config.schedule == "constant" and config.weight_decay == 0 and config.label_smoothing == 0


def test_variants_change_only_what_they_name() -> None:
    configs = {(row["table"], row["row"]): ex.row_config(row, "paper") for _, row in ex.table_rows().iterrows()}
    base = configs[("resnet_cifar10", 3)]
    assert configs[("resnet_se", 1)] == base.replace(se=True)
    assert configs[("resnet_stem", 1)] == base.replace(stem="cifar")
    assert configs[("resnet_se", 0)] == configs[("resnet_stem", 0)] == configs[("resnet_init", 1)] == base
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


def _results(test_a: list[float], test_b: list[float]) -> pd.DataFrame:
    """A two-line results table for the claim 'SE blocks help' (row 1 beats row 0)."""
    def line(row: int, tests: list[float], reported: float) -> dict:
        return {"table": "resnet_se", "row": row, "reported_test": reported,
                "test_mean": np.mean(tests) if tests else np.nan,
                "test_std": np.std(tests, ddof=1) if len(tests) > 1 else np.nan,
                "seeds_done": len(tests), "profile": "paper"}
    return pd.DataFrame([line(0, test_b, 81.39), line(1, test_a, 81.54)])


@pytest.mark.parametrize(("with_se", "without", "verdict"), [
    ([82.0], [81.0], "holds (one run each)"),
    ([80.0], [81.0], "does not hold (one run each)"),
    ([82.0, 82.2, 81.9], [81.0, 81.1, 80.9], "holds"),
    ([81.5, 80.5, 82.0], [81.0, 81.6, 80.4], "within noise"),
    ([81.0], [81.0], "tie"),
    ([], [81.0], "pending"),
])
def test_claim_verdicts(with_se: list[float], without: list[float], verdict: str) -> None:
    claims = ex.check_claims(_results(with_se, without))
    assert list(claims["claim"]) == ["SE blocks help"]
    assert claims["verdict"].iloc[0] == verdict
    assert claims["reported margin"].iloc[0] == pytest.approx(0.15)


def test_results_table_without_a_store_is_all_pending(tmp_path) -> None:
    results = ex.results_table(["vgg_mnist"], "paper", seeds=(0, 1), rows=[9, 10], run=False,
                               results_dir=str(tmp_path))
    assert list(results["row"]) == [9, 10] and (results["status"] == "pending").all()
    assert results["delta_test"].isna().all() and len(results["run_ids"].iloc[0].split(",")) == 2


def test_results_table_names_the_row_a_run_continues(tmp_path) -> None:
    grid = ex.table_grid("resnet_mnist", "quick")
    first, second = (grid.loc[grid["row"] == r, "config"].iloc[0] for r in (1, 2))
    assert second.epochs > first.epochs and second.replace(epochs=first.epochs) == first
    store = RunStore(tmp_path)
    history = pd.DataFrame({"epoch": [1], "train_acc": [50.0], "test_acc": [50.0], "seconds": [1.0]})
    for config, shorter in ((first, None), (second, first.run_id)):  # stored records, no training
        store.save(config, history, {"status": "complete", "highest_train_acc": 50.0, "highest_test_acc": 50.0,
                                     "final_test_acc": 50.0, "wall_time_s": 1.0, "device": "cpu",
                                     "extended_from": shorter})
    results = ex.results_table("resnet_mnist", "quick", rows=[1, 2], run=False, results_dir=str(tmp_path))
    assert list(results["continues"]) == ["", "row 1"]
    assert list(format_results(results)["status"]) == ["complete", "complete, continues row 1"]


def test_agreement_counts_run_rows_within_half_a_point_and_names_the_others() -> None:
    frame = pd.DataFrame({
        "table": ["t", "t", "t", "t"], "row": [1, 2, 3, 4],
        "status": ["complete", "complete", "pending", "complete"],
        "delta_test": [-0.03, 87.74, np.nan, -0.6],
    })
    assert agreement(frame) == ("1 of 3 run rows with a reported test accuracy are within 0.5 points of it "
                                "(median Δ -0.03); further: t 2 (+87.74), t 4 (-0.60).")
    assert agreement(frame.iloc[:1]).endswith("(median Δ -0.03).")
    assert agreement(frame.iloc[2:3]) == "No row with a reported test accuracy has been run yet."
    many = pd.DataFrame({"table": ["t"] * 8, "row": range(1, 9), "status": ["complete"] * 8,
                         "delta_test": [-1.0 - r for r in range(8)]})
    assert agreement(many).endswith("further: t 8 (-8.00), t 7 (-7.00), t 6 (-6.00), t 5 (-5.00), t 4 (-4.00)"
                                    " and 3 more.")


def test_differences_read_train_and_test_deltas_together() -> None:
    def line(row: int, reported: tuple[float, float], ours: tuple[float, float], profile: str = "paper") -> dict:
        return {"table": "t", "row": row, "setting": "s", "reported_train": reported[0], "reported_test": reported[1],
                "train_mean": ours[0], "test_mean": ours[1], "seeds_done": 1, "profile": profile}
    frame = pd.DataFrame([
        line(1, (99.0, 99.0), (98.8, 98.7)),            # within 0.5
        line(2, (11.24, 11.35), (99.0, 99.1)),          # the report collapsed, ours did not
        line(3, (90.0, 80.0), (12.0, 10.0)),            # ours collapsed
        line(4, (90.0, 80.0), (88.0, 78.0)),            # lower on both: the model/optimisation
        line(5, (90.0, 80.0), (95.0, 78.0)),            # fits better, tests lower: generalisation
        line(6, (90.0, 80.0), (92.0, 82.0)),            # higher on both
        line(7, (np.nan, 80.0), (92.0, 79.0)),          # no reported train accuracy
        line(8, (90.0, 80.0), (np.nan, np.nan)),        # pending: not listed
        line(9, (90.0, 80.0), (30.0, 30.0), "quick"),   # reduced budget
    ])
    diffs = ex.differences(frame).set_index("row")
    assert list(diffs.index) == [1, 2, 3, 4, 5, 6, 7, 9]
    assert diffs.loc[4, "Δ test"] == -2.0 and diffs.loc[4, "Δ train"] == -2.0
    reading = diffs["reading"]
    assert reading[1] == "agrees (within 0.5 points)"
    assert reading[2].startswith("the report's run is at chance") and reading[3].startswith("ours is at chance")
    assert reading[4].startswith("ours also fits the training data less")
    assert reading[5].startswith("ours fits the training data as well or better but tests lower")
    assert reading[6].startswith("ours also fits the training data better")
    assert reading[7].startswith("ours tests lower; no reported train accuracy")
    assert reading[9] == "not comparable: the quick profile's reduced budget"
