"""The report's tables as grids of RunConfigs at each profile, and the runner for them.

A paper row (deepcls/reference/paper_tables.csv) plus a profile gives one RunConfig per
seed. The report leaves some details unstated; they are decided once, here:

- "flip+rotation" is ``flip,rotate`` with rotations uniform in +-15 degrees;
  brightness/contrast factors are uniform in [0.7, 1.3]; "yes" (MNIST and VGG tables) is
  the report's standard set ``flip,rotate``.
  Table 1 row 1 names "horizontal flip" twice: the ``resnet_vflip`` probe table (no
  reported numbers) tests the reading that one is a vertical flip.
- ResNets start from the ImageNet stem (7x7/s2 + max-pool), the report's baseline;
  the stem ablation switches to the 3x3/s1 CIFAR stem.
- VGGs use the ``reduced`` widths (16 -> 128 channels) that the report's text says it
  trained (its Figure 5 prints the standard widths), the report's 4096-wide classifier, no
  batch norm. VGG-7/VGG-9 are deepcls's definitions (deepcls.models.vgg).
- MNIST is zero-padded to 32x32 for models with five poolings (VGG-11/16/19).
- Training runs in bf16 autocast; the highest train accuracy is measured on the augmented
  batches during the epoch (as the report's train < test rows show it did).
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from deepcls.config import RunConfig
from deepcls.errors import ConfigError, DeepclsError
from deepcls.reference import paper_table
from deepcls.store import RunStore
from deepcls.train import bar_timing, fit, show_progress, threads_per_job

AUGMENT = {
    "none": (), "no": (),
    "yes": ("flip", "rotate"),
    "flip+rotation": ("flip", "rotate"),
    "flip+rotation+brightness_contrast": ("flip", "rotate", "brightness_contrast"),
}
VARIANTS = {  # paper_tables.csv "variant" -> RunConfig changes
    "": {},
    "se": {"se": True},
    "stem3x3": {"stem": "cifar"},
    "first_kernel5": {"first_kernel": 5},
    "init_default": {"init": "default"},
    "init_xavier": {"init": "xavier"},
    "init_he": {"init": "he"},
    "vflip": {"augment": ("flip", "vflip", "rotate")},
}


@dataclass(frozen=True)
class Profile:
    """How a profile scales the report's settings."""

    name: str
    description: str
    epochs: float | int | None  # a fraction scales the report's epochs; an int replaces them
    subset: dict[str, int | None]  # dataset -> training samples (None: all)
    test_subset: dict[str, int | None]


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", "seconds per run, 256 training / 256 test images, 2 epochs: checks the "
                "machinery, the numbers mean nothing", 2, {"mnist": 256, "cifar10": 256},
                {"mnist": 256, "cifar10": 256}),
        Profile("quick", "real data, reduced: 10% of the report's epochs (at least 2) on a "
                "class-balanced 3,000-image training subset, tested on 2,000 test images",
                0.1, {"mnist": 3000, "cifar10": 3000}, {"mnist": 2000, "cifar10": 2000}),
        Profile("paper", "exactly the report's epochs, batch sizes, optimizers, learning rates "
                "and augmentations on the full datasets", 1.0, {}, {}),
        Profile("best", "deepcls's improved recipe on the report's models and epochs: SGD "
                "Nesterov, one-cycle lr, weight decay, label smoothing, flip+crop(+cutout), "
                "batch norm in VGGs", 1.0, {}, {}),
    )
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


def _init_rows() -> pd.DataFrame:
    """The init claim has no numbers: compare default, Xavier and He on Table 2 row 3."""
    base = paper_table("resnet_cifar10").query("row == 3").iloc[0]
    rows = []
    for i, scheme in enumerate(("default", "xavier", "he"), start=1):
        row = base.copy()
        row["table"], row["row"], row["variant"] = "resnet_init", i, f"init_{scheme}"
        row["highest_train_acc"] = row["highest_test_acc"] = np.nan
        row["source"] = "text 4.3 item 7 (claim: Xavier beats He on CIFAR-10; no numbers given)"
        rows.append(row)
    return pd.DataFrame(rows)


