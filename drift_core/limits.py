"""Server policy around the experiment config: the limits an operator sets (``DRIFT_MAX_*``), and the
lenient reading of a shared link's query string into a config within them. The config itself
(:mod:`drift_core.config`) only knows what a valid experiment is."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .config import _FIELD_SECTION, _FIELD_TYPES, ConfigError, ExperimentConfig, _method_as_k, model_parameter_count
from .runtime import select_device

__all__ = ["Limits", "config_from_query"]


def config_from_query(
    start: ExperimentConfig, params: Mapping[str, str], limits: Limits | None = None
) -> tuple[ExperimentConfig, list[str]]:
    """Apply URL query parameters leniently: unknown keys are ignored, bad values keep the
    current value and out-of-range ones are clamped; each such case adds a notice (quoting at most
    60 characters of the value). A device this server lacks keeps the current one. Never raises on
    any text in ``params``."""
    limits = limits or Limits.from_env()
    cfg, notices = start, []
    params = dict(params)
    method = params.pop("method", None)
    if method is not None:  # an older link's way to say K
        given = {"method": method, **({"K": params["K"]} if "K" in params else {})}
        try:
            params["K"] = str(_method_as_k(given, start.drift.K)["K"])
        except ConfigError as err:
            notices.append(f"ignored method={_show(method)}: {err}")
    for name, raw in params.items():
        if name not in _FIELD_SECTION:
            continue
        try:
            candidate = cfg.with_values({name: raw})
        except ConfigError as err:
            clamped = _clamp(name, raw, limits)
            if clamped is not None:
                try:
                    candidate = cfg.with_values({name: clamped})
                    notices.append(f"{name}={_show(raw)} is out of range; using {clamped}")
                    cfg = candidate
                    continue
                except ConfigError:
                    pass
            notices.append(f"ignored {name}={_show(raw)}: {err}")
            continue
        clamped = _clamp(name, raw, limits)
        if clamped is not None and clamped != candidate.to_flat()[name]:
            # valid, but outside the range a shared link may ask for (e.g. lr=1e9)
            candidate = cfg.with_values({name: clamped})
            notices.append(f"{name}={_show(raw)} is out of range; using {clamped}")
        if name == "device" and candidate.train.device != cfg.train.device:
            try:
                select_device(candidate.train.device)
            except ValueError as err:
                notices.append(f"ignored device={_show(raw)}: {str(err).split(';')[0]}")  # without the CLI's advice
                continue
        cfg = candidate
    return _fit_limits(cfg, start, params, limits, notices)


def _show(raw: Any, limit: int = 60) -> str:
    """``repr(raw)`` cut to ``limit`` characters: a notice never carries a link's huge value."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


_RANGES = {
    "K": (0, 8),
    "tau": (1e-3, 10.0),
    "batch_size": (2, 65536),
    "lr": (1e-6, 1.0),
    "alpha": (0.0, 10.0),
    "gamma": (0.0, 1.0),
    "lam": (0.0, 5.0),
    "width": (1, 4096),
    "depth": (1, 16),
    "noise_dim": (1, 1024),
    "steps": (0, 10_000_000),
    "seed": (0, 2**31 - 1),
    "dimension": (2, 64),
    "embedding_noise": (0.0, 1.0),
    "affinity_floor": (0.0, 1e-2),
    "particle_step": (1e-4, 100.0),
}


