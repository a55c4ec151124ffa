"""One training epoch: the optimiser steps over a loader's batches, shared by the trainer
(:func:`effnas.experiments.train.loop.train`) and the supernet
(:func:`effnas.experiments.estimators.supernet.train_supernet`).

Each step: the learning rate of the step (:class:`Schedule`), ``zero_grad``, the step's gradients
(a :data:`ForwardBackward`: the trainer's :class:`MicroBatches`, the supernet's sampled
candidates), a divergence check (a NaN/inf loss on any rank ends the epoch before the update),
then the update (:class:`Update`: fp16 unscaling, clipping, optimiser step, EMA). The running loss
and accuracy stay on the device (:class:`Tally`) and are summed over the ranks once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effnas.experiments.config.recipes import resolve
from effnas.experiments.config.schema import TrainConfig
from effnas.experiments.data.batching import Loader
from effnas.experiments.train.distributed import Context
from effnas.experiments.train.optim import ModelEMA, lr_factor
from effnas.experiments.train.steps.progress import Progress

Batches = Iterator[tuple[Tensor, Tensor]]


class Tally:
    """An epoch's running training loss (summed per image), correct predictions and images.

    ``dtype`` of the loss sum: float32 for the trainer; the supernet's ``epochs.csv`` has always
    summed in double precision (float64)."""

    def __init__(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.loss_sum = torch.zeros((), device=device, dtype=dtype)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0

    def add(self, loss: Tensor, logits: Tensor, y: Tensor) -> None:
        """A batch's mean ``loss`` and ``logits`` for labels ``y``."""
        self.seen += len(y)
        self.loss_sum += loss.detach().to(self.loss_sum.dtype) * len(y)
        self.correct += (logits.argmax(1) == y).sum()


#: One optimiser step's gradients from the next batch(es): returns the step's loss, whose
#: finiteness decides divergence, and adds each batch to the tally.
ForwardBackward = Callable[[Batches, Tally], Tensor]


@dataclass(frozen=True)
class Schedule:
    """The learning rate at optimiser step ``step``: ``lr x lr_factor(step) x`` each param group's
    ``lr_mult`` (:func:`effnas.experiments.train.optim.lr_factor`)."""

    lr: float
    steps_per_epoch: int
    epochs: int
    schedule: str
    warmup_epochs: float
    decay_rate: float
    decay_epochs: float

    @classmethod
    def of(cls, cfg: TrainConfig, *, lr: float, steps_per_epoch: int, epochs: int) -> Schedule:
        """``cfg``'s schedule over ``epochs`` epochs of ``steps_per_epoch`` steps from ``lr`` (schedule and
        warm-up: given, else the recipe's, :mod:`effnas.experiments.config.recipes`)."""
        r = resolve(cfg)
        return cls(lr, steps_per_epoch, epochs, r.schedule, r.warmup(cfg.warmup_epochs, epochs), cfg.decay_rate,
                   cfg.decay_epochs)

    def factor(self, step: int) -> float:
        return lr_factor(step, steps_per_epoch=self.steps_per_epoch, epochs=self.epochs, schedule=self.schedule,
                         warmup_epochs=self.warmup_epochs, decay_rate=self.decay_rate, decay_epochs=self.decay_epochs)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every param group's learning rate for ``step``; returns the factor."""
        f = self.factor(step)
        for g in optimizer.param_groups:
            g["lr"] = self.lr * f * g["lr_mult"]
        return f


@dataclass
class Update:
    """The optimiser step after a step's gradients: unscale (fp16), clip ``model``'s gradient
    norm to ``grad_clip`` (0: no clipping), step, update the EMA of ``model``."""

    optimizer: torch.optim.Optimizer
    model: nn.Module
    grad_clip: float = 0.0
    scaler: torch.amp.GradScaler | None = None
    ema: ModelEMA | None = None

    def __call__(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)


