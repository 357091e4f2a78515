"""Classify images of one's own with a stored run's network (or any loaded one): top-k class names
with softmax probabilities.

An image reaches the network as the run's training images did: its channels converted to the
dataset's (grayscale -> RGB for CIFAR-10, colour -> luma for MNIST), resized to the dataset's side
(bilinear, stretched: the datasets' images are square), quantised to 8 bits as the dataset files
are, then zero-padded, scaled and normalised by deepcls.data.BatchLoader itself, with the padding
deepcls.models.input_padding gives the model. So a dataset image saved losslessly and read back
reaches the network as the same tensor as in the run's test pass (the network runs in fp32 here,
not in the run's autocast precision). Nothing else is changed:
MNIST's digits are light on a dark ground, and a dark digit on white paper is not inverted here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from deepcls.config import RunConfig
from deepcls.data import BatchLoader, DatasetSpec, Split, get_spec
from deepcls.engine.evaluate import load_model, stored_run
from deepcls.errors import ConfigError, DataError
from deepcls.models import input_padding
from deepcls.models.registry import refused_input
from deepcls.store.runs import RunRecord, RunStore

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
"""One image: a file path, a PIL image, an array (HxW or HxWxC) or a tensor (HxW or CxHxW); arrays
and tensors hold uint8 0-255 (any integer type within it) or floats 0-1."""

Prediction = list[tuple[str, float]]
"""One image's top classes as ``(class name, probability)``, the most probable first."""

BATCH_SIZE = 256  # images per forward pass: bounds the memory a long list of images takes


def predict(
    run_or_model: RunConfig | str | RunRecord | nn.Module,
    images: ImageInput | Sequence[ImageInput],
    top: int = 5,
    *,
    dataset: str | None = None,
    results_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> list[Prediction]:
    """The ``top`` most probable classes of each image, with their softmax probabilities.

    ``run_or_model`` is a stored complete run (its id, config or record, looked up in
    ``results_dir``: its network is loaded with :func:`deepcls.engine.evaluate.load_model` onto
    ``device``) or a loaded network, which then needs ``dataset=`` (the one it was trained on: it
    fixes the preprocessing and the class names) and is run where its parameters are, in eval
    mode, its own mode restored afterwards. ``images`` is one image or a sequence of them
    (:data:`ImageInput`); the answer always has one list per image, in their order.

    DataError names an image that cannot be read or used; ConfigError refuses a ``top`` outside
    1..number of classes, and a missing or contradicting ``dataset``.
    """
    if isinstance(run_or_model, nn.Module):
        if dataset is None:
            raise ConfigError("predict with a loaded network needs dataset= (the one it was trained on)")
        spec = get_spec(dataset)
    else:
        # a record knows its own store: its weights are looked up there unless results_dir says otherwise
        own = isinstance(run_or_model, RunRecord) and results_dir is None
        store = RunStore(run_or_model.path.parent.parent if own else results_dir)  # type: ignore[union-attr]
        record = stored_run(run_or_model, store)
        spec = get_spec(record.config.dataset)
        if dataset is not None and dataset != spec.name:
            raise ConfigError(f"run {record.run_id} was trained on {spec.name}, not {dataset}")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= spec.num_classes:
        raise ConfigError(
            f"top must be a whole number in 1..{spec.num_classes} (the classes of {spec.name}), got {top!r}"
        )
    one = _is_one_image(images) or not isinstance(images, Iterable)
    items = [images] if one else list(images)  # type: ignore[call-overload]
    if not items:
        return []
    pixels = torch.from_numpy(np.stack([_dataset_pixels(item, spec, i) for i, item in enumerate(items)]))

    if not isinstance(run_or_model, nn.Module):
        model = load_model(record, store, device)
        pad_to, channels_last = input_padding(record.config.model, spec), record.config.channels_last
        return _classify(model, pixels, spec, top, pad_to, channels_last)
    side = getattr(run_or_model, "min_input_size", 0)  # what input_padding reads from the registry (VGGs set it)
    pad_to = side if side > spec.image_shape[0] else None
    channels_last = any(p.dim() == 4 and not p.is_contiguous() for p in run_or_model.parameters())
    modes = [(module, module.training) for module in run_or_model.modules()]
    try:
        return _classify(run_or_model.eval(), pixels, spec, top, pad_to, channels_last)
    finally:
        for module, training in modes:
            module.training = training


def _classify(
    model: nn.Module, pixels: torch.Tensor, spec: DatasetSpec, top: int, pad_to: int | None, channels_last: bool
) -> list[Prediction]:
    """Run ``model`` on uint8 NHWC images, batched, scaled and normalised by the training's own loader."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    labels = torch.zeros(len(pixels), dtype=torch.int64)
    loader = BatchLoader(
        Split(pixels, labels), spec, batch_size=BATCH_SIZE, device=device, pad_to=pad_to, channels_last=channels_last
    )
    found: list[Prediction] = []
    with torch.no_grad(), refused_input((spec.channels, *spec.image_shape[:2])):
        for batch, _ in loader.epoch(0):
            probabilities = model(batch).float().softmax(dim=1)
            values, indices = probabilities.topk(top, dim=1)
            for row, index in zip(values.tolist(), indices.tolist()):
                found.append([(spec.classes[i], p) for i, p in zip(index, row)])
    return found


def _is_one_image(images: object) -> bool:
    """Whether ``images`` is one image rather than a sequence of them (a string is a path)."""
    return isinstance(images, (str, os.PathLike, Image.Image, np.ndarray, torch.Tensor))


def _dataset_pixels(image: ImageInput, spec: DatasetSpec, position: int) -> np.ndarray:
    """One image as the dataset files hold theirs: uint8 HxWxC at the dataset's side and channels."""
    picture = _read_file(image) if isinstance(image, (str, os.PathLike)) else _in_memory(image, position)
    picture = picture.convert("L" if spec.channels == 1 else "RGB")
    height, width, _ = spec.image_shape
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.uint8).reshape(spec.image_shape)


