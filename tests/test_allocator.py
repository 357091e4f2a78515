"""keep_freed_memory(): applied once on glibc, switched off by the environment."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

from deepcls.allocator import keep_freed_memory

PROBE = "from deepcls.allocator import keep_freed_memory as k; print(k(), k())"


def probe(**env: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_applies_on_glibc_once() -> None:
    glibc = platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
    assert probe() == f"{glibc} {glibc}"


def test_the_environment_switches_it_off() -> None:
    assert probe(DEEPCLS_KEEP_FREED_MEMORY="0") == "False False"
