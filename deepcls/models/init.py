"""Weight initialisation schemes for Conv2d and Linear layers."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn

from deepcls.errors import ConfigError, unknown
from deepcls.models.catalog import INIT_SCHEMES

_he_uniform = partial(nn.init.kaiming_uniform_, mode="fan_in", nonlinearity="relu")
_he_normal = partial(nn.init.kaiming_normal_, mode="fan_in", nonlinearity="relu")

# scheme (deepcls.models.catalog.INIT_SCHEMES) -> in-place initialiser of a weight tensor; None keeps
# PyTorch's default init
_INITIALISERS: dict[str, Callable[[Tensor], Tensor] | None] = {
    "default": None,
    "xavier": nn.init.xavier_uniform_,
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "he": _he_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
}


def init_weights(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise ``model`` in place and return it.

    Every Conv2d and Linear weight gets ``scheme`` ("xavier" = xavier_uniform, "he" = he_normal;
    He uses fan_in and the ReLU gain) and a zero bias; BatchNorm gets weight 1, bias 0.
    "default" leaves the model untouched.
    """
    if scheme not in _INITIALISERS:
        raise ConfigError(unknown("init scheme", [scheme], INIT_SCHEMES, quoted=True))
    initialise = _INITIALISERS[scheme]
    if initialise is None:
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            initialise(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
