"""Image data: CIFAR10 through torchvision's own loader, and offline demo sets that need no download.

All sets are uint8 tensors [N, 3, 32, 32]; :func:`to_model_space` maps them to floats in [-1, 1]
(the generator's output space) and :func:`to_uint8` maps back.

CIFAR10 location: ``DRIFT_DATA_DIR`` if set, else ``${XDG_CACHE_HOME:-~/.cache}/drift_lab``. Any
existing torchvision root works (a folder that holds ``cifar-10-batches-py/``), and so does a folder
that holds the original ``cifar-10-python.tar.gz``: torchvision verifies its md5 and extracts it, no
network needed. When the data is absent and ``download=True``, torchvision downloads it (163 MB);
offline, :class:`DatasetUnavailable` says where to put the archive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits, load_sample_images
from torch import Tensor

__all__ = [
    "DATASETS",
    "DEMO_DATASETS",
    "ImageSet",
    "DatasetUnavailable",
    "data_dir",
    "load_cifar10",
    "demo_digits",
    "demo_photos",
    "load_images",
    "to_model_space",
    "to_uint8",
    "CIFAR10_URL",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DEMO_DATASETS = ("demo-digits", "demo-photos")
DATASETS = ("cifar10",) + DEMO_DATASETS
DATASET_LABELS = {
    "cifar10": "CIFAR10 (training set)",
    "demo-digits": "Offline demo: scikit-learn digits (8x8, upscaled to 32x32) - not CIFAR10",
    "demo-photos": "Offline demo: 32x32 crops of scikit-learn's two sample photos - not CIFAR10",
}


class DatasetUnavailable(RuntimeError):
    """The requested image set cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class ImageSet:
    """``images``: uint8 [N, 3, 32, 32]; ``labels``: int64 [N] (class ids; -1 when unlabelled);
    ``name``: a key of :data:`DATASETS`; ``description``: what the UI and reports show."""

    images: Tensor
    labels: Tensor
    name: str
    description: str

    @property
    def is_demo(self) -> bool:
        return self.name in DEMO_DATASETS

    def __len__(self) -> int:
        return int(self.images.shape[0])


def data_dir() -> Path:
    """``DRIFT_DATA_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/drift_lab``."""
    if os.environ.get("DRIFT_DATA_DIR"):
        return Path(os.environ["DRIFT_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "drift_lab"


def _absent_message(root: Path, reason: str) -> str:
    return (
        f"CIFAR10 is not available under {root} ({reason}). Either put the original archive "
        f"cifar-10-python.tar.gz (from {CIFAR10_URL}) into {root}, or point DRIFT_DATA_DIR at an existing "
        "torchvision root that holds cifar-10-batches-py/, or allow the download when online. "
        "The offline demo sets (demo-digits, demo-photos) work without it."
    )


def load_cifar10(root: str | os.PathLike | None = None, *, train: bool = True, download: bool = False) -> ImageSet:
    """CIFAR10 through ``torchvision.datasets.CIFAR10`` (its md5 checks, extraction and download).

    An archive ``cifar-10-python.tar.gz`` already in ``root`` is verified and extracted without
    network access (torchvision skips the download when the file's md5 matches). Raises
    :class:`DatasetUnavailable` with a message (never a bare traceback) when it cannot be loaded.
    """
    from torchvision.datasets import CIFAR10  # torchvision costs seconds to import: only CIFAR10 needs it here

    root = Path(root) if root is not None else data_dir()
    archive = root / CIFAR10.filename
    extracted = root / CIFAR10.base_folder
    set_aside = _set_aside_if_corrupt(archive, CIFAR10.tgz_md5)
    if set_aside and not download:
        raise DatasetUnavailable(_absent_message(root, set_aside))
    if extracted.is_dir() and not archive.is_file():
        bad = _corrupt_members(extracted, CIFAR10.train_list + CIFAR10.test_list)
        if bad:
            raise DatasetUnavailable(
                _absent_message(
                    root,
                    f"{CIFAR10.base_folder}/{bad[0]} fails its MD5 checksum (incomplete or corrupt), so the folder "
                    f"was not used; delete {extracted} and extract the archive again",
                )
            )
    try:
        has_local = archive.is_file() or extracted.is_dir()
        if not has_local and not download:
            raise DatasetUnavailable(_absent_message(root, "no archive and no extracted folder; download is off"))
        root.mkdir(parents=True, exist_ok=True)
        need_download_call = download or (archive.is_file() and not extracted.is_dir())
        dataset = CIFAR10(str(root), train=train, download=need_download_call)
    except DatasetUnavailable:
        raise
    except (OSError, RuntimeError, ValueError) as err:  # URLError is an OSError; torchvision raises RuntimeError
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        partial = _set_aside_if_corrupt(archive, CIFAR10.tgz_md5)  # an interrupted download leaves a partial file
        raise DatasetUnavailable(_absent_message(root, f"{first}; {partial}" if partial else first)) from None
    images = torch.from_numpy(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)))
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    split = "training" if train else "test"
    return ImageSet(images, labels, "cifar10", f"CIFAR10 ({split} set, {len(labels)} images, {root})")


