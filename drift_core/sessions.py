"""A process-wide bound on live training sessions (``DRIFT_MAX_SESSIONS``).

A shared server runs one trainer (model, optimizer, history) per browser session. Sessions that go
idle keep their memory until the server drops them, so the server keeps at most ``max_sessions`` of
them *live*: :meth:`SessionRegistry.touch` marks a session as just used, and when a new session would
exceed the bound, the least recently used one is evicted: its ``release`` callback frees its trainer
and history, and the next time it is used :meth:`SessionRegistry.was_evicted` tells it so (the UI
shows a message and offers a fresh start). Thread-safe: Streamlit runs each session in its own thread.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

__all__ = ["SessionRegistry"]


class SessionRegistry:
    """Least-recently-used registry of live sessions.

    Args:
        max_sessions: how many sessions may hold a live run at once (at least 1).
    """

    def __init__(self, max_sessions: int):
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = int(max_sessions)
        self._live: OrderedDict[str, Callable[[], None] | None] = OrderedDict()
        self._evicted: set[str] = set()
        self._lock = threading.Lock()

    def touch(self, key: str, release: Callable[[], None] | None = None) -> list[str]:
        """Mark session ``key`` as just used (registering it with its ``release`` callback if new, or
        replacing the callback when one is given). Evicts the least recently used sessions beyond
        ``max_sessions``, calls their callbacks, and returns their keys."""
        with self._lock:
            if key in self._live:
                self._live.move_to_end(key)
                if release is not None:
                    self._live[key] = release
            else:
                self._live[key] = release
            victims = []
            while len(self._live) > self.max_sessions:
                victim, callback = self._live.popitem(last=False)
                self._evicted.add(victim)
                victims.append((victim, callback))
        for _victim, callback in victims:  # outside the lock: a callback may be slow or re-enter
            if callback is not None:
                callback()
        return [victim for victim, _ in victims]

    def was_evicted(self, key: str) -> bool:
        """True once if ``key`` was evicted (the flag is then cleared). Ask before :meth:`touch`, which
        makes the session live again."""
        with self._lock:
            if key in self._evicted:
                self._evicted.discard(key)
                return True
            return False

    def forget(self, key: str) -> None:
        """Remove ``key`` without calling its callback (the session ended on its own)."""
        with self._lock:
            self._live.pop(key, None)
            self._evicted.discard(key)

    def is_live(self, key: str) -> bool:
        with self._lock:
            return key in self._live

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)

    def keys(self) -> list[str]:
        """Live session keys, least recently used first."""
        with self._lock:
            return list(self._live)
