"""deepcls.progress: the status line of a reading command that runs past its delay, where a person
is watching, and nothing otherwise."""

from __future__ import annotations

import argparse
import time

import pytest

from deepcls import progress
from deepcls.cli import _shows_progress


def _slow_read(delay: float) -> None:
    with progress.activity("ledger", refresh_s=0.02):
        for _ in progress.reading(range(10), "reading runs"):
            time.sleep(delay)


def test_a_slow_command_shows_what_it_reads_then_clears_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress, "READING_DELAY", 0.1)
    monkeypatch.delenv("DEEPCLS_PROGRESS", raising=False)
    _slow_read(0.05)
    err = capsys.readouterr().err
    assert "ledger: reading runs " in err and "/10" in err
    assert err.rstrip(" ").endswith("\r")  # the line is blanked at the end


@pytest.mark.parametrize("watched", [False, True])
def test_a_fast_command_a_log_or_progress_off_shows_nothing(
    watched: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: watched)
    monkeypatch.setattr(progress, "READING_DELAY", 0.1 if not watched else 10.0)
    _slow_read(0.02)
    monkeypatch.setattr(progress, "READING_DELAY", 0.1)
    monkeypatch.setenv("DEEPCLS_PROGRESS", "0")
    _slow_read(0.02)
    assert capsys.readouterr().err == ""


def test_commands_with_bars_of_their_own_get_no_status_line() -> None:
    def args(command: str, **flags: bool) -> argparse.Namespace:
        return argparse.Namespace(command=command, **flags)

    assert _shows_progress(args("train")) and _shows_progress(args("report", train=False))
    assert _shows_progress(args("results", train=True)) and _shows_progress(args("ledger", train=False, time=True))
    assert not _shows_progress(args("results", train=False)) and not _shows_progress(args("info"))
