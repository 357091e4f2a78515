"""ResNet-18/34/50 (He et al., 2016) laid out like torchvision's ``models/resnet.py``.

Two stems: ``"imagenet"`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool -- exactly torchvision's) and
``"cifar"`` (3x3/1 conv, BN, ReLU, no pooling, as in kuangliu/pytorch-cifar). With the imagenet
stem, 3 input channels and 1000 classes the state_dict has torchvision's keys and shapes.
``se=True`` adds squeeze-and-excitation (Hu et al., 2018) to the residual branch of every block.
Weights keep PyTorch's default init; :func:`deepcls.models.init_weights` applies the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from deepcls.models.catalog import RESNET_ARCHS


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class SqueezeExcite(nn.Module):
    """Channel gate: global average pool -> FC(C, C/r) -> ReLU -> FC(C/r, C) -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)[:, :, None, None]


class _Block(nn.Module):
    """What both blocks share: optional SE gate, shortcut, addition and final ReLU; ``_layers``
    adds each block's convolutions (after the gate, so parameters are created in a fixed order)."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, se: bool = False
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(planes * self.expansion) if se else nn.Identity()
        self.downsample = downsample
        self._layers(inplanes, planes, stride)

    _layers: Callable[[int, int, int], None]  # each block's convolutions (BasicBlock, Bottleneck)

    def _merge(self, residual: Tensor, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.se(residual) + identity)


class BasicBlock(_Block):
    """Two 3x3 convolutions (ResNet-18/34)."""

    def _layers(self, inplanes: int, planes: int, stride: int) -> None:
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self._merge(self.bn2(self.conv2(out)), x)


class Bottleneck(_Block):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's v1.5), 1x1 expand (ResNet-50)."""

    expansion = 4

    def _layers(self, inplanes: int, planes: int, stride: int) -> None:
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._merge(self.bn3(self.conv3(out)), x)


Block = type[BasicBlock | Bottleneck]

# stem name (deepcls.models.catalog.RESNET_STEMS) -> (first conv, pooling after it), given the input channels
STEMS: dict[str, Callable[[int], tuple[nn.Module, nn.Module]]] = {
    "imagenet": lambda c: (nn.Conv2d(c, 64, 7, stride=2, padding=3, bias=False), nn.MaxPool2d(3, 2, 1)),
    "cifar": lambda c: (conv3x3(c, 64), nn.Identity()),
}


class ResNet(nn.Module):
    """Stem, four stages of residual blocks (64-128-256-512 planes), global average pool, Linear."""

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        stem: str = "imagenet",
        se: bool = False,
    ) -> None:
        super().__init__()
        conv1, pool = STEMS[stem](in_channels)
        self.inplanes = 64
        self.conv1 = conv1
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = pool
        self.layer1 = self._make_layer(block, 64, layers[0], se=se)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, se=se)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, se=se)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, se=se)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1, se: bool = False) -> nn.Sequential:
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, out_planes, stride), nn.BatchNorm2d(out_planes))
        layers = [block(self.inplanes, planes, stride, downsample, se)]
        self.inplanes = out_planes
        layers += [block(out_planes, planes, se=se) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


_BLOCKS: dict[str, Block] = {"basic": BasicBlock, "bottleneck": Bottleneck}
# name -> (block, blocks per stage), from the declared table (deepcls.models.catalog.RESNET_ARCHS)
ARCHS: dict[str, tuple[Block, tuple[int, int, int, int]]] = {
    name: (_BLOCKS[block], layers) for name, (block, layers) in RESNET_ARCHS.items()
}


def resnet(name: str, **kwargs) -> ResNet:
    """Build the ResNet ``name`` (a key of :data:`ARCHS`); ``kwargs`` go to :class:`ResNet`."""
    block, layers = ARCHS[name]
    return ResNet(block, layers, **kwargs)
