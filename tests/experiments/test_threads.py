"""The default of ``train.threads``: the cores other processes leave free, 1 to 4
(:mod:`effnas.experiments.train.threads`), and every place that sets torch's threads follows it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from effnas.experiments.estimators.proxy import torch_threads
from effnas.experiments.train import threads
from effnas.experiments.train.threads import MAX_AUTO_THREADS, OwnLoad, auto_threads, resolve_threads


@pytest.mark.parametrize(("cores", "load", "own", "world", "want"), [
    (2, 0.1, 0.0, 1, 2),    # an idle 2-core machine: both cores
    (2, 2.4, 0.0, 1, 1),    # the shared project machine (bench/threads.py: 2 threads ran at 0.11-0.27x of 1)
    (2, 1.4, 0.0, 1, 1),    # one other job: one core left
    (2, 0.5, 0.0, 1, 2),    # half a core's worth of load rounds down
    (2, 0.6, 0.0, 1, 1),    # ... more rounds up
    (2, 2.3, 2.0, 1, 2),    # the load is this process's own (the previous run of a family): still free
    (2, 9.0, 0.0, 1, 1),    # never below one
    (64, 0.0, 0.0, 1, MAX_AUTO_THREADS),  # never above the cap
    (16, 3.0, 0.0, 2, 2),   # shared by the run's data-parallel processes
    (8, None, 0.0, 1, 4),   # no load average (not Unix): taken as idle
    (1, 0.0, 0.0, 4, 1),
])
def test_the_rule(cores: int, load: float | None, own: float, world: int, want: int) -> None:
    assert auto_threads(cores, load, own, world=world) == want


def test_explicit_threads_are_used_as_given_shared_by_the_devices() -> None:
    assert resolve_threads(3).threads == 3 and not resolve_threads(3).auto
    assert resolve_threads(4, world=2).threads == 2 and resolve_threads(1, world=2).threads == 1
    auto = resolve_threads(0)
    assert auto.auto and 1 <= auto.threads <= MAX_AUTO_THREADS and auto.cores == threads.usable_cores()


def test_this_process_share_of_the_load_follows_the_kernels_average() -> None:
    """The kernel's 1-minute load average moves towards the runnable count with a 60 s time
    constant; this process's share is followed the same way from its CPU time."""
    clock = {"wall": 0.0, "cpu": 0.0}
    own = OwnLoad(wall=lambda: clock["wall"], cpu=lambda: clock["cpu"])
    clock.update(wall=60.0, cpu=120.0)  # a minute of two busy threads
    assert own() == pytest.approx(2 * (1 - math.exp(-1)))
    clock.update(wall=120.0)  # a minute idle
    assert own() == pytest.approx(2 * (1 - math.exp(-1)) * math.exp(-1))
    assert own() == pytest.approx(2 * (1 - math.exp(-1)) * math.exp(-1))  # no time passed: unchanged


def test_cores_from_the_cgroup_quota_and_physical_cores(tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    for text, want in (("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1), ("garbled", None)):
        quota.write_text(text)
        assert threads._cgroup_cpus(quota) == want, text
    assert threads._cgroup_cpus(tmp_path / "absent") is None
    info = tmp_path / "cpuinfo"  # two cores with two hyperthreads each
    info.write_text("\n\n".join(f"processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {i // 2}\n" for i in range(4)))
    assert threads._physical_cores(info) == 2
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\n")  # no core ids (some ARM kernels)
    assert threads._physical_cores(info) is None
    assert 1 <= threads.usable_cores() <= (threads.os.cpu_count() or 1)


def test_estimators_follow_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy and supernet estimators' ``threads = 0`` is the rule, not torch's own default."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)  # the rule's answer on one core: 1
    torch.set_num_threads(2)
    try:
        with torch_threads(0):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with torch_threads(2):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
