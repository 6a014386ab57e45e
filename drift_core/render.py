"""Raster pictures without a plotting library (Pillow only): scatter plots for the CLI's PNGs and
GIF frames. The app draws with Plotly; this is for headless output."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["scatter_image", "heatmap_image", "image_grid"]


def scatter_image(
    layers: list[tuple[np.ndarray, tuple[int, int, int]]],
    *,
    size: int = 480,
    bounds: tuple[float, float, float, float] | None = None,
    title: str = "",
    radius: float = 1.5,
) -> Image.Image:
    """Draw point layers [(points [n, 2], rgb)] in order on a white square. ``bounds`` =
    (xmin, xmax, ymin, ymax); default: all points with a 5% margin. Bounds of zero or non-finite width
    (one point, all points equal) are widened to a finite box around their centre; points that do not
    land on a finite pixel (NaN, inf, beyond float range) are left out."""
    layers = [(np.asarray(p, dtype=np.float64).reshape(-1, 2), colour) for p, colour in layers]
    finite = [p[np.isfinite(p).all(1)] for p, _ in layers]
    if bounds is None:
        allp = np.concatenate(finite + [np.zeros((0, 2))])
        allp = allp if len(allp) else np.zeros((1, 2))
        lo, hi = allp.min(0), allp.max(0)
        bounds = (lo[0], hi[0], lo[1], hi[1])
        margin = 1.1
    else:
        margin = 1.0
    x0, x1, y0, y1 = _usable_box(bounds, margin)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    with np.errstate(all="ignore"):  # far-away points overflow to inf and are dropped below
        for points, colour in layers:
            px = (points[:, 0] - x0) / (x1 - x0) * (size - 1)
            py = (1 - (points[:, 1] - y0) / (y1 - y0)) * (size - 1)
            keep = np.isfinite(px) & np.isfinite(py) & (np.abs(px) < 1e6) & (np.abs(py) < 1e6)
            for u, v in zip(px[keep], py[keep]):
                draw.ellipse((u - radius, v - radius, u + radius, v + radius), fill=colour)
    if title:
        draw.text((6, 4), title, fill=(0, 0, 0))
    return img


def _usable_box(bounds, margin: float) -> tuple[float, float, float, float]:
    """A square (xmin, xmax, ymin, ymax) around ``bounds``' centre, ``margin`` times its larger side:
    at least 1e-6 wide, at most 1e300 (a span beyond float range), centred on 0 when the centre is not
    finite."""
    x0, x1, y0, y1 = (float(b) for b in bounds)
    mid_x, mid_y = x0 / 2 + x1 / 2, y0 / 2 + y1 / 2  # halves first: no overflow
    if not (math.isfinite(mid_x) and math.isfinite(mid_y)):
        mid_x = mid_y = 0.0
    span = max(x1 - x0, y1 - y0) * margin
    span = 1.0 if math.isnan(span) else min(max(span, 1e-6), 1e300)
    return (mid_x - span / 2, mid_x + span / 2, mid_y - span / 2, mid_y + span / 2)


# viridis at 5 anchors (0, .25, .5, .75, 1), interpolated linearly
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)


def _colour(t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0) if np.isfinite(t) else 0.5  # a span beyond float range gives no position
    t *= len(_VIRIDIS) - 1
    k = min(int(t), len(_VIRIDIS) - 2)
    c = _VIRIDIS[k] + (t - k) * (_VIRIDIS[k + 1] - _VIRIDIS[k])
    return tuple(int(round(v)) for v in c)


def heatmap_image(
    values: np.ndarray,
    x_labels: list[str],
    y_labels: list[str],
    *,
    x_name: str = "",
    y_name: str = "",
    title: str = "",
    lower_is_better: bool = True,
    cell: int = 96,
) -> Image.Image:
    """A labelled heatmap of ``values`` [rows, cols] (row 0 at the top) with each value written in its
    cell. Colours run viridis from worst (dark) to best (bright): with ``lower_is_better`` the smallest
    value is brightest (on a log scale when all values are positive and span more than a decade).
    NaN cells are grey and read "n/a"."""
    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    if (rows, cols) != (len(y_labels), len(x_labels)):
        raise ValueError(f"values {values.shape} do not match {len(y_labels)} y labels x {len(x_labels)} x labels")
    font = _font(14)
    small = _font(12)
    left, top, bottom, right = 110, 40 if title else 14, 56, 16
    width, height = left + cols * cell + right, top + rows * cell + bottom
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    finite = values[np.isfinite(values)]
    # colour on a log scale when the values are positive and span more than a decade
    log_scale = finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 10
    shade = np.log10 if log_scale else (lambda a: a)
    lo, hi = (float(shade(finite.min())), float(shade(finite.max()))) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    for i in range(rows):
        for j in range(cols):
            v = values[i, j]
            x0, y0 = left + j * cell, top + i * cell
            if np.isfinite(v):
                s = float(shade(v))
                goodness = (hi - s) / span if lower_is_better else (s - lo) / span
                fill = _colour(goodness if hi > lo else 0.5)
                text = f"{v:.3g}"
            else:
                fill, text = (200, 200, 200), "n/a"
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=fill, outline="white")
            ink = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)
            tw = draw.textlength(text, font=font)
            draw.text((x0 + (cell - tw) / 2, y0 + cell / 2 - 8), text, fill=ink, font=font)
    for j, label in enumerate(x_labels):
        tw = draw.textlength(label, font=small)
        draw.text((left + j * cell + (cell - tw) / 2, top + rows * cell + 4), label, fill=(0, 0, 0), font=small)
    for i, label in enumerate(y_labels):
        tw = draw.textlength(label, font=small)
        draw.text((left - tw - 6, top + i * cell + cell / 2 - 7), label, fill=(0, 0, 0), font=small)
    if x_name:
        tw = draw.textlength(x_name, font=font)
        draw.text((left + (cols * cell - tw) / 2, top + rows * cell + 24), x_name, fill=(0, 0, 0), font=font)
    if y_name:
        draw.text((6, top - 2 if not title else top - 18), y_name, fill=(0, 0, 0), font=font)
    if title:
        draw.text((6, 6), title, fill=(0, 0, 0), font=font)
    return img


def image_grid(images: list[list[Image.Image | None]], *, pad: int = 4) -> Image.Image:
    """Tile equally sized images [rows][cols] (None leaves a blank tile) on white."""
    first = next((im for row in images for im in row if im is not None), None)
    if first is None:
        raise ValueError("no images to tile")
    w, h = first.size
    rows, cols = len(images), max(len(r) for r in images)
    out = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for i, row in enumerate(images):
        for j, im in enumerate(row):
            if im is not None:
                out.paste(im, (pad + j * (w + pad), pad + i * (h + pad)))
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizing
        return ImageFont.load_default()
