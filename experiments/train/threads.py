"""How many torch threads a run computes with: ``train.threads``, or for ``0`` the rule below.

``threads = 0`` (the default) resolves by :func:`auto_threads` to the cores that other processes
leave free, at least 1 and at most :data:`MAX_AUTO_THREADS`, shared by the run's ``devices``
processes::

    free    = cores - busy
    cores   = CPUs this process may use: its affinity mask, the cgroup CPU quota, physical cores
    busy    = the 1-minute load average less this process's own share of it, rounded to whole
              cores (0.5 rounds down)
    threads = max(1, min(free, 4) // devices)

A Ray trial is given its CPUs and uses them (``effnas.experiments.cluster`` sets ``threads`` from
the trial's resources); a positive ``threads`` is used as given (divided by ``devices``).

Why: torch's OpenMP threads wait for each other at every operation, so a thread on a core that
another process also wants stalls all of them. ``bench/threads.py`` on the 2-core project
machine, load average 2.4-3.8: 2 threads trained at 0.11-0.27x the rate of 1 (``tiny`` 32 px:
176 vs 876 img/s; B0 at 32 px: 28 vs 155 img/s; the trainer on ``digits``: 143 vs 817 img/s),
while 2 threads on free cores gained up to 1.7x (docs/training.md, "Threads"). The cap of 4 is a
guard, not a measurement (this machine has 2 cores): small networks gain little from more, and
every extra thread multiplies the cost of contention.

This process's own share of the load average is followed from its CPU time (the kernel's average
decays with a 60 s time constant), so the next run of a family trained in this process does not
mistake its predecessor's threads for another process's.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

#: Most threads the automatic rule gives a run.
MAX_AUTO_THREADS = 4
#: Time constant of the kernel's 1-minute load average (seconds).
LOAD_TAU = 60.0


@dataclass(frozen=True)
class Threads:
    """A run's torch threads and how they were chosen (``auto``: by the rule, from ``cores``,
    ``load`` and ``own``, this process's estimated share of the load)."""

    threads: int
    auto: bool
    cores: int | None = None
    load: float | None = None
    own: float | None = None

    def to_dict(self) -> dict[str, int | float | bool | None]:
        return {"threads": self.threads, "auto": self.auto, "cores": self.cores,
                "load": None if self.load is None else round(self.load, 2),
                "own": None if self.own is None else round(self.own, 2)}


def auto_threads(cores: int, load: float | None, own: float = 0.0, *, world: int = 1) -> int:
    """The rule of the module docstring: threads per process for ``world`` processes on ``cores``
    usable CPUs, with ``load`` the 1-minute load average (None: unknown, taken as idle) of which
    ``own`` is this process's.

    >>> auto_threads(2, 0.1), auto_threads(2, 2.4), auto_threads(2, 1.4), auto_threads(2, 0.5)
    (2, 1, 1, 2)
    >>> auto_threads(2, 2.3, own=2.0), auto_threads(16, 3.0), auto_threads(16, 3.0, world=2), auto_threads(8, None)
    (2, 4, 2, 4)
    """
    busy = 0 if load is None else max(0, math.ceil(max(0.0, load - own) - 0.5))
    return max(1, min(cores - busy, MAX_AUTO_THREADS) // max(1, world))


def _cgroup_cpus(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """CPUs the cgroup (v2) quota allows (``"200000 100000"``: 2), None without a quota."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def _physical_cores(path: Path = Path("/proc/cpuinfo")) -> int | None:
    """Distinct (package, core) pairs of ``/proc/cpuinfo``: hyperthreads share a core's arithmetic."""
    try:
        blocks = path.read_text().split("\n\n")
    except OSError:
        return None
    cores = set()
    for block in blocks:
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}
        if "core id" in fields:
            cores.add((fields.get("physical id"), fields["core id"]))
    return len(cores) or None


def usable_cores() -> int:
    """CPUs this process may use: affinity mask, cgroup CPU quota and physical cores, the least."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(c for c in (n, _cgroup_cpus(), _physical_cores()) if c is not None)


class OwnLoad:
    """This process's share of the 1-minute load average, followed from its CPU time: between two
    calls it ran ``cpu / wall`` threads on average, and the kernel's average moves towards that
    with time constant :data:`LOAD_TAU`."""

    def __init__(self, wall: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time) -> None:
        self.clocks = wall, cpu
        self.wall, self.cpu, self.share = wall(), cpu(), 0.0

    def __call__(self) -> float:
        wall, cpu = self.clocks[0](), self.clocks[1]()
        dt = wall - self.wall
        if dt > 0:
            decay = math.exp(-dt / LOAD_TAU)
            self.share = self.share * decay + (cpu - self.cpu) / dt * (1 - decay)
        self.wall, self.cpu = wall, cpu
        return self.share


_OWN = OwnLoad()


def resolve_threads(threads: int, *, world: int = 1) -> Threads:
    """``threads`` (a positive count, shared by ``world`` processes) or, for 0, :func:`auto_threads`
    on this machine now."""
    if threads:
        return Threads(max(1, threads // max(1, world)), auto=False)
    try:
        load: float | None = os.getloadavg()[0]
    except (OSError, AttributeError):  # no load average on this platform: taken as idle
        load = None
    cores, own = usable_cores(), _OWN()
    return Threads(auto_threads(cores, load, own, world=world), auto=True, cores=cores, load=load, own=own)


def set_threads(threads: int, *, world: int = 1) -> Threads:
    """``torch.set_num_threads`` to :func:`resolve_threads`; returns the choice."""
    choice = resolve_threads(threads, world=world)
    torch.set_num_threads(choice.threads)
    return choice


__all__ = ["MAX_AUTO_THREADS", "OwnLoad", "Threads", "auto_threads", "resolve_threads", "set_threads", "usable_cores"]
