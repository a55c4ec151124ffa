"""The trainer's metrics: the epoch record (a line of ``epochs.jsonl``, what ``on_epoch`` sees)
and the run's ``metrics.json`` dict, from its setup to its final status (statuses: the module
docstring of :mod:`effnas.experiments.train.loop`)."""

from __future__ import annotations

import time
from typing import Any

import torch

from effnas.experiments.config.progressive import Stage
from effnas.experiments.config.schema import JobConfig
from effnas.experiments.data import datasets as data_mod
from effnas.experiments.train.devices import precision_for
from effnas.experiments.train.distributed import Context
from effnas.experiments.train.outcomes import oom_message, out_of_memory
from effnas.experiments.train.steps.epoch import EpochResult
from effnas.experiments.train.steps.setup import Setup
from effnas.experiments.train.steps.state import TrainState
from effnas.search_spaces.common.errors import first_line


def epoch_record(epoch: int, result: EpochResult, *, val_accuracy: float, val_loss: float, lr: float,
                 t0: float, stage: Stage | None = None) -> dict[str, Any]:
    """Epoch ``epoch``'s line of ``epochs.jsonl`` (``t0``: when the epoch started); with a progressive
    ``stage``, also its index, image size and regularisation (``stage_mixup``; ``stage_dropout`` and
    ``stage_randaug`` when scheduled)."""
    record = {"epoch": epoch, "train_loss": result.train_loss, "train_accuracy": result.train_accuracy,
              "val_accuracy": val_accuracy, "val_loss": val_loss, "lr": lr * result.lr_factor,
              "seconds": time.perf_counter() - t0, "images_per_second": result.images / max(result.seconds, 1e-9)}
    if stage is not None:
        record.update({"stage": stage.index, "image_size": stage.size, "stage_mixup": stage.mixup})
        record.update({f"stage_{k}": v for k, v in (("dropout", stage.dropout), ("randaug", stage.randaug))
                       if v is not None})
    return record


def start_metrics(cfg: JobConfig, ctx: Context, s: Setup) -> dict[str, Any]:
    """What the run is (model, data, cost, recipe), status ``completed`` until an epoch says otherwise."""
    train_size, val_size, test_size = s.sizes
    return {
        "status": "completed", "model": s.spec.name, "dataset": cfg.dataset, "seed": cfg.seed,
        "params": s.params, "macs": s.macs, "resolution": s.resolution, "num_classes": s.ds.num_classes,
        "train_size": train_size, "val_size": val_size, "test_size": test_size,
        "epochs": cfg.epochs, "device": str(s.device), "threads": torch.get_num_threads(),
        "threads_auto": s.threads.to_dict() if s.threads.auto else None,
        "precision": precision_for(cfg, s.device), "devices": ctx.world, "accumulate": cfg.accumulate,
        "batch_size": cfg.batch_size, "micro_batch": cfg.micro_batch, "lr": s.lr, "bn_momentum": s.bn_momentum,
        "stopped_by": None, "error": None, "diverged_epoch": None,
        "data_pipeline": data_mod.describe(s.train_loader, s.val_loader), "init_from": s.init,
        "trainable_params": s.trainable,
        "progressive": [st.to_dict() for st in s.stages] if len(s.stages) > 1 else None,
    }


def failure(cfg: JobConfig, device: torch.device, e: BaseException) -> dict[str, Any]:
    """The status and error of a run stopped by ``e``, a training outcome
    (:func:`effnas.experiments.train.outcomes.training_outcome`): ``oom``, or ``failed`` (another
    device or file error)."""
    if out_of_memory(e):
        return {"status": "oom", "error": oom_message(cfg, device, e)}
    return {"status": "failed", "error": first_line(e, typed=True)}  # a device or file error


def final_metrics(metrics: dict[str, Any], state: TrainState, s: Setup, *, seconds: float) -> dict[str, Any]:
    """``metrics`` completed with the last and best epochs, throughput, time and memory."""
    last = state.history[-1] if state.history else {}
    ok = metrics["status"] in ("completed", "pruned")
    metrics.update({
        "val_accuracy": last.get("val_accuracy") if ok else None,
        "val_loss": last.get("val_loss") if ok else None,
        "train_loss": last.get("train_loss"),
        "best_val_accuracy": state.best_val if state.best_val >= 0 else None,
        "best_epoch": state.best_epoch or None,
        "epochs_completed": len(state.history),
        "train_seconds": state.train_seconds,
        "images_per_second": state.train_images / state.train_seconds if state.train_seconds > 0 else None,
        "seconds": seconds,
        "peak_memory_mb": torch.cuda.max_memory_allocated(s.device) / 2**20 if s.device.type == "cuda" else None,
        "skipped_images": data_mod.skipped_images(s.ds, s.train_loader, s.val_loader, s.test_loader),
    })
    metrics.setdefault("test_accuracy", None)
    metrics.setdefault("test_loss", None)
    return metrics
