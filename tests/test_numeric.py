"""deepcls.numeric: precision follows the hardware, and a run's numeric class is recorded and named."""

from __future__ import annotations

import pytest
import torch

from deepcls import numeric
from deepcls.config import RunConfig
from deepcls.errors import ConfigError

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("kind", "auto", "warns"),
    [("amx", "bf16", False), ("avx512_bf16", "bf16", False), ("emulated", "fp32", True)],
)
def test_auto_is_bf16_only_where_it_is_native_and_an_explicit_emulated_bf16_warns(
    monkeypatch: pytest.MonkeyPatch, kind: str, auto: str, warns: bool
) -> None:
    monkeypatch.setattr(numeric, "cpu_bf16", lambda: kind)
    assert numeric.resolve_precision("auto", CPU) == auto
    assert numeric.resolve_precision("fp32", CPU) == "fp32" and numeric.resolve_precision("bf16", CPU) == "bf16"
    warning = numeric.precision_warning("bf16", CPU)
    assert (warning is not None) == warns
    assert numeric.precision_warning("auto", CPU) is None and numeric.precision_warning("fp32", CPU) is None
    if warning:
        assert "\n" not in warning and "several times slower than in fp32" in warning


def test_precision_is_recorded_not_hashed_and_checked() -> None:
    assert RunConfig().precision == "auto"
    assert RunConfig(precision="fp32").run_id == RunConfig(precision="bf16").run_id == RunConfig().run_id
    with pytest.raises(ConfigError, match=r"unknown precision 'fp16' \(did you mean bf16\?\); known: auto, fp32, bf16"):
        RunConfig(precision="fp16")


def test_the_numeric_class_names_this_machine() -> None:
    found = numeric.numeric_class(CPU, "fp32")
    assert found["device_kind"] == "cpu" and found["device_name"] == numeric.cpu_model() != ""
    assert found["bf16"] in numeric.BF16_CLASSES and found["threads"] == torch.get_num_threads()
    assert found["precision"] == "fp32" and found["torch"] == torch.__version__
    assert found["cuda"] is None and found["cudnn"] is None


def test_class_labels_of_recorded_and_older_runs() -> None:
    recorded = {"numeric_class": {"device_kind": "cpu", "bf16": "amx", "threads": 1, "precision": "bf16"}}
    assert numeric.class_label(recorded) == "CPU amx x1 bf16"
    gpu = {"numeric_class": {"device_kind": "cuda", "device_name": "NVIDIA H200", "precision": "bf16"}}
    assert numeric.class_label(gpu) == "H200 bf16"
    older = {"device": "cpu: x86_64 x2 threads", "cpu_bf16": "emulated"}
    assert numeric.class_label(older, {"precision": "bf16"}) == "CPU emulated x2 bf16"
    assert numeric.class_label({"device": "cpu: x86_64 x1 threads"}, {"precision": "bf16"}) == "CPU ? x1 bf16"
    assert numeric.class_label({"device": "cuda: NVIDIA H200"}, {"precision": "bf16"}) == "H200 bf16"
