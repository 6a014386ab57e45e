"""drift_core.process: the server's torch threads from the environment, and glibc's heap (arena limit,
freed memory handed back)."""

from __future__ import annotations

import ctypes.util

import torch

from drift_core import process


def test_configure_torch_threads_reads_the_environment():
    before = torch.get_num_threads()
    try:
        assert process.configure_torch_threads({"DRIFT_TORCH_THREADS": "1"}) == 1 and torch.get_num_threads() == 1
        assert process.configure_torch_threads({"DRIFT_TORCH_THREADS": "bad"}) == 1
    finally:
        torch.set_num_threads(before)


def test_freed_memory_goes_back_to_the_system_where_glibc_is():
    glibc = ctypes.util.find_library("c") is not None
    assert process.limit_malloc_arenas() == glibc
    garbage = [bytearray(100_000) for _ in range(50)]  # 5 MB on the heap, then freed
    del garbage
    assert process.release_memory() == glibc
