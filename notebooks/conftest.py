"""nbmake's settings for the notebooks (``pytest --nbmake notebooks/``, part of ``make test``).

nbmake cannot inject papermill parameters, so the parameters cells read their defaults from the
environment: here every notebook runs at the smoke profile against a fresh run store (never the
committed one), on the real data (``$DEEPCLS_DATA_DIR``, else ``../shared/data``, else ``./data``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("DEEPCLS_PROFILE", "smoke")
os.environ.setdefault("DEEPCLS_PROGRESS", "0")
os.environ["DEEPCLS_RESULTS_DIR"] = os.environ.get("DEEPCLS_NBMAKE_RESULTS_DIR") or tempfile.mkdtemp(
    prefix="deepcls-nbmake-"
)
if "DEEPCLS_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["DEEPCLS_DATA_DIR"] = str(REPO.parent / "shared" / "data")
