"""The conclusions ledger on constructed stores: every verdict, epoch conclusions on one trajectory."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import grid_config
from scipy import stats

from deepcls.analysis import ledger
from deepcls.analysis import plan as planner
from deepcls.analysis.ledger import CONCLUSIONS, Conclusion
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.execution import runner
from deepcls.paper import grids as ex
from deepcls.paper.conclusions import EXACT, REGISTRATIONS
from deepcls.report import formatting as tables
from deepcls.report import verdicts
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore
from deepcls.store.timings import StepTiming, load_timing, save_timing, step_config, timing_path

PROFILE = "quick"


CPU_X1 = "cpu: x86_64 x1 threads"


def store_run(
    root: Path,
    cfg: RunConfig,
    test_acc: list[float],
    device: str = "cpu: x86_64 x1 threads",
    epoch_seconds: float = 10.0,
) -> None:
    """A complete run whose per-epoch test accuracies are ``test_acc`` (train 5 points higher, at most 100),
    ``epoch_seconds`` each."""
    epochs = len(test_acc)
    history = pd.DataFrame(
        {
            "epoch": range(1, epochs + 1),
            "train_acc": [min(a + 5, 100.0) for a in test_acc],
            "test_acc": test_acc,
            "seconds": [epoch_seconds] * epochs,
        }
    )
    confusion = np.full((10, 10), 1) + np.diag([int(10 * test_acc[-1])] * 10)
    RunStore(root).save(
        cfg,
        history,
        {
            "status": "complete",
            "highest_train_acc": min(max(test_acc) + 5, 100.0),
            "highest_test_acc": max(test_acc),
            "final_test_acc": test_acc[-1],
            "wall_time_s": epoch_seconds * epochs,
            "device": device,
        },
        confusion,
    )


SE = Conclusion("se_test", "SE blocks help", "compare", ("resnet_se", 1), ("resnet_se", 0), 0.15)
SLOWER = next(c for c in CONCLUSIONS if c.id == "resnet34_slower_per_epoch")


def verdict(root: Path, conclusion: Conclusion = SE, metric: str = "honest") -> pd.Series:
    table = ledger.ledger(PROFILE, RunStore(root), [conclusion])
    return table[table["metric"] == metric].iloc[0]


@pytest.mark.parametrize(
    ("with_se", "without", "expected"),
    [
        ([42.0, 42.2, 41.9], [40.0, 40.1, 39.9], "holds"),
        ([38.0, 38.2, 37.9], [40.0, 40.1, 39.9], "reversed"),
        ([40.5, 39.5, 41.0], [40.0, 40.6, 39.4], "inconclusive"),
        ([41.3, 41.8, 42.3], [40.0, 40.5, 41.0], "suggestive"),
        ([40.0, 40.05, 39.95], [40.02, 39.98, 40.01], "equivalent"),
        ([42.0, 42.1], [40.0, 40.1, 39.9], "undecided"),
        ([42.0, 42.1, 10.0], [40.0, 40.1, 39.9], "not comparable"),
    ],
)
def test_each_verdict(tmp_path: Path, with_se: list[float], without: list[float], expected: str) -> None:
    for seed, acc in enumerate(with_se):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, acc])
    for seed, acc in enumerate(without):
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [30.0, acc])
    line = verdict(tmp_path)
    assert line["verdict"] == expected
    assert (line["n_a"], line["n_b"]) == (len(with_se), len(without))
    if expected == "undecided":
        assert "2 of 3 seeds" in line["reading"] and "resnet_se 1: 1 more, ≈ 20 s on CPU x1" in line["reading"]
    if expected == "not comparable":
        assert line["reading"].startswith("side a collapsed in 1 of 3")
        assert line["mean_a"] == pytest.approx(42.05)  # the runs that trained are compared
    if expected in ("holds", "reversed"):
        assert line["low"] < line["difference"] < line["high"]
        assert (line["low"] > 0) == (expected == "holds") and line["report_inside"] in (False,)
    if expected == "equivalent":  # the 90% interval inside the +-0.5 margin, the 95% one across 0
        assert -0.5 < line["tost_low"] < line["tost_high"] < 0.5 and line["low"] < 0 < line["high"]
        assert line["p_tost"] < 0.05 and line["margin"] == 0.5
    if expected == "inconclusive":
        assert "80% power at the margin: " in line["reading"] and line["seeds_power"] >= 3
    if expected == "suggestive":  # p < 0.05 at 3 seeds a side, but not the look's sequential level
        assert line["p_value"] < 0.05 < line["p_sequential"] == line["p_adjusted"]  # a family of one
        assert line["reading"].startswith("suggestive: holds before the correction")


def test_tost_agrees_with_a_hand_computation(tmp_path: Path) -> None:
    """a = 50, 51, 52 and b = 50.2, 51.2, 52.2: d = -0.2, both sds 1, se = sqrt(2/3) = 0.8165, Welch
    df = 4 and t(0.95, 4) = 2.131847, so the 90% interval is -0.2 +- 1.7406 = [-1.9406, 1.5406];
    against a margin of 2 the one-sided tests give t = 1.8 / 0.8165 = 2.2045 and -2.2 / 0.8165 =
    -2.6944, p = 0.0461 and 0.0272: equivalent before the correction (p = 0.0461), but not at the
    first look's sequential level (Pocock, 4 looks: nominal 0.018), so suggestive. Against a margin
    of 1, inconclusive."""
    a, b = [50.0, 51.0, 52.0], [50.2, 51.2, 52.2]
    for seed, (x, y) in enumerate(zip(a, b)):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, x])
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [30.0, y])
    wide = Conclusion("w", "SE blocks help", "compare", SE.a, SE.b, margin=2.0)
    line = verdict(tmp_path, wide)
    assert (line["tost_low"], line["tost_high"]) == pytest.approx((-1.9406, 1.5406), abs=1e-4)
    assert line["df"] == pytest.approx(4.0) and line["p_tost"] == pytest.approx(0.0461, abs=1e-4)
    assert line["verdict"] == "suggestive" and line["reading"].startswith("suggestive: equivalent before")
    assert line["p_sequential_tost"] > 0.05 and line["p_sequential_tost"] == line["p_adjusted"]
    assert verdict(tmp_path, Conclusion("n", "SE blocks help", "compare", SE.a, SE.b, margin=1.0))["verdict"] == (
        "inconclusive"
    )


def test_an_inconclusive_line_plans_its_seeds_as_statsmodels_does(tmp_path: Path) -> None:
    """Seeds per side for 80% power at the margin, from the line's spread: statsmodels' solve_power
    for Welch's two-sample t at effect margin / spread, rounded up."""
    from statsmodels.stats.power import TTestIndPower

    for seed, (with_se, without) in enumerate(zip([40.5, 39.5, 41.0], [40.0, 40.6, 39.4])):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, with_se])
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [30.0, without])
    line = verdict(tmp_path)
    spread = ((np.var([40.5, 39.5, 41.0], ddof=1) + np.var([40.0, 40.6, 39.4], ddof=1)) / 2) ** 0.5
    solved = TTestIndPower().solve_power(effect_size=0.5 / spread, alpha=0.05, power=0.8)
    assert line["verdict"] == "inconclusive" and line["seeds_power"] == int(np.ceil(solved))
    assert line["seeds_power_high"] > line["seeds_power"] and line["seeds_equivalence"] >= 2


