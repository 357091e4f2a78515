"""make_optimizer: the optimizer each config names, with its settings, fused on this torch."""

from __future__ import annotations

import pytest
import torch

from deepcls.config import RunConfig
from deepcls.engine.optim import make_optimizer


@pytest.mark.parametrize(
    ("settings", "cls", "expected"),
    [
        (
            {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
            torch.optim.SGD,
            {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
        ),
        (
            {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": True},
            torch.optim.SGD,
            {"momentum": 0.0, "nesterov": False},
        ),  # Nesterov needs momentum
        ({"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4}, torch.optim.Adam, {"lr": 1e-3, "weight_decay": 1e-4}),
        (
            {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05},
            torch.optim.AdamW,
            {"lr": 2e-3, "weight_decay": 0.05},
        ),
    ],
)
def test_make_optimizer_builds_what_the_config_names(settings: dict, cls: type, expected: dict) -> None:
    model = torch.nn.Linear(4, 3)
    optimizer = make_optimizer(RunConfig(**settings), model.parameters())
    assert type(optimizer) is cls and optimizer.defaults["fused"] is True
    assert {k: optimizer.defaults[k] for k in expected} == expected
    before = model.weight.detach().clone()
    torch.nn.functional.cross_entropy(model(torch.randn(8, 4)), torch.arange(8) % 3).backward()
    optimizer.step()  # the fused kernel runs on this machine's device (the CPU here)
    assert not torch.equal(before, model.weight)