def _vflip_rows() -> pd.DataFrame:
    """deepcls's probe of the report's augmentation: Table 1 row 1 names "horizontal flip"
    twice and its Adam flip+rotation rows train no higher than they test; is one a vertical
    flip? Table 2 row 3 with flip + vertical flip + rotation (no reported numbers)."""
    row = paper_table("resnet_cifar10").query("row == 3").iloc[0].copy()
    row["table"], row["row"], row["variant"] = "resnet_vflip", 1, "vflip"
    row["highest_train_acc"] = row["highest_test_acc"] = np.nan
    row["source"] = "deepcls probe: Table 1 row 1 lists 'horizontal flip' twice; one read as vertical"
    return pd.DataFrame([row])


def _baseline_rows() -> pd.DataFrame:
    """The SE, stem and vflip ablations compare against Table 2 row 3: shown as their row 0."""
    base = paper_table("resnet_cifar10").query("row == 3").iloc[0]
    rows = []
    for table in ("resnet_se", "resnet_stem", "resnet_vflip"):
        row = base.copy()
        row["table"], row["row"], row["source"] = table, 0, "baseline: Table 2 row 3"
        rows.append(row)
    return pd.DataFrame(rows)


def table_rows(table: str | None = None) -> pd.DataFrame:
    """Reported rows (one per experiment), the init ablation expanded into its three runs, the
    vflip probe appended, and the SE/stem/vflip ablations given their baseline as row 0."""
    rows = paper_table()
    tables = list(dict.fromkeys(rows["table"]))
    tables.insert(tables.index("resnet_init") + 1, "resnet_vflip")
    order = {t: i for i, t in enumerate(tables)}
    rows = pd.concat([rows[rows["table"] != "resnet_init"], _init_rows(), _vflip_rows(), _baseline_rows()],
                     ignore_index=True)
    rows = rows.sort_values(["table", "row"], key=lambda c: c.map(order) if c.name == "table" else c)
    if table is not None:
        if table not in set(rows["table"]):
            raise ConfigError(f"unknown table {table!r}; known: {', '.join(dict.fromkeys(rows['table']))}")
        rows = rows[rows["table"] == table]
    return rows.reset_index(drop=True)


def row_config(row: pd.Series, profile: str, seed: int = 0) -> RunConfig:
    """The RunConfig of one reported row at a profile."""
    prof = get_profile(profile)
    dataset, model = row["dataset"], row["model"]
    epochs = int(row["epochs"])
    if isinstance(prof.epochs, float):
        epochs = max(2, round(epochs * prof.epochs))
    elif isinstance(prof.epochs, int):
        epochs = prof.epochs
    family = "resnet" if model.startswith("resnet") else "vgg"
    options = {"stem": "imagenet", "se": False} if family == "resnet" else {"width": "reduced"}
    settings = dict(
        dataset=dataset, model=model, epochs=epochs, batch_size=int(row["batch_size"]),
        optimizer=row["optimizer"], lr=float(row["lr"]), augment=AUGMENT[row["augmentation"]],
        seed=seed, subset=prof.subset.get(dataset), test_subset=prof.test_subset.get(dataset),
        profile=profile, **options,
    )
    settings.update(VARIANTS[row["variant"]])
    if profile == "best":
        settings.update(best_recipe(dataset, family))
    return RunConfig(**settings)


def best_recipe(dataset: str, family: str) -> dict:
    """deepcls's improved training recipe (same model and epochs as the row)."""
    recipe = dict(optimizer="sgd", lr=0.05 if family == "vgg" else 0.1, momentum=0.9, nesterov=True,
                  weight_decay=5e-4, schedule="onecycle", warmup=0.15, label_smoothing=0.1,
                  batch_size=128, augment=("flip", "crop", "cutout") if dataset == "cifar10" else ("crop",))
    if family == "vgg":
        recipe["batch_norm"] = True
    return recipe


