"""Accuracy and cross-entropy of a model on every image of a loader, summed over the ranks."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effnas.experiments.data import datasets as data_mod
from effnas.experiments.train.distributed import Context


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


def evaluate(model: nn.Module, loader: data_mod.Loader, autocast: AbstractContextManager[Any]
             ) -> tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of ``model`` on every image of ``loader``."""
    correct, loss_sum, n = evaluate_sums(model, loader, autocast)
    return int(correct) / max(int(n), 1), float(loss_sum) / max(int(n), 1)


def evaluate_ranks(ctx: Context, model: nn.Module, loader: data_mod.Loader,
                   autocast: AbstractContextManager[Any]) -> tuple[float, float]:
    """:func:`evaluate` of rank 0's ``model`` (weights and BatchNorm statistics broadcast first)
    with each rank on its shard of ``loader``'s images, the sums added over the ranks."""
    ctx.sync_state(model)
    correct, loss_sum, n = ctx.sum(*evaluate_sums(model, loader, autocast))
    return float(correct) / max(float(n), 1.0), float(loss_sum) / max(float(n), 1.0)