def test_a_note_that_differs_between_the_metrics_names_each_and_says_the_shared_end_once() -> None:
    mixed = "runs on mixed devices (CPU x1/CPU x2)"
    assert tables._note(f"a; {mixed}", f"b; {mixed}") == f"final epoch: a; report's metric: b; {mixed}"
    assert tables._note(f"a; {mixed}", mixed) == f"final epoch: a; {mixed}"
    assert tables._note("a", "a") == "a" and tables._note("", "b") == "report's metric: b"


def test_a_long_note_is_cut_to_whole_clauses_in_the_table_and_kept_whole_in_the_ledger() -> None:
    note = "; ".join(["final epoch: to show the report's +0.07 takes 58 seeds per side"] * 3)
    short = tables.short_note(note)
    assert len(short) <= tables.NOTE_CHARS and short.endswith(" …") and short.startswith(note.split("; ")[0])
    assert tables.short_note("a; b") == "a; b"
    assert tables.short_note("x" * 30 + " " + "y" * 200, 40) == "x" * 30 + " …"


OTHER = Conclusion("other", "SGD beats lr 0.01", "compare", ("resnet_cifar10", 2), ("resnet_cifar10", 9))
UNTESTED = Conclusion("untested", "VGG-16 beats VGG-11", "compare", ("vgg_cifar10", 3), ("vgg_cifar10", 1))


def store_se_other_and_mnist_runs(root: Path) -> None:
    """Three seeds of SE (clearly ahead), of :data:`OTHER`'s sides (overlapping) and of an MNIST row."""
    for seed, (with_se, without) in enumerate(zip([42.0, 42.2, 41.9], [40.0, 40.1, 39.9])):
        store_run(root, grid_config("resnet_se", 1, seed), [30.0, with_se])
        store_run(root, grid_config("resnet_se", 0, seed), [30.0, without])
    for seed, (a, b) in enumerate(zip([40.5, 39.5, 41.0], [40.0, 40.6, 39.4])):
        store_run(root, grid_config("resnet_cifar10", 2, seed), [30.0, a])
        store_run(root, grid_config("resnet_cifar10", 9, seed), [30.0, b])
    for seed in range(3):
        store_run(root, grid_config("resnet_mnist", 3, seed), [99.0, 99.3 + seed / 100])


def test_the_family_is_every_claim_and_holm_names_verdicts_after_the_correction(tmp_path: Path) -> None:
    """Three claims (one never run, in the family with p = 1) and a sanity line outside it. Holm by
    hand: the smallest sequential p is multiplied by 3, the next by 2 (never below the one before),
    the last by 1; SE holds after the correction, the other claim stays inconclusive, and the sanity
    line keeps its uncorrected verdict with no adjusted p."""
    other, untested = OTHER, UNTESTED
    sanity = Conclusion("s", "MNIST is easier", "compare", ("resnet_mnist", 3), ("resnet_cifar10", 2), role="sanity")
    store_se_other_and_mnist_runs(tmp_path)
    table = ledger.ledger(PROFILE, RunStore(tmp_path), [SE, other, untested, sanity])
    honest = table[table["metric"] == "honest"].set_index("id")
    se, rest, never, check = (honest.loc[i] for i in ("se_test", "other", "untested", "s"))
    family = [min(se["p_sequential"], se["p_sequential_tost"]), min(rest["p_sequential"], rest["p_sequential_tost"])]
    assert family[0] < family[1] < 1
    assert se["p_adjusted"] == pytest.approx(3 * family[0])
    assert rest["p_adjusted"] == pytest.approx(max(3 * family[0], 2 * family[1], 0) if 2 * family[1] < 1 else 1)
    assert never["p_adjusted"] == 1.0 and never["verdict"] == "undecided"
    assert (se["verdict"], rest["verdict"]) == ("holds", "inconclusive") and set(honest["family"].dropna()) == {3}
    assert check["verdict"] == "holds" and check["p_adjusted"] != check["p_adjusted"]  # NaN: not in the family
    said = verdicts.summary(table)
    assert said.startswith("Of the report's 3 claims, on the final epoch after Holm's correction over all 3: 1 holds")
    words = verdicts.summary_table(table).set_index("verdict")
    assert (words.loc["holds", "claims"], words.loc["holds", "sanity checks"], words.loc["undecided", "claims"]) == (
        1, 1, 1,
    )  # fmt: skip
    assert "extensions" not in words and "Extensions" not in said  # none in this ledger


