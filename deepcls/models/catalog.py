"""What models there are, without torch: the families and models declared, the options each accepts,
and the architecture tables the builders read.

Everything that names a model or its options before one is built (RunConfig's validation, the
report's grids, the ledger's families of rows, ``deepcls --help``) reads this module, so none of it
imports torch. The torch side (deepcls.models.registry, resnet.py, vgg.py, init.py) reads the same
tables from here.

A family is data: the build options its models accept, the settings the report's grids give them
(``defaults``), what the ``best`` profile's recipe needs (its learning rate; batch norm wherever
the family offers the option) and the builder, named as ``"module:function"`` so that declaring it
imports nothing. A model of a new family is two calls, from anywhere that runs before the model is
used (for the CLI: a module the package imports, such as this one; a grid hands what its process
declared to its worker processes and cluster tasks, :func:`declarations`)::

    register_family("tinynet", builder="deepcls.models.tinynet:tinynet", options=("batch_norm",),
                    defaults={"batch_norm": False})
    register_model("tinynet2", family="tinynet")

The builder is called as ``builder(name, in_channels=..., num_classes=..., **options)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from deepcls.errors import ConfigError, unknown

# ---------------------------------------------------------------------------- architecture tables
# ResNet name -> (block kind, blocks per stage): "basic" = two 3x3 convs, "bottleneck" = 1x1-3x3-1x1.
RESNET_ARCHS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
RESNET_STEMS: tuple[str, ...] = ("imagenet", "cifar")

VggCfg = list[int | str]  # conv widths, "M" for a 2x2 max-pool

VGG_CFGS: dict[str, VggCfg] = {
    "vgg7": [64, "M", 128, "M", 256, 256, "M"],
    "vgg9": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
VGG_WIDTHS: dict[str, int] = {"standard": 1, "reduced": 4}  # width name -> divisor of the cfg's channel counts

# Weight initialisation schemes (deepcls.models.init maps each to its initialiser).
INIT_SCHEMES: tuple[str, ...] = (
    "default",
    "xavier",
    "xavier_uniform",
    "xavier_normal",
    "he",
    "he_uniform",
    "he_normal",
)

# ---------------------------------------------------------------------------- options and their checks
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
    "stem": _one_of(*RESNET_STEMS),
    "se": _one_of(False, True),
    "width": _one_of(*VGG_WIDTHS),
    "first_kernel": _one_of(3, 5),
    "batch_norm": _one_of(False, True),
    "classifier_width": _int_in(1, MAX_CLASSIFIER_WIDTH),
    "dropout": (lambda v: type(v) in (int, float) and 0 <= v < 1, "a number in [0, 1)"),
}
# What a family may declare: every checked option but the two every model takes.
FAMILY_OPTIONS: tuple[str, ...] = tuple(name for name in _CHECKS if name not in ("in_channels", "num_classes"))


def check_option(option: str, value: Any) -> None:
    """ConfigError unless ``value`` is valid for ``option`` (an option of build_model)."""
    expected = option_values(option)
    if not _CHECKS[option][0](value):
        raise ConfigError(f"bad value for option {option!r}: {value!r} (expected {expected})")


def option_values(option: str) -> str:
    """What ``option`` accepts, in words ("one of 'imagenet', 'cifar'"): ``deepcls train --help``."""
    if option not in _CHECKS:
        raise ConfigError(unknown("model option", [option], _CHECKS, quoted=True))
    return _CHECKS[option][1]


# ---------------------------------------------------------------------------- declarations
Builder = Callable[..., Any]  # (name, *, in_channels, num_classes, **options) -> nn.Module


@dataclass(frozen=True, eq=False)
class Family:
    """A family of models built by one builder, and what everything else needs to know of it.

    ``options`` are the build options its models accept (a subset of :data:`FAMILY_OPTIONS`);
    ``defaults`` the values of some of them the report's grids use (ResNets start from the ImageNet
    stem, VGGs at the reduced widths); ``best_lr`` the peak learning rate of the ``best`` profile's
    recipe; ``batch_norm_always``: its models always contain batch norm (they cannot train on one
    image at a time). ``builder`` is a callable or ``"module:function"``, imported when a model is
    built.
    """

    name: str
    builder: str | Builder
    options: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    best_lr: float = 0.1
    batch_norm_always: bool = False


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

    @property
    def declaration(self) -> Family:
        """The model's family, as declared."""
        return _FAMILIES[self.family]


_FAMILIES: dict[str, Family] = {}
_MODELS: dict[str, ModelInfo] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a run id embeds the model name: no dashes, slashes or dots
_BUILDER = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _check_name(what: str, name: Any, taken: Mapping[str, Any]) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"bad {what} name {name!r}: lower-case letters, digits and _, starting with a letter")
    if name in taken:
        raise ConfigError(f"{what} {name!r} is already registered; known: {', '.join(taken)}")


