"""Grids on a Ray cluster: ``runner.make_executor("ray", address=...)``, one Ray task per chain of runs.

No shared filesystem: a task trains into a scratch store of its node's own and returns the finished
run folders as bytes; the driver writes each into its store atomically (``RunStore.save_files``), so
the driver's store never holds a partial run, and a run trained on the cluster is the same folder a
local ``fit`` writes. A dataset travels once per node: the driver puts its npz into Ray's object store
once, and the first task on a node that needs it writes it into that node's scratch folder, where the
node's later tasks find it; when the grid ends, the driver has every node remove its copy.

Locked by default: the driver joins with Ray's token authentication (``RAY_AUTH_MODE=token`` unless
the environment sets it; ``disabled`` joins a cluster without authentication), its token taken from
``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, or ``~/.ray/auth_token``. Without an
address the executor starts a Ray of its own that listens on 127.0.0.1 only and is locked with a
token made for it, held in this process's environment for the grid and written nowhere.

Faults: a worker process killed mid-run makes Ray run its task again (``max_retries``); on the same
node the retry resumes from the run's epoch checkpoint in the scratch store, elsewhere it starts over.
Either way the driver receives and stores each run once. A driver killed mid-grid loses only runs it
has not received yet: the same command again trains what its store lacks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from unittest import mock

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from deepcls.atomic import write_with
from deepcls.config import RunConfig
from deepcls.data import dataset_path, load_dataset
from deepcls.engine import runtime
from deepcls.errors import ClusterError, ConfigError, DeepclsError
from deepcls.execution.chains import Chain, Options, Outcome, train_chain
from deepcls.store import checkpoints
from deepcls.store.runs import RunStore

SCRATCH_ENV = "DEEPCLS_RAY_SCRATCH"  # a node's scratch folder, else <tmp>/deepcls-ray
CONNECT_TIMEOUT_S = 10.0  # to reach the head before Ray is asked to join it
CLEANUP_TIMEOUT_S = 60.0  # for the nodes to remove a finished grid's data
TASK_NAME = "deepcls-chain"  # worker processes running a chain are titled ray::deepcls-chain
AUTH_MODE, AUTH_TOKEN, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
TOKEN_HELP = "the head's token (`ray get-auth-token` there) in RAY_AUTH_TOKEN or the file RAY_AUTH_TOKEN_PATH names"

Dataset = tuple[str, "ray.ObjectRef"]  # (the grid's folder under <scratch>/data, the npz bytes in the object store)
RunFiles = dict[str, bytes]


class RayExecutor:
    """A Ray cluster at ``address`` (None: ``$RAY_ADDRESS``, else a Ray of its own on 127.0.0.1).

    Each chain is a task asking for ``num_cpus`` CPUs (its torch thread count, at least 1) and
    ``num_gpus`` GPUs (fractional to share one card); a task whose worker dies is run again up to
    ``max_retries`` times. ``scratch_dir`` is where workers keep their node's data and runs in training.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_retries: int = 3,
        scratch_dir: str | None = None,
    ) -> None:
        for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if num_cpus + num_gpus == 0:
            raise ConfigError(f"a run needs some CPUs or GPUs, got num_cpus={num_cpus}, num_gpus={num_gpus}")
        if address is not None and not _known_address(address):
            raise ConfigError(
                f"the Ray address must be HOST:PORT (port 1-65535), auto, local or ray://..., got {address!r}"
            )
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        self.address = address
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.max_retries = max_retries
        self.scratch_dir = scratch_dir

    def run(self, chains: list[Chain], options: Options) -> Iterator[list[Outcome]]:
        if not chains:
            return
        store = RunStore(options.results_dir)
        store.ensure_writable()
        names = sorted({chain[0].dataset for chain in chains})
        for name in names:
            load_dataset(name, options.data_dir)  # here, downloaded if missing; bad data stops the grid with one line
        with self._connect():
            grid = uuid.uuid4().hex[:16]  # the nodes' data folder for this grid, removed when it ends
            pending: dict[ray.ObjectRef, Chain] = {}
            try:
                datasets = {name: _put_dataset(name, options.data_dir, grid) for name in names}
                task = _train_chain_task.options(
                    name=TASK_NAME,
                    num_cpus=self.num_cpus,
                    num_gpus=self.num_gpus,
                    max_retries=self.max_retries,
                    retry_exceptions=False,
                )
                # the workers' own store and data; their progress bars would interleave with the driver's
                remote = replace(options, results_dir=None, data_dir=None, progress=False)
                threads = max(1, int(self.num_cpus))
                for chain in chains:
                    dataset = datasets[chain[0].dataset]  # a tuple, so Ray leaves the bytes where they are
                    pending[task.remote(list(chain), remote, dataset, threads, self.scratch_dir)] = chain
                while pending:
                    [done], _ = ray.wait(list(pending), num_returns=1)
                    yield _store_chain(store, pending.pop(done), done)
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)
                _remove_node_data(grid, self.scratch_dir)

    def _connect(self) -> contextlib.AbstractContextManager:
        """Join the cluster unless this process already has; what leaves it again (Ray shut down,
        the environment's Ray settings as they were), or nothing when the process was joined already."""
        if ray.is_initialized():
            return contextlib.nullcontext()
        address = self.address or os.environ.get("RAY_ADDRESS") or "local"
        locked = os.environ.get(AUTH_MODE, "token").lower() == "token"
        stack = contextlib.ExitStack()
        stack.enter_context(_token_auth(own_token=address == "local"))
        # a Ray of its own keeps its session folders in a folder of ours, removed after it shuts down:
        # /tmp/ray gains no session_* folder and its session_latest link stays where it pointed
        sessions = tempfile.mkdtemp(prefix="deepcls-ray-") if address == "local" else None
        if sessions:
            stack.callback(shutil.rmtree, sessions, ignore_errors=True)
        stack.callback(ray.shutdown)  # also after a failed start; before the environment is restored
        try:
            if address == "local":
                with _loopback_only():
                    ray.init(
                        address="local",
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                        _temp_dir=sessions,
                    )
            else:
                if head := _host_port(address):  # Ray itself retries for minutes, and its refusals take 20 s
                    socket.create_connection(head, timeout=CONNECT_TIMEOUT_S).close()
                    _check_token(head)
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except BaseException as err:
            stack.close()
            if isinstance(err, ray.exceptions.AuthenticationError):  # Ray's first sentence says which
                raise _refused(address, locked, err.message.split(". ")[0]) from None
            if not isinstance(err, Exception) or isinstance(err, DeepclsError):  # an interrupt; our own line
                raise
            if not isinstance(err, OSError):  # Ray's own failures to start (a timeout): its first line
                first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
                where = "start Ray on this machine" if address == "local" else f"reach a Ray cluster at {address}"
                raise ClusterError(f"cannot {where}: {first.strip()}") from None
            if "InvalidAuthToken" in str(err.__cause__):  # the head's reply to a missing or wrong token
                raise _refused(address, locked, "the head refused this client's token, or its lack of one") from None
            if address == "local":
                raise ClusterError(f"cannot start Ray on this machine: {err}") from None
            raise ClusterError(f"cannot reach a Ray cluster at {address}: {err}") from None
        return stack


