"""Paired step timings: the measurements a seconds-per-epoch conclusion is read from.

Wall times of runs trained at different times, or on different machines, measure the machines as
much as the models. A seconds line is therefore answered from one measurement instead
(deepcls.bench.steps): both sides' training steps timed in one process on one machine, alternating,
repeated. It is stored as ``timings/<profile>/<conclusion>.json`` in the results folder, beside the
runs it describes, and read by deepcls.analysis.ledger with its n (the repeats) and interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deepcls.atomic import write_text
from deepcls.config import RunConfig
from deepcls.errors import StoreError
from deepcls.store.runs import RunStore

RUN_ONLY = ("epochs", "seed", "test_subset", "profile", "device", "threads")
"""Config fields a training step does not depend on: a timing holds for every run that differs only in these."""


def step_config(config: RunConfig, precision: str | None = None) -> dict[str, Any]:
    """What a training step of ``config`` is: its config without :data:`RUN_ONLY`, with the precision
    it was timed in where given (``auto`` resolved on the timing machine)."""
    step = {k: v for k, v in config.to_dict().items() if k not in RUN_ONLY}
    return step | {"precision": precision} if precision else step


@dataclass(frozen=True)
class StepTiming:
    """Seconds per epoch of sides a and b, one pair per repeat (timed back to back in one process).

    ``steps`` are a side's optimisation steps per epoch; ``device`` names the device and threads
    (deepcls.numeric.target_device); ``configs`` are the sides' :func:`step_config`."""

    conclusion: str
    profile: str
    configs: tuple[dict[str, Any], dict[str, Any]]
    device: str
    steps: tuple[int, int]
    seconds_a: tuple[float, ...]
    seconds_b: tuple[float, ...]
    measured_at: str
    torch: str

    def __post_init__(self) -> None:
        if len(self.seconds_a) != len(self.seconds_b):
            raise ValueError("a timing holds one pair of seconds per repeat")
        if not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in self.seconds_a + self.seconds_b):
            raise ValueError("seconds must be finite and positive")
        if not all(isinstance(k, int) and k > 0 for k in self.steps):
            raise ValueError("steps per epoch must be whole numbers > 0")

    @property
    def repeats(self) -> int:
        return len(self.seconds_a)

    def matches(self, a: RunConfig, b: RunConfig) -> bool:
        """Whether this timing measured the steps of ``a`` and ``b`` (of any length and seed). A side of
        precision ``auto`` asks for whatever the timing machine trains in, so any timed precision fits it."""

        def fits(timed: dict[str, Any], asked: RunConfig) -> bool:
            if asked.precision == "auto":
                timed = timed | {"precision": "auto"}
            return json.loads(json.dumps(timed)) == json.loads(json.dumps(step_config(asked)))  # tuples: lists

        return all(fits(timed, asked) for timed, asked in zip(self.configs, (a, b)))


def timing_path(store: RunStore, profile: str, conclusion: str) -> Path:
    return store.root / "timings" / profile / f"{conclusion}.json"


def save_timing(store: RunStore, timing: StepTiming) -> Path:
    """Write ``timing`` atomically, replacing an earlier measurement of the same line."""
    path = timing_path(store, timing.profile, timing.conclusion)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(asdict(timing), indent=1) + "\n")
    return path


def load_timing(store: RunStore, profile: str, conclusion: str) -> StepTiming | None:
    """The stored timing of a line; None when it was never measured. A file that is not a timing is
    a StoreError naming it (the ledger then says the line was left unread)."""
    path = timing_path(store, profile, conclusion)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: not a readable timing ({err})") from None
    try:
        timing = StepTiming(
            conclusion=str(raw["conclusion"]),
            profile=str(raw["profile"]),
            configs=(dict(raw["configs"][0]), dict(raw["configs"][1])),
            device=str(raw["device"]),
            steps=(raw["steps"][0], raw["steps"][1]),
            seconds_a=tuple(raw["seconds_a"]),
            seconds_b=tuple(raw["seconds_b"]),
            measured_at=str(raw["measured_at"]),
            torch=str(raw["torch"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise StoreError(f"{path}: not a timing ({type(err).__name__}: {err})") from None
    if (timing.profile, timing.conclusion) != (profile, conclusion):
        raise StoreError(f"{path}: holds the timing of {timing.profile} {timing.conclusion}")
    return timing
