"""Data layer: the real datasets and their fingerprints (a run trained on other data is refused),
batched augmentations, BatchLoader, subsets, bad input and failed downloads."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
from collections.abc import Callable
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision
from helpers import REPO_ROOT, TINY_RUN, cli_args, files_of, one_line, run_cli, train

from deepcls.data import (
    AUGMENTATIONS,
    DATASETS,
    OFFICIAL_FINGERPRINTS,
    BatchLoader,
    DatasetSpec,
    Split,
    balanced_subset,
    dataset_path,
    fingerprint,
    get_spec,
    load_dataset,
    parse_augment,
)
from deepcls.data.augment import augment, brightness_contrast, crop, cutout, rotate
from deepcls.engine.fit import fit
from deepcls.errors import ConfigError, DataError
from deepcls.store.runs import RunStore

Arrays = dict[str, np.ndarray]

# Facts about the official releases (the data README; MNIST test counts are the published ones).
OFFICIAL = {
    "mnist": {
        "sizes": (60_000, 10_000),
        "image": (28, 28, 1),
        "train_counts": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        "test_counts": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        "first_train": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
        "first_test": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
        "train_mean": (0.1307,),
        "train_std": (0.3081,),
        "test_mean": None,
    },
    "cifar10": {
        "sizes": (50_000, 10_000),
        "image": (32, 32, 3),
        "train_counts": [5000] * 10,
        "test_counts": [1000] * 10,
        "first_train": [6, 9, 9, 4, 1, 1, 2, 7, 8, 3],
        "first_test": None,
        "train_mean": (0.4914, 0.4822, 0.4465),
        "train_std": (0.2470, 0.2435, 0.2616),
        "test_mean": (0.4942, 0.4851, 0.4504),
    },
}
CIFAR10_TEST_BATCH_MD5 = "803d5f7f4d78ea53de84dbe85f74fb6d"


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def mnist(data_dir: Path) -> tuple[Split, Split]:
    return load_dataset("mnist", data_dir, download=False)


@pytest.fixture(scope="module")
def cifar10(data_dir: Path) -> tuple[Split, Split]:
    return load_dataset("cifar10", data_dir, download=False)


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``x / 255`` for uint8 NHWC images, exact in float64."""
    total = torch.zeros(x.shape[-1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in x.split(10_000):
        c = chunk.double()
        total += c.sum((0, 1, 2))
        squares += (c * c).sum((0, 1, 2))
    n = x.numel() // x.shape[-1]
    mean = total / n
    std = (squares / n - mean * mean).sqrt()
    return tuple((mean / 255).tolist()), tuple((std / 255).tolist())


def _round4(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(v, 4) for v in values)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_real_dataset_has_official_form(name: str, request: pytest.FixtureRequest) -> None:
    train, test = request.getfixturevalue(name)
    facts = OFFICIAL[name]
    for split, size, counts, first in (
        (train, facts["sizes"][0], facts["train_counts"], facts["first_train"]),
        (test, facts["sizes"][1], facts["test_counts"], facts["first_test"]),
    ):
        assert split.x.shape == (size, *facts["image"]) and split.x.dtype == torch.uint8
        assert split.y.shape == (size,) and split.y.dtype == torch.int64
        assert torch.bincount(split.y, minlength=10).tolist() == counts
        if first is not None:
            assert split.y[:10].tolist() == first


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_real_statistics_match_official_and_spec(name: str, request: pytest.FixtureRequest) -> None:
    train, test = request.getfixturevalue(name)
    facts, spec = OFFICIAL[name], DATASETS[name]
    mean, std = _channel_stats(train.x)
    assert _round4(mean) == facts["train_mean"] == spec.mean
    assert _round4(std) == facts["train_std"] == spec.std
    if facts["test_mean"] is not None:
        assert _round4(_channel_stats(test.x)[0]) == facts["test_mean"]


def test_cifar10_is_the_official_release(cifar10: tuple[Split, Split]) -> None:
    """Rebuilt in the official binary format, the test split has the published MD5."""
    _, test = cifar10
    records = np.concatenate(
        [test.y.numpy().astype(np.uint8)[:, None], test.x.numpy().transpose(0, 3, 1, 2).reshape(len(test), -1)], axis=1
    )
    assert hashlib.md5(records.tobytes()).hexdigest() == CIFAR10_TEST_BATCH_MD5
    assert DATASETS["cifar10"].classes == (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )


# --------------------------------------------------------------------------- the data fingerprint


@pytest.fixture
def zero_mnist(tmp_path: Path, data_dir: Path) -> Path:
    """A folder with a valid mnist.npz whose images are all zero (the real labels)."""
    folder = tmp_path / "zeros"
    folder.mkdir()
    with np.load(data_dir / "mnist.npz", allow_pickle=False) as npz:
        arrays = {k: np.zeros_like(npz[k]) if k.startswith("x_") else npz[k] for k in npz.files}
    np.savez(folder / "mnist.npz", **arrays)
    return folder


@pytest.mark.parametrize("name", list(DATASETS))
def test_the_shared_copies_have_the_official_fingerprint(name: str, data_dir: Path) -> None:
    assert fingerprint(name, data_dir) == OFFICIAL_FINGERPRINTS[name]


def test_the_fingerprint_hashes_the_arrays_not_the_file(tmp_path: Path) -> None:
    spec = get_spec("mnist")
    h, w, _ = spec.image_shape
    rng = np.random.default_rng(0)
    arrays = {
        **{f"x_{s}": rng.integers(0, 255, (n, h, w), dtype=np.uint8) for s, n in (("train", 60_000), ("test", 10))},
        **{f"y_{s}": np.arange(n, dtype=np.int64) % 10 for s, n in (("train", 60_000), ("test", 10))},
    }
    arrays["x_test"] = np.zeros((10_000, h, w), np.uint8)
    arrays["y_test"] = np.arange(10_000, dtype=np.int64) % 10
    plain, packed, nhwc = (tmp_path / d for d in ("plain", "packed", "nhwc"))
    for folder in (plain, packed, nhwc):
        folder.mkdir()
    np.savez(plain / "mnist.npz", **arrays)
    np.savez_compressed(packed / "mnist.npz", **arrays)
    np.savez(nhwc / "mnist.npz", **{k: v[..., None] if k.startswith("x_") else v for k, v in arrays.items()})
    assert fingerprint("mnist", plain) == fingerprint("mnist", packed) == fingerprint("mnist", nhwc)
    arrays["y_test"][0] = 1
    np.savez(plain / "mnist.npz", **arrays)  # a new version of the file: hashed again
    assert fingerprint("mnist", plain) != fingerprint("mnist", packed)
    assert fingerprint("mnist", tmp_path / "nowhere") is None


def test_a_run_trained_on_other_data_is_refused_then_retrained_with_force(
    data_dir: Path, zero_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "results"
    wrong = train(TINY_RUN, root, zero_mnist)
    assert wrong.metrics["data_fingerprint"] == fingerprint("mnist", zero_mnist) != OFFICIAL_FINGERPRINTS["mnist"]
    before = files_of(wrong.path)
    argv = ["train", *cli_args(TINY_RUN), "--results-dir", str(root), "--data-dir", str(data_dir), "--quiet"]
    code, out, err = run_cli(argv, capsys)
    line = one_line(err)
    assert code == 2 and out == "" and f"run {TINY_RUN.run_id} was trained on a different mnist.npz" in line
    assert "--force" in line and files_of(wrong.path) == before
    code, out, _ = run_cli([*argv, "--force"], capsys)
    assert code == 0 and out.startswith(f"trained {TINY_RUN.run_id}")
    record = RunStore(root).load(TINY_RUN)
    assert record.metrics["data_fingerprint"] == OFFICIAL_FINGERPRINTS["mnist"]
    assert record.history["train_loss"].iloc[0] != wrong.history["train_loss"].iloc[0]


def test_a_run_stored_without_fingerprint_stands_for_the_official_files(
    data_dir: Path, zero_mnist: Path, tmp_path: Path
) -> None:
    committed = RunStore(REPO_ROOT / "results")
    older = (r for r in committed.run_ids() if r.startswith("mnist-"))  # runs before fingerprints were stored
    run_id = next(r for r in older if "data_fingerprint" not in committed.load(r).metrics)
    config = committed.load(run_id).config
    assert fit(config, store=committed, data_dir=str(data_dir), progress=False).reused
    with pytest.raises(DataError, match=f"run {run_id} was trained on a different mnist.npz"):
        fit(config, store=committed, data_dir=str(zero_mnist), progress=False)
    # with no data file at hand nothing can differ: the stored run is reused (nothing is trained)
    assert fit(config, store=committed, data_dir=str(tmp_path / "no-data"), progress=False).reused


# --------------------------------------------------------------------------- augmentation


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(shape: tuple[int, ...] = (64, 3, 32, 32), seed: int = 0) -> torch.Tensor:
    """Random images in [0.1, 1): no pixel is 0 and none is symmetric, so every op is visible."""
    return torch.rand(shape, generator=_gen(seed)) * 0.9 + 0.1


@pytest.mark.parametrize("shape", [(16, 3, 32, 32), (16, 1, 28, 28)], ids=["rgb", "grey"])
@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_op_keeps_shape_and_dtype_and_changes_the_batch(name: str, shape: tuple[int, ...]) -> None:
    x = _images(shape)
    before = x.clone()
    out = AUGMENTATIONS[name](x, _gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, before), "input modified in place"
    assert not torch.equal(out, x)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_op_is_determined_by_the_generator(name: str) -> None:
    x, op = _images(), AUGMENTATIONS[name]
    assert torch.equal(op(x, _gen(1)), op(x, _gen(1)))
    assert not torch.equal(op(x, _gen(1)), op(x, _gen(2)))


def test_augment_chain_is_determined_by_the_generator() -> None:
    x, names = _images(), tuple(AUGMENTATIONS)
    assert torch.equal(augment(x, names, _gen(5)), augment(x, names, _gen(5)))
    assert not torch.equal(augment(x, names, _gen(5)), augment(x, names, _gen(6)))
    assert torch.equal(augment(x, (), _gen(5)), x)


@pytest.mark.parametrize(("name", "dim"), [("flip", 3), ("vflip", 2)])
def test_flips_mirror_some_samples_along_their_axis(name: str, dim: int) -> None:
    x = _images((64, 3, 8, 8))
    out = AUGMENTATIONS[name](x, _gen())
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(dim)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert same.any() and mirrored.any()


def _shift(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[i, j] = img[i + dy, j + dx]``, zero outside the image."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    out[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = img[
        :, max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def test_crop_translates_by_at_most_4_with_zero_fill() -> None:
    x = _images((16, 3, 12, 12))
    shifts = []
    for img, res in zip(x, crop(x, _gen())):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if torch.equal(res, _shift(img, dy, dx))]
        assert len(found) == 1, "output is not a zero-filled translation of the input"
        shifts.append(found[0])
    assert len(set(shifts)) > 3


def test_rotate_turns_about_the_centre() -> None:
    x = _images((16, 3, 32, 32))
    assert torch.allclose(rotate(x, _gen(), degrees=0.0), x, atol=1e-5)
    assert (rotate(x, _gen()) - x).abs().amax((1, 2, 3)).min() > 1e-3  # every sample turned
    ys, xs = torch.meshgrid(torch.arange(32.0) - 15.5, torch.arange(32.0) - 15.5, indexing="ij")
    blob = torch.exp(-(ys**2 + xs**2) / 50).expand(16, 3, 32, 32)  # a 1-pixel shift moves it by 0.12
    assert torch.allclose(rotate(blob, _gen()), blob, atol=0.02)


def test_cutout_zeroes_one_clipped_square_per_sample() -> None:
    size, (h, w) = 8, (16, 16)
    x = _images((64, 3, h, w))
    out = cutout(x, _gen(), size=size)
    full = clipped = 0
    for img, res in zip(x, out):
        hole = (res == 0).all(0)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        r0, r1, c0, c1 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
        assert hole[r0:r1, c0:c1].all() and hole.sum() == (r1 - r0) * (c1 - c0), "hole is not a rectangle"
        for lo, hi, end in ((r0, r1, h), (c0, c1, w)):
            assert hi - lo == size or (hi - lo < size and (lo == 0 or hi == end)), "hole is not a clipped square"
        keep = ~hole
        assert torch.equal(res[:, keep], img[:, keep])
        full += (r1 - r0, c1 - c0) == (size, size)
        clipped += (r1 - r0, c1 - c0) != (size, size)
    assert full and clipped


def test_brightness_contrast_stays_in_unit_range() -> None:
    x = _images()
    x[:, :, :4] = 0.0
    x[:, :, -4:] = 1.0
    out = brightness_contrast(x, _gen(), brightness=0.9, contrast=0.9)
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x, atol=0.01)


def test_parse_augment() -> None:
    assert parse_augment("flip, crop") == ("flip", "crop") == parse_augment(["flip", "crop"])
    assert parse_augment("none") == parse_augment("") == parse_augment(None) == ()
    with pytest.raises(ConfigError, match="unknown augmentation 'mixup'"):
        parse_augment("flip,mixup")


# --------------------------------------------------------------------------- BatchLoader

MNIST, CIFAR10 = DATASETS["mnist"], DATASETS["cifar10"]


def _indexed_split(n: int) -> Split:
    """MNIST-shaped images whose first two pixels encode the sample index; label = index."""
    x = torch.zeros(n, 28, 28, 1, dtype=torch.uint8)
    index = torch.arange(n)
    x[:, 0, 0, 0], x[:, 0, 1, 0] = index % 256, index // 256
    return Split(x, index)


def _random_split(n: int, seed: int = 0) -> Split:
    x = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8, generator=_gen(seed))
    return Split(x, torch.randint(0, 10, (n,), generator=_gen(seed + 1)))


def _pixels(x: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """Undo the normalization: values in 0..255."""
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (x.float() * std + mean) * 255


def test_batch_count_and_sizes() -> None:
    split = _indexed_split(1000)
    loader = BatchLoader(split, MNIST, batch_size=300)
    batches = list(loader.epoch())
    assert len(loader) == 4 and [len(y) for _, y in batches] == [300, 300, 300, 100]
    assert [tuple(x.shape) for x, _ in batches][-1] == (100, 1, 28, 28)
    assert torch.equal(torch.cat([y for _, y in batches]), torch.arange(1000))  # eval: in order
    dropping = BatchLoader(split, MNIST, batch_size=300, train=True, drop_last=True)
    assert len(dropping) == 3 and [len(y) for _, y in dropping.epoch()] == [300] * 3


def test_shuffled_epoch_visits_every_index_once() -> None:
    loader = BatchLoader(_indexed_split(1000), MNIST, batch_size=128, train=True, seed=3)
    xs, ys = zip(*loader.epoch(0))
    y = torch.cat(ys)
    assert torch.equal(y.sort().values, torch.arange(1000))
    assert not torch.equal(y, torch.arange(1000))
    pixels = _pixels(torch.cat(xs), MNIST).round().long()
    assert torch.equal(pixels[:, 0, 0, 0] + 256 * pixels[:, 0, 0, 1], y), "images and labels shuffled apart"


def test_batches_are_normalized_channels_last_float() -> None:
    split = _random_split(100)
    x, y = next(BatchLoader(split, CIFAR10, batch_size=64).epoch())
    expected = (
        split.x[:64].permute(0, 3, 1, 2).float() / 255 - torch.tensor(CIFAR10.mean).view(1, 3, 1, 1)
    ) / torch.tensor(CIFAR10.std).view(1, 3, 1, 1)
    assert x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert torch.allclose(x, expected, atol=1e-5) and torch.equal(y, split.y[:64])
    plain, _ = next(BatchLoader(split, CIFAR10, batch_size=64, channels_last=False).epoch())
    assert plain.is_contiguous() and torch.equal(plain, x)


def test_bfloat16_batches() -> None:
    x, _ = next(
        BatchLoader(
            _random_split(10), CIFAR10, batch_size=8, train=True, augment=("flip", "crop"), dtype=torch.bfloat16
        ).epoch()
    )
    assert x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last)


def test_real_mnist_is_normalized_to_zero_mean_unit_std(mnist: tuple[Split, Split]) -> None:
    total = squares = 0.0
    loader = BatchLoader(mnist[0], MNIST, batch_size=10_000)
    for x, _ in loader.epoch():
        total += x.double().sum().item()
        squares += x.double().square().sum().item()
    n = loader.num_samples * 28 * 28
    assert abs(total / n) < 1e-3
    assert abs((squares / n - (total / n) ** 2) ** 0.5 - 1) < 1e-3


def test_epochs_replay_exactly_and_differ() -> None:
    split = _random_split(200)

    def run(seed: int, epoch: int) -> list[torch.Tensor]:
        loader = BatchLoader(split, CIFAR10, batch_size=64, train=True, seed=seed, augment=("flip", "crop", "cutout"))
        return [t for batch in loader.epoch(epoch) for t in batch]

    first, again = run(7, 1), run(7, 1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(run(7, 0)[0], first[0])
    assert not torch.equal(run(8, 1)[0], first[0])


def test_pad_to_32_centres_the_image_on_a_zero_border(mnist: tuple[Split, Split]) -> None:
    white = Split(torch.full((4, 28, 28, 1), 255, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    x, _ = next(BatchLoader(white, MNIST, batch_size=4, pad_to=32).epoch())
    pixels = _pixels(x, MNIST)
    assert x.shape == (4, 1, 32, 32)
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[2:30, 2:30] = True
    assert torch.allclose(pixels[:, :, inside], torch.tensor(255.0), atol=1e-3)
    assert torch.allclose(pixels[:, :, ~inside], torch.tensor(0.0), atol=1e-3)
    real, _ = next(BatchLoader(mnist[1], MNIST, batch_size=256, pad_to=32).epoch())
    assert real.shape == (256, 1, 32, 32)
    assert torch.allclose(_pixels(real, MNIST)[:, :, ~inside], torch.tensor(0.0), atol=1e-3)


def test_a_last_training_batch_of_one_joins_the_batch_before() -> None:
    spec = get_spec("mnist")

    def sizes(n: int, batch: int, train: bool) -> list[int]:
        split = Split(torch.zeros(n, 28, 28, 1, dtype=torch.uint8), torch.arange(n) % 10)
        loader = BatchLoader(split, spec, batch_size=batch, train=train)
        got = [len(y) for _, y in loader.epoch(0)]
        assert len(got) == len(loader)
        return got

    assert sizes(33, 32, True) == [33] and sizes(65, 32, True) == [32, 33]
    assert sizes(33, 32, False) == [32, 1]  # evaluation has no batch norm statistics to spoil
    assert sizes(64, 32, True) == [32, 32] and sizes(66, 32, True) == [32, 32, 2]  # every other split unchanged


# --------------------------------------------------------------------------- balanced_subset


def test_balanced_subset_takes_the_first_of_each_class() -> None:
    labels = torch.randint(0, 10, (5000,), generator=_gen())
    index = balanced_subset(labels, 1005, 10)
    assert len(index) == 1005 and torch.equal(index, index.unique())  # sorted, no repeats
    counts = torch.bincount(labels[index], minlength=10)
    assert counts.tolist() == [101] * 5 + [100] * 5
    for c in range(10):
        assert torch.equal(index[labels[index] == c], (labels == c).nonzero().flatten()[: counts[c]])
    assert torch.equal(index, balanced_subset(labels, 1005, 10))
    assert torch.equal(balanced_subset(labels, 5000, 10), torch.arange(5000))
    with pytest.raises(ConfigError, match="subset must be positive"):
        balanced_subset(labels, 0, 10)


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink every dataset spec to 20 train and 10 test samples."""
    for name, spec in list(DATASETS.items()):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, train_size=20, test_size=10))


def _tiny_arrays(name: str = "mnist") -> Arrays:
    """A valid dataset file's content for the ``tiny`` specs (MNIST stored NHW, as the official)."""
    h, w, c = DATASETS[name].image_shape
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 20), ("test", 10)):
        arrays[f"x_{split}"] = rng.integers(0, 256, (n, h, w) + ((c,) if c > 1 else ()), dtype=np.uint8)
        arrays[f"y_{split}"] = np.arange(n, dtype=np.int64) % 10
    return arrays


def test_unknown_dataset_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'; known: mnist, cifar10"):
        load_dataset("imagenet", tmp_path)


def test_missing_file_without_download_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="not found") as err:
        load_dataset("cifar10", tmp_path, download=False)
    assert str(tmp_path / "cifar10.npz") in str(err.value)
    monkeypatch.setenv("DEEPCLS_DATA_DIR", str(tmp_path / "env"))
    assert dataset_path("mnist") == tmp_path / "env" / "mnist.npz"
    with pytest.raises(DataError, match=str(tmp_path / "env" / "mnist.npz")):
        load_dataset("mnist", download=False)


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_valid_tiny_file_loads_as_nhwc(name: str, tmp_path: Path) -> None:
    arrays = _tiny_arrays(name)
    np.savez(tmp_path / f"{name}.npz", **arrays)
    train, test = load_dataset(name, tmp_path, download=False)
    assert train.x.shape == (20, *DATASETS[name].image_shape) and test.x.shape[0] == 10
    assert torch.equal(train.x.reshape(arrays["x_train"].shape), torch.from_numpy(arrays["x_train"]))
    assert torch.equal(test.y, torch.from_numpy(arrays["y_test"]))


CORRUPTIONS: list[tuple[str, Callable[[Arrays], Arrays], str]] = [
    ("missing key", lambda a: {k: v for k, v in a.items() if k != "y_test"}, "expected keys"),
    ("extra key", lambda a: {**a, "meta": np.zeros(1)}, "expected keys"),
    ("float images", lambda a: {**a, "x_train": a["x_train"].astype(np.float32)}, "x_train has dtype float32"),
    ("int32 labels", lambda a: {**a, "y_test": a["y_test"].astype(np.int32)}, "y_test has dtype int32"),
    ("image size", lambda a: {**a, "x_train": a["x_train"][:, :, :27]}, "x_train has shape"),
    ("sample count", lambda a: {**a, "x_test": a["x_test"][:9]}, "x_test has shape"),
    ("label count", lambda a: {**a, "y_train": a["y_train"][:19]}, "y_train has shape"),
    ("label 10", lambda a: {**a, "y_train": np.where(np.arange(20) == 3, 10, a["y_train"])}, "labels in"),
    ("label -1", lambda a: {**a, "y_test": a["y_test"] - 1}, "labels in"),
]


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize(("corrupt", "problem"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_wrong_content_is_a_data_error(corrupt: Callable[[Arrays], Arrays], problem: str, tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, **corrupt(_tiny_arrays()))
    with pytest.raises(DataError, match=problem) as err:
        load_dataset("mnist", tmp_path, download=False)
    assert str(path) in str(err.value)


def _compressed_with_bad_deflate(path: Path) -> None:
    np.savez_compressed(path, **_tiny_arrays())
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[26:30])  # first local file header
    start = 30 + name_len + extra_len
    for i in range(start + 2, start + 60):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))


