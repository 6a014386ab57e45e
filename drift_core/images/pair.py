"""The images page's baseline/lookahead pair as a lock-step :class:`~drift_core.run.Run`, with what only
image runs have: FID/KID of every arm and loading a checkpoint into one arm.

The two arms share the seed (so the same initial weights), the frozen encoder and one batch stream
(:func:`~drift_core.images.train.data_stream`): each step both see the same noise and the same real
images, so they differ only in the drift. Advancing, the step budget, divergence, the lock, stepping
back and forking are the :class:`~drift_core.run.Run`'s, exactly as for the 2D arms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..checkpoint import CheckpointError
from ..run import Run
from ..train import Lockstep
from .config import ImageExperimentConfig
from .data import ImageSet
from .fid import FIDEvaluator, metric_label
from .projection import PlanarFeatureView
from .train import ImageSnapshot, ImageTrainer, cached_images, data_stream

__all__ = ["ARMS", "ArmFID", "image_arms", "image_pair", "evaluate_arms", "load_arm"]

ARMS = ("baseline", "lookahead")
"""The pair's arms: K = 0, and the config's K (at least 1)."""
SHARED_FIELDS = ("dataset", "generator", "noise_dim", "encoder", "batch_size", "positives")
"""What the two arms of a pair must have in common (one batch feeds both networks)."""


def image_arms(config: ImageExperimentConfig) -> dict[str, ImageExperimentConfig]:
    """The pair's arm configs: the baseline (K = 0) and lookahead with the config's K (at least 1)."""
    return {"baseline": config.with_values({"K": 0}), "lookahead": config.with_values({"K": max(1, config.drift.K)})}


def image_pair(
    config: ImageExperimentConfig, *, images: ImageSet | None = None, device: torch.device | str | None = None
) -> Run:
    """The lock-step baseline/lookahead pair of ``config`` (its step budget is the run's).

    Raises DatasetUnavailable / EncoderUnavailable when the data or the encoder cannot be had, and
    ConfigError for settings that cannot work."""
    images = images or cached_images(config.data.dataset, download=config.data.download)
    arms = image_arms(config)
    baseline = ImageTrainer(arms["baseline"], images=images, device=device)
    trainers = {"baseline": baseline, "lookahead": baseline.spawn(arms["lookahead"])}
    lockstep = Lockstep.of(trainers, data_stream(config.train.seed))
    return Run.of(trainers, config, lockstep=lockstep, arms=image_arms)


@dataclass(frozen=True)
class ArmFID:
    """One arm's FID/KID: ``arm`` its drift label ("lookahead K=1"), at ``step``; ``label`` names the
    metric with its N and reference; ``seconds`` the evaluation's time."""

    arm: str
    step: int
    fid: float
    kid: float
    kid_std: float
    label: str
    seconds: float


def evaluate_arms(
    run: Run, n: int, *, progress: Callable[[float, str], None] | None = None, kid_subsets: int = 10
) -> list[ArmFID]:
    """FID-n and KID of every arm's EMA samples (:meth:`ImageTrainer.fid_samples`) against n reference
    images of the training set. ``progress(fraction, text)`` is called while images go through
    Inception. Raises FIDWeightsUnavailable when the Inception weights are missing."""
    first = run.trainer
    evaluator = FIDEvaluator(first.images, first.device, n_reference=n, kid_subsets=kid_subsets)
    total = evaluator.n_reference + n * len(run.trainers)
    done = 0

    def report(label: str) -> Callable[[int, int], None]:
        base = done

        def callback(k: int, of: int) -> None:
            if progress is not None:
                progress(min(1.0, (base + k) / total), f"{label}: {k}/{of} images through Inception")

        return callback

    evaluator.reference(progress=report("reference"))
    done = evaluator.n_reference
    kind = "demo" if first.images.is_demo else "train"
    rows = []
    for name, trainer in run.trainers.items():
        start = time.perf_counter()
        result = evaluator(trainer.fid_samples(n), progress=report(run.label(name)))
        done += n
        rows.append(
            ArmFID(
                run.label(name),
                trainer.step_count,
                result.fid,
                result.kid,
                result.kid_std,
                metric_label("FID", n, f"{evaluator.n_reference} {kind} images"),
                time.perf_counter() - start,
            )
        )
    return rows


def load_arm(run: Run, arm: str, source) -> ImageTrainer:
    """Replace arm ``arm`` of a pair by the checkpoint ``source`` (a path, bytes or a binary file;
    ``weights_only=True``) and return its trainer; the run pauses, the arm's history starts at the
    checkpoint's step. CheckpointError for a bad file, and for a checkpoint whose data, network or
    batch sizes differ from the run's (the arms share their batches), saying which."""
    current = run.trainers[arm]
    trainer = ImageTrainer.load(source, images=current.images, device=current.device)
    have, want = trainer.config.to_flat(), current.config.to_flat()
    differ = [f"{k} {have[k]!r} (this run: {want[k]!r})" for k in SHARED_FIELDS if have[k] != want[k]]
    if differ:
        raise CheckpointError(
            "the checkpoint was trained with other settings than this run: "
            + ", ".join(differ)
            + ". Choose those settings in the sidebar, then load it again"
        )
    run.replace_arm(arm, trainer)
    return trainer


def picture_group(run: Run, wanted: str) -> str:
    """The feature group the 2D picture shows: ``wanted`` when the run's encoder has it, else the
    encoder's first group after the raw pixels (the pixels when they are the only one)."""
    groups = run.trainer.feature_groups
    if wanted in groups:
        return wanted
    return next((g for g in groups if g != "pixels"), groups[0])


def feature_pictures(run: Run, group: str, snapshots: Mapping[str, ImageSnapshot]) -> dict[str, PlanarFeatureView]:
    """{arm: feature group ``group`` of the arm's display images (those of its snapshot in ``snapshots``,
    as :meth:`Run.frames` gives them), the real sample and the drift V, on the PCA plane of the real
    sample} (one plane for all arms: the first arm's, fitted once per run)."""
    with run.lock:
        projection = run.trainer.feature_projection(group)
        return {
            name: trainer.feature_view(group, images=snapshots[name].images).planar(projection)
            for name, trainer in run.trainers.items()
        }