def _read_file(path: str | os.PathLike) -> Image.Image:
    """The decoded image at ``path``, upright as its EXIF orientation says (as a viewer shows it)."""
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now: a truncated file fails here, inside the try
            return ImageOps.exif_transpose(opened)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        if isinstance(err, Image.UnidentifiedImageError):
            reason = "not an image format Pillow reads"
        elif isinstance(err, OSError) and err.strerror:
            reason = err.strerror
        else:
            reason = " ".join(str(err).split()) or type(err).__name__
        raise DataError(f"{Path(path)} is not a readable image ({reason})") from None


def _in_memory(image: object, position: int) -> Image.Image:
    """A PIL image of an array or tensor (HxW, HxWxC or CxHxW; uint8 0-255 or floats 0-1)."""
    if isinstance(image, Image.Image):
        return image
    where = f"image {position}"
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu()
        if array.is_floating_point():
            array = array.float()  # numpy has no bfloat16
        if array.dim() == 3:
            array = array.permute(1, 2, 0)  # CxHxW -> HxWxC
        array = array.numpy()
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise DataError(f"{where} is of type {type(image).__name__}: give a path, a PIL image, an array or a tensor")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise DataError(
            f"{where} has shape {tuple(image.shape)}: expected HxW or HxWxC (arrays), HxW or CxHxW (tensors), "
            "with 1, 3 or 4 channels; a batch goes in as a list of images"
        )
    if array.size == 0:
        raise DataError(f"{where} has no pixels (shape {tuple(image.shape)})")
    if array.dtype.kind in "fb":
        array = array.astype(np.float64)
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise DataError(
                f"{where} is a float image with values outside [0, 1] (min {array.min():g}, max {array.max():g}); "
                "floats are read as 0-1, give 0-255 as uint8"
            )
        array = np.rint(array * 255)
    elif array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise DataError(f"{where} has integer values outside 0..255 (min {array.min()}, max {array.max()})")
    else:
        raise DataError(f"{where} has dtype {array.dtype}: expected uint8 0-255 or floats 0-1")
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
