"""nbmake's settings for the notebooks (``pytest --nbmake notebooks/``, part of ``make test``): the smoke
test of every notebook, each executed once (the report's tests build only the two they need).

nbmake cannot inject papermill parameters, so the parameters cells read their defaults from the
environment: here every notebook runs at the smoke profile against a fresh run store (never the
committed one), on the real data (``$DEEPCLS_DATA_DIR``, else the project's ``data/``, where the
CLI and ``make report`` put it).
That store holds the smoke runs' checkpoints (about 6 GB): it is removed when the session ends,
unless ``$DEEPCLS_NBMAKE_RESULTS_DIR`` names one to keep.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("DEEPCLS_PROFILE", "smoke")
os.environ.setdefault("DEEPCLS_PROGRESS", "0")
_KEPT = os.environ.get("DEEPCLS_NBMAKE_RESULTS_DIR")
os.environ["DEEPCLS_RESULTS_DIR"] = _KEPT or tempfile.mkdtemp(prefix="deepcls-nbmake-")
os.environ.setdefault("DEEPCLS_DATA_DIR", str(REPO / "data"))  # kernels start in notebooks/


PASSED: set[str] = set()  # the notebooks nbmake executed without an error in this session


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note each notebook that passed: ``test_trained_runs.py`` reads the store once they all have."""
    path = Path(report.nodeid.split("::", 1)[0])
    if report.when == "call" and report.passed and path.suffix == ".ipynb":
        PASSED.add(path.stem)


@pytest.fixture
def passed_notebooks() -> set[str]:
    """The notebooks nbmake executed without an error in this session, by name."""
    return PASSED


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the fresh store: each run of ``make test`` would otherwise leave its checkpoints in /tmp."""
    if not _KEPT:
        shutil.rmtree(os.environ["DEEPCLS_RESULTS_DIR"], ignore_errors=True)
