"""Self-describing checkpoints, loaded safely.

A checkpoint is a dict of tensors and plain values saved with ``torch.save``. Loading always uses
``weights_only=True``: a file that needs arbitrary unpickling (for example a pickle that would run
code) is refused, and nothing in it is executed. Every failure is a :class:`CheckpointError` whose
message says what is wrong.

A file that unpickles is not yet a usable checkpoint: :func:`check_weights` and
:func:`check_optimizer_state` compare its weights and optimiser state with the freshly built model and
optimiser they are about to be loaded into (names, shapes, dtypes, flags, finiteness), so that a
checkpoint accepted here also trains.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor, nn

from .files import atomic_write

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_bytes",
    "check_weights",
    "check_optimizer_state",
    "FORMAT",
]

FORMAT = "drift-lab-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that cannot be used as a Drift Lab checkpoint, with the reason."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, kind: str) -> Path:
    """Write ``state`` (tensors and plain values) atomically (:func:`drift_core.files.atomic_write`):
    a process killed mid-save never leaves a truncated checkpoint under ``path``."""
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        torch.save({"format": FORMAT, "version": VERSION, "kind": kind, **state}, fh)
    return path


def checkpoint_bytes(state: dict[str, Any], *, kind: str) -> bytes:
    """The bytes :func:`save_checkpoint` would write (for a download button); load them back with
    :func:`load_checkpoint`."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "kind": kind, **state}, buffer)
    return buffer.getvalue()


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO, *, kind: str) -> dict[str, Any]:
    """Load a checkpoint of the given kind ("toy2d" or "images") with ``weights_only=True``.

    Raises:
        CheckpointError: for every file that is not a readable Drift Lab checkpoint of this kind.
    """
    if isinstance(source, (bytearray, memoryview)):
        source = bytes(source)
    if isinstance(source, bytes):
        if not source:
            raise CheckpointError("the file is empty")
        source = io.BytesIO(source)
    elif not hasattr(source, "read"):
        try:
            p = Path(source)
        except TypeError:
            raise CheckpointError(f"expected a checkpoint file, bytes or a path, got {type(source).__name__}") from None
        if not p.is_file():
            raise CheckpointError(f"no such checkpoint file: {p}")
        try:
            if p.stat().st_size == 0:
                raise CheckpointError(f"{p} is empty")
        except OSError as err:
            raise CheckpointError(f"cannot read {p}: {err.strerror or err}") from None
    try:
        head = _peek(source, 4)
    except OSError as err:
        raise CheckpointError(f"cannot read the checkpoint: {err.strerror or err}") from None
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
        raise CheckpointError(f"checkpoint version {_short(data.get('version'))} is not supported (expected {VERSION})")
    if data.get("kind") != kind:
        raise CheckpointError(f"this is a {_short(data.get('kind'))} checkpoint; expected a {kind!r} one")
    return data


