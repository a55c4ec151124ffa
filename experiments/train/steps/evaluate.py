"""Accuracy and cross-entropy of a model on every image of a loader, summed over the ranks; with
``tta``, of its test-time-augmented logits (:func:`tta_logits`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effnas.experiments.data import datasets as data_mod
from effnas.experiments.train.distributed import Context


def tta_logits(model: nn.Module, x: torch.Tensor, *, flip: bool) -> torch.Tensor:
    """airbench's test-time augmentation (``tta_level=2``): half the weight on the image, a quarter
    on each of its 1-pixel translations up-left and down-right (reflect padding); each view
    averaged with its mirror image when ``flip`` (a set a flip keeps the label of): 6 views."""
    def views(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model(v) + model(v.flip(-1))) if flip else model(v)

    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = (views(padded[..., :h, :w].contiguous(memory_format=torch.channels_last))
               + views(padded[..., 2:, 2:].contiguous(memory_format=torch.channels_last)))
    return 0.5 * views(x) + 0.25 * shifted


@torch.inference_mode()
def evaluate_sums(model: nn.Module, loader: data_mod.Loader, autocast: AbstractContextManager[Any], *,
                  tta: bool = False, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(correct, summed cross-entropy, images) of ``model`` on every image of ``loader`` (``tta``:
    of :func:`tta_logits`)."""
    was = model.training
    model.eval()
    correct, loss_sum, n = torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.float64), 0
    for x, y in loader.epoch(0):
        with autocast:
            out = tta_logits(model, x, flip=flip) if tta else model(x)
        loss_sum += float(F.cross_entropy(out.float(), y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was)
    return correct, loss_sum, torch.tensor(n)


def evaluate(model: nn.Module, loader: data_mod.Loader, autocast: AbstractContextManager[Any]
             ) -> tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of ``model`` on every image of ``loader``."""
    correct, loss_sum, n = evaluate_sums(model, loader, autocast)
    return int(correct) / max(int(n), 1), float(loss_sum) / max(int(n), 1)


def evaluate_ranks(ctx: Context, model: nn.Module, loader: data_mod.Loader, autocast: AbstractContextManager[Any],
                   *, tta: bool = False, flip: bool = True) -> tuple[float, float]:
    """:func:`evaluate` of rank 0's ``model`` (weights and BatchNorm statistics broadcast first)
    with each rank on its shard of ``loader``'s images, the sums added over the ranks."""
    ctx.sync_state(model)
    correct, loss_sum, n = ctx.sum(*evaluate_sums(model, loader, autocast, tta=tta, flip=flip))
    return float(correct) / max(float(n), 1.0), float(loss_sum) / max(float(n), 1.0)
