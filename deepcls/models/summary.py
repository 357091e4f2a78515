"""Parameter and multiply-accumulate (MAC) counts of a model."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _macs(module: nn.Module, output: Tensor) -> int:
    """MACs of one Conv2d or Linear call: one per output element and input it sees (no bias)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    return output.numel() * module.in_features


def model_summary(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> dict[str, int]:
    """``{"params": trainable parameters, "macs": Conv2d + Linear MACs for one image}``.

    MACs are measured with forward hooks on a batch of one ``input_shape`` image, in eval mode and
    without autograd; every module's training mode is restored afterwards.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += _macs(module, output)

    layers = (m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    handles = [m.register_forward_hook(hook) for m in layers]
    param = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape) if param is None else param.new_zeros(1, *input_shape)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "macs": total}