@dataclass
class MicroBatches:
    """The trainer's :data:`ForwardBackward`: ``accumulate`` micro-batches of this rank, each a
    forward under ``autocast`` and a backward of its label-smoothed cross-entropy divided by
    ``accumulate`` (DDP averages the ranks, this the micro-batches: the mean over the global
    batch); DDP's all-reduce only at the last micro-batch.

    ``mixup`` > 0 (progressive learning's stages set it): each micro-batch is mixed with a shuffled
    copy of itself, ``lam x + (1 - lam) x[perm]`` with ``lam ~ Beta(mixup, mixup)``, and its loss is
    ``lam CE(y) + (1 - lam) CE(y[perm])`` (Zhang et al. 2018; automl's ``mixup`` draws one ``lam`` per
    batch too); ``lam`` and ``perm`` come from torch's global generator, which checkpoints keep.
    The tally counts a prediction right when it is the unmixed label."""

    model: nn.Module
    ctx: Context
    autocast: AbstractContextManager[Any]
    accumulate: int
    label_smoothing: float
    scaler: torch.amp.GradScaler | None = None
    mixup: float = 0.0

    def __call__(self, batches: Batches, tally: Tally) -> Tensor:
        step_loss = torch.zeros((), device=tally.loss_sum.device)
        for a in range(self.accumulate):
            x, y = next(batches)
            lam, perm = 1.0, None
            if self.mixup > 0:
                lam = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
                perm = torch.randperm(len(y)).to(y.device)
                x = lam * x + (1 - lam) * x[perm]
            with self.ctx.no_sync(self.model, a == self.accumulate - 1):
                with self.autocast:
                    out = self.model(x)
                    loss = F.cross_entropy(out.float(), y, label_smoothing=self.label_smoothing)
                    if perm is not None:
                        loss = lam * loss + (1 - lam) * F.cross_entropy(out.float(), y[perm],
                                                                        label_smoothing=self.label_smoothing)
                scaled = loss / self.accumulate
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            step_loss += loss.detach()
            tally.add(loss, out, y)
        return step_loss


@dataclass(frozen=True)
class EpochResult:
    """What an epoch trained: ``steps`` optimiser steps (fewer when it ``diverged``), the last
    step's learning-rate factor, ``seconds`` of training, and the loss / correct / images summed
    over the ranks."""

    steps: int
    diverged: bool
    lr_factor: float
    seconds: float
    loss_sum: float
    correct: int
    images: int

    @property
    def train_loss(self) -> float:
        return self.loss_sum / max(self.images, 1)

    @property
    def train_accuracy(self) -> float:
        return self.correct / max(self.images, 1)


def train_epoch(loader: Loader, epoch: int, forward_backward: ForwardBackward, *, schedule: Schedule,
                update: Update, start_step: int, tally: Tally, ctx: Context | None = None,
                progress: Progress | None = None) -> EpochResult:
    """Epoch ``epoch`` (1-based) of ``loader``, its first optimiser step being ``start_step``."""
    ctx = ctx or Context()
    t0 = time.perf_counter()
    batches = loader.epoch(epoch)  # this rank's micro-batches, `accumulate` per step
    steps, diverged, f = 0, False, schedule.factor(start_step)
    for i in range(schedule.steps_per_epoch):
        f = schedule.apply(update.optimizer, start_step + i)
        update.optimizer.zero_grad(set_to_none=True)
        step_loss = forward_backward(batches, tally)
        if not torch.isfinite(ctx.sum(step_loss)[0]):  # every rank agrees (a NaN on any rank)
            diverged = True
            break
        update()
        steps += 1
        if progress is not None:
            progress.step(i, schedule.steps_per_epoch, epoch, loss_sum=tally.loss_sum, correct=tally.correct,
                          seen=tally.seen, t0=t0)
    seconds = time.perf_counter() - t0
    loss_sum, correct, seen = ctx.sum(tally.loss_sum, tally.correct, torch.tensor(tally.seen))
    return EpochResult(steps=steps, diverged=diverged, lr_factor=f, seconds=seconds, loss_sum=float(loss_sum),
                       correct=int(correct), images=int(seen))
