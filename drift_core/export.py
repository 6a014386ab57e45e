"""Export a run: an animated GIF (and MP4 when an ffmpeg encoder is available) of its snapshots, its
step records and metrics as CSV, and its config as JSON (which ``python -m drift_core train --config``
reads) or as a URL query string (which the app's pages read).

Pure functions returning bytes/strings; the app offers them as downloads. The one CSV writer is
:func:`rows_csv` (text) / :func:`write_csv` (a file, written atomically); every CLI command and export
uses it. Frames are drawn by :mod:`drift_core.render` in the app's palette: the data, the particles, the
chosen arrow layers (V by default), axes with ticks and a title naming the arm, K, τ, N, lr and the step.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from .bounds import square_bounds
from .config import ExperimentConfig
from .files import write_text
from .records import StepRecord
from .render import REFERENCE_SIZE, ParticleCanvas, snapshot_arrows

__all__ = [
    "ArmLabel",
    "arm_labels",
    "snapshot_frames",
    "frame_bounds",
    "gif_bytes",
    "frames_gif",
    "side_by_side_frames",
    "side_by_side_gif",
    "side_by_side_mp4",
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

FRAME_SIZE = REFERENCE_SIZE
"""Default frame (and Compare's panel) size in pixels: titles 20 px, ticks 16 px, readable on a slide."""
ARROW_SCALE = 3.0
"""Default drawing scale of the arrows (the app's default arrow length)."""


class ExportError(RuntimeError):
    """An export that cannot be produced here, with the reason."""


@dataclass(frozen=True)
class ArmLabel:
    """What a frame's title says about the arm it shows: its name and the settings that tell arms apart."""

    name: str
    K: int
    tau: float
    batch_size: int
    lr: float

    @classmethod
    def of(cls, config: ExperimentConfig, name: str = "") -> ArmLabel:
        """The label of an arm trained with ``config``; ``name`` defaults to the method ("baseline",
        "lookahead K=1")."""
        return cls(
            name or config.drift.label(), config.drift.K, config.drift.tau, config.train.batch_size, config.train.lr
        )

    def title(self, step: int) -> str:
        return f"{self.name} · step {step}"

    def settings(self) -> str:
        return f"K = {self.K} · τ = {self.tau:g} · N = {self.batch_size} · lr = {self.lr:g}"


def arm_labels(configs: Mapping[str, ExperimentConfig]) -> dict[str, ArmLabel]:
    """Labels of a run's arms {name: config} (a :class:`~drift_core.run.Run`'s ``{name:
    trainer.config}``); the lone arm of a single run ("run") is named after its method."""
    return {name: ArmLabel.of(config, "" if name == "run" else name) for name, config in configs.items()}


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
    return square_bounds(parts, margin=margin)


def snapshot_frames(
    snapshots: Sequence[Any],
    *,
    size: int = FRAME_SIZE,
    title: str = "",
    label: ArmLabel | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    layers: Sequence[str] = ("V",),
    arrow_scale: float = ARROW_SCALE,
) -> list[Image.Image]:
    """One RGB frame of ``size`` x ``size`` pixels per snapshot: the data (grey), the arrow ``layers``
    (of :data:`drift_core.render.ARROW_LAYERS`, ``arrow_scale`` times their length), the particles
    (blue), axes with ticks, and a title: ``label``'s name and step over its K, τ, N and lr (without a
    label: "``title`` · step s" over the K the snapshot has terms for).

    ``snapshots``: :class:`~drift_core.records.Snapshot` objects (``step``, ``generated`` [n, 2],
    ``positives`` [m, 2] and the fields ``v``, ``v_pos``, ``v_neg``, ``terms``, ``points``)."""
    if not snapshots:
        raise ExportError("there are no snapshots to export yet: train a few steps first")
    canvas = ParticleCanvas(bounds or frame_bounds(snapshots), size=size)
    frames = []
    for snap in snapshots:
        if label is not None:
            heading, settings = label.title(snap.step), label.settings()
        else:  # K is what the snapshot itself tells (one term per lookahead step and the base term)
            heading, settings = (
                (f"{title} · step {snap.step}" if title else f"step {snap.step}"),
                f"K = {len(snap.terms) - 1}",
            )
        arrows = snapshot_arrows(snap, layers, arrow_scale)
        frames.append(canvas.draw(snap.positives, snap.generated, arrows, title=heading, subtitle=settings))
    return frames


def frames_gif(frames: Sequence[Image.Image], *, duration_ms: int = 120) -> bytes:
    """An animated, looping GIF of RGB ``frames``, all mapped to one 256-colour palette made from the
    first and last frames (the colours do not flicker from frame to frame)."""
    if not frames:
        raise ExportError("there are no frames to encode")
    sample = Image.new("RGB", (frames[0].width, 2 * frames[0].height))
    sample.paste(frames[0], (0, 0))
    sample.paste(frames[-1], (0, frames[0].height))
    shared = sample.quantize(256, method=Image.Quantize.MEDIANCUT)
    indexed = [frame.quantize(palette=shared, dither=Image.Dither.NONE) for frame in frames]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def gif_bytes(
    snapshots: Sequence[Any],
    *,
    size: int = FRAME_SIZE,
    title: str = "",
    label: ArmLabel | None = None,
    layers: Sequence[str] = ("V",),
    arrow_scale: float = ARROW_SCALE,
    duration_ms: int = 120,
) -> bytes:
    """An animated, looping GIF with one frame per snapshot (:func:`snapshot_frames`; frames differ at
    least in their step label, so Pillow keeps every one)."""
    frames = snapshot_frames(snapshots, size=size, title=title, label=label, layers=layers, arrow_scale=arrow_scale)
    return frames_gif(frames, duration_ms=duration_ms)


def side_by_side_frames(
    snapshots_by_name: Mapping[str, Sequence[Any]],
    *,
    size: int = FRAME_SIZE,
    labels: Mapping[str, ArmLabel] | None = None,
    layers: Sequence[str] = ("V",),
    arrow_scale: float = ARROW_SCALE,
) -> list[Image.Image]:
    """Frames with the runs side by side (Compare's arms), each panel ``size`` pixels square and titled
    with its arm's :class:`ArmLabel` (name, K, τ, N, lr; from ``labels``, else the name alone): frame k
    of each run next to the others, all panels in one frame box. Runs are cut to the shortest."""
    if not snapshots_by_name or min(len(s) for s in snapshots_by_name.values()) == 0:
        raise ExportError("there are no snapshots to export yet: train a few steps first")
    n = min(len(s) for s in snapshots_by_name.values())
    bounds = frame_bounds([snap for snaps in snapshots_by_name.values() for snap in list(snaps)[:n]])
    labels = labels or {}
    columns = [
        snapshot_frames(
            list(snaps)[:n],
            size=size,
            title=name,
            label=labels.get(name),
            bounds=bounds,
            layers=layers,
            arrow_scale=arrow_scale,
        )
        for name, snaps in snapshots_by_name.items()
    ]
    frames = []
    for k in range(n):
        canvas = Image.new("RGB", (size * len(columns), size), "white")
        for c, column in enumerate(columns):
            canvas.paste(column[k], (c * size, 0))
        frames.append(canvas)
    return frames


def side_by_side_gif(
    snapshots_by_name: Mapping[str, Sequence[Any]],
    *,
    size: int = FRAME_SIZE,
    labels: Mapping[str, ArmLabel] | None = None,
    layers: Sequence[str] = ("V",),
    arrow_scale: float = ARROW_SCALE,
    duration_ms: int = 120,
) -> bytes:
    """An animated GIF of :func:`side_by_side_frames`."""
    frames = side_by_side_frames(snapshots_by_name, size=size, labels=labels, layers=layers, arrow_scale=arrow_scale)
    return frames_gif(frames, duration_ms=duration_ms)


def side_by_side_mp4(
    snapshots_by_name: Mapping[str, Sequence[Any]],
    *,
    size: int = FRAME_SIZE,
    labels: Mapping[str, ArmLabel] | None = None,
    layers: Sequence[str] = ("V",),
    arrow_scale: float = ARROW_SCALE,
    fps: int = 8,
) -> bytes:
    """An H.264 MP4 of :func:`side_by_side_frames` (panels of a multiple of 16 pixels)."""
    size = max(16, size // 16 * 16)  # H.264 wants dimensions divisible by 16
    frames = side_by_side_frames(snapshots_by_name, size=size, labels=labels, layers=layers, arrow_scale=arrow_scale)
    return frames_mp4(frames, fps=fps)


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


def mp4_bytes(
    snapshots: Sequence[Any],
    *,
    size: int = FRAME_SIZE,
    title: str = "",
    label: ArmLabel | None = None,
    layers: Sequence[str] = ("V",),
    arrow_scale: float = ARROW_SCALE,
    fps: int = 8,
) -> bytes:
    """An H.264 MP4 of the snapshots (:func:`snapshot_frames`). Raises :class:`ExportError` when no
    encoder is available (install ``imageio-ffmpeg``) instead of failing obscurely."""
    size = max(16, size // 16 * 16)  # H.264 wants dimensions divisible by 16
    frames = snapshot_frames(snapshots, size=size, title=title, label=label, layers=layers, arrow_scale=arrow_scale)
    return frames_mp4(frames, fps=fps)


def frames_mp4(frames: Sequence[Image.Image], *, fps: int = 8) -> bytes:
    """Encode RGB frames (cropped to multiples of 16 pixels) as H.264 MP4 with imageio's ffmpeg."""
    if mp4_encoder() is None:
        raise ExportError(
            "MP4 export needs an ffmpeg encoder: pip install imageio-ffmpeg (GIF export works without it)"
        )
    if not frames:
        raise ExportError("there are no frames to encode")
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


@dataclass(frozen=True)
class RunExport:
    """A run's files to download, from what it has kept: an animated GIF and MP4 of its kept frames (its
    arms side by side when there are several), its records and metrics as CSV (with a column ``arm``
    for several arms) and its config as JSON. :meth:`of` copies the run's lists now (the run trains
    on); each file is made only when asked for."""

    snapshots: Mapping[str, Sequence[Any]]
    records: Mapping[str, tuple[Sequence[StepRecord], Sequence[dict]]]
    labels: Mapping[str, ArmLabel]
    config: ExperimentConfig
    layers: Sequence[str] = ("V",)
    arrow_scale: float = ARROW_SCALE

    @classmethod
    def of(cls, run: Any, *, layers: Sequence[str] = ("V",), arrow_scale: float = ARROW_SCALE) -> RunExport:
        """The exports of a :class:`~drift_core.run.Run` (its histories, arms and base config)."""
        return cls(
            snapshots={name: list(h.snapshots) for name, h in run.histories.items()},
            records={
                name: (list(h.records), [{"step": m.step, "wall_s": m.wall_s, **m.values} for m in h.metrics])
                for name, h in run.histories.items()
            },
            labels=arm_labels({name: trainer.config for name, trainer in run.trainers.items()}),
            config=run.base_config,
            layers=tuple(layers),
            arrow_scale=arrow_scale,
        )

    @property
    def frames(self) -> int:
        """Frames of the animation: the kept snapshots of the arm with the fewest."""
        return min(len(s) for s in self.snapshots.values())

    def _single(self) -> str | None:
        return next(iter(self.snapshots)) if len(self.snapshots) == 1 else None

    def metrics_csv(self) -> str:
        if (name := self._single()) is not None:
            return rows_csv(record_rows(*self.records[name]))
        rows = [
            {"arm": name, **row} for name, (recs, metrics) in self.records.items() for row in record_rows(recs, metrics)
        ]
        return rows_csv(rows, "arm")

    def gif(self) -> bytes:
        drawing = {"layers": self.layers, "arrow_scale": self.arrow_scale}
        if (name := self._single()) is not None:
            return gif_bytes(self.snapshots[name], label=self.labels[name], **drawing)
        return side_by_side_gif(self.snapshots, labels=self.labels, **drawing)

    def mp4(self) -> bytes:
        """Raises :class:`ExportError` without an encoder (:func:`mp4_encoder`)."""
        drawing = {"layers": self.layers, "arrow_scale": self.arrow_scale}
        if (name := self._single()) is not None:
            return mp4_bytes(self.snapshots[name], label=self.labels[name], **drawing)
        return side_by_side_mp4(self.snapshots, labels=self.labels, **drawing)

    def config_json(self) -> str:
        return config_json(self.config)
