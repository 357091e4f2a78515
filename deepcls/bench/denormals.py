"""``python -m deepcls.bench.denormals``: an Adam step late in training, denormals flushed or not.

Late in training, squared gradients fall below float32's normal range (1.18e-38) and the CPU takes
its slow path for them. This times the deepcls optimizer (fused Adam) on the parameters of VGG-7
(MNIST, reduced width, 17M parameters) with gradients of about 1e-20 (squares about 1e-40), with
denormals flushed to zero (deepcls.engine.runtime.flush_denormals, what runs do) and without
(``DEEPCLS_FLUSH_DENORMAL=0``). Each side runs in a fresh process: the setting must come before torch
starts its threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence

import torch

from deepcls.bench.timing import seconds_per_call
from deepcls.config import RunConfig, cores
from deepcls.engine.optim import make_optimizer
from deepcls.engine.runtime import TINY, configure, flushes_denormals
from deepcls.models import build_for_dataset

CONFIG = RunConfig(dataset="mnist", model="vgg7", width="reduced")


def adam_step_seconds(steps: int) -> float:
    """Seconds per optimizer step on gradients whose squares are denormal, in this process."""
    model = build_for_dataset(CONFIG.model, CONFIG.dataset, **CONFIG.model_options())
    generator = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=generator) * TINY
    optimizer = make_optimizer(CONFIG, model.parameters())
    return seconds_per_call(optimizer.step, steps)


def _side(flush: bool, threads: int, steps: int) -> dict[str, float | bool]:
    env = {**os.environ, "DEEPCLS_FLUSH_DENORMAL": "1" if flush else "0"}
    command = [sys.executable, "-m", "deepcls.bench.denormals", "--child", "--threads", str(threads)]
    done = subprocess.run([*command, "--steps", str(steps)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepcls.bench.denormals", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=cores())
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.steps < 1:
        parser.error("--threads and --steps must be >= 1")
    if args.child:
        configure("cpu", args.threads)  # flushes unless the environment says 0
        seconds = adam_step_seconds(args.steps)
        print(json.dumps({"seconds": seconds, "flushing": flushes_denormals()}))
        return 0
    kept, flushed = _side(False, args.threads, args.steps), _side(True, args.threads, args.steps)
    print(f"fused Adam step, VGG-7 (MNIST) parameters, gradients ~1e-20, CPU x{args.threads}, {args.steps} steps")
    for name, side in (("denormals kept (reference)", kept), ("denormals flushed (deepcls)", flushed)):
        print(f"  {name:30s} {side['seconds'] * 1e3:8.1f} ms   flushing: {side['flushing']}")
    print(f"  speed-up: {kept['seconds'] / flushed['seconds']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
