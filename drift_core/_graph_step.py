"""The toy training step replayed from a CUDA graph (private; used by :class:`drift_core.train.Trainer`).

The plain step launches one kernel per op and reads a value back to the host at every check (outputs
finite? loss finite? each gradient finite?), and the eager drift kernel reads values back to make its
data-dependent choices. At the toy's sizes the GPU then spends its time waiting for the host. Here the
part of the step that does not touch the optimizer is captured once into a CUDA graph and replayed:

    region():  x = model(noise)                            [N, 2]   static input ``noise`` [N, noise_dim]
               loss, field = drifting_loss(x, positives)   the drift by the graph-safe dense kernel
               loss.backward()                             gradients into static buffers
               summary = [x finite, loss finite, gradients finite, loss, raw RMS of each drift term]

One replay launches all of it; one copy of ``summary`` to the host brings the checks and the record's
numbers. Then, exactly as in the plain step: on a failed check the run is marked diverged and no update
is applied; otherwise the state is saved for an out-of-memory undo, the gradients are handed to the
parameters and the optimizer steps eagerly. The optimizer stays outside the graph, so learning-rate
changes, loaded states and its state dict behave as in the plain step.

When it applies (``Trainer.capture_cuda_graph``: None means on CUDA only): anything the graph baked in
(batch size, noise size, drift settings, the parameters' storage, the device) is part of its key, and a
change captures again. Any failure to capture (no CUDA graph support, out of memory, an op that reads
back to the host, a replay that disagrees with the eager region it was captured from) disables it for
that trainer, which then runs the plain step; the reason is kept in :attr:`CapturedStep.disabled_reason`.
The drift of the captured step equals the plain step's to floating-point tolerance (the dense
log-domain form of the same algorithm), not bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from . import _drift_kernel
from .loss import drifting_loss
from .records import Batch, StepRecord

if TYPE_CHECKING:
    from .train import Trainer

Outputs = tuple[Tensor, list[Tensor]]
"""What one run of the region gives: the summary [3 + terms] and the gradient of each parameter."""

Region = Callable[[], Outputs]
Capture = Callable[[Region], Region]
"""Turns the region into its replay: called once per key, the result is called once per step."""

WARMUP_RUNS = 3
"""Eager runs of the region on a side stream before capture (lazy initialisation of cuBLAS and autograd
must not happen inside the capture)."""

CHECK_RTOL = 1e-4
"""The first replay must match an eager run of the region to this relative tolerance (loss, RMS, gradients)."""


def cuda_graph_capture(region: Region) -> Region:
    """Capture ``region`` into a ``torch.cuda.CUDAGraph``; the result replays it and returns the
    region's static outputs (overwritten by each replay)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP_RUNS):
            region()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = region()

    def replay() -> Outputs:
        graph.replay()
        return outputs

    return replay


def compiled_capture(region: Region) -> Region:
    """``torch.compile(region, mode="reduce-overhead")``: the alternative the issue asks to compare
    (compiled once per shape, CUDA graphs by torch's cudagraph trees). Not the default: it is measured by
    ``benchmarks/gpu_check.py --also-compile``."""
    return torch.compile(region, mode="reduce-overhead")


def eager_capture(region: Region) -> Region:
    """No capture: every replay runs the region eagerly. For tests of the step logic on the CPU and for
    cross-checks; on any device it gives what the captured graph should give."""
    return region


class CaptureCheckError(RuntimeError):
    """The first replay of a captured graph did not reproduce the eager region."""