def test_extension_lines_are_a_family_of_their_own_never_among_the_reports_claims(tmp_path: Path) -> None:
    """SE as a user's own ``extension`` line beside two claims: Holm runs over the claims alone (a
    family of 2) and, apart, over the extension alone (a family of 1, its p unadjusted), so the
    extension neither joins the report's count of claims nor moves their adjusted p-values."""
    store_se_other_and_mnist_runs(tmp_path)
    mine = dataclasses.replace(SE, id="mine", role="extension")
    table = ledger.ledger(PROFILE, RunStore(tmp_path), [mine, OTHER, UNTESTED])
    alone = ledger.ledger(PROFILE, RunStore(tmp_path), [OTHER, UNTESTED])
    honest = table[table["metric"] == "honest"].set_index("id")
    ext, rest = honest.loc["mine"], honest.loc["other"]
    assert ext["role"] == "extension" and ext["family"] == 1 and set(honest.drop("mine")["family"]) == {2}
    assert ext["p_adjusted"] == pytest.approx(min(ext["p_sequential"], ext["p_sequential_tost"]))
    assert ext["verdict"] == "holds"
    assert rest["p_adjusted"] == alone.set_index(["id", "metric"]).loc[("other", "honest"), "p_adjusted"]
    said = verdicts.summary(table)
    assert said.startswith("Of the report's 2 claims, on the final epoch after Holm's correction over all 2: 0 holds")
    assert said.endswith("Extensions (1 line added to the report, Holm over them alone): 1 holds.")
    words = verdicts.summary_table(table).set_index("verdict")
    assert words.loc["holds", "extensions"] == 1 and words.loc["holds", "claims"] == 0
    assert verdicts.summary_table(alone).columns.tolist() == ["verdict", "claims", "sanity checks", "what it means"]


def test_every_comparison_has_a_margin_and_every_line_a_role() -> None:
    assert all(c.role in ("claim", "sanity") for c in CONCLUSIONS)
    assert all(c.margin > 0 for c in CONCLUSIONS if c.kind != "collapse" and c.quantity not in EXACT)
    registered = REGISTRATIONS  # every line dated, with its margin and definition, and post-hoc today
    assert set(registered) == {c.id for c in CONCLUSIONS} and all(r.post_hoc for r in registered.values())
    with pytest.raises(ValueError, match="margin > 0"):
        Conclusion("x", "x", "compare", SE.a, SE.b, margin=0.0)


def test_a_smoothly_rising_curve_does_not_fluctuate(tmp_path: Path) -> None:
    """The swing line reads the second half of training: a curve that rises 1.3 points an epoch
    early and flattens smoothly gives "does not hold", where the mean over all epochs would pass."""
    swing = next(c for c in CONCLUSIONS if c.id == "test_accuracy_fluctuates")
    rising = [80 - 25 * 0.8**k for k in range(20)]
    assert sum(abs(b - a) for a, b in zip(rising, rising[1:])) / 19 > 0.5  # the old measure's trap
    for seed in range(3):
        grid = ex.table_grid(swing.a[0], "paper", (seed,))  # 20 epochs, as the report trained
        store_run(tmp_path, grid.loc[grid["row"] == swing.a[1], "config"].iloc[0], [x + seed / 100 for x in rising])
    table = ledger.ledger("paper", RunStore(tmp_path), [swing])
    line = table[table["metric"] == "honest"].iloc[0]
    assert line["verdict"] == "reversed" and line["difference"] < 0  # well under its 0.5 threshold


def test_a_failed_and_a_diverged_run_beside_complete_ones(tmp_path: Path, stored_run) -> None:
    """Neither is read as a seed: the line counts the three complete runs a side, names the diverged
    one, and the plan retrains the failed seed."""
    for seed, (with_se, without) in enumerate(zip([42.0, 42.2, 41.9], [40.0, 40.1, 39.9])):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, with_se])
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [30.0, without])
    stored_run(tmp_path, grid_config("resnet_se", 1, 3), status="failed")
    stored_run(tmp_path, grid_config("resnet_se", 0, 3), test_acc=10.0, status="diverged")
    line = verdict(tmp_path)
    assert (line["n_a"], line["n_b"], line["verdict"]) == (3, 3, "holds")
    assert line["diverged_b"] == 1 and "side b 1 diverged (not read)" in line["reading"]
    failed = Conclusion("f", "SE blocks help", "compare", SE.a, SE.b)
    store = RunStore(tmp_path / "one")
    stored_run(tmp_path / "one", grid_config("resnet_se", 1, 0), status="failed")
    plan = planner.plan(PROFILE, store, [failed])
    assert grid_config("resnet_se", 1, 0) in list(plan["config"])  # the failed seed is trained again


