"""Replay and "fork from here": a bounded tape of trainer states next to the snapshot history.

:class:`~drift_core.history.History` keeps the *pictures* of past steps (snapshots); to continue
training from one of them the weights, the optimizer state and the data stream of that step are needed
too. A :class:`StateTape` keeps them for the steps offered to it (a ring buffer, like the history), and
:func:`fork_at` builds an independent trainer from a kept step, optionally with new live settings
(K, tau, batch size, learning rate...), so a branch can be trained and compared with the original.

A state is whatever the trainer's ``state_dict()`` holds (a 2D :class:`~drift_core.train.Trainer`'s
weights, Adam's two moments and data stream; an image trainer's also its EMA weights), copied to the
CPU; its size grows with the model, so ``max_bytes`` bounds a tape's memory whatever the model.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch

from .config import ConfigError

__all__ = ["StateTape", "fork_at"]


class StateTape:
    """Trainer states by step (CPU copies), oldest dropped beyond ``max_states`` or ``max_bytes``.

    Args:
        max_states: states kept.
        max_bytes: tensor bytes kept (the newest state is always kept); None: no byte bound.
    """

    def __init__(self, max_states: int = 40, max_bytes: int | None = None):
        if max_states < 1:
            raise ValueError("max_states must be positive")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_states = max_states
        self.max_bytes = max_bytes
        self.states: OrderedDict[int, dict] = OrderedDict()
        self._sizes: dict[int, int] = {}
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.states)

    def __contains__(self, step: int) -> bool:
        return step in self.states

    @property
    def steps(self) -> list[int]:
        return list(self.states)

    def record(self, trainer) -> bool:
        """Keep the trainer's current state (a CPU copy of its ``state_dict()``) under its step, once
        per step and never while it is diverged. Returns whether it was added."""
        step = trainer.step_count
        if step in self.states or trainer.diverged:
            return False
        state = _to_cpu(trainer.state_dict())
        self.states[step] = state
        self._sizes[step] = _tensor_bytes(state)
        self.nbytes += self._sizes[step]
        while len(self.states) > self.max_states or (
            self.max_bytes is not None and self.nbytes > self.max_bytes and len(self.states) > 1
        ):
            oldest, _ = self.states.popitem(last=False)
            self.nbytes -= self._sizes.pop(oldest)
        return True

    def nearest(self, step: int) -> int | None:
        """The kept step closest to ``step`` at or before it (else the earliest kept), or None if empty."""
        if not self.states:
            return None
        before = [s for s in self.states if s <= step]
        return max(before) if before else min(self.states)

    def drop_after(self, step: int) -> None:
        """Forget the states after ``step`` (the run went back to it)."""
        for later in [s for s in self.states if s > step]:
            del self.states[later]
            self.nbytes -= self._sizes.pop(later)

    def clear(self) -> None:
        self.states.clear()
        self._sizes.clear()
        self.nbytes = 0


def _tensor_bytes(obj) -> int:
    """Bytes of all tensors in a nested dict/list state."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _to_cpu(obj):
    """A copy of a nested dict/list/tuple state whose tensors are cloned to the CPU; other values are
    deep-copied, so nothing in the copy is shared with the trainer."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def fork_at(tape: StateTape, step: int, config, *, like):
    """A new trainer continuing from the kept state of ``step`` with ``config``'s live settings.

    ``like`` is a trainer of the recorded run: the fork is built by its ``spawn`` (same class, data and
    device) from the recorded configuration, then given the kept state. ``config`` may change only
    live fields (drift settings, batch size, lr, step budget) relative to the recorded run; anything
    else (dataset, network, seed) raises :class:`ConfigError`, because the recorded weights would not
    fit it.
    """
    if step not in tape.states:
        raise KeyError(f"no state kept for step {step}; kept: {tape.steps[:5]}{'...' if len(tape) > 5 else ''}")
    state = tape.states[step]
    trainer = like.spawn(type(like.config).from_dict(state["config"]))
    trainer.load_state_dict(copy.deepcopy(state))
    try:
        trainer.update(config)
    except ConfigError as err:
        raise ConfigError(f"cannot fork with these settings: {err}") from None
    return trainer
