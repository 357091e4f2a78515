"""``deepcls bench``: training and evaluation images/s of the deepcls engine against the
plain reference loop (deepcls.bench.reference), measured side by side in one process."""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable

import torch

from deepcls.bench.reference import reference_batches, reference_eval_step, reference_train_step
from deepcls.bench.timing import WARMUP, endless, seconds_per_call, synchronize
from deepcls.config import RunConfig
from deepcls.data import get_spec, load_dataset
from deepcls.models import build_for_dataset, input_padding
from deepcls.runtime import configure, resolve_device
from deepcls.train import Trainer

EVAL_IMAGES = 2000
REFERENCE_WORKERS = 2  # what pytorch-cifar style scripts used; this machine has 2 cores


def images_per_s(step: Callable[[], int], steps: int, warmup: int = WARMUP) -> tuple[float, float]:
    """(images/s over ``steps`` calls after ``warmup`` calls, seconds spent warming up)."""
    start = time.perf_counter()
    for _ in range(warmup):
        batch = step()  # every call processes the same number of images
    synchronize()
    warm = time.perf_counter() - start
    return batch / seconds_per_call(step, steps, warmup=0), warm


def measure_engine(config: RunConfig, data_dir: str | None, steps: int) -> dict[str, float]:
    trainer = Trainer(config, data_dir)
    batches = endless(trainer.train_loader)

    def train_step() -> int:
        x, y = next(batches)
        loss, _ = trainer.step(x, y)
        return len(y)

    train, warm = images_per_s(train_step, steps)

    def eval_pass() -> int:
        trainer.evaluate()
        return trainer.test_loader.num_samples

    evaluation, _ = images_per_s(eval_pass, 2, warmup=1)
    return {"train_images_per_s": train, "eval_images_per_s": evaluation, "warmup_s": warm}


def measure_reference(config: RunConfig, data_dir: str | None, steps: int) -> dict[str, float]:
    spec = get_spec(config.dataset)
    pad_to = input_padding(config.model, spec)
    train_split, test_split = load_dataset(config.dataset, data_dir)
    device = resolve_device(config.device)  # the engine's device: a ratio of like with like
    torch.manual_seed(config.seed)
    model = build_for_dataset(config.model, config.dataset, **config.model_options()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batches = reference_batches(
        train_split,
        spec,
        config.augment,
        config.batch_size,
        pad_to,
        train=True,
        workers=REFERENCE_WORKERS,
        device=device,
    )
    test_batches = reference_batches(
        test_split, spec, (), config.batch_size, pad_to, train=False, workers=REFERENCE_WORKERS, device=device
    )

    def train_step() -> int:
        x, y = next(batches)
        reference_train_step(model, optimizer, x, y)
        return len(y)

    def eval_step() -> int:
        x, y = next(test_batches)
        reference_eval_step(model, x, y)
        return len(y)

    train, warm = images_per_s(train_step, steps)
    evaluation, _ = images_per_s(eval_step, max(1, EVAL_IMAGES // config.batch_size))
    return {"train_images_per_s": train, "eval_images_per_s": evaluation, "warmup_s": warm}


def run_bench(args: argparse.Namespace) -> int:
    config = RunConfig(
        dataset=args.dataset,
        model=args.model,
        stem=args.stem,
        batch_size=args.batch_size,
        augment=args.augment,
        precision="bf16",
        compile=args.compile,
        test_subset=EVAL_IMAGES,
        profile="custom",
    )
    configure(config.device)
    reference = measure_reference(config, args.data_dir, args.steps)
    engine = measure_engine(config, args.data_dir, args.steps)
    result = {
        "model": args.model,
        "stem": args.stem,
        "dataset": args.dataset,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "augment": ",".join(config.augment),
        "device": str(resolve_device(config.device)),
        "threads": torch.get_num_threads(),
        "compile": args.compile,
        "reference": reference,
        "deepcls": engine,
        "train_ratio": engine["train_images_per_s"] / reference["train_images_per_s"],
        "eval_ratio": engine["eval_images_per_s"] / reference["eval_images_per_s"],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    name = args.model + (f" ({args.stem} stem)" if args.stem else "")
    print(
        f"{name} on {args.dataset}, batch {args.batch_size}, augment {result['augment'] or 'none'}, "
        f"{args.steps} timed steps, {result['device']}, {result['threads']} threads"
    )
    print(f"{'':44s}{'train img/s':>12s}{'eval img/s':>12s}")
    print(
        f"{'reference (fp32, NCHW, DataLoader + PIL)':44s}"
        f"{reference['train_images_per_s']:12.0f}{reference['eval_images_per_s']:12.0f}"
    )
    label = f"deepcls (bf16, channels_last{', compile' if args.compile else ''})"
    print(f"{label:44s}{engine['train_images_per_s']:12.0f}{engine['eval_images_per_s']:12.0f}")
    print(f"{'ratio':44s}{result['train_ratio']:11.2f}x{result['eval_ratio']:11.2f}x")
    print(
        f"peak memory (process RSS): {result['peak_rss_gib']:.2f} GiB;"
        f" deepcls warm-up (incl. compile) {engine['warmup_s']:.1f} s"
    )
    return 0
