"""The app server's side of a run: torch threads for the server, and what the pages say about a
:class:`drift_core.run.Run` (the run itself, its history, evaluation and play state, is the engine's:
one object per browser session is kept in ``st.session_state`` by :mod:`ui.state`)."""
from __future__ import annotations

import os

import torch

from drift_core.config import ExperimentConfig
from drift_core.probes import DataKernelShare


def configure_torch_threads(environ=os.environ) -> int:
    """Intra-op threads for training in the app server: DRIFT_TORCH_THREADS, default 1.

    A Streamlit server trains one small model per session in its own thread; several sessions (and
    other processes) share the cores, and torch's multi-threaded kernels then spin against each other.
    Measured on the 2-core development container under load: 18 ms per default playground step with
    1 thread versus 400 ms with 2. Returns the thread count in force."""
    try:
        wanted = max(1, int(environ.get("DRIFT_TORCH_THREADS", "1")))
    except ValueError:
        wanted = 1
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def kernel_share_warning(share: DataKernelShare | None, config: ExperimentConfig) -> str:
    """Why nothing moves, in words, when the data's kernel weight has vanished (else "")."""
    if share is None or not share.vanished:
        return ""
    how = ("distances are normalised by the batch's mean distance" if config.drift.normalize_distance
           else "distances are raw (turn on 'Normalise distances' under 'More drift settings')")
    return (f"The particles cannot see the data: the data gets {share.share:.0e} of each particle's kernel "
            f"weight, so V ≈ 0 and nothing moves. The nearest data point is {share.nearest_data:.2g} away, "
            f"{share.nearest_data / share.tau:.0f} temperatures at τ = {share.tau:g}, and {how}. "
            "Raise τ or normalise distances.")
