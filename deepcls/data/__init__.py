"""Data: dataset files (download, validation, fingerprints), batched augmentation, the device loader."""

from deepcls.data.augment import AUGMENTATIONS, augment, parse_augment
from deepcls.data.files import (
    DATASETS,
    OFFICIAL_FINGERPRINTS,
    DatasetSpec,
    Split,
    balanced_subset,
    dataset_cache,
    dataset_path,
    fingerprint,
    get_spec,
    load_dataset,
    resolve_data_dir,
)
from deepcls.data.loader import BatchLoader, epoch_seed

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "OFFICIAL_FINGERPRINTS",
    "BatchLoader",
    "DatasetSpec",
    "Split",
    "augment",
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
