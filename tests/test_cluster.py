"""The ray executor on a real two-node Ray cluster on this machine, inside a network namespace of its own.

The module starts the cluster once: ``unshare --net`` makes a namespace whose only address is
127.0.0.1, and the head node, a second node and every grid's driver (tests/cluster_driver.py) run in
it through ``nsenter``; nothing here can send a packet beyond loopback. Each node offers one CPU, so
two runs train at once, one per node.

The cluster is locked as the README's procedure locks one: ``RAY_AUTH_MODE=token`` everywhere, a
token made on the head with ``ray get-auth-token --generate`` in its home folder, the second node
given it by ``RAY_AUTH_TOKEN`` and the drivers by ``RAY_AUTH_TOKEN_PATH``. The second node and the
drivers have a home folder of their own holding another, stale ``~/.ray/auth_token`` (what a local
``ray.init()`` leaves behind): the tests pass with a token there and without one.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
from helpers import SMALL_VGG7

from deepcls.cli import main
from deepcls.config import RunConfig
from deepcls.engine.fit import TIMING_COLUMNS
from deepcls.errors import ConfigError, DataError
from deepcls.execution.runner import Outcome, make_executor, run_grid
from deepcls.paper import grids as experiments
from deepcls.store.runs import RunStore

REPO_ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("cluster_driver.py")
PORT = 6380  # the namespace is ours: no other process can hold its ports
NODE_OPTIONS = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000", "--disable-usage-stats"]
METRICS_TIMING = {"wall_time_s", "images_per_s", "finished_at"}
# Smoke-sized VGG-7 runs on real MNIST, one torch thread each, whichever executor trains them.
BASE = RunConfig(**SMALL_VGG7, batch_size=32, epochs=2, subset=256, test_subset=256, threads=1)


@dataclass
class Cluster:
    enter: list[str]  # the command prefix that runs a command inside the cluster's namespace
    address: str
    nodes: list[subprocess.Popen]  # `ray start --block` of the head and of the second node
    log: Path
    env: dict[str, str]  # a driver's environment: the token in a file, a stale one in ~/.ray

    def driver(self, configs: list[RunConfig], root: Path, data_dir: Path, scratch: Path) -> list[str]:
        """The command that runs a grid of ``configs`` on this cluster into the store at ``root``."""
        args = {
            "address": self.address,
            "nodes": len(self.nodes),
            "configs": [c.to_dict() for c in configs],
            "results_dir": str(root),
            "data_dir": str(data_dir),
            "scratch_dir": str(scratch),
        }
        return [*self.enter, sys.executable, str(DRIVER), json.dumps(args)]

    def run_grid(self, configs: list[RunConfig], root: Path, data_dir: Path, scratch: Path) -> dict[str, Any]:
        done = subprocess.run(
            self.driver(configs, root, data_dir, scratch), env=self.env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"driver failed:\n{done.stdout}\n{done.stderr}\n{self.tail()}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def task_processes(self) -> list[psutil.Process]:
        """The Ray worker processes training a chain now (titled ray::deepcls-chain)."""
        found = []
        for node in self.nodes:
            for child in psutil.Process(node.pid).children(recursive=True):
                try:
                    if " ".join(child.cmdline()).startswith("ray::deepcls-chain"):
                        found.append(child)
                except psutil.NoSuchProcess:
                    pass
        return found

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""


def _env(home: Path) -> dict[str, str]:
    """The tests' environment, with this checkout first on the path of every Ray process, ``home``
    for its home folder and no Ray authentication settings of the machine's."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    return {**env, "HOME": str(home), "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0", "DEEPCLS_PROGRESS": "0"}


def _home(root: Path, token: str | None = None) -> Path:
    """A home folder; ``token``: with it in ~/.ray/auth_token, as Ray keeps one."""
    root.mkdir(parents=True)
    if token is not None:
        (root / ".ray").mkdir()
        (root / ".ray" / "auth_token").write_text(token)
    return root


