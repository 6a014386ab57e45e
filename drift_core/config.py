"""Frozen configuration dataclasses, named presets, operator limits and flat (URL / CLI) round-trips.

One vocabulary everywhere: every leaf field has a unique name, and that name is also the Streamlit
widget key, the URL query parameter and the CLI flag (``--batch-size`` for ``batch_size``).
Changing a *live* field applies to a running trainer; changing any other field needs a reset
(see :data:`LIVE_FIELDS`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .drift import KERNELS
from .lookahead import NEGATIVES, SCALINGS, WEIGHTINGS

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "DriftConfig",
    "TrainConfig",
    "ExperimentConfig",
    "PRESETS",
    "preset",
    "LIVE_FIELDS",
    "RESET_FIELDS",
    "START_SCENARIOS",
    "METHODS",
    "MODES",
    "flat_field_names",
    "field_section",
    "SectionedConfig",
    "model_parameter_count",
    "INT_RANGES",
    "MAX_SEED",
    "MAX_STEPS",
    "MAX_JSON_CHARS",
    "int_range_problems",
]

METHODS = ("baseline", "lookahead")
MODES = ("network", "particles")
"""What a 2D run trains: the generator network, or its initial outputs moved directly by the field
(:mod:`drift_core.particles`)."""
MAX_JSON_CHARS = 1_000_000  # a config's JSON is ~1 kB; anything this large is not one
START_SCENARIOS = ("default", "between", "far", "collapsed")
DEVICES = ("auto", "cpu", "cuda", "mps")


MAX_SEED = 2**31 - 1
"""Largest seed (2D and images): far more seeds than anyone runs, and every seed-derived number stays
a machine integer in torch."""
MAX_STEPS = 2**31 - 1
"""Largest step budget or step count (2D and images); step counters reach torch's generators."""
INT_RANGES: dict[str, tuple[int, int]] = {
    "noise_dim": (1, 65_536),
    "width": (1, 65_536),
    "depth": (1, 256),
    "batch_size": (2, 2**24),
    "steps": (0, MAX_STEPS),
    "seed": (0, MAX_SEED),
    "dimension": (2, 64),
}
"""The integers a 2D experiment can have at all (a server narrows them with
:class:`drift_core.limits.Limits`): beyond these a tensor size or seed overflows torch's integers, or a
generator of that depth could not even be built. K has its own range (:meth:`DriftConfig.problems`)."""


class ConfigError(ValueError):
    """A configuration that cannot work, with the reason."""


def int_range_problems(section: Any, ranges: Mapping[str, tuple[int, int]]) -> list[str]:
    """ "NAME must be between LO and HI" for each field of the dataclass ``section`` named in ``ranges``
    whose value lies outside its range."""
    problems = []
    for f in fields(section):
        if f.name in ranges:
            lo, hi = ranges[f.name]
            if not lo <= getattr(section, f.name) <= hi:
                problems.append(f"{f.name} must be between {lo:,} and {hi:,}")
    return problems


def setting(default: Any, meaning: str) -> Any:
    """A config field: its default and its meaning, the one text that the CLI's help (``--tau``) and the
    app's tooltips show for it (:meth:`SectionedConfig.meanings`)."""
    return field(default=default, metadata={"meaning": meaning})


@dataclass(frozen=True)
class DataConfig:
    dataset: str = setting(
        "checkerboard", "the 2D data: a mixture of drift_core.data.toy2d, or custom (uploaded points, --points)"
    )
    dimension: int = setting(
        2,
        "D: the 2D data rotated into D dimensions with a little noise in the extra ones; training happens in D, "
        "the pictures show the data's plane (2: no embedding). Watch the kernel weights flatten as D grows",
    )
    embedding_noise: float = setting(0.05, "std of the noise in the D − 2 extra coordinates (data units)")


@dataclass(frozen=True)
class ModelConfig:
    noise_dim: int = setting(32, "the generator's input noise dimension")
    width: int = setting(256, "hidden units per layer of the generator MLP (the paper's toy MLP)")
    depth: int = setting(3, "hidden layers of the generator MLP (SiLU after each)")
    init: str = setting(
        "default",
        "where the generator's outputs start: default (the network's init), between (the modes), far (away) or "
        "collapsed (onto one mode); the paper's three start cases use the bimodal data",
    )


