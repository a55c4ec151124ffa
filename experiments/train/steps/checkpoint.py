"""What the trainer writes after each validated epoch: ``best.pt`` when validation improved,
``last.pt`` (everything a resume needs, and the progressive stage its epoch trained in) and the
epoch's line in ``epochs.jsonl`` (layout and atomicity: :mod:`effnas.experiments.train.rundir`)."""

from __future__ import annotations

from typing import Any

from effnas.experiments.config.schema import JobConfig
from effnas.experiments.train.distributed import Context
from effnas.experiments.train.rundir import BEST, LAST, RunDir
from effnas.experiments.train.steps.setup import Setup
from effnas.experiments.train.steps.state import TrainState, snapshot


def save_epoch(run: RunDir | None, cfg: JobConfig, ctx: Context, s: Setup, state: TrainState,
               record: dict[str, Any], *, improved: bool, elapsed: float) -> None:
    """Rank 0 writes the epoch ``record`` just added to ``state``; every rank calls this (the RNG
    states of all ranks are gathered into ``last.pt``)."""
    resumable = snapshot(state, optimizer=s.optimizer, ema=s.ema, scaler=s.scaler, ctx=ctx, elapsed=elapsed)
    if run is None or not ctx.lead:
        return
    if improved:
        run.save(BEST, {"epoch": state.epoch, "val_accuracy": record["val_accuracy"],
                        "model": s.eval_model.state_dict(), "spec": s.spec.to_dict()})
    run.save(LAST, {"model": s.model.state_dict(), **resumable, "spec": s.spec.to_dict(), "config": cfg.to_dict(),
                    "stage": s.stage.to_dict()})
    run.append_epoch(record)
