"""Classifying one's own images (deepcls.engine.predict, ``deepcls predict``): files of any size and
mode, arrays and tensors reach the network exactly as the run's test images did."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SMALL_VGG7
from PIL import Image

import deepcls as dc
from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.data import BatchLoader, Split, get_spec, load_dataset
from deepcls.engine.predict import predict
from deepcls.errors import ConfigError, DataError
from deepcls.models import build_for_dataset, input_padding
from deepcls.store.runs import RunRecord, RunStore

TINY = RunConfig(**SMALL_VGG7, epochs=1, subset=500, test_subset=200, batch_size=50, threads=1)
MNIST = get_spec("mnist")


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """A tiny MNIST VGG-7 trained once for this module (seconds), its weights in its store."""
    results = tmp_path_factory.mktemp("results")
    return dc.fit(TINY, results_dir=str(results), data_dir=str(data_dir), progress=False)


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    """A 50x40 RGB PNG and a 17x23 grayscale JPEG: neither MNIST's size nor its mode."""
    rng = np.random.default_rng(0)
    png, jpeg = tmp_path / "colour.png", tmp_path / "grey.jpg"
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "RGB").save(png)
    Image.fromarray(rng.integers(0, 256, (23, 17), dtype=np.uint8), "L").save(jpeg, quality=90)
    return [png, jpeg]


def results_dir(record: RunRecord) -> str:
    return str(record.path.parent.parent)  # <root>/runs/<run-id>


def loader_probabilities(model: torch.nn.Module, images: torch.Tensor, pad_to: int | None) -> torch.Tensor:
    """Softmax of ``model`` on uint8 NHWC ``images`` as the run's test pass feeds them."""
    split = Split(images, torch.zeros(len(images), dtype=torch.int64))
    batch, _ = next(BatchLoader(split, MNIST, batch_size=len(images), pad_to=pad_to).epoch(0))
    with torch.no_grad():
        return model(batch).softmax(dim=1)


def test_files_of_other_sizes_and_modes_get_class_names_and_probabilities(run: RunRecord, pictures: list[Path]) -> None:
    found = predict(run.run_id, pictures, top=3, results_dir=results_dir(run))
    assert len(found) == 2
    for classes in found:
        assert len(classes) == 3 and all(name in MNIST.classes for name, _ in classes)
        probabilities = [p for _, p in classes]
        assert all(0 < p <= 1 for p in probabilities) and probabilities == sorted(probabilities, reverse=True)
    one = predict(run, pictures[0], results_dir=results_dir(run))  # one image, default top: still a list per image
    assert len(one) == 1 and len(one[0]) == 5  # alone in its batch: equal up to float rounding
    assert [p for _, p in one[0][:3]] == pytest.approx([p for _, p in found[0]], abs=1e-6)

    every = predict(run, pictures, top=MNIST.num_classes, results_dir=results_dir(run))
    for classes in every:
        assert sorted(name for name, _ in classes) == sorted(MNIST.classes)
        assert sum(p for _, p in classes) == pytest.approx(1, abs=1e-5)


def test_a_dataset_image_saved_losslessly_gets_the_networks_own_prediction(
    run: RunRecord, data_dir: Path, tmp_path: Path
) -> None:
    _, test = load_dataset("mnist", data_dir)
    images = test.x[:8]
    paths = [tmp_path / f"test{i}.png" for i in range(len(images))]
    for path, image in zip(paths, images):
        Image.fromarray(image[..., 0].numpy(), "L").save(path)
    model = dc.load_model(run, store=RunStore(results_dir(run)))
    expected = loader_probabilities(model, images, input_padding(TINY.model, MNIST))
    found = predict(run, paths, top=MNIST.num_classes, results_dir=results_dir(run))
    for classes, probabilities in zip(found, expected):
        assert classes[0][0] == MNIST.classes[int(probabilities.argmax())]
        by_name = dict(classes)
        assert [by_name[name] for name in MNIST.classes] == pytest.approx(probabilities.tolist(), abs=1e-6)

    as_arrays = [image.numpy() for image in images]  # HxWx1 uint8
    as_tensors = [image.permute(2, 0, 1).float() / 255 for image in images]  # CxHxW floats 0-1
    for other in (as_arrays, as_tensors, [Image.open(path) for path in paths]):
        assert predict(run, other, top=MNIST.num_classes, results_dir=results_dir(run)) == found


