"""Model names, their metadata, and :func:`build_model`, which validates every option."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepcls.data import DatasetSpec, get_spec
from deepcls.errors import ConfigError
from deepcls.models import resnet, vgg
from deepcls.models.init import init_weights


@dataclass(frozen=True)
class ModelInfo:
    """What callers need to know before building a model.

    ``min_input_size`` is the smallest square input side, of the project's 28 (MNIST) and 32
    (CIFAR-10), that the model accepts: 32 for the five-pooling VGGs, else 28.
    ``options`` are the family-specific keyword options :func:`build_model` accepts.
    """

    name: str
    family: str
    min_input_size: int
    options: tuple[str, ...]


Check = tuple[Callable[[Any], bool], str]  # predicate on the value, description of valid values


def _one_of(*choices: Any) -> Check:
    return (lambda v: any(type(v) is type(c) and v == c for c in choices), "one of " + ", ".join(map(repr, choices)))


def _int_at_least(low: int) -> Check:
    return (lambda v: type(v) is int and v >= low, f"an integer >= {low}")


def _int_in(low: int, high: int) -> Check:
    return (lambda v: type(v) is int and low <= v <= high, f"an integer in [{low}, {high}]")


MAX_CLASSIFIER_WIDTH = 16384  # 4x the report's 4096; a 16384-wide VGG classifier holds 270M weights


_CHECKS: dict[str, Check] = {
    "in_channels": _int_at_least(1),
    "num_classes": _int_at_least(2),
    "stem": _one_of(*resnet.STEMS),
    "se": _one_of(False, True),
    "width": _one_of(*vgg.WIDTHS),
    "first_kernel": _one_of(3, 5),
    "batch_norm": _one_of(False, True),
    "classifier_width": _int_in(1, MAX_CLASSIFIER_WIDTH),
    "dropout": (lambda v: type(v) in (int, float) and 0 <= v < 1, "a number in [0, 1)"),
}

# family -> (builder taking the model name, family options)
_FAMILIES: dict[str, tuple[Callable[..., nn.Module], tuple[str, ...]]] = {
    "resnet": (resnet.resnet, ("stem", "se")),
    "vgg": (vgg.vgg, ("width", "first_kernel", "batch_norm", "classifier_width", "dropout")),
}

_MODELS: dict[str, ModelInfo] = {
    **{name: ModelInfo(name, "resnet", 28, _FAMILIES["resnet"][1]) for name in resnet.ARCHS},
    **{
        name: ModelInfo(name, "vgg", 32 if cfg.count("M") >= 5 else 28, _FAMILIES["vgg"][1])
        for name, cfg in vgg.cfgs.items()
    },
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return list(_MODELS)


def model_info(name: str) -> ModelInfo:
    """Metadata of model ``name``; ConfigError if unknown."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(_MODELS)}")
    return _MODELS[name]


def check_option(option: str, value: Any) -> None:
    """ConfigError unless ``value`` is valid for ``option`` (an option of build_model)."""
    valid, expected = _CHECKS[option]
    if not valid(value):
        raise ConfigError(f"bad value for option {option!r}: {value!r} (expected {expected})")


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
    build, _ = _FAMILIES[info.family]
    model = build(name, in_channels=in_channels, num_classes=num_classes, **options)
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


def model_summary(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> dict[str, int]:
    """``{"params": trainable parameters, "macs": multiply-accumulates for one image}``.

    MACs are half of what torch's FlopCounterMode counts (it counts a multiply-add as two
    FLOPs) for one forward pass of a ``input_shape`` image, in eval mode without autograd;
    every module's training mode is restored afterwards.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape) if param is None else param.new_zeros(1, *input_shape)
    modes = [(m, m.training) for m in model.modules()]
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        for module, training in modes:
            module.training = training
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "macs": counter.get_total_flops() // 2}
