"""drift_core.runtime: the CPU thread count chosen per call from what other processes use of the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from drift_core import runtime
from drift_core.runtime import CpuSample, CpuThreadPolicy, read_cpu_sample, threads_for_load


@pytest.fixture
def two_threads():
    """Two intra-op threads configured (even on a one-core machine), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class ScriptedClock:
    """CPU samples that advance by the given amounts per reading (a fake /proc/stat)."""

    def __init__(self, others_cores: float, own_cores: float = 0.0, step_s: float = 1.0):
        self.others, self.own, self.step = others_cores, own_cores, step_s
        self.wall = self.busy = self.own_s = 0.0
        self.readings = 0

    def __call__(self) -> CpuSample:
        self.readings += 1
        self.wall += self.step
        self.busy += (self.others + self.own) * self.step
        self.own_s += self.own * self.step
        return CpuSample(wall_s=self.wall, busy_s=self.busy, own_s=self.own_s)


@pytest.mark.parametrize(
    "configured, cpus, others, expected",
    [
        (2, 2, 0.0, 2),
        (2, 2, 0.2, 2),
        (2, 2, 0.3, 1),
        (2, 2, 0.7, 1),
        (2, 2, 1.0, 1),
        (2, 2, 2.5, 1),
        (1, 2, 0.0, 1),
        (4, 16, 3.2, 4),
        (16, 16, 3.2, 13),
        (16, 16, 0.25, 16),
        (8, 4, 0.0, 4),
    ],
)
def test_threads_leave_the_cores_others_use(configured, cpus, others, expected):
    assert threads_for_load(configured, cpus, others) == expected


def test_estimate_is_others_cpu_time_over_the_window_without_our_own(monkeypatch):
    clock = ScriptedClock(others_cores=1.3, own_cores=0.9)
    monkeypatch.setattr(time, "monotonic", lambda: clock.wall + 10.0)  # every window has passed
    policy = CpuThreadPolicy(clock, cpus=2, window_s=0.25)
    assert policy.estimate() == pytest.approx(1.3)
    assert policy.choose(2) == 1
    quiet = CpuThreadPolicy(ScriptedClock(others_cores=0.05, own_cores=2.0), cpus=2)
    monkeypatch.setattr(time, "monotonic", lambda: 1e9)
    assert quiet.estimate() == pytest.approx(0.05) and quiet.choose(2) == 2  # our own two threads do not count


def test_the_clock_is_read_at_most_once_per_window(monkeypatch):
    clock = ScriptedClock(others_cores=1.0)
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    clock.wall = 99.0
    policy = CpuThreadPolicy(clock, cpus=2, window_s=0.25)  # reads once (wall 100)
    assert clock.readings == 1
    for _ in range(5):
        policy.choose(2)
    assert clock.readings == 1 and policy.choose(2) == 2  # no window has passed yet: the initial choice
    now[0] = 100.3
    assert policy.choose(2) == 1 and clock.readings == 2


def test_without_proc_stat_the_configured_count_is_kept(two_threads):
    policy = CpuThreadPolicy(lambda: None, cpus=2)
    with policy.applied() as chosen:
        assert chosen == 2 == torch.get_num_threads()


def test_applied_sets_and_restores_threads_even_on_error(monkeypatch, two_threads):
    monkeypatch.setattr(time, "monotonic", lambda: 1e9)
    policy = CpuThreadPolicy(ScriptedClock(others_cores=2.0), cpus=2)
    with policy.applied() as chosen:
        assert chosen == 1 == torch.get_num_threads()
        with policy.applied() as inner:  # nested: the outer choice holds, nothing is restored early
            assert inner == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError):
        with policy.applied():
            raise ValueError("boom")
    assert torch.get_num_threads() == 2
    with policy.fixed():
        with policy.applied() as chosen:
            assert chosen == 2 == torch.get_num_threads()  # fixed: the configured count


def test_never_more_threads_than_configured(monkeypatch):
    monkeypatch.setattr(time, "monotonic", lambda: 1e9)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with CpuThreadPolicy(ScriptedClock(others_cores=0.0), cpus=8).applied() as chosen:
            assert chosen == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_each_thread_applies_the_choice_to_itself_and_restores_its_own(monkeypatch, two_threads):
    monkeypatch.setattr(time, "monotonic", lambda: 1e9)
    policy = CpuThreadPolicy(ScriptedClock(others_cores=2.0), cpus=2)
    inside, release, seen = threading.Event(), threading.Event(), []

    def worker():
        torch.set_num_threads(2)
        with policy.applied():
            seen.append(torch.get_num_threads())
            inside.set()
            release.wait(10)
            seen.append(torch.get_num_threads())
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside.wait(10)
    with policy.applied():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2  # restored here while the worker is still inside
    release.set()
    thread.join(10)
    assert seen == [1, 1, 2]


def test_adaptive_threads_leave_other_devices_alone(monkeypatch, two_threads):
    monkeypatch.setattr(time, "monotonic", lambda: 1e9)
    monkeypatch.setattr(runtime, "CPU_THREADS", CpuThreadPolicy(ScriptedClock(others_cores=2.0), cpus=2))
    with runtime.adaptive_cpu_threads("meta"):
        assert torch.get_num_threads() == 2
    with runtime.adaptive_cpu_threads("cpu"):
        assert torch.get_num_threads() == 1
    with runtime.fixed_cpu_threads(), runtime.adaptive_cpu_threads("cpu"):
        assert torch.get_num_threads() == 2


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux only (/proc/stat)")
def test_real_clock_counts_our_own_work_as_busy_and_as_own():
    before = read_cpu_sample()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    after = read_cpu_sample()
    own = after.own_s - before.own_s
    assert own >= 0.29
    assert after.busy_s - before.busy_s >= own - 0.1  # our CPU time is part of the CPUs' busy time


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux only (/proc/stat)")
def test_a_busy_process_beside_us_is_seen():
    policy = CpuThreadPolicy(window_s=0.1)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        policy.estimate()  # the window now starts with the busy process running
        time.sleep(0.6)
        others = policy.estimate()
    finally:
        busy.kill()
        busy.wait()
    assert others >= 0.4  # the busy process alone holds most of a core
