"""Which exceptions are outcomes of a training run (its ``status``) rather than bugs.

``oom``: the device (or the CPU allocator) ran out of memory; the run's ``error`` is one line
naming the batch that failed and the fix. ``failed``: another device or file error. Anything
else (TypeError, KeyError, a shape mismatch ... a bug) propagates with its traceback.
"""

from __future__ import annotations

import re

import torch

from effnas.experiments.config.schema import JobConfig

#: Errors that are outcomes of training (memory, devices, files), recorded as status ``failed``.
#: Anything else (TypeError, KeyError, a shape mismatch ... a bug) propagates with its traceback.
TRAINING_ERRORS: tuple[type[BaseException], ...] = (torch.OutOfMemoryError, MemoryError, OSError)
#: RuntimeError messages of the same kind (torch's CPU allocator and CUDA raise plain RuntimeErrors).
TRAINING_MESSAGES = re.compile(r"out of memory|can't allocate memory|CUDA error|CUBLAS_STATUS|cuDNN error", re.I)


OOM_MESSAGES = re.compile(r"out of memory|can't allocate memory", re.I)


def training_outcome(e: BaseException) -> bool:
    """Whether ``e`` is an outcome of this run (status ``oom`` or ``failed``) rather than a bug."""
    return isinstance(e, TRAINING_ERRORS) or (isinstance(e, RuntimeError) and bool(TRAINING_MESSAGES.search(str(e))))


def out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError | MemoryError) or (
        isinstance(e, RuntimeError) and bool(OOM_MESSAGES.search(str(e))))


def oom_message(cfg: JobConfig, device: torch.device, e: BaseException) -> str:
    """One line: where memory ran out, at which batch, and the fix.

    >>> oom_message(JobConfig(batch_size=512, devices=2, accumulate=2), torch.device("cuda", 0), MemoryError())[:96]
    'out of memory on cuda:0 at 128 images per device step (train.batch_size 512 = 2 devices x 2 accu'
    """
    return (f"out of memory on {device} at {cfg.micro_batch} images per device step (train.batch_size "
            f"{cfg.batch_size} = {cfg.devices} devices x {cfg.accumulate} accumulate x {cfg.micro_batch}): raise "
            f"train.accumulate (same global batch) or train.devices, or lower train.batch_size [{_one_line(e)[:160]}]")


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