# ---- contents ------------------------------------------------------------------------------------
def check_weights(module: nn.Module, state: Any, what: str = "weights") -> None:
    """Refuse ``state`` unless ``module.load_state_dict(state)`` gives a module that trains: the same
    names and shapes as ``module``'s own state, real floating-point values (no complex, integer or
    boolean tensors where the module has floats), all finite; integer buffers keep their dtype.

    Raises:
        CheckpointError: naming the first problem (``what`` says which weights, e.g. "EMA weights").
    """
    if state is None:
        raise CheckpointError(f"the checkpoint has no {what}")
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint's {what} are not a dict of tensors")
    own = module.state_dict()
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if missing or unexpected:
        parts = ([f"missing {_names(missing)}"] if missing else []) + (
            [f"unexpected {_names(unexpected)}"] if unexpected else []
        )
        raise CheckpointError(f"the checkpoint's {what} do not fit the model: {'; '.join(parts)}")
    for name, mine in own.items():
        value = state[name]
        if isinstance(value, Tensor) and value.shape != mine.shape:
            raise CheckpointError(
                f"the checkpoint's {what} do not fit the model: {name!r} has shape {list(value.shape)}; "
                f"the model's is {list(mine.shape)}"
            )
        _check_tensor(value, mine.shape, mine.dtype, f"{what} {name!r}")


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: Any) -> dict:
    """``state`` checked against ``optimizer`` (freshly built for the same parameters), returned ready
    for ``optimizer.load_state_dict``.

    Checked: the parameter groups and their parameter indices; every flag (``amsgrad``,
    ``capturable``, ``fused``, ``differentiable``, ``maximize``, ``foreach``, ...) equals this optimiser's
    (a flag the file lacks takes this optimiser's value); numeric settings are finite and >= 0 (betas
    in [0, 1)); each parameter's state has exactly the entries one step of this optimiser creates
    (e.g. Adam: ``step``, ``exp_avg``, ``exp_avg_sq``, plus ``max_exp_avg_sq`` with amsgrad), with the
    parameter's shape and a real floating dtype, finite, second moments (``*_sq``) >= 0 and
    scalars (``step``) >= 0. A parameter without state (not yet stepped) is fine.

    Raises:
        CheckpointError: naming the first problem.
    """
    if state is None:
        raise CheckpointError("the checkpoint has no optimiser state")
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("param_groups"), list)
        or not isinstance(state.get("state"), dict)
    ):
        raise CheckpointError("the checkpoint's optimiser state is not an optimiser state dict")
    own_groups = optimizer.state_dict()["param_groups"]
    groups = state["param_groups"]
    if len(groups) != len(own_groups):
        raise CheckpointError(
            f"the checkpoint's optimiser has {len(groups)} parameter group(s); this one has {len(own_groups)}"
        )
    checked_groups = []
    for n, (saved, own) in enumerate(zip(groups, own_groups)):
        if not isinstance(saved, dict):
            raise CheckpointError(f"the checkpoint's optimiser group {n} is not a dict")
        checked_groups.append(_checked_group(saved, own, n))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    expected = _state_layout(optimizer)
    checked_state = {}
    for index, entry in state["state"].items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(params):
            raise CheckpointError(
                f"the checkpoint's optimiser state names parameter {_short(index)}, which this model lacks"
            )
        if not isinstance(entry, dict):
            raise CheckpointError(f"the checkpoint's optimiser state of parameter {index} is not a dict")
        param = params[index]
        keys, wanted = set(entry), set(expected)
        if keys != wanted:
            parts = ([f"missing {_names(sorted(wanted - keys))}"] if wanted - keys else []) + (
                [f"unexpected {_names(sorted(keys - wanted, key=str))}"] if keys - wanted else []
            )
            raise CheckpointError(
                f"the checkpoint's optimiser state of parameter {index} does not fit this optimiser: {'; '.join(parts)}"
            )
        for key, (param_shaped, scalar_dtype) in expected.items():
            shape, dtype = (param.shape, param.dtype) if param_shaped else (torch.Size([]), scalar_dtype)
            value = entry[key]
            _check_tensor(value, shape, dtype, f"optimiser state {key!r} of parameter {index}")
            if (key.endswith("_sq") or not param_shaped) and bool((value < 0).any()):
                raise CheckpointError(f"the checkpoint's optimiser state {key!r} of parameter {index} is negative")
        checked_state[index] = entry
    return {"state": checked_state, "param_groups": checked_groups}