def test_a_run_with_an_empty_history_is_damaged_and_left_out_not_a_crash(tmp_path: Path) -> None:
    for seed, (with_se, without) in enumerate(zip([42.0, 42.2, 41.9], [40.0, 40.1, 39.9])):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, with_se])
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [30.0, without])
    store = RunStore(tmp_path)
    broken = store.run_dir(grid_config("resnet_se", 1, 2))
    (broken / "history.csv").write_text("epoch,train_acc,test_acc,seconds\n")
    table = ledger.ledger(PROFILE, RunStore(tmp_path), [SE])
    line = table[table["metric"] == "honest"].iloc[0]  # the store left it out (one warning): n = 2 on that side
    assert (line["n_a"], line["n_b"]) == (2, 3) and line["verdict"] == "undecided"
    assert verdicts.summary(table) and tables.format_ledger(table) is not None


def test_an_epoch_conclusion_reads_both_lengths_from_the_longer_runs_own_trajectory(tmp_path: Path) -> None:
    """Quick profile: Table 2 row 4 (3 epochs) continues row 3 (2 epochs). Its 2-epoch prefix peaks
    above its final epoch; the stored 2-epoch runs (which would win on a max) are never read."""
    epochs = Conclusion("e", "3 epochs beat 2", "epochs", ("resnet_cifar10", 4), ("resnet_cifar10", 3), 1.98)
    for seed, bump in enumerate((0.0, 0.3, -0.2)):
        store_run(tmp_path, grid_config("resnet_cifar10", 4, seed), [80.0 + bump, 70.0, 75.0 + bump])
        store_run(tmp_path, grid_config("resnet_cifar10", 3, seed), [99.0, 99.0])  # not this trajectory
    honest = verdict(tmp_path, epochs, "honest")
    bump = (0.0 + 0.3 - 0.2) / 3
    assert honest["verdict"] == "holds" and honest["difference"] == pytest.approx(5 + bump)  # epoch 3 vs epoch 2
    report = verdict(tmp_path, epochs, "report")  # last-3 means: (80+70+75)/3 vs (80+70)/2, never max 80 vs 75
    assert report["difference"] == pytest.approx(bump / 6) and report["verdict"] == "equivalent"


def test_the_runs_behind_a_line_give_its_means_seed_by_seed(tmp_path: Path) -> None:
    """deepcls ledger --evidence: each run's value under each metric; a collapsed run is named and left
    out of the difference; an epoch line reads side b from side a's runs at the shorter length."""
    for seed, (with_se, without) in enumerate([(42.0, 40.0), (42.2, 40.1), (41.9, 10.0)]):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, with_se])
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [45.0, without])
    epochs = Conclusion("e", "3 epochs beat 2", "epochs", ("resnet_cifar10", 4), ("resnet_cifar10", 3))
    store_run(tmp_path, grid_config("resnet_cifar10", 4, 0), [80.0, 70.0, 75.0])
    store = RunStore(tmp_path)
    runs = ledger.evidence(PROFILE, store, [SE, epochs])
    se = runs[runs["id"] == "se_test"]
    assert list(se["side"]) == ["a"] * 3 + ["b"] * 3 and list(se["seed"]) == [0, 1, 2, 0, 1, 2]
    assert list(se["collapsed"]) == [False] * 5 + [True] and se["honest"].iloc[-1] != se["honest"].iloc[-1]
    assert list(se["report"].iloc[:5]) == [42.0, 42.2, 41.9, 45.0, 45.0]  # highest over epochs
    line = verdict(tmp_path)
    assert line["mean_a"] == pytest.approx(se["honest"].iloc[:3].mean())
    assert line["mean_b"] == pytest.approx(se["honest"].iloc[3:].mean())  # the collapsed seed left out
    assert set(se["run_id"]) == {grid_config(t, r, s).run_id for t, r in (SE.a, SE.b) for s in range(3)}
    e = runs[runs["id"] == "e"]
    assert list(e["side"]) == ["a", "b"] and list(e["epochs"]) == [3, 2] and e["run_id"].nunique() == 1
    assert list(e["honest"]) == [75.0, 70.0] and list(e["report"]) == [75.0, 75.0]  # last-3 means
    shown = tables.format_evidence(runs)
    assert shown["final epoch"].iloc[5] == "collapsed" and shown["numeric class"].iloc[0] == "CPU ? x1 auto"


def store_predicted(root: Path, cfg: RunConfig, true: np.ndarray, predicted: np.ndarray) -> float:
    """A complete run whose final predictions over the test images are ``predicted``; its accuracy."""
    accuracy = 100 * float(np.mean(true == predicted))
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    history = pd.DataFrame({"epoch": [1], "train_acc": [accuracy], "test_acc": [accuracy], "seconds": [10.0]})
    metrics = {"status": "complete", "highest_train_acc": accuracy, "highest_test_acc": accuracy}
    metrics |= {"final_test_acc": accuracy, "wall_time_s": 10.0, "device": CPU_X1}
    predictions = {"index": np.arange(len(true), dtype=np.int32), "true": true, "predicted": predicted}
    RunStore(root).save(cfg, history, metrics, confusion, predictions=predictions)
    return accuracy


