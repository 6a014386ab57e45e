"""Drift kernel benchmark suite: one command, one table (``make bench``).

    python -m benchmarks.run_all [--quick] [--device auto|cpu|cuda] [--repeats 7] [--threads T]
                                 [--compile] [--no-memory] [--no-playground] [--no-contention]
                                 [--only NAME] [--markdown FILE]

What it measures, side by side in one run (timings interleaved round-robin, medians of repeats):

* ``drifting_field`` (the fast path) against ``drifting_field_reference`` (the literal Algorithm 2) and
  against the floor, one ``torch.exp`` over a tensor of the same N x (N+M) shape (N = M, D = 2 and
  512; at D = 512 also against the two FLOP-bound matmuls the algorithm needs, [N,D]x[D,N+M] and
  [N,N+M]x[N+M,D]).
* peak memory of each call (process VmHWM reset before each call; on CUDA max_memory_allocated).
* ``lookahead_field`` with K = 0, 1, 2, 4 against (K+1) x one ``drifting_field`` call.
* N = 16384, D = 2 in a fresh subprocess: its max RSS (the memory target) and time.
* optionally (``--compile``) the torch.compile path (``drifting_field(..., compile=True)``): its
  first-call (compile) cost and steady state.
* playground training speed: steps per second of the default model at N = 512 and of the paper's
  3x256 preset at N = 512 and 2048 (on a GPU: N = 4096).
* a shared CPU (issue 14): ``drifting_field``, ``lookahead_field`` (K = 1) and a training step at
  N = 2048 against the naive form, with 0, 1 and 2 busy processes (``while True: pass``) beside them,
  started and killed by the benchmark; each case times all its variants interleaved, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from unittest import mock

import torch

import drift_core.lookahead as lookahead_module
from drift_core import runtime
from drift_core.config import ExperimentConfig, ModelConfig
from drift_core.drift import compiled_drifting_field, drifting_field, drifting_field_reference
from drift_core.lookahead import lookahead_field
from drift_core.process import libc
from drift_core.train import Trainer

FULL_N = (256, 512, 1024, 2048, 4096, 16384)
QUICK_N = (256, 512, 1024, 2048)
TAU = {2: 0.05, 512: 1.0}  # D = 512: tau of the order of the distance spread (randn points: d ~ 32 +- 1)
NAIVE_MAX_ENTRIES = 1 << 25  # the naive form holds ~8 full N x 2N matrices: 1 GB at 32 Mi entries
D512_MAX_N = 4096  # D = 512 at N = 16384 is ~1 TFLOP of matmuls: minutes on 2 cores, not run


# ---- measurement helpers -------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _vm_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_extra_mb(fn, device: torch.device) -> float:
    """Peak memory of one call above what was live before it (MB). CUDA: max_memory_allocated.
    CPU: the process's VmHWM, reset just before the call, after glibc was told to hand every large
    block back to the OS (mallopt + malloc_trim; see ``_exact_malloc``), so RSS tracks live tensors."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    libc = _exact_malloc()
    if libc is not None:
        libc.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return float("nan")
    before = _vm_rss_mb()
    fn()
    return _vm_hwm_mb() - before


def _exact_malloc():
    """glibc: serve allocations >= 64 KB by mmap and unmap them on free (no dynamic threshold), so
    that RSS reflects live memory. Called only in the memory child process (it slows allocation)."""
    c = libc()
    if c is not None and hasattr(c, "mallopt"):
        c.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        c.mallopt(-1, 64 * 1024)  # M_TRIM_THRESHOLD
    return c


_PEAK_CHILD = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[2])
from benchmarks.run_all import _exact_malloc, _points, peak_extra_mb, TAU
from drift_core.drift import drifting_field, drifting_field_reference
_exact_malloc()
torch.set_num_threads(int(sys.argv[3]))
out = {}
dev = torch.device("cpu")
for method, n, d in json.loads(sys.argv[1]):
    x, y = _points(n, d, dev)
    fn = (lambda: drifting_field(x, y, tau=TAU[d])) if method == "fast" else (lambda: drifting_field_reference(x, y, tau=TAU[d]))
    with torch.no_grad():
        out[f"{method},{n},{d}"] = peak_extra_mb(fn, dev)