@dataclass(frozen=True)
class DriftConfig:
    K: int = setting(
        0,
        "lookahead terms after the base term, each on the points moved by the ones before it; K = 0 is the baseline",
    )
    tau: float = setting(
        0.05,
        "kernel temperature τ in data units: kernel exp(−‖x−y‖/τ), the distance at which points still see each other",
    )
    multi_temperature: bool = setting(
        False, "use τ × {0.4, 1, 4} (= {0.02, 0.05, 0.2} at τ = 0.05), each temperature's field RMS-normalised"
    )
    alpha: float = setting(
        1.0, "α, the step between lookahead terms: z^(k+1) = z^k + α·V_k, how far the set moves before the next term"
    )
    scaling: str = setting(
        "none",
        "how each lookahead term is rescaled before the sum: none; unit_rms (each term to RMS 1); relative (each "
        "term to the base term's RMS)",
    )
    weighting: str = setting(
        "uniform",
        "weights w_k of the terms in the training target x + Σ w_k V_k: uniform (1, 1, ...), heun (½, ½), "
        "geometric (γ^k), extrapolation (−λ, 1+λ)",
    )
    gamma: float = setting(0.5, "γ, the ratio of the geometric weights")
    lam: float = setting(0.5, "λ, the strength of the extrapolation weights")
    negatives: str = setting(
        "moved",
        "what the later terms are repelled from: the moved set z^k (moved, reconstruction A) or the original "
        "outputs (fixed, B)",
    )
    normalize_distance: bool = setting(
        False, "measure distances in units of the batch's mean distance, as the official code does"
    )
    attraction_only: bool = setting(
        False, "V = V⁺: no repulsion from the other generated points (an ablation: why repulsion matters)"
    )
    kernel: str = setting(
        "laplace",
        "laplace exp(−d/τ) (the paper's eq. 12) or gaussian exp(−d²/2τ²), whose tail vanishes far from the data "
        "(at τ = 0.05 a point 0.8 away gets e^−128), so distant particles stop moving",
    )
    affinity_floor: float = setting(
        0.0,
        "the official code's floor under the normalised kernel, √max(row·col, floor): 0 none (the paper), 1e-6 "
        "the official code; at large batches it swamps the toy's tiny weights and the field stalls",
    )

    @property
    def method(self) -> str:
        """ "baseline" (K = 0) or "lookahead" (K >= 1): a name for K, not a setting of its own."""
        return "baseline" if self.K == 0 else "lookahead"

    @property
    def temperatures(self) -> tuple[float, ...]:
        return (self.tau * 0.4, self.tau, self.tau * 4.0) if self.multi_temperature else (self.tau,)

    def label(self) -> str:
        if self.attraction_only:
            return "attraction only"
        return "baseline" if self.K == 0 else f"lookahead K={self.K}"

    def problems(self, max_k: int) -> list[str]:
        """What is wrong with these drift settings (empty when valid), for K up to ``max_k`` (the 2D and
        image experiments allow different K)."""
        problems = []
        if not 0 <= self.K <= max_k:
            problems.append(f"K must be between 0 and {max_k}")
        for name in ("tau", "alpha", "gamma", "lam", "affinity_floor"):
            if not math.isfinite(getattr(self, name)):
                problems.append(f"{name} must be finite")
        if not self.tau > 0:
            problems.append("tau must be positive")
        if self.kernel not in KERNELS:
            problems.append(f"kernel must be one of {KERNELS}")
        if not 0.0 <= self.affinity_floor < 1.0:
            problems.append("affinity_floor must be at least 0 and below 1")
        if self.scaling not in SCALINGS:
            problems.append(f"scaling must be one of {SCALINGS}")
        if self.weighting not in WEIGHTINGS:
            problems.append(f"weighting must be one of {WEIGHTINGS}")
        if self.negatives not in NEGATIVES:
            problems.append(f"negatives must be one of {NEGATIVES}")
        return problems


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = setting(512, "generated samples per step (N); also the number of data samples")
    lr: float = setting(1e-3, "Adam learning rate")
    steps: int = setting(2000, "step budget: training pauses (the app) or ends (the CLI) after this many steps")
    seed: int = setting(0, "seeds the model's initial weights, its noise and the data batches (named streams)")
    device: str = setting("auto", "auto | cpu | cuda | mps")
    mode: str = setting(
        "network",
        "network: the one-step generator is trained on the drift (the model); particles: its initial outputs moved "
        "directly by the field, z ← z + η·V, no network (the flow the network is trained to follow)",
    )
    particle_step: float = setting(
        1.0, "η of particle mode, z ← z + η·V (1: the paper's x ← x + V); unused by the network"
    )


