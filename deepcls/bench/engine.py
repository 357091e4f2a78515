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
from deepcls.engine.fit import Trainer
from deepcls.engine.runtime import configure
from deepcls.execution.interleaved import Lane
from deepcls.models import build_for_dataset, input_padding
from deepcls.numeric import resolve_device, resolve_precision

EVAL_IMAGES = 2000
REFERENCE_WORKERS = 2  # what pytorch-cifar style scripts used


def images_per_s(step: Callable[[], int], steps: int, warmup: int = WARMUP) -> tuple[float, float]:
    """(images/s over ``steps`` calls after ``warmup`` calls, seconds spent warming up)."""
    start = time.perf_counter()
    for _ in range(warmup):
        batch = step()  # every call processes the same number of images
    synchronize()
    warm = time.perf_counter() - start
    return batch / seconds_per_call(step, steps, warmup=0), warm


def measure_engine(
    config: RunConfig, data_dir: str | None, steps: int, compile_mode: str | None = None
) -> dict[str, float]:
    trainer = Trainer(config, data_dir)
    if compile_mode is not None:  # e.g. "reduce-overhead": inductor's own CUDA graphs of the model
        trainer.forward = torch.compile(trainer.model, mode=compile_mode)
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


def measure_together(config: RunConfig, data_dir: str | None, steps: int, runs: int) -> dict[str, float]:
    """Training images/s of ``runs`` runs (seeds 0..runs-1) taking turns step by step, as the
    concurrent executor trains them (deepcls.execution.interleaved: own CUDA stream and graphs each)."""
    lanes = [Lane(resolve_device(config.device)) for _ in range(runs)]
    trainers, batches = [], []
    for seed, lane in enumerate(lanes):
        with lane:
            trainers.append(Trainer(config.replace(seed=seed), data_dir))
            batches.append(endless(trainers[-1].train_loader))

    def round_of_steps() -> int:
        images = 0
        for trainer, lane, batch in zip(trainers, lanes, batches):
            with lane:
                x, y = next(batch)
                trainer.step(x, y)
            images += len(y)
        return images

    train, warm = images_per_s(round_of_steps, max(1, steps // runs))
    return {"train_images_per_s": train, "warmup_s": warm}


def bench_config(args: argparse.Namespace, batch_size: int) -> RunConfig:
    return RunConfig(
        dataset=args.dataset,
        model=args.model,
        stem=args.stem,
        batch_size=batch_size,
        augment=args.augment,
        precision=args.precision,
        compile=args.compile,
        graphs=False,
        test_subset=EVAL_IMAGES,
        profile="custom",
    )


def bench_batch(args: argparse.Namespace, batch_size: int, together: list[int]) -> dict:
    """Reference loop, deepcls eager, with CUDA graphs (CUDA only) and ``together`` runs at once,
    at one batch size, side by side in this process."""
    config = bench_config(args, batch_size)
    device = resolve_device(config.device)
    reference = measure_reference(config, args.data_dir, args.steps)
    engine = measure_engine(config, args.data_dir, args.steps)
    modes: dict[str, dict | None] = {"eager": engine}
    cuda = device.type == "cuda"
    modes["graphs"] = measure_engine(config.replace(graphs=True), args.data_dir, args.steps) if cuda else None
    if cuda and args.compile_mode:
        modes[f"compile {args.compile_mode}"] = measure_engine(config, args.data_dir, args.steps, args.compile_mode)
    for runs in together:
        modes[f"{runs} at once"] = measure_together(config.replace(graphs=None), args.data_dir, args.steps, runs)
    return {
        "model": args.model,
        "stem": args.stem,
        "dataset": args.dataset,
        "batch_size": batch_size,
        "steps": args.steps,
        "augment": ",".join(config.augment),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "compile": args.compile,
        "precision": resolve_precision(config.precision, device),
        "reference": reference,
        "deepcls": engine,
        "modes": modes,
        "train_ratio": engine["train_images_per_s"] / reference["train_images_per_s"],
        "eval_ratio": engine["eval_images_per_s"] / reference["eval_images_per_s"],
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def run_bench(args: argparse.Namespace) -> int:
    sizes = [int(b) for b in str(args.batch_size).split(",")]
    together = [int(k) for k in str(args.runs_at_once).split(",") if int(k) > 0]
    configure(bench_config(args, sizes[0]).device)
    results = [bench_batch(args, b, together) for b in sizes]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results))
        return 0
    for result in results:
        print_result(result)
    return 0


def print_result(result: dict) -> None:
    name = result["model"] + (f" ({result['stem']} stem)" if result["stem"] else "")
    reference = result["reference"]
    print(
        f"{name} on {result['dataset']}, batch {result['batch_size']}, augment {result['augment'] or 'none'}, "
        f"{result['steps']} timed steps, {result['device']}, {result['threads']} threads"
    )
    print(f"{'':46s}{'train img/s':>12s}{'eval img/s':>12s}{'train ratio':>13s}")
    print(
        f"{'reference (fp32, NCHW, DataLoader + PIL)':46s}"
        f"{reference['train_images_per_s']:12.0f}{reference['eval_images_per_s']:12.0f}{1:12.2f}x"
    )
    labels = {
        "eager": f"deepcls eager ({result['precision']}, channels_last{', compile' if result['compile'] else ''})",
        "graphs": "deepcls + CUDA graphs (manual capture)",
    }
    for mode, numbers in result["modes"].items():
        label = labels.get(mode, f"deepcls, {mode}" + (" (sum of the runs)" if "at once" in mode else ""))
        if numbers is None:
            print(f"{label:46s}{'n/a: CUDA graphs need a CUDA device':>37s}")
            continue
        evaluation = numbers.get("eval_images_per_s")
        ratio = numbers["train_images_per_s"] / reference["train_images_per_s"]
        eval_text = f"{evaluation:12.0f}" if evaluation else f"{'—':>12s}"
        print(f"{label:46s}{numbers['train_images_per_s']:12.0f}{eval_text}{ratio:12.2f}x")
    print(
        f"peak memory (process RSS): {result['peak_rss_gib']:.2f} GiB;"
        f" deepcls warm-up (incl. compile) {result['deepcls']['warmup_s']:.1f} s"
    )
