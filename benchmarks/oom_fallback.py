"""Real GPU out-of-memory fallback check (needs a CUDA GPU; the unit tests fake the error on the CPU).

Caps this process's CUDA memory with ``torch.cuda.set_per_process_memory_fraction`` so that a real
``torch.OutOfMemoryError`` happens inside ``Trainer.step``, then prints what the trainer did:

1. a batch too big for the cap: the step is retried with half the batch until it fits;
2. a cap below even the smallest batch: the run moves to the CPU and goes on.

    python -m benchmarks.oom_fallback [--cap-mb 600] [--batch 32768]
"""

from __future__ import annotations

import argparse
import platform

import torch

from drift_core.config import ExperimentConfig
from drift_core.train import Trainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cap-mb", type=float, default=1024.0, help="CUDA memory cap for case 1")
    parser.add_argument("--batch", type=int, default=65536, help="batch size that does not fit the cap")
    parser.add_argument("--width", type=int, default=1024, help="generator width (activations dominate memory)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    total = torch.cuda.get_device_properties(0).total_memory
    print(
        f"device: {torch.cuda.get_device_name(0)}, {total / 2**30:.0f} GiB; torch {torch.__version__}; {platform.node()}"
    )
    cfg = ExperimentConfig().with_values({"batch_size": args.batch, "device": "cuda", "width": args.width})

    # 1. batch too big for the cap -> halved until it fits, on the GPU
    torch.cuda.set_per_process_memory_fraction(args.cap_mb * 2**20 / total)
    t = Trainer(cfg)
    r = t.step()
    print("\ncase | batch before | batch after | device after | step | loss finite | message")
    print("--- | --- | --- | --- | --- | --- | ---")
    print(
        f"batch too big for a {args.cap_mb:.0f} MB cap | {args.batch} | {t.config.train.batch_size} | {t.device} | "
        f"{r.step} | {r.loss == r.loss} | {r.message[:160]}"
    )
    ok1 = (
        r.step == 1
        and t.config.train.batch_size < args.batch
        and t.device.type == "cuda"
        and "out of memory" in r.message
    )
    r2 = t.step()
    ok1 &= r2.message == "" and r2.step == 2
    del t
    torch.cuda.empty_cache()

    # 2. a cap below what even the smallest batch needs -> the run moves to the CPU
    torch.cuda.set_per_process_memory_fraction(1.0)
    t = Trainer(cfg.with_values({"batch_size": 256, "width": 2048}))  # first backward/Adam step need ~100 MB more
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + 2**20) / total)  # 1 MiB headroom
    r = t.step()
    print(
        f"no room even for batch {Trainer.OOM_MIN_BATCH} | 256 | {t.config.train.batch_size} | {t.device} | "
        f"{r.step} | {r.loss == r.loss} | {r.message[-200:]}"
    )
    ok2 = r.step == 1 and t.device.type == "cpu" and "continuing on the CPU" in r.message
    ok2 &= not t.step().diverged and all(p.device.type == "cpu" for p in t.model.parameters())
    print("\nRESULT:", "PASS" if ok1 and ok2 else "FAIL")
    return 0 if ok1 and ok2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
