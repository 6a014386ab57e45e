"""Pictures for files (drift_core.render): degenerate inputs (zero-width spreads, NaN, huge values), the
font's Greek letters, the palette's colours in a frame and arrow layers that stay apart in greyscale, and
the heatmap's colour order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from matplotlib.ft2font import FT2Font

from drift_core import palette
from drift_core.records import Snapshot
from drift_core.render import (
    FONT_PATH,
    Arrows,
    ParticleCanvas,
    heatmap_image,
    scatter_image,
    snapshot_arrows,
    text_font,
)


@pytest.mark.parametrize(
    "points, bounds",
    [
        (np.zeros((5, 2)), None),  # every point equal: zero-width spread
        (np.zeros((5, 2)), (0.0, 0.0, 0.0, 0.0)),  # zero-width box
        (np.zeros((5, 2)), (float("nan"), 1.0, 0.0, 1.0)),
        (np.full((3, 2), np.nan), None),  # a diverged sample (was: ValueError from min() of nothing)
        (np.zeros((0, 2)), None),
        (np.array([[1e308, -1e308], [0.0, 0.0]]), None),  # a spread beyond float range
        (np.array([[0.0, 0.0], [1.0, 1.0]]), (-1e308, 1e308, 0.0, 1.0)),
    ],
)
def test_scatter_draws_degenerate_samples_without_warnings(points, bounds):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = scatter_image([(points, (31, 119, 180))], bounds=bounds, size=64)
    assert image.size == (64, 64)


def test_scatter_puts_a_single_point_in_the_middle():
    image = np.asarray(scatter_image([(np.array([[3.0, -2.0]]), (255, 0, 0))], size=65, radius=2, axes=False))
    assert tuple(image[32, 32]) == (255, 0, 0)


def test_heatmap_of_values_spanning_beyond_float_range_is_drawn():
    image = heatmap_image(
        np.array([[1e308, -1e308], [np.nan, 0.0]]), ["a", "b"], ["c", "d"]
    )  # was: ValueError (NaN colour)
    assert image.size[0] > 0


# ---- text -----------------------------------------------------------------------------------------------
TITLE_CHARACTERS = "τ⁺⁻−×·₀₁₂₃₄₅₆₇₈₉"
"""What titles and legends write besides ASCII: τ, V⁺, −V⁻, ×3, the separator, V₀ … V₉."""


def test_the_font_has_a_glyph_for_every_character_the_titles_use():
    font = FT2Font(str(FONT_PATH))
    assert [c for c in TITLE_CHARACTERS if font.get_char_index(ord(c)) == 0] == []
    # and Pillow draws τ with it, not the missing-glyph box that U+E000 (not in the font) gets
    pillow = text_font(32)
    assert font.get_char_index(0xE000) == 0
    assert np.asarray(pillow.getmask("τ")).tolist() != np.asarray(pillow.getmask("\ue000")).tolist()


def header(image) -> np.ndarray:
    """The title band of a frame (above the plot)."""
    return np.asarray(image.convert("L"))[: int(0.12 * image.height)]


def test_frame_titles_render_greek_letters_not_missing_glyph_boxes():
    canvas = ParticleCanvas((-1, 1, -1, 1), size=240)
    points = np.zeros((1, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns for a glyph missing from the font
        greek = canvas.draw(points, points, title="τ = 0.05", subtitle="V⁺ −V⁻ V₀ ×3")
    with pytest.warns(UserWarning, match="missing from font"):
        boxed = canvas.draw(points, points, title="\ue000 = 0.05", subtitle="V⁺ −V⁻ V₀ ×3")
    differs = (header(greek) != header(boxed)).any(axis=0)
    assert differs.any() and np.flatnonzero(differs).max() < 0.3 * canvas.size  # only where τ stands


def ink_runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-d mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_text_at_the_default_frame_size_is_large_enough_for_a_slide():
    canvas = ParticleCanvas((-2, 2, -2, 2))
    points = np.zeros((1, 2))
    image = np.asarray(
        canvas.draw(points, points, title="lookahead · step 40", subtitle="K = 1 · τ = 0.05").convert("L")
    )
    top_of_plot = int(0.13 * canvas.size)
    title, subtitle = ink_runs((image[:top_of_plot] < 128).any(axis=1))[:2]
    assert title >= 18 and subtitle >= 12  # a 20 px bold title (with "p"), 16 px settings (with "(", "τ")
    ticks = ink_runs((image[int(0.94 * canvas.size) :, int(0.15 * canvas.size) :] < 128).any(axis=1))
    assert max(ticks) >= 11  # digits of 16 px text are about 11.6 px tall


# ---- colours and line styles ---------------------------------------------------------------------------
def near(image: np.ndarray, colour: str, tolerance: int = 10) -> int:
    """How many pixels of ``image`` [h, w, 3] are within ``tolerance`` of ``colour`` in every channel."""
    return int((np.abs(image.astype(int) - palette.rgb(colour)).max(axis=-1) <= tolerance).sum())


def layered_snapshot() -> Snapshot:
    """Three particles in a row with V up, V⁺ right and V⁻ right (drawn as −V⁻: left), data in the top
    left corner and two lookahead terms from their own points: every layer's arrowheads apart."""
    generated = np.array([[0.3, 0.3], [0.5, 0.3], [0.7, 0.3]])
    along = lambda dx, dy: np.tile([dx, dy], (3, 1))  # noqa: E731
    return Snapshot(
        step=7,
        generated=generated,
        positives=np.array([[0.1, 0.9], [0.12, 0.88], [0.14, 0.9]]),
        v=along(0.0, 0.12),
        v_pos=along(0.08, 0.0),
        v_neg=along(0.08, 0.0),
        terms=[along(0.0, -0.1), along(0.1, 0.0)],
        points=[generated + [0.0, 0.4], generated + [0.0, 0.5]],
        weights=(1.0, 1.0),
    )


