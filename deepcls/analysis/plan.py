"""What to train next, in which order: the runs that take the ledger's undecided lines to their next
look, the lines with the most expected decisions per hour of training first, with what they should
still cost (deepcls.analysis.costs); a grid's training order that fills the conclusions first. Reads
the store; deepcls.execution.runner trains the list."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import pandas as pd

from deepcls.analysis import ledger as ledgers
from deepcls.analysis import statistics as st
from deepcls.analysis.costs import UNKNOWN, row_costs
from deepcls.analysis.ledger import (
    ALPHA,
    CONCLUSIONS,
    DECIDED,
    DESIGN,
    LEDGER_SEEDS,
    LOOKS,
    PRIMARY,
    Conclusion,
    Side,
    seeds_needed,
    trained_sides,
)
from deepcls.config import RunConfig
from deepcls.paper import grids as experiments
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore


def plan(
    profile: str,
    store: RunStore,
    conclusions: Sequence[Conclusion] = CONCLUSIONS,
    on: str | None = None,
) -> pd.DataFrame:
    """The runs that take every line the ledger has not decided to its next look (deepcls.analysis.ledger:
    3, 6, 10, 16 seeds a side): each side's lowest missing seeds, one line per run (``table``, ``row``,
    ``seed``, ``config``, ``conclusions`` it serves, ``seconds`` it should still cost from the row's stored
    runs' times, less the epochs in its resume checkpoint or in a shorter run of its chain that is kept or
    planned before it (a 30-epoch run continues into the 50-epoch one), NaN if never run, ``timed_on``, the
    device of those times, ``estimated`` where they come from the row's MACs: see deepcls.analysis.costs;
    ``on`` is the device the runs would train on, deepcls.numeric.target_device; ``progress``, how
    far an interrupted or running one has got). A seconds line needs no runs: ``deepcls ledger --time``
    measures it.
    Lines go in order of expected decisions per hour: the chance that the next look decides a line
    (:func:`decision_chance`) over what its runs add to the runs planned before (shared runs are free),
    so each hour of training decides as many lines as it can; never-run rows go last. Within a line the
    sides take turns, the one with fewer seeds first: the first runs of a plan cut short give both sides
    the seeds an interval needs."""
    reading = ledgers.read(conclusions, profile, store)
    found = reading.found
    verdicts = ledgers.ledger(profile, store, conclusions, on)
    primary = verdicts[verdicts["metric"] == PRIMARY].set_index("id")
    costs = row_costs(profile, store, LEDGER_SEEDS, on)

    @functools.cache
    def config_of(side: Side, seed: int) -> RunConfig:
        return experiments.grid(side[0], profile, (seed,), rows=[side[1]])["config"].iloc[0]

    @functools.cache
    def epochs_held(config: RunConfig) -> int:  # what its resume checkpoint or a kept shorter run holds
        prefix = checkpoints.prefix_run(store, config)
        return max(checkpoints.checkpointed_epochs(store, config), prefix.epochs if prefix else 0)

    def chain_cost(runs: Iterable[tuple[Side, int]]) -> float:
        """The runs of one config and seed at several lengths train as one chain (deepcls.execution.runner): it
        costs its longest run, less the epochs already held by a checkpoint or a kept shorter run."""
        chains: dict[RunConfig, list[tuple[Side, int]]] = {}
        for side, seed in runs:
            chains.setdefault(config_of(side, seed).lineage, []).append((side, seed))
        total = 0.0
        for members in chains.values():
            configs = [config_of(*run) for run in members]
            longest = max(range(len(members)), key=lambda i: configs[i].epochs)
            held = max(epochs_held(c) for c in configs)
            total += costs.get(members[longest][0], UNKNOWN).seconds * (1 - held / configs[longest].epochs)
        return total

    missing: dict[str, list[tuple[Side, int]]] = {}
    chance: dict[str, float] = {}
    for conclusion in conclusions:
        line = primary.loc[conclusion.id]
        sides = trained_sides(conclusion)
        if line["verdict"] in DECIDED or not sides:
            continue
        need = seeds_needed(conclusion, min(len(found.get(side, [])) for side in sides))
        ranked = []
        for i, side in enumerate(sides):
            have = {r.config.seed for r in found.get(side, [])}
            free = [seed for seed in LEDGER_SEEDS if seed not in have]
            wanted = free[: max(0, need - len(have))]
            ranked += [(len(have) + k, i, (side, seed)) for k, seed in enumerate(wanted)]
        if ranked:  # the side with fewer seeds first, so that a plan cut short (--runs) still compares
            missing[conclusion.id] = [run for *_, run in sorted(ranked)]
            chance[conclusion.id] = decision_chance(line, need)
    planned: dict[tuple[Side, int], list[str]] = {}
    seconds: dict[tuple[Side, int], float] = {}  # what each run adds to the runs planned before it

    def added(runs: list[tuple[Side, int]]) -> float:
        lineages = {config_of(*run).lineage for run in runs}
        touched = [run for run in planned if config_of(*run).lineage in lineages]
        return chain_cost(touched + runs) - chain_cost(touched)

    def cost(cid: str) -> float:  # what the conclusion adds to the runs planned so far
        more = added([run for run in missing[cid] if run not in planned])
        return math.inf if math.isnan(more) else more

    while missing:
        cheapest = min(missing, key=lambda cid: cost(cid) / chance[cid])  # ties keep the ledger's order
        for run in missing.pop(cheapest):
            if run not in planned:
                seconds[run] = added([run])
            planned.setdefault(run, []).append(cheapest)
    lines = []
    for (side, seed), ids in planned.items():
        config, price = config_of(side, seed), costs.get(side, UNKNOWN)
        lines.append(
            {"table": side[0], "row": side[1], "seed": seed, "config": config, "conclusions": ids}
            | {"seconds": seconds[side, seed], "timed_on": price.device, "estimated": price.estimated}
            | {"progress": checkpoints.progress(store, config) or ""}
        )
    columns = ["table", "row", "seed", "config", "conclusions", "seconds", "timed_on", "estimated", "progress"]
    return pd.DataFrame(lines, columns=columns)


UNKNOWN_CHANCE = 0.5  # the chance of a decision where a line has no spread to plan with yet


def decision_chance(line: pd.Series, seeds: int) -> float:
    """The chance that a line is decided at the look of ``seeds`` a side: the power of its test at
    that look's nominal level (the Pocock design's, deepcls.analysis.ledger.LOOKS) against a true
    difference of its margin, at its observed spread; :data:`UNKNOWN_CHANCE` without a spread (fewer
    than 2 seeds, a collapse rate, an exact rank test) or beyond the design's last look."""
    spread, margin, samples = (line.get(k) for k in ("spread", "margin", "samples"))
    known = all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (spread, margin, samples))
    if not known or seeds not in LOOKS or seeds < 2:
        return UNKNOWN_CHANCE
    level = float(st.nominal_levels(LOOKS, DESIGN, ALPHA)[LOOKS.index(seeds)])
    return max(st.t_test_power(seeds, margin, spread, samples=int(samples), alpha=level), 1e-3)


def wall_seconds(plan: pd.DataFrame, jobs: int) -> float:
    """How long :func:`plan`'s runs should take with ``jobs`` trained at once (``--jobs``): the runner
    hands each chain (the lengths of one config and seed) to the first free worker in plan order, so
    chains are placed greedily on the worker that frees first. Runs of unknown cost count as 0."""
    chains: dict[RunConfig, float] = {}
    for config, seconds in zip(plan["config"], plan["seconds"]):
        chains[config.lineage] = chains.get(config.lineage, 0.0) + (0.0 if math.isnan(seconds) else seconds)
    free_at = [0.0] * max(1, jobs)
    for seconds in chains.values():
        free_at[free_at.index(min(free_at))] += seconds
    return max(free_at)
