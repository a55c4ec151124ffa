"""The trainer: a :class:`effnas.experiments.config.schema.JobConfig` in, a metrics dict out.

``train(job)`` is the engine; ``train_fn(config: dict, *, on_epoch=None)`` is the
JSON-dict wrapper that search, grid search and family runs receive as their trainer (the
contract in ``docs/architecture.md``). One loop in plain sight:

1. Load the data set (cached per process) and split it (test fixed, validation seeded).
2. Build the spec at the run's resolution and the data set's class count; count params/MACs.
3. Per epoch: a seeded permutation, batches resized and augmented in torch, forward under
   autocast when asked, label-smoothed cross-entropy, backward, clipping, optimiser step,
   per-step learning rate, EMA update; then validation (with EMA weights when enabled),
   ``last.pt`` (atomic), ``best.pt`` when validation improves, a line in ``epochs.jsonl``
   and ``on_epoch(record)`` (True stops the run: status ``pruned``).
4. Test accuracy of the final weights; ``metrics.json``.

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
``torch.set_num_threads(threads or all cores)``.
On CUDA: channels_last and mixed precision (bf16 when supported, else fp16 with a scaler);
docs/gpu.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import effnas.search_spaces as ss
from effnas.experiments.config.schema import JobConfig
from effnas.experiments.data import datasets as data_mod
from effnas.experiments.data.malloc import reuse_large_blocks
from effnas.experiments.train import distributed, guard
from effnas.experiments.train.devices import autocast_for as _autocast
from effnas.experiments.train.devices import device_for as _device
from effnas.experiments.train.devices import precision_for
from effnas.experiments.train.optim import ModelEMA, freeze_backbone, lr_factor, make_optimizer, train_mode
from effnas.experiments.train.outcomes import label_error, oom_message, out_of_memory, training_outcome
from effnas.experiments.train.rng import rng_state, seed_everything, set_rng_state
from effnas.experiments.train.rundir import BEST, LAST, METRICS, RunDir, open_run
from effnas.search_spaces.errors import UserError, first_line

OnEpoch = Callable[[dict[str, Any]], bool | None]


def train_fn(config: dict[str, Any], *, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """The trainer contract of ``docs/architecture.md``: a JSON config dict in, metrics out."""
    return train(JobConfig.from_dict(dict(config)), on_epoch=on_epoch)


def _resolve_spec(cfg: JobConfig, num_classes: int) -> ss.NetworkSpec:
    if isinstance(cfg.model, dict):
        spec = ss.NetworkSpec.from_dict(cfg.model)
        spec = dataclasses.replace(spec, num_classes=num_classes)
    elif isinstance(cfg.model, str):
        spec = ss.load_spec(cfg.model, num_classes=num_classes)
    else:
        raise UserError(f"model must be a name, a spec path or a spec dict, got {type(cfg.model).__name__}")
    changes: dict[str, Any] = {}
    if cfg.resolution is not None:
        changes["resolution"] = cfg.resolution
    if cfg.dropout is not None:
        changes["dropout"] = cfg.dropout
    if cfg.drop_connect_rate is not None:
        changes["drop_connect_rate"] = cfg.drop_connect_rate
    return dataclasses.replace(spec, **changes) if changes else spec


def _build(cfg: JobConfig, spec: ss.NetworkSpec) -> tuple[ss.NetworkSpec, ss.Network, dict[str, Any] | None]:
    """The model, freshly initialised or (``init_from``) from pretrained weights: an effnas weights
    file, a run directory or checkpoint, or ``LAYOUT:PATH`` of a foreign checkpoint. The classifier is
    re-initialised when the class count differs; the weights' padding and BN epsilon win
    (``effnas.experiments.weights.convert.pretrained_model``). Returns (spec actually built, model, summary or None)."""
    if cfg.init_from is None:
        return spec, ss.build(spec), None
    from effnas.experiments.weights.convert import pretrained_model

    return pretrained_model(spec, cfg.init_from)


def bn_momentum_for(spec_momentum: float, total_steps: int) -> float:
    """BatchNorm momentum for a run of ``total_steps`` optimiser steps (auto mode).

    The spec's own (TF's 0.99 decay = 0.01 here) unless the run is too short for the running
    statistics to forget their initialisation: then ``min(0.1, 10 / total_steps)``, which
    leaves a weight of about ``e^-10`` on the initial statistics at the end. Without this a
    5-epoch proxy run of a few hundred steps evaluates with nearly initial statistics.

    >>> bn_momentum_for(0.01, 100_000), bn_momentum_for(0.01, 200), bn_momentum_for(0.01, 20)
    (0.01, 0.05, 0.1)
    """
    return max(spec_momentum, min(0.1, 10 / max(total_steps, 1)))


@torch.inference_mode()
def evaluate_sums(model: nn.Module, loader: data_mod.Loader, autocast: AbstractContextManager[Any]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(correct, summed cross-entropy, images) of ``model`` on every image of ``loader``."""
    was = model.training
    model.eval()
    correct, loss_sum, n = torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.float64), 0
    for x, y in loader.epoch(0):
        with autocast:
            out = model(x)
        loss_sum += float(F.cross_entropy(out.float(), y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was)
    return correct, loss_sum, torch.tensor(n)


def evaluate(model: nn.Module, loader: data_mod.Loader, autocast: AbstractContextManager[Any]) -> tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of ``model`` on every image of ``loader``."""
    correct, loss_sum, n = evaluate_sums(model, loader, autocast)
    return int(correct) / max(int(n), 1), float(loss_sum) / max(int(n), 1)


def train(config: JobConfig, *, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """Train ``config`` and return its metrics (see the module docstring for the statuses).

    With ``out_dir`` set: a finished run (``completed`` or ``diverged``) with the same config
    is returned from ``metrics.json`` without training; with ``resume`` an interrupted run
    continues from ``last.pt``; otherwise the directory's old run files are replaced.
    ``devices > 1``: the run is data-parallel over that many processes
    (:mod:`effnas.experiments.train.distributed`); this process is rank 0 and returns its metrics.
    """
    cfg = config
    device = _device(cfg)
    if cfg.sync_bn and device.type != "cuda":
        raise UserError(f"train.sync_bn needs CUDA devices (PyTorch has no SyncBatchNorm on {device.type}): "
                         "drop it, or train on GPUs")
    if cfg.devices > 1 and not distributed.active():
        return distributed.launch(cfg, device=device, on_epoch=on_epoch)
    ctx = distributed.Context.current(cfg.devices)
    t_start = time.perf_counter()
    run = RunDir(cfg.out_dir) if cfg.out_dir else None
    ckpt: dict[str, Any] | None = None
    if run is not None:
        found = open_run(run, cfg) if ctx.lead else None
        found = ctx.share(found)  # rank 0 decides: reuse the finished run, resume, or start afresh
        if found == "resume":
            ckpt = run.load(LAST)
        elif found is not None:
            return {**found, "reused": True}

    torch.set_num_threads(max(1, (cfg.threads or os.cpu_count() or 1) // ctx.world))
    reuse_large_blocks()  # batches and activations of tens of MB: reused, not page-faulted in at every step
    device = ctx.device(device)
    autocast, use_scaler = _autocast(cfg, device)
    ds = data_mod.load_dataset(cfg.dataset, path=cfg.path, strict=cfg.strict)
    train_split, val_split, test_split = data_mod.split(ds, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                                        data_fraction=cfg.data_fraction)
    spec = _resolve_spec(cfg, ds.num_classes)
    res = spec.resolution
    guard.check_memory(spec, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, device=device.type)
    seed_everything(cfg.seed)
    spec, model, init = _build(cfg, spec)
    if ctx.rank:  # other ranks draw other augmentations and dropout masks (weights come from rank 0)
        seed_everything(cfg.seed + 1_000_003 * ctx.rank)
    from effnas.search_spaces.cost import cost

    c = cost(spec, resolution=res, model=model)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt)  # type: ignore[call-overload]
    trainable = freeze_backbone(model) if cfg.freeze_backbone else c.params  # docs/transfer.md: BN stays in eval
    lr = cfg.base_lr()
    optimizer = make_optimizer(cfg.optimizer, model, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               rmsprop_decay=cfg.rmsprop_decay, rmsprop_eps=cfg.rmsprop_eps,
                               lr_backbone_mult=cfg.lr_backbone_mult)
    ema = ModelEMA(model, cfg.ema) if cfg.ema > 0 else None
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None

    def loader(split: data_mod.Split | data_mod.FileSplit, batch_size: int, train: bool) -> data_mod.Loader:
        if not train and ctx.world > 1:  # evaluation: every world-th image on each rank, summed
            split = split.subset(ctx.shard(len(split)))
        return data_mod.make_loader(ds, split, resolution=res, batch_size=batch_size, train=train, seed=cfg.seed,
                                    policy=cfg.augment, device=device, channels_last=cfg.channels_last,
                                    workers=cfg.loader_workers, threads=cfg.loader_threads, crop_pct=cfg.crop_pct,
                                    strict=cfg.strict,
                                    shard=(ctx.rank, ctx.world, cfg.accumulate) if train else (0, 1, 1))

    train_loader = loader(train_split, cfg.batch_size, True)  # global batches, cut into this rank's micro-batches
    val_loader = loader(val_split, cfg.eval_batch_size, False)
    test_loader = loader(test_split, cfg.eval_batch_size, False)
    steps_per_epoch = len(train_loader)
    bn_m = cfg.bn_momentum or bn_momentum_for(spec.bn_momentum, cfg.epochs * steps_per_epoch)
    for mod in model.modules():  # per micro-batch, so that the statistics forget at bn_m per optimiser step
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = 1 - (1 - bn_m) ** (1 / cfg.accumulate)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    ddp = ctx.wrap(model, device, sync_bn=cfg.sync_bn)
    step_model: nn.Module = torch.compile(ddp) if cfg.compile else ddp  # type: ignore[assignment]
    end_epoch = min(cfg.epochs, cfg.max_epochs or cfg.epochs)

    history: list[dict[str, Any]] = []
    start_epoch, step, best_val, best_epoch = 0, 0, -1.0, 0
    train_seconds, train_images, elapsed_before = 0.0, 0, 0.0
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.load_state_dict(ckpt["ema"])
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        ranks = ckpt.get("rng_ranks") or [ckpt["rng"]]
        set_rng_state(ranks[ctx.rank] if ctx.rank < len(ranks) else ckpt["rng"])
        history = list(ckpt["history"])
        start_epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
        best_val, best_epoch = float(ckpt["best_val"]), int(ckpt["best_epoch"])
        train_seconds, train_images = float(ckpt["train_seconds"]), int(ckpt["train_images"])
        elapsed_before = float(ckpt["elapsed"])
        if run is not None and ctx.lead:
            run.write_epochs(history)

    metrics: dict[str, Any] = {
        "status": "completed", "model": spec.name, "dataset": cfg.dataset, "seed": cfg.seed,
        "params": c.params, "macs": c.macs, "resolution": res, "num_classes": ds.num_classes,
        "train_size": len(train_split), "val_size": len(val_split), "test_size": len(test_split),
        "epochs": cfg.epochs, "device": str(device), "threads": torch.get_num_threads(),
        "precision": precision_for(cfg, device), "devices": ctx.world, "accumulate": cfg.accumulate,
        "batch_size": cfg.batch_size, "micro_batch": cfg.micro_batch, "lr": lr, "bn_momentum": bn_m,
        "stopped_by": None, "error": None, "diverged_epoch": None,
        "data_pipeline": data_mod.describe(train_loader, val_loader), "init_from": init,
        "trainable_params": trainable,
    }
    bar = None
    if not cfg.quiet and ctx.lead:
        from tqdm import tqdm

        bar = tqdm(total=(end_epoch - start_epoch) * steps_per_epoch, unit="step", dynamic_ncols=True,
                   leave=True, desc=f"{spec.name} {res}px")
    eval_model: nn.Module = ema.module if ema is not None else model

    def evaluate_all(loader_: data_mod.Loader) -> tuple[float, float]:
        ctx.sync_state(eval_model)
        correct, loss_sum, n = ctx.sum(*evaluate_sums(eval_model, loader_, autocast))
        return float(correct) / max(float(n), 1.0), float(loss_sum) / max(float(n), 1.0)

    epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, end_epoch + 1):
            t0 = time.perf_counter()
            train_mode(model, frozen_backbone=cfg.freeze_backbone)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen, diverged = 0, False
            batches = train_loader.epoch(epoch)  # this rank's micro-batches, `accumulate` per step
            for i in range(steps_per_epoch):
                f = lr_factor(step, steps_per_epoch=steps_per_epoch, epochs=cfg.epochs, schedule=cfg.schedule,
                              warmup_epochs=cfg.warmup_epochs, decay_rate=cfg.decay_rate,
                              decay_epochs=cfg.decay_epochs)
                for g in optimizer.param_groups:
                    g["lr"] = lr * f * g["lr_mult"]
                optimizer.zero_grad(set_to_none=True)
                step_loss = torch.zeros((), device=device)
                for a in range(cfg.accumulate):
                    x, y = next(batches)
                    with ctx.no_sync(step_model, a == cfg.accumulate - 1):
                        with autocast:
                            out = step_model(x)
                            loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
                        # the mean over the step's global batch: DDP averages ranks, this the micro-batches
                        scaled = loss / cfg.accumulate
                        (scaler.scale(scaled) if scaler is not None else scaled).backward()
                    step_loss += loss.detach()
                    seen += len(y)
                    loss_sum += loss.detach() * len(y)
                    correct += (out.argmax(1) == y).sum()
                if not torch.isfinite(ctx.sum(step_loss)[0]):  # every rank agrees (a NaN on any rank)
                    diverged = True
                    break
                if scaler is not None:
                    scaler.unscale_(optimizer)
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                if bar is not None:
                    bar.update(1)
                    if i % 5 == 0 or i == steps_per_epoch - 1:
                        dt = time.perf_counter() - t0
                        bar.set_postfix_str(f"epoch {epoch}/{end_epoch} loss {float(loss_sum) / seen:.3f} "
                                            f"acc {int(correct) / seen:.3f} {seen * ctx.world / dt:.0f} img/s",
                                            refresh=False)
            t_train = time.perf_counter() - t0
            loss_sum, correct, seen_t = ctx.sum(loss_sum, correct, torch.tensor(seen))
            seen = int(seen_t)
            train_seconds += t_train
            train_images += seen
            if diverged:
                metrics.update(status="diverged", diverged_epoch=epoch)
                break
            val_acc, val_loss = evaluate_all(val_loader)
            if not math.isfinite(val_loss):
                metrics.update(status="diverged", diverged_epoch=epoch)
                break
            record = {"epoch": epoch, "train_loss": float(loss_sum) / max(seen, 1),
                      "train_accuracy": int(correct) / max(seen, 1), "val_accuracy": val_acc, "val_loss": val_loss,
                      "lr": lr * f, "seconds": time.perf_counter() - t0,
                      "images_per_second": seen / max(t_train, 1e-9)}
            history.append(record)
            improved = val_acc > best_val
            if improved:
                best_val, best_epoch = val_acc, epoch
            elapsed = elapsed_before + time.perf_counter() - t_start
            rngs = ctx.gather(rng_state())
            if run is not None and ctx.lead:
                if improved:
                    run.save(BEST, {"epoch": epoch, "val_accuracy": val_acc, "model": eval_model.state_dict(),
                                    "spec": spec.to_dict()})
                run.save(LAST, {
                    "epoch": epoch, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None, "rng": rngs[0],
                    "rng_ranks": rngs, "history": history, "best_val": best_val, "best_epoch": best_epoch,
                    "train_seconds": train_seconds, "train_images": train_images, "elapsed": elapsed,
                    "spec": spec.to_dict(), "config": cfg.to_dict(),
                })
                run.append_epoch(record)
            stop = None
            if ctx.lead:
                if on_epoch is not None and on_epoch(dict(record)):
                    stop = "pruned"
                elif cfg.max_minutes is not None and elapsed >= cfg.max_minutes * 60 and epoch < end_epoch:
                    stop = "max_minutes"
            stop = ctx.share(stop)
            if stop == "pruned":
                metrics.update(status="pruned", stopped_by="on_epoch")
                break
            if stop == "max_minutes":
                metrics["stopped_by"] = "max_minutes"
                break
        else:
            if end_epoch < cfg.epochs:
                metrics["stopped_by"] = "max_epochs"
        if metrics["status"] == "completed":
            metrics["test_accuracy"], metrics["test_loss"] = evaluate_all(test_loader)
    except Exception as e:
        if (bad_labels := label_error(e, (ds.pool.labels, ds.test.labels), spec.num_classes)) is not None:
            raise bad_labels from e  # bad data, not an outcome of training
        if not training_outcome(e):
            raise  # a bug: stop with its traceback
        if out_of_memory(e):
            metrics.update(status="oom", error=oom_message(cfg, device, e))
        else:
            metrics.update(status="failed", error=first_line(e, typed=True))  # a device or file error
    finally:
        if bar is not None:
            bar.close()

    last = history[-1] if history else {}
    ok = metrics["status"] in ("completed", "pruned")
    metrics.update({
        "val_accuracy": last.get("val_accuracy") if ok else None,
        "val_loss": last.get("val_loss") if ok else None,
        "train_loss": last.get("train_loss"),
        "best_val_accuracy": best_val if best_val >= 0 else None,
        "best_epoch": best_epoch or None,
        "epochs_completed": len(history),
        "train_seconds": train_seconds,
        "images_per_second": train_images / train_seconds if train_seconds > 0 else None,
        "seconds": elapsed_before + time.perf_counter() - t_start,
        "peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "skipped_images": data_mod.skipped_images(ds, train_loader, val_loader, test_loader),
    })
    metrics.setdefault("test_accuracy", None)
    metrics.setdefault("test_loss", None)
    if run is not None and ctx.lead:
        run.write_json(METRICS, metrics)
    return metrics
