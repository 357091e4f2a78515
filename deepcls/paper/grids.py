"""What to run: the report's tables (``paper_tables.csv``, one row per reported run) as grids of
RunConfigs at each profile. Trains nothing.

A paper row plus a profile gives one RunConfig per
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

from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from deepcls.config import PROFILES, RunConfig, get_profile
from deepcls.errors import ConfigError, unknown
from deepcls.models import Family, family_of

REPORT_TITLE = "Deeper Networks for Image Classification"

# Claims the report makes in prose, with the numbers it gives.
SE_BIRD_AS_AIRPLANE = {"without_se": 113, "with_se": 66}
STEM_BASELINE_TEST_ACC = 81.39


@lru_cache(maxsize=1)
def _paper_table() -> pd.DataFrame:
    with resources.files(__package__).joinpath("paper_tables.csv").open() as f:
        table = pd.read_csv(f, dtype={"variant": "string", "augmentation": "string"})
    table["variant"] = table["variant"].fillna("")
    return table


def paper_table(table: str | None = None) -> pd.DataFrame:
    """The reported rows, all or those of one table, as a fresh DataFrame (empty for a table deepcls
    adds without reported rows, such as ``resnet_vflip``). An unknown table is a ConfigError naming
    the known ones, not an empty frame."""
    frame = _paper_table()
    if table is not None:
        if table not in set(frame["table"]):
            known = dict.fromkeys(table_rows()["table"])
            if table not in known:
                raise ConfigError(unknown("table", [table], known, quoted=True))
        frame = frame[frame["table"] == table]
    return frame.reset_index(drop=True).copy()


AUGMENT = {
    "none": (),
    "no": (),
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
    "width_standard": {"width": "standard"},
}


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


def _width_rows() -> pd.DataFrame:
    """Text 4.4 item 1: VGG-16 at the standard widths (64 -> 512) stayed at 10% train and test
    accuracy on CIFAR-10, which is why the report moved to the reduced widths. VGG table row 3
    (no augmentation, batch 32) at the standard widths."""
    row = paper_table("vgg_cifar10").query("row == 3").iloc[0].copy()
    row["table"], row["row"], row["variant"] = "vgg_width", 1, "width_standard"
    row["highest_train_acc"] = row["highest_test_acc"] = 10.0
    row["source"] = "text 4.4 item 1 (standard widths 64 -> 512: train and test at 10%)"
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
    vflip probe and the standard-width VGG-16 appended, and the SE/stem/vflip ablations given
    their baseline as row 0."""
    rows = paper_table()
    tables = list(dict.fromkeys(rows["table"]))
    tables.insert(tables.index("resnet_init") + 1, "resnet_vflip")
    tables.insert(tables.index("vgg_cifar10") + 1, "vgg_width")
    order = {t: i for i, t in enumerate(tables)}
    rows = pd.concat(
        [rows[rows["table"] != "resnet_init"], _init_rows(), _vflip_rows(), _width_rows(), _baseline_rows()],
        ignore_index=True,
    )
    rows = rows.sort_values(["table", "row"], key=lambda c: c.map(order) if c.name == "table" else c)
    if table is not None:
        if table not in set(rows["table"]):
            raise ConfigError(unknown("table", [table], rows["table"], quoted=True))
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
    family = family_of(model)
    settings = dict(
        dataset=dataset,
        model=model,
        epochs=epochs,
        batch_size=int(row["batch_size"]),
        optimizer=row["optimizer"],
        lr=float(row["lr"]),
        augment=AUGMENT[row["augmentation"]],
        seed=seed,
        subset=prof.subset.get(dataset),
        test_subset=prof.test_subset.get(dataset),
        profile=profile,
        **family.defaults,
    )
    settings.update(VARIANTS[row["variant"]])
    if profile == "best":
        settings.update(best_recipe(dataset, family))
    return RunConfig(**settings)


