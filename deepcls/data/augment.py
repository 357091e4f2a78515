"""Batched augmentation: every op transforms a whole float batch with per-sample random parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from deepcls.data.specs import AUGMENTATION_NAMES

# Every op takes a float batch (B, C, H, W) in [0, 1] and a torch.Generator, and draws
# one set of random parameters per sample. Strengths are fixed here and documented in
# the README; they are the project's reading of the report's unstated details.

ROTATE_DEGREES = 15.0
CROP_PADDING = 4
BRIGHTNESS, CONTRAST = 0.3, 0.3
CUTOUT_SIZE = 8


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def flip(x: torch.Tensor, gen: torch.Generator, dim: int = 3) -> torch.Tensor:
    """Mirror a random half of the samples left-right (``dim=2``: upside down)."""
    mask = torch.rand(len(x), generator=gen, device=x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(dim), x)


def vflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Turn a random half of the samples upside down — one reading of the report's Table 1 row 1
    ("Random horizontal flip & horizontal flip & Random rotation"), not used by its grids."""
    return flip(x, gen, dim=2)


def crop(x: torch.Tensor, gen: torch.Generator, padding: int = CROP_PADDING) -> torch.Tensor:
    """Zero-pad by ``padding`` and take a random crop of the original size (a translation)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def rotate(x: torch.Tensor, gen: torch.Generator, degrees: float = ROTATE_DEGREES) -> torch.Tensor:
    """Rotate each sample by a uniform angle in [-degrees, degrees] (bilinear, zero fill)."""
    theta = _uniform(len(x), -degrees, degrees, gen, x.device) * (math.pi / 180)
    cos, sin, zero = theta.cos(), theta.sin(), torch.zeros_like(theta)
    affine = torch.stack([cos, -sin, zero, sin, cos, zero], 1).view(-1, 2, 3).to(x.dtype)
    grid = F.affine_grid(affine, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def brightness_contrast(
    x: torch.Tensor, gen: torch.Generator, brightness: float = BRIGHTNESS, contrast: float = CONTRAST
) -> torch.Tensor:
    """Scale brightness and contrast by random factors in [1-s, 1+s] (as ColorJitter)."""
    n = len(x)
    b = _uniform(n, 1 - brightness, 1 + brightness, gen, x.device)[:, None, None, None]
    c = _uniform(n, 1 - contrast, 1 + contrast, gen, x.device)[:, None, None, None]
    x = (x * b).clamp(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # ColorJitter uses the grey mean
    return ((x - mean) * c + mean).clamp(0, 1)


def cutout(x: torch.Tensor, gen: torch.Generator, size: int = CUTOUT_SIZE) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square at a random centre of each sample."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=gen, device=x.device)[:, None, None]
    cx = torch.randint(0, w, (b,), generator=gen, device=x.device)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - size // 2, cx - size // 2
    hole = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return x * (~hole)[:, None].to(x.dtype)


AUGMENTATIONS = {  # deepcls.data.specs.AUGMENTATION_NAMES, in that order
    "flip": flip,
    "vflip": vflip,
    "crop": crop,
    "rotate": rotate,
    "brightness_contrast": brightness_contrast,
    "cutout": cutout,
}


def augment(x: torch.Tensor, names: Sequence[str], gen: torch.Generator) -> torch.Tensor:
    """Apply the named augmentations in order to a float batch in [0, 1]."""
    for name in names:
        x = AUGMENTATIONS[name](x, gen)
    return x


assert tuple(AUGMENTATIONS) == AUGMENTATION_NAMES, "name every augmentation in deepcls.data.specs"
