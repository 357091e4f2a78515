"""dc.Study takes notebook parameters the way people pass them: papermill's strings included, never
truthiness; anything else is one ConfigError line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

from deepcls.errors import ConfigError
from deepcls.study import Study, as_bool, as_seeds


@pytest.mark.parametrize(
    ("given", "seeds"),
    [([0, 1, 2], (0, 1, 2)), ((3,), (3,)), (4, (4,)), ("0,1,2", (0, 1, 2)), ("[0, 1, 2]", (0, 1, 2)), (" 5 ", (5,))],
)
def test_seeds_as_a_list_a_number_or_a_string(given: object, seeds: tuple[int, ...], tmp_path: Path) -> None:
    assert as_seeds(given) == seeds
    assert Study("smoke", given, results_dir=str(tmp_path)).seeds == seeds  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["", "0,0", "-1", "a,b", [0, True], 1.5, None, [], "1.0"])
def test_bad_seeds_are_one_line(given: object) -> None:
    with pytest.raises(ConfigError, match="seeds must be") as raised:
        as_seeds(given)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("given", "value"), [(True, True), (False, False), ("False", False), ("true", True)])
def test_yes_no_parameters_are_bools_or_the_words_true_and_false(given: object, value: bool) -> None:
    assert as_bool("train", given) is value


@pytest.mark.parametrize("given", ["no", "yes", "0", "", 1, None])
def test_a_yes_no_parameter_is_never_truthiness(given: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train must be True or False"):
        Study("smoke", results_dir=str(tmp_path), train=given)  # type: ignore[arg-type]


@pytest.mark.integration
def test_papermill_runs_a_notebook_with_seeds_and_train_as_strings(tmp_path: Path) -> None:
    """What the README shows: ``papermill ... -p profile smoke -p seeds 0,1,2 -p train False``."""
    out = tmp_path / "out.ipynb"
    command = [sys.executable, "-m", "papermill", str(REPO_ROOT / "notebooks" / "02_resnet_mnist.ipynb"), str(out)]
    parameters = ["-p", "profile", "smoke", "-p", "seeds", "0,1,2", "-p", "train", "False"]
    parameters += ["-p", "results_dir", str(tmp_path / "results"), "--cwd", str(REPO_ROOT / "notebooks")]
    done = subprocess.run([*command, *parameters], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pending" in out.read_text()  # nothing trained: the rows are shown as pending