@contextlib.contextmanager
def _token_auth(own_token: bool) -> Iterator[None]:
    """Ray's token authentication for this process while the block runs (``RAY_AUTH_MODE=token``
    unless the environment says otherwise); ``own_token``: a fresh token, unless the environment
    names one, for a Ray this process starts. The environment is restored afterwards."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # older than 2.52: no token authentication
        raise ConfigError(f"the ray executor needs Ray >= 2.52 (token authentication), not {ray.__version__}") from None

    def reload() -> None:  # Ray reads the mode and the token once and keeps them
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()

    try:
        with mock.patch.dict(os.environ):  # restored as it was when the block ends
            os.environ.setdefault(AUTH_MODE, "token")
            if own_token and not (os.environ.get(AUTH_TOKEN) or os.environ.get(AUTH_TOKEN_PATH)):
                os.environ[AUTH_TOKEN] = secrets.token_hex(32)  # Ray's own form; its nodes inherit the environment
            reload()
            yield
    finally:
        reload()


@contextlib.contextmanager
def _loopback_only() -> Iterator[None]:
    """A Ray started in the block takes 127.0.0.1 for this node's address, so that every process
    of it listens on loopback only. Ray binds all interfaces for any other node address and turns a
    requested 127.0.0.1 into the machine's; the switch it keeps for Windows and macOS, where a local
    Ray is loopback-only, does the same on Linux."""
    from ray._private import ray_constants

    with mock.patch.object(ray_constants, "ENABLE_RAY_CLUSTER", False):
        yield


def _check_token(head: tuple[str, int]) -> None:
    """Ask the head once whether it accepts this client's token: Ray's own join would retry a
    refusal for 20 s, logging each try."""
    from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
    from ray._raylet import GcsClient

    ensure_token_if_auth_enabled(None, create_token_if_missing=False)  # else the client aborts the process
    try:
        with _quiet_stderr():  # Ray's C++ logs its refusal there before it raises
            GcsClient(address=f"{head[0]}:{head[1]}")
    except ray.exceptions.AuthenticationError:
        raise
    except Exception:  # anything else is for Ray's join to report
        pass


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: Ray's C++ writes there, past sys.stderr."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _refused(address: str, locked: bool, reason: str) -> ClusterError:
    """The error for a token that is missing, unreadable or refused."""
    where = "Ray on this machine" if address == "local" else f"the Ray cluster at {address}"
    if not locked:
        return ClusterError(f"cannot join {where}: {reason}; set {AUTH_MODE}=token and {TOKEN_HELP}")
    return ClusterError(
        f"cannot join {where}: {reason}; it needs {TOKEN_HELP} or ~/.ray/auth_token "
        f"({AUTH_MODE}=disabled joins a cluster without authentication)"
    )


def _known_address(address: str) -> bool:
    """Whether ``address`` is one Ray takes: ``auto``, ``local``, ``ray://...`` or ``HOST:PORT``."""
    if not isinstance(address, str):
        return False
    if address in ("auto", "local") or address.startswith("ray://"):
        return True
    found = _host_port(address)
    return found is not None and bool(found[0]) and " " not in found[0] and 0 < found[1] < 65536


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a plain ``HOST:PORT`` address (not ``auto``, ``local`` or ``ray://...``)."""
    host, _, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if host and "/" not in host and port.isdigit() else None


def _put_dataset(name: str, data_dir: str | None, grid: str) -> Dataset:
    """Put a dataset's npz bytes into the object store, once for the whole grid."""
    return grid, ray.put(dataset_path(name, data_dir).read_bytes())


def _scratch(scratch_dir: str | None) -> Path:
    """A node's scratch folder: ``scratch_dir``, else ``$DEEPCLS_RAY_SCRATCH``, else <tmp>/deepcls-ray."""
    return Path(scratch_dir or os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "deepcls-ray")


def _remove_node_data(grid: str, scratch_dir: str | None) -> None:
    """Have every live node remove its copies of a grid's data (best effort: a lost node keeps its own)."""
    try:
        nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
        refs = [
            _remove_data_task.options(
                num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
            ).remote(grid, scratch_dir)
            for node in nodes
        ]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=CLEANUP_TIMEOUT_S)
    except ray.exceptions.RayError:  # the cluster itself is gone
        pass


