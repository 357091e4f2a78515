"""``python -m deepcls.bench.loader``: the cost of BatchLoader next to a training step, on CPU.

On CIFAR-10 it times the training loader with ``flip,crop`` and without augmentation, and
one ResNet-18 step (ImageNet stem, channels_last, auto precision, Adam) at the same batch
size, then prints the loader's time per batch as a share of that step (target: under 5%).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch

from deepcls.bench.timing import WARMUP, endless, seconds_per_call
from deepcls.config import RunConfig
from deepcls.data import BatchLoader, Split, get_spec, load_dataset, resolve_data_dir
from deepcls.engine.fit import Trainer
from deepcls.errors import DeepclsError

DATASET = "cifar10"
AUGMENT = ("flip", "crop")
TARGET_PERCENT = 5.0


def loader_seconds(split: Split, augment: Sequence[str], batch_size: int, steps: int) -> float:
    """Seconds per full training batch (shuffled, augmented, normalized, channels_last)."""
    loader = BatchLoader(split, get_spec(DATASET), batch_size=batch_size, train=True, augment=augment, drop_last=True)
    batches = endless(loader)
    return seconds_per_call(lambda: next(batches), steps)


def train_step_seconds(batch_size: int, steps: int, data_dir: str | None) -> float:
    """Seconds per ResNet-18 optimisation step of the deepcls engine on one fixed batch."""
    trainer = Trainer(
        RunConfig(
            dataset=DATASET,
            model="resnet18",
            stem="imagenet",
            batch_size=batch_size,
            precision="auto",
            subset=batch_size,
            test_subset=100,
        ),
        data_dir,
    )
    x, y = next(trainer.train_loader.epoch())
    return seconds_per_call(lambda: trainer.step(x, y), steps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepcls.bench.loader", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $DEEPCLS_DATA_DIR, else ./data")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40, help="timed loader batches")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps")
    args = parser.parse_args(argv)
    try:
        train, _ = load_dataset(DATASET, resolve_data_dir(args.data_dir))
    except DeepclsError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2

    b = args.batch_size
    augmented = loader_seconds(train, AUGMENT, b, args.steps)
    plain = loader_seconds(train, (), b, args.steps)
    step = train_step_seconds(b, args.train_steps, args.data_dir)
    share = 100 * augmented / step
    print(
        f"CIFAR-10 on CPU, {torch.get_num_threads()} threads, batch {b}, 1-min load average "
        f"{os.getloadavg()[0]:.1f}; {args.steps} loader batches / {args.train_steps} training steps "
        f"timed after {WARMUP} warm-up calls each"
    )
    print(f"  loader, {'+'.join(AUGMENT):22s}{b / augmented:9.0f} img/s {1e3 * augmented:9.1f} ms/batch")
    print(f"  loader, {'no augmentation':22s}{b / plain:9.0f} img/s {1e3 * plain:9.1f} ms/batch")
    print(
        f"  {'ResNet-18 training step':30s}{b / step:9.0f} img/s {1e3 * step:9.1f} ms/step"
        f"  (ImageNet stem, channels_last, auto precision, Adam)"
    )
    print(
        f"loader with {'+'.join(AUGMENT)}: {share:.1f}% of a training step (target < {TARGET_PERCENT:g}%: "
        f"{'met' if share < TARGET_PERCENT else 'MISSED'}); augmentation alone "
        f"{100 * (augmented - plain) / step:.1f}%, batching + normalization {100 * plain / step:.1f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
