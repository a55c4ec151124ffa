"""Optimisers, learning-rate schedules and the weight EMA used by the trainer.

* SGD with Nesterov momentum; AdamW (decoupled weight decay); TF-style RMSProp, whose epsilon
  sits *inside* the square root and whose mean square starts at 1 (tensorflow/tpu
  ``RMSPropOptimizer``; timm's ``RMSpropTF``), as the EfficientNet recipe uses
  (decay 0.9, momentum 0.9, epsilon 1e-3; paper section 5.2).
* Weight decay skips BatchNorm parameters and biases (every tensor with ``ndim <= 1``).
* Schedules are pure functions of the step: linear warm-up, then cosine to zero, or the
  paper's staircase ``decay_rate ** floor(epoch / decay_epochs)`` (0.97 every 2.4 epochs), or
  constant. Being functions of the step, they need no state in a checkpoint.
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

OPTIMIZERS = ("sgd", "adamw", "rmsprop")
SCHEDULES = ("cosine", "step", "constant")


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


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights with decay, BN parameters and biases (``ndim <= 1``) without."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(name: str, model: nn.Module, *, lr: float, momentum: float, weight_decay: float,
                   rmsprop_decay: float = 0.9, rmsprop_eps: float = 1e-3) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "rmsprop":
        return RMSpropTF(groups, lr=lr, momentum=momentum, alpha=rmsprop_decay, eps=rmsprop_eps)
    raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")


def lr_factor(step: int, *, steps_per_epoch: int, epochs: int, schedule: str, warmup_epochs: float,
              decay_rate: float = 0.97, decay_epochs: float = 2.4) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    >>> lr_factor(0, steps_per_epoch=10, epochs=10, schedule="cosine", warmup_epochs=1)
    0.1
    >>> round(lr_factor(55, steps_per_epoch=10, epochs=10, schedule="cosine", warmup_epochs=1), 3)
    0.5
    >>> round(lr_factor(48, steps_per_epoch=10, epochs=10, schedule="step", warmup_epochs=0), 4)
    0.9409
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
