"""Self-describing checkpoints, loaded safely.

A checkpoint is a dict of tensors and plain values saved with ``torch.save``. Loading always uses
``weights_only=True``: a file that needs arbitrary unpickling (for example a pickle that would run
code) is refused, and nothing in it is executed. Every failure is a :class:`CheckpointError` whose
message says what is wrong.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "checkpoint_bytes", "FORMAT"]

FORMAT = "drift-lab-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that cannot be used as a Drift Lab checkpoint, with the reason."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, kind: str) -> Path:
    """Write ``state`` (tensors and plain values) atomically: to a temporary file, then renamed, so
    an interrupted save never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, **state}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def checkpoint_bytes(state: dict[str, Any], *, kind: str) -> bytes:
    """The bytes :func:`save_checkpoint` would write (for a download button); load them back with
    :func:`load_checkpoint`."""
    import io

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "kind": kind, **state}, buffer)
    return buffer.getvalue()


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO, *, kind: str) -> dict[str, Any]:
    """Load a checkpoint of the given kind ("toy2d" or "images") with ``weights_only=True``."""
    import io

    if isinstance(source, bytes):
        if not source:
            raise CheckpointError("the file is empty")
        source = io.BytesIO(source)
    elif not hasattr(source, "read"):
        p = Path(source)
        if not p.is_file():
            raise CheckpointError(f"no such checkpoint file: {p}")
        if p.stat().st_size == 0:
            raise CheckpointError(f"{p} is empty")
    head = _peek(source, 4)
    if head and not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        kind_of = "text" if all(32 <= c < 127 or c in (9, 10, 13) for c in head) else "some other file"
        raise CheckpointError(f"not a readable checkpoint: this is {kind_of}, not a torch file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files: the error says it all
            warnings.simplefilter("ignore")
            data = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            "refused: this file contains Python objects that are not plain weights "
            f"(it could run code when loaded), so it was not loaded ({_unpickler_detail(err)})"
        ) from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, OSError, ValueError) as err:
        raise CheckpointError(f"not a readable checkpoint (truncated or not a torch file): {str(err)[:160]}") from None
    except Exception as err:  # noqa: BLE001 - any other unpickling failure is a bad file, not a crash
        raise CheckpointError(f"not a readable checkpoint: {type(err).__name__}: {str(err)[:160]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError("this file is a torch file but not a Drift Lab checkpoint")
    if data.get("version") != VERSION:
        raise CheckpointError(f"checkpoint version {data.get('version')} is not supported (expected {VERSION})")
    if data.get("kind") != kind:
        raise CheckpointError(f"this is a {data.get('kind')!r} checkpoint; expected a {kind!r} one")
    return data


def _unpickler_detail(err: Exception) -> str:
    """The one line of torch's weights-only refusal that says what was found (e.g. "Unsupported global:
    GLOBAL builtins.open"), without its advice to load the file unsafely."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        lines = [line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()]
        if lines:
            return lines[0].split(" was not an allowed global")[0][:160]
    return text.splitlines()[0][:160] if text else type(err).__name__


def _peek(source, n: int) -> bytes:
    """The first ``n`` bytes of a path or a seekable binary file, leaving the file where it was."""
    if hasattr(source, "read"):
        if not (hasattr(source, "seek") and hasattr(source, "tell")):
            return b""
        where = source.tell()
        head = source.read(n)
        source.seek(where)
        return head if isinstance(head, bytes) else b""
    with open(source, "rb") as fh:
        return fh.read(n)
