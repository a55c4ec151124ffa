"""The progress of a training run on stderr: on a terminal a bar of optimiser steps (tqdm) with the
epoch's running loss, accuracy and images per second and the last validation accuracy; elsewhere
(a log file, a pipe) one plain line per epoch and no bar, so a log holds no carriage returns."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from torch import Tensor

from effnas.search_spaces.common.progress import duration, epoch_text, percent


class Progress:
    """The progress of ``total`` steps labelled ``desc`` (nothing at all unless ``enabled``);
    ``world`` ranks train at the rate of this one. A bar when ``stream`` (default stderr) is a
    terminal, a line per epoch (:meth:`epoch`) otherwise."""

    def __init__(self, total: int, desc: str, *, end_epoch: int, enabled: bool = True, world: int = 1,
                 stream: TextIO | None = None) -> None:
        self.end_epoch, self.world, self.desc, self.enabled = end_epoch, world, desc, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.val = ""  # the last epoch's validation accuracy, shown in the bar
        self.bar: Any = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm  # lazy: only for a terminal run (searches and ranks > 0 are quiet)

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=True, desc=desc, file=self.stream)

    def step(self, i: int, steps: int, epoch: int, *, loss_sum: Tensor, correct: Tensor, seen: int, t0: float) -> None:
        """Step ``i`` of ``steps`` of ``epoch`` done: ``seen`` images so far (the epoch started at
        ``t0``) with ``loss_sum`` summed loss and ``correct`` right predictions."""
        if self.bar is None:
            return
        self.bar.update(1)
        if i % 5 == 0 or i == steps - 1:
            dt = time.perf_counter() - t0
            self.bar.set_postfix_str(f"epoch {epoch}/{self.end_epoch} loss {float(loss_sum) / seen:.3f} "
                                     f"acc {int(correct) / seen:.3f} {seen * self.world / dt:.0f} img/s"
                                     + (f" | {self.val}" if self.val else ""), refresh=False)

    def epoch(self, record: dict[str, Any]) -> None:
        """An epoch ended with ``record`` (its ``epochs.jsonl`` line): the bar shows its validation
        accuracy from now on; without a bar it is a line of its own."""
        if not self.enabled:
            return
        text = epoch_text(record, self.end_epoch)
        if self.bar is not None:
            self.val = percent(record.get("val_accuracy"))
            self.bar.set_postfix_str(text, refresh=True)
            return
        seconds, ips = record.get("seconds"), record.get("images_per_second")
        extra = (f"  {duration(seconds)}" if isinstance(seconds, int | float) else "") + \
            (f"  {ips:.0f} img/s" if isinstance(ips, int | float) else "")
        self.stream.write(f"{self.desc}  {text}{extra}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
