"""The trainer: a :class:`effnas.experiments.config.schema.JobConfig` in, a metrics dict out.

``train(job)`` is the engine; ``train_fn(config: dict, *, on_epoch=None)`` is the
JSON-dict wrapper that search, grid search and family runs receive as their trainer (the
contract in ``docs/architecture.md``). One loop in plain sight:

1. Load the data set (cached per process) and split it (test fixed, validation seeded).
2. Build the spec at the run's resolution and the data set's class count; count params/MACs.
3. Per epoch: a seeded permutation, batches resized and augmented in torch, forward under
   autocast when asked, label-smoothed cross-entropy, backward, clipping, optimiser step,
   per-step learning rate, EMA update; then validation (with EMA weights when enabled),
   ``last.pt`` (atomic; with the progressive stage), ``best.pt`` when validation improves, a line
   in ``epochs.jsonl``, the epoch's scalars to the tracker (``train.track``: TensorBoard event files
   in the run directory by default, :mod:`effnas.experiments.train.steps.track`) and
   ``on_epoch(record)`` (True stops the run: status ``pruned``).
   With ``train.progressive_stages > 1`` each epoch first enters its stage (its image size,
   RandAugment magnitude, dropout and mixup; :mod:`effnas.experiments.config.progressive`); validation
   and test stay at the run's resolution, the last stage's.
4. Test accuracy of the final weights (with ``train.tta`` also ``test_accuracy_tta``: test-time
   augmentation, a separate metric); ``metrics.json``.

Outcomes (``status``): ``completed``; ``diverged`` (a NaN/inf loss; ``diverged_epoch``
records where; checkpoints of the last good epoch are kept); ``oom`` (out of memory: ``error``
names the per-device batch and the fix); ``failed`` (a device or file error while training:
``error`` holds its one-line message, so a search can go on); ``pruned`` (``on_epoch`` asked
to stop; no test evaluation). Bad configuration or data raises ``ValueError`` before anything
is trained, and any other exception (a bug) propagates (:mod:`effnas.experiments.train.outcomes`).

Several devices (``devices``) and gradient accumulation (``accumulate``): each step's
``batch_size`` images are cut into micro-batches (:mod:`effnas.experiments.train.distributed`).

Performance on CPU (``bench/train_throughput.py``; the measured ratios are in docs/training.md):
channels_last by default (faster than NCHW), fp32 (bf16 autocast was slower on CPU), no DataLoader
workers for in-memory sets (streamed folders decode in DataLoader workers: ``docs/data.md``),
``threads`` torch threads, by default the cores other processes leave free
(:mod:`effnas.experiments.train.threads`).
On CUDA: channels_last and mixed precision (bf16 when supported, else fp16 with a scaler);
docs/gpu.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from effnas.experiments.config.progressive import Stage, stage_at
from effnas.experiments.config.recipes import resolve
from effnas.experiments.config.schema import JobConfig
from effnas.experiments.train import distributed
from effnas.experiments.train.devices import device_for
from effnas.experiments.train.optim import train_mode
from effnas.experiments.train.outcomes import label_error, training_outcome
from effnas.experiments.train.rundir import METRICS, RunDir
from effnas.experiments.train.steps.checkpoint import save_epoch
from effnas.experiments.train.steps.epoch import MicroBatches, Schedule, Tally, Update, train_epoch
from effnas.experiments.train.steps.evaluate import evaluate_ranks
from effnas.experiments.train.steps.metrics import epoch_record, failure, final_metrics, start_metrics
from effnas.experiments.train.steps.progress import Progress
from effnas.experiments.train.steps.setup import check_sync_bn, enter_stage, setup
from effnas.experiments.train.steps.state import TrainState, restore, resume_point
from effnas.experiments.train.steps.track import open_tracker
from effnas.search_spaces.common.errors import UserError

OnEpoch = Callable[[dict[str, Any]], bool | None]

#: How an early stop shows in the metrics.
STOPS: dict[str, dict[str, Any]] = {"pruned": {"status": "pruned", "stopped_by": "on_epoch"},
                                    "max_minutes": {"stopped_by": "max_minutes"}}


def train_fn(config: dict[str, Any], *, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """The trainer contract of ``docs/architecture.md``: a JSON config dict in, metrics out."""
    return train(JobConfig.from_dict(dict(config)), on_epoch=on_epoch)


def train(config: JobConfig, *, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """Train ``config`` and return its metrics (see the module docstring for the statuses).

    With ``out_dir`` set: a finished run (``completed`` or ``diverged``) with the same config
    is returned from ``metrics.json`` without training; with ``resume`` an interrupted run
    continues from ``last.pt``; otherwise the directory's old run files are replaced.
    ``devices > 1``: the run is data-parallel over that many processes
    (:mod:`effnas.experiments.train.distributed`); this process is rank 0 and returns its metrics.
    """
    cfg = config
    device = device_for(cfg)
    check_sync_bn(cfg, device)
    if cfg.devices > 1 and not distributed.active():
        return distributed.launch(train, cfg, device=device, on_epoch=on_epoch)
    ctx = distributed.Context.current(cfg.devices)
    t_start = time.perf_counter()
    run = RunDir(cfg.out_dir) if cfg.out_dir else None
    finished, ckpt = resume_point(run, cfg, ctx)  # rank 0 decides: reuse the finished run, resume, or start afresh
    if finished is not None:
        return {**finished, "reused": True}
    s = setup(cfg, ctx, device, weights=ckpt["model"] if ckpt is not None else None,
              start_epoch=int(ckpt["epoch"]) + 1 if ckpt is not None else 1)
    state = TrainState()
    if ckpt is not None:
        check_stage(ckpt, s.stages)
        state = restore(ckpt, optimizer=s.optimizer, ema=s.ema, scaler=s.scaler, rank=ctx.rank)
        if run is not None and ctx.lead:
            run.write_epochs(state.history)
    metrics = start_metrics(cfg, ctx, s)
    end_epoch = min(cfg.epochs, cfg.max_epochs or cfg.epochs)
    progress = Progress((end_epoch - state.epoch) * s.steps_per_epoch, f"{s.spec.name} {s.resolution}px",
                        end_epoch=end_epoch, enabled=not cfg.quiet and ctx.lead, world=ctx.world)
    schedule = Schedule.of(cfg, lr=s.lr, steps_per_epoch=s.steps_per_epoch, epochs=cfg.epochs)
    recipe = resolve(cfg)
    micro_batches = MicroBatches(s.step_model, ctx, s.autocast, cfg.accumulate, recipe.label_smoothing, s.scaler)
    update = Update(s.optimizer, s.model, cfg.grad_clip, s.scaler, s.ema)
    with open_tracker(cfg, run, lead=ctx.lead, start_epoch=state.epoch) as tracker:
        try:
            for epoch in range(state.epoch + 1, end_epoch + 1):
                t0 = time.perf_counter()
                if (stage := stage_at(s.stages, epoch)) != s.stage:
                    enter_stage(cfg, ctx, s, stage)
                micro_batches.mixup = stage.mixup
                train_mode(s.model, frozen_backbone=cfg.freeze_backbone)
                result = train_epoch(s.train_loader, epoch, micro_batches, schedule=schedule, update=update,
                                     start_step=state.step, tally=Tally(s.device), ctx=ctx, progress=progress)
                state.count(steps=result.steps, seconds=result.seconds, images=result.images)
                val_acc, val_loss = (math.nan, math.nan) if result.diverged else evaluate_ranks(
                    ctx, s.eval_model, s.val_loader, s.autocast)
                if not math.isfinite(val_loss):  # a NaN/inf training loss, or weights that now give one
                    metrics.update(status="diverged", diverged_epoch=epoch)
                    break
                record = epoch_record(epoch, result, val_accuracy=val_acc, val_loss=val_loss, lr=s.lr, t0=t0,
                                      stage=stage if len(s.stages) > 1 else None)
                improved = state.add(record)
                elapsed = state.elapsed_before + time.perf_counter() - t_start
                save_epoch(run, cfg, ctx, s, state, record, improved=improved, elapsed=elapsed)
                progress.epoch(record)
                tracker.epoch(record)
                stop = _stop(cfg, ctx, on_epoch, record, elapsed=elapsed, end_epoch=end_epoch)
                if stop is not None:
                    metrics.update(STOPS[stop])
                    break
            else:
                if end_epoch < cfg.epochs:
                    metrics["stopped_by"] = "max_epochs"
            if metrics["status"] == "completed":
                metrics["test_accuracy"], metrics["test_loss"] = evaluate_ranks(ctx, s.eval_model, s.test_loader,
                                                                                s.autocast)
                if recipe.tta:  # beside the plain accuracy, never in its place
                    metrics["test_accuracy_tta"], metrics["test_loss_tta"] = evaluate_ranks(
                        ctx, s.eval_model, s.test_loader, s.autocast, tta=True, flip=s.ds.flip_invariant)
        except Exception as e:
            if (bad_labels := label_error(e, (s.ds.pool.labels, s.ds.test.labels), s.spec.num_classes)) is not None:
                raise bad_labels from e  # bad data, not an outcome of training
            if not training_outcome(e):
                raise  # a bug: stop with its traceback
            metrics.update(failure(cfg, s.device, e))
        finally:
            progress.close()
        final_metrics(metrics, state, s, seconds=state.elapsed_before + time.perf_counter() - t_start)
        tracker.final(metrics)
    if run is not None and ctx.lead:
        run.write_json(METRICS, metrics)
    return metrics


def check_stage(ckpt: dict[str, Any], plan: tuple[Stage, ...]) -> None:
    """A resumed ``last.pt`` was written in the stage this config puts its epoch in (the config is the
    same, :func:`effnas.experiments.train.rundir.open_run`; a schedule that changed since is refused)."""
    written, epoch = ckpt.get("stage"), int(ckpt["epoch"])
    expected = stage_at(plan, epoch).to_dict() if epoch else None
    if written is not None and written != expected:
        raise UserError(f"last.pt was written in progressive stage {written} but this version puts epoch {epoch} in "
                         f"{expected}: start the run afresh (without --resume)")


def _stop(cfg: JobConfig, ctx: distributed.Context, on_epoch: OnEpoch | None, record: dict[str, Any], *,
          elapsed: float, end_epoch: int) -> str | None:
    """Rank 0 decides, every rank learns, whether the run stops after ``record``'s epoch: ``pruned``
    (``on_epoch`` returned True) or ``max_minutes`` (time is up before the last epoch)."""
    stop = None
    if ctx.lead:
        if on_epoch is not None and on_epoch(dict(record)):
            stop = "pruned"
        elif cfg.max_minutes is not None and elapsed >= cfg.max_minutes * 60 and record["epoch"] < end_epoch:
            stop = "max_minutes"
    return ctx.share(stop)  # type: ignore[no-any-return]
