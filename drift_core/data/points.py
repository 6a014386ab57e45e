"""Validated loading of user-supplied 2D point sets (CSV text or arrays).

Every failure raises :class:`PointSetError` with a message meant for the person who supplied the
file; nothing is half-loaded. Coordinates are kept as given (the temperature is in data units).
"""

from __future__ import annotations

import codecs
import csv
import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["PointSetError", "load_points", "MAX_POINTS", "MAX_BYTES"]

MAX_POINTS = 200_000
MAX_BYTES = 20 * 1024 * 1024


class PointSetError(ValueError):
    """A point set that cannot be used, with the reason in plain words."""


DELIMITERS = ",;\t|"
"""Delimiters tried by the reader (besides runs of whitespace)."""
SNIFF_CHARS = 4096
"""The dialect is sniffed from at most this many characters of the first lines (the sniffer's patterns
backtrack: its time grows faster than the sample)."""


def _parse_csv(text: str, max_points: int = MAX_POINTS, notes: list[str] | None = None) -> np.ndarray:
    """Rows of a delimited text file as an [M, 2] array of (x, y).

    Any line ending (\\n, \\r\\n, classic-Mac \\r); comma, semicolon, tab, pipe or whitespace
    delimiters (sniffed from the first lines by :class:`csv.Sniffer`, quoting included); lines starting
    with ``#`` are comments; an optional header line. With more than two columns, the columns named x
    and y in the header are used, else the first two numeric ones, and ``notes`` says which."""
    lines = [
        (no, line)
        for no, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return np.zeros((0, 2))
    sample = "\n".join(line for _, line in lines[:50])[:SNIFF_CHARS]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = _fallback_delimiter(sample)
    rows = _split_rows(lines, delimiter)
    header: list[str] | None = None
    if rows and not any(_is_number(c) for c in rows[0][1]):
        header = [c.lower() for c in rows[0][1]]
        rows = rows[1:]
    if not rows:
        return np.zeros((0, 2))
    width = len(rows[0][1])
    if header is not None and "x" in header and "y" in header:
        cols = (header.index("x"), header.index("y"))
    else:
        numeric = [k for k, c in enumerate(rows[0][1]) if _is_number(c)]
        if len(numeric) < 2:
            no, cells = rows[0]
            raise PointSetError(
                f"line {no}: expected two numeric columns (x, y), found {len(numeric)} in {_show(cells)}"
            )
        cols = (numeric[0], numeric[1])
    if notes is not None and width > 2:
        named = header is not None and max(cols) < len(header)
        names = f"'{header[cols[0]]}' and '{header[cols[1]]}'" if named else f"{cols[0] + 1} and {cols[1] + 1}"
        notes.append(f"used columns {names} of {width} as x and y")
    out: list[tuple[float, float]] = []
    for no, cells in rows:
        if len(cells) <= max(cols):
            raise PointSetError(
                f"line {no}: expected at least {max(cols) + 1} columns, found {len(cells)} in {_show(cells)}"
            )
        try:
            out.append((float(cells[cols[0]]), float(cells[cols[1]])))
        except ValueError:
            raise PointSetError(
                f"line {no}: {_show([cells[cols[0]], cells[cols[1]]])} is not a pair of numbers"
            ) from None
        if len(out) > max_points:
            raise PointSetError(f"too many points: more than {max_points:,} rows (this server's limit)")
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _fallback_delimiter(sample: str) -> str | None:
    """When the sniffer cannot tell: the first of :data:`DELIMITERS` in ``sample``, except that a tab
    counts only when it splits every line after the first (which may be a header) into the same
    number, two or more, of non-empty cells; otherwise the tabs align columns together with spaces,
    and None is returned (runs of whitespace)."""
    lines = sample.splitlines()
    if len(sample) >= SNIFF_CHARS and len(lines) > 2:
        lines = lines[:-1]  # the sample's last line may be cut short
    for candidate in DELIMITERS:
        if candidate not in sample:
            continue
        if candidate != "\t":
            return candidate
        try:
            counts = {sum(1 for c in cells if c.strip()) for cells in csv.reader(lines[1:] or lines, delimiter="\t")}
        except csv.Error:
            return None
        return "\t" if len(counts) == 1 and counts.pop() >= 2 else None
    return None


def _split_rows(lines: list[tuple[int, str]], delimiter: str | None) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of each line; a malformed line is refused with its number. With no
    ``delimiter`` the cells are separated by runs of spaces and tabs, quoted as in the other dialects."""
    rows = []
    for no, line in lines:
        if delimiter is None:
            line = line.strip().replace("\t", " ")
        try:
            cells = next(csv.reader([line], delimiter=delimiter or " ", skipinitialspace=True), [])
        except csv.Error as err:
            if "field larger than field limit" in str(err):
                raise PointSetError(
                    f"line {no}: a value is longer than {csv.field_size_limit():,} characters; "
                    "expected rows of x,y numbers"
                ) from None
            raise PointSetError(f"line {no}: {err}") from None
        cells = [c.strip() for c in cells]
        while cells and cells[-1] == "":  # a trailing delimiter
            cells.pop()
        rows.append((no, cells))
    return rows


def _show(cells: list[str]) -> str:
    text = ", ".join(cells)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _max_bytes(max_points: int) -> int:
    """The file-size limit that goes with a row limit (~100 bytes per row, never below MAX_BYTES)."""
    return max(MAX_BYTES, 100 * max_points)


def _decode(data: bytes, max_bytes: int = MAX_BYTES) -> str:
    if len(data) > max_bytes:
        raise PointSetError(f"file too large: {len(data) / 1e6:.1f} MB (limit {max_bytes / 1e6:.0f} MB)")
    try:
        if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return data.decode("utf-16")
        if b"\x00" in data[:4096]:
            raise PointSetError("this is a binary file, not a CSV text file of x,y rows")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PointSetError("the file is neither UTF-8 nor UTF-16 text; save it as a plain CSV of x,y rows") from None


def load_points(
    source: bytes | str | Path | np.ndarray | Tensor,
    *,
    min_points: int = 2,
    max_points: int | None = None,
    notes: list[str] | None = None,
) -> Tensor:
    """Load and validate a point set.

    Args:
        source: CSV bytes or text, a :class:`~pathlib.Path` to a CSV file, or an array [M, 2].
        min_points: the fewest points accepted (a distribution needs at least two).
        max_points: the most rows accepted (default ``MAX_POINTS``); the app and the CLI pass the
            server's ``DRIFT_MAX_UPLOAD_POINTS`` (:class:`drift_core.limits.Limits`). The byte limit
            scales with it.
        notes: when given, what the reader chose is appended (e.g. which columns became x and y).

    Returns:
        float32 tensor [M, 2].

    Raises:
        PointSetError: empty, wrong columns, non-numeric, NaN/inf, too few or too many points,
            too large, or binary.
    """
    max_points = MAX_POINTS if max_points is None else int(max_points)
    max_bytes = _max_bytes(max_points)
    if isinstance(source, Path):
        path = source
        if not path.is_file():
            raise PointSetError(f"no such file: {path}")
        try:
            if path.stat().st_size > max_bytes:
                raise PointSetError(
                    f"file too large: {path.stat().st_size / 1e6:.1f} MB (limit {max_bytes / 1e6:.0f} MB)"
                )
            source = path.read_bytes()
        except OSError as err:
            raise PointSetError(f"cannot read {path}: {err.strerror or err}") from None
    if isinstance(source, (bytearray, memoryview)):
        source = bytes(source)
    if isinstance(source, bytes):
        array = _parse_csv(_decode(source, max_bytes), max_points, notes)
    elif isinstance(source, str):
        if len(source) > max_bytes:
            raise PointSetError(f"text too large: {len(source) / 1e6:.1f} MB (limit {max_bytes / 1e6:.0f} MB)")
        array = _parse_csv(source, max_points, notes)
    else:
        try:
            array = np.asarray(source.detach().cpu() if isinstance(source, Tensor) else source, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise PointSetError(f"expected numbers in an array of shape [M, 2] ({err})") from None
        if array.ndim != 2 or array.shape[1] != 2:
            raise PointSetError(f"expected an array of shape [M, 2], got {tuple(array.shape)}")
        if array.shape[0] > max_points:
            raise PointSetError(f"too many points: {array.shape[0]:,} (limit {max_points:,})")
    if array.shape[0] == 0:
        raise PointSetError("the point set is empty: expected rows of x,y numbers")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(1).sum())
        raise PointSetError(f"{bad} row(s) contain NaN or infinite values")
    if array.shape[0] < min_points:
        raise PointSetError(f"need at least {min_points} points, got {array.shape[0]}")
    if np.abs(array).max() > 1e6 or not math.isfinite(float(array.std())):
        raise PointSetError("coordinates are too large (|value| > 1e6)")
    return torch.as_tensor(array, dtype=torch.float32)
