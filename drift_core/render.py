"""Raster pictures without a plotting library (Pillow only): scatter plots for the CLI's PNGs and
GIF frames. The app draws with Plotly; this is for headless output."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["scatter_image", "save_gif"]


def scatter_image(
    layers: list[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    size: int = 480,
    bounds: tuple[float, float, float, float] | None = None,
    title: str = "",
    radius: float = 1.5,
) -> Image.Image:
    """Draw point layers [(points [n, 2], rgb)] in order on a white square. ``bounds`` =
    (xmin, xmax, ymin, ymax); default: all points with a 5% margin."""
    finite = [p[np.isfinite(p).all(1)] for p, _ in layers if len(p)]
    if bounds is None:
        allp = np.concatenate(finite) if finite else np.zeros((1, 2))
        lo, hi = allp.min(0), allp.max(0)
        span = max(float((hi - lo).max()), 1e-6) * 1.1
        mid = (lo + hi) / 2
        bounds = (mid[0] - span / 2, mid[0] + span / 2, mid[1] - span / 2, mid[1] + span / 2)
    x0, x1, y0, y1 = bounds
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for points, colour in layers:
        pts = points[np.isfinite(points).all(1)]
        px = (pts[:, 0] - x0) / (x1 - x0) * (size - 1)
        py = (1 - (pts[:, 1] - y0) / (y1 - y0)) * (size - 1)
        for u, v in zip(px, py):
            draw.ellipse((u - radius, v - radius, u + radius, v + radius), fill=colour)
    if title:
        draw.text((6, 4), title, fill=(0, 0, 0))
    return img


def save_gif(frames: list[Image.Image], path, *, duration_ms: int = 120) -> None:
    """An animated GIF that loops forever."""
    if not frames:
        raise ValueError("no frames to save")
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
