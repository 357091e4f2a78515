"""Several runs trained at once in one process: one training step of each in turn.

On a GPU the report's runs are launch-bound: one run leaves most of the card idle between its
small kernels. Here each run gets its own CUDA stream (and its own CUDA graphs, deepcls.engine.graphs),
and the runs take turns launching one step each, so the kernels of several runs are in flight at
once. On the CPU the same schedule simply runs the steps one after another.

Every run trains exactly what it trains alone: it has its own data order and augmentation
(generators seeded per run and epoch), its own model and optimizer, and its own state of the
global RNG (dropout masks), which is swapped in for each of its turns. On the CPU the histories
are therefore the solo runs' bit for bit (tests/test_concurrent.py). Each run is stored by the
ordinary ``fit`` path (deepcls.engine.fit.fit_steps), in the folder and under the run id it has when
trained alone; its ``metrics.json`` names the runs it shared the process with
(``trained_alongside``).

With a time budget, taking turns alone would finish nothing: every run in flight advances at the
same pace, so all of them end together, or, when the budget is short, none does. So every ``PLAN_EVERY_S`` the scheduler
measures the seconds one step costs over all runs, keeps stepping only the runs that can finish
in the time left, those with the fewest steps to go first (at least one: its checkpoints serve a
later call), parks the others (they keep their state and step on once time allows) and starts a
waiting chain only if it fits (see :func:`runs_that_fit`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from deepcls.config import RunConfig
from deepcls.data import dataset_cache, get_spec
from deepcls.engine.fit import fit_steps
from deepcls.errors import DeepclsError
from deepcls.numeric import resolve_device

RUNS_AT_ONCE = 8  # default runs in flight; `deepcls bench` measures the gain per count
PLAN_EVERY_S = 30.0  # with a budget: how often the step cost is measured and the runs re-chosen
SAFETY = 1.5  # fewer runs in flight overlap less on a GPU: a step then costs more than measured


def runs_that_fit(remaining: Sequence[int], seconds_per_step: float, time_left: float) -> int:
    """How many runs, taken by fewest ``remaining`` steps first, finish within ``time_left``.

    Runs taking turns share the device, so k of them end after about ``seconds_per_step`` times
    the sum of their remaining steps (the cost of one step measured over all runs in flight);
    ``SAFETY`` allows for the poorer overlap of fewer runs."""
    total, fit = 0.0, 0
    for steps in sorted(remaining):
        total += steps
        if total * seconds_per_step * SAFETY > time_left:
            break
        fit += 1
    return fit


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
        self.lane = Lane(resolve_device(chain[0].device))
        self.outcomes: list[tuple[str, str | None]] = []
        self.config: RunConfig | None = None
        self.taken = 0  # steps since the scheduler last looked
        self.next_run()

    def next_run(self) -> bool:
        """Start the chain's next run; False when the chain is done."""
        if not self.pending:
            self.config = None
            return False
        self.config = self.pending.popleft()
        self.progress: tuple[int, int] | None = None  # (steps done, steps in all) of the current run
        self.notes: dict[str, Any] = {"trained_alongside": []}
        self.steps = fit_steps(self.config, bar_position=self.position, notes=self.notes, **self.fit_options)
        return True

    def turn(self) -> bool:
        """One step of the current run (or its start, evaluation or save); False when the chain is done."""
        assert self.config is not None
        with self.lane:
            try:
                self.progress = next(self.steps)
                self.taken += 1
                return True
            except StopIteration:
                self.outcomes.append((self.config.run_id, None))
            except DeepclsError:
                raise  # bad input stops the grid
            except Exception as err:  # stored as status "failed" by the run; the others go on
                self.outcomes.append((self.config.run_id, f"{type(err).__name__}: {err}"))
        return self.next_run()

    def remaining(self) -> int | None:
        """Training steps left to the end of the chain; None until the current run has stepped."""
        if self.progress is None or self.config is None:
            return None
        done, total = self.progress
        return total * self.chain_epochs() // self.config.epochs - done

    def chain_epochs(self) -> int:
        return self.pending[-1].epochs if self.pending else self.config.epochs  # type: ignore[union-attr]

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
    log: Callable[[str], None] | None = None,
    **fit_options: Any,
) -> Iterator[list[tuple[str, str | None]]]:
    """Train ``chains`` with up to ``runs`` of them in flight, one step of each in turn; yields the
    ``(run_id, error or None)`` of each chain as it finishes (a started run that fails or diverges
    is stored as such, and the others go on). ``fit_options`` go to :func:`deepcls.engine.fit.fit_steps`.

    ``budget_s``: after this many seconds no further step starts; runs in flight stop as if killed
    (their epoch checkpoints stay, so the same call resumes them) and unfinished chains yield
    only the runs they finished. Meanwhile only the runs that can finish in time are stepped
    (module docstring); ``log`` gets one line per such decision.
    """
    if runs < 1:
        raise DeepclsError(f"runs at once must be >= 1, got {runs}")
    start = time.monotonic()
    deadline = None if budget_s is None else start + budget_s
    waiting = deque(chains)
    slots: list[_Slot] = []
    plan = _Plan(start, log)
    with dataset_cache():
        try:
            while waiting or slots:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if deadline is not None and (now >= plan.next_at or (slots and plan.parked >= set(slots))):
                    plan.update(slots, waiting, now, deadline)
                active = [s for s in slots if s not in plan.parked]
                if len(active) < runs and (chain := plan.next_chain(waiting, active, deadline, now)) is not None:
                    free = min(set(range(1, len(slots) + 2)) - {s.position for s in slots})
                    slots.append(_Slot(chain, free, fit_options))
                    _note_company(slots)
                    continue
                if not active:  # only runs that have not stepped yet are parked: none is
                    break
                for slot in active:
                    run = slot.config
                    if not slot.turn():
                        plan.finished_steps += slot.taken
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


