"""A chain of runs (each continues the one before), what becomes of each, and the executor seam."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from deepcls.config import RunConfig
from deepcls.engine import runtime
from deepcls.engine.fit import fit
from deepcls.errors import DeepclsError
from deepcls.models.catalog import Declarations, declare

BAR_POSITION: int | None = None  # this worker's progress-bar line

Chain = Sequence[RunConfig]


@dataclass(frozen=True)
class Outcome:
    """What became of one run: its id and, if it failed, the error in one line."""

    run_id: str
    error: str | None = None


@dataclass(frozen=True)
class Options:
    """What every run of a grid shares (plain values: they cross process and node boundaries)."""

    results_dir: str | None = None
    data_dir: str | None = None
    force: bool = False
    progress: bool | None = None
    keep_weights: bool = False  # complete runs' weights in their run folders (deepcls.store.weights)
    models: Declarations = ()  # the families and models the grid's process knows (catalog.declarations)


class Executor(Protocol):
    """Trains chains of runs; yields the outcomes of each chain as it finishes (any order)."""

    def run(self, chains: list[Chain], options: Options) -> Iterator[list[Outcome]]: ...


def train_chain(chain: Chain, options: Options) -> list[Outcome]:
    """Fit each config in turn (in this process); one outcome each. Bad input (DeepclsError) raises."""
    declare(options.models)  # a worker knows the families its grid's process declared (a notebook's own)
    outcomes = []
    for config in chain:
        runtime.configure(config.device, config.threads)
        try:
            fit(
                config,
                results_dir=options.results_dir,
                data_dir=options.data_dir,
                force=options.force,
                progress=options.progress,
                bar_position=BAR_POSITION,
                keep_weights=options.keep_weights,
            )
            outcomes.append(Outcome(config.run_id))
        except DeepclsError:
            raise  # bad input stops the grid
        except Exception as err:  # stored as status "failed"; the other runs go on
            outcomes.append(Outcome(config.run_id, f"{type(err).__name__}: {err}"))
    return outcomes
