"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def real_data_dir() -> Path:
    """``$DEEPCLS_DATA_DIR`` if set, else ``../shared/data`` next to the repository."""
    env = os.environ.get("DEEPCLS_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the real ``mnist.npz`` and ``cifar10.npz``.

    Missing: a failure under CI (real-data tests must never be skipped silently there),
    a skip elsewhere.
    """
    path = real_data_dir()
    if not path.is_dir():
        message = (f"real data folder {path} not found; set DEEPCLS_DATA_DIR to a folder "
                   f"holding mnist.npz and cifar10.npz")
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
