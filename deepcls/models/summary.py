"""Parameter and multiply-accumulate (MAC) counts of a model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def model_summary(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> dict[str, int]:
    """``{"params": trainable parameters, "macs": multiply-accumulates for one image}``.

    MACs are half of what torch's FlopCounterMode counts (it counts a multiply-add as two
    FLOPs) for one forward pass of a ``input_shape`` image, in eval mode without autograd;
    every module's training mode is restored afterwards.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape) if param is None else param.new_zeros(1, *input_shape)
    modes = [(m, m.training) for m in model.modules()]
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        for module, training in modes:
            module.training = training
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "macs": counter.get_total_flops() // 2}
