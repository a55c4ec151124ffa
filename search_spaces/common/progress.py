"""Console progress of a batch of runs (family members, grid candidates, search trials).

One line per finished run, the same everywhere (in this process and under Ray, for runs and for
search trials)::

    [7/26] width phi2 seed0  val 63.1 %  41 s | ETA 12 min

The ETA is the finished runs' mean wall time times the rounds still to run, ``ceil(remaining /
workers)`` (runs in flight count as not started); given each run's cost (a family's or a grid's
MACs per image), the finished runs' seconds per unit of cost times the cost left instead, so a
batch whose large members come last is not promised the small ones' pace. On a terminal (:class:`Console` with ``live``)
a status line at the bottom shows the runs in flight with their epoch, redrawn on each epoch and
cleared before a finished run's line is written above it; elsewhere (a log file, a pipe) each
epoch is a plain line of its own and nothing is ever redrawn (no carriage returns).

Used by ``scaling`` (through the ``progress`` of :func:`effnas.scaling.runner.run_jobs`), by
``nas`` (the search's per-trial line) and by ``experiments`` (which builds the board for its
commands), so it sits at the bottom of the package graph and imports nothing of effnas.
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

#: Finished statuses shown without a status word (the line's accuracy says it all).
QUIET_STATUSES = frozenset({"completed"})


def duration(seconds: float) -> str:
    """A wall time as a person reads it: seconds to 99 s, minutes to 99 min, hours to 72 h, days.

    >>> duration(41.2), duration(720), duration(3 * 3600 + 900), duration(9 * 86400), duration(float("nan"))
    ('41 s', '12 min', '3.2 h', '9 days', '?')
    >>> duration(0.3)
    '<1 s'
    """
    if not math.isfinite(seconds):
        return "?"
    if seconds < 0.5:
        return "<1 s"
    if seconds < 99.5:
        return f"{seconds:.0f} s"
    if seconds < 99.5 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def rate(x: float) -> str:
    """A rate with the digits worth reading: ``2340 -> '2340'``, ``3.13 -> '3.1'``, ``0.295 -> '0.3'``.

    >>> rate(2340.4), rate(93.2), rate(3.13), rate(0.295)
    ('2340', '93', '3.1', '0.3')
    """
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def plural(n: int, word: str) -> str:
    """``plural(1, 'run') -> '1 run'``, ``plural(26, 'run') -> '26 runs'``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def eta(durations: Sequence[float], remaining: int, workers: int = 1) -> float:
    """Seconds until ``remaining`` runs are done, ``workers`` at a time, each taking the mean of
    ``durations`` (NaN without a finished run to go by).

    >>> eta([40.0, 44.0], remaining=5, workers=2)  # 3 rounds of 42 s
    126.0
    >>> eta([], remaining=3)
    nan
    """
    if remaining <= 0:
        return 0.0
    if not durations:
        return math.nan
    return statistics.fmean(durations) * math.ceil(remaining / max(1, workers))


def eta_by_cost(durations: Sequence[float], costs_done: Sequence[float], costs_left: Sequence[float],
                workers: int = 1) -> float:
    """Seconds until runs of ``costs_left`` (e.g. MACs per image: every run of a batch trains the
    same images and epochs) are done, ``workers`` at a time, at the seconds per unit of cost the
    finished runs took: the work shared by the workers, but never less than the largest run left.
    NaN without a finished run to go by.

    >>> eta_by_cost([60.0], [1.0], [4.0, 4.0], workers=2)  # a 1x run took 60 s; two 4x runs side by side
    240.0
    >>> eta_by_cost([60.0], [1.0], [4.0, 1.0, 1.0], workers=2)  # the 4x run is the critical path
    240.0
    """
    if not costs_left:
        return 0.0
    if not durations or sum(costs_done) <= 0:
        return math.nan
    per_unit = math.fsum(durations) / math.fsum(costs_done)
    return per_unit * max(math.fsum(costs_left) / max(1, workers), max(costs_left))


def percent(accuracy: Any) -> str:
    """``0.631 -> 'val 63.1 %'``; '' for a missing or non-finite accuracy."""
    if not isinstance(accuracy, int | float) or not math.isfinite(accuracy):
        return ""
    return f"val {100 * accuracy:.1f} %"


def run_line(done: int, total: int, label: str, *, status: str | None = None, accuracy: Any = None,
             seconds: float | None = None, tail: str = "") -> str:
    """The line of a finished run: ``[done/total] label  [status]  val A %  T | tail``.

    >>> run_line(7, 26, "width phi2 seed0", status="completed", accuracy=0.631, seconds=41, tail="ETA 12 min")
    '[7/26] width phi2 seed0  val 63.1 %  41 s | ETA 12 min'
    >>> run_line(3, 4, "phi1 seed0", status="oom", seconds=2.0)
    '[3/4] phi1 seed0  oom  2 s'
    """
    parts = [f"[{done}/{total}] {label}"]
    if status and status not in QUIET_STATUSES:
        parts.append(status)
    if acc := percent(accuracy):
        parts.append(acc)
    if seconds is not None and math.isfinite(seconds):
        parts.append(duration(seconds))
    return "  ".join(parts) + (f" | {tail}" if tail else "")