def _npy(path: Path) -> None:
    with path.open("wb") as f:
        np.save(f, np.zeros(3))


def _truncated(path: Path) -> None:
    np.savez(path, **_tiny_arrays())
    path.write_bytes(path.read_bytes()[:5000])


UNREADABLE: dict[str, Callable[[Path], object]] = {
    "text": lambda p: p.write_text("x_train,y_train\n1,2\n"),
    "empty": lambda p: p.write_bytes(b""),
    "npy": _npy,
    "truncated": _truncated,
    "bad deflate": _compressed_with_bad_deflate,
}


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("write", list(UNREADABLE.values()), ids=list(UNREADABLE))
def test_unreadable_file_is_a_data_error(write: Callable[[Path], object], tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    write(path)
    with pytest.raises(DataError, match="is not a readable .npz file") as err:
        load_dataset("mnist", tmp_path, download=False)
    assert str(path) in str(err.value)


def test_a_symlink_loop_as_data_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").symlink_to(tmp_path / "mnist.npz")
    with pytest.raises(DataError, match="cannot be opened \\(Too many levels of symbolic links\\)"):
        load_dataset("mnist", tmp_path)
    (tmp_path / "mnist.npz").unlink()
    (tmp_path / "mnist.npz").symlink_to(tmp_path / "gone.npz")
    with pytest.raises(DataError, match="is a symbolic link to a missing file"):
        load_dataset("mnist", tmp_path)


# --------------------------------------------------------------------------- download


@pytest.mark.parametrize(
    ("name", "error"), [("mnist", URLError("no route to host")), ("cifar10", OSError("Network is unreachable"))]
)
def test_failed_download_is_one_clear_error(
    name: str, error: Exception, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(self: object, *args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(getattr(torchvision.datasets, DATASETS[name].torchvision_class), "__init__", offline)
    with pytest.raises(DataError) as err:
        load_dataset(name, tmp_path)
    message = str(err.value)
    assert str(tmp_path / f"{name}.npz") in message and "download failed" in message and str(error) in message
    assert "\n" not in message and err.value.__cause__ is None and err.value.__suppress_context__
    assert not (tmp_path / f"{name}.npz").exists()


def _fake_torchvision_class(name: str) -> tuple[type, list[tuple[str, bool, bool]]]:
    """A stand-in for torchvision's MNIST / CIFAR10 holding a tiny split, and its call log."""
    h, w, c = DATASETS[name].image_shape
    calls: list[tuple[str, bool, bool]] = []

    class Fake:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append((root, train, download))
            n = 20 if train else 10
            images = torch.randint(0, 256, (n, h, w) + ((c,) if c > 1 else ()), dtype=torch.uint8, generator=_gen(n))
            if c == 1:  # MNIST: uint8 tensor (N, 28, 28), int64 tensor targets
                self.data, self.targets = images, torch.arange(n) % 10
            else:  # CIFAR10: uint8 array (N, 32, 32, 3), list of ints
                self.data, self.targets = images.numpy(), [i % 10 for i in range(n)]

    return Fake, calls


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_download_writes_the_npz_atomically(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, calls = _fake_torchvision_class(name)
    monkeypatch.setattr(torchvision.datasets, DATASETS[name].torchvision_class, fake)
    replaces: list[tuple[Path, Path, bool]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        replaces.append((Path(src), Path(dst), Path(dst).exists()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    folder = tmp_path / "data"
    path = folder / f"{name}.npz"

    train, test = load_dataset(name, folder)

    assert [call[1:] for call in calls] == [(True, True), (False, True)]
    ((src, dst, existed),) = replaces
    assert dst == path and src.parent == folder and src != path and not existed
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left
    again, _ = load_dataset(name, folder)
    assert len(calls) == 2 and torch.equal(again.x, train.x)  # read back, not downloaded again
    expected = fake(str(folder), train=True)
    assert torch.equal(train.x, torch.as_tensor(expected.data).reshape(20, *DATASETS[name].image_shape))
    assert torch.equal(train.y, torch.as_tensor(expected.targets)) and len(test) == 10


def test_a_failed_download_leaves_no_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="download failed"):
        load_dataset("mnist", tmp_path / "new" / "data")
    assert list(tmp_path.iterdir()) == []
