"""``python -m deepcls.bench.gpu_check``: on a CUDA machine, do CUDA graphs and runs taking turns
(deepcls.execution.interleaved) train what an eager run alone trains?

For a ResNet (BN, SE) and two VGGs (dropout, with and without BN, Adam and SGD) on MNIST it trains
one epoch of 20 full batches and a partial one three ways: eager alone, with CUDA graphs alone,
and with graphs all three at once in their lanes; then evaluates (full batches of 1000 through the
eval graph, the rest eagerly). It prints the largest relative difference of the per-step losses
and of the test loss, and exits 1 when one exceeds its tolerance. cuDNN runs deterministic here so
that the comparison is of the code paths, not of kernel choice. Needs only mnist.npz (a few
seconds on a GPU). Without a GPU it checks only "together vs alone", eagerly on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from deepcls.bench.timing import synchronize
from deepcls.config import RunConfig
from deepcls.data import epoch_seed
from deepcls.engine.fit import Trainer
from deepcls.execution.interleaved import Lane

BATCH, FULL_BATCHES = 32, 20
COMMON = dict(dataset="mnist", epochs=1, subset=BATCH * FULL_BATCHES + 10, test_subset=2500, batch_size=BATCH)
CONFIGS = (
    RunConfig(**COMMON, model="resnet18", se=True, augment="flip,rotate"),
    RunConfig(**COMMON, model="vgg7", width="reduced", classifier_width=256),
    RunConfig(**COMMON, model="vgg7", width="reduced", batch_norm=True, optimizer="sgd", lr=0.01, seed=1),
)
TOLERANCE = {"graphs vs eager": 1e-3, "together vs alone": 1e-5}


def one_epoch(trainers: Sequence[Trainer], lanes: Sequence[Lane]) -> list[list[float]]:
    """Per-step losses then [test loss, test acc] of each trainer, stepping them in turn."""
    losses: list[list[torch.Tensor]] = [[] for _ in trainers]
    batches = []
    for trainer, lane in zip(trainers, lanes):
        with lane:
            trainer.model.train()
            torch.manual_seed(epoch_seed(trainer.config.seed, 0))  # as Trainer.train_epoch does
            trainer.set_lr(trainer.config.lr)
            batches.append(trainer.train_loader.epoch(0))
    for _ in range(len(trainers[0].train_loader)):
        for k, (trainer, lane) in enumerate(zip(trainers, lanes)):
            with lane:
                x, y = next(batches[k])
                loss, _ = trainer.step(x, y)
                losses[k].append(loss.clone())  # a graph's output is overwritten by its next replay
    synchronize()
    results = []
    for k, (trainer, lane) in enumerate(zip(trainers, lanes)):
        with lane:
            test_loss, test_acc, _ = trainer.evaluate()
        results.append([float(v) for v in losses[k]] + [test_loss, test_acc])
    return results


def trained(device: str, graphs: bool, together: bool, data_dir: str | None) -> list[list[float]]:
    configs = [c.replace(device=device, graphs=graphs) for c in CONFIGS]
    if together:
        lanes = [Lane(torch.device(device)) for _ in configs]
        trainers = []
        for config, lane in zip(configs, lanes):
            with lane:
                trainers.append(Trainer(config, data_dir))
        return one_epoch(trainers, lanes)
    out = []
    for config in configs:
        lane = Lane(torch.device(device))
        with lane:
            trainer = Trainer(config, data_dir)
        out += one_epoch([trainer], [lane])
    return out


def largest_difference(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) / max(abs(y), 1e-6) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepcls.bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="default: $DEEPCLS_DATA_DIR, else ./data")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    alone = trained(device, graphs=False, together=False, data_dir=args.data_dir)
    runs = {"eager alone": alone}
    comparisons = {"together vs alone": ("together", "eager alone")}
    if device == "cuda":
        runs["graphs"] = trained(device, graphs=True, together=False, data_dir=args.data_dir)
        comparisons = {"graphs vs eager": ("graphs", "eager alone"), "together vs alone": ("together", "graphs")}
    runs["together"] = trained(device, graphs=device == "cuda", together=True, data_dir=args.data_dir)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (no CUDA graphs)"
    print(f"{name}, torch {torch.__version__}; {FULL_BATCHES} full batches + 1 partial, then evaluation")
    failed = False
    for label, (a, b) in comparisons.items():
        diff = largest_difference(runs[a], runs[b])
        ok = diff <= TOLERANCE[label]
        failed |= not ok
        verdict = "ok" if ok else "FAILED"
        print(f"  {label:18s} largest relative difference {diff:.2e} (tolerance {TOLERANCE[label]:.0e}): {verdict}")
    for i, config in enumerate(CONFIGS):
        losses = " / ".join(f"{r[i][-3]:.5f}" for r in runs.values())
        accuracy = " / ".join(f"{r[i][-1]:.2f}" for r in runs.values())
        print(f"  {config.model:9s} last step loss {losses}  test acc {accuracy}  ({', '.join(runs)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