def _fit_limits(
    cfg: ExperimentConfig, start: ExperimentConfig, params: Mapping[str, Any], limits: Limits, notices: list[str]
) -> tuple[ExperimentConfig, list[str]]:
    """``cfg`` brought within the server's limits (a link's values and defaults alike): batch size and K
    are clamped; a generator too large for ``max_model_params`` first drops the link's width/depth, then
    halves its width until it fits. Each change adds a notice."""
    if cfg.train.batch_size > limits.max_batch:
        notices.append(f"batch size {cfg.train.batch_size} is above this server's limit; using {limits.max_batch}")
        cfg = cfg.with_values({"batch_size": limits.max_batch})
    if cfg.drift.K > limits.max_k:
        notices.append(f"K = {cfg.drift.K} is above this server's limit; using {limits.max_k}")
        cfg = cfg.with_values({"K": limits.max_k})

    def halve_width(cfg):
        while model_parameter_count(cfg.model, cfg.data.dimension) > limits.max_model_params and cfg.model.width > 1:
            smaller = cfg.with_values({"width": cfg.model.width // 2})
            notices.append(
                f"width {cfg.model.width} is too large for this server's limit of "
                f"{limits.max_model_params:,} parameters; using {smaller.model.width}"
            )
            cfg = smaller
        return cfg

    if "width" not in params:  # the link did not choose the width: shrink it, keep what the link asked for
        cfg = halve_width(cfg)
    for name in ("width", "depth", "noise_dim"):
        if model_parameter_count(cfg.model, cfg.data.dimension) > limits.max_model_params and name in params:
            params_there = model_parameter_count(cfg.model, cfg.data.dimension)
            cfg = cfg.with_values({name: getattr(start.model, name)})
            notices.append(
                f"ignored {name}={_show(params[name])}: the generator would have {params_there:,} parameters, "
                f"above this server's limit of {limits.max_model_params:,}"
            )
    return halve_width(cfg), notices


def _clamp(name: str, raw: Any, limits: Limits) -> Any | None:
    """A clamped value for an out-of-range number, or None when the value is not a number."""
    if name not in _RANGES:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    lo, hi = _RANGES[name]
    if name == "K":
        hi = min(hi, limits.max_k)
    if name == "batch_size":
        hi = min(hi, limits.max_batch)
    value = min(max(value, lo), hi)
    return int(round(value)) if _FIELD_TYPES[name] == "int" else value


_LIMIT_MINIMUM = {"max_batch": 2}  # a batch needs two samples; every other limit is at least 1


@dataclass(frozen=True)
class Limits:
    """Server-side limits an operator sets through environment variables (see README)."""

    max_batch: int = 4096  # DRIFT_MAX_BATCH
    max_k: int = 8  # DRIFT_MAX_K
    max_steps_per_frame: int = 50  # DRIFT_MAX_STEPS_PER_FRAME
    max_sessions: int = 32  # DRIFT_MAX_SESSIONS: trainers kept alive at once on one server
    max_upload_points: int = 200_000  # DRIFT_MAX_UPLOAD_POINTS
    max_model_params: int = 4_000_000  # DRIFT_MAX_MODEL_PARAMS: generator size (width/depth) one session may train
    session_idle_s: int = 30  # DRIFT_SESSION_IDLE_S: a live session idle this long may be evicted for a new one

    def __post_init__(self):
        for f in fields(self):
            if getattr(self, f.name) < _LIMIT_MINIMUM.get(f.name, 1):
                raise ConfigError(f"{f.name} must be at least {_LIMIT_MINIMUM.get(f.name, 1)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The limits set by ``DRIFT_*`` variables (the defaults for the others); a value below a
        limit's minimum (1, or 2 for the batch size) is raised to it."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            key = "DRIFT_" + f.name.upper()
            if key in environ:
                try:
                    values[f.name] = max(_LIMIT_MINIMUM.get(f.name, 1), int(environ[key]))
                except ValueError:
                    raise ConfigError(
                        f"environment variable {key} must be a positive integer, got {_show(environ[key])}"
                    ) from None
        return cls(**values)

    def check(self, config: ExperimentConfig) -> None:
        """Refuse configurations beyond this server's limits, with the reason."""
        problems = []
        if config.train.batch_size > self.max_batch:
            problems.append(f"batch size {config.train.batch_size} is above this server's limit of {self.max_batch}")
        if config.drift.K > self.max_k:
            problems.append(f"K = {config.drift.K} is above this server's limit of {self.max_k}")
        params = model_parameter_count(config.model, config.data.dimension)
        if params > self.max_model_params:
            problems.append(
                f"a generator of width {config.model.width} and depth {config.model.depth} has {params:,} "
                f"parameters, above this server's limit of {self.max_model_params:,}"
            )
        if problems:
            raise ConfigError("; ".join(problems))

    def steps_per_frame(self, requested: int) -> tuple[int, str]:
        """``requested`` training steps per animation frame, clamped to [1, max_steps_per_frame];
        returns (steps, notice) where the notice is "" when nothing was clamped. A value that is not a
        finite number (NaN, text) gives 1 step."""
        try:
            whole = int(requested)
        except (TypeError, ValueError, OverflowError):
            return 1, f"{_show(requested)} is not a number of steps per frame; using 1"
        steps = min(max(1, whole), self.max_steps_per_frame)
        if steps != requested:
            return steps, (
                f"{requested} steps per frame is outside this server's range 1..{self.max_steps_per_frame}; "
                f"using {steps}"
            )
        return steps, ""
