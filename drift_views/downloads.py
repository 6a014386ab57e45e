"""The pages' download buttons as data, without Streamlit: each file's name, type and contents (made
only when its button is clicked where making it takes time), its icon, and whether and why its
button is off. ``ui`` draws a row of them (:func:`ui.classroom.download_row`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drift_core.export import RunExport, mp4_encoder, rows_csv
from drift_core.run import Run
from drift_core.sweep import SweepResult

from .display import ViewSettings
from .sweep import heatmap_png


@dataclass(frozen=True)
class Download:
    """One download button: ``label``, the file (``file_name``, ``mime``, ``data`` or a function that
    makes it), a Material ``icon`` name, and ``help`` (why it is ``disabled``, or what the file is)."""

    label: str
    data: bytes | str | Callable[[], bytes | str]
    file_name: str
    mime: str
    icon: str = "download"
    disabled: bool = False
    help: str | None = None


def run_downloads(run: Run, view: ViewSettings) -> tuple[list[Download], str]:
    """A live run's exports (:class:`~drift_core.export.RunExport`, drawn with the page's arrow
    layers): GIF, MP4, metrics CSV and config JSON; and a note when the animations cannot be made yet
    ("" otherwise)."""
    layers = view.layers if len(run.trainers) == 1 else view.compare_layers
    files = RunExport.of(run, layers=layers, arrow_scale=view.arrow_scale)
    frames, encoder = files.frames, mp4_encoder()
    no_mp4 = "MP4 needs an encoder: pip install imageio-ffmpeg"
    downloads = [
        Download(
            "GIF",
            files.gif,
            "drift_lab_run.gif",
            "image/gif",
            "gif_box",
            frames < 2,
            f"animated GIF of the {frames} kept frames",
        ),
        Download(
            "MP4",
            files.mp4,
            "drift_lab_run.mp4",
            "video/mp4",
            "movie",
            frames < 2 or encoder is None,
            no_mp4 if encoder is None else f"H.264 video of the {frames} kept frames",
        ),
        Download("Metrics CSV", files.metrics_csv, "drift_lab_metrics.csv", "text/csv", "table"),
        Download(
            "Config JSON",
            files.config_json(),
            "drift_lab_config.json",
            "application/json",
            "data_object",
            help="python -m drift_core train --config drift_lab_config.json reproduces this run",
        ),
    ]
    note = "GIF/MP4 export needs at least two kept frames: train a few more steps." if frames < 2 else ""
    return downloads, note


def sweep_downloads(result: SweepResult, metric: str) -> list[Download]:
    """A finished sweep's tables (each cell's mean and std; every seed's run) and its heatmap of
    ``metric``."""
    return [
        Download("Cells: mean and std (CSV)", rows_csv(result.rows()), "sweep.csv", "text/csv"),
        Download("Every seed (CSV)", rows_csv(result.trial_rows()), "trials.csv", "text/csv"),
        Download("Heatmap (PNG)", lambda: heatmap_png(result, metric), f"sweep_{metric}.png", "image/png"),
    ]