def test_runs_with_per_image_predictions_get_an_interval_over_seeds_and_test_images(tmp_path: Path) -> None:
    """Three seeds a side that kept their predictions over 2,000 shared test images: the line adds a
    two-way bootstrap interval (deepcls.analysis.statistics.two_way_bootstrap) around the difference,
    wider than the seeds alone give; runs without predictions say the images are not counted."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 10, 2000).astype(np.uint8)
    for seed in range(3):
        for row, right in ((1, 0.82), (0, 0.80)):
            hit = rng.random(2000) < right
            store_predicted(tmp_path, grid_config("resnet_se", row, seed), true, np.where(hit, true, (true + 1) % 10))
    line = verdict(tmp_path)
    assert line["image_noise"] == "counted" and line["boot_low"] < line["difference"] < line["boot_high"]
    assert line["boot_high"] - line["boot_low"] > 1.0  # binomial noise of 2,000 images: ±~1.2 points
    for seed in range(3):
        store_run(tmp_path / "old", grid_config("resnet_se", 1, seed), [30.0, 42.0 + seed / 10])
        store_run(tmp_path / "old", grid_config("resnet_se", 0, seed), [30.0, 40.0 + seed / 10])
    old = verdict(tmp_path / "old")
    assert old["image_noise"] == "not counted" and pd.isna(old.get("boot_low"))


def test_a_collapse_rate_has_an_exact_interval_and_needs_six_seeds(tmp_path: Path) -> None:
    """5 of 5 could not decide (two-sided exact p = 0.0625), so a rate waits for 6 seeds."""
    fails = next(c for c in CONCLUSIONS if c.id == "vgg16_fails_mnist")
    for seed, acc in enumerate([11.35, 11.35, 99.0, 11.35, 99.1]):
        store_run(tmp_path, grid_config("vgg_mnist", 3, seed), [acc, acc])
    assert verdict(tmp_path, fails)["verdict"] == "undecided"
    store_run(tmp_path, grid_config("vgg_mnist", 3, 5), [99.1, 99.1])
    line = verdict(tmp_path, fails)
    assert line["verdict"] == "inconclusive" and line["reading"].startswith("collapsed in 3 of 6 (exact 95%")
    assert (line["low"], line["high"]) == pytest.approx((0.1181, 0.8819), abs=1e-4)  # Clopper-Pearson 3/6


FAILS = Conclusion("fails", "VGG-16 fails on MNIST", "collapse", ("vgg_mnist", 3), margin=None)


@pytest.mark.parametrize(
    ("collapses", "seeds", "expected"),
    [(5, 5, "undecided"), (3, 6, "inconclusive"), (6, 6, "suggestive"), (0, 6, "suggestive"), (10, 10, "holds")],
)
def test_a_collapse_rate_decides_only_after_its_sequential_correction(
    tmp_path: Path, collapses: int, seeds: int, expected: str
) -> None:
    """6 of 6 has exact p = 2/64 = 0.031: it fails in most seeds before the correction, but not at
    the second look's sequential level (0.018); 10 of 10 (p = 0.002) does (a family of one)."""
    for seed in range(seeds):
        acc = 11.35 if seed < collapses else 99.0
        store_run(tmp_path, grid_config("vgg_mnist", 3, seed), [acc, acc])
    line = verdict(tmp_path, FAILS)
    assert line["verdict"] == expected
    if seeds == 6 and collapses in (0, 6):
        assert line["p_value"] == pytest.approx(2 / 64)
        assert line["reading"].startswith(f"suggestive: {'holds' if collapses else 'reversed'} before the correction")


def test_mixed_devices_are_named(tmp_path: Path) -> None:
    for seed in range(3):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, 42.0 + seed / 10])
        store_run(
            tmp_path, grid_config("resnet_se", 0, seed), [30.0, 40.0 + seed / 10], device="cpu: x86_64 x2 threads"
        )
    assert "runs of mixed numeric classes (CPU ? x1 auto/CPU ? x2 auto)" in verdict(tmp_path)["reading"]


def test_an_epoch_conclusion_names_only_the_devices_of_the_runs_it_reads(tmp_path: Path) -> None:
    """Both lengths come from the longer runs: the shorter runs' device is not part of the line."""
    epochs = Conclusion("e", "3 epochs beat 2", "epochs", ("resnet_cifar10", 4), ("resnet_cifar10", 3))
    for seed in range(3):
        store_run(tmp_path, grid_config("resnet_cifar10", 4, seed), [70.0, 75.0, 76.0 + seed])
        store_run(tmp_path, grid_config("resnet_cifar10", 3, seed), [70.0, 75.0], device="cpu: x86_64 x2 threads")
    line = verdict(tmp_path, epochs)
    assert line["devices"] == "cpu: x86_64 x1 threads" and "mixed" not in line["reading"]


def test_every_conclusion_has_a_line_per_metric_and_real_sides(tmp_path: Path) -> None:
    ids = [c.id for c in CONCLUSIONS]
    assert len(ids) == len(set(ids))
    rows = set(zip(ex.table_rows()["table"], ex.table_rows()["row"]))
    assert all(s in rows for c in CONCLUSIONS for s in (c.a, c.b) if s is not None)
    for profile in ("quick", "paper"):
        table = ledger.ledger(profile, RunStore(tmp_path))
        assert sorted(zip(table["id"], table["metric"])) == sorted((i, m) for i in ids for m in ledger.METRICS)
        assert set(table["verdict"]) == {"undecided"}
    shown = tables.format_ledger(table)
    assert list(shown["id"]) == ids and "cost unknown (never run)" in shown["note"].iloc[0]


