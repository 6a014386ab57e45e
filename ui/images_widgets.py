"""Sidebar controls of the CIFAR10 page and the session's :class:`~ui.images_state.ImagePair`."""
from __future__ import annotations

import streamlit as st

from drift_core.limits import Limits
from drift_core.images.config import ImageExperimentConfig
from drift_core.images.data import DATASET_LABELS, DATASETS
from drift_core.images.features import resnet18_weights_path
from ui.images_state import ImagePair
from ui.session import lab

TAUS = (0.02, 0.03, 0.05, 0.1, 0.2)
BATCHES = (8, 16, 32, 64, 128, 256)
LRS = (2e-4, 5e-4, 1e-3, 2e-3)
FID_SIZES = (50, 250, 500, 1000, 2000, 5000)
ENCODER_LABELS = {"pixels": "pixels (no encoder)", "random-conv": "random conv net (offline)",
                  "resnet18": "ResNet-18 ImageNet (if cached)"}
ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
DEFAULTS = {"img_dataset": "demo-digits", "img_generator": "tiny", "img_encoder": "random-conv", "img_K": 1, "img_alpha": 0.1,
            "img_tau": 0.05, "img_batch": 32, "img_lr": 1e-3, "img_spf": 1, "img_steps": 2000}


def image_config_from_widgets() -> tuple[ImageExperimentConfig, int]:
    ss = st.session_state
    for key, value in DEFAULTS.items():
        ss.setdefault(key, value)
    sb = st.sidebar
    sb.markdown("#### :material/image: Data and model")
    sb.selectbox("Image set", DATASETS, key="img_dataset", format_func=lambda n: DATASET_LABELS[n].split(" - ")[0],
                 help="CIFAR10 is read from DRIFT_DATA_DIR (or downloaded when online); the demo sets need no download")
    sb.selectbox("Generator", ("tiny", "base"), key="img_generator",
                 help="tiny: ~0.4 M parameters, learns on a CPU in minutes; base: ~3.6 M, for GPUs")
    encoders = ["pixels", "random-conv"] + (["resnet18"] if resnet18_weights_path().is_file() else [])
    if ss["img_encoder"] not in encoders:
        ss["img_encoder"] = "random-conv"
    sb.selectbox("Drift space", encoders, key="img_encoder", format_func=ENCODER_LABELS.get,
                 help="where the drift is computed: raw pixels, or the feature groups of a frozen encoder")
    sb.markdown("#### :material/tune: Drift and training")
    sb.slider("Lookahead terms K", 0, min(4, Limits.from_env().max_k), key="img_K")
    sb.select_slider("Lookahead step α", ALPHAS, key="img_alpha",
                     help="z¹ = z⁰ + α V₀ between lookahead terms. In normalised feature space the terms are O(1) per "
                          "coordinate, so α = 1 overshoots (measured); 0.1 is the images' default")
    sb.select_slider("Temperature τ", TAUS, key="img_tau", help="used as τ × {0.4, 1, 4}, each RMS-normalised (the paper's {0.02, 0.05, 0.2} at 0.05)")
    sb.select_slider("Batch (generated = real)", BATCHES, key="img_batch")
    sb.select_slider("Learning rate", LRS, key="img_lr")
    sb.number_input("Step budget", 1, 1_000_000, key="img_steps")
    sb.slider("Steps per frame", 1, 10, key="img_spf", help="training steps of each run between redraws")
    config = ImageExperimentConfig().with_values({
        "dataset": ss["img_dataset"], "generator": ss["img_generator"], "encoder": ss["img_encoder"],
        "noise_dim": 64 if ss["img_generator"] == "tiny" else 128, "method": "lookahead", "K": ss["img_K"], "alpha": ss["img_alpha"],
        "tau": ss["img_tau"], "batch_size": ss["img_batch"], "positives": ss["img_batch"], "lr": ss["img_lr"],
        "steps": ss["img_steps"], "ema_decay": 0.95})
    return config, int(ss["img_spf"])


def image_pair(key: str, config: ImageExperimentConfig, *, force_reset: bool = False) -> tuple[ImagePair, str]:
    """The session's pair; rebuilt (with a note) when the settings change or on Reset."""
    runs = lab().runs
    pair = runs.get(key)
    if pair is not None and not force_reset and pair.config != config and pair.config.with_values({"steps": config.train.steps}) == config:
        pair.config = config  # only the step budget changed: keep training
        for arm, trainer in pair.trainers.items():
            trainer.config = trainer.config.with_values({"steps": config.train.steps})
        return pair, ""
    if pair is None or force_reset or pair.config != config:
        note = "" if pair is None else ("restarted" if force_reset else "settings changed: both runs restarted from step 0")
        runs[key] = ImagePair.create(config)
        return runs[key], note
    return pair, ""
