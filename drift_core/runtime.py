"""Device selection, named random streams, and the CPU thread count under contention.

Every random draw of a run comes from a stream named by (seed, purpose): ``stream(seed, "data")``
draws the training batches, ``stream(seed, "evaluation")`` the evaluation sample, and so on. A stream's
torch seed is a hash of both, never ``seed + k``, so the streams of different seeds and purposes do not
coincide (with ``seed + k``, seed 0's evaluation stream was seed 2's data stream), and any Python int,
however large, is a valid seed.

:func:`adaptive_cpu_threads` gives up intra-op threads for the length of one call while other
processes keep the CPU busy (see :class:`CpuThreadPolicy` for why and how)."""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = [
    "select_device",
    "make_generator",
    "stream",
    "stream_seed",
    "PURPOSES",
    "CpuSample",
    "CpuThreadPolicy",
    "CPU_THREADS",
    "adaptive_cpu_threads",
    "fixed_cpu_threads",
    "read_cpu_sample",
    "threads_for_load",
]

PURPOSES = (
    "init",
    "start",
    "data",
    "display",
    "sample",
    "evaluation",
    "reference",
    "estimator_noise",
    "embedding",
    "prediction",
)
"""The named streams of a run: network initialisation, start-case centre, training batches, the fixed
display particles, ad-hoc samples, the evaluation noise, the evaluation reference sample, the
estimator-noise resamples, the rotation that embeds the 2D data in D dimensions, and the particles the
Playground's prediction game highlights."""


def stream_seed(seed: int, purpose: str, part: int = 0) -> int:
    """The 63-bit torch seed of the stream (seed, purpose, part): the first 8 bytes of BLAKE2b of them.
    ``part`` numbers the sub-streams of one purpose (a process rank, a sample drawn at a given step);
    part 0 is the purpose's own stream."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; known: {', '.join(PURPOSES)}")
    name = f"drift-lab:{int(seed)}:{purpose}" + (f":{int(part)}" if part else "")
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def stream(seed: int, purpose: str, part: int = 0) -> torch.Generator:
    """A CPU generator for the stream (seed, purpose, part); see :func:`stream_seed`."""
    return make_generator(stream_seed(seed, purpose, part))


def select_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA, then Apple MPS, then the CPU. An explicit device that is not available
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


# ---- CPU threads under contention -------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    """One reading of the CPU clocks: ``wall_s`` (monotonic seconds), ``busy_s`` (CPU-seconds the CPUs
    this process may run on have spent busy, for any process, time taken by the hypervisor included)
    and ``own_s`` (CPU-seconds of this process, all its threads)."""

    wall_s: float
    busy_s: float
    own_s: float


def read_cpu_sample(cpus: frozenset[int] | None = None) -> CpuSample | None:
    """Read /proc/stat's per-CPU lines for ``cpus`` (default: this process's affinity) and this
    process's CPU time. None where /proc/stat is not available (not Linux)."""
    cpus = _allowed_cpus() if cpus is None else cpus
    try:
        with open("/proc/stat") as f:
            lines = f.readlines()
    except OSError:
        return None
    busy_ticks = 0
    for line in lines:
        if not line.startswith("cpu") or line[3] == " ":
            continue
        name, *fields = line.split()
        if int(name[3:]) in cpus:
            # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
            # already counted in user, idle and iowait are the only not-busy columns
            user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(v) for v in fields)
            busy_ticks += user + nice + system + irq + softirq + (rest[0] if rest else 0)
    return CpuSample(wall_s=time.monotonic(), busy_s=busy_ticks / _CLOCK_TICKS, own_s=time.process_time())


def _allowed_cpus() -> frozenset[int]:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return frozenset(range(os.cpu_count() or 1))


try:
    _CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    _CLOCK_TICKS = 100

SPARE_CORE_SLACK = 0.25
"""Other processes' CPU use (in cores) that is still treated as noise when choosing threads."""


def threads_for_load(configured: int, cpus: int, others_cores: float) -> int:
    """Intra-op threads for one call: the cores the other processes leave free, at most ``configured``
    and at least 1. Another process counts as holding a core from ``SPARE_CORE_SLACK`` of one:
    threads = cpus - ceil(others - slack), clamped to [1, configured]."""
    taken = max(0, math.ceil(others_cores - SPARE_CORE_SLACK))
    return max(1, min(configured, cpus - taken))


