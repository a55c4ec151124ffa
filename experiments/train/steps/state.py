"""Where a run is, as checkpointable data: finished epochs and their records, optimiser steps, best
validation accuracy, time spent; and the optimiser / EMA / scaler / RNG states beside it.

:func:`snapshot` is the resumable part of a checkpoint (the trainer's ``last.pt``, the supernet's
``supernet.pt``), :func:`restore` puts it back, and :func:`resume_point` is rank 0's decision
about a run directory (reuse a finished run, resume from ``last.pt``, or start afresh), shared
with every rank. Restoring the RNG states last makes a resumed run draw exactly what an
uninterrupted one would (each rank its own states).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from effnas.experiments.train.distributed import Context
from effnas.experiments.train.optim import ModelEMA
from effnas.experiments.train.rng import rng_state, set_rng_state
from effnas.experiments.train.rundir import LAST, LAST_KEYS, RunDir, open_run

if TYPE_CHECKING:
    from effnas.experiments.config.schema import JobConfig


@dataclass
class TrainState:
    """The counters of a run after ``epoch`` finished epochs (0: nothing trained yet).

    ``best_val`` is -1 until an epoch was validated; ``elapsed_before`` is the wall time of the
    run's earlier processes (a resumed run adds its own)."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = -1.0
    best_epoch: int = 0
    train_seconds: float = 0.0
    train_images: int = 0
    elapsed_before: float = 0.0

    def count(self, *, steps: int, seconds: float, images: int) -> None:
        """An epoch's training: ``steps`` optimiser steps, ``seconds`` on ``images`` images."""
        self.step += steps
        self.train_seconds += seconds
        self.train_images += images

    def add(self, record: dict[str, Any]) -> bool:
        """A finished epoch's record; whether its ``val_accuracy`` (if any) is the best so far."""
        self.epoch = int(record["epoch"])
        self.history.append(record)
        improved = "val_accuracy" in record and record["val_accuracy"] > self.best_val
        if improved:
            self.best_val, self.best_epoch = record["val_accuracy"], self.epoch
        return improved

    def to_checkpoint(self, elapsed: float) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "history": self.history, "best_val": self.best_val,
                "best_epoch": self.best_epoch, "train_seconds": self.train_seconds,
                "train_images": self.train_images, "elapsed": elapsed}

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any]) -> TrainState:
        """The state a checkpoint holds. A ``supernet.pt`` written before the counters were
        stored has only ``epoch`` and ``history``: its counters start at zero."""
        return cls(epoch=int(ck["epoch"]), step=int(ck.get("step", 0)), history=list(ck["history"]),
                   best_val=float(ck.get("best_val", -1.0)), best_epoch=int(ck.get("best_epoch", 0)),
                   train_seconds=float(ck.get("train_seconds", 0.0)), train_images=int(ck.get("train_images", 0)),
                   elapsed_before=float(ck.get("elapsed", 0.0)))


def snapshot(state: TrainState, *, optimizer: torch.optim.Optimizer, ema: ModelEMA | None = None,
             scaler: torch.amp.GradScaler | None = None, ctx: Context | None = None,
             elapsed: float = 0.0) -> dict[str, Any]:
    """The resumable state after an epoch: optimiser, EMA, scaler, every rank's RNG states (a
    collective: every rank calls it) and the counters."""
    rngs = (ctx or Context()).gather(rng_state())
    return {"optimizer": optimizer.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None, "rng": rngs[0], "rng_ranks": rngs,
            **state.to_checkpoint(elapsed)}


def restore(ck: dict[str, Any], *, optimizer: torch.optim.Optimizer, ema: ModelEMA | None = None,
            scaler: torch.amp.GradScaler | None = None, rank: int = 0) -> TrainState:
    """Put a :func:`snapshot` back (the model's weights are the caller's) and return its counters;
    rank ``rank`` gets its own RNG states (rank 0's when the checkpoint has fewer ranks)."""
    optimizer.load_state_dict(ck["optimizer"])
    if ema is not None and ck.get("ema") is not None:
        ema.load_state_dict(ck["ema"])
    if scaler is not None and ck.get("scaler") is not None:
        scaler.load_state_dict(ck["scaler"])
    ranks = ck.get("rng_ranks") or [ck["rng"]]
    set_rng_state(ranks[rank] if rank < len(ranks) else ck["rng"])
    return TrainState.from_checkpoint(ck)


def resume_point(run: RunDir | None, cfg: JobConfig, ctx: Context
                 ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Rank 0 decides, every rank learns: (metrics of the finished run to return, ``last.pt`` to
    resume from); both None: a fresh run (:func:`effnas.experiments.train.rundir.open_run`)."""
    if run is None:
        return None, None
    found = open_run(run, cfg) if ctx.lead else None
    found = ctx.share(found)
    if found == "resume":
        return None, run.load(LAST, keys=LAST_KEYS)  # checked: loads, current layout, finite tensors
    return found, None
