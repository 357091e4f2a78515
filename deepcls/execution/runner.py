"""How to train many runs: the one place that does, behind a small executor seam.

``run_grid`` takes RunConfigs (from deepcls.paper.grids or anywhere), skips what the store
already holds, groups the lengths of one extendable config into a chain (each continues the
one before) and hands the chains to an executor. An executor trains chains and reports one
:class:`Outcome` per run; every executor stores the same run folders a single ``fit`` would.

- ``local``: in this process, or ``jobs`` worker processes with the cores shared out.
- ``ray``: one Ray task per chain on a cluster; workers return finished run folders (deepcls.execution.ray_cluster).
- ``concurrent``: ``runs`` runs at once in this process, one step of each in turn, each on its own
  CUDA stream with its own CUDA graphs (deepcls.execution.interleaved); the default when the runs train on a
  CUDA device and one job is asked for.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict

from tqdm.auto import tqdm

from deepcls.config import RunConfig, threads_per_job
from deepcls.engine import runtime
from deepcls.engine.tensorboard import log_dir, write_stored
from deepcls.errors import ConfigError, unknown
from deepcls.execution import chains
from deepcls.execution.chains import Chain, Executor, Options, Outcome, train_chain
from deepcls.execution.interleaved import RUNS_AT_ONCE, train_together
from deepcls.models.catalog import Declarations, declarations
from deepcls.numeric import device_type
from deepcls.progress import bar_timing, show_progress
from deepcls.store.runs import RunStore


class LocalExecutor:
    """This machine: in-process for one job, else ``jobs`` spawned worker processes, each with
    its share of the cores and its own progress-bar line."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ConfigError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs

    def run(self, chains: list[Chain], options: Options) -> Iterator[list[Outcome]]:
        if self.jobs == 1 or len(chains) < 2:
            for chain in chains:
                yield train_chain(chain, options)
            return
        _check_importable(options.models)
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for slot in range(1, self.jobs + 1):
            slots.put(slot)
        threads = threads_per_job(self.jobs)
        with ProcessPoolExecutor(
            max_workers=min(self.jobs, len(chains)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(threads, slots, os.getpid()),
        ) as pool:
            futures = [pool.submit(train_chain, chain, options) for chain in chains]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:  # bad input, Ctrl-C, SystemExit: the grid stops now, not after its runs
                _stop_workers(pool)  # before shutdown, which forgets the pool's processes
                pool.shutdown(wait=False, cancel_futures=True)
                raise


class ConcurrentExecutor:
    """This process: ``runs`` chains in flight at once, one training step of each in turn (on a GPU
    each on its own CUDA stream). ``budget_s``: stop cleanly after that many seconds (runs in flight
    keep their last checkpoints, written at most every ``checkpoint_every_s`` when > 0; running the
    grid again resumes them)."""

    def __init__(
        self,
        runs: int = RUNS_AT_ONCE,
        budget_s: float | None = None,
        checkpoint_every_s: float = 0.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if runs < 1:
            raise ConfigError(f"runs at once must be >= 1, got {runs}")
        if budget_s is not None and not (math.isfinite(budget_s) and budget_s > 0):
            raise ConfigError(f"a budget must be a positive number of seconds, got {budget_s}")
        self.runs, self.budget_s, self.checkpoint_every_s = runs, budget_s, checkpoint_every_s
        self.log = log  # with a budget: a line per scheduling decision (deepcls.execution.interleaved)

    def run(self, chains: list[Chain], options: Options) -> Iterator[list[Outcome]]:
        if chains:
            runtime.configure(chains[0][0].device, chains[0][0].threads)
        for finished in train_together(
            chains,
            runs=self.runs,
            budget_s=self.budget_s,
            log=self.log,
            checkpoint_every_s=self.checkpoint_every_s,
            **{k: v for k, v in asdict(options).items() if k != "models"},  # fit_steps' options (models: known here)
        ):
            yield [Outcome(run_id, error) for run_id, error in finished]


def _ray_executor(**options) -> Executor:
    """deepcls.execution.ray_cluster.RayExecutor, imported on demand: Ray is an optional dependency."""
    try:
        from deepcls.execution.ray_cluster import RayExecutor
    except ImportError as err:
        if (err.name or "").split(".")[0] != "ray":
            raise
        raise ConfigError("the ray executor needs Ray: pip install 'deepcls[ray]'") from None
    return RayExecutor(**options)


EXECUTORS = {"local": LocalExecutor, "concurrent": ConcurrentExecutor, "ray": _ray_executor}


def make_executor(name: str = "local", **options) -> Executor:
    """An executor by name, with its options: ``local`` (``jobs``), ``concurrent`` (``runs``, ``budget_s``, ...),
    ``ray`` (``address``, ``num_cpus``, ``num_gpus``, ...: deepcls.execution.ray_cluster.RayExecutor)."""
    if name not in EXECUTORS:
        raise ConfigError(unknown("executor", [name], EXECUTORS, quoted=True))
    return EXECUTORS[name](**options)


def run_grid(
    configs: Iterable[RunConfig],
    *,
    store: RunStore | None = None,
    results_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool | None = None,
    jobs: int = 1,
    executor: Executor | str | None = None,
    executor_options: dict | None = None,
    keep_weights: bool = False,
    tensorboard: str | os.PathLike | None = None,
) -> list[Outcome]:
    """Train what the store does not have yet (identical configs once), in order; one outcome per
    run trained. A run that fails or diverges is recorded and the grid goes on; bad input
    (DeepclsError) stops it. ``executor`` (an Executor, or a name for :func:`make_executor` with
    ``executor_options``, as the notebooks' parameters give it) defaults to :func:`default_executor`.
    ``keep_weights``: complete runs keep their weights in their run folders, not the cache.
    ``tensorboard``: a folder for TensorBoard logs, one per run (deepcls.engine.tensorboard): the runs
    already stored are written there at the start, each run trained now as it finishes. This process
    writes them from the store, so every executor (Ray's workers on other machines too) logs alike;
    epoch by epoch while a run trains is ``fit``'s."""
    tensorboard_dir = log_dir(tensorboard, "dc.run_grid")  # bad input: said before anything trains
    store = store or RunStore(results_dir)
    configs = list(configs)
    if isinstance(executor, str):
        executor = make_executor(executor, **(executor_options or {}))
    executor = executor or default_executor(configs, jobs)
    options = Options(str(store.root), data_dir, force, progress, keep_weights, declarations())
    unique = list(dict.fromkeys(configs))
    todo = [c for c in unique if force or not store.has(c)]
    if tensorboard_dir is not None:
        trained_now = set(todo)
        write_stored(tensorboard_dir, store, [c for c in unique if c not in trained_now])
    bar = tqdm(
        total=len(todo),
        desc=f"runs ({len(unique) - len(todo)} of {len(unique)} stored)",
        disable=not show_progress(progress) or not todo,
        unit="run",
        position=0,
        **bar_timing(),
    )
    outcomes = []
    try:
        for chain_outcomes in executor.run(extension_chains(todo), options):
            for outcome in chain_outcomes:
                if outcome.error is not None:
                    warnings.warn(f"run {outcome.run_id} failed: {outcome.error}", stacklevel=2)
                bar.update(1)
            if tensorboard_dir is not None:
                write_stored(tensorboard_dir, store, [outcome.run_id for outcome in chain_outcomes])
            outcomes.extend(chain_outcomes)
    finally:
        bar.close()
    return outcomes


def default_executor(configs: Sequence[RunConfig], jobs: int = 1) -> Executor:
    """Several runs at once in this process when they all train on CUDA and one job is asked for;
    else ``LocalExecutor(jobs)`` (on the CPU, interleaving runs gains nothing over processes)."""
    devices = {device_type(c.device) for c in configs}
    if jobs == 1 and devices == {"cuda"}:
        return ConcurrentExecutor()
    return LocalExecutor(jobs)


def extension_chains(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """Group the lengths of each extendable config (shortest first); other configs stand alone."""
    chains: dict[RunConfig, list[RunConfig]] = {}
    for config in configs:
        chains.setdefault(config.lineage, []).append(config)
    return [sorted(chain, key=lambda c: c.epochs) for chain in chains.values()]


def _check_importable(models: Declarations) -> None:
    """ConfigError, in one line, for a family whose builder a spawned worker cannot import: a function
    of ``__main__`` (a notebook's or a script's own), a lambda or a nested function. Workers import
    builders by module; ``"module:function"`` or a function of an importable module works, as does jobs=1."""
    for kind, keywords in models:
        builder = keywords.get("builder")
        if kind != "family" or isinstance(builder, str):
            continue
        try:
            pickle.dumps(builder)  # by reference: pickle names the function's module and qualified name
            portable = getattr(builder, "__module__", "__main__") != "__main__"
        except Exception:  # a lambda or a nested function, which pickle cannot name
            portable = False
        if not portable:
            raise ConfigError(
                f"family {keywords['name']}: worker processes cannot import its builder {builder!r} "
                "(defined here, not in a module); declare it as 'module:function' or train with jobs=1"
            )


WATCH_PARENT_S = 1.0  # how often a worker checks that the grid's process is still there


def _start_worker(threads: int, slots: multiprocessing.Queue, parent: int) -> None:
    runtime.configure("auto", threads)
    chains.BAR_POSITION = slots.get()
    threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="exit-with-parent").start()


def _exit_with(parent: int) -> None:
    """End this worker when the grid's process is gone (killed, SIGTERM): an orphan would train on for
    an hour, holding its run's lock and a core, with nobody to collect its outcome. Its run keeps its
    last checkpoint; running the grid again resumes it."""
    while os.getppid() == parent:
        time.sleep(WATCH_PARENT_S)
    os._exit(1)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers mid-run (each run keeps its last checkpoint)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((pool._processes or {}).values()):  # noqa: SLF001 (no public way before 3.14)
        process.terminate()