def table_grid(table: str, profile: str, seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """One line per (row, seed): the reported numbers and the RunConfig that reproduces them."""
    lines = []
    for _, row in table_rows(table).iterrows():
        for seed in seeds:
            lines.append({**row.to_dict(), "seed": seed, "config": row_config(row, profile, seed)})
    return pd.DataFrame(lines)


def run_grid(
    configs: Iterable[RunConfig],
    *,
    results_dir: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
    progress: bool | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """Run what the store does not have yet (identical configs once) and return their rows.

    ``jobs`` > 1 trains that many runs at once in worker processes, each with its share of the
    cores. Lengths of one extendable config stay in one worker, shortest first, so each
    continues the one before.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    store = RunStore(results_dir)
    unique = list(dict.fromkeys(configs))
    todo = [c for c in unique if force or not store.has(c)]
    chains = extension_chains(todo)
    bar = tqdm(total=len(todo), desc=f"runs ({len(unique) - len(todo)} of {len(unique)} stored)",
               disable=not show_progress(progress) or not todo, unit="run", position=0,
               **bar_timing())
    args = (results_dir, data_dir, force, progress)
    if jobs == 1 or len(chains) < 2:
        for chain in chains:
            _report_failures(_run_chain(chain, *args), bar)
    else:
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for slot in range(1, jobs + 1):
            slots.put(slot)
        with ProcessPoolExecutor(max_workers=min(jobs, len(chains)), mp_context=context,
                                 initializer=_start_worker, initargs=(threads_per_job(jobs), slots)) as pool:
            futures = [pool.submit(_run_chain, chain, *args) for chain in chains]
            try:
                for future in as_completed(futures):
                    _report_failures(future.result(), bar)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    bar.close()
    return store.frame(c for c in unique if store.status(c) is not None)


def extension_chains(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """Group the lengths of each extendable config (shortest first); other configs stand alone."""
    chains: dict[RunConfig, list[RunConfig]] = {}
    for config in configs:
        chains.setdefault(config.lineage, []).append(config)
    return [sorted(chain, key=lambda c: c.epochs) for chain in chains.values()]


_BAR_POSITION: int | None = None  # this worker's progress-bar line


def _start_worker(threads: int, slots: multiprocessing.Queue) -> None:
    global _BAR_POSITION
    torch.set_num_threads(threads)
    _BAR_POSITION = slots.get()


def _run_chain(chain: list[RunConfig], results_dir: str | None, data_dir: str | None, force: bool,
               progress: bool | None) -> list[tuple[str, str | None]]:
    """Fit each config in turn; (run id, error or None) for each. Bad input (DeepclsError) raises."""
    outcomes = []
    for config in chain:
        try:
            fit(config, results_dir=results_dir, data_dir=data_dir, force=force, progress=progress,
                bar_position=_BAR_POSITION)
            outcomes.append((config.run_id, None))
        except DeepclsError:
            raise  # bad input stops the grid
        except Exception as err:  # stored as status "failed"; the other runs go on
            outcomes.append((config.run_id, f"{type(err).__name__}: {err}"))
    return outcomes


def _report_failures(outcomes: list[tuple[str, str | None]], bar: tqdm) -> None:
    for run_id, error in outcomes:
        if error is not None:
            warnings.warn(f"run {run_id} failed: {error}", stacklevel=3)
        bar.update(1)


def results_table(
    tables: str | Sequence[str],
    profile: str,
    seeds: Sequence[int] = (0,),
    *,
    rows: Sequence[int] | None = None,
    results_dir: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
    run: bool = True,
    progress: bool | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """Reported beside reproduced, one line per row (mean and std over seeds).

    ``rows`` keeps only those row numbers. With ``run=False`` nothing is trained: rows
    not in the store show as pending; ``jobs`` as in run_grid.
    """
    tables = [tables] if isinstance(tables, str) else list(tables)
    grid = pd.concat([table_grid(t, profile, seeds) for t in tables], ignore_index=True)
    if rows is not None:
        grid = grid[grid["row"].isin(rows)].reset_index(drop=True)
    if run:
        run_grid(grid["config"], results_dir=results_dir, data_dir=data_dir, force=force, progress=progress,
                 jobs=jobs)
    store = RunStore(results_dir)
    stored = store.frame(c for c in dict.fromkeys(grid["config"]) if store.status(c) is not None)
    metrics = stored.set_index("run_id") if not stored.empty else pd.DataFrame()
    grid["run_id"] = [c.run_id for c in grid["config"]]
    row_of = {(table, run_id): f"row {row}" for table, run_id, row in zip(grid["table"], grid["run_id"], grid["row"])}
    lines = []
    for (table, row), group in grid.groupby(["table", "row"], sort=False):
        first = group.iloc[0]
        done = [metrics.loc[r] for r in group["run_id"] if r in metrics.index]
        shorter = {e for m in done if isinstance(e := m.get("extended_from"), str)}
        lines.append({
            "table": table, "row": row, "model": first["model"], "dataset": first["dataset"],
            "setting": describe(first["config"]), "source": first["source"],
            "reported_train": first["highest_train_acc"], "reported_test": first["highest_test_acc"],
            **_aggregate(done, len(group)),
            "epochs": first["config"].epochs, "batch_size": first["config"].batch_size,
            "profile": profile, "run_ids": ",".join(group["run_id"]),
            "continues": ", ".join(sorted(row_of.get((table, r), r) for r in shorter)),
            "progress": "; ".join(p for c in group["config"] if not store.has(c) and (p := store.progress(c))),
        })
    table_frame = pd.DataFrame(lines)
    table_frame["delta_test"] = table_frame["test_mean"] - table_frame["reported_test"]
    return table_frame


def _aggregate(done: list[pd.Series], expected: int) -> dict:
    if not done:
        return {"train_mean": np.nan, "test_mean": np.nan, "test_std": np.nan, "final_test_mean": np.nan,
                "seeds_done": 0, "wall_time_s": np.nan, "status": "pending", "device": None}
    frame = pd.DataFrame(done)
    statuses = sorted(set(frame["status"]))
    status = statuses[0] if len(statuses) == 1 else "/".join(statuses)
    if len(done) < expected:
        status += f" ({len(done)}/{expected} seeds)"
    return {
        "train_mean": frame["highest_train_acc"].astype(float).mean(),
        "test_mean": frame["highest_test_acc"].astype(float).mean(),
        "test_std": frame["highest_test_acc"].astype(float).std(ddof=1) if len(done) > 1 else np.nan,
        "final_test_mean": frame["final_test_acc"].astype(float).mean(),
        "seeds_done": len(done),
        "wall_time_s": frame["wall_time_s"].astype(float).sum(),
        "status": status,
        "device": " | ".join(dict.fromkeys(frame["device"].astype(str))),
    }


def describe(config: RunConfig) -> str:
    """A short human label of what distinguishes a run."""
    parts = [config.model]
    if config.stem == "cifar":
        parts.append("3x3 stem")
    if config.se:
        parts.append("SE")
    if config.first_kernel == 5:
        parts.append("5x5 first conv")
    if config.batch_norm:
        parts.append("BN")
    if config.init != "default":
        parts.append(f"{config.init} init")
    parts.append(f"{config.optimizer} lr {config.lr:g}")
    if config.schedule != "constant":
        parts.append(config.schedule)
    parts.append(f"bs {config.batch_size}")
    parts.append("+".join(config.augment) or "no aug")
    return ", ".join(parts)


ALL_TABLES = tuple(dict.fromkeys(table_rows()["table"]))
