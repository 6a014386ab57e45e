"""Sample grids as numpy arrays / PNG files (no plotting libraries)."""
from __future__ import annotations

import math

import numpy as np
from torch import Tensor

__all__ = ["image_grid", "save_grid"]


def image_grid(images: Tensor, *, nrow: int | None = None, pad: int = 2, scale: int = 1, pad_value: int = 255) -> np.ndarray:
    """uint8 images [n, 3, H, W] -> one uint8 array [rows*(H+pad)+pad, cols*(W+pad)+pad, 3] (x ``scale``, nearest)."""
    arr = images.detach().cpu().numpy()
    n, _, h, w = arr.shape
    cols = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), pad_value, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = arr[i].transpose(1, 2, 0)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def save_grid(images: Tensor, path, **kwargs) -> None:
    from PIL import Image

    Image.fromarray(image_grid(images, **kwargs)).save(path)