print(json.dumps(out))
"""


def measure_peaks(configs: list[tuple[str, int, int]], device: torch.device) -> dict[tuple, float]:
    """Peak extra MB of each (method, n, d) call: on CPU in one fresh child process (exact malloc)."""
    if device.type == "cuda" or not configs:
        return {}
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, json.dumps(configs), os.getcwd(), str(torch.get_num_threads())],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print("  peak-memory child failed: " + proc.stderr.strip()[-300:], flush=True)
        return {}
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return {tuple(int(v) if v.isdigit() else v for v in k.split(",")): mb for k, mb in raw.items()}


def interleaved_medians(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per function, timing them round-robin (in a shuffled order each round) so
    that load changes hit all alike.
    One warm-up call each; slow functions (> 2 s) get at most 3 repeats."""
    first = {}
    for name, fn in fns.items():
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        first[name] = time.perf_counter() - t
    reps = repeats if max(first.values()) < 2.0 else min(repeats, 3)
    times = {name: [] for name in fns}
    order = list(fns)
    shuffle = random.Random(0).shuffle
    for _ in range(reps):
        shuffle(order)  # no function always runs first (or right after the same neighbour)
        for name in order:
            fn = fns[name]
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def _points(n: int, d: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g) * 1.1 + 0.3
    return x.to(device), y.to(device)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])
        print("  " + " | ".join(str(c) for c in cells), flush=True)

    def markdown(self) -> str:
        out = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e3:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


# ---- the benchmarks --------------------------------------------------------------------------


def bench_kernel(ns, ds, repeats, device) -> Table:
    table = Table(
        "drifting_field vs naive Algorithm 2 vs floor (N = M, ms, medians; all at the configured threads)",
        [
            "D",
            "N",
            "fast ms",
            "naive ms",
            "floor ms (exp)",
            "matmul ms",
            "naive / fast",
            "fast / floor",
            "fast / matmul",
            "fast peak MB",
            "naive peak MB",
        ],
    )
    print(table.title, flush=True)
    pending, peak_configs, cuda_peaks = [], [], {}
    for d in ds:
        for n in ns:
            if d > 3 and n > D512_MAX_N:
                pending.append((d, n, "not run (~1 TFLOP of matmuls on 2 cores)"))
                continue
            if n * 2 * n > (1 << 28) and device.type == "cpu":
                pending.append((d, n, "see the memory-bounded table"))
                continue
            x, y = _points(n, d, device)
            tau = TAU[d]
            # every column at the configured thread count (like for like; the per-call choice under
            # contention has its own table, bench_contention)
            fns = {"fast": _fixed(lambda: drifting_field(x, y, tau=tau))}
            run_naive = n * 2 * n <= NAIVE_MAX_ENTRIES
            if run_naive:
                fns["naive"] = lambda: drifting_field_reference(x, y, tau=tau)
            logits = torch.randn(n, 2 * n, device=device)
            exp_out = torch.empty_like(logits)
            # into a preallocated tensor: a fresh result would add the first-touch page faults of
            # its memory on the CPU, a cost of the allocator, not of the exp
            fns["floor"] = lambda: torch.exp(logits, out=exp_out)
            if d > 3:
                targets = torch.cat([y, x])
                a = torch.rand(n, 2 * n, device=device)
                fns["matmul"] = lambda: (x @ targets.T, a @ targets)
            with torch.no_grad():
                t = interleaved_medians(fns, repeats, device)
                if run_naive:
                    v_naive = drifting_field_reference(x, y, tau=tau).v
                v_fast = drifting_field(x, y, tau=tau).v
                if device.type == "cuda":
                    cuda_peaks[("fast", n, d)] = peak_extra_mb(lambda: drifting_field(x, y, tau=tau), device)
                    if run_naive:
                        cuda_peaks[("naive", n, d)] = peak_extra_mb(
                            lambda: drifting_field_reference(x, y, tau=tau), device
                        )
            if run_naive:
                rel = float((v_fast - v_naive).norm() / v_naive.norm())
                assert rel < 1e-3, f"fast and naive disagree at D={d} N={n}: {rel}"
                peak_configs.append(("naive", n, d))
            peak_configs.append(("fast", n, d))
            logits = exp_out = None  # free the floor's buffers before the next size allocates its own
            pending.append((d, n, t))
            print(
                f"  D={d} N={n}: fast {_ms(t['fast'])} ms, naive {_ms(t.get('naive'))} ms, floor {_ms(t['floor'])} ms",
                flush=True,
            )
    peaks = measure_peaks(peak_configs, device) or cuda_peaks
    mb = lambda key: "—" if key not in peaks else f"{peaks[key]:.0f}"  # noqa: E731
    for d, n, t in pending:
        if isinstance(t, str):
            table.add(d, n, t, *(["—"] * 8))
            continue
        table.add(
            d,
            n,
            _ms(t["fast"]),
            _ms(t.get("naive")),
            _ms(t["floor"]),
            _ms(t.get("matmul")),
            _ratio(t.get("naive"), t["fast"]),
            _ratio(t["fast"], t["floor"]),
            _ratio(t["fast"], t.get("matmul")),
            mb(("fast", n, d)),
            mb(("naive", n, d)),
        )
    return table


