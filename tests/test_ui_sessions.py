"""The bound on live app sessions (ui.sessions.SessionRegistry): the least recently used idle session is
evicted, a newcomer refused while all are active, and the bound holds under concurrent use."""

from __future__ import annotations

import threading

import pytest

from ui.sessions import SessionLimitError, SessionRegistry


def test_session_registry_evicts_the_least_recently_used_idle_session():
    clock = [0.0]
    released = []
    reg = SessionRegistry(2, min_idle_s=10, clock=lambda: clock[0])
    reg.touch("a", lambda: released.append("a"))
    reg.touch("b", lambda: released.append("b"))
    clock[0] = 5
    reg.touch("a")  # a is used again: b is now the least recently used
    with pytest.raises(SessionLimitError, match="2 active sessions.*DRIFT_MAX_SESSIONS=2"):
        reg.touch("c")  # b has been idle 5 s only: the newcomer is refused, nobody is evicted
    assert released == [] and reg.keys() == ["b", "a"] and not reg.is_live("c")
    clock[0] = 12
    assert reg.touch("c", lambda: released.append("c")) == ["b"]  # b idle 12 s now
    assert released == ["b"] and reg.keys() == ["a", "c"] and len(reg) == 2
    assert reg.was_evicted("b") and not reg.was_evicted("b") and not reg.was_evicted("a")
    clock[0] = 30
    reg.touch("b")  # b comes back with a fresh run: a (idle 25 s) goes
    assert released == ["b", "a"] and reg.is_live("b") and not reg.is_live("a")
    reg.forget("c")
    assert reg.keys() == ["b"]
    with pytest.raises(ValueError):
        SessionRegistry(0)


def test_session_registry_stays_bounded_under_concurrent_use():
    reg = SessionRegistry(5, min_idle_s=0)
    released = []
    refused = []
    lock = threading.Lock()

    def user(i):
        for j in range(200):
            key = f"s{i}-{j % 3}"
            try:
                reg.touch(key, lambda key=key: (lock.acquire(), released.append(key), lock.release()))
            except SessionLimitError:
                refused.append(key)
            assert len(reg) <= 5

    threads = [threading.Thread(target=user, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(reg) == 5 and not refused  # with min_idle_s=0 the oldest can always go
    assert len(released) + len(reg) >= 24  # every distinct session is either live or was released