def test_the_cli_prints_one_line_per_image(
    run: RunRecord, pictures: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", run.run_id, *map(str, pictures), "--results-dir", results_dir(run)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == "" and len(lines) == 2
    for path, line in zip(pictures, lines):
        assert re.fullmatch(rf"{re.escape(str(path))}: \d \d+\.\d%, \d \d+\.\d%, \d \d+\.\d%", line), line


def test_a_file_that_is_not_an_image_is_one_error_line_and_exit_2(
    run: RunRecord, pictures: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture\n")
    with pytest.raises(DataError, match=re.escape(str(fake))):
        predict(run, [pictures[0], fake], results_dir=results_dir(run))
    with pytest.raises(DataError, match="missing.png"):
        predict(run, tmp_path / "missing.png", results_dir=results_dir(run))

    assert main(["predict", run.run_id, str(pictures[0]), str(fake), "--results-dir", results_dir(run)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("deepcls: error: ") and str(fake) in err


def test_top_must_be_a_whole_number_within_the_classes(
    run: RunRecord, pictures: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for top in (0, -1, MNIST.num_classes + 1, 2.0, True):
        with pytest.raises(ConfigError, match=r"top must be a whole number in 1\.\.10"):
            predict(run, pictures, top=top, results_dir=results_dir(run))  # type: ignore[arg-type]
    assert main(["predict", run.run_id, str(pictures[0]), "--top", "0", "--results-dir", results_dir(run)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("deepcls: error: top must be") and len(err.splitlines()) == 1


def test_a_loaded_network_needs_its_dataset_and_gets_its_padding(pictures: list[Path]) -> None:
    """An untrained VGG-11 on MNIST: padded 28 -> 32 as in training, its train mode left as it was."""
    torch.manual_seed(0)
    model = build_for_dataset("vgg11", "mnist", width="reduced", classifier_width=64)
    assert input_padding("vgg11", MNIST) == 32
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255  # a "1", light on dark as MNIST's digits are
    with pytest.raises(ConfigError, match="needs dataset="):
        predict(model, digit)
    found = predict(model.train(), digit, top=MNIST.num_classes, dataset="mnist")
    assert model.training
    expected = loader_probabilities(model.eval(), torch.from_numpy(digit)[None, ..., None], 32)[0]
    by_name = dict(found[0])
    assert [by_name[name] for name in MNIST.classes] == pytest.approx(expected.tolist(), abs=1e-6)

    cifar = build_for_dataset("vgg7", "cifar10", width="reduced", classifier_width=64)  # grey JPEG -> RGB
    assert all(name in get_spec("cifar10").classes for name, _ in predict(cifar, pictures[1], 2, dataset="cifar10")[0])
    with pytest.raises(ConfigError) as info:  # a CIFAR-10 network given MNIST's images: one line, torch's reason
        predict(cifar.train(), digit, dataset="mnist")
    assert str(info.value).startswith("the network cannot take 1x28x28 inputs: Given groups=1")
    assert "\n" not in str(info.value) and cifar.training


def test_arrays_that_are_not_images_are_refused_in_one_line() -> None:
    model = build_for_dataset("vgg7", "mnist", width="reduced", classifier_width=64)
    for bad, message in (
        (np.full((28, 28), 255.0), r"image 0 is a float image with values outside \[0, 1\]"),
        (np.zeros((2, 28, 28, 1), dtype=np.uint8), "a batch goes in as a list of images"),
        (np.zeros((28, 28), dtype=np.int64) - 1, "outside 0..255"),
        (np.zeros((28, 28), dtype=np.complex64), "has dtype complex64"),
        (3, "image 0 is of type int"),
    ):
        with pytest.raises(DataError, match=message):
            predict(model, [bad], dataset="mnist")
