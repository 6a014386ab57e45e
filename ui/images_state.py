"""The CIFAR10 page's live run: a baseline and a lookahead :class:`ImageTrainer` trained side by side
(same seed, so same initial weights, noise and data sequence), plus FID/KID results. No Streamlit
widgets here; the page keeps one :class:`ImagePair` per browser session in ``st.session_state``."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.data import ImageSet
from drift_core.images.render import image_grid
from drift_core.images.train import ImageTrainer, cached_images

ARMS = ("baseline", "lookahead")


def arm_config(config: ImageExperimentConfig, arm: str) -> ImageExperimentConfig:
    return config.with_values({"method": "baseline" if arm == "baseline" else "lookahead"})


@dataclass
class FIDRow:
    arm: str
    step: int
    fid: float
    kid: float
    kid_std: float
    label: str
    seconds: float


@dataclass
class ImagePair:
    config: ImageExperimentConfig
    trainers: dict[str, ImageTrainer]
    playing: bool = False
    message: str = ""
    fid_rows: list[FIDRow] = field(default_factory=list)

    @classmethod
    def create(cls, config: ImageExperimentConfig, images: ImageSet | None = None) -> "ImagePair":
        images = images or cached_images(config.data.dataset, download=config.data.download)
        return cls(config, {arm: ImageTrainer(arm_config(config, arm), images=images) for arm in ARMS})

    def label(self, arm: str) -> str:
        return self.trainers[arm].config.drift.label()

    def advance(self, steps: int) -> float:
        """Train ``steps`` steps on each arm (stops playing at the step budget or on divergence); seconds spent."""
        start = time.perf_counter()
        for _ in range(steps):
            for arm, trainer in self.trainers.items():
                if trainer.step_count >= trainer.config.train.steps:
                    self.playing = False
                    self.message = f"reached the step budget ({trainer.config.train.steps} steps)"
                    return time.perf_counter() - start
                record = trainer.step()
                if record.diverged:
                    self.playing = False
                    self.message = f"{self.label(arm)}: {record.message}"
                    return time.perf_counter() - start
        return time.perf_counter() - start

    def grid(self, arm: str) -> np.ndarray:
        """The fixed-noise EMA sample grid of one arm, 8 x 8, upscaled x3 (uint8 HxWx3)."""
        return image_grid(self.trainers[arm].display_grid_images(), nrow=8, scale=3)

    def rms_rows(self) -> list[dict]:
        """Long-form rows {step, drift_rms, series} for both arms."""
        rows = []
        for arm, trainer in self.trainers.items():
            name = self.label(arm)
            rows += [{"step": r["step"], "drift_rms": r["drift_rms"], "series": name} for r in trainer.history]
        return rows

    def checkpoint_bytes(self, arm: str) -> bytes:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pt"
            self.trainers[arm].save(path)
            return path.read_bytes()

    def load_checkpoint(self, arm: str, data: bytes) -> ImageTrainer:
        """Replace one arm by a checkpoint (``weights_only=True``; CheckpointError on any bad file)."""
        trainer = ImageTrainer.load(io.BytesIO(data), images=self.trainers[arm].images)
        self.trainers[arm] = trainer
        return trainer


def compute_fid(pair: ImagePair, n: int, progress=None) -> list[FIDRow]:
    """FID-n and KID of both arms' EMA samples against n reference images of the training set.
    ``progress(fraction, text)`` is called while features are extracted."""
    from drift_core.images.fid import InceptionFeatures, evaluate_fid, reference_stats
    from drift_core.runtime import make_generator

    trainer0 = next(iter(pair.trainers.values()))
    extractor = InceptionFeatures("cpu" if trainer0.device.type != "cuda" else trainer0.device)
    images = trainer0.images
    n_ref = min(n, len(images))
    total = n_ref + n * len(pair.trainers)
    done = [0]

    def report(base, label):
        def cb(k, _total):
            if progress is not None:
                progress(min(1.0, (base + k) / total), f"{label}: {k}/{_total} images through Inception")
        return cb

    reference = reference_stats(images.images, images.name, extractor, n=n_ref, progress=report(0, "reference"))
    done[0] = n_ref
    rows = []
    for arm, trainer in pair.trainers.items():
        start = time.perf_counter()
        generated = trainer.sample(n, generator=make_generator(2024))
        result = evaluate_fid(generated, reference, extractor, progress=report(done[0], pair.label(arm)), kid_subsets=10)
        done[0] += n
        rows.append(FIDRow(pair.label(arm), trainer.step_count, result.fid, result.kid, result.kid_std,
                           result.label.replace(" vs train", f" vs {n_ref} {'demo' if images.is_demo else 'train'} images"),
                           time.perf_counter() - start))
    pair.fid_rows.extend(rows)
    return rows
