"""Pictures for files: the GIF/MP4 frames of an export, the command line's PNGs (scatter, heatmap,
thumbnails). The app draws with Plotly in the browser; this draws with matplotlib's Agg renderer
(object-oriented: no pyplot, no global backend), in the app's palette (:mod:`drift_core.palette`).

Text uses DejaVu Sans, the font matplotlib ships inside its package, so τ, V⁺ and V⁻ render on every
machine Drift Lab installs on (Pillow's built-in font has no Greek). Sizes are given in pixels at a
480-pixel frame and scale with the frame, so a frame of the default size carries 20 px titles and 16 px
ticks, readable on a slide.

Arrow layers keep their :class:`~drift_core.palette.Stroke` (colour, dash, width) as in the app, with a
filled head at the tip, so V (solid), V⁺ (dotted) and V⁻ (dashed) stay apart in greyscale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import PathPatch
from matplotlib.path import Path as CompoundPath
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageFont

from . import palette
from .bounds import square_bounds
from .palette import Stroke

__all__ = [
    "FONT_PATH",
    "Arrows",
    "ParticleCanvas",
    "snapshot_arrows",
    "scatter_image",
    "heatmap_image",
    "image_grid",
    "text_font",
    "ARROW_LAYERS",
]

FONT_PATH = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
"""DejaVu Sans as shipped in matplotlib's package (Latin, Greek, super- and subscripts)."""
BOLD_FONT_PATH = FONT_PATH.with_name("DejaVuSans-Bold.ttf")
FONT_FAMILY = "DejaVu Sans"
"""Its family name, for text matplotlib lays out by family (tick labels)."""
DPI = 100
PT_PER_PX = 72 / DPI
REFERENCE_SIZE = 480
"""Frame size (px) at which text and lines have their nominal sizes; they scale with the frame."""
TITLE_PX = 20
TEXT_PX = 16
ARROW_LAYERS = ("lookahead terms", "V⁺", "V⁻", "V")
"""The arrow layers a snapshot can show (the app's layer names), in drawing order (V on top)."""
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
LINE_SCALE = 1.5
"""Lines are this much wider than the app's (a frame is viewed smaller than the browser's plot)."""


def text_font(px: float) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``px`` pixels for Pillow's text (labels written beside pictures)."""
    return ImageFont.truetype(str(FONT_PATH), max(1, round(px)))


def _font(px: float, bold: bool = False) -> FontProperties:
    return FontProperties(fname=BOLD_FONT_PATH if bold else FONT_PATH, size=px * PT_PER_PX)


def _colour(colour: str | Sequence[int]) -> tuple[float, float, float]:
    """A hex colour or a 0..255 rgb tuple as matplotlib's 0..1 rgb."""
    return to_rgb(colour) if isinstance(colour, str) else tuple(c / 255 for c in colour[:3])


def _figure(width: int, height: int) -> tuple[Figure, FigureCanvasAgg]:
    # a quarter pixel more: Agg truncates the figure's pixel size, and 1.3 * 100 is 129.999...
    figure = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI, facecolor="white")
    return figure, FigureCanvasAgg(figure)


def _pixels(canvas: FigureCanvasAgg) -> Image.Image:
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).copy()


@dataclass(frozen=True)
class Arrows:
    """One layer of arrows, start -> start + vector (vectors already scaled for drawing), drawn with
    ``stroke``; ``label`` names it in the legend (empty: left out)."""

    starts: np.ndarray  # [n, 2]
    vectors: np.ndarray  # [n, 2]
    stroke: Stroke
    label: str = ""


def snapshot_arrows(snap, layers: Sequence[str] = ("V",), arrow_scale: float = 3.0) -> list[Arrows]:
    """The arrow layers of a :class:`~drift_core.records.Snapshot` named in ``layers`` (of
    :data:`ARROW_LAYERS`; others are ignored), ``arrow_scale`` times their true length, as the app's
    particle view draws them: V, V⁺ and −V⁻ from the generated particles, each lookahead term V_k from
    its point z^k."""
    times = f" ×{arrow_scale:g}" if arrow_scale != 1 else ""
    g = np.asarray(snap.generated)
    out = []
    if "lookahead terms" in layers:
        for k, (points, term) in enumerate(zip(snap.points, snap.terms)):
            stroke = palette.TERMS[k % len(palette.TERMS)]
            label = f"V{k}".translate(SUBSCRIPTS) + times
            out.append(Arrows(np.asarray(points), arrow_scale * np.asarray(term), stroke, label))
    if "V⁺" in layers:
        out.append(Arrows(g, arrow_scale * np.asarray(snap.v_pos), palette.V_POS, "V⁺ attraction" + times))
    if "V⁻" in layers:
        out.append(Arrows(g, -arrow_scale * np.asarray(snap.v_neg), palette.V_NEG, "−V⁻ repulsion" + times))
    if "V" in layers:
        out.append(Arrows(g, arrow_scale * np.asarray(snap.v), palette.V, "V" + times))
    return out