@pytest.mark.parametrize(("margin", "shown"), [(2.0, "+2.00 (inside)"), (5.0, "+5.00 (outside)")])
def test_the_table_says_whether_the_reports_margin_is_inside_our_interval(
    tmp_path: Path, margin: float, shown: str
) -> None:
    for seed, (with_se, without) in enumerate([(42.0, 40.0), (42.2, 40.1), (41.9, 39.9)]):
        store_run(tmp_path, grid_config("resnet_se", 1, seed), [30.0, with_se])
        store_run(tmp_path, grid_config("resnet_se", 0, seed), [30.0, without])
    conclusion = Conclusion("se_test", "SE blocks help", "compare", ("resnet_se", 1), ("resnet_se", 0), margin)
    line = tables.format_ledger(ledger.ledger(PROFILE, RunStore(tmp_path), [conclusion])).iloc[0]
    assert line["report (inside one run of ours?)"] == shown


def store_timing(root: Path, a: list[float], b: list[float], **changes: object) -> StepTiming:
    """A paired benchmark of the seconds line's sides (seconds per epoch, one pair per repeat)."""
    sides = [ledger.side_config(side, PROFILE) for side in SLOWER.sides]
    timing = StepTiming(
        conclusion=SLOWER.id,
        profile=PROFILE,
        configs=(step_config(sides[0]), step_config(sides[1])),
        device="CPU x1",
        steps=(94, 94),
        seconds_a=tuple(a),
        seconds_b=tuple(b),
        measured_at="2026-12-02T00:00:00+00:00",
        torch="2.14.1",
    )
    timing = dataclasses.replace(timing, **changes)
    save_timing(RunStore(root), timing)
    return timing


def test_seconds_per_epoch_come_from_a_paired_benchmark_not_from_runs(tmp_path: Path) -> None:
    """Runs of both sides timed on different machines say nothing: the line reads the benchmark, a
    paired t over its repeats stated as a ratio (paired t on the log ratios), and the plan asks for
    no runs. ResNet-34 is bound to be slower: a sanity line, outside the family."""
    for seed in range(3):  # wall times that would say the opposite
        store_run(tmp_path, grid_config("resnet_cifar10", 6, seed), [30.0, 40.0])
        store_run(tmp_path, grid_config("resnet_cifar10", 3, seed), [30.0, 40.0])
    line = verdict(tmp_path, SLOWER)
    assert (line["verdict"], line["n_a"]) == ("undecided", 0)
    assert "not measured; measure it: deepcls ledger --time --profile quick" in line["reading"]
    assert planner.plan(PROFILE, RunStore(tmp_path), [SLOWER]).empty
    a, b = [20.0, 20.4, 19.8, 20.2, 20.1], [10.0, 10.3, 9.9, 10.1, 10.2]
    store_timing(tmp_path, a, b)
    line = verdict(tmp_path, SLOWER)
    expected = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (line["verdict"], line["n_a"], line["n_b"]) == ("holds", 5, 5)
    assert (line["low"], line["high"]) == pytest.approx((expected.low, expected.high))
    assert line["margin"] == pytest.approx(0.05 * np.mean(b))  # 5% of side b's seconds
    ratio = stats.ttest_1samp(np.log(np.divide(a, b)), 0).confidence_interval(0.95)
    assert (line["ratio_low"], line["ratio_high"]) == pytest.approx((np.exp(ratio.low), np.exp(ratio.high)))
    assert line["role"] == "sanity" and line["p_adjusted"] != line["p_adjusted"]
    assert line["reading"].startswith(f"side a takes {line['ratio']:.2f}x [")
    assert "paired benchmark on CPU x1, 2026-12-02, 5 alternating repeats" in line["reading"]
    evidence = ledger.evidence(PROFILE, RunStore(tmp_path), [SLOWER])
    assert list(evidence["side"]) == ["a"] * 5 + ["b"] * 5 and list(evidence["honest"]) == a + b


def test_a_timing_within_the_margin_is_equivalent_and_a_stale_or_damaged_one_is_not_read(tmp_path: Path) -> None:
    store_timing(tmp_path, [10.0, 10.1, 9.9, 10.05], [10.02, 10.08, 9.95, 10.0])
    assert verdict(tmp_path, SLOWER)["verdict"] == "equivalent"
    other = ledger.side_config(SLOWER.b, PROFILE)
    store_timing(tmp_path, [20.0] * 3, [10.0] * 3, configs=(step_config(other), step_config(other)))
    line = verdict(tmp_path, SLOWER)
    assert line["verdict"] == "undecided" and "the stored timing measured other configs" in line["reading"]
    timing_path(RunStore(tmp_path), PROFILE, SLOWER.id).write_text('{"conclusion": "resnet34_slower_per_epoch"}')
    line = verdict(tmp_path, SLOWER)
    assert line["verdict"] == "undecided" and "not a timing (KeyError" in line["reading"]
    assert ledger.evidence(PROFILE, RunStore(tmp_path), [SLOWER]).empty


def test_a_timing_records_the_precision_it_ran_in_and_fits_configs_of_precision_auto(tmp_path: Path) -> None:
    """Grids ask for precision auto; a benchmark resolves it on its machine and records what it timed
    (bf16 or fp32). That timing answers auto configs, and an explicit other precision is not its."""
    sides = [ledger.side_config(side, PROFILE) for side in SLOWER.sides]
    assert {s.precision for s in sides} == {"auto"}
    timing = store_timing(
        tmp_path, [20.0, 20.4, 19.8], [10.0, 10.3, 9.9], configs=tuple(step_config(s, "bf16") for s in sides)
    )
    assert timing.configs[0]["precision"] == "bf16" and timing.matches(*sides)
    assert not timing.matches(*(s.replace(precision="fp32") for s in sides))
    assert verdict(tmp_path, SLOWER)["verdict"] == "holds"