def _checked_group(saved: dict, own: dict, n: int) -> dict:
    """One parameter group of a saved optimiser state, checked against this optimiser's (see
    :func:`check_optimizer_state`), with any flag it lacks filled in from ``own``."""
    if saved.get("params") != own["params"]:
        raise CheckpointError(f"the checkpoint's optimiser group {n} holds other parameters than this model's")
    unknown = [k for k in saved if k not in own]
    if unknown:
        raise CheckpointError(
            f"the checkpoint's optimiser has settings this optimiser does not know: {_names(unknown)}"
        )
    out = {}
    for key, mine in own.items():
        if key == "params":
            out[key] = list(mine)
            continue
        if key not in saved:
            if mine is None or isinstance(mine, bool):
                out[key] = mine
                continue
            raise CheckpointError(f"the checkpoint's optimiser lacks its setting {key!r}")
        value = saved[key]
        if mine is None or isinstance(mine, bool):
            if value is not mine:  # True, False and None are singletons
                raise CheckpointError(
                    f"the checkpoint's optimiser has {key}={_short(value)}; this trainer needs "
                    f"{key}={mine} (a checkpoint with it would fail or train differently)"
                )
        elif isinstance(mine, (int, float)):
            if not _is_real(value) or value < 0:
                raise CheckpointError(
                    f"the checkpoint's optimiser setting {key}={_short(value)} is not a finite number >= 0"
                )
        elif isinstance(mine, (tuple, list)):
            if (
                not isinstance(value, (tuple, list))
                or len(value) != len(mine)
                or not all(_is_real(v) and 0 <= v < (1 if key == "betas" else math.inf) for v in value)
            ):
                bound = " in [0, 1)" if key == "betas" else " >= 0"
                raise CheckpointError(
                    f"the checkpoint's optimiser setting {key}={_short(value)} is not {len(mine)} finite numbers{bound}"
                )
        elif value != mine:
            raise CheckpointError(
                f"the checkpoint's optimiser has {key}={_short(value)}; this trainer needs {_short(mine)}"
            )
        out[key] = value
    return out


def _state_layout(optimizer: torch.optim.Optimizer) -> dict[str, tuple[bool, torch.dtype]]:
    """{state key: (has the parameter's shape, dtype when it does not)} of one step of ``optimizer``:
    found by stepping a twin (same class and settings) on stand-in parameters of shape [7] with zero
    gradients, so the layout is whatever this torch version's optimiser creates."""
    stand_in_shape = (7,)
    groups = []
    for group in optimizer.param_groups:
        stand_ins = [torch.zeros(stand_in_shape, dtype=p.dtype, requires_grad=True) for p in group["params"]]
        for s in stand_ins:
            s.grad = torch.zeros_like(s)
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": stand_ins})
    twin = type(optimizer)(groups)
    twin.step()
    layout: dict[str, tuple[bool, torch.dtype]] = {}
    for entry in twin.state.values():
        for key, value in entry.items():
            param_shaped = isinstance(value, Tensor) and tuple(value.shape) == stand_in_shape
            layout[key] = (param_shaped, value.dtype if isinstance(value, Tensor) else torch.float32)
        break
    return layout


def _check_tensor(value: Any, shape: torch.Size, dtype: torch.dtype, what: str) -> None:
    """A tensor of ``shape``: real floating and finite where ``dtype`` is floating, else exactly ``dtype``."""
    if not isinstance(value, Tensor):
        raise CheckpointError(f"the checkpoint's {what} is not a tensor ({type(value).__name__})")
    if value.is_complex() or (dtype.is_floating_point and not value.is_floating_point()):
        raise CheckpointError(
            f"the checkpoint's {what} has dtype {value.dtype}; only real floating-point values are accepted"
        )
    if not dtype.is_floating_point and value.dtype != dtype:
        raise CheckpointError(f"the checkpoint's {what} has dtype {value.dtype}; expected {dtype}")
    if value.shape != shape:
        raise CheckpointError(
            f"the checkpoint's {what} does not fit the model: shape {list(value.shape)}, expected {list(shape)}"
        )
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise CheckpointError(f"the checkpoint's {what} contains NaN or infinite values")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _names(keys: list) -> str:
    shown = ", ".join(_short(k) for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a message never carries a file's huge value)."""
    text = repr(value) if not isinstance(value, Tensor) else f"tensor of shape {list(value.shape)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
