"""GPU check of the captured training step (issue 14, item 3), prepared to run in one call (< 5 minutes).

    python -m benchmarks.gpu_check --out $OUT/gpu_check.md                  # on a lent GPU (N = 4096)
    python -m benchmarks.gpu_check --also-compile --out $OUT/gpu_check.md   # + torch.compile(mode="reduce-overhead"),
                                                                            #   whose first call compiles (longer)
    python -m benchmarks.gpu_check --device cpu --n 128 --steps 12          # the same script on the CPU, tiny sizes

Checks, each PASS or FAIL (the exit status is 1 if any fails):

1. the captured step is used: one capture, no disabled reason, for the baseline (K = 0) and K = 1;
2. the same trajectory: 20 steps plain vs captured from one seed on the same batches agree (losses to
   1e-3 relative, weights to 1e-3 in relative norm; the captured drift is the dense log-domain form,
   equal to fp tolerance, not bit for bit);
3. a new batch size captures again, an lr change does not, and a loaded state trains on like the plain
   step;
4. divergence: an overflowing weight gives the plain step's diverged record (same message, no update),
   then DivergedError;
5. a capture that fails falls back to the plain step.

Timing (the paper's MLP 32->256x3->2, checkerboard, tau = 0.05, Adam 1e-3, batch N): steps/s of the
plain and the captured step for K = 0 and K = 1, timed in interleaved chunks (median), each also with
``undo_updates = False`` (the per-step state copy kept for the out-of-memory undo is on by default off
the CPU; this shows its cost). With ``--also-compile`` the captured region is also run through
``torch.compile(mode="reduce-overhead")`` (first-call cost and steps/s), the alternative the issue asks
to compare.

On the CPU no CUDA graph can be captured: the "captured" arm replays the region eagerly (the same step
logic and drift kernel, no graph), so the checks run and the script is known to work; its timings say
nothing about a GPU.
"""

from __future__ import annotations

import argparse
import copy
import platform
import random
import statistics
import sys
import time

import torch

from drift_core._graph_step import CapturedStep, compiled_capture, cuda_graph_capture, eager_capture
from drift_core.config import ExperimentConfig, ModelConfig
from drift_core.train import DivergedError, Trainer

PAPER_MLP = ModelConfig(noise_dim=32, width=256, depth=3)


def _config(n: int, K: int, device: str) -> ExperimentConfig:
    return ExperimentConfig(model=PAPER_MLP).with_values(
        {"batch_size": n, "K": K, "dataset": "checkerboard", "tau": 0.05, "lr": 1e-3, "device": device}
    )


def _trainer(config: ExperimentConfig, captured: bool, capture) -> Trainer:
    trainer = Trainer(config)
    trainer.capture_cuda_graph = captured
    trainer._captured = CapturedStep(capture)  # the private module under test: its capture function is chosen here
    return trainer


def _weights(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten().double().cpu() for p in trainer.model.parameters()])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


class Checks:
    def __init__(self):
        self.rows: list[tuple[str, bool, str]] = []

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.rows.append((name, bool(ok), detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""), flush=True)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.rows)


