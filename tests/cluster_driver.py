"""A grid's driver on the test Ray cluster (tests/test_cluster.py runs it inside a network namespace of its own).

``python cluster_driver.py JSON`` with keys ``address`` (None: the executor starts a Ray of its own),
``nodes`` (wait until that many are alive), ``configs`` (RunConfig dicts), ``results_dir``,
``data_dir``, ``scratch_dir`` and optionally ``watch`` (collect the addresses anything in the
namespace listens on during the grid); prints one JSON line: the outcomes, the grid's wall time,
those addresses and the Ray settings in the driver's environment afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import psutil
import ray

from deepcls.config import RunConfig
from deepcls.execution import runner


def wait_for_nodes(address: str, nodes: int, timeout: float = 180) -> None:
    ray.init(address=address, log_to_driver=False, logging_level="error")
    deadline = time.monotonic() + timeout
    while sum(node["Alive"] for node in ray.nodes()) < nodes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {nodes} Ray nodes alive after {timeout} s: {ray.nodes()}")
        time.sleep(0.5)


def watch_listeners(found: set[str], done: threading.Event) -> None:
    """Collect the address of every listening TCP socket in this network namespace until ``done``."""
    while not done.is_set():
        found.update(c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN)
        time.sleep(0.1)


def main(args: dict) -> None:
    if args["address"]:
        wait_for_nodes(args["address"], args["nodes"])  # the executor then uses this connection
    configs = [RunConfig.from_dict(c) for c in args["configs"]]
    executor = runner.make_executor("ray", address=args["address"], scratch_dir=args["scratch_dir"])
    listeners: set[str] = set()
    done = threading.Event()
    watcher = threading.Thread(target=watch_listeners, args=(listeners, done), daemon=True)
    if args.get("watch"):
        watcher.start()
    start = time.perf_counter()
    try:
        outcomes = runner.run_grid(
            configs, results_dir=args["results_dir"], data_dir=args["data_dir"], progress=False, executor=executor
        )
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "outcomes": [[o.run_id, o.error] for o in outcomes],
                "seconds": seconds,
                "listeners": sorted(listeners),
                "ray_env": {k: v for k, v in os.environ.items() if k.startswith("RAY_AUTH")},
            }
        )
    )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
