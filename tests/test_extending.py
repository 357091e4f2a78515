"""The README's Extending recipe, followed on a copy of the package: a model of a new family, an
ablation table with a variant of one's own, a thin notebook and an extension conclusion, then
``deepcls results --train``, ``deepcls ledger``, the notebook at the smoke profile and the model tests,
each in a fresh process that imports the copy."""

from __future__ import annotations

import csv
import datetime
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

import deepcls
from deepcls.paper.conclusions import CONCLUSIONS

REPO = Path(__file__).resolve().parent.parent
TABLE, MODEL, CONCLUSION = "tinynet_ablation", "tinynet2", "tinynet_bn_smooth_helps"

# The model: an nn.Module and its builder, in a module of its own ...
TINYNET = '''"""TinyNet: two 3x3 convolutions, global average pooling and a linear head."""

from torch import Tensor, nn


class TinyNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool) -> None:
        super().__init__()
        norm = nn.BatchNorm2d if batch_norm else lambda _: nn.Identity()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), norm(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), norm(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def tinynet(name: str, *, in_channels: int, num_classes: int, batch_norm: bool = False) -> TinyNet:
    return TinyNet(in_channels, num_classes, batch_norm)
'''
# ... declared, without importing it, where the package declares its own families.
DECLARATION = f"""
register_family("tinynet", builder="deepcls.models.tinynet:tinynet", options=("batch_norm",),
                defaults={{"batch_norm": False}}, best_lr=0.05)
register_model("{MODEL}", "tinynet")
"""
# The ablation: a baseline row and a variant that describe() shows only in part (batch norm is
# shown, label smoothing is not: the row's label names the variant for it).
ROWS = [
    f"{TABLE},1,{MODEL},mnist,2,32,none,adam,0.001,,,,deepcls extension: TinyNet baseline",
    f"{TABLE},2,{MODEL},mnist,2,32,none,adam,0.001,bn_smooth,,,deepcls extension: batch norm + smoothing",
]
VARIANT = '    "bn_smooth": {"batch_norm": True, "label_smoothing": 0.1},\n'
NOTEBOOK = [
    nbformat.v4.new_markdown_cell("# TinyNet: batch norm and label smoothing on MNIST"),
    nbformat.v4.new_code_cell(
        'profile = "quick"\nseeds = [0]\ndata_dir = None\nresults_dir = None\ntrain = True',
        metadata={"tags": ["parameters"]},
    ),
    nbformat.v4.new_code_cell(
        "import deepcls as dc\n\n"
        "study = dc.Study(profile, seeds, results_dir=results_dir, data_dir=data_dir, train=train)\n"
        f'results = study.results("{TABLE}")\n'
        "dc.format_results(results)"
    ),
    nbformat.v4.new_code_cell('list(results["setting"])'),
    nbformat.v4.new_code_cell(f'study.ledger(["{TABLE}"])'),
]


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text().rstrip("\n") + "\n" + text.strip("\n") + "\n")


def _extend(root: Path) -> None:
    """The recipe's four steps, on the package copy under ``root``."""
    package = root / "deepcls"
    (package / "models" / "tinynet.py").write_text(TINYNET)
    _append(package / "models" / "catalog.py", DECLARATION)
    _append(package / "paper" / "paper_tables.csv", "\n".join(ROWS))
    grids = package / "paper" / "grids.py"
    marker = 'VARIANTS = {  # paper_tables.csv "variant" -> RunConfig changes\n'
    assert marker in grids.read_text()
    grids.write_text(grids.read_text().replace(marker, marker + VARIANT))
    line = io.StringIO()
    csv.writer(line).writerow(
        [CONCLUSION, "batch norm + label smoothing beats plain TinyNet (MNIST)", "compare", TABLE, 2, TABLE, 1]
        + ["", "test accuracy (points)", "", "", "", "deepcls extension", "0.1", "extension"]
    )
    _append(package / "paper" / "conclusions.csv", line.getvalue())
    today = datetime.date.today().isoformat()
    _append(
        package / "paper" / "registration.csv",
        f"{CONCLUSION},{today},,0.1,test accuracy (points),no,fixed before any TinyNet run",
    )
    (root / "notebooks").mkdir()
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=NOTEBOOK, metadata=kernel), root / "notebooks" / "10_tinynet.ipynb")


def test_the_readme_recipe_extends_the_package_without_touching_the_engine(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, results = tmp_path / "copy", tmp_path / "results"
    shutil.copytree(Path(deepcls.__file__).parent, root / "deepcls", ignore=shutil.ignore_patterns("__pycache__"))
    _extend(root)
    for name, value in {
        "PYTHONPATH": str(root),
        "DEEPCLS_RESULTS_DIR": str(results),
        "DEEPCLS_DATA_DIR": str(data_dir),
        "DEEPCLS_PROGRESS": "0",
    }.items():
        monkeypatch.setenv(name, value)

    def cli(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "deepcls", *argv], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = cli("results", "--profile", "smoke", "--tables", TABLE, "--seeds", "0,1,2", "--train", "--markdown")
    assert shown.count("complete") == 2 and f"| {TABLE} |" in shown

    claims = sum(c.role == "claim" for c in CONCLUSIONS)
    ledger_csv = tmp_path / "ledger.csv"
    said = cli("ledger", "--profile", "smoke", "--csv", str(ledger_csv))
    assert f"Of the report's {claims} claims" in said and "Extensions (1 line added to the report" in said
    with ledger_csv.open() as f:
        lines = {(line["id"], line["metric"]): line for line in csv.DictReader(f)}
    mine = lines[(CONCLUSION, "honest")]
    assert (mine["role"], mine["family"], mine["n_a"], mine["n_b"]) == ("extension", "1", "3", "3")
    assert mine["p_adjusted"] and float(mine["p_adjusted"]) <= 1
    assert {line["family"] for line in lines.values() if line["role"] == "claim"} == {str(claims)}

    executed = tmp_path / "10_tinynet.ipynb"
    papermill.execute_notebook(
        str(root / "notebooks" / "10_tinynet.ipynb"),
        str(executed),
        parameters={"profile": "smoke"},
        kernel_name="python3",
        cwd=str(root),
        progress_bar=False,
    )
    outputs = [o for cell in nbformat.read(executed, as_version=4).cells for o in cell.get("outputs", [])]
    text = " ".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)
    assert "bn_smooth (label_smoothing 0.1)" in text and CONCLUSION in text  # the variant named in its label

    shutil.copytree(REPO / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", f"{MODEL} or list_and_info"]
        + ["--rootdir", str(root), "tests/test_models.py"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr  # tinynet2's forward pass
