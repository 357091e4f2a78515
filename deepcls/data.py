"""Datasets as uint8 tensors, a device-resident batch loader and batched augmentation.

Canonical on-disk form: ``<data-dir>/<name>.npz`` holding ``x_train``, ``y_train``,
``x_test``, ``y_test`` (uint8 images NHW or NHWC, int64 labels). When the file is
missing it is obtained once through torchvision's downloaders and written in that form.

The hot path has no PIL, no DataLoader and no per-image Python: a split lives on the
training device as one uint8 NHWC tensor, batches are index slices, and every
augmentation is computed for the whole batch at once with per-sample random parameters.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepcls.errors import ConfigError, DataError
from deepcls.fileio import write_with

__all__ = [
    "DATASETS",
    "AUGMENTATIONS",
    "DatasetSpec",
    "Split",
    "BatchLoader",
    "resolve_data_dir",
    "dataset_path",
    "load_dataset",
    "fingerprint",
    "OFFICIAL_FINGERPRINTS",
    "balanced_subset",
    "augment",
    "parse_augment",
]


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
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$DEEPCLS_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get("DEEPCLS_DATA_DIR") or "data")


def dataset_path(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    return resolve_data_dir(data_dir) / f"{get_spec(name).name}.npz"


@dataclass(frozen=True)
class Split:
    """One split as uint8 images (N, H, W, C) and int64 labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


# sha256 of the arrays (see fingerprint) of the official datasets as torchvision downloads them: every
# committed run was trained on these, so a run stored without a fingerprint stands for them.
OFFICIAL_FINGERPRINTS = {
    "mnist": "0f9dbd91622c5946c6f47956744c587f9f43b250cd9d44b83bb4139a80bc4715",
    "cifar10": "b1c38238b4bb29978b18b0c2f0a18fb6817e0926d8bc7613fe6a027d14468029",
}
_fingerprints: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime) -> fingerprint
_CACHE: dict[tuple[str, int, int, int], tuple[Split, Split]] | None = None  # on inside dataset_cache()


@contextmanager
def dataset_cache() -> Iterator[None]:
    """Within this block each dataset file is read once (keyed by path, size and mtime): a process
    that starts many runs (deepcls.concurrent) does not decompress CIFAR-10 for each. Callers
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


def epoch_seed(seed: int, epoch: int) -> int:
    """The random seed of one epoch of a run: its data order, augmentation and dropout masks.

    A function of (seed, epoch) alone, so a resumed run replays exactly the epochs it lost."""
    return seed * 1_000_003 + epoch


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


# --------------------------------------------------------------------------- augmentation
# Every op takes a float batch (B, C, H, W) in [0, 1] and a torch.Generator, and draws
# one set of random parameters per sample. Strengths are fixed here and documented in
# the README; they are the project's reading of the report's unstated details.

ROTATE_DEGREES = 15.0
CROP_PADDING = 4
BRIGHTNESS, CONTRAST = 0.3, 0.3
CUTOUT_SIZE = 8


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def flip(x: torch.Tensor, gen: torch.Generator, dim: int = 3) -> torch.Tensor:
    """Mirror a random half of the samples left-right (``dim=2``: upside down)."""
    mask = torch.rand(len(x), generator=gen, device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(dim), x)


def vflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Turn a random half of the samples upside down — one reading of the report's Table 1 row 1
    ("Random horizontal flip & horizontal flip & Random rotation"), not used by its grids."""
    return flip(x, gen, dim=2)


