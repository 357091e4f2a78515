"""The budgets every grid runs at: smoke, quick, paper, best (the one home of their names)."""

from __future__ import annotations

from dataclasses import dataclass

from deepcls.errors import ConfigError


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
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]
