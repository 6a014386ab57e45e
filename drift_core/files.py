"""Atomic file writes: a file under its real name is always complete.

Every file the engine and the CLI write (checkpoints, metrics CSVs, config and summary JSON, PNGs,
exports) goes through :func:`atomic_write`: the content is written to a temporary file in the same
folder, flushed to disk, and moved over the real name with :func:`os.replace` (atomic on POSIX and
Windows when both are on one file system). A process killed mid-write (``kill -9``) leaves the previous
version, or nothing, under the real name, plus at most a hidden ``.NAME.*.tmp`` file beside it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "write_bytes", "write_text", "remove_stale_temporaries"]


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing (``mode`` "wb" or "w"); when the block ends
    without an exception the file is flushed, fsynced and renamed to ``path``; otherwise it is removed
    and ``path`` is untouched. The parent folder is created when missing."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w", newline="") as fh:
        fh.write(text)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike, names: list[str]) -> list[Path]:
    """Delete the temporary files a killed writer of ``folder/NAME`` left behind (``.NAME.*.tmp``), for
    each of ``names``; returns what was deleted. Call it only where no other process writes those
    names at the same time."""
    removed = []
    for name in names:
        for stale in Path(folder).glob(f".{name}.*.tmp"):
            try:
                stale.unlink()
                removed.append(stale)
            except OSError:
                pass
    return removed