def crop(x: torch.Tensor, gen: torch.Generator, padding: int = CROP_PADDING) -> torch.Tensor:
    """Zero-pad by ``padding`` and take a random crop of the original size (a translation)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def rotate(x: torch.Tensor, gen: torch.Generator, degrees: float = ROTATE_DEGREES) -> torch.Tensor:
    """Rotate each sample by a uniform angle in [-degrees, degrees] (bilinear, zero fill)."""
    theta = _uniform(len(x), -degrees, degrees, gen, x.device) * (math.pi / 180)
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    affine = torch.stack([cos, -sin, zero, sin, cos, zero], 1).view(-1, 2, 3).to(x.dtype)
    grid = F.affine_grid(affine, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def brightness_contrast(
    x: torch.Tensor, gen: torch.Generator, brightness: float = BRIGHTNESS, contrast: float = CONTRAST
) -> torch.Tensor:
    """Scale brightness and contrast by random factors in [1-s, 1+s] (as ColorJitter)."""
    n = len(x)
    b = _uniform(n, 1 - brightness, 1 + brightness, gen, x.device)[:, None, None, None]
    c = _uniform(n, 1 - contrast, 1 + contrast, gen, x.device)[:, None, None, None]
    x = (x * b).clamp(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # ColorJitter uses the grey mean
    return ((x - mean) * c + mean).clamp(0, 1)


def cutout(x: torch.Tensor, gen: torch.Generator, size: int = CUTOUT_SIZE) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square at a random centre of each sample."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=gen, device=x.device)[:, None, None]
    cx = torch.randint(0, w, (b,), generator=gen, device=x.device)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - size // 2, cx - size // 2
    hole = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return x * (~hole)[:, None].to(x.dtype)


AUGMENTATIONS = {
    "flip": flip,
    "vflip": vflip,
    "crop": crop,
    "rotate": rotate,
    "brightness_contrast": brightness_contrast,
    "cutout": cutout,
}


def parse_augment(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"flip,crop"`` or ``["flip", "crop"]`` -> ``("flip", "crop")``; "" / "none" -> ()."""
    if spec is None:
        return ()
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip() and n.strip() != "none"]
    for n in names:
        if n not in AUGMENTATIONS:
            raise ConfigError(f"unknown augmentation {n!r}; known: {', '.join(AUGMENTATIONS)}")
    # applying one twice is another experiment (rotate twice: a wider angle distribution), not an alias
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"augmentation(s) listed twice: {', '.join(repeated)}; name each once")
    return tuple(names)


def augment(x: torch.Tensor, names: Sequence[str], gen: torch.Generator) -> torch.Tensor:
    """Apply the named augmentations in order to a float batch in [0, 1]."""
    for name in names:
        x = AUGMENTATIONS[name](x, gen)
    return x


# --------------------------------------------------------------------------- loader


class BatchLoader:
    """A split held on the device as uint8, yielding normalized float batches.

    Shuffling and augmentation draw from a generator seeded per epoch
    (``seed``, ``epoch``), so any epoch can be replayed exactly — this is what makes a
    resumed run identical to an uninterrupted one.
    """

    def __init__(
        self,
        split: Split,
        spec: DatasetSpec,
        *,
        batch_size: int,
        device: str | torch.device = "cpu",
        train: bool = False,
        augment: Sequence[str] = (),
        seed: int = 0,
        pad_to: int | None = None,
        channels_last: bool = True,
        dtype: torch.dtype = torch.float32,
        drop_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        self.device = torch.device(device)
        x = split.x.permute(0, 3, 1, 2)  # NCHW view of NHWC memory
        if pad_to is not None and pad_to > x.shape[-1]:
            total = pad_to - x.shape[-1]
            x = F.pad(x, (total // 2, total - total // 2) * 2)
        self.x = x.contiguous(memory_format=torch.channels_last).to(self.device)
        self.y = split.y.to(self.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.augment = tuple(augment)
        self.drop_last = drop_last
        self.channels_last, self.dtype = channels_last, dtype
        self.mean = torch.tensor(spec.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = len(self.y)
        if self.drop_last:
            return n // self.batch_size
        batches = math.ceil(n / self.batch_size)
        # training: a last batch of one image joins the batch before it (batch norm cannot train on
        # one image; the other batches, and every run whose split divides otherwise, are unchanged)
        return batches - 1 if self.train and batches > 1 and n % self.batch_size == 1 else batches

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def generator(self, epoch: int) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(epoch_seed(self.seed, epoch))
        return gen

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images, labels)`` for one pass; shuffled and augmented when training."""
        gen = self.generator(epoch)
        n = len(self.y)
        order = torch.randperm(n, generator=gen, device=self.device) if self.train else None
        last = len(self) - 1
        for i in range(len(self)):
            sl = slice(i * self.batch_size, n if i == last and not self.drop_last else (i + 1) * self.batch_size)
            idx = order[sl] if order is not None else sl
            yield self.transform(self.x[idx], gen), self.y[idx]

    def transform(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """uint8 batch -> augmented, normalized float batch."""
        x = x.float().div_(255)
        if self.train and self.augment:
            x = augment(x, self.augment, gen)
        x = (x - self.mean) / self.std
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.to(self.dtype).contiguous(memory_format=memory)
