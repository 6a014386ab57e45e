"""How runs are shown (not what is trained), without Streamlit: the display settings one browser session
shares between its pages, and their round trip through a shared link (:meth:`ViewSettings.from_query`,
:meth:`ViewSettings.to_query`), as :class:`drift_core.config.ExperimentConfig` has for the experiment;
and the values the settings' sliders offer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from drift_core.limits import Limits

from .figures import LAYERS as LAYER_NAMES

__all__ = ["ViewSettings", "VIEW_PARAMS", "TRUTHY", "LAYER_NAMES"]

TAU_OPTIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0)
LR_OPTIONS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1, 0.2, 0.5, 1.0)
BATCH_OPTIONS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WIDTH_OPTIONS = (16, 32, 64, 128, 256, 512)
DIMENSION_OPTIONS = (2, 3, 4, 8, 16, 32, 64)
FLOOR_OPTIONS = (0.0, 1e-8, 1e-6, 1e-4)
STEP_OPTIONS = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 3.0, 10.0)
"""The values the settings' sliders offer (a value from a link may lie between them: the sliders add it)."""


def batch_options(limits: Limits) -> list[int]:
    """The batch sizes offered on a server with ``limits`` (the sidebar, the fork panel, a sweep axis)."""
    return [b for b in BATCH_OPTIONS if b <= limits.max_batch]


MODE_LABELS = {"network": "network", "particles": "particles (no network)"}
KERNEL_LABELS = {"laplace": "Laplace exp(−d/τ)", "gaussian": "Gaussian exp(−d²/2τ²)"}
START_LABELS = {
    "default": "default (network init)",
    "between": "between the modes",
    "far": "far away",
    "collapsed": "collapsed onto one mode",
}
START_CASES = {"start_between": "Between", "start_far": "Far away", "start_collapsed": "Collapsed"}
"""The paper's three start cases as sidebar pills: keys of :data:`drift_core.scenarios.SCENARIOS`."""

VIEW_PARAMS = (
    "steps_per_frame",
    "fairness",
    "layers",
    "compare_layers",
    "difference",
    "arrow_scale",
    "presenter",
    "contrast",
)
"""Display settings that are part of a shared link (when they differ from the defaults)."""
TRUTHY = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ViewSettings:
    """How runs are shown (not what is trained); shared by the pages of one session."""

    steps_per_frame: int = 0  # training steps between two redraws while playing; 0: auto (a time budget)
    fairness: bool = False  # Compare: add a baseline with 2x learning rate (restarts the comparison)
    beside_particles: bool = False  # Playground: the network and, beside it, the field without it (restarts)
    layers: tuple[str, ...] = ("V",)  # Playground arrow and density layers (drift_views.figures.LAYERS)
    compare_layers: tuple[str, ...] = ("V",)  # Compare arrow layers
    difference: bool = False  # Compare: segments from each lookahead particle to its baseline twin
    arrow_scale: int = 3  # arrows are drawn this many times their true length
    estimator_noise: bool = False  # Playground: V from several fresh batches at a few particles
    inspect_n: int = 48  # Inspector: particles (its own batch size)
    presenter: bool = False  # large text and pictures, no sidebar (?presenter=1)
    contrast: bool = False  # larger points and thicker lines (a projector, a bright room)

    @classmethod
    def from_query(cls, params: Mapping[str, object], max_steps_per_frame: int) -> tuple[ViewSettings, list[str]]:
        """The display settings a shared link asks for: each readable value is used (clamped to its
        range), anything else ignored with a notice. Never raises, whatever the link says."""
        values: dict[str, object] = {}
        notices: list[str] = []
        for name in VIEW_PARAMS:
            if name not in params:
                continue
            text = str(params[name]).strip()
            shown = repr(text[:40] + ("…" if len(text) > 40 else ""))
            if name in ("layers", "compare_layers"):
                allowed = LAYER_NAMES if name == "layers" else LAYER_NAMES[:4]
                parts = [part for part in text.split(",") if part]
                values[name] = tuple(dict.fromkeys(part for part in parts if part in allowed))
                if len(values[name]) != len(set(parts)):
                    notices.append(f"ignored unknown layers in {name}={shown}")
            elif name in ("steps_per_frame", "arrow_scale"):
                low, high = (0, max_steps_per_frame) if name == "steps_per_frame" else (1, 50)
                auto = name == "steps_per_frame" and text.lower() == "auto"
                if not (auto or (text.isascii() and text.isdigit() and len(text) < 10)):
                    notices.append(f"ignored {name}={shown}: not a whole number from {low} to {high}")
                    continue
                number = 0 if auto else int(text)
                values[name] = min(max(low, number), high)
                if values[name] != number:
                    notices.append(f"{name}={number} is out of range; using {values[name]}")
            else:
                values[name] = text.lower() in TRUTHY
        return replace(cls(), **values), notices

    def to_query(self, names: tuple[str, ...] = VIEW_PARAMS) -> dict[str, str]:
        """The settings ``names`` that differ from the defaults, as a link's text (the inverse of
        :meth:`from_query`)."""
        default, out = ViewSettings(), {}
        for name in names:
            value = getattr(self, name)
            if value != getattr(default, name):
                if isinstance(value, tuple):
                    out[name] = ",".join(value)
                elif isinstance(value, bool):
                    out[name] = "true" if value else "false"
                else:
                    out[name] = str(value)
        return out
