"""The GIF/MP4 exports (drift_core.export: frames with the data, particles, arrows and readable titles in
the app's palette), the one CSV writer (rows_csv / write_csv / read_csv), the metrics CSV and atomic files
(drift_core.files)."""

from __future__ import annotations

import csv
import io
import os

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from drift_core import palette
from drift_core.config import ExperimentConfig
from drift_core.export import (
    ArmLabel,
    ExportError,
    RunExport,
    arm_labels,
    frame_bounds,
    gif_bytes,
    mp4_bytes,
    mp4_encoder,
    read_csv,
    records_csv,
    rows_csv,
    side_by_side_frames,
    side_by_side_gif,
    side_by_side_mp4,
    snapshot_frames,
    write_csv,
)
from drift_core.files import atomic_write, remove_stale_temporaries, write_bytes
from drift_core.train import Trainer
from tests.configs_support import run_with_snapshots  # noqa: F401  (a fixture: a short run's snapshots and records)

TINY = ExperimentConfig().with_values(
    {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "seed": 5, "K": 1}
)
BASELINE = TINY.with_values({"K": 0, "lr": 0.002})


@pytest.fixture(scope="module")
def arms() -> dict[str, list]:
    """Snapshots of two tiny arms: a lookahead K = 1 run (4 frames) and a baseline (3 frames)."""
    out = {}
    for name, config, frames in (("lookahead", TINY, 4), ("baseline", BASELINE, 3)):
        trainer, snaps = Trainer(config), []
        for _ in range(frames):
            trainer.run(3)
            snaps.append(trainer.snapshot(64))
        out[name] = snaps
    return out


# ---- GIF / MP4 ---------------------------------------------------------------------------------------------
def test_gif_decodes_with_one_frame_per_snapshot_at_the_asked_size(arms):
    snaps = arms["lookahead"]
    frames = iio.imread(gif_bytes(snaps, size=160, label=ArmLabel.of(TINY)), index=None, extension=".gif")
    assert frames.shape[:3] == (len(snaps), 160, 160)
    assert not np.array_equal(frames[0], frames[-1])  # the particles move, the step changes


def test_mp4_decodes_with_one_frame_per_snapshot_at_a_multiple_of_16(arms):
    snaps = arms["lookahead"]
    frames = iio.imread(mp4_bytes(snaps, size=170, fps=4), index=None, extension=".mp4", plugin="FFMPEG")
    assert frames.shape == (len(snaps), 160, 160, 3)


def test_side_by_side_exports_pair_the_arms_cut_to_the_shorter_run(arms):
    labels = arm_labels({"lookahead": TINY, "baseline": BASELINE})
    gif = iio.imread(side_by_side_gif(arms, size=96, labels=labels), index=None, extension=".gif")
    assert gif.shape[:3] == (3, 96, 192)
    mp4 = iio.imread(side_by_side_mp4(arms, size=100, labels=labels), index=None, extension=".mp4", plugin="FFMPEG")
    assert mp4.shape == (3, 96, 192, 3)
    with pytest.raises(ExportError, match="no snapshots"):
        side_by_side_gif({"lookahead": arms["lookahead"], "baseline": []})


def test_each_side_by_side_panel_is_its_arms_frame_titled_with_its_own_label(arms):
    labels = arm_labels({"lookahead": TINY, "baseline": BASELINE})
    frames = side_by_side_frames(arms, size=200, labels=labels, layers=("V", "V⁺"))
    shared = frame_bounds([snap for snaps in arms.values() for snap in snaps[:3]])
    for column, name in enumerate(arms):
        alone = snapshot_frames(arms[name][:3], size=200, label=labels[name], bounds=shared, layers=("V", "V⁺"))
        for k in range(3):
            panel = frames[k].crop((200 * column, 0, 200 * (column + 1), 200))
            assert np.array_equal(np.asarray(panel), np.asarray(alone[k]))
    # the two arms' titles differ (name, K, lr), their plots are the same kind of picture
    top = lambda image, c: np.asarray(image.crop((200 * c, 0, 200 * (c + 1), 24)))  # noqa: E731
    assert not np.array_equal(top(frames[0], 0), top(frames[0], 1))


def test_arm_labels_name_the_arm_with_its_k_tau_batch_and_learning_rate():
    labels = arm_labels({"run": TINY, "baseline": BASELINE})
    assert labels["run"].title(40) == "lookahead K=1 · step 40"  # a single run is named after its method
    assert labels["run"].settings() == "K = 1 · τ = 0.05 · N = 32 · lr = 0.001"
    assert labels["baseline"].title(3) == "baseline · step 3"
    assert labels["baseline"].settings() == "K = 0 · τ = 0.05 · N = 32 · lr = 0.002"