def _points(points) -> np.ndarray:
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def auto_bounds(*layers: np.ndarray, margin: float = 1.1) -> tuple[float, float, float, float]:
    """A square box around every finite point of ``layers``, ``margin`` times their larger spread."""
    return square_bounds(map(_points, layers), margin=(margin - 1) / 2)


def _compound(polylines: np.ndarray, closed: bool) -> CompoundPath:
    """One path of ``polylines`` [n, k, 2] (each a separate piece, closed into a polygon if ``closed``)."""
    n, k, _ = polylines.shape
    codes = np.full((n, k + closed), CompoundPath.LINETO, dtype=CompoundPath.code_type)
    codes[:, 0] = CompoundPath.MOVETO
    vertices = polylines
    if closed:
        codes[:, -1] = CompoundPath.CLOSEPOLY
        vertices = np.concatenate([polylines, polylines[:, :1]], axis=1)
    return CompoundPath(vertices.reshape(-1, 2), codes.reshape(-1))


class ParticleCanvas:
    """A square frame of ``size`` pixels with fixed axes over ``bounds`` (xmin, xmax, ymin, ymax; made
    square and finite), reused for many frames: :meth:`draw` replaces the points, arrows and title.

    Layout at 480 px: a two-line title (20 px bold, 16 px), ticks at 16 px, the plot a square of 384 px.
    Without ``axes`` the plot fills the frame, with no ticks, title or legend (thumbnails).
    """

    def __init__(self, bounds: Sequence[float], *, size: int = REFERENCE_SIZE, legend: bool = True, axes: bool = True):
        self.size = size
        self.scale = size / REFERENCE_SIZE
        x0, x1, y0, y1 = (float(b) for b in bounds)
        self.bounds = square_bounds([np.array([[x0, y0], [x1, y1]])], margin=0.0)  # square, finite, usable
        self.legend = legend and axes
        self.figure, self.canvas = _figure(size, size)
        self.axes = self.figure.add_axes((0.12, 0.07, 0.8, 0.8) if axes else (0, 0, 1, 1))
        x0, x1, y0, y1 = self.bounds
        self.axes.set_xlim(x0, x1)
        self.axes.set_ylim(y0, y1)
        self.axes.set_aspect("equal", adjustable="box")
        if axes:
            for axis in (self.axes.xaxis, self.axes.yaxis):
                axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
            self.axes.tick_params(
                labelsize=TEXT_PX * self.scale * PT_PER_PX,
                labelfontfamily=FONT_FAMILY,
                length=4 * self.scale,
                width=self.scale,
                pad=2,
            )
            self.axes.grid(True, color="#e4e4e4", linewidth=0.8 * self.scale)
            self.axes.set_axisbelow(True)
        else:  # a thin frame, nothing else
            self.axes.set_xticks([])
            self.axes.set_yticks([])
        for spine in self.axes.spines.values():
            spine.set_color("#999999")
        self.title = self.figure.text(
            0.02, 0.985, "", va="top", ha="left", fontproperties=_font(TITLE_PX * self.scale, True)
        )
        self.subtitle = self.figure.text(
            0.02, 0.93, "", va="top", ha="left", fontproperties=_font(TEXT_PX * self.scale)
        )
        self._drawn: list = []
        self._background = None  # blitting: the axes, ticks and grid, drawn once at the first frame

    def _px_to_pt(self, px: float) -> float:
        """A length of ``px`` pixels at the 480-pixel reference size, in points at this frame's size."""
        return px * self.scale * PT_PER_PX

    def _span(self) -> float:
        return self.bounds[1] - self.bounds[0]

    def _visible(self, points: np.ndarray) -> np.ndarray:
        """Rows of ``points`` that are finite and near the view (far ones would only overflow Agg)."""
        x0, x1, y0, y1 = self.bounds
        pad = self._span()
        with np.errstate(invalid="ignore"):
            return (
                np.isfinite(points).all(1)
                & (points[:, 0] > x0 - pad)
                & (points[:, 0] < x1 + pad)
                & (points[:, 1] > y0 - pad)
                & (points[:, 1] < y1 + pad)
            )

    def _scatter(self, points, colour, radius_px: float, zorder: float):
        points = _points(points)
        points = points[self._visible(points)]
        diameter_pt = 2 * self._px_to_pt(radius_px)
        return self.axes.scatter(
            points[:, 0], points[:, 1], s=diameter_pt**2, c=[_colour(colour)], linewidths=0, zorder=zorder
        )

    def _line(self, stroke: Stroke) -> tuple[float, str | tuple]:
        """``stroke``'s line width (points) and matplotlib line style (its dashes in line widths:
        matplotlib scales dashes by the width)."""
        width_pt = self._px_to_pt(stroke.width * LINE_SCALE)
        unit = max(width_pt, self._px_to_pt(3.0))  # Plotly's dash unit: max(width, 3 px)
        pattern = palette.DASH_PATTERNS[stroke.dash]
        return width_pt, (0, tuple(on_off * unit / width_pt for on_off in pattern)) if pattern else "solid"

    def _arrows(self, layer: Arrows, zorder: float) -> list:
        starts, vectors = _points(layer.starts), _points(layer.vectors)
        n = min(len(starts), len(vectors))
        starts, vectors = starts[:n], vectors[:n]
        span = self._span()
        with np.errstate(all="ignore"):
            length = np.sqrt((vectors**2).sum(1))
            keep = self._visible(starts) & np.isfinite(length) & (length < 2 * span)
        starts, vectors, length = starts[keep], vectors[keep], length[keep]
        ends = starts + vectors
        colour = _colour(layer.stroke.colour)
        width_pt, style = self._line(layer.stroke)
        # one compound path per layer (a path per arrow costs Agg more than the drawing itself)
        shafts = PathPatch(
            _compound(np.stack([starts, ends], axis=1), closed=False),
            fill=False,
            edgecolor=colour,
            linewidth=width_pt,
            linestyle=style,
            capstyle="butt",
            zorder=zorder,
        )
        # filled heads at the tips: a triangle up to 7 px long (less for short arrows), 0.9 as wide
        per_px = span / (0.8 * self.size)
        head = np.minimum(0.45 * length, 7 * self.scale * per_px)
        with np.errstate(all="ignore"):
            unit_vectors = np.where(length[:, None] > 0, vectors / length[:, None], 0.0)
        normal = np.stack([-unit_vectors[:, 1], unit_vectors[:, 0]], axis=1)
        base = ends - head[:, None] * unit_vectors
        half = 0.45 * head[:, None] * normal
        heads = PathPatch(
            _compound(np.stack([ends, base + half, base - half], axis=1), closed=True),
            facecolor=colour,
            edgecolor="none",
            zorder=zorder,
        )
        for patch in (shafts, heads):
            self.axes.add_artist(patch)  # not add_patch: its data-limit update walks every vertex
        return [shafts, heads]

    def draw(
        self,
        positives,
        generated,
        arrows: Sequence[Arrows] = (),
        *,
        title: str = "",
        subtitle: str = "",
    ) -> Image.Image:
        """The frame as an RGB image: ``arrows`` (in order, later on top), ``positives`` (the data, grey:
        over the arrows, whose heads gather on it) and ``generated`` (the particles, blue, on top of all),
        with ``title`` (bold) and ``subtitle`` above the plot and, when there are arrows, a legend of the
        layers in its lower right corner."""
        if self._background is None:
            self.title.set_text("")
            self.subtitle.set_text("")
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        for artist in self._drawn:
            artist.remove()
        self._drawn = []
        for k, layer in enumerate(arrows):
            self._drawn += self._arrows(layer, 1 + k / 100)
        self._drawn.append(self._scatter(positives, palette.DATA.colour, 2.6, 2))
        self._drawn.append(self._scatter(generated, palette.GENERATED.colour, 2.2, 3))
        if self.legend and any(layer.label for layer in arrows):
            handles = []
            for layer in arrows:
                if layer.label:
                    width_pt, style = self._line(layer.stroke)
                    colour = _colour(layer.stroke.colour)
                    handles.append(Line2D([], [], color=colour, linewidth=width_pt, linestyle=style, label=layer.label))
            self._drawn.append(
                self.axes.legend(
                    handles=handles,
                    loc="lower right",
                    prop=_font(TEXT_PX * self.scale),
                    framealpha=0.85,
                    handlelength=2.2,
                    borderpad=0.3,
                    labelspacing=0.2,
                    borderaxespad=0.3,
                )
            )
        self.title.set_text(title)
        self.subtitle.set_text(subtitle)
        self.canvas.restore_region(self._background)
        for artist in (*self._drawn, self.title, self.subtitle):
            self.figure.draw_artist(artist)
        return Image.fromarray(np.asarray(self.canvas.buffer_rgba())[..., :3]).copy()