def bench_lookahead(ns, ks, repeats, device) -> Table:
    table = Table(
        "lookahead_field (D = 2, tau = 0.05) vs (K+1) x drifting_field",
        ["N", "K", "lookahead ms", "drifting_field ms", "lookahead / ((K+1) x drifting_field)"],
    )
    print(table.title + "\n  " + " | ".join(table.columns), flush=True)
    for n in ns:
        x, y = _points(n, 2, device)
        fns = {"drift": lambda: drifting_field(x, y, tau=0.05)}
        for k in ks:
            fns[f"K{k}"] = lambda k=k: lookahead_field(x, y, K=k, tau=0.05)
        with torch.no_grad():
            t = interleaved_medians(fns, repeats, device)
        for k in ks:
            table.add(n, k, _ms(t[f"K{k}"]), _ms(t["drift"]), f"{t[f'K{k}'] / ((k + 1) * t['drift']):.2f}")
    return table


_MEMORY_CHILD = r"""
import json, resource, sys, time, torch
from drift_core.drift import drifting_field
n, threads, block_rows = int(sys.argv[1]), int(sys.argv[2]), (None if sys.argv[3] == "auto" else int(sys.argv[3]))
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
x = torch.randn(n, 2, generator=g); y = torch.randn(n, 2, generator=g) * 1.1 + 0.3
t = time.perf_counter()
with torch.no_grad():
    f = drifting_field(x, y, tau=0.05, block_rows=block_rows)
seconds = time.perf_counter() - t
torch.save(f.v, sys.argv[4])
# VmHWM of this process's own address space; not getrusage's ru_maxrss, which Linux carries over
# execve from the parent that spawned us (it reported the benchmark parent's peak, not ours)
try:
    hwm_mb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    hwm_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "finite": bool(torch.isfinite(f.v).all()), "max_rss_mb": hwm_mb}))
"""