def test_the_gif_keeps_the_palettes_colours_of_the_layers_it_draws(arms):
    snaps = arms["lookahead"][-1:] * 2

    def plot(layers: tuple[str, ...]) -> np.ndarray:
        gif = iio.imread(gif_bytes(snaps, layers=layers, arrow_scale=8), index=None, extension=".gif")
        return gif[0, 70:440, 60:440, :3].astype(int)  # inside the axes of a 480-pixel frame

    def close(pixels: np.ndarray, stroke: palette.Stroke) -> int:
        return int((np.abs(pixels - palette.rgb(stroke.colour)).max(axis=-1) <= 12).sum())

    points, arrows = plot(()), plot(("V", "V⁺", "V⁻"))
    assert min(close(points, stroke) for stroke in (palette.DATA, palette.GENERATED)) >= 10
    assert close(points, palette.V_NEG) == 0
    assert min(close(arrows, stroke) for stroke in (palette.V, palette.V_POS, palette.V_NEG)) >= 10


# ---- CSV and atomic files ------------------------------------------------------------------------------------
def test_rows_csv_columns_are_the_union_or_the_given_ones():
    rows = [{"step": 1, "loss": 0.5}, {"step": 2, "energy": 0.1, "loss": 0.4}]
    assert rows_csv(rows) == "step,loss,energy\n1,0.5,\n2,0.4,0.1\n"
    assert rows_csv(rows, columns=["step", "energy", "fid"]) == "step,energy,fid\n1,,\n2,0.1,\n"  # others left out
    assert rows_csv([], "method") == "method\n"


def test_write_csv_round_trips_through_read_csv(tmp_path):
    path = tmp_path / "deeper" / "rows.csv"
    rows = [
        {"method": "baseline, 2x lr", "seed": 0, "energy": 0.25},
        {"method": 'quote "q"', "seed": 1, "energy": float("nan")},
    ]
    write_csv(path, rows)
    assert read_csv(path) == [
        {"method": "baseline, 2x lr", "seed": "0", "energy": "0.25"},
        {"method": 'quote "q"', "seed": "1", "energy": "nan"},
    ]
    assert os.listdir(path.parent) == ["rows.csv"]


def test_an_interrupted_write_keeps_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.csv"
    write_csv(path, [{"step": 1}])
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as fh:
            fh.write("step\n1\n2")
            raise KeyboardInterrupt  # killed mid-write
    assert path.read_text() == "step\n1\n" and os.listdir(tmp_path) == ["metrics.csv"]


def test_temporaries_of_a_killed_writer_are_removed_by_name_only(tmp_path):
    write_bytes(tmp_path / "checkpoint.pt", b"x")
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / ".other.txt.abc.tmp").write_bytes(b"not ours")
    removed = remove_stale_temporaries(tmp_path, ["checkpoint.pt", "metrics.csv"])
    assert [p.name for p in removed] == [".checkpoint.pt.abc123.tmp"]
    assert sorted(os.listdir(tmp_path)) == [".other.txt.abc.tmp", "checkpoint.pt"]


def test_atomic_write_accepts_whole_file_modes_only(tmp_path):
    with pytest.raises(ValueError, match="whole files"):
        with atomic_write(tmp_path / "x", "a"):
            pass


# ---- a short run's snapshots and records ----------------------------------------------------------


def test_gif_export_has_one_frame_per_snapshot(run_with_snapshots):
    _, snaps, _ = run_with_snapshots
    data = gif_bytes(snaps, size=128, title="tiny")
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.is_animated and gif.n_frames == len(snaps) == 6
    assert gif.size == (128, 128) and gif.info.get("loop") == 0


def test_mp4_export_with_bundled_encoder(run_with_snapshots, tmp_path):
    assert mp4_encoder() is not None, "imageio-ffmpeg (requirements.txt) should provide an encoder"
    _, snaps, _ = run_with_snapshots
    data = mp4_bytes(snaps, size=130, fps=5)
    assert data[4:8] == b"ftyp"
    path = tmp_path / "run.mp4"
    path.write_bytes(data)
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        assert reader.count_frames() == len(snaps)
        assert reader.get_data(0).shape == (128, 128, 3)  # rounded down to a multiple of 16
    finally:
        reader.close()