@ray.remote
def _remove_data_task(grid: str, scratch_dir: str | None) -> None:
    """On a node: remove the grid's data folder, and the data folder once no grid uses it."""
    data = _scratch(scratch_dir) / "data"
    shutil.rmtree(data / grid, ignore_errors=True)
    with contextlib.suppress(OSError):
        data.rmdir()


def _store_chain(store: RunStore, chain: Chain, ref: ray.ObjectRef) -> list[Outcome]:
    """Write the run folders a finished task returned; one outcome per run of its chain."""
    try:
        results: list[tuple[Outcome, RunFiles | None]] = ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, DeepclsError):
            raise err.cause from None  # bad input stops the grid, as with the local executor
        error: BaseException = err.cause or err  # e.g. a node's full disk: its runs fail, the grid goes on
    except ray.exceptions.RayError as err:  # workers or nodes lost more often than max_retries
        error = err
    else:
        for outcome, files in results:
            if files is not None:
                store.save_files(outcome.run_id, files)
        return [outcome for outcome, _ in results]
    message = f"{type(error).__name__}: {' '.join(str(error).split())}"[:500]
    return [Outcome(config.run_id, message) for config in chain]


@ray.remote
def _train_chain_task(
    chain: list[RunConfig], options: Options, dataset: Dataset, threads: int, scratch_dir: str | None
) -> list[tuple[Outcome, RunFiles | None]]:
    """On a worker: train a chain into the node's scratch store; return each run's outcome and files."""
    scratch = _scratch(scratch_dir)
    data_dir = _node_data_dir(scratch / "data", chain[0].dataset, dataset)
    store = RunStore(scratch)
    runtime.configure("auto", threads)
    outcomes = train_chain(chain, replace(options, results_dir=str(store.root), data_dir=str(data_dir)))
    results = []
    for outcome in outcomes:
        stored = (store.run_dir(outcome.run_id) / "metrics.json").exists()
        results.append((outcome, store.run_files(outcome.run_id) if stored else None))
    for config in chain:  # the driver keeps them now; a final state only served this chain's next length
        shutil.rmtree(store.run_dir(config), ignore_errors=True)
        checkpoints.final_path(store, config).unlink(missing_ok=True)
    return results


def _node_data_dir(root: Path, name: str, dataset: Dataset) -> Path:
    """This node's copy of a dataset for its grid, fetched from the object store by the node's first task."""
    grid, ref = dataset
    folder = root / grid
    path = folder / dataset_path(name).name
    if not path.exists():
        payload = ray.get(ref)
        write_with(path, lambda tmp: tmp.write_bytes(payload), suffix=".npz")
    return folder
