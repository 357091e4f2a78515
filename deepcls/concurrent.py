"""Several runs trained at once in one process: one training step of each in turn.

On a GPU the report's runs are launch-bound: one run leaves most of the card idle between its
small kernels. Here each run gets its own CUDA stream (and its own CUDA graphs, deepcls.graphs),
and the runs take turns launching one step each, so the kernels of several runs are in flight at
once. On the CPU the same schedule simply runs the steps one after another.

Every run trains exactly what it trains alone: it has its own data order and augmentation
(generators seeded per run and epoch), its own model and optimizer, and its own state of the
global RNG (dropout masks), which is swapped in for each of its turns. On the CPU the histories
are therefore the solo runs' bit for bit (tests/test_concurrent.py). Each run is stored by the
ordinary ``fit`` path (deepcls.train.fit_steps), in the folder and under the run id it has when
trained alone; its ``metrics.json`` names the runs it shared the process with
(``trained_alongside``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from deepcls import runtime
from deepcls.config import RunConfig
from deepcls.data import dataset_cache
from deepcls.errors import DeepclsError
from deepcls.train import fit_steps

RUNS_AT_ONCE = 8  # default runs in flight; `deepcls bench` measures the gain per count


class Lane:
    """What one run owns while runs take turns: a CUDA stream, and its state of the global RNG.

    Use as a context manager around each of the run's turns. On CUDA the generator's state object
    itself is swapped (``graphsafe_set_state``: no copy, and each run's captured graphs keep their
    own seed and offset); on the CPU the state is copied in and out.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        if self.cuda:
            index = device.index if device.index is not None else torch.cuda.current_device()
            self.generator = torch.cuda.default_generators[index]
            self.state: Any = self.generator.clone_state()
            self.stream = torch.cuda.Stream(device)
        else:
            self.generator = torch.default_generator
            self.state = None  # the first turn starts from the process's state; Trainer seeds it

    def __enter__(self) -> Lane:
        if self.cuda:
            self.outer = (self.generator.graphsafe_get_state(), torch.cuda.current_stream())
            self.generator.graphsafe_set_state(self.state)
            torch.cuda.set_stream(self.stream)
        elif self.state is not None:
            self.generator.set_state(self.state)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            state, stream = self.outer
            self.generator.graphsafe_set_state(state)
            torch.cuda.set_stream(stream)
        else:
            self.state = self.generator.get_state()


class _Slot:
    """One chain of runs (the lengths of one config, shortest first) trained in one lane."""

    def __init__(self, chain: Sequence[RunConfig], position: int, fit_options: dict[str, Any]) -> None:
        self.pending = deque(chain)
        self.position, self.fit_options = position, fit_options
        self.lane = Lane(runtime.resolve_device(chain[0].device))
        self.outcomes: list[tuple[str, str | None]] = []
        self.config: RunConfig | None = None
        self.next_run()

    def next_run(self) -> bool:
        """Start the chain's next run; False when the chain is done."""
        if not self.pending:
            self.config = None
            return False
        self.config = self.pending.popleft()
        self.notes: dict[str, Any] = {"trained_alongside": []}
        self.steps = fit_steps(self.config, bar_position=self.position, notes=self.notes, **self.fit_options)
        return True

    def turn(self) -> bool:
        """One step of the current run (or its start, evaluation or save); False when the chain is done."""
        assert self.config is not None
        with self.lane:
            try:
                next(self.steps)
                return True
            except StopIteration:
                self.outcomes.append((self.config.run_id, None))
            except DeepclsError:
                raise  # bad input stops the grid
            except Exception as err:  # stored as status "failed" by the run; the others go on
                self.outcomes.append((self.config.run_id, f"{type(err).__name__}: {err}"))
        return self.next_run()

    def stop(self) -> None:
        """Stop the current run as a kill would: its last epoch checkpoint stays for a resume."""
        if self.config is not None:
            with self.lane:
                self.steps.close()
            self.config = None


def train_together(
    chains: Sequence[Sequence[RunConfig]],
    *,
    runs: int = RUNS_AT_ONCE,
    budget_s: float | None = None,
    **fit_options: Any,
) -> Iterator[list[tuple[str, str | None]]]:
    """Train ``chains`` with up to ``runs`` of them in flight, one step of each in turn; yields the
    ``(run_id, error or None)`` of each chain as it finishes (a started run that fails or diverges
    is stored as such, and the others go on). ``fit_options`` go to :func:`deepcls.train.fit_steps`.

    ``budget_s``: after this many seconds no further step starts; runs in flight stop as if killed
    (their epoch checkpoints stay, so the same call resumes them) and unfinished chains yield
    only the runs they finished.
    """
    if runs < 1:
        raise DeepclsError(f"runs at once must be >= 1, got {runs}")
    deadline = None if budget_s is None else time.monotonic() + budget_s
    waiting = deque(chains)
    slots: list[_Slot] = []
    with dataset_cache():
        try:
            while waiting or slots:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if waiting and len(slots) < runs:
                    free = min(set(range(1, runs + 1)) - {s.position for s in slots})
                    slots.append(_Slot(waiting.popleft(), free, fit_options))
                    _note_company(slots)
                    continue
                for slot in list(slots):
                    run = slot.config
                    if not slot.turn():
                        slots.remove(slot)
                        yield slot.outcomes
                    if slot.config is not run:
                        _note_company(slots)
        finally:
            for slot in slots:
                slot.stop()
    for slot in slots:  # stopped by the budget: what these chains finished
        if slot.outcomes:
            yield slot.outcomes


def _note_company(slots: list[_Slot]) -> None:
    """Add the runs now in flight to each one's ``trained_alongside``."""
    running = {s.config.run_id for s in slots if s.config is not None}
    for slot in slots:
        if slot.config is not None:
            company = running - {slot.config.run_id}
            slot.notes["trained_alongside"] = sorted(set(slot.notes["trained_alongside"]) | company)
