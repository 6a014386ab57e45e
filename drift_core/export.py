"""Export a run: an animated GIF (and MP4 when an ffmpeg encoder is available) of its snapshots, its
step records and metrics as CSV, and its config as JSON (which ``python -m drift_core train --config``
reads) or as a URL query string (which the app's pages read).

Pure functions returning bytes/strings; the app offers them as downloads. The one CSV writer is
:func:`rows_csv` (text) / :func:`write_csv` (a file, written atomically); every CLI command and export
uses it.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

import numpy as np
from PIL import Image

from .config import ExperimentConfig
from .files import write_text
from .records import StepRecord
from .render import scatter_image

__all__ = [
    "snapshot_frames",
    "frame_bounds",
    "gif_bytes",
    "side_by_side_frames",
    "side_by_side_gif",
    "mp4_bytes",
    "frames_mp4",
    "mp4_encoder",
    "records_csv",
    "record_rows",
    "rows_csv",
    "config_json",
    "config_query",
    "ExportError",
    "write_csv",
    "read_csv",
]

DATA_COLOUR = (190, 190, 190)
GENERATED_COLOUR = (31, 119, 180)


class ExportError(RuntimeError):
    """An export that cannot be produced here, with the reason."""


def frame_bounds(snapshots: Sequence[Any], margin: float = 0.08) -> tuple[float, float, float, float]:
    """One square frame (xmin, xmax, ymin, ymax) around the data and the 1st-99th percentile of every
    snapshot's particles, so the animation does not jump and a few stray points do not shrink it."""
    parts = []
    for snap in snapshots:
        parts.append(np.asarray(snap.positives))
        gen = np.asarray(snap.generated)
        gen = gen[np.isfinite(gen).all(1)]
        if len(gen):
            parts.append(np.percentile(gen, [1, 99], axis=0))
    pts = np.concatenate(parts) if parts else np.zeros((1, 2))
    lo, hi = pts.min(0), pts.max(0)
    span = max(float((hi - lo).max()), 1e-6) * (1 + 2 * margin)
    mid = (lo + hi) / 2
    return (mid[0] - span / 2, mid[0] + span / 2, mid[1] - span / 2, mid[1] + span / 2)


def snapshot_frames(
    snapshots: Sequence[Any],
    *,
    size: int = 480,
    title: str = "",
    bounds: tuple[float, float, float, float] | None = None,
) -> list[Image.Image]:
    """One RGB frame per snapshot: data in grey, generated particles in blue, "title | step s" on top.

    ``snapshots``: objects with ``step``, ``generated`` [n, 2] and ``positives`` [m, 2]
    (:class:`~drift_core.train.Snapshot`)."""
    if not snapshots:
        raise ExportError("there are no snapshots to export yet: train a few steps first")
    bounds = bounds or frame_bounds(snapshots)
    frames = []
    for snap in snapshots:
        label = f"{title} | step {snap.step}" if title else f"step {snap.step}"
        frames.append(
            scatter_image(
                [(np.asarray(snap.positives), DATA_COLOUR), (np.asarray(snap.generated), GENERATED_COLOUR)],
                size=size,
                bounds=bounds,
                title=label,
                radius=1.6,
            )
        )
    return frames


def gif_bytes(snapshots: Sequence[Any], *, size: int = 480, title: str = "", duration_ms: int = 120) -> bytes:
    """An animated, looping GIF with one frame per snapshot (frames differ at least in their step label,
    so Pillow keeps every one)."""
    return _gif(snapshot_frames(snapshots, size=size, title=title), duration_ms)


def side_by_side_frames(snapshots_by_name: dict[str, Sequence[Any]], *, size: int = 360) -> list[Image.Image]:
    """Frames with the runs side by side (Compare's arms): frame k of each run next to the others, all
    panels in one frame box. Runs are cut to the shortest."""
    if not snapshots_by_name or min(len(s) for s in snapshots_by_name.values()) == 0:
        raise ExportError("there are no snapshots to export yet: train a few steps first")
    n = min(len(s) for s in snapshots_by_name.values())
    bounds = frame_bounds([snap for snaps in snapshots_by_name.values() for snap in list(snaps)[:n]])
    columns = [
        snapshot_frames(list(snaps)[:n], size=size, title=name, bounds=bounds)
        for name, snaps in snapshots_by_name.items()
    ]
    frames = []
    for k in range(n):
        canvas = Image.new("RGB", (size * len(columns), size), "white")
        for c, column in enumerate(columns):
            canvas.paste(column[k], (c * size, 0))
        frames.append(canvas)
    return frames