def test_the_benchmark_times_both_models_in_one_process(data_dir: Path, tmp_path: Path) -> None:
    """``deepcls ledger --time`` stores a measurement the ledger then reads: ResNet-34's steps take
    longer than ResNet-18's (about twice the multiply-accumulates)."""
    args = ["ledger", "--profile", PROFILE, "--conclusions", SLOWER.id, "--results-dir", str(tmp_path)]
    threads = torch.get_num_threads()
    assert main([*args, "--time", "--repeats", "3", "--threads", "1", "--data-dir", str(data_dir)]) == 0
    assert torch.get_num_threads() == threads  # the caller's later training rounds as before
    timing = load_timing(RunStore(tmp_path), PROFILE, SLOWER.id)
    assert timing is not None and timing.repeats == 3 and timing.device == "CPU x1"
    assert timing.steps == (94, 94)  # the quick profile's 3,000 images in batches of 32
    line = verdict(tmp_path, SLOWER)  # read from the stored measurement, not the runs
    ratio = float(np.exp(np.mean(np.log(np.divide(timing.seconds_a, timing.seconds_b)))))
    assert line["n_a"] == 3 and line["ratio"] == pytest.approx(ratio) and ratio > 1  # twice the MACs
    # Three repeats on a shared machine may leave the interval wide: the verdict's rule is tested above
    # on fixed numbers (test_seconds_per_epoch_come_from_a_paired_benchmark_not_from_runs).
    assert line["verdict"] in ("holds", "inconclusive")


def test_the_plan_decides_the_cheapest_conclusions_first_and_trains_a_shared_run_once(tmp_path: Path) -> None:
    """Seed 0 of each row stored (its wall time is the cost of one more seed); never-run rows last."""
    cheap = Conclusion("cheap", "SE helps", "compare", ("resnet_se", 1), ("resnet_se", 0))
    shared = Conclusion("shared", "SE cuts confusions", "quantity", ("resnet_se", 0), ("resnet_se", 1), quantity="gap")
    dear = Conclusion("dear", "batch 32 beats 128", "compare", ("resnet_cifar10", 3), ("resnet_cifar10", 8))
    never = Conclusion("never", "VGG-16 collapses", "collapse", ("vgg_mnist", 3))
    for table, row, seconds in (("resnet_se", 1, 10.0), ("resnet_se", 0, 20.0), ("resnet_cifar10", 3, 500.0)):
        cfg = grid_config(table, row, 0)
        store_run(tmp_path, cfg, [30.0] * cfg.epochs, epoch_seconds=seconds / cfg.epochs)
    for seed in (0, 2):  # seed 1 is the one missing below 3
        cfg = grid_config("resnet_cifar10", 8, seed)
        store_run(tmp_path, cfg, [30.0] * cfg.epochs, epoch_seconds=50.0 / cfg.epochs)
    plan = planner.plan(PROFILE, RunStore(tmp_path), [never, dear, cheap, shared])  # a tie keeps this order
    assert [(t, r, s) for t, r, s in zip(plan["table"], plan["row"], plan["seed"])] == [
        ("resnet_se", 1, 1), ("resnet_se", 0, 1), ("resnet_se", 1, 2), ("resnet_se", 0, 2),
        ("resnet_cifar10", 3, 1), ("resnet_cifar10", 3, 2), ("resnet_cifar10", 8, 1),
        *[("vgg_mnist", 3, s) for s in range(6)],
    ]  # fmt: skip
    assert list(plan["conclusions"].iloc[:4]) == [["cheap", "shared"]] * 4  # trained once, for both
    assert plan["seconds"].iloc[0] == 10.0 and plan["seconds"].iloc[-1] != plan["seconds"].iloc[-1]  # NaN: never run
    assert all(c.seed == s for c, s in zip(plan["config"], plan["seed"]))


def test_the_plan_gives_the_side_with_fewer_seeds_the_next_run(tmp_path: Path) -> None:
    """A plan cut short (``--runs 2``) should still compare: the sides take turns, the one with fewer
    seeds first, so two runs give 2 seeds a side (an interval), not 3 against 1."""
    store_run(tmp_path, grid_config("resnet_se", 1, 0), [30.0, 30.0])  # side a: seeds 0 and 1
    store_run(tmp_path, grid_config("resnet_se", 1, 1), [30.0, 30.0])
    store_run(tmp_path, grid_config("resnet_se", 0, 0), [30.0, 30.0])  # side b: seed 0
    plan = planner.plan(PROFILE, RunStore(tmp_path), [SE])
    assert [(r, s) for r, s in zip(plan["row"], plan["seed"])] == [(0, 1), (1, 2), (0, 2)]  # then a tie: a first
    store_run(tmp_path, grid_config("resnet_se", 0, 1), [30.0, 30.0])
    plan = planner.plan(PROFILE, RunStore(tmp_path), [SE])
    assert [(r, s) for r, s in zip(plan["row"], plan["seed"])] == [(1, 2), (0, 2)]


