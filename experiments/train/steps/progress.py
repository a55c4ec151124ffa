"""The progress bar of a training run: optimiser steps, with the epoch's running loss, accuracy
and images per second (tqdm, on the terminal's stderr)."""

from __future__ import annotations

import time
from typing import Any

from torch import Tensor


class Progress:
    """A bar of ``total`` steps labelled ``desc`` (nothing at all unless ``enabled``); ``world``
    ranks train at the rate of this one."""

    def __init__(self, total: int, desc: str, *, end_epoch: int, enabled: bool = True, world: int = 1) -> None:
        self.end_epoch, self.world = end_epoch, world
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm  # lazy: only for a terminal run (searches and ranks > 0 are quiet)

            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=True, desc=desc)

    def step(self, i: int, steps: int, epoch: int, *, loss_sum: Tensor, correct: Tensor, seen: int, t0: float) -> None:
        """Step ``i`` of ``steps`` of ``epoch`` done: ``seen`` images so far (the epoch started at
        ``t0``) with ``loss_sum`` summed loss and ``correct`` right predictions."""
        if self.bar is None:
            return
        self.bar.update(1)
        if i % 5 == 0 or i == steps - 1:
            dt = time.perf_counter() - t0
            self.bar.set_postfix_str(f"epoch {epoch}/{self.end_epoch} loss {float(loss_sum) / seen:.3f} "
                                     f"acc {int(correct) / seen:.3f} {seen * self.world / dt:.0f} img/s",
                                     refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
