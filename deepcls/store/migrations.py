"""Bring a run store up to date after an option value was renamed (config.RENAMED).

A renamed value changes a config's canonical JSON and so its run id: each stored run folder
whose ``config.json`` holds an old value is rewritten with the new value and moved to its new
id, so no finished run is orphaned. Safe to run twice; ``python -m deepcls.store.migrations [DIR]``.
"""

from __future__ import annotations

import json
import os
import sys

from deepcls.config import RENAMED, RunConfig
from deepcls.data.atomic import write_text
from deepcls.store.runs import resolve_results_dir


def migrate(results_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """Rename the run folders whose id changed; returns (old id, new id) pairs."""
    runs = resolve_results_dir(results_dir) / "runs"
    moved = []
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        path = folder / "config.json"
        if folder.name.startswith(".") or not path.is_file():
            continue
        raw = json.loads(path.read_text())
        if not any(raw.get(field) in old for field, old in RENAMED.items()):
            continue
        config = RunConfig.from_dict(raw)
        target = runs / config.run_id
        if target.exists():
            raise FileExistsError(f"{folder.name}: its new id {config.run_id} is taken")
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["run_id"] = config.run_id
        write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")
        write_text(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        os.replace(folder, target)
        moved.append((folder.name, config.run_id))
    return moved


if __name__ == "__main__":
    for old, new in migrate(sys.argv[1] if len(sys.argv) > 1 else None):
        print(f"{old} -> {new}")
