"""A long-lived process that trains many small runs (the app's server): how many threads torch uses,
and glibc's heap (how many arenas it keeps, handing freed memory back to the system). Nothing here
knows about Streamlit; ``ui.safety`` calls it from the server."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import torch

__all__ = ["configure_torch_threads", "libc", "limit_malloc_arenas", "release_memory"]


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library, or None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Let glibc's malloc use at most ``arenas`` arenas. Streamlit runs every session's script in a thread
    of its own, and glibc gives threads arenas of their own (up to 8 per core): memory a closed session
    freed then stays scattered over them instead of returning to the system. Returns whether it applied
    (glibc only)."""
    c = libc()
    return bool(c is not None and hasattr(c, "mallopt") and c.mallopt(-8, arenas))  # M_ARENA_MAX


def release_memory() -> bool:
    """Hand freed heap memory back to the operating system (glibc's ``malloc_trim``): the memory of
    runs that were dropped (a closed tab, an evicted session, a reset) otherwise stays counted in the
    server's resident size. Returns whether it could (glibc only)."""
    c = libc()
    if c is None or not hasattr(c, "malloc_trim"):
        return False
    c.malloc_trim(0)
    return True


def configure_torch_threads(environ=os.environ) -> int:
    """Intra-op threads for training in the app server: DRIFT_TORCH_THREADS, default 1.

    A Streamlit server trains one small model per session in its own thread; several sessions (and
    other processes) share the cores, and torch's multi-threaded kernels then spin against each other
    (benchmarks/RESULTS.md). Returns the thread count in force."""
    try:
        wanted = max(1, int(environ.get("DRIFT_TORCH_THREADS", "1")))
    except ValueError:
        wanted = 1
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted
