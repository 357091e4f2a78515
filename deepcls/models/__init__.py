"""Model zoo: ResNet-18/34/50 and VGG-7/9/11/13/16/19, built by name with :func:`build_model`."""

from deepcls.models.init import INIT_SCHEMES, init_weights
from deepcls.models.registry import (
    ModelInfo,
    build_for_dataset,
    build_model,
    check_option,
    input_padding,
    list_models,
    model_info,
    model_summary,
)

__all__ = [
    "INIT_SCHEMES",
    "ModelInfo",
    "build_for_dataset",
    "build_model",
    "check_option",
    "input_padding",
    "init_weights",
    "list_models",
    "model_info",
    "model_summary",
]
