"""Reading results: per-row differences from the report, the vflip probe, seed noise, init signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepcls.analysis import findings


def test_differences_read_train_and_test_deltas_together() -> None:
    def line(row: int, reported: tuple[float, float], ours: tuple[float, float], profile: str = "paper") -> dict:
        return {
            "table": "t",
            "row": row,
            "setting": "s",
            "reported_train": reported[0],
            "reported_test": reported[1],
            "train_mean": ours[0],
            "test_mean": ours[1],
            "seeds_done": 1,
            "profile": profile,
        }

    frame = pd.DataFrame(
        [
            line(1, (99.0, 99.0), (98.8, 98.7)),  # within 0.5
            line(2, (11.24, 11.35), (99.0, 99.1)),  # the report collapsed, ours did not
            line(3, (90.0, 80.0), (12.0, 10.0)),  # ours collapsed
            line(4, (90.0, 80.0), (88.0, 78.0)),  # lower on both: the model/optimisation
            line(5, (90.0, 80.0), (95.0, 78.0)),  # fits better, tests lower: generalisation
            line(6, (90.0, 80.0), (92.0, 82.0)),  # higher on both
            line(7, (np.nan, 80.0), (92.0, 79.0)),  # no reported train accuracy
            line(8, (90.0, 80.0), (np.nan, np.nan)),  # pending: not listed
            line(9, (90.0, 80.0), (30.0, 30.0), "quick"),  # reduced budget
        ]
    )
    diffs = findings.differences(frame).set_index("row")
    assert list(diffs.index) == [1, 2, 3, 4, 5, 6, 7, 9]
    assert diffs.loc[4, "Δ test"] == -2.0 and diffs.loc[4, "Δ train"] == -2.0
    reading = diffs["reading"]
    assert reading[1] == "agrees (within 0.5 points)"
    assert reading[2] == "report's run at chance (one class), ours trained"
    assert reading[3] == "ours at chance (one class), report's trained"
    assert reading[4] == "lower train too: model/optimisation differs"
    assert reading[5] == "tests lower, train not: generalisation/noise"
    assert reading[6] == "higher train too: model/optimisation differs"
    assert reading[7] == "tests lower; no reported train acc to compare"
    assert reading[9] == "not comparable: reduced quick budget"
    assert reading.str.len().max() <= 50  # shown whole in a notebook


def test_input_signal_at_init_vanishes_with_depth_under_default_init_but_not_he() -> None:
    signal = findings.input_signal_at_init("cifar10", ["vgg11", "vgg16"], images=8, width="reduced")
    assert list(signal.index) == ["vgg11", "vgg16"] and list(signal.columns) == ["default", "xavier", "he"]
    assert signal.loc["vgg16", "default"] < 1e-2 * signal.loc["vgg11", "default"] < 1e-6
    assert (signal["he"] > 1e-2).all()


@pytest.mark.parametrize(
    ("probe", "reading"),
    [
        ((81.5, 81.0), "closer on train, test as close: consistent"),
        ((83.0, 79.0), "closer on train but test drops: not supported"),
        ((90.0, 81.4), "not closer on train: reading doesn't explain it"),
        ((np.nan, np.nan), "pending"),
    ],
)
def test_vflip_reading_compares_the_probe_with_the_baseline_against_the_report(
    probe: tuple[float, float], reading: str
) -> None:
    frame = pd.DataFrame(
        [
            {
                "table": "resnet_vflip",
                "row": row,
                "reported_train": 81.19,
                "reported_test": 81.39,
                "train_mean": train,
                "test_mean": test,
                "seeds_done": int(not np.isnan(train)),
                "profile": "paper",
            }
            for row, (train, test) in ((0, (88.62, 81.35)), (1, probe))
        ]
    )
    lines = findings.vflip_reading(frame)
    assert list(lines["Δ train vs report"].iloc[:1]) == [7.43] and lines["reading"].iloc[1] == reading
    quick = "pending" if reading == "pending" else "not comparable: reduced quick budget"
    assert findings.vflip_reading(frame.assign(profile="quick"))["reading"].iloc[1] == quick


@pytest.mark.parametrize(
    ("tests", "profile", "band", "reading"),
    [
        (
            [81.0, 81.4, 81.8],
            "paper",
            2 * np.sqrt(2) * 0.4,
            "one-run differences under 1.13 points are seed noise; the report's 81.39 is within noise of our mean",
        ),
        (
            [80.0, 80.2, 80.4],
            "paper",
            2 * np.sqrt(2) * 0.2,
            "one-run differences under 0.57 points are seed noise; the report's 81.39 is outside noise of our mean",
        ),
        (
            [36.0, 37.0],
            "quick",
            2 * np.sqrt(2) * np.std([36.0, 37.0], ddof=1),
            "reduced quick budget: not the paper's noise",
        ),
        ([81.0], "paper", np.nan, "pending: 1 of 3 seeds run, 2 needed"),
    ],
)
def test_seed_noise_turns_the_spread_over_seeds_into_a_band_for_one_run_differences(
    tests: list[float], profile: str, band: float, reading: str
) -> None:
    frame = pd.DataFrame(
        [
            {
                "table": "resnet_cifar10",
                "row": 3,
                "reported_test": 81.39,
                "test_mean": np.mean(tests),
                "test_std": np.std(tests, ddof=1) if len(tests) > 1 else np.nan,
                "final_test_mean": np.mean(tests),
                "seeds_done": len(tests),
                "run_ids": tuple("abc"[: len(tests)]),
                "seeds_asked": 3,
                "profile": profile,
            }
        ]
    )
    line = findings.seed_noise(frame).iloc[0]
    assert line["reading"] == reading and line["seeds"] == f"{len(tests)} of 3"
    assert line["noise band"] == pytest.approx(band, abs=0.005, nan_ok=True)
