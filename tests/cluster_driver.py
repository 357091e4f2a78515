"""A grid's driver on the test Ray cluster (tests/test_cluster.py runs it inside the cluster's network namespace).

``python cluster_driver.py JSON`` with keys ``address``, ``nodes`` (wait until that many are alive),
``configs`` (RunConfig dicts), ``results_dir``, ``data_dir``, ``scratch_dir``; prints one JSON line:
the outcomes and the grid's wall time.
"""

from __future__ import annotations

import json
import sys
import time

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


def main(args: dict) -> None:
    wait_for_nodes(args["address"], args["nodes"])  # the executor then uses this connection
    configs = [RunConfig.from_dict(c) for c in args["configs"]]
    executor = runner.make_executor("ray", address=args["address"], scratch_dir=args["scratch_dir"])
    start = time.perf_counter()
    outcomes = runner.run_grid(
        configs, results_dir=args["results_dir"], data_dir=args["data_dir"], progress=False, executor=executor
    )
    seconds = time.perf_counter() - start
    print(json.dumps({"outcomes": [[o.run_id, o.error] for o in outcomes], "seconds": seconds}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
