"""Validated loading of user-supplied 2D point sets (CSV text or arrays).

Every failure raises :class:`PointSetError` with a message meant for the person who supplied the
file; nothing is half-loaded. Coordinates are kept as given (the temperature is in data units).
"""
from __future__ import annotations

import csv
import io
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


def _parse_csv(text: str, max_points: int = MAX_POINTS) -> np.ndarray:
    rows: list[tuple[float, float]] = []
    reader = csv.reader(io.StringIO(text))
    seen_content = False
    for line_no, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row if c.strip() != ""]
        if not cells or cells[0].startswith("#"):
            continue
        first_line, seen_content = not seen_content, True
        if len(cells) != 2:
            raise PointSetError(f"line {line_no}: expected 2 columns (x, y), found {len(cells)}")
        try:
            rows.append((float(cells[0]), float(cells[1])))
        except ValueError:
            if first_line and all(not _is_number(c) for c in cells):
                continue  # a header line such as "x,y"
            raise PointSetError(f"line {line_no}: {','.join(cells)!r} is not a pair of numbers") from None
        if len(rows) > max_points:
            raise PointSetError(f"too many points: more than {max_points:,} rows (this server's limit)")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


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
    if b"\x00" in data[:4096]:
        raise PointSetError("this is a binary file, not a CSV text file of x,y rows")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PointSetError("the file is not UTF-8 text; save it as a plain CSV of x,y rows") from None


def load_points(source: bytes | str | Path | np.ndarray | Tensor, *, min_points: int = 2,
                max_points: int | None = None) -> Tensor:
    """Load and validate a point set.

    Args:
        source: CSV bytes or text, a :class:`~pathlib.Path` to a CSV file, or an array [M, 2].
        min_points: the fewest points accepted (a distribution needs at least two).
        max_points: the most rows accepted (default ``MAX_POINTS``); the app and the CLI pass the
            server's ``DRIFT_MAX_UPLOAD_POINTS`` (:class:`drift_core.limits.Limits`). The byte limit
            scales with it.

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
        if path.stat().st_size > max_bytes:
            raise PointSetError(f"file too large: {path.stat().st_size / 1e6:.1f} MB (limit {max_bytes / 1e6:.0f} MB)")
        source = path.read_bytes()
    if isinstance(source, (bytearray, memoryview)):
        source = bytes(source)
    if isinstance(source, bytes):
        array = _parse_csv(_decode(source, max_bytes), max_points)
    elif isinstance(source, str):
        if len(source) > max_bytes:
            raise PointSetError(f"text too large: {len(source) / 1e6:.1f} MB (limit {max_bytes / 1e6:.0f} MB)")
        array = _parse_csv(source, max_points)
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