class _Plan:
    """Which runs to step when time is short: measures the cost of a step over all runs in flight,
    parks the runs that cannot finish before the deadline and lets in a waiting chain only if it fits."""

    def __init__(self, start: float, log: Callable[[str], None] | None) -> None:
        self.start, self.log = start, log
        self.next_at = start + PLAN_EVERY_S
        self.last = start
        self.seconds_per_step: float | None = None
        self.parked: set[_Slot] = set()
        self.finished_steps = 0  # steps of the chains that ended since the last look

    def say(self, now: float, text: str) -> None:
        if self.log is not None:
            self.log(f"schedule: {now - self.start:6.0f} s  {text}")

    def update(self, slots: list[_Slot], waiting: deque, now: float, deadline: float) -> None:
        taken = self.finished_steps + sum(s.taken for s in slots)
        self.finished_steps = 0
        for slot in slots:
            slot.taken = 0
        if taken:
            self.seconds_per_step = (now - self.last) / taken
        self.last, self.next_at, time_left = now, now + PLAN_EVERY_S, deadline - now
        if self.seconds_per_step is None:
            return
        known = sorted((s for s in slots if s.remaining() is not None), key=lambda s: s.remaining())
        # at least one steps on: a run that cannot end now keeps its checkpoints for a resume
        fit = max(1, runs_that_fit([s.remaining() for s in known], self.seconds_per_step, time_left))
        parked = set(known[fit:])
        for slot in parked - self.parked:
            self.say(now, f"parked {slot.config.run_id}: {slot.remaining()} steps to go will not fit")
        for slot in self.parked - parked:
            self.say(now, f"resumed {slot.config.run_id}")
        self.parked = parked
        running = len(slots) - len(parked)
        self.say(
            now,
            f"{running} running, {len(parked)} parked, {len(waiting)} waiting; "
            f"{1e3 * self.seconds_per_step:.2f} ms per step over all runs; {time_left:.0f} s left",
        )

    def next_chain(
        self, waiting: deque, active: list[_Slot], deadline: float | None, now: float
    ) -> Sequence[RunConfig] | None:
        """Take the first waiting chain that still ends before the deadline on top of the runs
        stepping now (any, before the first measurement); None if none does."""
        if not waiting:
            return None
        if deadline is None or self.seconds_per_step is None:
            return waiting.popleft()
        remaining = [r for s in active if (r := s.remaining()) is not None]
        for chain in waiting:
            steps = [*remaining, chain_steps(chain)]
            if runs_that_fit(steps, self.seconds_per_step, deadline - now) == len(steps):
                waiting.remove(chain)
                return chain
        return None


def chain_steps(chain: Sequence[RunConfig]) -> int:
    """Training steps of a chain from scratch: its longest run's."""
    last = chain[-1]
    size = last.subset or get_spec(last.dataset).train_size
    return last.epochs * -(-size // last.batch_size)


def _note_company(slots: list[_Slot]) -> None:
    """Add the runs now in flight to each one's ``trained_alongside``."""
    running = {s.config.run_id for s in slots if s.config is not None}
    for slot in slots:
        if slot.config is not None:
            company = running - {slot.config.run_id}
            slot.notes["trained_alongside"] = sorted(set(slot.notes["trained_alongside"]) | company)