def epoch_text(record: Mapping[str, Any], epochs: int | None = None) -> str:
    """What a run's last epoch record says: ``epoch 3/30  loss 1.234  val 52.1 %``.

    >>> epoch_text({"epoch": 3, "train_loss": 1.2345, "val_accuracy": 0.521}, 30)
    'epoch 3/30  loss 1.234  val 52.1 %'
    """
    e = record.get("epoch")
    parts = [f"epoch {e}" + (f"/{epochs}" if epochs else "")] if e is not None else []
    loss = record.get("train_loss")
    if isinstance(loss, int | float) and math.isfinite(loss):
        parts.append(f"loss {loss:.3f}")
    if acc := percent(record.get("val_accuracy")):
        parts.append(acc)
    return "  ".join(parts)


class Console:
    """Where progress goes: ``stream`` (default stderr) and whether it is ``live`` (a terminal:
    default ``stream.isatty()``), which alone allows a status line redrawn in place."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if live is None:
            isatty = getattr(self.stream, "isatty", None)
            live = bool(isatty and isatty())
        self.live = live
        self._status = ""

    def line(self, text: str) -> None:
        """A permanent line (above the status line, which is redrawn under it)."""
        status = self._status
        self.clear()
        self.stream.write(text + "\n")
        if status:
            self.status(status)
        self.stream.flush()

    def status(self, text: str) -> None:
        """Replace the status line (a terminal only; elsewhere nothing is written)."""
        if not self.live:
            return
        width = shutil.get_terminal_size((100, 24)).columns
        text = text if len(text) < width else text[:max(1, width - 2)] + "…"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._status = text

    def clear(self) -> None:
        """Remove the status line."""
        if self._status:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._status = ""


class RunBoard:
    """The runs of one batch on a :class:`Console`: a line per finished run with its ETA, and the
    runs in flight with their epoch (the status line on a terminal, plain lines elsewhere).

    ``begin`` names the batch's runs; ``started``, ``epoch`` and ``finished`` take a run's index
    among them (what :func:`effnas.scaling.runner.run_jobs` and its executors call). ``workers``
    runs go at once. The same board can serve several batches (one ``begin`` each).
    """

    def __init__(self, console: Console | None = None, *, workers: int = 1) -> None:
        self.console = console if console is not None else Console()
        self.workers = max(1, workers)
        self.begin([])

    def begin(self, labels: Sequence[str], *, done: int = 0, epochs: int | None = None,
              costs: Sequence[float] | None = None) -> None:
        """A batch of ``labels`` to run after ``done`` runs that finished earlier (counted in
        ``[k/N]``, not in the ETA), each of ``epochs`` epochs when known. ``costs`` (one positive
        number per run, e.g. its MACs per image) make the ETA weigh the runs left by their cost
        (:func:`eta_by_cost`) instead of counting them alike (:func:`eta`)."""
        self.labels, self.epochs = list(labels), epochs
        ok = costs is not None and len(costs) == len(self.labels) and all(c > 0 for c in costs)
        self.costs = [float(c) for c in costs] if ok and costs is not None else None
        self.costs_done: list[float] = []
        self.done, self.total = done, done + len(self.labels)
        self.t0 = time.perf_counter()
        self.durations: list[float] = []
        self.flight: dict[int, str] = {}
        self.t_start: dict[int, float] = {}
        self.ended: set[int] = set()

    def started(self, index: int) -> None:
        self.t_start[index] = time.perf_counter()
        self.flight[index] = "starting"
        self._redraw()

    def epoch(self, index: int, record: Mapping[str, Any]) -> None:
        self.t_start.setdefault(index, time.perf_counter())
        text = epoch_text(record, self.epochs)
        if self.console.live:
            self.flight[index] = text
            self._redraw()
        else:
            self.console.line(f"  {self.labels[index]}  {text}")

    def finished(self, index: int, metrics: Mapping[str, Any]) -> None:
        """Run ``index`` ended with ``metrics`` (``status``, ``val_accuracy``, ``train_seconds``);
        a second report of the same run (a retry) replaces nothing and is not counted again."""
        self.flight.pop(index, None)
        if index in self.ended:
            return
        self.ended.add(index)
        self.done += 1
        start = self.t_start.get(index)
        seconds = time.perf_counter() - start if start is not None else metrics.get("train_seconds")
        if isinstance(seconds, int | float) and not metrics.get("reused"):
            self.durations.append(float(seconds))
            if self.costs is not None:
                self.costs_done.append(self.costs[index])
        left = self.total - self.done
        if self.costs is not None:
            rest = [c for i, c in enumerate(self.costs) if i not in self.ended]
            seconds_left = eta_by_cost(self.durations, self.costs_done, rest, self.workers)
        else:
            seconds_left = eta(self.durations, left, self.workers)
        tail = (f"ETA {duration(seconds_left)}" if left
                else f"{plural(len(self.labels), 'run')} in {duration(time.perf_counter() - self.t0)}")
        self.console.clear()  # the status line is redrawn below without this run
        self.console.line(run_line(self.done, self.total, self.labels[index], status=metrics.get("status"),
                                   accuracy=metrics.get("val_accuracy"),
                                   seconds=seconds if isinstance(seconds, int | float) else None, tail=tail))
        self._redraw()

    def close(self) -> None:
        """The batch is over (or stopped): remove the status line."""
        self.flight.clear()
        self.console.clear()

    def _redraw(self) -> None:
        if not self.console.live:
            return
        if not self.flight:
            self.console.clear()
            return
        runs = " · ".join(f"{self.labels[i]} {text}" for i, text in sorted(self.flight.items()))
        self.console.status(f"running {len(self.flight)}: {runs}")


__all__ = ["Console", "RunBoard", "duration", "epoch_text", "eta", "eta_by_cost", "percent", "plural", "rate",
           "run_line"]
