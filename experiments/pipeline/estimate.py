"""How long training will take on this machine, said before it starts.

The model, per run: ``epochs x (train + val / 3) / r`` seconds, where ``train`` and ``val`` are
the run's training and validation images (:func:`effnas.experiments.data.datasets.pool_size`
split by ``val_fraction`` and ``data_fraction``; validation is a forward pass, about a third of a
training step's work) and ``r`` is the run's training throughput: the base network's, measured
here (:func:`throughput`), times base MACs / run MACs. Runs go ``workers`` at a time. Data loading,
augmentation and the final test pass are not measured, so the estimate is a lower bound when
decoding dominates (image folders on few cores).

A measurement trains the base on random images at its resolution for up to
:data:`MEASURE_BATCHES` batches or :data:`MEASURE_SECONDS` after warm-up batches, at the run's batch
size unless that would take over :data:`BATCH_SECONDS` a batch (doubling from 2), on the run's device and with the
threads each run gets, and keeps the fastest batch; it is cached per process. Under a second for
the small bases here; when the first batch of 2 takes over :data:`FIRST_LIMIT` (a large base, a
machine busier than the runs' threads) that batch, allocations included, is the measurement.
An estimate above :data:`ASK_ABOVE` seconds is what the commands ask about on a terminal
(``effnas family|grid|run``; ``--yes`` skips the question).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from effnas.experiments.data.datasets import pool_size
from effnas.experiments.pipeline.resolved import Plan, Runtime, StagePlan
from effnas.experiments.train.devices import resolve_device
from effnas.scaling.record import FINISHED, read_result
from effnas.scaling.runner import Job
from effnas.search_spaces import NetworkSpec, build
from effnas.search_spaces.common.progress import duration, plural, rate
from effnas.search_spaces.counts import counts

#: Seconds above which a command asks before it trains, on a terminal (30 min).
ASK_ABOVE = 30 * 60
#: Timed training batches in a measurement, after warm-up ones, and the seconds after which no
#: further batch is started; the fastest batch counts (the first batches of a shape, and a busy
#: machine's moments, are slower than the steady state a long run is in).
MEASURE_BATCHES = 4
MEASURE_SECONDS = 0.6
#: Seconds of the first batch (of 2, allocations included) past which it is the measurement: the
#: measurement's budget (a large base, or a machine busier than the runs' threads, where the
#: runs will be as slow).
FIRST_LIMIT = 2.0
#: Seconds one measured batch may take: the batch doubles from 2 towards the runs' while the next
#: one, extrapolated, stays within this, so that a large base stays cheap to measure.
BATCH_SECONDS = 0.4
#: Validation costs this share of a training step per image (a forward pass of three passes).
EVAL_SHARE = 1 / 3


@lru_cache(maxsize=16)
def throughput(spec: NetworkSpec, *, batch_size: int, threads: int, device: str = "cpu") -> tuple[float, int]:
    """Training images per second of ``spec`` (forward, cross-entropy, backward) at its resolution,
    on random images, with ``threads`` torch threads on ``device`` (cached per process), and the
    batch it was measured at (``batch_size`` unless a batch would take over :data:`BATCH_SECONDS`:
    then fewer, and the runs' larger batches will be faster per image)."""
    dev = torch.device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        model = build(spec).to(dev).to(memory_format=torch.channels_last).train()  # type: ignore[call-overload]

        def seconds(batch: int) -> float:
            x = torch.randn(batch, 3, spec.resolution, spec.resolution, device=dev).to(
                memory_format=torch.channels_last)
            y = torch.randint(0, spec.num_classes, (batch,), device=dev)
            t0 = time.perf_counter()
            F.cross_entropy(model(x), y).backward()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return time.perf_counter() - t0

        first = seconds(2)  # the first call allocates
        if first > FIRST_LIMIT:  # a slow base or a busy machine: no second look (it would cost as much)
            return 2 / first, 2
        batch, last = 2, seconds(2)
        while batch < batch_size and last * min(batch_size, 2 * batch) / batch <= BATCH_SECONDS:
            batch = min(batch_size, 2 * batch)  # the first batch of a size is its warm-up
            last = seconds(batch)
        per_image, timed, t0 = last / batch, 0, time.perf_counter()
        while timed < MEASURE_BATCHES and time.perf_counter() - t0 < MEASURE_SECONDS:
            per_image = min(per_image, seconds(batch) / batch)
            timed += 1
        return 1 / per_image, batch
    finally:
        torch.set_num_threads(before)


def run_threads(tc: dict[str, Any], runtime: Runtime) -> int:
    """Torch threads a run of trainer config ``tc`` gets: ``threads``, else the trial's CPUs under
    Ray (cores / workers unless ``cpus_per_trial``), else every core."""
    if tc.get("threads"):
        return int(tc["threads"])
    cores = os.cpu_count() or 1
    if runtime.ray:
        return max(1, int(runtime.cpus_per_trial or cores // runtime.workers))
    return cores


@dataclass(frozen=True)
class Work:
    """A stage's runs still to train: ``runs`` runs of ``epochs`` epochs whose networks have
    ``macs`` MACs in all (one image each), over ``train`` and ``val`` images of ``dataset`` (None:
    not known)."""

    stage: str
    runs: int
    epochs: int
    macs: int
    train: int | None
    val: int | None
    dataset: str = ""


def images(tc: dict[str, Any], data_fraction: float | None = None) -> tuple[int | None, int | None]:
    """(training, validation) images of a run of ``tc``, as :func:`effnas.experiments.data.datasets.split` cuts."""
    pool = pool_size(str(tc["dataset"]))
    if pool is None:
        return None, None
    val = max(1, round(pool * float(tc.get("val_fraction", 0.1))))
    fraction = float(data_fraction if data_fraction is not None else tc.get("data_fraction", 1.0))
    return max(1, round((pool - val) * fraction)), val


def pending(jobs: Sequence[Job], out: str | Path | None, *, resume: bool) -> list[Job]:
    """The jobs a stage will train: all, less those finished in ``out`` when resuming."""
    if out is None or not resume:
        return list(jobs)
    return [j for j in jobs
            if (r := read_result(Path(out) / j.key)) is None or r["metrics"].get("status") not in FINISHED]


def stage_work(stage: str, sp: StagePlan, *, out: str | Path | None = None, resume: bool = False) -> Work:
    """The work of a training stage's plan (its jobs not finished in ``out`` when resuming)."""
    todo = pending(sp.jobs, out, resume=resume)
    train, val = images(sp.train_config)
    return Work(stage, len(todo), int(sp.train_config["epochs"]), sum(counts(j.spec).macs for j in todo), train, val,
                str(sp.train_config["dataset"]))


@dataclass(frozen=True)
class Estimate:
    """The time ``work`` takes on this machine: the base's measured ``images_per_second`` (of
    ``base_macs`` MACs an image) at batch ``batch`` (of the runs' ``run_batch``), ``workers`` runs
    at a time."""

    work: tuple[Work, ...]
    base: str
    base_macs: int
    images_per_second: float
    workers: int = 1
    batch: int = 0
    run_batch: int = 0

    @property
    def runs(self) -> int:
        return sum(w.runs for w in self.work)

    def stage_seconds(self, w: Work) -> float | None:
        if w.train is None or w.val is None:
            return None
        per_image = 1 / (self.images_per_second * self.base_macs)  # seconds per MAC of a training image
        return w.epochs * (w.train + EVAL_SHARE * w.val) * w.macs * per_image / self.workers

    @property
    def seconds(self) -> float | None:
        """Wall seconds of all the work (None when a data set's size is not known)."""
        parts = [self.stage_seconds(w) for w in self.work if w.runs]
        return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)

    def counts_text(self) -> str:
        """``26 runs x 30 epochs`` (one epoch count), else each stage's."""
        busy = [w for w in self.work if w.runs]
        if len({w.epochs for w in busy}) <= 1:
            return f"{plural(self.runs, 'run')} x {plural(busy[0].epochs if busy else 0, 'epoch')}"
        return f"{plural(self.runs, 'run')} (" + ", ".join(f"{w.stage} {w.runs} x {plural(w.epochs, 'epoch')}"
                                                            for w in busy) + ")"

    @property
    def long(self) -> bool:
        """Whether it is worth asking about (past :data:`ASK_ABOVE`)."""
        s = self.seconds
        return s is not None and s > ASK_ABOVE

    def text(self) -> str:
        """``26 runs x 30 epochs, about 3.2 h on this machine (measured: 812 img/s for the base B0)``."""
        s = self.seconds
        where = f"on this machine (measured: {rate(self.images_per_second)} img/s for the base {self.base}"
        if self.batch < self.run_batch:  # a large base: the runs' batches are faster per image
            where += f" at batch {self.batch} of the runs' {self.run_batch}"
        where += f", {self.workers} runs at a time)" if self.workers > 1 else ")"
        if s is None:
            unknown = next(w.dataset for w in self.work if w.runs and w.train is None)
            return f"{self.counts_text()}; time unknown: the size of {unknown} is not known without reading it"
        return f"{self.counts_text()}, about {duration(s)} {where}"


def estimate(work: Sequence[Work], base: NetworkSpec, tc: dict[str, Any], runtime: Runtime) -> Estimate:
    """The estimate of ``work``, measuring ``base`` with trainer config ``tc``'s batch, device and
    a run's threads (nothing is measured when there is nothing to train)."""
    ips, batch, run_batch = math.nan, 0, int(tc["batch_size"])
    if any(w.runs for w in work):
        ips, batch = throughput(base, batch_size=run_batch, threads=run_threads(tc, runtime),
                                device=resolve_device(str(tc.get("device", "auto"))).type)
    return Estimate(tuple(work), base.name, counts(base).macs, ips, max(1, runtime.workers), batch, run_batch)


def plan_work(plan: Plan, base: NetworkSpec, *, out: Path | None = None, resume: bool = False) -> list[Work]:
    """Every stage's work of an experiment's plan: the search's trials (each costed as the base,
    on its ``data_fraction``), the grid, the family and each backbone."""
    work = []
    s = plan.search
    if s is not None and s.trainer == "train":
        train, val = images(s.settings.train, s.settings.train.get("data_fraction"))
        work.append(Work("search", s.settings.trials, int(s.settings.train["epochs"]),
                         s.settings.trials * counts(base).macs, train, val, str(s.settings.train["dataset"])))

    def sub(name: str) -> Path | None:
        return out / name if out is not None else None

    work.append(stage_work("grid", plan.grid, out=sub("grid"), resume=resume))
    work.append(stage_work("family", plan.family, out=sub("family"), resume=resume))
    for name, (directory, sp) in plan.backbones.items():
        work.append(stage_work(f"backbones {name}", sp, out=sub(f"backbones/{directory}"), resume=resume))
    return work


__all__ = ["ASK_ABOVE", "Estimate", "Work", "estimate", "plan_work", "stage_work", "throughput"]