def bench_memory(n: int, threads: int, tmpdir: str) -> Table:
    """N x N+N at D = 2 in fresh processes: default (automatic) blocks and explicit block_rows=1000;
    max RSS of each child process (torch, Python and the inputs included); the two results compared."""
    table = Table(
        f"memory-bounded path: N = M = {n}, D = 2, tau = 0.05, fresh process each",
        ["blocks", "seconds", "max RSS MB (process)", "finite", "rel. diff vs auto"],
    )
    print(table.title + "\n  " + " | ".join(table.columns), flush=True)
    results = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    for blocks in ("auto", "1000"):
        out = os.path.join(tmpdir, f"v_{blocks}.pt")
        proc = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(n), str(threads), blocks, out],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            table.add(blocks, "failed", proc.stderr.strip()[-200:], "—", "—")
            continue
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        rss_mb = info["max_rss_mb"]  # the child process's own peak RSS (its VmHWM at the end)
        results[blocks] = torch.load(out, weights_only=True)
        diff = (
            "—"
            if blocks == "auto"
            else f"{float((results[blocks] - results['auto']).norm() / results['auto'].norm()):.1e}"
        )
        table.add(blocks, f"{info['seconds']:.1f}", f"{rss_mb:.0f}", info["finite"], diff)
    return table


def bench_compile(n: int, repeats: int, device) -> Table:
    table = Table(
        f"torch.compile path (optional; drifting_field(..., compile=True)), N = M = {n}, D = 2",
        ["first call s (compile)", "compiled ms", "eager ms", "eager / compiled", "rel. diff"],
    )
    print(table.title + "\n  " + " | ".join(table.columns), flush=True)
    x, y = _points(n, 2, device)
    with torch.no_grad():
        _sync(device)
        t = time.perf_counter()
        try:
            v_c = compiled_drifting_field(x, y, tau=0.05).v
        except Exception as err:  # no C++ compiler, unsupported backend, ...
            table.add(f"failed: {type(err).__name__}: {str(err)[:120]}", "—", "—", "—", "—")
            return table
        _sync(device)
        first = time.perf_counter() - t
        tm = interleaved_medians(
            {
                "compiled": lambda: compiled_drifting_field(x, y, tau=0.05),
                "eager": lambda: drifting_field(x, y, tau=0.05),
            },
            repeats,
            device,
        )
        v_e = drifting_field(x, y, tau=0.05).v
    table.add(
        f"{first:.1f}",
        _ms(tm["compiled"]),
        _ms(tm["eager"]),
        _ratio(tm["eager"], tm["compiled"]),
        f"{float((v_c - v_e).norm() / v_e.norm()):.1e}",
    )
    return table


def bench_playground(device, steps: int) -> Table:
    table = Table(
        "playground training speed (checkerboard, tau = 0.05, baseline drift, Adam)",
        ["model", "N", "steps/s (median of 5 chunks)", "ms/step"],
    )
    print(table.title + "\n  " + " | ".join(table.columns), flush=True)
    default = ExperimentConfig().model
    paper = ModelConfig(noise_dim=32, width=256, depth=3)
    cases = [
        ("default " + _model_name(default), default, 512),
        ("paper " + _model_name(paper), paper, 512),
        ("paper " + _model_name(paper), paper, 2048),
    ]
    if device.type == "cuda":
        cases.append(("paper " + _model_name(paper), paper, 4096))
    for name, model, n in cases:
        cfg = ExperimentConfig(model=model).with_values({"batch_size": n, "device": device.type})
        trainer = Trainer(cfg)
        trainer.run(3)
        per_chunk = max(1, steps // 5)
        rates = []
        for _ in range(5):
            t = time.perf_counter()
            trainer.run(per_chunk)
            _sync(device)
            rates.append(per_chunk / (time.perf_counter() - t))
        rate = statistics.median(rates)
        table.add(name, n, f"{rate:.1f}", f"{1e3 / rate:.1f}")
    return table


# ---- a shared CPU: busy processes beside the kernel (issue 14) ------------------------------

BUSY_LOOP = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    pass\n"
"""A process that keeps one core busy until it is killed (or its parent is gone: no orphan is left
spinning if the benchmark itself is killed)."""

CONTENTION_SETTLE_S = 1.0
"""Seconds between starting the busy processes and the first timed call (the thread policy's window
then sees them, as it would in a long-running program)."""


@contextmanager
def busy_processes(count: int):
    """``count`` busy processes beside this one for the length of the block; always killed after."""
    procs = []
    try:
        for _ in range(count):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(os.getpid())]))
        time.sleep(CONTENTION_SETTLE_S)
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:4])
    except OSError:
        return "—"


