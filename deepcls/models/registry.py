"""Building a declared model (deepcls.models.catalog) with every option validated, and counting it."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepcls.data import DatasetSpec, get_spec
from deepcls.errors import ConfigError
from deepcls.models.catalog import Builder, Family, check_option, model_info
from deepcls.models.init import init_weights


def _builder(family: Family) -> Builder:
    """The family's builder; a ``"module:function"`` declaration is imported now, on first build."""
    if callable(family.builder):
        return family.builder
    module, _, attribute = family.builder.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"family {family.name}: cannot import its builder {family.builder!r} ({error})") from None


def build_model(
    name: str, *, in_channels: int = 3, num_classes: int = 10, init: str = "default", **options: Any
) -> nn.Module:
    """Build model ``name`` with family ``options`` (None values mean "use the default").

    Raises ConfigError for an unknown name, init scheme or option, or a bad option value.
    """
    info = model_info(name)
    options = {key: value for key, value in options.items() if value is not None}
    for key in options:
        if key not in info.options:
            raise ConfigError(f"option {key!r} does not apply to {name}; accepted: {', '.join(info.options)}")
    for key, value in {"in_channels": in_channels, "num_classes": num_classes, **options}.items():
        check_option(key, value)
    model = _builder(info.declaration)(name, in_channels=in_channels, num_classes=num_classes, **options)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the builder of family {info.family} returned {type(model).__name__}, not an nn.Module")
    return init_weights(model, init)


def input_padding(name: str, spec: DatasetSpec) -> int | None:
    """The side to zero-pad ``spec``'s images to for model ``name`` (MNIST 28 -> 32 for the VGGs
    with five poolings), or None when they fit as they are."""
    size = model_info(name).min_input_size
    return size if size > spec.image_shape[0] else None


def build_for_dataset(name: str, dataset: str, *, init: str = "default", **options: Any) -> nn.Module:
    """:func:`build_model` with the input channels and classes of ``dataset``."""
    spec = get_spec(dataset)
    return build_model(name, in_channels=spec.channels, num_classes=spec.num_classes, init=init, **options)


@contextlib.contextmanager
def refused_input(shape: tuple[int, ...]) -> Iterator[None]:
    """A network that cannot take inputs of ``shape`` (one image's, such as (1, 28, 28)) raises a torch
    RuntimeError from deep inside its forward pass; say it as one ConfigError line, torch's first line
    kept. Running out of memory is not the input's fault and passes through."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise ConfigError(f"the network cannot take {'x'.join(map(str, shape))} inputs: {lines[0]}") from None


def model_summary(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> dict[str, int]:
    """``{"params": trainable parameters, "macs": multiply-accumulates for one image}``.

    MACs are half of what torch's FlopCounterMode counts (it counts a multiply-add as two
    FLOPs) for one forward pass of a ``input_shape`` image, in eval mode without autograd;
    every module's training mode is restored afterwards.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(type(n) is int and n > 0 for n in shape):
        raise ConfigError(f"input_shape must be positive whole numbers such as (3, 32, 32), got {input_shape!r}")
    param = next(model.parameters(), None)
    x = torch.zeros(1, *shape) if param is None else param.new_zeros(1, *shape)
    modes = [(m, m.training) for m in model.modules()]
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter, refused_input(shape):
            model(x)
    finally:
        for module, training in modes:
            module.training = training
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "macs": counter.get_total_flops() // 2}
