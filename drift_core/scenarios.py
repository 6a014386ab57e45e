"""Guided scenarios for demos: one named configuration each, a title and two sentences on what to watch.

The three start cases are the paper's Figure 3 (bimodal target; outputs start between the modes, far
away, or collapsed onto one mode: the presets ``bimodal_*``). The others isolate one knob on the eight
Gaussians ring against the playground defaults; what their text promises was measured (300 steps, seed 0,
N = 512 unless the scenario changes it): the defaults cover all 8 modes; attraction only, from its seed 2
start, collapses every particle onto one mode (from seeds 0 and 1 the cloud spreads over 5-6 modes in 300
steps: the column softmax shares each data point among the particles); tau = 0.01 leaves the start blob frozen (no mode reached); tau = 1
gives a smooth blur with no mode covered; N = 8 still covers no mode after 300 steps. The far start
uses distance normalisation: with raw distances at tau = 0.1 the preset ``bimodal_far`` does not move at
all (energy distance unchanged from step 0 to 300), while normalised it covers both modes within 50 steps.
The last two use the checkerboard (the field without the network; the data in 64 dimensions): what their
text promises is measured in benchmarks/RESULTS.md, "Guided scenarios".
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ExperimentConfig, preset

__all__ = ["Scenario", "SCENARIOS", "scenario"]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    config: ExperimentConfig
    watch: str  # two sentences: what to look at, and why it happens


_RING = ExperimentConfig().with_values({"dataset": "8gaussians", "steps": 300})
_SQUARES = ExperimentConfig().with_values({"dataset": "checkerboard", "steps": 300})

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(
            "start_between",
            "Start between the modes",
            preset("bimodal_between"),
            "All particles start in the gap between the two modes, where attraction from both sides nearly "
            "cancels. Watch repulsion split the cloud first, then each half slide into its own mode.",
        ),
        Scenario(
            "start_far",
            "Start far away",
            preset("bimodal_far").with_values({"normalize_distance": True}),
            "The particles start about four units from the data; distances are measured in units of the batch's "
            "mean distance (as the official code does), so the pull of the data does not vanish and the cloud "
            "travels towards it as one block before splitting over both modes. Watch that, then turn off 'Normalise "
            "distances' (sidebar, More drift settings) and press Reset: the raw kernel at τ = 0.1 gives the data a weight "
            "of about e^-40 and the cloud never moves.",
        ),
        Scenario(
            "start_collapsed",
            "Start collapsed onto one mode",
            preset("bimodal_collapsed"),
            "Every particle starts on the left mode, the classic mode-collapse failure. Watch repulsion push "
            "the crowd apart until part of it is captured by the empty right mode.",
        ),
        Scenario(
            "attraction_only",
            "Attraction only (no repulsion)",
            _RING.with_values({"attraction_only": True, "seed": 2}),
            "The field keeps only V+, the pull towards the data, and drops the push away from the other particles. "
            "Watch the particles pile onto a single mode and shrink to a dot: repulsion is what spreads them over "
            "the distribution. (From some other seeds' starts the cloud reaches a few modes instead.)",
        ),
        Scenario(
            "tau_too_small",
            "Temperature too small",
            _RING.with_values({"tau": 0.01}),
            "With τ = 0.01 the kernel exp(−d/τ) only sees points a few hundredths away, so a particle far "
            "from every mode feels almost no consistent pull. Watch the starting blob barely move while the "
            "modes stay empty.",
        ),
        Scenario(
            "tau_too_large",
            "Temperature too large",
            _RING.with_values({"tau": 1.0}),
            "With τ = 1 every data point pulls on every particle almost equally, so the field only sees the "
            "overall blob of the data. Watch the particles cover the ring as a smooth haze that never sharpens "
            "into the eight modes.",
        ),
        Scenario(
            "tiny_batch",
            "Tiny batch (noisy field)",
            _RING.with_values({"batch_size": 8}),
            "With N = 8 the field is estimated from only eight data points and eight generated points per step, "
            "so it points somewhere different every step. Watch the particles jitter and wander; turn on the "
            "estimator-noise view to see the spread of V, then raise the batch size.",
        ),
        Scenario(
            "particles",
            "The field without the network",
            _SQUARES.with_values({"mode": "particles"}),
            "No network: the points themselves move by z ← z + V on the same batches. Watch them crawl at first and "
            "then settle onto the squares more exactly than the network does in 300 steps; the network's job is to "
            "turn this flow into one function that also works for fresh noise.",
        ),
        Scenario(
            "many_dimensions",
            "The data in 64 dimensions",
            _SQUARES.with_values({"dimension": 64}),
            "The checkerboard rotated into 64 dimensions, with a little noise in the 62 extra ones. Watch it learn "
            "the same picture more slowly, then open 'Dimensions: how the kernel flattens' below it: every "
            "particle's attraction averages over ever more data points as D grows.",
        ),
    )
}
"""The guided scenarios, in display order."""


def scenario(key: str) -> Scenario:
    if key not in SCENARIOS:
        raise KeyError(f"unknown scenario {key!r}; choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[key]