def best_recipe(dataset: str, family: Family) -> dict:
    """deepcls's improved training recipe (same model and epochs as the row): the family's declared
    peak learning rate, and batch norm wherever the family offers it as an option."""
    recipe = dict(
        optimizer="sgd",
        lr=family.best_lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        schedule="triangle",
        warmup=0.15,
        label_smoothing=0.1,
        batch_size=128,
        augment=("flip", "crop", "cutout") if dataset == "cifar10" else ("crop",),
    )
    if "batch_norm" in family.options:
        recipe["batch_norm"] = True
    return recipe


def table_grid(table: str, profile: str, seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """One line per (row, seed): the reported numbers and the RunConfig that reproduces them. A seed
    given twice is a ConfigError: it would count one run as two seeds."""
    seeds = list(seeds)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat a value: {seeds} (each seed is one run)")
    lines = []
    for _, row in table_rows(table).iterrows():
        for seed in seeds:
            lines.append({**row.to_dict(), "seed": seed, "config": row_config(row, profile, seed)})
    return pd.DataFrame(lines)


def grid(
    tables: str | Sequence[str], profile: str, seeds: Sequence[int] = (0,), rows: Sequence[int] | None = None
) -> pd.DataFrame:
    """The lines of several tables (``rows``: only these row numbers), as :func:`table_grid`.

    A selection that selects nothing is a ConfigError naming what there is, never an empty frame
    (which reads as "nothing to run"): no table, no seed, no row, an unknown table, a row number
    none of the tables has, or a table named twice (its runs would count twice).
    """
    tables = [tables] if isinstance(tables, str) else list(tables)
    if not tables:
        raise ConfigError(f"no table selected; known: {', '.join(ALL_TABLES)}")
    if repeated := sorted({t for t in tables if tables.count(t) > 1}):
        raise ConfigError(f"table(s) selected twice: {', '.join(repeated)}; name each once")
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("no seed selected: give at least one seed (each seed is one run)")
    lines = pd.concat([table_grid(t, profile, seeds) for t in tables], ignore_index=True)
    if rows is not None:
        rows, there = list(rows), list(dict.fromkeys(lines["row"]))
        unknown = [r for r in rows if r not in there]
        if not rows or unknown:
            missing = f"no row {', '.join(map(str, unknown))}" if unknown else "no row selected"
            raise ConfigError(f"{missing} in table(s) {', '.join(tables)}; rows there: {', '.join(map(str, there))}")
        lines = lines[lines["row"].isin(rows)]
    return lines.reset_index(drop=True)


def describe(config: RunConfig) -> str:
    """A short human label of what distinguishes a run."""
    parts = [config.model]
    if config.stem == "cifar":
        parts.append("3x3 stem")
    if config.se:
        parts.append("SE")
    if config.first_kernel == 5:
        parts.append("5x5 first conv")
    if config.width == "standard":
        parts.append("standard widths")
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


def row_label(line: Mapping[str, Any]) -> str:
    """The label of a grid line (a row of :func:`grid`): :func:`describe` of its config, then its
    variant by name with the changes ``describe`` does not show, so that a variant of one's own
    (``VARIANTS``) is told apart from its baseline: "resnet18, adam lr 0.001, bs 32, no aug,
    smooth (label_smoothing 0.1)". A change the profile overrides (the ``best`` recipe's
    augmentation) is no change and is not shown."""
    config, variant = line["config"], line.get("variant")
    label = describe(config)
    changes = VARIANTS.get(variant, {}) if isinstance(variant, str) else {}
    if not changes or config.profile not in PROFILES:
        return label
    base = row_config(pd.Series({**line, "variant": ""}), config.profile, config.seed)
    hidden = [
        f"{key} {_shown(getattr(config, key))}"
        for key in changes
        if getattr(config, key) != getattr(base, key) and describe(config.replace(**{key: getattr(base, key)})) == label
    ]
    return f"{label}, {variant} ({', '.join(hidden)})" if hidden else label


def _shown(value: Any) -> str:
    return "+".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


ALL_TABLES = tuple(dict.fromkeys(table_rows()["table"]))
