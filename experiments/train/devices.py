"""Where a run computes: its device and its autocast precision (docs/gpu.md)."""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from effnas.experiments.config.schema import JobConfig


def device_for(cfg: JobConfig) -> torch.device:
    """``train.device``: ``auto`` is CUDA when this process sees a GPU (under Ray: the GPUs the
    trial was given, through ``CUDA_VISIBLE_DEVICES``), else the CPU."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available: use --device auto or cpu")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


#: glibc's ``mallopt`` parameters (malloc.h) and what effnas sets them to.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 256 << 20, 512 << 20
_tuned: list[bool] = []


def reuse_large_blocks() -> bool:
    """Let glibc reuse freed blocks up to 256 MiB instead of mapping fresh pages for each one.

    glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a new
    ``mmap`` and returns it on ``free``, so a tensor of that size (a float batch of 64 images at
    224 px is 38.5 MB; so are activations of large models) is page-faulted in again at every
    step: 0.63 vs 0.26 CPU ms per 224-px image to build and use a normalised batch here
    (docs/data.md). Raising the threshold (and the trim threshold above it) keeps those blocks in
    the heap, the effect PyTorch's CPU tuning guide gets from jemalloc or tcmalloc. Once per
    process, on Linux with glibc; ``EFFNAS_MALLOC=default`` leaves malloc alone. Returns whether it
    is in effect."""
    if _tuned:
        return _tuned[0]
    mode = os.environ.get("EFFNAS_MALLOC", "reuse")
    if mode not in ("reuse", "default"):
        raise ValueError(f"EFFNAS_MALLOC={mode!r}: expected reuse (the default) or default (glibc's own thresholds)")
    ok = False
    if sys.platform == "linux" and mode == "reuse":
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        except (OSError, AttributeError):  # not glibc (e.g. musl): its malloc is left alone
            ok = False
    _tuned.append(ok)
    return ok


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
        raise ValueError("fp16 autocast is for CUDA: use --precision bf16 or fp32 on CPU")
    dtype = torch.bfloat16 if prec == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype), prec == "fp16"
