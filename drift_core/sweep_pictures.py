"""A sweep's pictures as images (PIL, drawn by :mod:`drift_core.render`): the heatmap of a metric's mean
and spread with the verdict under it, and each cell's final particles over the data. ``drift-lab
sweep`` writes them to files; the app's Sweep page offers them as downloads."""

from __future__ import annotations

import textwrap

from PIL import Image, ImageDraw

from . import palette
from .bounds import square_bounds
from .render import heatmap_image, image_grid, scatter_image, text_font
from .sweep import AXES, METRICS, SweepResult


def with_text(picture: Image.Image, text: str, *, above: bool = False, size: int = 16) -> Image.Image:
    """``picture`` with ``text`` (wrapped to its width, ``size`` pixels) in a white band below it (or
    above), so the words never cover the picture."""
    font = text_font(size)
    measure = ImageDraw.Draw(picture)
    char_px = max(1.0, measure.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26)
    lines = textwrap.wrap(text, width=max(8, int((picture.width - 8) / char_px))) if text else []
    band = 6 + (size + 4) * len(lines)
    out = Image.new("RGB", (picture.width, picture.height + band), "white")
    out.paste(picture, (0, band if above else 0))
    draw = ImageDraw.Draw(out)
    top = 3 if above else picture.height + 3
    for k, line in enumerate(lines):
        draw.text((4, top + k * (size + 4)), line, fill=(0, 0, 0), font=font)
    return out


def heatmap_for(result: SweepResult, metric: str) -> Image.Image:
    """The metric's mean over the seeds per cell and, with several seeds, beside it the spread (std),
    with the verdict (is the best cell separated from the rest by more than the spread?) below."""
    spec = result.spec
    name, lower = METRICS[metric]
    xs, ys = [f"{v:g}" for v in spec.x_values], [f"{v:g}" for v in spec.y_values]
    x_name, y_name = AXES[spec.x_axis], AXES[spec.y_axis]
    several = len(spec.seeds) > 1
    panels: list[Image.Image | None] = [
        heatmap_image(
            result.mean(metric),
            xs,
            ys,
            lower_is_better=lower,
            x_name=x_name,
            y_name=y_name,
            title=f"{name}, {'mean' if several else 'one seed'}",
        )
    ]
    if several:
        panels.append(
            heatmap_image(
                result.std(metric),
                xs,
                ys,
                lower_is_better=True,
                x_name=x_name,
                y_name=y_name,
                title=f"spread: std over {len(spec.seeds)} seeds",
            )
        )
    seeds = ", ".join(str(s) for s in spec.seeds)
    about = (
        f"{spec.base.data.dataset}, {spec.steps} steps per trial, seed{'s' if several else ''} {seeds}; "
        f"{'lower' if lower else 'higher'} is better. "
    )
    return with_text(image_grid([panels]), about + result.verdict(metric))


def thumbnail_bounds(result: SweepResult) -> tuple[float, float, float, float]:
    """One frame shared by every cell (the reference data with a margin), so thumbnails compare."""
    return square_bounds([result.reference], margin=0.15)


def cell_thumbnail(result: SweepResult, i: int, j: int, size: int = 160, *, label: bool = True) -> Image.Image | None:
    """Final particles (blue) of cell (i, j)'s first finished seed over the data (grey), in the app's
    palette, with the cell's settings in a band above the picture (``label``); None if no seed of the
    cell finished."""
    trials = result.cell_trials(i, j)
    if not trials:
        return None
    picture = scatter_image(
        [(result.reference, palette.DATA.colour), (trials[0].particles, palette.GENERATED.colour)],
        size=size,
        bounds=thumbnail_bounds(result),
        radius=1.2,
        axes=False,
    )
    return with_text(picture, result.spec.cell_label(i, j), above=True, size=14) if label else picture


def thumbnails_for(result: SweepResult, size: int = 160) -> Image.Image:
    """Every cell's thumbnail (:func:`cell_thumbnail`) in the grid's rows and columns."""
    spec = result.spec
    return image_grid(
        [[cell_thumbnail(result, i, j, size) for j in range(spec.shape[1])] for i in range(spec.shape[0])]
    )
