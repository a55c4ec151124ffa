"""Optimisers, learning-rate schedules and the weight EMA used by the trainer.

* SGD with Nesterov momentum; AdamW (decoupled weight decay); TF-style RMSProp, whose epsilon
  sits *inside* the square root and whose mean square starts at 1 (tensorflow/tpu
  ``RMSPropOptimizer``; timm's ``RMSpropTF``), as the EfficientNet recipe uses
  (decay 0.9, momentum 0.9, epsilon 1e-3; paper section 5.2).
* Weight decay skips BatchNorm parameters and biases (every tensor with ``ndim <= 1``).
* Fine-tuning: the classifier is the *head*, everything before it the *backbone*. Every param
  group carries ``lr_mult`` (the trainer sets ``lr = base x schedule x lr_mult``): the backbone's
  groups ``lr_backbone_mult``, the head's 1. :func:`freeze_backbone` stops the backbone's
  gradients and :func:`train_mode` keeps a frozen backbone in eval mode (BatchNorm uses and keeps
  its pretrained running statistics, stochastic depth is off), so it is a fixed feature extractor.
* Warm-up: as given, or the recipe's share of the run (``Recipe.warmup`` in
  :mod:`effnas.experiments.config.recipes`), so a short run is not all warm-up.
* Schedules are pure functions of the step: linear warm-up, then cosine to zero, or the
  paper's staircase ``decay_rate ** floor(epoch / decay_epochs)`` (0.97 every 2.4 epochs), or
  linear to zero (the one-cycle shape of the fast CIFAR recipes), or constant. Being functions of
  the step, they need no state in a checkpoint.
* :class:`ModelEMA`: exponential moving average of all floating-point weights and buffers,
  with TF's warm-up ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from effnas.experiments.config.choices import OPTIMIZERS
from effnas.search_spaces.common.errors import UserError


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as in TensorFlow: ``ms = rho*ms + (1-rho)*g^2`` (ms starts at 1),
    ``mom = momentum*mom + lr*g/sqrt(ms + eps)``, ``p -= mom``; L2 weight decay on the gradient."""

    def __init__(self, params: Iterable[Any], *, lr: float, alpha: float = 0.9, eps: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "momentum": momentum,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                st = self.state[p]
                if not st:
                    st["square_avg"] = torch.ones_like(p)
                    st["momentum_buffer"] = torch.zeros_like(p)
                ms, buf = st["square_avg"], st["momentum_buffer"]
                ms.mul_(group["alpha"]).addcmul_(g, g, value=1 - group["alpha"])
                buf.mul_(group["momentum"]).addcdiv_(g, ms.add(group["eps"]).sqrt_(), value=group["lr"])
                p.sub_(buf)
        return loss


#: Child modules of an effnas ``Network`` that make up the head (the rest is the backbone).
HEAD = ("dropout", "classifier")


def head_parameters(model: nn.Module) -> set[int]:
    """``id`` of every parameter of the classifier (the head)."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Module):
        raise UserError(f"{type(model).__name__} has no 'classifier' layer: backbone options need an effnas network")
    return {id(p) for p in head.parameters()}


def param_groups(model: nn.Module, weight_decay: float, *, lr_backbone_mult: float = 1.0) -> list[dict[str, Any]]:
    """Weights with decay, BN parameters and biases (``ndim <= 1``) without; with
    ``lr_backbone_mult != 1`` each split again into backbone (``lr_mult`` = the multiplier) and
    head (``lr_mult`` 1). Frozen parameters (``requires_grad`` False) are left out."""
    head = head_parameters(model) if lr_backbone_mult != 1.0 else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in head, p.ndim > 1), []).append(p)
    order = [(False, True), (False, False), (True, True), (True, False)]
    return [{"params": groups[k], "weight_decay": weight_decay if k[1] else 0.0,
             "lr_mult": 1.0 if k[0] or not head else lr_backbone_mult} for k in order if k in groups]


def freeze_backbone(model: nn.Module) -> int:
    """Stop gradients of every parameter but the classifier's; the number left trainable."""
    head = head_parameters(model)
    for p in model.parameters():
        p.requires_grad_(id(p) in head)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_mode(model: nn.Module, *, frozen_backbone: bool) -> None:
    """``model.train()``; with a frozen backbone, only the head trains (the backbone's BatchNorm
    layers keep their running statistics and stochastic depth is off)."""
    model.train()
    if frozen_backbone:
        for name, child in model.named_children():
            if name not in HEAD:
                child.eval()


def make_optimizer(name: str, model: nn.Module, *, lr: float, momentum: float, weight_decay: float,
                   rmsprop_decay: float = 0.9, rmsprop_eps: float = 1e-3,
                   lr_backbone_mult: float = 1.0) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay, lr_backbone_mult=lr_backbone_mult)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "rmsprop":
        return RMSpropTF(groups, lr=lr, momentum=momentum, alpha=rmsprop_decay, eps=rmsprop_eps)
    raise UserError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")


def lr_factor(step: int, *, steps_per_epoch: int, epochs: int, schedule: str, warmup_epochs: float,
              decay_rate: float = 0.97, decay_epochs: float = 2.4) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    >>> lr_factor(0, steps_per_epoch=10, epochs=10, schedule="cosine", warmup_epochs=1)
    0.1
    >>> round(lr_factor(55, steps_per_epoch=10, epochs=10, schedule="cosine", warmup_epochs=1), 3)
    0.5
    >>> round(lr_factor(48, steps_per_epoch=10, epochs=10, schedule="step", warmup_epochs=0), 4)
    0.9409
    >>> lr_factor(60, steps_per_epoch=10, epochs=10, schedule="linear", warmup_epochs=2)
    0.5
    """
    warm = round(warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return decay_rate ** math.floor(step / steps_per_epoch / decay_epochs)
    total = max(1, epochs * steps_per_epoch - warm)
    t = min(1.0, (step - warm) / total)
    if schedule == "linear":
        return 1.0 - t
    return 0.5 * (1.0 + math.cos(math.pi * t))


class ModelEMA:
    """An exponential moving average of a model's floating-point state (weights and BN stats)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_state = self.module.state_dict()
        for k, v in model.state_dict().items():
            e: Tensor = ema_state[k]
            if v.dtype.is_floating_point:
                e.lerp_(v, 1.0 - d)
            else:
                e.copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