class CapturedStep:
    """The captured training step of one trainer (see the module docstring).

    Args:
        capture: how the region becomes a replay (:func:`cuda_graph_capture` by default).
    """

    def __init__(self, capture: Capture = cuda_graph_capture):
        self.capture = capture
        self.disabled_reason = ""  # why capture is off for good in this trainer ("" while it is not)
        self.captures = 0  # how many times a graph was captured (a new key captures again)
        self._key: tuple | None = None
        self._replay: Region | None = None
        self._noise: Tensor | None = None
        self._positives: Tensor | None = None

    def applies(self, trainer: Trainer) -> bool:
        """Whether :meth:`step_once` replays for this trainer now: wanted (``capture_cuda_graph``, None
        meaning on CUDA), and not disabled by an earlier failure."""
        wanted = trainer.capture_cuda_graph
        if wanted is None:
            wanted = trainer.device.type == "cuda"
        return bool(wanted) and not self.disabled_reason

    def step_once(self, trainer: Trainer, batch: Batch) -> StepRecord | None:
        """One step by replay, with the plain step's checks, update and record; None when it does not
        apply (the caller then runs the plain step). A capture that fails disables it and returns None."""
        if not self.applies(trainer):
            return None
        key = self._key_of(trainer, batch)
        if key != self._key:
            try:
                self._capture(trainer, batch, key)
            except Exception as err:  # any capture failure means: the plain step, from now on
                self.release()
                self.disabled_reason = (
                    f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"[:200]
                )
                trainer.optimizer.zero_grad(set_to_none=True)
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
                return None
        return self._replay_step(trainer, batch)

    def release(self) -> None:
        """Forget the captured graph and its memory."""
        self._key = self._replay = self._noise = self._positives = None

    # ---- internals --------------------------------------------------------------------------------
    @staticmethod
    def _key_of(trainer: Trainer, batch: Batch) -> tuple:
        params = tuple((p.data_ptr(), tuple(p.shape), p.dtype) for p in trainer.model.parameters())
        return (
            str(trainer.device),
            tuple(batch.noise.shape),
            tuple(batch.positives.shape),
            trainer.config.drift,
            id(trainer.model),
            params,
        )

    def _region(self, trainer: Trainer) -> Region:
        model, drift_fn = trainer.model, trainer.drift_fn
        params = list(model.parameters())
        noise, positives = self._noise, self._positives

        def region() -> Outputs:
            for p in params:
                p.grad = None  # the backward writes fresh gradients (static buffers when captured)
            with _drift_kernel.graph_safe():
                x = model(noise)
                out = drifting_loss(x, positives, drift_fn)
            out.loss.backward()
            grads = [p.grad for p in params]
            grads_finite = torch.stack([torch.isfinite(g).all() for g in grads if g is not None]).all()
            loss = out.loss.detach()
            checks = torch.stack([torch.isfinite(x).all(), torch.isfinite(loss), grads_finite]).to(loss.dtype)
            summary = torch.cat([checks, loss[None], out.field.raw_rms.detach().to(loss.dtype)])
            return summary, grads

        return region

    def _capture(self, trainer: Trainer, batch: Batch, key: tuple) -> None:
        self.release()
        device = trainer.device
        self._noise = torch.empty(batch.noise.shape, dtype=batch.noise.dtype, device=device)
        self._positives = torch.empty(batch.positives.shape, dtype=batch.positives.dtype, device=device)
        self._noise.copy_(batch.noise)
        self._positives.copy_(batch.positives)
        trainer.model.train()
        region = self._region(trainer)
        replay = self.capture(region)
        # the first replay must reproduce an eager run of the same region on the same inputs
        expected_summary, expected_grads = region()
        expected_summary = expected_summary.clone()
        expected_grads = [None if g is None else g.clone() for g in expected_grads]
        got_summary, got_grads = replay()
        _check_close(got_summary, expected_summary, "summary")
        for i, (got, want) in enumerate(zip(got_grads, expected_grads)):
            _check_close(got, want, f"gradient {i}")
        self._replay, self._key = replay, key
        self.captures += 1

    def _replay_step(self, trainer: Trainer, batch: Batch) -> StepRecord:
        """The plain step (Trainer._step_once) with the forward, drift, loss and backward replayed."""
        trainer._saved_this_attempt = False
        drift = trainer.config.drift
        start = time.perf_counter()
        trainer.model.train()
        self._noise.copy_(batch.noise)
        self._positives.copy_(batch.positives)
        summary, grads = self._replay()
        values = summary.tolist()  # the one read-back of the step
        outputs_finite, loss_finite, grads_finite = (v > 0.5 for v in values[:3])
        if not outputs_finite:
            return trainer.diverge("the generator's outputs became NaN/inf (learning rate too high?)", start)
        if not loss_finite:
            return trainer.diverge("the drift or the loss became NaN/inf", start)
        trainer._save_previous()
        for p, g in zip(trainer.model.parameters(), grads):
            p.grad = g
        if not grads_finite:
            return trainer.diverge("the gradients became NaN/inf", start)  # before the update: weights stay finite
        trainer.optimizer.step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        step_s = time.perf_counter() - start
        trainer.wall_s += step_s
        trainer.step_count += 1
        record = StepRecord(
            step=trainer.step_count,
            loss=values[3],
            drift_rms=tuple(values[4:]),
            wall_s=trainer.wall_s,
            step_s=step_s,
            lr=trainer.config.train.lr,
            K=drift.K,
            tau=drift.tau,
            batch_size=trainer.config.train.batch_size,
        )
        trainer.last_record = record
        return record


def _check_close(got: Tensor | None, want: Tensor | None, what: str) -> None:
    if (got is None) != (want is None):
        raise CaptureCheckError(f"the captured {what} is missing where the eager one is not (or the reverse)")
    if got is None:
        return
    scale = float(want.nan_to_num(0.0, 0.0, 0.0).abs().max()) if want.numel() else 0.0
    if got.shape != want.shape or not torch.allclose(
        got, want, rtol=CHECK_RTOL, atol=CHECK_RTOL * scale + 1e-12, equal_nan=True
    ):
        raise CaptureCheckError(f"the captured {what} differs from the eager region's")