def _wait_for(condition: Any, what: str, timeout: float, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(poll)


def _no_namespaces() -> str:
    """Why a network namespace of the test's own cannot be made here (empty when it can)."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "the cluster tests need unshare and nsenter (util-linux)"
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        return "the cluster tests need root (or user namespaces) to make a network namespace: unshare --net failed"
    return ""


def _need_ray_and_namespaces() -> None:
    if not os.environ.get("CI"):  # CI installs the dev extra, which has Ray: never skip there
        pytest.importorskip("ray")
    missing = _no_namespaces()
    if missing and os.environ.get("CI"):  # CI must run the cluster
        pytest.fail(missing, pytrace=False)
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _need_ray_and_namespaces()
    ray_cli = Path(sys.executable).with_name("ray")  # the venv's, beside its python
    if not ray_cli.exists():
        ray_cli = Path(shutil.which("ray") or "ray")
    holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])  # holds the namespace open
    netns = f"/proc/{holder.pid}/ns/net"
    temp = Path(tempfile.mkdtemp(prefix="dcray-"))  # short: Ray's socket paths live under it
    log = tmp_path_factory.mktemp("ray") / "nodes.log"
    homes = tmp_path_factory.mktemp("homes")
    head_home, home = _home(homes / "head"), _home(homes / "other", token=secrets.token_hex(32))  # stale
    scratch = str(tmp_path_factory.mktemp("scratch"))  # the nodes' default scratch
    head_env = {**_env(head_home), "RAY_AUTH_MODE": "token", "DEEPCLS_RAY_SCRATCH": scratch}
    nodes: list[subprocess.Popen] = []
    try:
        _wait_for(lambda: os.readlink(netns) != os.readlink("/proc/self/ns/net"), "network namespace", 30, 0.01)
        enter = ["nsenter", f"--net={netns}"]
        subprocess.run([*enter, "ip", "link", "set", "lo", "up"], check=True)
        made = subprocess.run(
            [*enter, str(ray_cli), "get-auth-token", "--generate"], env=head_env, capture_output=True, text=True
        )
        token = made.stdout.strip()
        assert made.returncode == 0 and token == (head_home / ".ray" / "auth_token").read_text().strip(), made.stderr
        token_file = homes / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        node_env = {**_env(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "DEEPCLS_RAY_SCRATCH": scratch}
        address = f"127.0.0.1:{PORT}"
        with open(log, "ab") as out:
            start = [*enter, str(ray_cli), "start", "--block", "--node-ip-address=127.0.0.1", *NODE_OPTIONS]
            head = [f"--port={PORT}", "--head", "--include-dashboard=false", f"--temp-dir={temp}"]
            nodes.append(subprocess.Popen([*start, *head], env=head_env, stdout=out, stderr=out))
            _wait_for(lambda: log.read_text().count("Ray runtime started") == 1, "head node start", 180)
            nodes.append(subprocess.Popen([*start, f"--address={address}"], env=node_env, stdout=out, stderr=out))
            _wait_for(lambda: log.read_text().count("Ray runtime started") == 2, "second node start", 180)
        driver_env = {**_env(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}
        yield Cluster(enter, address, nodes, log, driver_env)
    finally:
        family = [p for node in nodes for p in _descendants(node.pid)]
        for node in reversed(nodes):
            node.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        for process in family:  # anything the nodes left behind
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        holder.kill()
        holder.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _open_files(process: psutil.Process) -> list[str]:
    try:
        return [f.path for f in process.open_files()]
    except psutil.NoSuchProcess:
        return []


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_same_runs(cluster_root: Path, local_root: Path, ids: set[str]) -> None:
    """Both stores hold exactly ``ids``, with the same files and results (timings aside)."""
    a, b = RunStore(cluster_root), RunStore(local_root)
    assert set(a.run_ids()) == set(b.run_ids()) == ids
    assert [p.name for p in a.runs.iterdir() if p.name.startswith(".")] == []  # no temporaries
    for run_id in ids:
        x, y = a.load(run_id), b.load(run_id)
        assert sorted(p.name for p in x.path.iterdir()) == sorted(p.name for p in y.path.iterdir())
        assert (x.path / "config.json").read_bytes() == (y.path / "config.json").read_bytes()
        pd.testing.assert_frame_equal(
            x.history.drop(columns=TIMING_COLUMNS), y.history.drop(columns=TIMING_COLUMNS), check_exact=True
        )
        timing_free = [{k: v for k, v in r.metrics.items() if k not in METRICS_TIMING} for r in (x, y)]
        assert timing_free[0] == timing_free[1]
        np.testing.assert_array_equal(x.confusion, y.confusion)
        assert x.samples.keys() == y.samples.keys()
        for key in x.samples:
            np.testing.assert_array_equal(x.samples[key], y.samples[key])


def test_a_grid_on_two_nodes_stores_what_the_local_executor_stores(
    cluster: Cluster, data_dir: Path, tmp_path: Path
) -> None:
    short = BASE.replace(epochs=1)  # continued by BASE in the same task
    diverging = BASE.replace(optimizer="sgd", lr=1e6, seed=2)
    grid = [BASE, short, BASE.replace(seed=1), BASE.replace(batch_norm=True), diverging]
    outcome = cluster.run_grid(grid, tmp_path / "cluster", data_dir, tmp_path / "scratch")
    assert sorted(run_id for run_id, _ in outcome["outcomes"]) == sorted(c.run_id for c in grid)
    assert all(error is None for _, error in outcome["outcomes"])

    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        run_grid(grid, results_dir=str(tmp_path / "local"), data_dir=str(data_dir), progress=False)
    finally:
        torch.set_num_threads(threads)
    local_seconds = time.perf_counter() - start
    print(f"grid of {len(grid)} runs: cluster {outcome['seconds']:.1f} s, local executor {local_seconds:.1f} s")

    assert_same_runs(tmp_path / "cluster", tmp_path / "local", {c.run_id for c in grid})
    store = RunStore(tmp_path / "cluster")
    assert store.load(BASE).metrics["extended_from"] == short.run_id  # the chain stayed in one task
    assert store.status(diverging) == "diverged"
    assert list((tmp_path / "scratch" / "runs").iterdir()) == []  # the workers keep no finished run
    assert not (tmp_path / "scratch" / "data").exists()  # nor the grid's data


def test_a_worker_killed_mid_run_is_retried_and_every_run_is_stored_once(
    cluster: Cluster, data_dir: Path, tmp_path: Path
) -> None:
    longer = BASE.replace(epochs=4, subset=3000)
    grid = [longer.replace(seed=seed) for seed in range(4)]
    root, scratch = tmp_path / "cluster", tmp_path / "scratch"
    checkpoints = RunStore(scratch).checkpoints
    driver = subprocess.Popen(
        cluster.driver(grid, root, data_dir, scratch), env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        training: list[tuple[psutil.Process, str]] = []  # (worker, the lock of the run it trains)

        def mid_run() -> bool:
            resumable = [p for p in checkpoints.glob("*.pt") if not p.name.endswith(".final.pt")]
            training[:] = [(p, f) for p in cluster.task_processes() for f in _open_files(p) if f.endswith(".lock")]
            return bool(resumable and training)

        _wait_for(mid_run, "a worker with an epoch checkpoint", 300, 0.02)
        victim, lock = training[0]
        victim.kill()  # while it holds a run's lock: mid-run, its task cannot have returned
        stdout, stderr = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, f"{stdout.decode()}\n{stderr.decode()}"
    outcomes = json.loads(stdout.decode().strip().splitlines()[-1])["outcomes"]
    assert sorted(run_id for run_id, _ in outcomes) == sorted(c.run_id for c in grid)  # each once
    assert all(error is None for _, error in outcomes)
    killed = next(c for c in grid if lock.endswith(f"{c.lineage.run_id}.lock"))
    assert killed.run_id in {run_id for run_id, _ in outcomes}  # stored: its task was run again
    store = RunStore(root)
    assert store.run_ids() == sorted(c.run_id for c in grid)
    assert [p.name for p in store.runs.iterdir() if p.name.startswith(".")] == []
    for config in grid:
        record = store.load(config)
        assert record.status == "complete" and list(record.history["epoch"]) == [1, 2, 3, 4]


def test_a_killed_command_leaves_no_partial_run_and_the_rerun_trains_only_what_is_missing(
    cluster: Cluster, data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    command = [*cluster.enter, sys.executable, "-m", "deepcls", "results", "--profile", "smoke"]
    command += ["--tables", "vgg_mnist", "--rows", "6,9", "--seeds", "0,1,2", "--train"]
    command += ["--executor", "ray", "--address", cluster.address]
    command += ["--results-dir", str(root), "--data-dir", str(data_dir)]
    grid = experiments.grid(["vgg_mnist"], "smoke", [0, 1, 2], [6, 9])["config"]
    store = RunStore(root)
    driver = subprocess.Popen(command, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: len(store.run_ids()) >= 1, "a first stored run", 300, 0.01)
        driver.kill()
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.communicate()
    stored = set(store.run_ids())
    assert 1 <= len(stored) < len(grid)
    assert [p.name for p in store.runs.iterdir() if p.name.startswith(".tmp-")] == []

    rerun = cluster.run_grid(list(grid), root, data_dir, tmp_path / "scratch")
    assert {run_id for run_id, _ in rerun["outcomes"]} == {c.run_id for c in grid} - stored
    assert set(store.run_ids()) == {c.run_id for c in grid}
    done = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("vgg7") >= 2 and "pending" not in done.stdout  # the table shows the stored runs


def test_a_client_without_the_clusters_token_is_refused_in_one_line(
    cluster: Cluster, data_dir: Path, tmp_path: Path
) -> None:
    command = [*cluster.enter, sys.executable, "-m", "deepcls", "results", "--profile", "smoke", "--train"]
    command += ["--tables", "vgg_mnist", "--rows", "6", "--executor", "ray", "--address", cluster.address]
    command += ["--results-dir", str(tmp_path / "results"), "--data-dir", str(data_dir)]
    stale = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN_PATH"}  # only ~/.ray's stale token
    none = {k: v for k, v in stale.items() if k != "RAY_AUTH_MODE"} | {"HOME": str(_home(tmp_path / "home"))}
    clients = {  # deepcls asks for token authentication itself when RAY_AUTH_MODE is unset
        "a wrong token": (stale, "InvalidAuthToken: Authentication token is missing or incorrect; it needs"),
        "no token": (none, "no authentication token was found; it needs the head's token"),
        "none asked for": ({**stale, "RAY_AUTH_MODE": "disabled"}, "; set RAY_AUTH_MODE=token and the head's token"),
    }
    for client, (env, reason) in clients.items():
        start = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - start
        assert done.returncode == 2 and done.stdout == "", f"{client}: {done.stdout}{done.stderr}"
        assert done.stderr.startswith(f"deepcls: error: cannot join the Ray cluster at {cluster.address}: ")
        assert done.stderr.count("\n") == 1 and reason in done.stderr, f"{client}: {done.stderr}"
        assert seconds < 60, f"{client}: refused after {seconds:.0f} s"
    assert RunStore(tmp_path / "results").run_ids() == []


def test_a_ray_of_its_own_listens_on_loopback_only_is_locked_and_leaves_no_data(data_dir: Path, tmp_path: Path) -> None:
    """Without an address the executor starts Ray itself. In a namespace where this machine has
    another address, with a route through it, every socket listens on 127.0.0.1 all the same; the
    token lives in the driver's environment for the grid only, never in ~/.ray, and the nodes'
    copy of the data and Ray's session folders are gone when the grid ends."""
    _need_ray_and_namespaces()
    home, scratch = _home(tmp_path / "home"), tmp_path / "scratch"
    config = BASE.replace(epochs=1)
    args = {"address": None, "nodes": 1, "configs": [config.to_dict()], "results_dir": str(tmp_path / "results")}
    args |= {"data_dir": str(data_dir), "scratch_dir": None, "watch": True}
    network = "ip link set lo up && ip addr add 192.0.2.1/24 dev lo && ip route add default dev lo src 192.0.2.1"
    command = ["unshare", "--net", "sh", "-c", f'{network} && exec "$@"', "sh", sys.executable, str(DRIVER)]
    env = {**_env(home), "DEEPCLS_RAY_SCRATCH": str(scratch)}  # the scratch folder workers default to
    temporary = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    env["TMPDIR"] = str(temporary)  # where Ray would keep ray/session_* and ray/session_latest
    try:
        done = subprocess.run([*command, json.dumps(args)], env=env, capture_output=True, text=True, timeout=600)
        left = sorted(p.name for p in temporary.iterdir())
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    assert done.returncode == 0, f"driver failed:\n{done.stdout}\n{done.stderr}"
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["outcomes"] == [[config.run_id, None]] and RunStore(tmp_path / "results").run_ids() == [
        config.run_id
    ]
    assert outcome["listeners"] and set(outcome["listeners"]) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
    assert outcome["ray_env"] == {}  # the driver's environment as it was
    assert not (home / ".ray").exists()
    assert scratch.is_dir() and not (scratch / "data").exists()
    assert left == []  # its session folders went with it: no ray/session_*, no session_latest repointed


def test_make_executor_ray_checks_its_options() -> None:
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="needs some CPUs or GPUs"):
        make_executor("ray", num_cpus=0)
    with pytest.raises(ConfigError, match="max_retries"):
        make_executor("ray", max_retries=-1)


