"""Device selection and named random streams.

Every random draw of a run comes from a stream named by (seed, purpose): ``stream(seed, "data")``
draws the training batches, ``stream(seed, "evaluation")`` the evaluation sample, and so on. A stream's
torch seed is a hash of both, never ``seed + k``, so the streams of different seeds and purposes do not
coincide (with ``seed + k``, seed 0's evaluation stream was seed 2's data stream), and any Python int,
however large, is a valid seed."""
from __future__ import annotations

import hashlib

import torch

__all__ = ["select_device", "make_generator", "stream", "stream_seed", "PURPOSES"]

PURPOSES = ("init", "start", "data", "display", "sample", "evaluation", "reference", "estimator_noise")
"""The named streams of a run: network initialisation, start-case centre, training batches, the fixed
display particles, ad-hoc samples, the evaluation noise, the evaluation reference sample, and the
estimator-noise resamples."""


def stream_seed(seed: int, purpose: str) -> int:
    """The 63-bit torch seed of the stream (seed, purpose): the first 8 bytes of BLAKE2b of both."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; known: {', '.join(PURPOSES)}")
    digest = hashlib.blake2b(f"drift-lab:{int(seed)}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def stream(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for the stream (seed, purpose); see :func:`stream_seed`."""
    return make_generator(stream_seed(seed, purpose))


def select_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple MPS, then the CPU. An explicit device that is not available
    raises ValueError with the reason."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was requested but Apple MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}")
    return torch.device(name)


def make_generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator seeded with ``seed``. Batches are drawn on the CPU and moved to the
    device, so a run reproduces on any device."""
    return torch.Generator(device="cpu").manual_seed(int(seed))
