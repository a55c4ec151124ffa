"""The trainer: a :class:`experiments.config.JobConfig` in, a metrics dict out.

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
records where; checkpoints of the last good epoch are kept); ``failed`` (out of memory, or a
device or file error while training: ``error`` holds its one-line message, so a search can go
on); ``pruned`` (``on_epoch`` asked to stop; no test evaluation). Bad configuration or data
raises ``ValueError`` before anything is trained, and any other exception (a bug) propagates.

Performance on CPU (see ``bench/train_throughput.py``): channels_last by default (1.5-2.2x
over NCHW here), fp32 (bf16 autocast measured 0.3-0.8x of fp32 on this CPU), no DataLoader
workers for in-memory sets (streamed folders decode in DataLoader workers: ``docs/data.md``),
``torch.set_num_threads(threads or all cores)``.
On CUDA: channels_last and mixed precision (bf16 when supported, else fp16 with a scaler).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import search_spaces as ss
from experiments import data as data_mod
from experiments.config import JobConfig
from experiments.optim import ModelEMA, freeze_backbone, lr_factor, make_optimizer, train_mode
from experiments.rundir import BEST, CONFIG, LAST, METRICS, RunDir

OnEpoch = Callable[[dict[str, Any]], bool | None]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Keys that do not change what a run computes; ignored when matching a run directory's config.
RUNTIME_KEYS = frozenset({"out_dir", "resume", "quiet", "threads", "loader_workers"})
FINISHED = ("completed", "diverged")
#: Errors that are outcomes of training (memory, devices, files), recorded as status ``failed``.
#: Anything else (TypeError, KeyError, a shape mismatch ... a bug) propagates with its traceback.
TRAINING_ERRORS: tuple[type[BaseException], ...] = (torch.OutOfMemoryError, MemoryError, OSError)
#: RuntimeError messages of the same kind (torch's CPU allocator and CUDA raise plain RuntimeErrors).
TRAINING_MESSAGES = re.compile(r"out of memory|can't allocate memory|CUDA error|CUBLAS_STATUS|cuDNN error", re.I)


def training_outcome(e: BaseException) -> bool:
    """Whether ``e`` is an outcome of this run (recorded as ``failed``) rather than a bug."""
    return isinstance(e, TRAINING_ERRORS) or (isinstance(e, RuntimeError) and bool(TRAINING_MESSAGES.search(str(e))))


def train_fn(config: dict[str, Any], *, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """The trainer contract of ``docs/architecture.md``: a JSON config dict in, metrics out."""
    return train(JobConfig.from_dict(dict(config)), on_epoch=on_epoch)


def _device(cfg: JobConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available: use --device auto or cpu")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _autocast(cfg: JobConfig, device: torch.device) -> tuple[AbstractContextManager[Any], bool]:
    """(autocast context, whether fp16 needs a grad scaler)."""
    prec = cfg.precision
    if prec == "auto":
        prec = "fp32" if device.type == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    if prec == "fp32":
        return nullcontext(), False
    if prec == "fp16" and device.type == "cpu":
        raise ValueError("fp16 autocast is for CUDA: use --precision bf16 or fp32 on CPU")
    dtype = torch.bfloat16 if prec == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype), prec == "fp16"


def _resolve_spec(cfg: JobConfig, num_classes: int) -> ss.NetworkSpec:
    if isinstance(cfg.model, dict):
        spec = ss.NetworkSpec.from_dict(cfg.model)
        spec = dataclasses.replace(spec, num_classes=num_classes)
    elif isinstance(cfg.model, str):
        spec = ss.load_spec(cfg.model, num_classes=num_classes)
    else:
        raise ValueError(f"model must be a name, a spec path or a spec dict, got {type(cfg.model).__name__}")
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
    (``experiments.weights.pretrained_model``). Returns (spec actually built, model, summary or None)."""
    if cfg.init_from is None:
        return spec, ss.build(spec), None
    from experiments.weights import pretrained_model

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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """torch / numpy / python RNG states as tensors and primitive containers (weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # type: ignore[misc]
    version, pstate, pgauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(pstate), "gauss": pgauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.inference_mode()
def evaluate(model: nn.Module, loader: data_mod.AnyLoader,
             autocast: AbstractContextManager[Any]) -> tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of ``model`` on every image of ``loader``."""
    was = model.training
    model.eval()
    correct, loss_sum, n = 0, 0.0, 0
    for x, y in loader.epoch(0):
        with autocast:
            out = model(x)
        loss_sum += float(F.cross_entropy(out.float(), y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was)
    return correct / max(n, 1), loss_sum / max(n, 1)


def _config_key(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in RUNTIME_KEYS}


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def train(config: JobConfig, *, on_epoch: OnEpoch | None = None) -> dict[str, Any]:
    """Train ``config`` and return its metrics (see the module docstring for the statuses).

    With ``out_dir`` set: a finished run (``completed`` or ``diverged``) with the same config
    is returned from ``metrics.json`` without training; with ``resume`` an interrupted run
    continues from ``last.pt``; otherwise the directory's old run files are replaced.
    """
    cfg = config
    t_start = time.perf_counter()
    run = RunDir(cfg.out_dir) if cfg.out_dir else None
    key = _config_key(cfg.to_dict())
    ckpt: dict[str, Any] | None = None
    if run is not None:
        old_cfg, old_metrics = run.read_json(CONFIG), run.read_json(METRICS)
        same = old_cfg is not None and _config_key(old_cfg) == key
        if same and old_metrics is not None and old_metrics.get("status") in FINISHED:
            return {**old_metrics, "reused": True}
        if cfg.resume and old_cfg is not None and not same:
            raise ValueError(f"out_dir {cfg.out_dir!r} holds a run with a different config: "
                             "resume with the same options, or choose another --out")
        ckpt = run.load(LAST) if cfg.resume and same else None
        if ckpt is None:
            run.clear()
        run.write_json(CONFIG, cfg.to_dict())

    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    device = _device(cfg)
    autocast, use_scaler = _autocast(cfg, device)
    ds = data_mod.load_dataset(cfg.dataset, path=cfg.path, strict=cfg.strict)
    train_split, val_split, test_split = data_mod.split(ds, seed=cfg.seed, val_fraction=cfg.val_fraction,
                                                        data_fraction=cfg.data_fraction)
    spec = _resolve_spec(cfg, ds.num_classes)
    res = spec.resolution
    seed_everything(cfg.seed)
    spec, model, init = _build(cfg, spec)
    from search_spaces.cost import cost

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

    def loader(split: data_mod.Split | data_mod.FileSplit, batch_size: int, train: bool) -> data_mod.AnyLoader:
        return data_mod.make_loader(ds, split, resolution=res, batch_size=batch_size, train=train, seed=cfg.seed,
                                    policy=cfg.augment, device=device, channels_last=cfg.channels_last,
                                    workers=cfg.loader_workers, crop_pct=cfg.crop_pct, strict=cfg.strict)

    train_loader = loader(train_split, cfg.batch_size, True)
    val_loader = loader(val_split, cfg.eval_batch_size, False)
    test_loader = loader(test_split, cfg.eval_batch_size, False)
    steps_per_epoch = len(train_loader)
    bn_m = cfg.bn_momentum or bn_momentum_for(spec.bn_momentum, cfg.epochs * steps_per_epoch)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = bn_m
    step_model: nn.Module = torch.compile(model) if cfg.compile else model  # type: ignore[assignment]
    end_epoch = min(cfg.epochs, cfg.max_epochs or cfg.epochs)

    history: list[dict[str, Any]] = []
    start_epoch, step, best_val, best_epoch = 0, 0, -1.0, 0
    train_seconds, train_images, elapsed_before = 0.0, 0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema") is not None:
            ema.load_state_dict(ckpt["ema"])
        if scaler is not None and ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        history = list(ckpt["history"])
        start_epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
        best_val, best_epoch = float(ckpt["best_val"]), int(ckpt["best_epoch"])
        train_seconds, train_images = float(ckpt["train_seconds"]), int(ckpt["train_images"])
        elapsed_before = float(ckpt["elapsed"])
        assert run is not None
        run.write_epochs(history)

    metrics: dict[str, Any] = {
        "status": "completed", "model": spec.name, "dataset": cfg.dataset, "seed": cfg.seed,
        "params": c.params, "macs": c.macs, "resolution": res, "num_classes": ds.num_classes,
        "train_size": len(train_split), "val_size": len(val_split), "test_size": len(test_split),
        "epochs": cfg.epochs, "device": str(device), "threads": torch.get_num_threads(),
        "lr": lr, "bn_momentum": bn_m, "stopped_by": None, "error": None, "diverged_epoch": None,
        "data_pipeline": data_mod.describe(train_loader, val_loader),
        "init_from": init, "trainable_params": trainable,
    }
    bar = None
    if not cfg.quiet:
        from tqdm import tqdm

        bar = tqdm(total=(end_epoch - start_epoch) * steps_per_epoch, unit="step", dynamic_ncols=True,
                   leave=True, desc=f"{spec.name} {res}px")
    eval_model: nn.Module = ema.module if ema is not None else model
    epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, end_epoch + 1):
            t0 = time.perf_counter()
            train_mode(model, frozen_backbone=cfg.freeze_backbone)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen, diverged = 0, False
            for i, (x, y) in enumerate(train_loader.epoch(epoch)):
                f = lr_factor(step, steps_per_epoch=steps_per_epoch, epochs=cfg.epochs, schedule=cfg.schedule,
                              warmup_epochs=cfg.warmup_epochs, decay_rate=cfg.decay_rate,
                              decay_epochs=cfg.decay_epochs)
                for g in optimizer.param_groups:
                    g["lr"] = lr * f * g["lr_mult"]
                with autocast:
                    out = step_model(x)
                    loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
                if not torch.isfinite(loss):
                    diverged = True
                    break
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
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
                seen += len(y)
                loss_sum += loss.detach() * len(y)
                correct += (out.argmax(1) == y).sum()
                if bar is not None:
                    bar.update(1)
                    if i % 5 == 0 or i == steps_per_epoch - 1:
                        dt = time.perf_counter() - t0
                        bar.set_postfix_str(f"epoch {epoch}/{end_epoch} loss {float(loss_sum) / seen:.3f} "
                                            f"acc {int(correct) / seen:.3f} {seen / dt:.0f} img/s", refresh=False)
            t_train = time.perf_counter() - t0
            train_seconds += t_train
            train_images += seen
            if diverged:
                metrics.update(status="diverged", diverged_epoch=epoch)
                break
            val_acc, val_loss = evaluate(eval_model, val_loader, autocast)
            if not math.isfinite(val_loss):
                metrics.update(status="diverged", diverged_epoch=epoch)
                break
            record = {"epoch": epoch, "train_loss": float(loss_sum) / max(seen, 1),
                      "train_accuracy": int(correct) / max(seen, 1), "val_accuracy": val_acc, "val_loss": val_loss,
                      "lr": lr * f, "seconds": time.perf_counter() - t0,
                      "images_per_second": seen / max(t_train, 1e-9)}
            history.append(record)
            if val_acc > best_val:
                best_val, best_epoch = val_acc, epoch
                if run is not None:
                    run.save(BEST, {"epoch": epoch, "val_accuracy": val_acc, "model": eval_model.state_dict(),
                                    "spec": spec.to_dict()})
            elapsed = elapsed_before + time.perf_counter() - t_start
            if run is not None:
                run.save(LAST, {
                    "epoch": epoch, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng_state(),
                    "history": history, "best_val": best_val, "best_epoch": best_epoch,
                    "train_seconds": train_seconds, "train_images": train_images, "elapsed": elapsed,
                    "spec": spec.to_dict(), "config": cfg.to_dict(),
                })
                run.append_epoch(record)
            if on_epoch is not None and on_epoch(dict(record)):
                metrics.update(status="pruned", stopped_by="on_epoch")
                break
            if cfg.max_minutes is not None and elapsed >= cfg.max_minutes * 60 and epoch < end_epoch:
                metrics["stopped_by"] = "max_minutes"
                break
        else:
            if end_epoch < cfg.epochs:
                metrics["stopped_by"] = "max_epochs"
        if metrics["status"] == "completed":
            metrics["test_accuracy"], metrics["test_loss"] = evaluate(eval_model, test_loader, autocast)
    except Exception as e:
        if not training_outcome(e):
            raise  # a bug: stop with its traceback
        metrics.update(status="failed", error=_one_line(e))  # out of memory, a device or file error
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
        "skipped_images": data_mod.skipped_images(ds, train_loader, val_loader, test_loader),
    })
    metrics.setdefault("test_accuracy", None)
    metrics.setdefault("test_loss", None)
    if run is not None:
        run.write_json(METRICS, metrics)
    return metrics
