"""The pages' download buttons as data (drift_views.downloads): what each file holds, and why a button
is off."""

from __future__ import annotations

import json

from drift_core.config import ExperimentConfig
from drift_core.run import Run
from drift_core.sweep import run_sweep
from drift_views.display import ViewSettings
from drift_views.downloads import run_downloads, sweep_downloads
from drift_views.sweep import build_spec

SMALL = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 32})


def test_a_runs_animations_wait_for_two_kept_frames_and_its_config_reproduces_it():
    run = Run.single(SMALL)
    assert len(run.history.snapshots) < 2
    downloads, note = run_downloads(run, ViewSettings())
    by_label = {d.label: d for d in downloads}
    assert list(by_label) == ["GIF", "MP4", "Metrics CSV", "Config JSON"]
    assert by_label["GIF"].disabled and by_label["MP4"].disabled and "two kept frames" in note
    assert ExperimentConfig.from_dict(json.loads(by_label["Config JSON"].data)) == run.base_config
    while len(run.history.snapshots) < 2:
        run.advance(1)
        run.frames(64, force_snapshot=True)
    downloads, note = run_downloads(run, ViewSettings())
    gif = downloads[0]
    assert not gif.disabled and note == "" and f"{len(run.history.snapshots)} kept frames" in gif.help
    assert gif.data()[:6] in (b"GIF87a", b"GIF89a")
    assert downloads[2].data().splitlines()[0].startswith("step")


def test_a_sweeps_tables_and_heatmap():
    base = SMALL.with_values({"batch_size": 16})
    spec, problem = build_spec(base, "8gaussians", "K", [0, 1], "tau", [0.1], 2, (0,))
    assert spec is not None, problem
    result = run_sweep(spec)
    cells, trials, heatmap = sweep_downloads(result, "energy")
    assert cells.file_name == "sweep.csv" and len(cells.data.strip().splitlines()) == 1 + 2
    assert len(trials.data.strip().splitlines()) == 1 + 2
    assert heatmap.file_name == "sweep_energy.png" and heatmap.data()[:8] == b"\x89PNG\r\n\x1a\n"
