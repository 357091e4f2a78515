"""What the datasets and augmentations are, as plain data: shapes, classes, normalisation, file
locations and augmentation names.

Configs, tables and the ledger read these without importing torch (``deepcls results``, ``ledger``
and ``--help`` start in well under a second); the tensors live in ``files``, ``augment`` and
``loader``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepcls.errors import ConfigError, unknown


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project needs to know about one dataset."""

    name: str
    torchvision_class: str
    image_shape: tuple[int, int, int]  # H, W, C as stored
    train_size: int
    test_size: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return self.image_shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "mnist",
            "MNIST",
            (28, 28, 1),
            60_000,
            10_000,
            tuple(str(d) for d in range(10)),
            (0.1307,),
            (0.3081,),
        ),
        DatasetSpec(
            "cifar10",
            "CIFAR10",
            (32, 32, 3),
            50_000,
            10_000,
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            (0.4914, 0.4822, 0.4465),
            (0.2470, 0.2435, 0.2616),
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a known dataset, or one clear error."""
    if name not in DATASETS:
        raise ConfigError(unknown("dataset", [name], DATASETS, quoted=True))
    return DATASETS[name]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$DEEPCLS_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get("DEEPCLS_DATA_DIR") or "data")


def dataset_path(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    return resolve_data_dir(data_dir) / f"{get_spec(name).name}.npz"


# sha256 of the arrays (see fingerprint) of the official datasets as torchvision downloads them: every
# committed run was trained on these, so a run stored without a fingerprint stands for them.
OFFICIAL_FINGERPRINTS = {
    "mnist": "0f9dbd91622c5946c6f47956744c587f9f43b250cd9d44b83bb4139a80bc4715",
    "cifar10": "b1c38238b4bb29978b18b0c2f0a18fb6817e0926d8bc7613fe6a027d14468029",
}

# The batched augmentations of deepcls.data.augment, by name, in the order the help lists them.
AUGMENTATION_NAMES = ("flip", "vflip", "crop", "rotate", "brightness_contrast", "cutout")


def parse_augment(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"flip,crop"`` or ``["flip", "crop"]`` -> ``("flip", "crop")``; "" / "none" -> ()."""
    if spec is None:
        return ()
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip() and n.strip() != "none"]
    for n in names:
        if n not in AUGMENTATION_NAMES:
            raise ConfigError(unknown("augmentation", [n], AUGMENTATION_NAMES, quoted=True))
    # applying one twice is another experiment (rotate twice: a wider angle distribution), not an alias
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"augmentation(s) listed twice: {', '.join(repeated)}; name each once")
    return tuple(names)