def register_family(
    name: str,
    *,
    builder: str | Builder,
    options: tuple[str, ...] | list[str] = (),
    defaults: Mapping[str, Any] | None = None,
    best_lr: float = 0.1,
    batch_norm_always: bool = False,
) -> Family:
    """Declare a family of models (see :class:`Family`) and return it.

    ConfigError, in one line, for a name already taken, an option outside :data:`FAMILY_OPTIONS`
    (RunConfig carries those of its ``MODEL_OPTIONS``), a default that is not one of its options or
    not a valid value, or a builder that is neither callable nor ``"module:function"``."""
    _check_name("family", name, _FAMILIES)
    if not (callable(builder) or (isinstance(builder, str) and _BUILDER.fullmatch(builder))):
        raise ConfigError(f"family {name}: builder must be a callable or 'module:function', got {builder!r}")
    if isinstance(options, str) or not all(isinstance(o, str) for o in options):
        raise ConfigError(f"family {name}: options must be a sequence of option names, got {options!r}")
    options = tuple(options)
    if bad := [o for o in options if o not in FAMILY_OPTIONS or options.count(o) > 1]:
        known = ", ".join(FAMILY_OPTIONS)
        raise ConfigError(f"family {name}: option(s) {', '.join(map(repr, bad))} unknown or repeated; known: {known}")
    defaults = dict(defaults or {})
    for option, value in defaults.items():
        if option not in options:
            raise ConfigError(f"family {name}: default for {option!r}, which is not one of its options {options}")
        check_option(option, value)
    if not (type(best_lr) in (int, float) and math.isfinite(best_lr) and best_lr > 0):
        raise ConfigError(f"family {name}: best_lr must be a positive finite number, got {best_lr!r}")
    if not isinstance(batch_norm_always, bool):
        raise ConfigError(f"family {name}: batch_norm_always must be True or False, got {batch_norm_always!r}")
    family = Family(name, builder, options, MappingProxyType(defaults), float(best_lr), batch_norm_always)
    _FAMILIES[name] = family
    return family


def register_model(name: str, family: str, *, min_input_size: int = 28) -> ModelInfo:
    """Declare model ``name`` of a registered ``family``; ConfigError for a name already taken, an
    unknown family or a ``min_input_size`` that is not a positive integer."""
    _check_name("model", name, _MODELS)
    if family not in _FAMILIES:
        raise ConfigError(f"model {name}: {unknown('family', [family], _FAMILIES, quoted=True)}")
    if type(min_input_size) is not int or min_input_size < 1:
        raise ConfigError(f"model {name}: min_input_size must be a positive integer, got {min_input_size!r}")
    info = ModelInfo(name, family, min_input_size, _FAMILIES[family].options)
    _MODELS[name] = info
    return info


Declarations = tuple[tuple[str, dict[str, Any]], ...]  # ("family" | "model", register_* keywords), in order


def declarations() -> Declarations:
    """Every family and model registered in this process, in order, as plain values: what a worker
    process or a cluster task registers again with :func:`declare`, so that a family declared from a
    notebook or a script is known wherever its runs train."""
    families = [
        ("family", {**{k.name: getattr(f, k.name) for k in fields(f)}, "defaults": dict(f.defaults)})
        for f in _FAMILIES.values()
    ]
    models = [
        ("model", {"name": m.name, "family": m.family, "min_input_size": m.min_input_size}) for m in _MODELS.values()
    ]
    return tuple(families + models)


def declare(declared: Declarations) -> None:
    """Register the families and models of ``declared`` (from :func:`declarations`) that this process
    does not know yet; one it knows under the same name keeps its own declaration."""
    for kind, keywords in declared:
        if kind == "family" and keywords["name"] not in _FAMILIES:
            register_family(**keywords)
        elif kind == "model" and keywords["name"] not in _MODELS:
            register_model(**keywords)


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, in the order they were registered."""
    return list(_MODELS)


def list_families() -> list[str]:
    """Names of the registered families, in the order they were registered."""
    return list(_FAMILIES)


def model_info(name: str) -> ModelInfo:
    """Metadata of model ``name``; ConfigError if unknown."""
    if name not in _MODELS:
        raise ConfigError(unknown("model", [name], _MODELS, quoted=True))
    return _MODELS[name]


def family_of(model: str) -> Family:
    """The declared family of model ``model``; ConfigError if the model is unknown."""
    return model_info(model).declaration


# ---------------------------------------------------------------------------- the built-in families
register_family(
    "resnet",
    builder="deepcls.models.resnet:resnet",
    options=("stem", "se"),
    defaults={"stem": "imagenet", "se": False},
    best_lr=0.1,
    batch_norm_always=True,
)
for _name in RESNET_ARCHS:
    register_model(_name, "resnet")
register_family(
    "vgg",
    builder="deepcls.models.vgg:vgg",
    options=("width", "first_kernel", "batch_norm", "classifier_width", "dropout"),
    defaults={"width": "reduced"},
    best_lr=0.05,
)
for _name, _cfg in VGG_CFGS.items():
    register_model(_name, "vgg", min_input_size=32 if _cfg.count("M") >= 5 else 28)
