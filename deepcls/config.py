"""What a run is: the profiles (budgets every grid runs at) and RunConfig, one frozen dataclass per
training run, validated with one clear error per field."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from deepcls.api import checked, conforms, shown
from deepcls.data import AUGMENTATION_NAMES, DATASETS, parse_augment
from deepcls.errors import ConfigError, check_known, unknown
from deepcls.models import INIT_SCHEMES, check_option, list_models, model_info
from deepcls.models.catalog import option_values
from deepcls.numeric import DEVICE, PRECISIONS


@dataclass(frozen=True)
class Profile:
    """How a profile scales the report's settings."""

    name: str
    description: str
    epochs: float | int | None  # a fraction scales the report's epochs; an int replaces them
    subset: dict[str, int | None]  # dataset -> training samples (None: all)
    test_subset: dict[str, int | None]


_DESCRIPTIONS = {
    "smoke": "seconds per run, 256 training / 256 test images, 2 epochs: checks the machinery, the numbers mean "
    "nothing",
    "quick": "real data, reduced: 10% of the report's epochs (at least 2) on a class-balanced 3,000-image training "
    "subset, tested on 2,000 test images",
    "paper": "exactly the report's epochs, batch sizes, optimizers, learning rates and augmentations on the full "
    "datasets",
    "best": "deepcls's improved recipe on the report's models and epochs: SGD Nesterov, triangular lr, weight decay, "
    "label smoothing, flip+crop(+cutout), batch norm in VGGs",
}
# name: (epochs: a fraction scales the report's, an int replaces them; training images; test images; None: all)
_BUDGETS = {"smoke": (2, 256, 256), "quick": (0.1, 3000, 2000), "paper": (1.0, None, None), "best": (1.0, None, None)}


def _per_dataset(n: int | None) -> dict[str, int | None]:
    return {} if n is None else {"mnist": n, "cifar10": n}


PROFILES: dict[str, Profile] = {
    name: Profile(name, _DESCRIPTIONS[name], epochs, _per_dataset(train), _per_dataset(test))
    for name, (epochs, train, test) in _BUDGETS.items()
}
PROFILE_NAMES = tuple(PROFILES)
REDUCED = ("smoke", "quick")  # budgets whose numbers are not the report's
CUSTOM = "custom"  # the profile of a run trained by hand (``deepcls train``)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(unknown("profile", [name], PROFILES, quoted=True))
    return PROFILES[name]


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "triangle")
RUN_PROFILES = (*PROFILE_NAMES, CUSTOM)

# Options forwarded to build_model when set (None means "the model's default").
MODEL_OPTIONS = ("stem", "se", "width", "first_kernel", "batch_norm", "classifier_width")
# Numeric settings: they change speed and float rounding, not the experiment. Recorded with the run as
# its numeric class (deepcls.numeric), not part of the run id, so a stored run is found from any machine;
# two runs of one id in different numeric classes agree only statistically.
SPEED_FIELDS = ("device", "threads", "precision", "channels_last", "compile", "graphs")
# Run ids hash the identity as it was when precision was part of it and every run trained in bf16:
# the key stays in the hashed JSON at that value, so every stored run id is unchanged.
ID_PRECISION = "bf16"
MAX_SEED = 2**32  # epoch_seed(seed, epoch) = seed * 1_000_003 + epoch must stay a 64-bit generator seed
MAX_THREADS = 1024
MAX_EPOCHS = 10_000  # beyond any schedule deepcls trains; a typo such as 1e20 fails here, not in a loop


def _option(default: Any, help: str, choices: Callable[[], Sequence[Any]] | None = None) -> Any:
    """A RunConfig field with what ``deepcls train --help`` says of it: ``help`` (what it is, its unit)
    and ``choices`` (called when the help is built, so models registered later are listed)."""
    return field(default=default, metadata={"help": help, "choices": choices})


def _model_option(option: str, help: str, values: bool = True) -> Any:
    """A model option's field: ``values`` adds what the model catalog accepts for it."""
    return _option(None, f"{help}{'; ' + option_values(option) if values else ''}; default: the model's")


