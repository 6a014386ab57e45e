"""The one CSV writer (drift_core.export.rows_csv / write_csv / read_csv) and atomic files (drift_core.files)."""

from __future__ import annotations

import os

import pytest

from drift_core.export import read_csv, rows_csv, write_csv
from drift_core.files import atomic_write, remove_stale_temporaries, write_bytes


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