def _set_aside_if_corrupt(archive: Path, md5: str) -> str:
    """If ``archive`` exists but fails its MD5 checksum (an interrupted or corrupt download), rename it to
    ``*.corrupt`` so it is never used (nor mistaken for a good one later); returns what happened, or ""."""
    from torchvision.datasets.utils import check_integrity  # seconds to import; only CIFAR10 needs it

    if not archive.is_file() or check_integrity(str(archive), md5):
        return ""
    aside = archive.with_name(archive.name + ".corrupt")
    os.replace(archive, aside)
    return (
        f"{archive.name} failed its MD5 checksum (an interrupted or corrupt download) and was not used; "
        f"it was moved to {aside.name}"
    )


def _corrupt_members(folder: Path, members) -> list[str]:
    """Names of the expected ``(name, md5)`` files in ``folder`` that are missing or fail their checksum."""
    from torchvision.datasets.utils import check_integrity  # seconds to import; only CIFAR10 needs it

    return [name for name, md5 in members if not check_integrity(str(folder / name), md5)]


def demo_digits() -> ImageSet:
    """scikit-learn's 1797 handwritten digits (8x8, 0..16), upscaled to 32x32 (nearest) and repeated
    over the RGB channels; white strokes on black. Offline."""
    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)  # [N, 8, 8] in [0, 1]
    x = torch.nn.functional.interpolate(x[:, None], size=(32, 32), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return ImageSet(x, torch.as_tensor(digits.target, dtype=torch.int64), "demo-digits", DATASET_LABELS["demo-digits"])


def demo_photos(n: int = 4096, *, seed: int = 0) -> ImageSet:
    """``n`` random 32x32 crops of scikit-learn's two sample photos (china.jpg, flower.jpg), each
    downscaled 4x first so a crop holds recognisable structure; label = which photo. Offline."""
    photos = load_sample_images().images
    gen = torch.Generator().manual_seed(seed)
    crops, labels = [], []
    per_photo = [n // len(photos) + (1 if i < n % len(photos) else 0) for i in range(len(photos))]
    for index, (photo, count) in enumerate(zip(photos, per_photo)):
        t = torch.from_numpy(np.array(photo, copy=True)).permute(2, 0, 1)[None].float()
        small = torch.nn.functional.interpolate(t, scale_factor=0.25, mode="area")[0]  # [3, ~107, 160]
        h, w = small.shape[1:]
        ys = torch.randint(0, h - 32 + 1, (count,), generator=gen)
        xs = torch.randint(0, w - 32 + 1, (count,), generator=gen)
        flips = torch.rand(count, generator=gen) < 0.5
        for y0, x0, flip in zip(ys.tolist(), xs.tolist(), flips.tolist()):
            crop = small[:, y0 : y0 + 32, x0 : x0 + 32]
            crops.append(crop.flip(-1) if flip else crop)
        labels += [index] * count
    images = torch.stack(crops).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, torch.as_tensor(labels, dtype=torch.int64), "demo-photos", DATASET_LABELS["demo-photos"])


def load_images(name: str, *, root: str | os.PathLike | None = None, download: bool = False) -> ImageSet:
    """The image set called ``name`` (one of :data:`DATASETS`)."""
    if name == "cifar10":
        return load_cifar10(root, train=True, download=download)
    if name == "demo-digits":
        return demo_digits()
    if name == "demo-photos":
        return demo_photos()
    raise DatasetUnavailable(f"unknown image set {name!r}; choose one of {', '.join(DATASETS)}")


def to_model_space(images: Tensor) -> Tensor:
    """uint8 [N, 3, H, W] in 0..255 -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """Model-space floats [N, 3, H, W] (nominally [-1, 1]) -> uint8, clamped."""
    return x.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