@dataclass(frozen=True)
class RunConfig:
    """Every knob that changes a result, plus the numeric settings listed in SPEED_FIELDS.

    Each field's metadata says what it is, its unit and its valid values: ``deepcls train --help`` is
    generated from it.
    """

    dataset: str = _option("cifar10", "the dataset to train and test on", lambda: tuple(DATASETS))
    model: str = _option("resnet18", "the network", list_models)
    # model options (None: the model's default)
    stem: str | None = _model_option(
        "stem", "ResNet stem: imagenet (7x7 conv and max-pool) or cifar (one 3x3 conv)", False
    )
    se: bool | None = _model_option("se", "ResNet: squeeze-and-excitation in every block", False)
    width: str | None = _model_option("width", "VGG channels: standard, or reduced (a quarter of them)", False)
    first_kernel: int | None = _model_option("first_kernel", "VGG: the first convolution's kernel side, in pixels")
    batch_norm: bool | None = _model_option("batch_norm", "VGG: batch norm after every convolution", False)
    classifier_width: int | None = _model_option("classifier_width", "VGG: units per hidden classifier layer")
    init: str = _option("default", "weight initialisation (default: each layer's torch default)", lambda: INIT_SCHEMES)
    # optimisation
    optimizer: str = _option("adam", "the optimizer", lambda: OPTIMIZERS)
    lr: float = _option(1e-3, "learning rate (the peak of a schedule), a number > 0")
    momentum: float = _option(0.9, "SGD momentum, in [0, 1)")
    nesterov: bool = _option(False, "SGD with Nesterov momentum")
    weight_decay: float = _option(0.0, "weight decay, >= 0 (L2 for sgd and adam, decoupled for adamw)")
    schedule: str = _option(
        "constant",
        "lr per step: constant; step (x0.1 at 50% and 75% of training); cosine or triangle (to 0)",
        lambda: SCHEDULES,
    )
    warmup: float = _option(0.0, "fraction of all steps spent warming up linearly, in [0, 1) (cosine, triangle)")
    epochs: int = _option(20, "passes over the training set, an integer >= 1")
    batch_size: int = _option(32, "images per step, an integer >= 1")
    augment: tuple[str, ...] = _option(
        (), "comma-separated augmentations, applied in order (default: none)", lambda: AUGMENTATION_NAMES
    )
    label_smoothing: float = _option(0.0, "label smoothing, in [0, 1)")
    seed: int = _option(0, "an integer in [0, 2**32): initial weights, data order and augmentation")
    subset: int | None = _option(
        None, "a count, not a fraction: train on the class-balanced first N training images (>= 10; default: all)"
    )
    test_subset: int | None = _option(
        None, "a count, not a fraction: test on the class-balanced first N test images (>= 10; default: all)"
    )
    profile: str = _option(CUSTOM, "the profile the run is filed under (custom: trained by hand)", lambda: RUN_PROFILES)
    # numeric settings (recorded with the run, not hashed into its id)
    device: str = _option("auto", "where to train: auto, cpu, cuda, cuda:N or mps")
    threads: int | None = _option(None, "torch CPU threads, 1 to 1024 (default: torch's choice)")
    precision: str = _option(
        "auto", "auto: bf16 where the hardware computes it natively, else fp32 (deepcls info says)", lambda: PRECISIONS
    )
    channels_last: bool = _option(True, "channels-last (NHWC) memory layout")
    compile: bool = _option(False, "torch.compile the training step")
    graphs: bool | None = _option(None, "CUDA graphs for full batches (default: on CUDA unless compiled)")

    def __post_init__(self) -> None:
        self._check_kinds()
        object.__setattr__(self, "augment", parse_augment(self.augment))
        for f in fields(self):  # lr=1 and lr=1.0 are the same run: one run id, one config.json
            if f.type == "float" and _is_int(getattr(self, f.name)):
                object.__setattr__(self, f.name, float(getattr(self, f.name)))
        self.validate()

    # ------------------------------------------------------------------ validation
    def _check_kinds(self) -> None:
        """The fields whose values validate() looks up or parses must be of their kind first (a list as
        the dataset, a number as the augmentations): one ConfigError line, not a TypeError. Numbers
        and bools are validate()'s own, with messages that say the range too."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("str", "str | None") and not (isinstance(value, str) or (value is None and f.type != "str")):
                kind = "a string" + " or None" * (f.type != "str")
                raise ConfigError(f"{f.name} must be {kind}, got {type(value).__name__} {shown(value)}")
        if not conforms(self.augment, str | Sequence[str] | None):
            raise ConfigError(
                f"augment must be names separated by commas or a sequence of names, got "
                f"{type(self.augment).__name__} {shown(self.augment)}"
            )

    def validate(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        check_known("dataset", self.dataset, DATASETS)
        check_known("model", self.model, list_models())
        accepted = [name for name in MODEL_OPTIONS if name in model_info(self.model).options]
        for name in MODEL_OPTIONS:
            value = getattr(self, name)
            check(
                value is None or name in accepted,
                f"model {self.model} has no option {name!r}; it accepts: {', '.join(accepted)}",
            )
            if value is not None:
                check_option(name, value)
        check_known("init", self.init, INIT_SCHEMES)
        check_known("optimizer", self.optimizer, OPTIMIZERS)
        check_known("schedule", self.schedule, SCHEDULES)
        check_known("precision", self.precision, PRECISIONS)
        check_known("profile", self.profile, RUN_PROFILES)
        check(_is_finite(self.lr) and self.lr > 0, f"lr must be a positive finite number, got {self.lr!r}")
        check(_is_int(self.epochs) and self.epochs > 0, f"epochs must be a positive integer, got {self.epochs!r}")
        check(self.epochs <= MAX_EPOCHS, f"epochs must be at most {MAX_EPOCHS}, got {self.epochs!r}")
        for f in fields(self):  # the Python API gets what the CLI's flags guarantee: a bool is a bool
            value = getattr(self, f.name)
            if f.type in ("bool", "bool | None"):
                check(
                    isinstance(value, bool) or (value is None and f.type == "bool | None"),
                    f"{f.name} must be True or False, got {value!r}",
                )
        check(
            _is_int(self.batch_size) and self.batch_size > 0,
            f"batch_size must be a positive integer, got {self.batch_size!r}",
        )
        check(
            _is_number(self.momentum) and 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}"
        )
        check(
            _is_finite(self.weight_decay) and self.weight_decay >= 0,
            f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}",
        )
        check(
            self.batch_size != 1 or not self.uses_batch_norm,
            f"batch_size must be >= 2 for {self.model} (batch norm cannot train on one image at a time)",
        )
        check(_is_number(self.warmup) and 0 <= self.warmup < 1, f"warmup must be in [0, 1), got {self.warmup!r}")
        check(
            _is_number(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}",
        )
        check(
            _is_int(self.seed) and 0 <= self.seed < MAX_SEED,
            f"seed must be an integer in [0, 2**32), got {self.seed!r}",
        )
        for name in ("subset", "test_subset"):
            value = getattr(self, name)
            check(
                value is None or (_is_int(value) and value >= 10),
                f"{name} must be an integer >= 10 (one per class), got {value!r}",
            )
        check(
            isinstance(self.device, str) and DEVICE.fullmatch(self.device) is not None,
            f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}",
        )
        check(self.graphs in (None, True, False), f"graphs must be true, false or unset, got {self.graphs!r}")
        check(
            self.threads is None or (_is_int(self.threads) and 0 < self.threads <= MAX_THREADS),
            f"threads must be an integer in [1, {MAX_THREADS}], got {self.threads!r}",
        )
        images = self.subset or DATASETS[self.dataset].train_size  # both checked above
        check(
            self.batch_size <= images,
            f"batch_size {self.batch_size} is larger than the {images} training images: the run would train one "
            f"partial batch an epoch; use a batch of at most {images}",
        )

    @property
    def uses_batch_norm(self) -> bool:
        """True for families that always have batch norm (the ResNets) and for models built with it."""
        return model_info(self.model).declaration.batch_norm_always or bool(self.batch_norm)

    # ------------------------------------------------------------------ identity
    def identity(self) -> dict[str, Any]:
        """The fields that determine the result, as plain JSON-able values."""
        data = asdict(self)
        for name in SPEED_FIELDS:
            data.pop(name)
        data["augment"] = list(self.augment)
        return data

    @property
    def run_id(self) -> str:
        hashed = self.identity() | {"precision": ID_PRECISION}
        canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha1(canonical.encode()).hexdigest()[:10]
        return f"{self.dataset}-{self.model}-{digest}"

    @property
    def extendable(self) -> bool:
        """True when epoch ``k`` does not depend on the total number of epochs (constant lr,
        no warm-up): an M-epoch run can be continued into this one. Within one numeric class on the
        CPU, the first M epochs of this run are then bit for bit the M-epoch run; across classes
        they are another sample."""
        return self.schedule == "constant" and self.warmup == 0

    @property
    def lineage(self) -> RunConfig:
        """What runs that continue one another share: the config without its length when it is
        extendable, else the config itself."""
        return self.replace(epochs=1) if self.extendable else self

    def model_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in MODEL_OPTIONS if getattr(self, name) is not None}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["augment"] = list(self.augment)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)


# A call that does not bind (an unknown field, too many arguments) is one ConfigError line too; the fields'
# types and values are __post_init__'s, with their own messages.
RunConfig.__init__ = checked(RunConfig.__init__, "dc.RunConfig", types=False)  # type: ignore[method-assign]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of ``jobs`` concurrent trainings: the cores shared out, at least one
    (two 1-thread trainings on 2 cores do ~1.3x the work of one 2-thread training)."""
    return max(1, cores() // jobs)
