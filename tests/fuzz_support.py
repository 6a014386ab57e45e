"""Shared hypothesis settings and byte mutations for the fuzz tests of the parsers of outside input
(points, links, config JSON, checkpoints).

Under CI (``CI=true``) hypothesis is derandomised (a fixed seed per test), so CI runs are reproducible;
locally each run explores new inputs. The deadline bounds the time per input: a parser that hangs on
some input fails the test instead of stalling it."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.conftest import in_ci


def fuzz_settings(max_examples: int, deadline_s: float = 5.0) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=timedelta(seconds=deadline_s),
        derandomize=in_ci(),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )


@st.composite
def mutated(draw, data: bytes, max_edits: int = 6) -> bytes:
    """``data`` after a few random edits: bytes flipped, inserted or deleted, a slice repeated, or the
    whole cut short (a truncated download)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "repeat", "truncate"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if kind == "flip" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        elif kind == "repeat":
            piece = out[at : at + draw(st.integers(1, 64))]
            out[at:at] = piece * draw(st.integers(1, 4))
        elif kind == "truncate":
            del out[at:]
    return bytes(out)
