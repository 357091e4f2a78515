"""RunConfig validation, run identity, serialisation and the lr schedules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deepcls.config import SPEED_FIELDS, RunConfig
from deepcls.engine.optim import lr_factor
from deepcls.errors import ConfigError

BASE: dict[str, Any] = {"dataset": "mnist", "model": "vgg7", "width": "reduced", "classifier_width": 64}


def config(**changes: Any) -> RunConfig:
    return RunConfig(**{**BASE, **changes})


# ---------------------------------------------------------------------- validation
BAD_FIELDS = [
    ({"batch_size": 10**12}, r"batch_size 1000000000000 is larger than the 60000 training images"),
    ({"subset": 100, "batch_size": 128}, r"batch_size 128 is larger than the 100 training images: .* at most 100"),
    ({"lr": -0.1}, r"lr must be a positive finite number, got -0\.1"),
    ({"lr": 0.0}, r"lr must be a positive finite number"),
    ({"lr": float("nan")}, r"lr must be a positive finite number"),
    ({"lr": float("inf")}, r"lr must be a positive finite number, got inf"),
    ({"epochs": 0}, r"epochs must be a positive integer, got 0"),
    ({"epochs": 2.5}, r"epochs must be a positive integer"),
    ({"epochs": True}, r"epochs must be a positive integer"),
    ({"batch_size": 0}, r"batch_size must be a positive integer"),
    ({"optimizer": "rmsprop"}, r"unknown optimizer 'rmsprop'; known: sgd, adam, adamw"),
    ({"schedule": "linear"}, r"unknown schedule 'linear'; known: constant, step, cosine, triangle"),
    ({"precision": "fp16"}, r"unknown precision 'fp16' \(did you mean bf16\?\); known: auto, fp32, bf16"),
    ({"init": "orthogonal"}, r"unknown init 'orthogonal'"),
    ({"augment": ("flip", "mixup")}, r"unknown augmentation 'mixup'"),
    ({"augment": "crop,blur"}, r"unknown augmentation 'blur'"),
    ({"model": "vgg99"}, r"unknown model 'vgg99'"),
    ({"dataset": "svhn"}, r"unknown dataset 'svhn'"),
    ({"profile": "huge"}, r"unknown profile 'huge'"),
    ({"stem": "cifar"}, r"model vgg7 has no option 'stem'"),
    ({"model": "resnet18", "width": "reduced", "classifier_width": None}, r"model resnet18 has no option 'width'"),
    ({"subset": 5}, r"subset must be an integer >= 10 \(one per class\), got 5"),
    ({"subset": -100}, r"subset must be an integer >= 10"),
    ({"subset": 100.0}, r"subset must be an integer >= 10"),
    ({"test_subset": 0}, r"test_subset must be an integer >= 10"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"weight_decay": -1e-4}, r"weight_decay must be a finite number >= 0"),
    ({"weight_decay": float("inf")}, r"weight_decay must be a finite number >= 0, got inf"),
    ({"warmup": 1.0}, r"warmup must be in \[0, 1\)"),
    ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\)"),
    ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\)"),
    ({"seed": 2**50}, r"seed must be an integer in \[0, 2\*\*32\), got 1125899906842624"),
    ({"seed": 2**63 + 1}, r"seed must be an integer in \[0, 2\*\*32\)"),
    ({"threads": 0}, r"threads must be an integer in \[1, 1024\]"),
    ({"threads": 10**9}, r"threads must be an integer in \[1, 1024\], got 1000000000"),
    ({"classifier_width": 10**9}, r"bad value for option 'classifier_width': 1000000000 \(expected an integer in"),
    ({"classifier_width": 0}, r"bad value for option 'classifier_width'"),
    ({"model": "resnet18", "width": None, "classifier_width": None, "batch_size": 1}, r"batch_size must be >= 2"),
    ({"batch_norm": True, "batch_size": 1}, r"batch_size must be >= 2 for vgg7 \(batch norm"),
    ({"augment": "flip,crop,flip"}, r"augmentation\(s\) listed twice: flip; name each once"),
]


def test_a_vgg_option_error_lists_only_options_the_cli_has() -> None:
    with pytest.raises(ConfigError) as info:
        config(stem="cifar")
    assert str(info.value).endswith("it accepts: width, first_kernel, batch_norm, classifier_width")


def test_batch_size_one_still_trains_a_vgg_without_batch_norm() -> None:
    assert config(batch_size=1).batch_size == 1


@pytest.mark.parametrize(("changes", "message"), BAD_FIELDS, ids=[str(c) for c, _ in BAD_FIELDS])
def test_each_bad_field_gives_one_clear_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config(**changes)
    assert "\n" not in str(info.value)


def test_defaults_and_valid_options_are_accepted() -> None:
    RunConfig()
    config(
        batch_norm=True,
        first_kernel=5,
        augment="flip,crop",
        subset=10,
        test_subset=10,
        batch_size=10,
        optimizer="sgd",
        nesterov=True,
        schedule="triangle",
        warmup=0.2,
        precision="fp32",
    )
    RunConfig(dataset="mnist", model="resnet50", stem="imagenet", se=True)


def test_augment_is_parsed_to_a_tuple() -> None:
    assert config(augment="flip, crop").augment == ("flip", "crop")
    assert config(augment=["rotate"]).augment == ("rotate",)
    assert config(augment="none").augment == config(augment="").augment == ()


# ---------------------------------------------------------------------- identity
def test_run_id_is_stable_for_equal_configs() -> None:
    a, b = config(lr=1e-3, augment="flip,crop"), config(lr=1e-3, augment=("flip", "crop"))
    assert a == b and a.run_id == b.run_id
    assert a.run_id.startswith("mnist-vgg7-")
    assert config(lr=1).run_id == config(lr=1.0).run_id  # int and float spellings of one value


@pytest.mark.parametrize(
    "changes",
    [
        {"lr": 2e-3},
        {"seed": 1},
        {"augment": ("flip",)},
        {"augment": ("crop", "flip")},
        {"subset": 100},
        {"epochs": 3},
        {"batch_norm": True},
    ],
    ids=lambda c: ",".join(c),
)
def test_run_id_changes_with_result_fields(changes: dict[str, Any]) -> None:
    base = {"augment": ("flip", "crop")}
    assert config(**{**base, **changes}).run_id != config(**base).run_id


@pytest.mark.parametrize(
    "changes",
    [
        {"device": "cpu"},
        {"threads": 1},
        {"channels_last": False},
        {"compile": True},
        {"precision": "fp32"},
        {"precision": "bf16"},
    ],
    ids=lambda c: ",".join(c),
)
def test_run_id_ignores_speed_fields(changes: dict[str, Any]) -> None:
    assert set(changes) <= set(SPEED_FIELDS)
    assert config(**changes).run_id == config().run_id
    assert not set(SPEED_FIELDS) & set(config().identity())


def test_to_dict_from_dict_round_trip() -> None:
    original = config(augment="flip,cutout", lr=3e-3, subset=500, batch_norm=True, threads=2, device="cpu")
    data = original.to_dict()
    assert data["augment"] == ["flip", "cutout"]
    restored = RunConfig.from_dict(json.loads(json.dumps(data)))
    assert restored == original and restored.run_id == original.run_id
    assert restored.to_dict() == data


def test_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="unknown config field.*: colour"):
        RunConfig.from_dict({**config().to_dict(), "colour": "red"})


def test_replace_validates() -> None:
    assert config().replace(lr=0.1).lr == 0.1
    with pytest.raises(ConfigError, match="epochs"):
        config().replace(epochs=0)


# ---------------------------------------------------------------------- schedules
TOTAL = 100


def factors(schedule: str, warmup: float = 0.0) -> list[float]:
    return [lr_factor(schedule, step, TOTAL, warmup) for step in range(TOTAL)]


def test_constant_schedule() -> None:
    assert factors("constant") == [1.0] * TOTAL


def test_step_schedule_drops_tenfold_at_half_and_three_quarters() -> None:
    f = factors("step")
    assert f[:50] == [1.0] * 50
    assert f[50:75] == pytest.approx([0.1] * 25)
    assert f[75:] == pytest.approx([0.01] * 25)


def test_cosine_schedule_decays_to_zero() -> None:
    f = factors("cosine")
    assert f[0] == 1.0
    assert f[50] == pytest.approx(0.5)
    assert f[-1] == pytest.approx(0.0, abs=1e-3)
    assert all(a > b for a, b in zip(f, f[1:]))


def test_triangle_warms_up_then_decays() -> None:
    f = factors("triangle", warmup=0.2)
    assert f[0] == pytest.approx(1 / 20)
    assert all(a < b for a, b in zip(f[:20], f[1:20]))  # linear warm-up ...
    assert f[19] == f[20] == 1.0  # ... to the peak ...
    assert all(a > b for a, b in zip(f[20:], f[21:]))  # ... then linear decay ...
    assert f[-1] == pytest.approx(1 / 80)  # ... to (nearly) zero
    assert f[60] == pytest.approx(0.5)


def test_warmup_applies_to_cosine_too() -> None:
    f = factors("cosine", warmup=0.1)
    assert f[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert f[10] == 1.0 and f[-1] < 1e-3


def test_unknown_device_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="device must be"):
        RunConfig(device="bogus")
    assert RunConfig(device="cuda:1").device == "cuda:1"


@pytest.mark.parametrize(
    ("field", "value"), [("nesterov", "no"), ("compile", "false"), ("channels_last", 0), ("graphs", "yes")]
)
def test_the_python_api_refuses_a_bool_field_that_is_not_a_bool(field: str, value: object) -> None:
    """``nesterov="no"`` is truthy: it would train with Nesterov under a run id that says "no"."""
    with pytest.raises(ConfigError, match=f"{field} must be True or False"):
        RunConfig(**{field: value})
    assert RunConfig(se=None).se is None and RunConfig(nesterov=True).nesterov is True


def test_an_epoch_count_beyond_any_schedule_is_refused() -> None:
    with pytest.raises(ConfigError, match="epochs must be at most 10000"):
        RunConfig(epochs=10**20)
