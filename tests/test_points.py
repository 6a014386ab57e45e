"""The point-file reader (drift_core.data.points.load_points) under fuzzing: random bytes, random text
and mutated valid files either load as finite [M, 2] float32 points or raise PointSetError, quickly; point
files as real tools write them, and each kind of bad file or array refused with its reason."""

from __future__ import annotations

import codecs
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from drift_core.data.points import MAX_BYTES, MAX_POINTS, PointSetError, load_points
from tests.fuzz_support import fuzz_settings, mutated


@st.composite
def point_files(draw) -> bytes:
    """A valid point file in one of the dialects real tools write: delimiter, line ending, quoting,
    header, extra label column, BOM."""
    rows = draw(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=30))
    delimiter = draw(st.sampled_from([",", ";", "\t", " ", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote = draw(st.sampled_from(["", '"']))
    label = draw(st.booleans())
    lines = (
        [delimiter.join(f"{quote}{name}{quote}" for name in (["label"] if label else []) + ["x", "y"])]
        if draw(st.booleans())
        else []
    )
    lines += [
        delimiter.join((["a"] if label else []) + [f"{quote}{x!r}{quote}", f"{quote}{y!r}{quote}"]) for x, y in rows
    ]
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
    return text.encode(encoding)


def _check(source) -> None:
    try:
        points = load_points(source, notes=[])
    except PointSetError as err:
        assert str(err) and len(str(err)) < 400, err
        return
    assert points.dtype == torch.float32 and points.ndim == 2 and points.shape[1] == 2
    assert 2 <= len(points) <= MAX_POINTS and bool(torch.isfinite(points).all())


@fuzz_settings(max_examples=150)
@given(st.one_of(st.binary(max_size=2048), st.text(max_size=512)))
def test_random_bytes_and_text_load_or_are_refused(source):
    _check(source)


@fuzz_settings(max_examples=150)
@given(point_files().flatmap(lambda data: st.one_of(st.just(data), mutated(data))))
def test_valid_and_mutated_point_files_load_or_are_refused(data):
    _check(data)


@fuzz_settings(max_examples=50)
@given(point_files())
@example(b'"0.0" "0.0"\n"0.0" "0.0"')  # space-separated and quoted: once read as a header of two words
@example(b'  1.5\t  "2"  \n\t-3 4e0\t\n')  # runs of spaces and tabs around quoted and bare numbers
def test_every_dialect_of_a_valid_file_loads(data):
    points = load_points(data)
    assert len(points) >= 2


def test_header_shorter_than_the_rows_is_read_by_position():
    notes: list[str] = []
    assert load_points("a\n1,2,3\n4,5,6\n", notes=notes).tolist() == [[1.0, 2.0], [4.0, 5.0]]
    assert notes == ["used columns 1 and 2 of 3 as x and y"]


@pytest.mark.parametrize(
    "data",
    [
        b"1," + b"9" * 300_000 + b"\n3,4\n",  # one very long field (the csv module's limit is 131072)
        b"x,y\n" + b'"' + b"a" * 300_000 + b"\n",  # an unterminated quote running to the end
        (b'",' * 200_000) + b"\n1,2\n",  # quotes and delimiters the sniffer's patterns backtrack on
        b"1" * 5_000_000,  # one line of 5 MB
        b"1,2\n" * 150_000,  # many short lines
    ],
)
def test_long_fields_and_lines_are_quick(data):
    start = time.perf_counter()
    _check(data)
    assert time.perf_counter() - start < 20


def test_unreadable_files_are_refused_with_a_message(tmp_path, monkeypatch):
    with pytest.raises(PointSetError, match="no such file"):
        load_points(tmp_path)  # a folder
    locked = tmp_path / "locked.csv"
    locked.write_text("1,2\n3,4\n")

    def refused(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refused)  # as for a file of another user (root reads anything)
    with pytest.raises(PointSetError, match="cannot read .*locked.csv: Permission denied"):
        load_points(locked)


def test_utf16_without_bom_and_odd_lengths_are_refused_not_crashed():
    for data in (codecs.BOM_UTF16_LE + b"1\x00,\x002", "1,2\n3,4\n".encode("utf-16-le")):
        _check(data)


# ---- point files as real tools write them ---------------------------------------------------------


def test_load_points_good_and_bad():
    pts = load_points(b"x,y\n0,0\n1,1\n2,0.5\n")
    assert pts.shape == (3, 2)
    bad = {
        b"": "empty",
        b"1,2\n4\n": "at least 2 columns",
        b"a,b\nc,d\n1,2\n": "two numeric columns",
        b"1,2\nnan,3\n": "NaN",
        b"1,2\n": "at least",
        b"\x00\x01\x02binary": "binary",
        b"\xff\xfe\xfa": "UTF-8",
    }
    for content, words in bad.items():
        with pytest.raises(PointSetError, match=words):
            load_points(content)
    with pytest.raises(PointSetError, match="too many"):
        load_points("\n".join("1,2" for _ in range(200_002)))
    with pytest.raises(PointSetError, match="shape"):
        load_points(np.zeros((3, 3)))


@pytest.mark.parametrize(
    "text",
    [
        "x,y\r0.5,1\r-1,2\r3,4\r",  # classic Mac line endings
        "x\ty\n0.5\t1\n-1\t2\n3\t4\n",  # tab-separated
        "x;y\r\n0.5;1\r\n-1;2\r\n3;4\r\n",  # semicolons, Windows line endings
        "0.5 1\n-1   2\n3 4\n",  # whitespace, no header
        '"x","y"\n"0.5","1"\n"-1","2"\n"3","4"\n',  # quoted
        "# exported\nx,y,\n0.5,1,\n-1,2,\n3,4,\n",  # a comment and trailing delimiters
    ],
)
def test_point_files_in_any_common_dialect_load(text):
    points = load_points(text)
    assert points.tolist() == [[0.5, 1.0], [-1.0, 2.0], [3.0, 4.0]]


def test_point_files_with_a_bom_or_label_columns_say_which_columns_were_used():
    rows = "label,y,x,weight\na,1,0.5,9\nb,2,-1,9\nc,4,3,9\n"
    notes: list[str] = []
    assert load_points(rows, notes=notes).tolist() == [[0.5, 1.0], [-1.0, 2.0], [3.0, 4.0]]
    assert notes == ["used columns 'x' and 'y' of 4 as x and y"]
    notes.clear()
    assert load_points("id,a,b\n7,0.5,1\n8,-1,2\n", notes=notes).tolist() == [[7.0, 0.5], [8.0, -1.0]]
    notes.clear()
    assert load_points("name;p;q\nu;0.5;1\nv;-1;2\n", notes=notes).tolist() == [[0.5, 1.0], [-1.0, 2.0]]
    assert notes == ["used columns 'p' and 'q' of 3 as x and y"]
    for encoded in ("x,y\n1,2\n3,4\n".encode("utf-16"), "\ufeffx,y\n1,2\n3,4\n".encode("utf-8")):
        assert load_points(encoded).tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_bad_point_files_are_refused_with_the_line():
    with pytest.raises(PointSetError, match="line 3"):
        load_points("x,y\n1,2\n3,oops\n")
    with pytest.raises(PointSetError, match="line 2"):
        load_points("x,y\n" + "1" * 200_000 + ",2\n")  # one field beyond the csv module's limit
    with pytest.raises(PointSetError, match="two numeric columns"):
        load_points("a,b\nx,y\n")


def test_huge_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as fh:
        fh.truncate(MAX_BYTES + 1)  # sparse: nothing is written, and nothing may be read
    with pytest.raises(PointSetError, match="too large"):
        load_points(big)
    with pytest.raises(PointSetError, match="too large"):
        load_points(b"1,2\n" * (MAX_BYTES // 4 + 1))


def test_arrays_of_the_wrong_kind_are_refused():
    for bad in (torch.zeros(3), [["a", "b"], ["c", "d"]], torch.full((3, 2), float("nan"))):
        with pytest.raises(PointSetError):
            load_points(bad)


def test_whitespace_separated_files_may_quote_their_numbers():
    assert load_points(b'"0.5" "1"\n"-2" "3e0"\n').tolist() == [[0.5, 1.0], [-2.0, 3.0]]
    assert load_points(b'  1.5\t  "2"  \n\t-3 4e0\t\n').tolist() == [[1.5, 2.0], [-3.0, 4.0]]
    assert load_points(b'"x" "y"\n1 2\n3 4\n').tolist() == [[1.0, 2.0], [3.0, 4.0]]  # a quoted header
