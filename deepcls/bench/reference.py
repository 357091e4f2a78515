"""A plain training loop written the way the report's era did it — the benchmark's yardstick.

torchvision Dataset + DataLoader + PIL transforms for the same augmentation, fp32, NCHW,
``.item()`` after every step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import VisionDataset

from deepcls.data.augment import BRIGHTNESS, CONTRAST, CROP_PADDING, ROTATE_DEGREES
from deepcls.data.files import DatasetSpec, Split


class ArrayDataset(VisionDataset):
    """Images held as a uint8 array, returned as PIL images (as torchvision's CIFAR10 does)."""

    def __init__(self, split: Split, transform: transforms.Compose) -> None:
        super().__init__(root="", transform=transform)
        self.x = split.x.numpy()
        self.y = split.y.numpy()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.x[i]
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        return self.transform(pil), int(self.y[i])


def reference_transform(spec: DatasetSpec, augment: Sequence[str], pad_to: int | None) -> transforms.Compose:
    """The PIL transform pipeline equivalent to deepcls's batched augmentation."""
    ops: list = []
    if pad_to is not None:
        total = pad_to - spec.image_shape[0]
        ops.append(transforms.Pad((total // 2, total // 2, total - total // 2, total - total // 2)))
    table = {
        "crop": lambda: transforms.RandomCrop(pad_to or spec.image_shape[0], padding=CROP_PADDING),
        "flip": transforms.RandomHorizontalFlip,
        "rotate": lambda: transforms.RandomRotation(ROTATE_DEGREES),
        "brightness_contrast": lambda: transforms.ColorJitter(brightness=BRIGHTNESS, contrast=CONTRAST),
    }
    ops += [table[name]() for name in augment if name in table]
    ops += [transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)]
    return transforms.Compose(ops)


def reference_batches(
    split: Split,
    spec: DatasetSpec,
    augment: Sequence[str],
    batch_size: int,
    pad_to: int | None,
    train: bool,
    workers: int,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches from a DataLoader (reshuffled each pass when training), copied to ``device``."""
    dataset = ArrayDataset(split, reference_transform(spec, augment if train else (), pad_to))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        num_workers=workers,
        drop_last=train,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def reference_train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> float:
    """fp32 forward/backward/step with the loss read back to the host every step."""
    model.train()
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def reference_eval_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()
