"""flush_denormals(): every intra-op thread flushes once it is set before torch starts them; the
check sees a thread that predates it; the environment switches it off."""

from __future__ import annotations

import os
import subprocess
import sys

# Two intra-op threads; ``early``: flushed before any torch work, as the CLI and the runner's workers do.
CODE = """
import sys, torch
from deepcls.engine import runtime
if sys.argv[1] == "late":
    torch.set_num_threads(2)
    torch.randn(1 << 22).sum()  # starts the second thread before the flush
print(runtime.flush_denormals(), end=" ")
runtime.configure("cpu", 2)
print(runtime.flushes_denormals())
"""


def flushing(order: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CODE, order], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_flushed_before_torch_starts_its_threads_every_thread_flushes() -> None:
    assert flushing("early") == "True True"


def test_a_thread_started_before_the_flush_is_seen() -> None:
    assert flushing("late") == "True False"


def test_the_environment_switches_it_off() -> None:
    assert flushing("early", DEEPCLS_FLUSH_DENORMAL="0") == "False False"