def run_checks(n: int, device: str, capture, checks: Checks) -> None:
    for K in (0, 1):
        plain = _trainer(_config(n, K, device), False, capture)
        captured = _trainer(_config(n, K, device), True, capture)
        a, b = plain.run(20), captured.run(20)
        info = captured._captured
        checks.add(
            f"K={K}: captured step used",
            info.captures == 1 and not info.disabled_reason,
            f"captures={info.captures}, disabled_reason={info.disabled_reason!r}",
        )
        loss_rel = max(abs(x.loss - y.loss) / max(abs(x.loss), 1e-30) for x, y in zip(a, b))
        weight_rel = _rel(_weights(captured), _weights(plain))
        checks.add(
            f"K={K}: 20 steps plain vs captured agree",
            loss_rel < 1e-3
            and weight_rel < 1e-3
            and [r.step for r in a] == [r.step for r in b]
            and len(b[-1].drift_rms) == K + 1,
            f"max loss rel. diff {loss_rel:.1e}, weights rel. diff {weight_rel:.1e}",
        )

    config = _config(n, 0, device)
    plain, captured = _trainer(config, False, capture), _trainer(config, True, capture)
    for t in (plain, captured):
        t.run(3)
        t.update(config.with_values({"lr": 3e-3}))
        t.run(3)
    lr_ok = captured._captured.captures == 1
    for t in (plain, captured):
        t.update(config.with_values({"lr": 3e-3, "batch_size": max(8, n // 2)}))
        t.run(3)
    checks.add(
        "an lr change keeps the graph, a new batch size captures again",
        lr_ok and captured._captured.captures == 2 and captured.last_record.batch_size == max(8, n // 2),
        f"captures={captured._captured.captures}",
    )
    source = Trainer(config)
    source.run(4)
    for t in (plain, captured):
        t.load_state_dict(copy.deepcopy(source.state_dict()))
    after_plain, after_captured = plain.step(), captured.step()
    checks.add(
        "a loaded state trains on like the plain step",
        after_plain.step == after_captured.step == 5
        and abs(after_plain.loss - after_captured.loss) <= 1e-3 * abs(after_plain.loss),
        f"loss {after_plain.loss:.6g} vs {after_captured.loss:.6g}",
    )

    records, unchanged, raised = [], [], []
    for t in (_trainer(config, False, capture), _trainer(config, True, capture)):
        t.run(2)
        with torch.no_grad():
            t.model.head.weight.mul_(1e38)
        before = _weights(t)
        records.append(t.step())
        unchanged.append(torch.equal(before, _weights(t)))
        try:
            t.step()
            raised.append(False)
        except DivergedError:
            raised.append(True)
    checks.add(
        "divergence: same record as the plain step, no update, then DivergedError",
        all(r.diverged for r in records)
        and records[0].message == records[1].message
        and all(unchanged)
        and all(raised),
        f"message {records[1].message!r}",
    )

    def failing(region):
        raise RuntimeError("forced capture failure")

    plain, forced = _trainer(config, False, capture), _trainer(config, True, failing)
    a, b = plain.run(3), forced.run(3)
    loss_rel = max(abs(x.loss - y.loss) / max(abs(x.loss), 1e-30) for x, y in zip(a, b))
    checks.add(
        "a failed capture falls back to the plain step",  # the same plain step (GPU kernels need not be bitwise repeatable)
        forced._captured.disabled_reason.startswith("RuntimeError")
        and loss_rel < 1e-5
        and forced._captured.captures == 0,
        f"{forced._captured.disabled_reason}; max loss rel. diff {loss_rel:.1e}",
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_arms(arms: dict[str, Trainer], steps: int, device: str, rounds: int = 5) -> dict[str, float]:
    """Median steps/s per arm over ``rounds`` chunks of steps // rounds steps, arms in a shuffled order
    each round (so load changes hit all alike)."""
    chunk = max(1, steps // rounds)
    for t in arms.values():
        t.run(3)  # capture and warm-up
    rates = {name: [] for name in arms}
    order = list(arms)
    for _ in range(rounds):
        random.Random(len(rates[order[0]])).shuffle(order)
        for name in order:
            _sync(device)
            start = time.perf_counter()
            arms[name].run(chunk)
            _sync(device)
            rates[name].append(chunk / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in rates.items()}


def run_timing(n: int, steps: int, device: str, capture, also_compile: bool) -> list[str]:
    lines = [
        "| K | plain steps/s | captured steps/s | captured / plain | plain, no undo copy | captured, no undo copy |",
        "|---|---|---|---|---|---|",
    ]
    for K in (0, 1):
        config = _config(n, K, device)
        arms = {"plain": _trainer(config, False, capture), "captured": _trainer(config, True, capture)}
        for name in ("plain", "captured"):
            arms[name + "_no_undo"] = _trainer(config, name == "captured", capture)
            arms[name + "_no_undo"].undo_updates = False
        rate = time_arms(arms, steps, device)
        reason = arms["captured"]._captured.disabled_reason
        note = f" (capture off: {reason})" if reason else ""
        lines.append(
            f"| {K} | {rate['plain']:.1f} | {rate['captured']:.1f}{note} | {rate['captured'] / rate['plain']:.2f} | "
            f"{rate['plain_no_undo']:.1f} | {rate['captured_no_undo']:.1f} |"
        )
        print("  " + lines[-1], flush=True)
    if also_compile:
        lines += [
            "",
            "| K | compiled (reduce-overhead) first step s | compiled steps/s | plain steps/s | compiled / plain |",
            "|---|---|---|---|---|",
        ]
        for K in (0, 1):
            config = _config(n, K, device)
            compiled, plain = _trainer(config, True, compiled_capture), _trainer(config, False, capture)
            start = time.perf_counter()
            try:
                compiled.step()
                _sync(device)
            except Exception as err:  # report any compile failure instead of stopping the check
                lines.append(f"| {K} | failed: {type(err).__name__}: {str(err)[:120]} | — | — | — |")
                continue
            first = time.perf_counter() - start
            reason = compiled._captured.disabled_reason
            rate = time_arms({"compiled": compiled, "plain": plain}, steps, device)
            lines.append(
                f"| {K} | {first:.1f}{' (capture off: ' + reason + ')' if reason else ''} | {rate['compiled']:.1f} | "
                f"{rate['plain']:.1f} | {rate['compiled'] / rate['plain']:.2f} |"
            )
            print("  " + lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--n", type=int, default=4096, help="batch size N (default 4096)")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per arm (default 300)")
    parser.add_argument("--check-n", type=int, default=None, help="batch size of the checks (default: min(N, 1024))")
    parser.add_argument("--also-compile", action="store_true", help="also time torch.compile(mode='reduce-overhead')")
    parser.add_argument("--out", default=None, help="also write the report (Markdown) to this file")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is visible; run with --device cpu (tiny sizes) to check the script itself")
    capture = cuda_graph_capture if args.device == "cuda" else eager_capture
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "CPU"
    command = "python -m benchmarks.gpu_check " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        f"Command: `{command.strip()}`",
        "",
        f"- device: {args.device} ({name}); torch {torch.__version__}; python {platform.python_version()}",
        f"- capture: {'CUDA graph' if args.device == 'cuda' else 'eager replay of the region (CPU: no graph)'}",
        f"- N = {args.n} for the timing, {args.check_n or min(args.n, 1024)} for the checks; {args.steps} timed steps per arm",
    ]
    print("\n".join(header), flush=True)
    started = time.perf_counter()
    checks = Checks()
    print("checks:", flush=True)
    run_checks(args.check_n or min(args.n, 1024), args.device, capture, checks)
    print("timing:", flush=True)
    timing = run_timing(args.n, args.steps, args.device, capture, args.also_compile)
    total = time.perf_counter() - started
    report = header + ["", "| check | result | detail |", "|---|---|---|"]
    report += [f"| {name} | {'PASS' if ok else 'FAIL'} | {detail} |" for name, ok, detail in checks.rows]
    report += ["", f"Steps/s, paper MLP 32->256x3->2, N = {args.n} (median of 5 interleaved chunks):", ""] + timing
    report += ["", f"Result: {'PASS' if checks.passed else 'FAIL'}; wall time {total:.0f} s"]
    print(f"\nResult: {'PASS' if checks.passed else 'FAIL'}; wall time {total:.0f} s", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(report) + "\n")
    return 0 if checks.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