def _with_threads(count: int, fn):
    """``fn`` run with ``count`` intra-op threads configured (restored after)."""

    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)

    return run


def _naive(fn):
    """``fn`` with the literal Algorithm 2 in place of the fast kernel wherever lookahead_field (and so
    the trainer's drift) calls drifting_field."""

    def run():
        with mock.patch.object(lookahead_module, "drifting_field", drifting_field_reference):
            return fn()

    return run


def _fixed(fn):
    """``fn`` with the configured thread count on every call (the behaviour before the thread policy)."""

    def run():
        with runtime.fixed_cpu_threads():
            return fn()

    return run


def bench_contention(n: int, repeats: int, busy_counts=(0, 1, 2)) -> Table:
    """Fast vs naive at N = M = ``n``, D = 2, with 0, 1, 2 busy processes beside them (CPU only).

    Per case, interleaved: the fast path as shipped (threads chosen per call); the naive form as it is
    called (the configured threads); the naive form with one thread (its best under load); and, for
    the field and the step, the fast path with the configured threads on every call (before the
    policy). The training step is the paper's MLP 32->256x3->2 on the checkerboard, baseline drift."""
    table = Table(
        f"shared CPU: fast vs naive with busy processes beside them (N = {n}, D = 2, tau = 0.05; ms, medians)",
        [
            "busy processes",
            "what",
            "fast ms",
            "naive ms",
            "naive / fast",
            "naive 1 thread ms",
            "naive 1 thread / fast",
            "fast, configured threads ms (before)",
            "threads chosen",
            "others' CPU (cores)",
            "loadavg (start -> end)",
        ],
    )
    print(table.title + "\n  " + " | ".join(table.columns), flush=True)
    device = torch.device("cpu")
    x, y = _points(n, 2, device)
    config = ExperimentConfig(model=ModelConfig(noise_dim=32, width=256, depth=3)).with_values(
        {"batch_size": n, "device": "cpu", "dataset": "checkerboard"}
    )
    fast_trainer, naive_trainer = Trainer(config), Trainer(config)
    subjects = {
        "drifting_field": (
            lambda: drifting_field(x, y, tau=0.05),
            lambda: drifting_field_reference(x, y, tau=0.05),
            True,
        ),
        "lookahead_field K=1": (
            lambda: lookahead_field(x, y, K=1, tau=0.05),
            _naive(lambda: lookahead_field(x, y, K=1, tau=0.05)),
            False,
        ),
        "training step": (fast_trainer.step, _naive(naive_trainer.step), True),
    }
    configured = torch.get_num_threads()
    for busy in busy_counts:
        with busy_processes(busy):
            load_start = _loadavg()
            rows = []
            for what, (fast, naive, before) in subjects.items():
                fns = {"fast": fast, "naive": naive, "naive1": _with_threads(1, naive)}
                if before:
                    fns["fixed"] = _fixed(fast)
                with torch.no_grad() if what != "training step" else nullcontext():
                    t = interleaved_medians(fns, repeats, device)
                chosen = runtime.CPU_THREADS.choose(configured)
                rows.append((what, t, chosen, runtime.CPU_THREADS.others_cores))
            load_end = _loadavg()
        for what, t, chosen, others in rows:
            table.add(
                busy,
                what,
                _ms(t["fast"]),
                _ms(t["naive"]),
                _ratio(t["naive"], t["fast"]),
                _ms(t["naive1"]),
                _ratio(t["naive1"], t["fast"]),
                _ms(t.get("fixed")),
                f"{chosen} of {configured}",
                f"{others:.2f}",
                f"{load_start} -> {load_end}",
            )
    return table