def test_the_plan_counts_what_an_interrupted_run_has_checkpointed(tmp_path: Path) -> None:
    """A run stopped after k of E epochs resumes there: it still costs (1 - k/E) of a run, and says so."""
    store = RunStore(tmp_path)
    for row in (0, 1):
        store_run(tmp_path, grid_config("resnet_se", row, 0), [30.0, 30.0])  # 20 s a run
    interrupted = grid_config("resnet_se", 0, 2)
    checkpoints.save_checkpoint(store, interrupted, {"history": [{"epoch": 1}]})
    plan = planner.plan(PROFILE, store, [SE])
    assert [(r, s) for r, s in zip(plan["row"], plan["seed"])] == [(1, 1), (0, 1), (1, 2), (0, 2)]
    assert list(plan["seconds"]) == pytest.approx([20.0, 20.0, 20.0, 20.0 * (1 - 1 / interrupted.epochs)])
    assert list(plan["progress"]) == ["", "", "", f"1/{interrupted.epochs} epochs checkpointed"]
    shown = tables.format_plan(plan)
    assert shown["progress"].iloc[-1] == f"1/{interrupted.epochs} epochs checkpointed"
    assert "progress" not in tables.format_plan(plan.iloc[:3]).columns  # only while a run is under way


def test_the_plan_charges_a_longer_run_only_the_epochs_beyond_a_shorter_one_of_its_chain(tmp_path: Path) -> None:
    """Rows 3, 4 and 5 of Table 2 are one config at 2, 3 and 5 epochs (quick): a seed's 5-epoch run
    continues its 3-epoch run when both are planned (deepcls.execution.runner trains them as one chain), and
    its 2-epoch run when that one's final state is kept; it costs only the epochs beyond."""
    store = RunStore(tmp_path)
    for row, epochs in ((3, 2), (4, 3), (5, 5)):
        store_run(tmp_path, grid_config("resnet_cifar10", row, 0), [30.0] * epochs)  # 10 s per epoch
    kept = grid_config("resnet_cifar10", 3, 2)  # seed 2's 2-epoch run is stored with its final state
    store_run(tmp_path, kept, [30.0, 30.0])
    store.checkpoints.mkdir(parents=True, exist_ok=True)
    checkpoints.final_path(store, kept).write_bytes(b"")  # prefix_run only asks that the file exists
    thirty = Conclusion("thirty", "3 epochs beat 2", "epochs", ("resnet_cifar10", 4), ("resnet_cifar10", 3))
    fifty = Conclusion("fifty", "5 epochs beat 3", "epochs", ("resnet_cifar10", 5), ("resnet_cifar10", 4))
    plan = planner.plan(PROFILE, store, [fifty, thirty])
    runs = [(r, s) for r, s in zip(plan["row"], plan["seed"])]
    assert runs == [(4, 1), (4, 2), (5, 1), (5, 2)]  # the 3-epoch runs first: then the 5-epoch ones are cheap
    assert list(plan["seconds"]) == pytest.approx([30.0, 10.0, 20.0, 20.0])
    assert runner.extension_chains(list(plan["config"])) == [
        [plan["config"].iloc[0], plan["config"].iloc[2]],
        [plan["config"].iloc[1], plan["config"].iloc[3]],
    ]
    # two at once (--jobs 2): each chain on its own worker, seed 1's 30 + 20 s the longer
    assert (planner.wall_seconds(plan, 1), planner.wall_seconds(plan, 2), planner.wall_seconds(plan, 3)) == (80, 50, 50)
    said = tables.plan_summary(plan, PROFILE, jobs=2, wall_s=planner.wall_seconds(plan, 2))
    assert "≈ 80 s on CPU x1 (about 50 s of wall time with 2 at once)" in said and "--train --jobs 2`" in said


def test_the_forest_plot_keeps_a_margin_beyond_its_axis_visible_with_its_number() -> None:
    """The axis spans margins to 25 points; a huge one (a collapsed run) is an arrowhead at the edge with
    its value written beside it, not a point outside the picture."""
    import matplotlib.pyplot as plt

    from deepcls.report import plots

    small = [(f"claim {i}", "holds", 0.5 + i / 10, 0.2, 0.9, 0.4) for i in range(9)]
    rows = [*small, ("MNIST is far easier", "holds", 51.2, 39.3, 63.2, 18.0)]
    frame = pd.DataFrame(rows, columns=["conclusion", "verdict", "difference", "low", "high", "reported"])
    frame = frame.assign(metric="honest", measure="test accuracy (points)", profile="quick", n_a=3, n_b=2)
    frame.loc[0, "n_b"] = None  # a quantity against a threshold has one side
    seconds = frame.iloc[:1].assign(conclusion="slower per epoch", measure="seconds of its fastest epoch")
    fig = plots.forest(pd.concat([frame, seconds], ignore_index=True))
    (ax,) = fig.axes
    low, high = ax.get_xlim()
    assert high < 51.2 and high == -low
    assert ax.get_xscale() == "symlog"  # tenths of a point and tens of points on one axis
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]  # points only, each with its seeds per side
    assert labels == ["claim 0 (n=3)", *(f"{c} (n=3/2)" for c in frame["conclusion"].iloc[1:])]
    assert [t.get_text() for t in ax.texts] == ["ours +51.2"]  # the report's +18.0 lies on the axis
    plt.close(fig)


def test_a_numerical_warning_is_part_of_the_lines_note_not_printed(tmp_path: Path) -> None:
    """Identical repeats (every ratio 2.00): scipy warns of catastrophic cancellation; the ledger keeps
    that in the line's note and nothing reaches the console."""
    store_timing(tmp_path, [20.0, 20.0, 20.0], [10.0, 10.0, 10.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = verdict(tmp_path, SLOWER)
    assert line["ratio"] == pytest.approx(2.0) and "numerical warning: Precision loss occurred" in line["reading"]
