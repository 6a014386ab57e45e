"""The bound on live app sessions (drift_views.registry.SessionRegistry): the least recently used idle session is
evicted, a newcomer refused while all are active, and the bound holds under concurrent use."""

from __future__ import annotations

import threading
import time

import pytest

from drift_views.registry import (
    SessionLimitError,
    SessionRegistry,
    set_shared_registry,
    shared_registry,
    start_janitor,
    stop_janitor,
)


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


def test_a_closed_tab_is_released_after_the_grace_period_and_a_reconnect_keeps_its_run():
    clock = [0.0]
    released = []
    open_tabs = {"tab-a", "tab-b"}
    reg = SessionRegistry(10, min_idle_s=3600, clock=lambda: clock[0])
    reg.touch("a", lambda: released.append("a"), connection="tab-a")
    reg.touch("b", lambda: released.append("b"), connection="tab-b")
    reg.touch("legacy", lambda: released.append("legacy"))  # no connection known: never released this way
    assert reg.release_closed(open_tabs.__contains__, grace_s=5) == []
    open_tabs -= {"tab-a", "tab-b"}  # both tabs close (or lose their network) at t = 0
    assert reg.release_closed(open_tabs.__contains__, grace_s=5) == []  # closed, but not for 5 s yet
    clock[0] = 3
    open_tabs.add("tab-b")  # b reconnects within the grace period: its clock starts again
    assert reg.release_closed(open_tabs.__contains__, grace_s=5) == []
    clock[0] = 6
    assert reg.release_closed(open_tabs.__contains__, grace_s=5) == ["a"]
    assert released == ["a"] and reg.keys() == ["b", "legacy"] and reg.was_evicted("a")
    open_tabs.discard("tab-b")
    clock[0] = 7
    reg.release_closed(open_tabs.__contains__, grace_s=5)
    clock[0] = 10
    reg.touch("b")  # b ran a script again (it is open after all): its closed clock is cleared
    clock[0] = 13
    assert reg.release_closed(open_tabs.__contains__, grace_s=5) == []  # closed since 13 only, as far as known
    clock[0] = 18
    assert reg.release_closed(open_tabs.__contains__, grace_s=5) == ["b"] and released == ["a", "b"]
    assert reg.keys() == ["legacy"]


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


def test_the_shared_registry_is_sized_from_the_environment_and_replaceable(monkeypatch):
    monkeypatch.setenv("DRIFT_MAX_SESSIONS", "3")
    set_shared_registry(None)
    assert shared_registry().max_sessions == 3 and shared_registry() is shared_registry()
    mine = SessionRegistry(1)
    set_shared_registry(mine)
    assert shared_registry() is mine
    set_shared_registry(None)
    assert shared_registry() is not mine


def test_the_janitor_runs_once_per_process_and_outlives_a_failing_round():
    rounds = []

    def tidy():
        rounds.append(time.monotonic())
        if len(rounds) == 1:
            raise RuntimeError("a bad round")  # logged; the next round still runs

    try:
        thread = start_janitor(tidy, every_s=0.01)
        assert start_janitor(lambda: None, every_s=0.01) is thread  # one janitor per process
        deadline = time.monotonic() + 10
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(rounds) >= 3 and thread.is_alive()
    finally:
        stop_janitor()
    assert not thread.is_alive()