def bench_thread_policy_cost(calls: int = 20000) -> Table:
    """What the per-call thread choice adds to every call: entering and leaving the policy (the
    estimate cached, as between readings) and one reading of /proc/stat (once per window)."""
    table = Table(
        "cost of the per-call thread choice (the fast path's only addition on a quiet machine)",
        ["enter + leave, us per call", "one /proc/stat reading, us (once per window)", "window s"],
    )
    policy = runtime.CPU_THREADS
    start = time.perf_counter()
    for _ in range(calls):
        with policy.applied():
            pass
    per_call = (time.perf_counter() - start) / calls
    start = time.perf_counter()
    for _ in range(calls // 10):
        runtime.read_cpu_sample()
    per_read = (time.perf_counter() - start) / (calls // 10)
    table.add(f"{per_call * 1e6:.1f}", f"{per_read * 1e6:.1f}", policy.window_s)
    return table


def _model_name(m) -> str:
    return f"MLP {m.noise_dim}->{m.width}x{m.depth}->2"


def machine_description(device: torch.device) -> str:
    lines = [
        f"- python {platform.python_version()}, torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}"
    ]
    try:
        lines.append(
            f"- nproc = {os.cpu_count()}; "
            + subprocess.run(["bash", "-c", "lscpu | grep 'Model name'"], capture_output=True, text=True).stdout.strip()
        )
    except OSError:
        pass
    try:
        lines.append(f"- load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (the CPU is shared)")
    except OSError:
        pass
    if device.type == "cuda":
        lines.append(f"- device: {torch.cuda.get_device_name()}")
    else:
        lines.append("- device: CPU" + ("" if torch.cuda.is_available() else " (no GPU visible)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small subset (N <= 2048, memory at N = 8192)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true", help="also benchmark the optional torch.compile path")
    parser.add_argument("--no-memory", action="store_true", help="skip the N = 16384 subprocess")
    parser.add_argument("--no-playground", action="store_true", help="skip the training-speed table")
    parser.add_argument(
        "--no-contention", action="store_true", help="skip the shared-CPU table (busy processes beside the kernel)"
    )
    parser.add_argument(
        "--only", choices=("kernel", "lookahead", "memory", "compile", "playground", "contention"), default=None
    )
    parser.add_argument("--markdown", default=None, help="also write the tables as Markdown to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = runtime.select_device(args.device)
    ns = QUICK_N if args.quick else FULL_N
    command = "python -m benchmarks.run_all " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# {command.strip()}\n{machine_description(device)}\n", flush=True)
    tables = []
    want = lambda name: args.only in (None, name)  # noqa: E731
    started = time.perf_counter()
    if want("kernel"):
        tables.append(bench_kernel(ns, (2, 512) if not args.quick else (2,), args.repeats, device))
        if args.quick:
            tables.append(bench_kernel((256, 512, 1024), (512,), args.repeats, device))
    if want("lookahead"):
        tables.append(bench_lookahead((512, 2048), (0, 1, 2, 4), args.repeats, device))
    if want("memory") and not args.no_memory and device.type == "cpu":
        with tempfile.TemporaryDirectory() as tmp:
            tables.append(bench_memory(8192 if args.quick else 16384, torch.get_num_threads(), tmp))
    if (want("compile") and args.compile) or args.only == "compile":
        tables.append(bench_compile(2048 if not args.quick else 1024, args.repeats, device))
    if want("playground") and not args.no_playground:
        tables.append(bench_playground(device, 60 if args.quick else 150))
    if want("contention") and not args.no_contention and device.type == "cpu":
        tables.append(bench_contention(2048, 3 if args.quick else args.repeats))
        tables.append(bench_thread_policy_cost())
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f} s", flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(
                f"Command: `{command.strip()}`\n\n{machine_description(device)}\n- suite wall time: {total:.0f} s\n\n"
            )
            f.write("\n\n".join(t.markdown() for t in tables) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
