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


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke",
            "seconds per run, 256 training / 256 test images, 2 epochs: checks the machinery, the numbers mean nothing",
            2,
            {"mnist": 256, "cifar10": 256},
            {"mnist": 256, "cifar10": 256},
        ),
        Profile(
            "quick",
            "real data, reduced: 10% of the report's epochs (at least 2) on a "
            "class-balanced 3,000-image training subset, tested on 2,000 test images",
            0.1,
            {"mnist": 3000, "cifar10": 3000},
            {"mnist": 2000, "cifar10": 2000},
        ),
        Profile(
            "paper",
            "exactly the report's epochs, batch sizes, optimizers, learning rates "
            "and augmentations on the full datasets",
            1.0,
            {},
            {},
        ),
        Profile(
            "best",
            "deepcls's improved recipe on the report's models and epochs: SGD "
            "Nesterov, triangular lr, weight decay, label smoothing, flip+crop(+cutout), "
            "batch norm in VGGs",
            1.0,
            {},
            {},
        ),
    )
}
PROFILE_NAMES = tuple(PROFILES)
REDUCED = ("smoke", "quick")  # budgets whose numbers are not the report's
CUSTOM = "custom"  # the profile of a run trained by hand (``deepcls train``)


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]
