"""The sentences the app prints about a run, without Streamlit: its arms' names, why nothing moves,
which arm of a comparison is ahead, how noisy the drift estimate is, and numbers formatted for a card."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drift_core.comparison import compare_arms_now
from drift_core.config import ExperimentConfig
from drift_core.estimator_noise import EstimatorNoise
from drift_core.probes import DataKernelShare
from drift_core.run import DOUBLED_LR_ARM, DOUBLED_STEP_ARM, Run


def kernel_share_warning(share: DataKernelShare | None, config: ExperimentConfig) -> str:
    """Why nothing moves, in words, when the data's kernel weight has vanished (else "")."""
    if share is None or not share.vanished:
        return ""
    how = (
        "distances are normalised by the batch's mean distance"
        if config.drift.normalize_distance
        else "distances are raw (turn on 'Normalise distances' under 'More drift settings')"
    )
    return (
        f"The particles cannot see the data: the data gets {share.share:.0e} of each particle's kernel "
        f"weight, so V ≈ 0 and nothing moves. The nearest data point is {share.nearest_data:.2g} away, "
        f"{share.nearest_data / share.tau:.0f} temperatures at τ = {share.tau:g}, and {how}. "
        "Raise τ or normalise distances."
    )


def fmt(value: float | None, spec: str = ".4g") -> str:
    return "–" if value is None or value != value else format(value, spec)


def arm_label(run: Run, name: str) -> str:
    """An arm as a person reads it: "lookahead K=1", "baseline (particles)", or the control's own name."""
    return name if name in (DOUBLED_LR_ARM, DOUBLED_STEP_ARM) else run.label(name)


def difference_sentence(run: Run) -> str:
    """What the comparison shows now, in plain words: which arm is ahead at equal steps and at equal
    training time, and whether the gap is larger than the recent spread of the evaluations."""
    result = compare_arms_now(run.histories)
    if result is None or result.at_step.at == 0:
        return "The arms start from the same weights: press Play to see them part."

    def label(name: str) -> str:
        return arm_label(run, name)

    def part(standing, where: str) -> str:
        first, second = standing.ranking[:2]
        values = f"energy distance {fmt(standing.levels[first], '.3g')} vs {fmt(standing.levels[second], '.3g')}"
        if not standing.noise:
            return (
                f"{where} {label(first)} leads {label(second)} ({values}; too few evaluations yet to judge the noise)"
            )
        if not standing.clear:
            return (
                f"{where} no clear difference between {label(first)} and {label(second)} ({values}: the gap is "
                f"only {standing.gap / standing.noise:.1f}× the recent spread of the evaluations)"
            )
        return (
            f"{where} **{label(first)}** is ahead of {label(second)}: {values} (a gap of "
            f"{standing.gap / standing.noise:.0f}× the recent spread)"
        )

    text = part(result.at_step, f"At step {result.at_step.at:.0f},")
    if result.at_time is not None:
        text += "; " + part(result.at_time, f"at equal training time ({result.at_time.at:.1f} s),")
    return text + "."


def noise_caption(noise: EstimatorNoise) -> str:
    """The estimator noise in one sentence: its spread, relative to V, and how N changes it."""
    return (
        f"Estimator noise at N = {noise.batch_size}: the spread of V over {noise.samples.shape[0]} fresh "
        f"batches is {np.median(noise.spread):.2e} (median), {noise.noise_to_signal:.0%} of the size of V. "
        "Quadruple N to roughly halve it."
    )


@dataclass(frozen=True)
class Card:
    """One metric card: its label, its value as text, and its tooltip."""

    label: str
    value: str
    help: str | None = None


def run_cards(run: Run, step: int, *, compare: bool, replayed: bool = False, counter_rate: str = "–") -> list[Card]:
    """The metric cards of a run at ``step`` (``replayed``: a step before the run's own): the step, then
    on Compare one energy card per arm, else the run's (first arm's) loss, drift RMS, energy, sliced W₂
    and mode coverage (its steps per second, ``counter_rate``, where the data has no modes)."""
    cards = [Card("Step", f"{step}", "the replayed step (the run itself is further on)" if replayed else None)]
    if compare:
        for name, trainer in run.trainers.items():
            energy = run.histories[name].metrics_at(step).get("energy")
            cards.append(Card(f"{name}: energy distance", fmt(energy), f"training time so far: {trainer.wall_s:.1f} s"))
        return cards
    record, metrics = run.history.record_at(step), run.history.metrics_at(step)
    cards += [
        Card("Loss", fmt(record.loss if record else None, ".2e"), "‖V‖²: the drifting loss of the last step"),
        Card(
            "Drift RMS",
            fmt(record.drift_rms[0] if record and record.drift_rms else None, ".2e"),
            "RMS of the base drift term: falls towards the noise floor as the model matches the data",
        ),
        Card(
            "Energy",
            fmt(metrics.get("energy")),
            "energy distance to a fixed data sample: 0 when the distributions match",
        ),
        Card("Sliced W₂", fmt(metrics.get("sliced_w2")), "sliced Wasserstein-2 distance to the same sample"),
    ]
    if "modes_covered" in metrics:
        modes = f"{metrics['modes_covered']:.0f}/{len(run.evaluator.modes)}"
        cards.append(Card("Modes", modes, "modes of the mixture that hold their share of the generated points"))
    else:
        cards.append(
            Card(
                "Steps / s",
                counter_rate,
                "how fast the step counter advances while playing (training and drawing together); 'auto' steps "
                "per frame gives training most of the time",
            )
        )
    return cards


def arm_title(run: Run, name: str, step: int, *, compare: bool, replay_step: int | None = None) -> str:
    """The title of arm ``name``'s particle view at ``step``: on Compare the arm, its energy, its learning
    rate (or particle step) and training time; on the Playground the run's label, τ and N (the arm and
    its energy when the particles train beside the network); "replay of step S" first when replayed."""
    trainer = run.trainers[name]
    config = trainer.config
    energy = fmt(run.histories[name].metrics_at(step).get("energy"))
    if compare:
        rate = f"η {config.train.particle_step:g}" if config.train.mode == "particles" else f"lr {config.train.lr:g}"
        title = f"<b>{arm_label(run, name)}</b> · energy {energy} · {rate} · {trainer.wall_s:.1f} s"
    elif len(run.trainers) > 1:
        title = f"<b>{name}</b> · energy {energy} · τ = {config.drift.tau:g}"
    else:
        title = f"{run.label(name)} · τ = {config.drift.tau:g} · N = {config.train.batch_size}"
    return f"replay of step {replay_step} · {title}" if replay_step is not None else title


def flattening_caption(embedding_noise: float) -> str:
    """What the kernel-flattening chart (:mod:`drift_views.flattening`) shows and why it matters."""
    return (
        "The particles and the data, embedded in D dimensions as a run with that D embeds them (a rotation and "
        f"noise of {embedding_noise:g} in the extra coordinates). Left: how many data points each particle's "
        "attraction averages over, as a share of all of them (1 = a flat kernel that sees everything alike). "
        "Right: how much of its 2D neighbourhood it still sees (1 = the same neighbours). Distances grow alike in "
        "D, so the weights flatten or settle on random points; normalising distances and several temperatures "
        "change the level, not the trend: this is why images are drifted in the feature space of an encoder, not "
        "in pixels."
    )
