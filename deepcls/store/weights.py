"""A run's trained weights: its model's state as ``safetensors``, checked against metrics.json.

safetensors holds tensors and nothing else, so loading one runs no code (a pickled ``.pt`` can run
anything its author wrote). The file is the model's ``state_dict`` after the last epoch — the
weights the run's final test accuracy was measured with — and its bytes' SHA-256 is recorded in
metrics.json (``weights_sha256``) as the run is stored: a damaged or swapped file is refused.

Where it lives: ``<root>/.cache/weights/<run-id>.safetensors`` by default, ignored by git, so the
committed store stays small; ``runs/<run-id>/weights.safetensors`` when the run is trained with
``keep_weights`` (``--keep-weights``), so it travels with the run (archives, cluster workers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from deepcls.atomic import write_with
from deepcls.config import RunConfig
from deepcls.errors import StoreError

WEIGHTS_FILE = "weights.safetensors"  # in a run folder
HASH_KEY = "weights_sha256"  # in metrics.json


class WeightsError(StoreError):
    """A run's weights are missing, damaged or not its own."""


def weights_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """A model state as safetensors bytes (tensors copied to the CPU, contiguous: a channels-last
    convolution's weight is stored in the default layout and loads into either)."""
    return save_tensors({name: t.detach().to("cpu").contiguous() for name, t in state.items()})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_path(root: Path, run: RunConfig | str) -> Path:
    run_id = run.run_id if isinstance(run, RunConfig) else run
    return root / ".cache" / "weights" / f"{run_id}.safetensors"


def write_cached(root: Path, run_id: str, data: bytes) -> Path:
    """Write a run's weights to the cache, atomically."""
    path = cache_path(root, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_with(path, lambda tmp: tmp.write_bytes(data), suffix=".safetensors")
    return path


def read_weights(run_dir: Path, root: Path, run_id: str, expected: str | None) -> dict[str, torch.Tensor]:
    """The weights of a stored run: from its folder, else the cache; the bytes hashed and parsed are
    the same, so what is checked is what is loaded. WeightsError, in one line, when the run recorded
    no hash (it was stored before deepcls kept weights; its resume state, a pickle, is never read
    as weights), when there is no file, or when the bytes are not the ones it recorded."""
    again = "retrain it with --force --keep-weights (deepcls train), or train with --keep-weights next time"
    if expected is None:
        raise WeightsError(f"run {run_id} was stored without weights: {again}")
    for path in (run_dir / WEIGHTS_FILE, cache_path(root, run_id)):
        if path.is_file():
            break
    else:
        raise WeightsError(f"run {run_id}'s weights are not in {run_dir} nor in the cache: {again}")
    data = path.read_bytes()
    if sha256(data) != expected:
        raise WeightsError(f"{path} is not run {run_id}'s weights (its SHA-256 differs from metrics.json): refused")
    try:
        return load_tensors(data)
    except (SafetensorError, ValueError) as err:
        raise WeightsError(f"{path} is not a safetensors file ({err})") from None