def test_metrics_csv_joins_evaluations(run_with_snapshots):
    _, _, records = run_with_snapshots
    text = records_csv(records, [{"step": 4, "wall_s": 0.1, "energy": 0.25}, {"step": 0, "wall_s": 0.0, "energy": 0.9}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["step"]) for r in rows] == list(range(0, 11))
    assert rows[0]["energy"] == "0.9" and rows[4]["energy"] == "0.25" and rows[5]["energy"] == ""
    assert float(rows[3]["loss"]) == pytest.approx(records[2].loss)


def test_side_by_side_gif_pairs_frames_of_each_arm(run_with_snapshots):
    from drift_core.export import frames_mp4, side_by_side_frames, side_by_side_gif

    _, snaps, _ = run_with_snapshots
    gif = Image.open(io.BytesIO(side_by_side_gif({"baseline": snaps, "lookahead": snaps[:4]}, size=96)))
    assert gif.n_frames == 4 and gif.size == (192, 96)  # cut to the shorter run
    frames = side_by_side_frames({"a": snaps[:2], "b": snaps[:2], "c": snaps[:2]}, size=50)
    assert data_size(frames_mp4(frames, fps=4)) > 0 and frames[0].size == (150, 50)


def data_size(data: bytes) -> int:
    assert data[4:8] == b"ftyp"
    return len(data)


def test_rows_csv_unions_columns_across_arms():
    """The comparison export: arms with different columns (one drift_rms per term) share one CSV."""
    import csv as _csv
    import io as _io

    from drift_core.export import record_rows, rows_csv

    base = record_rows([{"step": 1, "loss": 0.5, "drift_rms_0": 0.1}], [{"step": 0, "wall_s": 0.0, "energy": 0.9}])
    look = record_rows([{"step": 1, "loss": 0.4, "drift_rms_0": 0.1, "drift_rms_1": 0.05}])
    text = rows_csv([{"arm": "baseline", **r} for r in base] + [{"arm": "lookahead", **r} for r in look], "arm")
    parsed = list(_csv.DictReader(_io.StringIO(text)))
    assert list(parsed[0]) == ["arm", "step", "energy", "loss", "drift_rms_0", "drift_rms_1"]
    assert [(r["arm"], r["step"]) for r in parsed] == [("baseline", "0"), ("baseline", "1"), ("lookahead", "1")]
    assert parsed[1]["drift_rms_1"] == "" and parsed[2]["drift_rms_1"] == "0.05" and parsed[0]["energy"] == "0.9"
    assert rows_csv([], "arm") == "arm\n"


def test_run_export_offers_a_runs_files_from_what_it_kept():
    """RunExport (the app's download buttons): a single arm's CSV is its records by step, a comparison's
    has an arm column with every arm's rows; the GIF and MP4 have one frame per kept snapshot of the
    shorter arm; the config JSON reads back as the run's base config; and the copy is the run's state
    when it was taken (the run training on does not change it)."""
    from drift_core.run import Run

    config = ExperimentConfig().with_values(
        {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "K": 1}
    )
    single = Run.single(config)
    for _ in range(4):  # a frame drawn after each step, as the app does: each one kept
        single.advance(1)
        single.frames(64, force_snapshot=True)
    files = RunExport.of(single)
    rows = list(csv.DictReader(io.StringIO(files.metrics_csv())))
    history = single.history
    steps = sorted({r.step for r in history.records} | {m.step for m in history.metrics})  # evaluated at 0 too
    assert [int(r["step"]) for r in rows] == steps and "arm" not in rows[0]
    assert files.frames == len(single.history.snapshots) >= 2
    assert iio.imread(files.gif(), index=None).shape[0] == files.frames
    assert ExperimentConfig.from_json(files.config_json()) == single.base_config
    single.advance(4)
    assert len(list(csv.DictReader(io.StringIO(files.metrics_csv())))) == len(rows)  # taken when asked
    pair = Run.compare(config, True, None)
    for _ in range(3):
        pair.advance(1)
        pair.frames(64, force_snapshot=True)
    both = RunExport.of(pair, layers=("V", "V+"), arrow_scale=2.0)
    rows = list(csv.DictReader(io.StringIO(both.metrics_csv())))
    assert {r["arm"] for r in rows} == set(pair.trainers) and len(rows) == 4 * len(pair.trainers)  # steps 0-3
    assert iio.imread(both.gif(), index=None).shape[0] == both.frames
    assert iio.imread(both.mp4(), index=None, extension=".mp4").shape[0] == both.frames  # the bundled encoder
