"""Progress: whether bars show and how often they refresh, and the status line of a command that reads
(the store for a table, the ledger) when it takes more than a couple of seconds.

Torch-free, so reading commands (``deepcls results``, ``ledger``) show progress without importing it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
LOG_BAR_INTERVAL = 30.0  # seconds between progress lines when stderr is a log file
READING_DELAY = 2.0  # seconds a reading step runs before its bar appears


def show_progress(progress: bool | None = None) -> bool:
    """An explicit choice, else on unless ``$DEEPCLS_PROGRESS=0`` (the report sets it)."""
    return progress if progress is not None else os.environ.get("DEEPCLS_PROGRESS", "1") != "0"


def interactive() -> bool:
    """A person is watching: stderr is a terminal, or this is a Jupyter kernel."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def bar_timing() -> dict[str, float]:
    """tqdm's refresh intervals: its defaults on a terminal or in Jupyter; when stderr is
    redirected to a file, a line per LOG_BAR_INTERVAL so a background run's log stays readable
    (both bounds: tqdm's monitor thread otherwise refreshes every ``maxinterval``, 10 s)."""
    if interactive():
        return {"mininterval": 0.1, "maxinterval": 10.0}
    return {"mininterval": LOG_BAR_INTERVAL, "maxinterval": LOG_BAR_INTERVAL}


_step: list[str] = [""]  # what the current activity is doing, for its status line


def reading(items: Iterable[T], what: str, total: int | None = None) -> Iterator[T]:
    """``items``, counted into the status line of the :func:`activity` around it ("reading runs
    12/40"); outside one, just ``items``."""
    count = total if total is not None else (len(items) if isinstance(items, Sized) else None)
    for done, item in enumerate(items):
        _step[0] = f"{what} {done}/{count}" if count else what
        yield item
    _step[0] = ""


@contextmanager
def activity(what: str, refresh_s: float = 0.25) -> Iterator[None]:
    """A status line for a command with no bar of its own (``deepcls ledger``, ``results``): after
    READING_DELAY seconds, where a person is watching, "ledger: reading runs 12/40 [00:03]",
    refreshed from a thread and cleared at the end. A fast command, a log or a test's captured
    stderr sees nothing."""
    if not (show_progress() and interactive()):
        yield
        return
    stop, start = threading.Event(), time.monotonic()
    bar: list[tqdm] = []

    def show() -> None:
        while not stop.wait(refresh_s):
            if time.monotonic() - start < READING_DELAY:
                continue
            said = f"{what}: {_step[0] or 'working'}"
            if not bar:
                bar.append(tqdm(total=None, desc=said, leave=False, bar_format="{desc} [{elapsed}]"))
                bar[0].start_t -= time.monotonic() - start  # the elapsed time is the command's
            bar[0].set_description_str(said)

    thread = threading.Thread(target=show, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if bar:
            bar[0].close()
