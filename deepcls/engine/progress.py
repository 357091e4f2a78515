"""Progress-bar policy: on unless turned off, and readable in a log file."""

from __future__ import annotations

import os
import sys

LOG_BAR_INTERVAL = 30.0  # seconds between progress lines when stderr is a log file


def show_progress(progress: bool | None = None) -> bool:
    """An explicit choice, else on unless ``$DEEPCLS_PROGRESS=0`` (the report sets it)."""
    return progress if progress is not None else os.environ.get("DEEPCLS_PROGRESS", "1") != "0"


def bar_timing() -> dict[str, float]:
    """tqdm's refresh intervals: its defaults on a terminal or in Jupyter; when stderr is
    redirected to a file, a line per LOG_BAR_INTERVAL so a background run's log stays readable
    (both bounds: tqdm's monitor thread otherwise refreshes every ``maxinterval``, 10 s)."""
    if sys.stderr.isatty() or "ipykernel" in sys.modules:
        return {"mininterval": 0.1, "maxinterval": 10.0}
    return {"mininterval": LOG_BAR_INTERVAL, "maxinterval": LOG_BAR_INTERVAL}
