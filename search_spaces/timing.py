"""Measured time of a network under one protocol: inference latency at batch 1 and at batch N, in
eager PyTorch and (when asked for and installed) in onnxruntime, with the machine recorded.

The protocol (:class:`Protocol`, written beside every number it produced):

* the network is built from its spec and put in eval mode; torch runs it eagerly under
  ``torch.no_grad()`` on the CPU, contiguous NCHW float32 input of ``batch x 3 x r x r`` (random
  normal, fixed seed); onnxruntime runs the network exported in memory
  (:func:`effnas.search_spaces.onnx.onnx_bytes`) with its CPU provider;
* ``warmup`` calls are run and discarded, then ``repeats`` calls are each timed with
  ``time.perf_counter``; the latency is their **median** in milliseconds (per call, i.e. per batch);
* torch's intra-op threads are set to ``threads`` for the measurement (and restored after);
  onnxruntime gets ``threads`` intra-op threads and one inter-op thread;
* the machine is recorded (:func:`machine`): CPU count, processor, platform, torch version (and
  onnxruntime's), threads.

Latency does not depend on trained weights (same operators, same shapes), so a network is timed once
whatever its seeds. Time it while nothing else runs: the median resists a few disturbed calls, not a
busy machine.

A **training step** (:func:`time_train_step`, EfficientNetV2's S of a training-aware search) is timed
under the same protocol, in train mode: one step is the forward pass, cross-entropy with label
smoothing 0.1, the backward pass and an SGD step (momentum 0.9, Nesterov), on ``batch`` random images
and labels (fixed seed), channels_last, float32 (the trainer's CPU defaults; on CUDA when present,
synchronised around each step); :data:`STEP_WARMUP` steps are discarded and the median of
:data:`STEP_REPEATS` timed ones is the step time.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from effnas.search_spaces.builder import build
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import LATENCY_RUNTIMES
from effnas.search_spaces.onnx import onnx_bytes, onnx_session
from effnas.search_spaces.spec import NetworkSpec

#: Calls run and discarded before timing (allocator, caches, lazy initialisation).
WARMUP = 5
#: Timed calls; the latency is their median.
REPEATS = 20
#: Training steps run and discarded, and timed (their median is the step time): a step costs about
#: three forward passes, and a search times every candidate.
STEP_WARMUP = 2
STEP_REPEATS = 7


@dataclass(frozen=True)
class Protocol:
    """How a network is timed (see the module's docstring); recorded with every measurement."""

    batch: int = 16
    threads: int = 1
    runtime: str = "torch"
    warmup: int = WARMUP
    repeats: int = REPEATS

    def __post_init__(self) -> None:
        for name in ("batch", "threads", "repeats"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UserError(f"latency {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise UserError(f"latency warmup must be an integer >= 0, got {self.warmup!r}")
        if self.runtime not in LATENCY_RUNTIMES:
            raise UserError(f"latency runtime must be one of {', '.join(LATENCY_RUNTIMES)}, got {self.runtime!r}")

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Torch always; onnxruntime too when it is the protocol's runtime."""
        return ("torch",) if self.runtime == "torch" else ("torch", "onnxruntime")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """A median of ``repeats`` timed calls after ``warmup`` discarded ones (milliseconds)."""

    median_ms: float
    times_ms: tuple[float, ...]
    warmup: int

    @property
    def repeats(self) -> int:
        return len(self.times_ms)


def median_time(fn: Callable[[], object], *, warmup: int = WARMUP, repeats: int = REPEATS,
                clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times, each timed with ``clock``
    (seconds); the median of the timed calls in ms.

    >>> ticks = iter([0, 1, 0, 3, 0, 2])  # three timed calls of 1, 3 and 2 s
    >>> t = median_time(lambda: None, warmup=2, repeats=3, clock=lambda: next(ticks))
    >>> t.median_ms, t.times_ms, t.warmup
    (2000.0, (1000.0, 3000.0, 2000.0), 2)
    """
    if repeats < 1:
        raise UserError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return Timing(statistics.median(times), tuple(times), warmup)


def _processor() -> str:
    name = platform.processor()
    if name and name not in ("x86_64", "aarch64", "arm64", "i386"):
        return name
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return name or platform.machine()


def machine(threads: int, *, runtimes: tuple[str, ...] = ("torch",)) -> dict[str, Any]:
    """What the numbers were measured on: CPU count, processor, platform, Python, torch (and
    onnxruntime when used) versions, and the threads the protocol fixed."""
    m: dict[str, Any] = {"cpu_count": os.cpu_count(), "processor": _processor(), "machine": platform.machine(),
                         "platform": platform.platform(), "python": platform.python_version(),
                         "torch": torch.__version__, "threads": threads}
    if "onnxruntime" in runtimes:
        import onnxruntime  # lazy: onnxruntime is optional (effnas[deploy])
        m["onnxruntime"] = onnxruntime.__version__
    return m


def _input(batch: int, resolution: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, 3, resolution, resolution), dtype=np.float32)


def time_torch(model: torch.nn.Module, resolution: int, batch: int, protocol: Protocol) -> Timing:
    """Median latency of ``model`` (eval, eager, no_grad, CPU) on one batch, with ``protocol.threads`` threads."""
    model = model.to("cpu").eval()
    x = torch.from_numpy(_input(batch, resolution))
    before = torch.get_num_threads()
    torch.set_num_threads(protocol.threads)
    try:
        with torch.no_grad():
            return median_time(lambda: model(x), warmup=protocol.warmup, repeats=protocol.repeats)
    finally:
        torch.set_num_threads(before)


def time_onnxruntime(session: Any, resolution: int, batch: int, protocol: Protocol) -> Timing:
    """Median latency of an onnxruntime ``session`` (:func:`effnas.search_spaces.onnx.onnx_session`) on one batch."""
    feed = {"images": _input(batch, resolution)}
    return median_time(lambda: session.run(["logits"], feed), warmup=protocol.warmup, repeats=protocol.repeats)


def time_train_step(spec: NetworkSpec, protocol: Protocol, *, device: str | torch.device | None = None) -> Timing:
    """Median time of one training step of ``spec`` at its resolution on ``protocol.batch`` images, with
    ``protocol.threads`` torch threads, ``protocol.warmup`` steps discarded and ``protocol.repeats`` timed (the
    module's docstring; :data:`STEP_WARMUP` and :data:`STEP_REPEATS` are a search's). ``device``: CUDA when
    present, else the CPU."""
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    before = torch.get_num_threads()
    torch.set_num_threads(protocol.threads)
    try:
        torch.manual_seed(0)
        model = build(spec).to(dev).to(memory_format=torch.channels_last).train()  # type: ignore[call-overload]
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
        x = torch.from_numpy(_input(protocol.batch, spec.resolution)).to(dev).contiguous(
            memory_format=torch.channels_last)
        y = torch.from_numpy(np.random.default_rng(0).integers(0, spec.num_classes, protocol.batch)).to(dev)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        return median_time(step, warmup=protocol.warmup, repeats=protocol.repeats)
    finally:
        torch.set_num_threads(before)


def measure(spec: NetworkSpec, protocol: Protocol) -> dict[str, Any]:
    """Latency of ``spec`` at batch 1 and ``protocol.batch`` under ``protocol``: ``latency_ms_b1``,
    ``latency_ms_bN`` (torch) and, with onnxruntime, ``ort_latency_ms_b1``, ``ort_latency_ms_bN``;
    with ``latency_batch``, the ``protocol`` and the ``machine``."""
    torch.manual_seed(0)
    model = build(spec).eval()
    r = spec.resolution
    out: dict[str, Any] = {"latency_batch": protocol.batch}
    out["latency_ms_b1"] = time_torch(model, r, 1, protocol).median_ms
    out["latency_ms_bN"] = time_torch(model, r, protocol.batch, protocol).median_ms
    if "onnxruntime" in protocol.runtimes:
        session = onnx_session(onnx_bytes(model, resolution=r), threads=protocol.threads)
        out["ort_latency_ms_b1"] = time_onnxruntime(session, r, 1, protocol).median_ms
        out["ort_latency_ms_bN"] = time_onnxruntime(session, r, protocol.batch, protocol).median_ms
    out["protocol"] = protocol.to_dict()
    out["machine"] = machine(protocol.threads, runtimes=protocol.runtimes)
    return out


__all__ = ["REPEATS", "STEP_REPEATS", "STEP_WARMUP", "WARMUP", "Protocol", "Timing", "machine", "measure",
           "median_time", "time_onnxruntime", "time_torch", "time_train_step"]
