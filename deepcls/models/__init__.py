"""Model zoo: ResNet-18/34/50 and VGG-7/9/11/13/16/19, built by name with :func:`build_model`.

The declarations (names, families, options; :func:`register_family` and :func:`register_model` for
a model of one's own) come from deepcls.models.catalog without torch; the names that build or count
a model import torch on first use, so reading metadata (``deepcls --help``, tables, the ledger)
never does.
"""

from __future__ import annotations

import importlib
from typing import Any

from deepcls.models.catalog import (
    INIT_SCHEMES,
    Family,
    ModelInfo,
    check_option,
    family_of,
    list_families,
    list_models,
    model_info,
    register_family,
    register_model,
)

_TORCH_SIDE = {  # name -> module that defines it (imported on first access: it imports torch)
    "build_for_dataset": "deepcls.models.registry",
    "build_model": "deepcls.models.registry",
    "input_padding": "deepcls.models.registry",
    "model_summary": "deepcls.models.registry",
    "init_weights": "deepcls.models.init",
}


def __getattr__(name: str) -> Any:
    if name in _TORCH_SIDE:
        return getattr(importlib.import_module(_TORCH_SIDE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "INIT_SCHEMES",
    "Family",
    "ModelInfo",
    "build_for_dataset",
    "build_model",
    "check_option",
    "family_of",
    "init_weights",
    "input_padding",
    "list_families",
    "list_models",
    "model_info",
    "model_summary",
    "register_family",
    "register_model",
]
