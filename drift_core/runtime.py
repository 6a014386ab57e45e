"""Device selection and seeded random generators."""
from __future__ import annotations

import torch

__all__ = ["select_device", "make_generator"]


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