class SectionedConfig:
    """Flat-field machinery shared by the experiment configs (2D and images): a frozen dataclass whose
    fields are section dataclasses with unique leaf names. Leaf names are the widget keys, URL
    parameters and CLI ``--set`` names; subclasses provide ``validate()``."""

    def to_flat(self) -> dict[str, Any]:
        """{field name: value} over all sections (names are unique)."""
        out: dict[str, Any] = {}
        for section in fields(self):
            out.update(dataclasses.asdict(getattr(self, section.name)))
        return out

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def meanings(cls) -> dict[str, str]:
        """{leaf field name: what it means}, in declaration order (the fields' :func:`setting` texts)."""
        return {name: meaning for name, (_, _, meaning) in _leaf_fields(cls).items()}

    @classmethod
    def field_types(cls) -> dict[str, str]:
        """{leaf field name: its type's name ("int", "float", "str", "bool")}, in declaration order."""
        return {name: type_name for name, (_, type_name, _) in _leaf_fields(cls).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """From the nested form of :meth:`to_dict` or the flat form of :meth:`to_flat`. Unknown keys
        raise; values are type-checked and validated (ConfigError)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a mapping of settings, got {type(data).__name__}")
        sections = {f.name for f in fields(cls)}
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections and isinstance(value, Mapping):
                flat.update(value)
            else:
                flat[key] = value
        return cls().with_values(flat)

    @classmethod
    def from_json(cls, text: str | bytes):
        """From JSON text (or UTF-8 bytes) as :meth:`to_json` writes it; any problem is a ConfigError."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise ConfigError(f"config JSON must be text, got {type(text).__name__}")
        if len(text) > MAX_JSON_CHARS:
            raise ConfigError(f"config JSON too large: {len(text):,} characters (a config is under {MAX_JSON_CHARS:,})")
        try:
            if isinstance(text, (bytes, bytearray)):
                text = bytes(text).decode("utf-8-sig")
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"not valid JSON: {err}") from None
        except UnicodeDecodeError:
            raise ConfigError("not valid JSON: the file is not UTF-8 text") from None
        except (ValueError, RecursionError, TypeError) as err:  # e.g. an integer of 5000 digits, nesting 10^5 deep
            raise ConfigError(f"not valid JSON: {_clip(str(err) or type(err).__name__)}") from None
        if not isinstance(data, Mapping):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(data)

    def with_values(self, values: Mapping[str, Any]):
        """Replace flat fields by name, with type coercion; raises ConfigError on any bad value.

        ``method`` is accepted as another way to say K (links, configs and checkpoints written before
        K alone said it): "baseline" sets K = 0; "lookahead" keeps a K given with it, else K >= 1."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"settings must be a mapping of names to values, got {type(values).__name__}")
        leaves = _leaf_fields(type(self))
        values = _method_as_k(values, self.drift.K)
        updates: dict[str, dict[str, Any]] = {}
        for name, raw in values.items():
            if name not in leaves:
                raise ConfigError(f"unknown setting {_clip(repr(name))}; known: {', '.join(leaves)}")
            section, type_name, _ = leaves[name]
            updates.setdefault(section, {})[name] = _coerce(name, type_name, raw)
        cfg = replace(self, **{s: replace(getattr(self, s), **u) for s, u in updates.items()})
        cfg.validate()
        return cfg

    def validate(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


def _method_as_k(values: Mapping[str, Any], current_k: int) -> Mapping[str, Any]:
    """``values`` with a ``method`` entry turned into the K it means (see ``with_values``)."""
    if "method" not in values:
        return values
    values = dict(values)
    method = str(values.pop("method")).strip().lower()
    if method not in METHODS:
        raise ConfigError(
            f"method must be one of {', '.join(METHODS)} (K = 0 is the baseline), got {_clip(repr(method))}"
        )
    if method == "baseline":
        values["K"] = 0
    elif "K" not in values:
        values["K"] = max(1, current_k)
    return values


@functools.cache
def _leaf_fields(config_class: type) -> dict[str, tuple[str, str, str]]:
    """{leaf name: (section name, type name, meaning)} of a SectionedConfig class."""
    default = config_class()
    return {
        leaf.name: (section.name, leaf.type, leaf.metadata.get("meaning", ""))
        for section in fields(config_class)
        for leaf in fields(getattr(default, section.name))
    }


@dataclass(frozen=True)
class ExperimentConfig(SectionedConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ---- flat views: to_flat / to_dict / to_json / from_dict / from_json / with_values (SectionedConfig)
    def to_query(self) -> dict[str, str]:
        """The fields that differ from the defaults, as strings (for a shareable URL)."""
        default = ExperimentConfig().to_flat()
        return {k: _to_text(v) for k, v in self.to_flat().items() if default[k] != v}

    # ---- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        from .data.toy2d import dataset_names

        problems = []
        d, m, r, t = self.data, self.model, self.drift, self.train
        if d.dataset not in dataset_names():
            problems.append(f"dataset must be one of {', '.join(dataset_names())}, got {_clip(repr(d.dataset))}")
        problems += int_range_problems(m, INT_RANGES)
        problems += int_range_problems(d, INT_RANGES)
        if not (0.0 <= d.embedding_noise <= 1.0):
            problems.append("embedding_noise must be between 0 and 1")
        if m.init not in START_SCENARIOS:
            problems.append(f"init must be one of {START_SCENARIOS}")
        problems += r.problems(max_k=64)
        problems += int_range_problems(t, INT_RANGES)
        if not (t.lr > 0 and math.isfinite(t.lr)):
            problems.append("lr must be a positive number")
        if t.device not in DEVICES:
            problems.append(f"device must be one of {DEVICES}")
        if t.mode not in MODES:
            problems.append(f"mode must be one of {MODES}")
        if not (t.particle_step > 0 and math.isfinite(t.particle_step)):
            problems.append("particle_step must be a positive number")
        if problems:
            raise ConfigError("; ".join(problems))


_SECTION_CLASSES = {"data": DataConfig, "model": ModelConfig, "drift": DriftConfig, "train": TrainConfig}
_FIELD_SECTION = {f.name: s for s, c in _SECTION_CLASSES.items() for f in fields(c)}
_FIELD_TYPES = {f.name: f.type for c in _SECTION_CLASSES.values() for f in fields(c)}

LIVE_FIELDS = frozenset({f.name for f in fields(DriftConfig)} | {"batch_size", "lr", "steps", "particle_step"})
"""Fields a running trainer picks up without a reset (drift settings, batch size, learning rate, particle step)."""
RESET_FIELDS = frozenset(_FIELD_SECTION) - LIVE_FIELDS
"""Fields whose change rebuilds the trainer (dataset, dimension, architecture, start scenario, seed,
device, mode)."""


def flat_field_names() -> tuple[str, ...]:
    return tuple(_FIELD_SECTION)


def field_section(name: str) -> str:
    return _FIELD_SECTION[name]


def _coerce(name: str, type_name: str, raw: Any) -> Any:
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if type_name == "int":
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError
                return int(raw)
            return int(str(raw).strip())
        if type_name == "float":
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {_clip(repr(raw))}")
            return value
        if not isinstance(raw, str):
            raise ValueError
        return raw.strip()
    except (TypeError, ValueError, OverflowError) as err:
        if isinstance(err, ConfigError):
            raise
        kind = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a text"}.get(
            type_name, type_name
        )
        raise ConfigError(f"{name} must be {kind}, got {_clip(repr(raw))}") from None


def _clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, so a message never carries a huge value back to the user."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def model_parameter_count(model: ModelConfig, out_dim: int = 2) -> int:
    """Parameters of the MLP generator described by ``model`` (noise_dim -> width x depth -> out_dim, the
    data's dimension D), computed from the config without building it."""
    w = model.width
    return (model.noise_dim * w + w) + (model.depth - 1) * (w * w + w) + (w * out_dim + out_dim)


# ---- presets ---------------------------------------------------------------------------------
_PAPER_MODEL = ModelConfig(noise_dim=32, width=256, depth=3)
_PAPER_TRAIN = TrainConfig(batch_size=2048, lr=1e-3, steps=2000, seed=42)

PRESETS: dict[str, ExperimentConfig] = {
    "playground": ExperimentConfig(),
    "paper_toy_swissroll": ExperimentConfig(DataConfig("swissroll"), _PAPER_MODEL, DriftConfig(tau=0.05), _PAPER_TRAIN),
    "paper_toy_checkerboard": ExperimentConfig(
        DataConfig("checkerboard"), _PAPER_MODEL, DriftConfig(tau=0.05), _PAPER_TRAIN
    ),
    "bimodal_between": ExperimentConfig(
        DataConfig("bimodal"), ModelConfig(init="between"), DriftConfig(tau=0.1), TrainConfig(steps=300)
    ),
    # Far away, raw distances at tau = 0.1 give the data a kernel weight of about e^-40: nothing moves.
    # Distance normalisation (the official code's) makes tau relative to the batch's mean distance.
    "bimodal_far": ExperimentConfig(
        DataConfig("bimodal"),
        ModelConfig(init="far"),
        DriftConfig(tau=0.1, normalize_distance=True),
        TrainConfig(steps=300),
    ),
    "bimodal_collapsed": ExperimentConfig(
        DataConfig("bimodal"), ModelConfig(init="collapsed"), DriftConfig(tau=0.1), TrainConfig(steps=300)
    ),
}
"""Named experiments. ``paper_toy_*`` are the official notebook's protocol (N=2048, tau=0.05, Adam 1e-3,
MLP 32->256x3->2, 2000 steps); ``bimodal_*`` are the paper's three start cases (Fig. 3)."""


def preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
