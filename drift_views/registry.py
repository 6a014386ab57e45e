"""A process-wide bound on live training sessions (``DRIFT_MAX_SESSIONS``).

A shared server runs one trainer (model, optimizer, history) per browser session. Sessions that go
idle keep their memory until the server drops them, so the server keeps at most ``max_sessions`` of
them *live*: :meth:`SessionRegistry.touch` marks a session as just used, and when a new session would
exceed the bound, the least recently used one is evicted if it has been idle for at least
``min_idle_s`` seconds: its ``release`` callback frees its trainer and history, and the next time it is
used :meth:`SessionRegistry.was_evicted` tells it so (the UI shows a message and starts afresh). When
every live session is active, the newcomer is refused with :class:`SessionLimitError` (a message that
says why) instead: nobody loses a run they are watching.

A closed tab is released too (:meth:`SessionRegistry.release_closed`): once its connection has been
gone for a grace period, its callback frees its runs, whether or not the server is full. Streamlit
keeps a disconnected session for reconnection and forgets it lazily, only when another session
disconnects, so the last tabs to close would otherwise keep their runs' memory indefinitely.
Thread-safe: Streamlit runs each session in its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from drift_core.limits import Limits

__all__ = ["SessionRegistry", "SessionLimitError", "shared_registry", "set_shared_registry", "start_janitor"]


class SessionLimitError(RuntimeError):
    """A new session was refused: the server already runs its maximum of active sessions."""


class SessionRegistry:
    """Least-recently-used registry of live sessions.

    Args:
        max_sessions: how many sessions may hold a live run at once (at least 1).
        min_idle_s: a session is evicted only after this long without a :meth:`touch`.
        clock: the time source (seconds); tests pass a fake one.
    """

    def __init__(self, max_sessions: int, *, min_idle_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = int(max_sessions)
        self.min_idle_s = float(min_idle_s)
        self._clock = clock
        self._live: OrderedDict[str, Callable[[], None] | None] = OrderedDict()
        self._last_used: dict[str, float] = {}
        self._evicted: set[str] = set()
        self._connection: dict[str, str] = {}
        self._closed_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def touch(self, key: str, release: Callable[[], None] | None = None, *, connection: str | None = None) -> list[str]:
        """Mark session ``key`` as just used (registering it with its ``release`` callback if new, or
        replacing the callback when one is given; ``connection`` names the browser connection it runs
        in, for :meth:`release_closed`). A new session beyond ``max_sessions`` evicts the least
        recently used sessions that have been idle for ``min_idle_s`` (their callbacks are called;
        their keys are returned), or is refused with :class:`SessionLimitError` when none is idle that
        long."""
        with self._lock:
            now = self._clock()
            if connection is not None:
                self._connection[key] = connection
            self._closed_since.pop(key, None)
            if key in self._live:
                self._live.move_to_end(key)
                self._last_used[key] = now
                if release is not None:
                    self._live[key] = release
                return []
            victims = []
            while len(self._live) >= self.max_sessions:
                oldest = next(iter(self._live))
                idle = now - self._last_used[oldest]
                if idle < self.min_idle_s:
                    if victims:  # put back what this call took: all or nothing
                        for victim, callback in reversed(victims):
                            self._live[victim] = callback
                            self._live.move_to_end(victim, last=False)
                    raise SessionLimitError(
                        f"this server already runs {len(self._live)} active sessions, its limit "
                        f"(DRIFT_MAX_SESSIONS={self.max_sessions}); please try again in a minute"
                    )
                callback = self._live.pop(oldest)
                victims.append((oldest, callback))
            for victim, _ in victims:
                self._last_used.pop(victim, None)
                self._connection.pop(victim, None)
                self._evicted.add(victim)
            self._live[key] = release
            self._last_used[key] = now
        for _victim, callback in victims:  # outside the lock: a callback may be slow or re-enter
            if callback is not None:
                callback()
        return [victim for victim, _ in victims]

    def release_closed(self, is_connected: Callable[[str], bool], grace_s: float) -> list[str]:
        """Release the sessions whose browser connection has been closed for at least ``grace_s``
        seconds (``is_connected(connection)`` says whether it is open now; a session reconnecting
        within the grace period keeps its runs). Their callbacks are called and they leave the
        registry, marked evicted; returns their keys. Call it periodically (the app's janitor does)."""
        with self._lock:
            now = self._clock()
            connections = [(key, self._connection.get(key)) for key in self._live]
        gone = []
        for key, connection in connections:  # outside the lock: asking the server may take a while
            if connection is None:
                continue
            if is_connected(connection):
                with self._lock:
                    self._closed_since.pop(key, None)
                continue
            with self._lock:
                since = self._closed_since.setdefault(key, now)
                if now - since >= grace_s and key in self._live:
                    gone.append((key, self._live.pop(key)))
                    self._last_used.pop(key, None)
                    self._connection.pop(key, None)
                    self._closed_since.pop(key, None)
                    self._evicted.add(key)
        for _key, callback in gone:
            if callback is not None:
                callback()
        return [key for key, _ in gone]

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
            self._last_used.pop(key, None)
            self._connection.pop(key, None)
            self._closed_since.pop(key, None)
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


_shared: list[SessionRegistry] = []
_shared_lock = threading.Lock()


def shared_registry() -> SessionRegistry:
    """The process-wide registry of live sessions, sized by ``DRIFT_MAX_SESSIONS`` and
    ``DRIFT_SESSION_IDLE_S`` (:class:`~drift_core.limits.Limits`) when first asked for."""
    with _shared_lock:
        if not _shared:
            limits = Limits.from_env()
            _shared.append(SessionRegistry(limits.max_sessions, min_idle_s=limits.session_idle_s))
        return _shared[0]


def set_shared_registry(registry: SessionRegistry | None) -> None:
    """Replace the process-wide registry (None: made afresh from the environment when next asked for).
    For tests; an operator changing the limits restarts the server."""
    with _shared_lock:
        _shared[:] = [] if registry is None else [registry]


_janitor: list[threading.Thread] = []
_janitor_lock = threading.Lock()
_janitor_stop = threading.Event()


def start_janitor(tidy: Callable[[], object], every_s: float) -> threading.Thread:
    """Start (once per process) a daemon thread that calls ``tidy`` every ``every_s`` seconds; a round
    that raises is logged and the next one runs. Returns the thread (the same one on every call while
    it lives)."""
    with _janitor_lock:
        if _janitor and _janitor[0].is_alive():
            return _janitor[0]
        _janitor_stop.clear()

        def sweep() -> None:
            while not _janitor_stop.wait(every_s):
                try:
                    tidy()
                except Exception:  # noqa: BLE001 - logged; the janitor must outlive one bad round
                    logging.getLogger(__name__).exception("the janitor's round failed; retrying")

        thread = threading.Thread(target=sweep, name="drift-lab-janitor", daemon=True)
        thread.start()
        _janitor[:] = [thread]
        return thread


def stop_janitor(timeout_s: float = 5.0) -> None:
    """Stop the janitor thread after its current round (tests; a server's janitor runs until it exits)."""
    with _janitor_lock:
        _janitor_stop.set()
        for thread in _janitor:
            thread.join(timeout_s)
        _janitor.clear()
