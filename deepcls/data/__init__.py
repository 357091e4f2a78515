"""Data: what the datasets are (``specs``, plain data), their files (download, validation,
fingerprints), batched augmentation and the device loader.

The spec names import without torch, so configs and tables are read without it; the tensor-side
names load their module (and torch) on first use. ``deepcls.data.augment`` is the augmentation
module (its ``augment`` function chains them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deepcls.data.specs import (
    AUGMENTATION_NAMES,
    DATASETS,
    OFFICIAL_FINGERPRINTS,
    DatasetSpec,
    dataset_path,
    get_spec,
    parse_augment,
    resolve_data_dir,
)

if TYPE_CHECKING:
    from deepcls.data.augment import AUGMENTATIONS
    from deepcls.data.files import Split, balanced_subset, dataset_cache, fingerprint, load_dataset
    from deepcls.data.loader import BatchLoader, epoch_seed

_TENSOR_SIDE = {
    "AUGMENTATIONS": "augment",
    "Split": "files",
    "balanced_subset": "files",
    "dataset_cache": "files",
    "fingerprint": "files",
    "load_dataset": "files",
    "BatchLoader": "loader",
    "epoch_seed": "loader",
}


def __getattr__(name: str) -> Any:
    if name not in _TENSOR_SIDE:
        raise AttributeError(f"module 'deepcls.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"deepcls.data.{_TENSOR_SIDE[name]}"), name)


__all__ = [
    "AUGMENTATIONS",
    "AUGMENTATION_NAMES",
    "DATASETS",
    "OFFICIAL_FINGERPRINTS",
    "BatchLoader",
    "DatasetSpec",
    "Split",
    "balanced_subset",
    "dataset_cache",
    "dataset_path",
    "epoch_seed",
    "fingerprint",
    "get_spec",
    "load_dataset",
    "parse_augment",
    "resolve_data_dir",
]