class CpuThreadPolicy:
    """Chooses torch's intra-op thread count per call from what other processes use of the CPU.

    Why: each of the drift kernel's and the training step's many small ops is a parallel region that
    ends when its slowest thread does. When another process holds one of the cores, the scheduler
    gives our thread on it a time slice only now and then, and at every op the other thread waits for
    it: the call becomes many times slower than with a single thread, which never waits for anyone.
    A thread too few costs at most the parallel speed-up; a thread too many under contention costs
    about a time slice per op. So threads are given up as soon as others take a core.

    How contention is detected: the CPU time the other processes took over the last window, i.e. the
    busy time of the CPUs this process may use (/proc/stat, per CPU, restricted to
    ``os.sched_getaffinity``) minus this process's own CPU time, divided by the window's length.
    Not the load average: it follows a load that starts or stops only over a minute and counts our
    own threads (a two-thread kernel alone reads as load 2). Not the runnable count of one instant:
    it counts whoever is awake at that moment, our own spinning worker threads included. The
    window's CPU accounting measures what the others actually took and excludes us; it costs one
    read of /proc/stat per window (``window_s``), and between readings the last choice is reused.
    Threads of this same process (e.g. other sessions of a server) count as our own: a server that
    runs several trainings at once should configure one thread per training, as the app does.

    The choice never exceeds ``torch.get_num_threads()`` as configured by the caller and is restored
    after the call (also on error); a nested call keeps the outer call's choice; where /proc/stat is
    not readable the configured count is kept. torch's intra-op thread count belongs to the calling
    thread, so concurrent calls in other threads each apply the (shared) estimate to themselves.
    """

    def __init__(
        self,
        read_sample: Callable[[], CpuSample | None] = read_cpu_sample,
        *,
        window_s: float = 0.25,
        cpus: int | None = None,
    ):
        self.read_sample = read_sample
        self.window_s = window_s
        self.cpus = len(_allowed_cpus()) if cpus is None else cpus
        self.others_cores = 0.0  # the latest estimate (cores the other processes used)
        self._sample = read_sample()
        self._lock = threading.Lock()  # one reading of the clocks at a time
        self._local = threading.local()  # per thread: nesting depth, fixed

    def estimate(self) -> float:
        """Cores the other processes used over the last window (refreshed when the window has passed)."""
        previous = self._sample
        if previous is not None and time.monotonic() - previous.wall_s < self.window_s:
            return self.others_cores
        with self._lock:
            if self._sample is not previous:  # another thread has just refreshed it
                return self.others_cores
            now = self.read_sample()
            if now is not None:
                if previous is not None and now.wall_s > previous.wall_s:
                    others = (now.busy_s - previous.busy_s) - (now.own_s - previous.own_s)
                    self.others_cores = max(0.0, others / (now.wall_s - previous.wall_s))
                self._sample = now
        return self.others_cores

    def choose(self, configured: int) -> int:
        """The thread count for one call when ``configured`` threads are set."""
        if configured <= 1:
            return configured
        return threads_for_load(configured, self.cpus, self.estimate())

    @contextmanager
    def applied(self) -> Iterator[int]:
        """Run the body with the chosen thread count in the calling thread; yields it."""
        local = self._local
        depth = getattr(local, "depth", 0)
        if depth or getattr(local, "fixed", False):  # nested (the outer choice holds) or fixed
            local.depth = depth + 1
            try:
                yield torch.get_num_threads()
            finally:
                local.depth = depth
            return
        configured = torch.get_num_threads()
        chosen = self.choose(configured)
        if chosen != configured:
            torch.set_num_threads(chosen)
        local.depth = 1
        try:
            yield chosen
        finally:
            local.depth = 0
            if torch.get_num_threads() != configured:
                torch.set_num_threads(configured)

    @contextmanager
    def fixed(self) -> Iterator[None]:
        """In this thread, calls keep the configured thread count (the behaviour without the policy)."""
        before = getattr(self._local, "fixed", False)
        self._local.fixed = True
        try:
            yield
        finally:
            self._local.fixed = before


CPU_THREADS = CpuThreadPolicy()
"""The process's policy, used by :func:`adaptive_cpu_threads`."""


@contextmanager
def adaptive_cpu_threads(device: torch.device | str = "cpu") -> Iterator[None]:
    """For a call on ``device``: on the CPU, :meth:`CpuThreadPolicy.applied` of :data:`CPU_THREADS`;
    on other devices nothing changes."""
    if torch.device(device).type != "cpu":
        yield
        return
    with CPU_THREADS.applied():
        yield


def fixed_cpu_threads():
    """Context: in this thread, keep the configured thread count (benchmarks compare against it)."""
    return CPU_THREADS.fixed()
