"""Which exceptions are outcomes of a training run (its ``status``) rather than bugs.

``oom``: the device (or the CPU allocator) ran out of memory; the run's ``error`` is one line
naming the batch that failed and the fix. ``failed``: another device or file error. A label
outside ``0 .. num_classes - 1`` (CPU cross-entropy's ``IndexError``, CUDA's device-side assert)
is bad data, not an outcome: :func:`label_error` turns it into a
:class:`~effnas.search_spaces.common.errors.UserError` naming the labels' range. Anything else
(TypeError, KeyError, a shape mismatch ... a bug) propagates with its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor

from effnas.experiments.config.schema import JobConfig
from effnas.search_spaces.common.errors import UserError, first_line

#: Errors that are outcomes of training (memory, devices, files), recorded as status ``failed``.
#: Anything else (TypeError, KeyError, a shape mismatch ... a bug) propagates with its traceback.
TRAINING_ERRORS: tuple[type[BaseException], ...] = (torch.OutOfMemoryError, MemoryError, OSError)
#: RuntimeError messages of the same kind (torch's CPU allocator and CUDA raise plain RuntimeErrors).
TRAINING_MESSAGES = re.compile(r"out of memory|can't allocate memory|CUDA error|CUBLAS_STATUS|cuDNN error", re.I)


OOM_MESSAGES = re.compile(r"out of memory|can't allocate memory", re.I)
#: What a label outside the classifier's range raises: cross-entropy on the CPU, a CUDA kernel's assert.
LABEL_MESSAGES = re.compile(r"Target -?\d+ is out of bounds|device-side assert", re.I)


def training_outcome(e: BaseException) -> bool:
    """Whether ``e`` is an outcome of this run (status ``oom`` or ``failed``) rather than a bug."""
    return isinstance(e, TRAINING_ERRORS) or (isinstance(e, RuntimeError) and bool(TRAINING_MESSAGES.search(str(e))))


def label_error(e: BaseException, labels: Sequence[Tensor], num_classes: int) -> UserError | None:
    """The data error behind ``e`` when ``e`` is what a label outside ``0 .. num_classes - 1``
    raises and ``labels`` (the data set's label tensors) hold one; else None.

    >>> print(label_error(IndexError("Target 10 is out of bounds."), [torch.tensor([0, 10])], 10))
    labels run 0..10 but the data set has 10 classes (0..9): fix the labels (each must be a class index)
    >>> label_error(IndexError("list index out of range"), [torch.tensor([0, 10])], 10) is None
    True
    """
    if not LABEL_MESSAGES.search(str(e)):
        return None
    present = [t for t in labels if len(t)]
    if not present:
        return None
    low, high = min(int(t.min()) for t in present), max(int(t.max()) for t in present)
    if 0 <= low and high < num_classes:  # the labels are fine: another cause (a bug) hit the same assert
        return None
    return UserError(f"labels run {low}..{high} but the data set has {num_classes} classes (0..{num_classes - 1}): "
                     "fix the labels (each must be a class index)")


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
            f"train.accumulate (same global batch) or train.devices, or lower train.batch_size "
            f"[{first_line(e, typed=True)[:160]}]")
