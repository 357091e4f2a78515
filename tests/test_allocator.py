"""keep_freed_memory(): applied once on glibc, switched off by the environment."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from deepcls.engine.runtime import keep_freed_memory

PROBE = "from deepcls.engine.runtime import keep_freed_memory as k; print(k(), k())"


# One epoch of VGG-7 with the report's 4096-wide classifier (68 MB fp32 weights, well above glibc's
# mmap threshold), printed at full precision.
TRAIN = """
import sys, tempfile
from deepcls.config import RunConfig
from deepcls.engine.fit import fit
config = RunConfig(dataset="mnist", model="vgg7", width="reduced", epochs=1, subset=1000,
                   test_subset=200, batch_size=50, threads=2)
with tempfile.TemporaryDirectory() as root:
    record = fit(config, results_dir=root, data_dir=sys.argv[1], progress=False)
    print(record.history[["train_loss", "train_acc", "test_loss", "test_acc"]].to_numpy().tolist())
"""


def probe(*args: str, code: str = PROBE, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_applies_on_glibc_once() -> None:
    glibc = platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
    assert probe() == f"{glibc} {glibc}"


def test_the_environment_switches_it_off() -> None:
    assert probe(DEEPCLS_KEEP_FREED_MEMORY="0") == "False False"


def test_training_results_do_not_depend_on_it(data_dir: Path) -> None:
    kept = probe(str(data_dir), code=TRAIN)
    assert kept.startswith("[[") and kept == probe(str(data_dir), code=TRAIN, DEEPCLS_KEEP_FREED_MEMORY="0")
