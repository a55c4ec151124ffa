"""Where a run computes: its device and its autocast precision (docs/gpu.md)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from effnas.experiments.config.schema import JobConfig
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.cost import default_device


def resolve_device(name: str) -> torch.device:
    """A ``train.device`` value as a device: ``auto`` is CUDA when this process sees a GPU (under
    Ray: the GPUs the trial was given, through ``CUDA_VISIBLE_DEVICES``), else the CPU; ``cpu`` and
    ``cuda`` as given (a command that plans runs for other machines may name a GPU it lacks)."""
    return default_device() if name == "auto" else torch.device(name)


def device_for(cfg: JobConfig) -> torch.device:
    """The device this process trains ``cfg`` on (:func:`resolve_device`); ``cuda`` must be here."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but CUDA is not available: use --device auto or cpu")
    return resolve_device(cfg.device)


def precision_for(cfg: JobConfig, device: torch.device) -> str:
    """``train.precision`` with ``auto`` resolved: fp32 on CPU, bf16 on GPUs that support it, else fp16."""
    if cfg.precision != "auto":
        return cfg.precision
    return "fp32" if device.type == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")


def autocast_for(cfg: JobConfig, device: torch.device) -> tuple[AbstractContextManager[Any], bool]:
    """(autocast context, whether fp16 needs a grad scaler). ``auto``: fp32 on CPU; on CUDA bf16
    where the GPU supports it (Ampere and later), else fp16 with a GradScaler."""
    prec = precision_for(cfg, device)
    if prec == "fp32":
        return nullcontext(), False
    if prec == "fp16" and device.type == "cpu":
        raise UserError("fp16 autocast is for CUDA: use --precision bf16 or fp32 on CPU")
    dtype = torch.bfloat16 if prec == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype), prec == "fp16"
