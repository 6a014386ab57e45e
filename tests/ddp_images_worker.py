"""Run by tests/test_images.py under ``torch.distributed.run --nproc_per_node=2`` (gloo, CPU).

Each rank: (1) computes the DDP gradient of one step and compares it with a single-process trainer's
gradient on the all-gathered (concatenated) batch; (2) trains 3 steps; (3) writes rank{r}.json and its
weights to rank{r}.pt for the test to compare across ranks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from drift_core.images.config import ImageExperimentConfig
from drift_core.images.train import DistContext, ImageTrainer, init_distributed


def main(out: Path) -> None:
    ctx, device = init_distributed("cpu")
    cfg = ImageExperimentConfig().with_values(
        {"batch_size": 6, "positives": 5, "method": "lookahead", "K": 1, "dataset": "demo-digits", "device": "cpu"}
    )
    trainer = ImageTrainer(cfg, device=device, dist=ctx)
    initial = [p.detach().clone() for p in trainer.model.parameters()]
    batch = trainer.draw_batch()
    noise, positives = batch.noise, batch.positives
    trainer.compute_loss(noise, positives).loss.backward()
    ddp_grad = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
    all_noise, all_pos = trainer.gather(noise), trainer.gather(positives)
    single_cfg = cfg.with_values({"batch_size": 12, "positives": 10})
    single = ImageTrainer(single_cfg, device=device, dist=DistContext())
    single.compute_loss(all_noise, all_pos).loss.backward()
    single_grad = torch.cat([p.grad.flatten() for p in single.model.parameters()])
    rel = float((ddp_grad - single_grad).norm() / single_grad.norm())
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.run(3)
    changed = any(not torch.equal(a, b) for a, b in zip(initial, trainer.model.parameters()))
    report = {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "grad_rel_error": rel,
        "changed": changed,
        "noise_differs_across_ranks": not torch.equal(all_noise[:6], all_noise[6:]),
    }
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    torch.save({k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, out / f"rank{ctx.rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
