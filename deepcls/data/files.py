"""Dataset files: ``<data-dir>/<name>.npz``, validated, fingerprinted, downloaded once via torchvision.

Canonical on-disk form: ``<data-dir>/<name>.npz`` holding ``x_train``, ``y_train``,
``x_test``, ``y_test`` (uint8 images NHW or NHWC, int64 labels). When the file is
missing it is obtained once through torchvision's downloaders and written in that form.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepcls.atomic import write_with
from deepcls.data.specs import DatasetSpec, dataset_path, get_spec
from deepcls.errors import ConfigError, DataError


@dataclass(frozen=True)
class Split:
    """One split as uint8 images (N, H, W, C) and int64 labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


_fingerprints: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime) -> fingerprint
_CACHE: dict[tuple[str, int, int, int], tuple[Split, Split]] | None = None  # on inside dataset_cache()


@contextmanager
def dataset_cache() -> Iterator[None]:
    """Within this block each dataset file is read once (keyed by path, size and mtime): a process
    that starts many runs (deepcls.execution.interleaved) does not decompress CIFAR-10 for each. Callers
    must not modify the returned tensors in place (the training code never does)."""
    global _CACHE
    outer, _CACHE = _CACHE, {} if _CACHE is None else _CACHE
    try:
        yield
    finally:
        _CACHE = outer


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> tuple[Split, Split]:
    """Load ``(train, test)`` of a dataset, validated; download it first if missing."""
    spec = get_spec(name)
    path = _existing(spec, dataset_path(name, data_dir), download)
    key = _file_key(path)
    if _CACHE is not None and key in _CACHE:
        return _CACHE[key]
    arrays = _read_npz(path)
    _validate(spec, path, arrays)
    canonical = {k: _nhwc(v) if k.startswith("x_") else v for k, v in arrays.items()}
    if key not in _fingerprints:
        _fingerprints[key] = _hash_arrays(canonical)
    splits: tuple[Split, Split] = tuple(  # type: ignore[assignment]
        Split(torch.from_numpy(canonical[f"x_{s}"]), torch.from_numpy(canonical[f"y_{s}"])) for s in ("train", "test")
    )
    if _CACHE is not None:
        _CACHE[key] = splits
    return splits


def fingerprint(name: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """sha256 of a dataset file's arrays (images as NHWC uint8, labels int64), or None when the file
    is missing. Hashing the arrays, not the bytes, makes it independent of how the npz was written;
    computed once per file version (path, inode, size, mtime) per process."""
    path = dataset_path(name, data_dir)
    if not path.exists():
        return None
    key = _file_key(path)
    if key not in _fingerprints:
        load_dataset(name, data_dir, download=False)
    return _fingerprints.get(key) or _fingerprints[_file_key(path)]


def _file_key(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns


def _hash_arrays(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _existing(spec: DatasetSpec, path: Path, download: bool) -> Path:
    """``path`` once it exists (downloaded if allowed), or one clear error."""
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(f"{path} is a symbolic link to a missing file ({os.readlink(path)})") from None
        if not download:
            raise DataError(_missing_message(spec, path)) from None
        _download_to_npz(spec, path)
    except OSError as err:  # a symlink loop (ELOOP), a file in place of a folder, no permission
        raise DataError(f"dataset file {path} cannot be opened ({err.strerror or err})") from None
    return path


def _missing_message(spec: DatasetSpec, path: Path) -> str:
    return (
        f"dataset file {path} not found and could not be downloaded; put {spec.name}.npz "
        f"(keys x_train, y_train, x_test, y_test) there, or set DEEPCLS_DATA_DIR / --data-dir "
        f"to a folder holding it, or run once with internet access"
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        zipfile.ZipFile(path).close()  # not a zip: np.load would return a .npy array or unpickle
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path} is not a readable .npz file ({err.__class__.__name__}: {err})") from None


def _validate(spec: DatasetSpec, path: Path, arrays: dict[str, np.ndarray]) -> None:
    expected = {"x_train", "y_train", "x_test", "y_test"}
    if set(arrays) != expected:
        raise DataError(f"{path}: expected keys {sorted(expected)}, found {sorted(arrays)}")
    h, w, c = spec.image_shape
    for split, size in (("train", spec.train_size), ("test", spec.test_size)):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} has dtype {x.dtype}, expected uint8")
        if y.dtype != np.int64:
            raise DataError(f"{path}: y_{split} has dtype {y.dtype}, expected int64")
        shapes = {(size, h, w, c)} | ({(size, h, w)} if c == 1 else set())
        if x.shape not in shapes:
            raise DataError(f"{path}: x_{split} has shape {x.shape}, expected {(size, h, w, c)}")
        if y.shape != (size,):
            raise DataError(f"{path}: y_{split} has shape {y.shape}, expected {(size,)}")
        if y.size and (y.min() < 0 or y.max() >= spec.num_classes):
            raise DataError(
                f"{path}: y_{split} has labels in [{y.min()}, {y.max()}], expected 0..{spec.num_classes - 1}"
            )


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x[..., None] if x.ndim == 3 else x)


def _download_to_npz(spec: DatasetSpec, path: Path) -> None:
    """Fetch with torchvision and write the canonical npz atomically."""
    import torchvision

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    raw = path.parent / f"{spec.name}-torchvision"
    created = [p for p in (raw, *raw.parents) if not p.exists()]  # removed again if the download fails
    try:
        splits = {s: cls(str(raw), train=(s == "train"), download=True) for s in ("train", "test")}
    except Exception as err:  # network errors come in many types
        for folder in created:  # the innermost first: leave no empty folders behind
            shutil.rmtree(folder, ignore_errors=True)
        reason = " ".join(str(err).split())  # torchvision's messages span several lines
        raise DataError(f"{_missing_message(spec, path)} (download failed: {reason})") from None
    arrays = {}
    for s, ds in splits.items():
        data = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
        arrays[f"x_{s}"] = data.astype(np.uint8)
        arrays[f"y_{s}"] = np.asarray(ds.targets, dtype=np.int64)
    write_with(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def balanced_subset(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """Indices of the first ``n`` samples taken round-robin over classes, in index order."""
    if n <= 0:
        raise ConfigError(f"subset must be positive, got {n}")
    if n >= len(labels):
        return torch.arange(len(labels))
    per_class = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    quota = [n // num_classes + (1 if c < n % num_classes else 0) for c in range(num_classes)]
    picked = [idx[:q] for idx, q in zip(per_class, quota)]
    return torch.sort(torch.cat(picked)).values
