"""A batch of images tiled into one picture, as a numpy array or a PNG file (no plotting libraries).
(:func:`drift_core.render.image_grid` is another thing: it lays out ready-made PIL pictures.)"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

__all__ = ["tile_images", "save_tiled_images"]


def tile_images(
    images: Tensor, *, nrow: int | None = None, pad: int = 2, scale: int = 1, pad_value: int = 255
) -> np.ndarray:
    """uint8 images [n, 3, H, W] -> one uint8 array [rows*(H+pad)+pad, cols*(W+pad)+pad, 3] (x ``scale``,
    nearest): :func:`torchvision.utils.make_grid` with ``nrow`` columns (default: a square; fewer when
    there are fewer images), as an HWC array."""
    images = images.detach().cpu()
    grid = make_grid(images, nrow=nrow or math.ceil(math.sqrt(len(images))), padding=pad, pad_value=pad_value)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return grid.permute(1, 2, 0).contiguous().numpy()


def save_tiled_images(images: Tensor, path, **kwargs) -> None:
    """:func:`tile_images` written as an image file (PNG by the path's suffix)."""
    Image.fromarray(tile_images(images, **kwargs)).save(path)