def _gif(frames: list[Image.Image], duration_ms: int) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def side_by_side_gif(snapshots_by_name: dict[str, Sequence[Any]], *, size: int = 360, duration_ms: int = 120) -> bytes:
    """An animated GIF of :func:`side_by_side_frames`."""
    return _gif(side_by_side_frames(snapshots_by_name, size=size), duration_ms)


def mp4_encoder() -> str | None:
    """Path of an ffmpeg executable imageio can use (imageio-ffmpeg's bundled binary, or
    ``IMAGEIO_FFMPEG_EXE``), or None when MP4 export is not possible on this machine."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None
    return exe if exe and os.path.isfile(exe) else None


def mp4_bytes(snapshots: Sequence[Any], *, size: int = 480, title: str = "", fps: int = 8) -> bytes:
    """An H.264 MP4 of the snapshots. Raises :class:`ExportError` when no encoder is available
    (install ``imageio-ffmpeg``) instead of failing obscurely."""
    size = max(16, size // 16 * 16)  # H.264 wants dimensions divisible by 16
    return frames_mp4(snapshot_frames(snapshots, size=size, title=title), fps=fps)


def frames_mp4(frames: Sequence[Image.Image], *, fps: int = 8) -> bytes:
    """Encode RGB frames (cropped to multiples of 16 pixels) as H.264 MP4 with imageio's ffmpeg."""
    if mp4_encoder() is None:
        raise ExportError(
            "MP4 export needs an ffmpeg encoder: pip install imageio-ffmpeg (GIF export works without it)"
        )
    if not frames:
        raise ExportError("there are no frames to encode")
    import imageio.v2 as imageio

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.mp4")
        writer = imageio.get_writer(
            path,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=16,
            ffmpeg_log_level="error",
        )
        try:
            for frame in frames:
                w, h = frame.size
                writer.append_data(
                    np.asarray(frame.convert("RGB").crop((0, 0, max(16, w // 16 * 16), max(16, h // 16 * 16))))
                )
        finally:
            writer.close()
        with open(path, "rb") as fh:
            return fh.read()


def record_rows(records: Iterable[StepRecord | dict], metric_rows: Iterable[dict] = ()) -> list[dict]:
    """Step records (``StepRecord.as_row()``) as dict rows, one per step, sorted by step, with the metric
    evaluations (rows {step, wall_s, name: value}) joined in on their step."""
    rows = [dict(r) if isinstance(r, dict) else r.as_row() for r in records]
    by_step = {int(m["step"]): {k: v for k, v in m.items() if k not in ("step", "wall_s")} for m in metric_rows}
    seen = {int(r["step"]) for r in rows}
    for row in rows:
        row.update(by_step.get(int(row["step"]), {}))
    for step, values in sorted(by_step.items()):
        if step not in seen:  # an evaluation without a kept step record (e.g. step 0)
            rows.append({"step": step, **values})
    rows.sort(key=lambda r: int(r["step"]))
    return rows


def rows_csv(rows: Sequence[dict], empty_header: str = "step", *, columns: Sequence[str] | None = None) -> str:
    """Dict rows as CSV. Columns: ``columns`` when given (a row's other keys are left out), else the
    union of the rows' keys in first-seen order; empty cells where a row lacks a column;
    ``empty_header`` is the lone column when there are no rows and no ``columns``."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns) or [empty_header], lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(
    path: str | os.PathLike, rows: Sequence[dict], *, columns: Sequence[str] | None = None, empty_header: str = "step"
) -> None:
    """Write :func:`rows_csv` to ``path`` atomically (a killed process leaves the previous file or
    none, never a truncated one; see :mod:`drift_core.files`)."""
    write_text(path, rows_csv(rows, empty_header, columns=columns))


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`write_csv` (values as text; empty cells as "")."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def records_csv(records: Iterable[StepRecord | dict], metric_rows: Iterable[dict] = ()) -> str:
    """Step records as CSV, one row per step, with the metric evaluations joined in on their step
    (empty cells elsewhere); see :func:`record_rows`."""
    return rows_csv(record_rows(records, metric_rows))


def config_json(config: ExperimentConfig) -> str:
    """The config as JSON: ``python -m drift_core train --config FILE`` and ``ExperimentConfig.from_json`` read it."""
    return config.to_json()


def config_query(config: ExperimentConfig) -> str:
    """The config as a URL query string (only fields that differ from the defaults), e.g.
    ``dataset=8gaussians&tau=0.1``; the app's pages apply it with ``drift_core.limits.config_from_query``."""
    return urlencode(config.to_query())