def scatter_image(
    layers: list[tuple[np.ndarray, str | tuple[int, int, int]]],
    *,
    size: int = REFERENCE_SIZE,
    bounds: tuple[float, float, float, float] | None = None,
    title: str = "",
    subtitle: str = "",
    radius: float = 1.5,
    axes: bool = True,
) -> Image.Image:
    """Point layers [(points [n, 2], colour: hex or 0..255 rgb)] drawn in order, dots of ``radius``
    pixels, on a square frame with axes and a title (the layout of :class:`ParticleCanvas`; without
    ``axes`` the points fill the frame). ``bounds`` = (xmin, xmax, ymin, ymax); default: all points with
    a 10% margin. Bounds of zero or non-finite width (one point, all points equal) are widened to a
    finite box around their centre; points that are not finite are left out."""
    layers = [(_points(points), colour) for points, colour in layers]
    bounds = bounds if bounds is not None else auto_bounds(*(points for points, _ in layers))
    canvas = ParticleCanvas(bounds, size=size, legend=False, axes=axes)
    if axes:
        canvas.title.set_text(title)
        canvas.subtitle.set_text(subtitle)
    for k, (points, colour) in enumerate(layers):
        canvas._scatter(points, colour, radius / canvas.scale, 1 + k)
    return _pixels(canvas.canvas)


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
    cell. Colours run viridis (perceptually even, colour-blind safe) from worst (dark) to best
    (bright): with ``lower_is_better`` the smallest value is brightest (on a log scale when all values
    are positive and span more than a decade). NaN cells are grey and read "n/a".

    Layout: the cells are ``cell`` pixels square, their block's top left corner at (110, 40) with a
    title, (110, 14) without."""
    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    if (rows, cols) != (len(y_labels), len(x_labels)):
        raise ValueError(f"values {values.shape} do not match {len(y_labels)} y labels x {len(x_labels)} x labels")
    left, top, bottom, right = 110, 40 if title else 14, 60, 16
    width, height = left + cols * cell + right, top + rows * cell + bottom
    figure, canvas = _figure(width, height)
    axes = figure.add_axes((left / width, bottom / height, cols * cell / width, rows * cell / height))
    finite = values[np.isfinite(values)]
    # colour on a log scale when the values are positive and span more than a decade
    log_scale = finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > 10
    with np.errstate(all="ignore"):
        shaded = np.log10(values) if log_scale else values
    lo, hi = (
        (float(shaded[np.isfinite(values)].min()), float(shaded[np.isfinite(values)].max())) if finite.size else (0, 1)
    )
    with np.errstate(all="ignore"):
        span = hi - lo
        if not (np.isfinite(span) and span > 0):  # one value, or a spread beyond float range
            goodness = np.where(np.isfinite(values), 0.5, np.nan)
        else:
            goodness = (hi - shaded) / span if lower_is_better else (shaded - lo) / span
    colormap = matplotlib.colormaps["viridis"].with_extremes(bad=(200 / 255,) * 3)
    axes.imshow(
        np.ma.masked_invalid(goodness),
        cmap=colormap,
        norm=Normalize(0, 1),
        extent=(0, cols, rows, 0),
        interpolation="nearest",
        aspect="auto",
    )
    axes.set_xlim(0, cols)
    axes.set_ylim(rows, 0)
    cell_px = min(16.0, cell / 6)
    rgba = colormap(np.ma.masked_invalid(goodness))
    for i in range(rows):
        for j in range(cols):
            v = values[i, j]
            text = f"{v:.3g}" if np.isfinite(v) else "n/a"
            ink = "black" if rgba[i, j, :3].sum() * 255 > 380 else "white"
            axes.text(j + 0.5, i + 0.5, text, ha="center", va="center", color=ink, fontproperties=_font(cell_px))
    for position in range(1, cols):
        axes.axvline(position, color="white", linewidth=1.5)
    for position in range(1, rows):
        axes.axhline(position, color="white", linewidth=1.5)
    axes.set_xticks(np.arange(cols) + 0.5, x_labels, fontproperties=_font(14))
    axes.set_yticks(np.arange(rows) + 0.5, y_labels, fontproperties=_font(14))
    axes.tick_params(length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if x_name:
        axes.set_xlabel(x_name, fontproperties=_font(TEXT_PX))
    if y_name:
        axes.set_ylabel(y_name, fontproperties=_font(TEXT_PX))
    if title:
        figure.text(6 / width, 1 - 6 / height, title, va="top", ha="left", fontproperties=_font(TEXT_PX, True))
    return _pixels(canvas)


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
