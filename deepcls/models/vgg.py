"""VGG (Simonyan & Zisserman, 2015) built from a layer config, like torchvision's ``models/vgg.py``.

``vgg11/13/16/19`` are the paper's configs A/B/D/E: five 2x2 max-pools, so the input side must be
at least 32 (MNIST is zero-padded 28 -> 32). ``vgg7`` (4 conv + 3 FC) and ``vgg9`` (6 conv + 3 FC)
are the first three / four blocks of VGG-11; with three / four poolings they take 28x28 MNIST as is
(28 -> 14 -> 7 -> 3 -> 1). After the features an ``AdaptiveAvgPool2d(1)`` makes the classifier input
``C x 1 x 1``: at 32x32 the deep configs already end at 1x1, so the pool is the identity and the
network is the reference report's Figure 5 (Flatten, Linear(C, 4096), ReLU, Dropout, Linear(4096,
4096), ReLU, Dropout, Linear(4096, classes)). ``width="reduced"`` divides every conv width by 4
(16 -> 128 channels), as the report did to shrink its VGGs.
"""

from __future__ import annotations

from torch import Tensor, nn

from deepcls.errors import ConfigError
from deepcls.models.catalog import VGG_CFGS, VGG_WIDTHS, VggCfg

Cfg = VggCfg
cfgs: dict[str, Cfg] = VGG_CFGS  # the declared layer configs (deepcls.models.catalog)
WIDTHS: dict[str, int] = VGG_WIDTHS  # width name -> divisor of the cfg's channel counts


def make_layers(
    cfg: Cfg, in_channels: int, *, divisor: int = 1, first_kernel: int = 3, batch_norm: bool = False
) -> tuple[nn.Sequential, int]:
    """Conv(-BN)-ReLU for each int in ``cfg`` and a 2x2 max-pool for each "M".

    Returns the layers and their output channel count. Only the first conv uses ``first_kernel``;
    every conv keeps the spatial size (padding = kernel // 2).
    """
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out_channels = int(v) // divisor
        kernel = 3 if layers else first_kernel
        layers.append(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out_channels
    return nn.Sequential(*layers), in_channels


class VGG(nn.Module):
    """Features from a cfg, global average pool, three-layer MLP classifier with dropout."""

    def __init__(
        self,
        cfg: Cfg,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        width: str = "standard",
        first_kernel: int = 3,
        batch_norm: bool = False,
        classifier_width: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.min_input_size = 2 ** cfg.count("M")  # each 2x2 max-pool halves the side, rounding down
        self.features, channels = make_layers(
            cfg, in_channels, divisor=WIDTHS[width], first_kernel=first_kernel, batch_norm=batch_norm
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, classifier_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(classifier_width, classifier_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(classifier_width, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < self.min_input_size:  # else pooling fails deep inside with "Output size is too small"
            raise ConfigError(
                f"this VGG needs inputs of at least {self.min_input_size}x{self.min_input_size} "
                f"({self.min_input_size.bit_length() - 1} 2x2 poolings), got {x.shape[-2]}x{x.shape[-1]}; "
                "zero-pad the images (deepcls.models.input_padding gives the side for a dataset)"
            )
        return self.classifier(self.avgpool(self.features(x)))


def vgg(name: str, **kwargs) -> VGG:
    """Build the VGG ``name`` (a key of :data:`cfgs`); ``kwargs`` go to :class:`VGG`."""
    return VGG(cfgs[name], **kwargs)