def test_without_ray_the_ray_executor_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    monkeypatch.delitem(sys.modules, "deepcls.execution.ray_cluster", raising=False)
    with pytest.raises(ConfigError, match=r"the ray executor needs Ray: pip install 'deepcls\[ray\]'"):
        make_executor("ray")
    args = ["results", "--profile", "smoke", "--tables", "vgg_mnist", "--rows", "6", "--train", "--executor", "ray"]
    assert main([*args, "--results-dir", str(tmp_path / "results")]) == 2
    out, err = capsys.readouterr()
    assert err == "deepcls: error: the ray executor needs Ray: pip install 'deepcls[ray]'\n" and out == ""
    assert not (tmp_path / "results").exists()


def test_bad_data_stops_a_ray_grid_before_it_reaches_the_cluster(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.npz").write_bytes(b"not a zip")  # corrupt, not missing: nothing is downloaded
    executor = make_executor("ray", address="127.0.0.1:1")  # nothing listens there: it must not be tried
    with pytest.raises(DataError, match="mnist.npz is not a readable .npz file"):
        run_grid(
            [BASE],
            results_dir=str(tmp_path / "results"),
            data_dir=str(tmp_path / "data"),
            progress=False,
            executor=executor,
        )
    assert not ray.is_initialized() and RunStore(tmp_path / "results").run_ids() == []


def test_a_cluster_that_cannot_be_reached_is_one_error_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("DEEPCLS_PROGRESS", "0")
    args = ["results", "--profile", "smoke", "--tables", "vgg_mnist", "--rows", "6", "--train", "--executor", "ray"]
    args += ["--address", "127.0.0.1:1", "--results-dir", str(tmp_path / "results"), "--data-dir", str(data_dir)]
    start = time.monotonic()
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert err.startswith("deepcls: error: cannot reach a Ray cluster at 127.0.0.1:1: ") and err.count("\n") == 1
    assert out == "" and time.monotonic() - start < 60 and RunStore(tmp_path / "results").run_ids() == []


def test_a_ray_that_times_out_starting_is_one_error_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray failing to start raises its own exception with a multi-line message (here its startup
    timeout, as a slow or overloaded machine gives it; ray.init stands in for that machine): the
    command ends in one line naming it, and the session folder made for that Ray is removed."""
    ray = pytest.importorskip("ray")
    made: list[str] = []

    def timed_out(**kwargs: Any) -> None:
        made.append(kwargs["_temp_dir"])
        raise Exception("The current node timed out during startup. This could happen because some of the Ray\n"
                        "processes failed to startup.\n  (25 lines of a traceback's worth follow)")  # fmt: skip

    monkeypatch.setattr(ray, "init", timed_out)
    monkeypatch.setenv("DEEPCLS_PROGRESS", "0")
    args = ["results", "--profile", "smoke", "--tables", "vgg_mnist", "--rows", "6", "--train", "--executor", "ray"]
    args += ["--results-dir", str(tmp_path / "results"), "--data-dir", str(data_dir)]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert err == (
        "deepcls: error: cannot start Ray on this machine: The current node timed out during startup. This could "
        "happen because some of the Ray\n"
    )
    assert out == "" and len(made) == 1 and not Path(made[0]).exists()


def test_the_driver_stores_returned_runs_and_turns_lost_workers_into_failed_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_run: Any
) -> None:
    """What the driver does with a finished task's result, faked without a cluster."""
    ray = pytest.importorskip("ray")
    from deepcls.execution import ray_cluster

    worker, driver = RunStore(tmp_path / "worker"), RunStore(tmp_path / "driver")
    stored_run(worker.root, BASE)
    chain = [BASE.replace(epochs=1), BASE]
    results = [(Outcome(chain[0].run_id, "RuntimeError: boom"), None), (Outcome(BASE.run_id), worker.run_files(BASE))]
    monkeypatch.setattr(ray, "get", lambda ref: results)
    assert ray_cluster._store_chain(driver, chain, None) == [outcome for outcome, _ in results]
    assert driver.run_ids() == [BASE.run_id] and driver.run_files(BASE) == worker.run_files(BASE)

    def lost(ref: Any) -> Any:
        raise ray.exceptions.WorkerCrashedError()

    monkeypatch.setattr(ray, "get", lost)
    outcomes = ray_cluster._store_chain(driver, chain, None)  # retries used up: the runs fail, the grid goes on
    assert [o.run_id for o in outcomes] == [c.run_id for c in chain]
    assert all(o.error.startswith("WorkerCrashedError: ") and "\n" not in o.error for o in outcomes)

    def disk_full(ref: Any) -> Any:
        raise ray.exceptions.RayTaskError("_train_chain_task", "Traceback ...", OSError(28, "No space left on device"))

    monkeypatch.setattr(ray, "get", disk_full)
    outcomes = ray_cluster._store_chain(driver, chain, None)
    assert [o.error for o in outcomes] == ["OSError: [Errno 28] No space left on device"] * 2

    def bad_input(ref: Any) -> Any:
        raise ray.exceptions.RayTaskError("_train_chain_task", "Traceback ...", ConfigError("unknown model 'x'"))

    monkeypatch.setattr(ray, "get", bad_input)
    with pytest.raises(ConfigError, match="unknown model 'x'"):  # bad input stops the grid, as locally
        ray_cluster._store_chain(driver, chain, None)