LAYER_COLOURS = {
    "data": palette.DATA.colour,
    "generated": palette.GENERATED.colour,
    "V": palette.V.colour,
    "V⁺": palette.V_POS.colour,
    "V⁻": palette.V_NEG.colour,
    "V₀": palette.TERMS[0].colour,
    "V₁": palette.TERMS[1].colour,
}


def plot_area(image) -> np.ndarray:
    """The inside of the plot of a ParticleCanvas frame (no frame lines, ticks or title)."""
    pixels, size = np.asarray(image), image.width
    return pixels[int(0.15 * size) : int(0.91 * size), int(0.14 * size) : int(0.9 * size)]


def test_every_layer_is_drawn_in_the_palettes_colour():
    snap = layered_snapshot()
    layers = ("V", "V⁺", "V⁻", "lookahead terms")
    arrows = snapshot_arrows(snap, layers, arrow_scale=1.0)
    assert [a.stroke for a in arrows] == [palette.TERMS[0], palette.TERMS[1], palette.V_POS, palette.V_NEG, palette.V]
    canvas = ParticleCanvas((0, 1, 0, 1), size=480, legend=False)
    points = plot_area(canvas.draw(snap.positives, snap.generated, []))
    drawn = plot_area(canvas.draw(snap.positives, snap.generated, arrows))
    arrow_layers = ("V", "V⁺", "V⁻", "V₀", "V₁")
    # without arrows: the data and the particles, and none of the arrows' colours (nor their anti-aliasing)
    assert min(near(points, LAYER_COLOURS[name]) for name in ("data", "generated")) >= 20
    assert sum(near(points, LAYER_COLOURS[name]) for name in arrow_layers) == 0
    counts = {name: near(drawn, LAYER_COLOURS[name]) for name in arrow_layers}
    assert min(counts.values()) >= 20, counts


def shaft(stroke: palette.Stroke) -> tuple[np.ndarray, int, int]:
    """One long horizontal arrow drawn with ``stroke`` alone, in greyscale: which columns of its shaft
    carry ink, how many rows it covers and its darkest grey."""
    canvas = ParticleCanvas((0, 1, 0, 1), size=480, axes=False)
    empty = np.zeros((0, 2))
    image = canvas.draw(empty, empty, [Arrows(np.array([[0.1, 0.5]]), np.array([[0.8, 0.0]]), stroke)])
    grey = np.asarray(image.convert("L")).astype(int)
    body = grey[200:280, 60:400]  # around the shaft (y = 0.5: row 240), clear of the start and the head
    rows = np.flatnonzero((body < 200).any(axis=1))
    return (body[rows] < 200).any(axis=0), len(rows), int(body.min())


def test_arrow_layers_stay_apart_in_greyscale():
    solid, v_rows, v_darkest = shaft(palette.V)
    dotted, pos_rows, pos_darkest = shaft(palette.V_POS)
    dashed, neg_rows, neg_darkest = shaft(palette.V_NEG)
    assert solid.all() and len(ink_runs(~solid)) == 0  # V: one unbroken line
    for broken in (dotted, dashed):
        assert 0.3 < broken.mean() < 0.75  # V⁺ and V⁻: about half ink, half gap
    assert len(ink_runs(~dotted)) > 2 * len(ink_runs(~dashed)) > 10  # dots: many short gaps; dashes: fewer
    assert v_rows >= max(pos_rows, neg_rows) and v_darkest < min(pos_darkest, neg_darkest)  # V: widest, darkest


def test_heatmap_colours_best_cell_brightest():
    values = np.array([[0.5, 0.1], [0.3, np.nan]])
    img = heatmap_image(values, ["a", "b"], ["c", "d"], lower_is_better=True, cell=40)
    left, top = 110, 14
    at = lambda i, j: img.getpixel((left + j * 40 + 3, top + i * 40 + 3))  # noqa: E731  (corner, clear of text)
    brightness = lambda p: sum(p)  # noqa: E731
    assert brightness(at(0, 1)) > brightness(at(1, 0)) > brightness(at(0, 0))
    assert at(1, 1) == (200, 200, 200)  # NaN is grey
    flipped = heatmap_image(values, ["a", "b"], ["c", "d"], lower_is_better=False, cell=40)
    assert sum(flipped.getpixel((left + 3, top + 3))) > sum(flipped.getpixel((left + 40 + 3, top + 3)))
