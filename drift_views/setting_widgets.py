"""What each setting's widget offers, without Streamlit: for every config field a sidebar draws, the
kind of widget, its label, the values or bounds it offers and how a value is shown. ``ui`` draws them
(:func:`ui.controls.setting`) and binds each to its field (the widget's key is the field's name).

One rule for every widget, tested without a browser: the widget shows the session's value, whatever it
is (a value from a link or a checkpoint may lie between the steps or beyond the range, so it is added to
the choices, or the range widens to it), and otherwise offers no more than the server's :class:`Limits`
allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from drift_core.config import MODES, ExperimentConfig, SectionedConfig
from drift_core.data.toy2d import SAMPLERS
from drift_core.drift import KERNELS
from drift_core.images.config import ImageExperimentConfig
from drift_core.images.data import DATASET_LABELS, DATASETS
from drift_core.images.features import resnet18_weights_path
from drift_core.limits import Limits
from drift_core.lookahead import NEGATIVES, SCALINGS, WEIGHTINGS

from .display import (
    DIMENSION_OPTIONS,
    FLOOR_OPTIONS,
    KERNEL_LABELS,
    LR_OPTIONS,
    MODE_LABELS,
    START_LABELS,
    STEP_OPTIONS,
    TAU_OPTIONS,
    WIDTH_OPTIONS,
    batch_options,
)
from .images import NOISE_DIMS

__all__ = ["SettingWidget", "TOY_WIDGETS", "LOOKAHEAD_ARM_K", "IMAGE_WIDGETS", "fork_widgets", "image_encoders"]

CHOICE_KINDS = ("select_slider", "selectbox", "segmented_control")
"""Widgets that offer a list of values (the others offer a range or on/off)."""

Bound = float | Callable[[Limits], float]
Choices = Sequence[Any] | Callable[[Limits], Sequence[Any]]


def _g(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class SettingWidget:
    """The widget of config field ``field``: a Streamlit widget ``kind`` ("select_slider", "selectbox",
    "segmented_control", "slider", "number_input" or "toggle") with ``label``, offering ``choices`` (a
    choice widget) or the range ``low``..``high`` in steps of ``step`` (a slider or number input);
    either may depend on the server's limits. ``labels`` says how a choice is shown (a mapping, or a
    function of the value); ``help`` replaces the field's meaning as the tooltip. A range widens to
    take a value outside it (a link's α = 10 is shown as 10, not as the slider's end), unless the
    widget ``clamps``: then such a value is shown at the nearest end (Compare's lookahead K is at
    least 1 whatever the session's K)."""

    field: str
    label: str
    kind: str = "select_slider"
    choices: Choices = ()
    low: Bound | None = None
    high: Bound | None = None
    step: float | None = None
    labels: Mapping[Any, str] | Callable[[Any], str] | None = None
    help: str | None = None
    clamps: bool = False

    def offer(self, value: Any, limits: Limits) -> tuple[dict[str, Any], Any]:
        """The widget's arguments (label; options and how they are shown, or bounds and step) and the
        value it shows: ``value`` itself (added to the choices when they lack it, the range widened to
        it), or for a widget that ``clamps``, the nearest value in range."""
        args: dict[str, Any] = {"label": self.label}
        if self.kind in CHOICE_KINDS:
            offered = list(self.choices(limits) if callable(self.choices) else self.choices)
            if value not in offered:
                numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in [*offered, value])
                offered = sorted([*offered, value]) if numeric else [*offered, value]
            args["options"] = offered
            if self.labels is not None:
                labels = self.labels
                args["format_func"] = labels if callable(labels) else lambda v: labels.get(v, str(v))
            return args, value
        if self.kind in ("slider", "number_input"):
            low, high = (bound(limits) if callable(bound) else bound for bound in (self.low, self.high))
            high = max(low, high)
            if not self.clamps:
                low, high = min(low, value), max(high, value)
            args.update(min_value=type(value)(low), max_value=type(value)(high))
            if self.step is not None:
                args["step"] = type(value)(self.step)
            return args, type(value)(min(max(value, low), high))
        return args, value


# ---- the 2D pages -----------------------------------------------------------------------------------------
def _top_k(limits: Limits) -> int:
    return min(8, limits.max_k)


def _by_field(config_type: type[SectionedConfig], *widgets: SettingWidget) -> dict[str, SettingWidget]:
    """{field: widget}, each widget's tooltip its own help or else the field's meaning (the text of the
    CLI's help)."""
    meanings = config_type.meanings()
    return {w.field: replace(w, help=w.help or meanings[w.field]) for w in widgets}


