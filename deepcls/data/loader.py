"""The device-resident batch loader: a split lives on the training device as one uint8 NHWC tensor,
batches are index slices, and augmentation runs on the whole batch (no PIL, no DataLoader)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from deepcls.data.augment import augment
from deepcls.data.files import DatasetSpec, Split
from deepcls.errors import ConfigError


def epoch_seed(seed: int, epoch: int) -> int:
    """The random seed of one epoch of a run: its data order, augmentation and dropout masks.

    A function of (seed, epoch) alone, so a resumed run replays exactly the epochs it lost."""
    return seed * 1_000_003 + epoch


class BatchLoader:
    """A split held on the device as uint8, yielding normalized float batches.

    Shuffling and augmentation draw from a generator seeded per epoch
    (``seed``, ``epoch``), so any epoch can be replayed exactly — this is what makes a
    resumed run identical to an uninterrupted one.
    """

    def __init__(
        self,
        split: Split,
        spec: DatasetSpec,
        *,
        batch_size: int,
        device: str | torch.device = "cpu",
        train: bool = False,
        augment: Sequence[str] = (),
        seed: int = 0,
        pad_to: int | None = None,
        channels_last: bool = True,
        dtype: torch.dtype = torch.float32,
        drop_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        self.device = torch.device(device)
        x = split.x.permute(0, 3, 1, 2)  # NCHW view of NHWC memory
        if pad_to is not None and pad_to > x.shape[-1]:
            total = pad_to - x.shape[-1]
            x = F.pad(x, (total // 2, total - total // 2) * 2)
        self.x = x.contiguous(memory_format=torch.channels_last).to(self.device)
        self.y = split.y.to(self.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.augment = tuple(augment)
        self.drop_last = drop_last
        self.channels_last, self.dtype = channels_last, dtype
        self.mean = torch.tensor(spec.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = len(self.y)
        if self.drop_last:
            return n // self.batch_size
        batches = math.ceil(n / self.batch_size)
        # training: a last batch of one image joins the batch before it (batch norm cannot train on
        # one image; the other batches, and every run whose split divides otherwise, are unchanged)
        return batches - 1 if self.train and batches > 1 and n % self.batch_size == 1 else batches

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def generator(self, epoch: int) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(epoch_seed(self.seed, epoch))
        return gen

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images, labels)`` for one pass; shuffled and augmented when training."""
        gen = self.generator(epoch)
        n = len(self.y)
        order = torch.randperm(n, generator=gen, device=self.device) if self.train else None
        last = len(self) - 1
        for i in range(len(self)):
            sl = slice(i * self.batch_size, n if i == last and not self.drop_last else (i + 1) * self.batch_size)
            idx = order[sl] if order is not None else sl
            yield self.transform(self.x[idx], gen), self.y[idx]

    def transform(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """uint8 batch -> augmented, normalized float batch."""
        x = x.float().div_(255)
        if self.train and self.augment:
            x = augment(x, self.augment, gen)
        x = (x - self.mean) / self.std
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.to(self.dtype).contiguous(memory_format=memory)