TOY_WIDGETS: dict[str, SettingWidget] = _by_field(
    ExperimentConfig,
    SettingWidget(
        "dataset",
        "Dataset",
        "selectbox",
        (*SAMPLERS, "custom"),
        labels={"custom": "your uploaded points"},
    ),
    SettingWidget("init", "Start", "selectbox", tuple(START_LABELS), labels=START_LABELS),
    SettingWidget("mode", "What moves the points", "segmented_control", MODES, labels=MODE_LABELS),
    SettingWidget("dimension", "Dimensions D", choices=DIMENSION_OPTIONS),
    SettingWidget("width", "Width", choices=WIDTH_OPTIONS),
    SettingWidget("depth", "Depth", choices=tuple(range(1, 7))),
    SettingWidget("seed", "Seed", "number_input", low=0, high=2**31 - 1, step=1),
    SettingWidget("K", "K (lookahead terms; 0 = baseline)", "slider", low=0, high=_top_k),
    SettingWidget("tau", "Temperature τ (log scale)", choices=TAU_OPTIONS, labels=_g),
    SettingWidget("multi_temperature", "Multi-temperature (τ × {0.4, 1, 4})", "toggle"),
    SettingWidget("batch_size", "Batch size N", choices=batch_options),
    SettingWidget("lr", "Learning rate (log scale)", choices=LR_OPTIONS, labels=_g),
    SettingWidget("steps", "Step budget", "number_input", low=0, high=1_000_000, step=100),
    SettingWidget("alpha", "α (step between lookahead terms)", "slider", low=0.0, high=3.0, step=0.1),
    SettingWidget("scaling", "Term scaling", "selectbox", SCALINGS),
    SettingWidget("weighting", "Term weighting", "selectbox", WEIGHTINGS),
    SettingWidget("negatives", "Lookahead negatives", "selectbox", NEGATIVES),
    SettingWidget("attraction_only", "Attraction only (ablation)", "toggle"),
    SettingWidget("normalize_distance", "Normalise distances", "toggle"),
    SettingWidget("kernel", "Kernel", "selectbox", KERNELS, labels=KERNEL_LABELS),
    SettingWidget(
        "affinity_floor", "Affinity floor", choices=FLOOR_OPTIONS, labels=lambda v: "off" if v == 0 else _g(v)
    ),
    SettingWidget("particle_step", "Particle step η", choices=STEP_OPTIONS, labels=_g),
)
"""The 2D pages' setting widgets, by field (the Playground, Compare and the Inspector)."""

LOOKAHEAD_ARM_K = SettingWidget(
    "K",
    "K of the lookahead arm",
    "slider",
    low=1,
    high=lambda limits: max(1, _top_k(limits)),
    clamps=True,
    help="lookahead terms after the base term; the baseline arm has K = 0",
)
"""Compare's K: the lookahead arm's, at least 1 (the baseline arm has K = 0)."""


def fork_widgets(compare: bool) -> tuple[SettingWidget, ...]:
    """The fork panel's K, τ and N: the sidebar's widgets under short labels (on Compare, K is the
    lookahead arm's)."""
    k = LOOKAHEAD_ARM_K if compare else TOY_WIDGETS["K"]
    return tuple(
        replace(widget, label=label)
        for widget, label in ((k, "K"), (TOY_WIDGETS["tau"], "τ"), (TOY_WIDGETS["batch_size"], "N"))
    )


# ---- the images page ----------------------------------------------------------------------------------------
ENCODER_LABELS = {
    "pixels": "pixels (no encoder)",
    "random-conv": "random conv net (offline)",
    "resnet18": "ResNet-18 ImageNet (if cached)",
}


def image_encoders(limits: Limits | None = None) -> list[str]:
    """The drift spaces this machine offers: ResNet-18 only where its weights are cached (nothing is
    downloaded while the page draws). ``limits`` is unused: it makes this a widget's ``choices``."""
    return ["pixels", "random-conv"] + (["resnet18"] if resnet18_weights_path().is_file() else [])


IMAGE_WIDGETS: dict[str, SettingWidget] = _by_field(
    ImageExperimentConfig,
    SettingWidget("dataset", "Image set", "selectbox", DATASETS, labels=lambda n: DATASET_LABELS[n].split(" - ")[0]),
    SettingWidget("generator", "Generator", "selectbox", tuple(NOISE_DIMS)),
    SettingWidget("encoder", "Drift space", "selectbox", image_encoders, labels=ENCODER_LABELS),
    SettingWidget("per_location", "Drift per location", "toggle"),
    SettingWidget("separate_mean_std", "Mean and std as two groups", "toggle"),
    SettingWidget("K", "Lookahead terms K", "slider", low=0, high=lambda limits: min(4, limits.max_k)),
    SettingWidget(
        "alpha",
        "Lookahead step α",
        choices=(0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
        help="z¹ = z⁰ + α V₀ between lookahead terms. In normalised feature space the terms are O(1) per "
        "coordinate, so α = 1 overshoots (benchmarks/RESULTS.md); 0.1 is the images' default",
    ),
    SettingWidget(
        "tau",
        "Temperature τ",
        choices=(0.02, 0.03, 0.05, 0.1, 0.2),
        help="used as τ × {0.4, 1, 4}, each RMS-normalised (the paper's {0.02, 0.05, 0.2} at 0.05)",
    ),
    SettingWidget("batch_size", "Batch (generated = real)", choices=(8, 16, 32, 64, 128, 256)),
    SettingWidget("lr", "Learning rate", choices=(2e-4, 5e-4, 1e-3, 2e-3)),
    SettingWidget("steps", "Step budget", "number_input", low=1, high=1_000_000),
)
"""The images page's setting widgets, by field."""
