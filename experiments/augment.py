"""Batched augmentation in torch, on float images in [0, 1] at the run's resolution.

Policies (``TrainConfig.augment``):

==============  ==================================================================================
``auto``        ``crop_flip`` for sets where a horizontal flip keeps the label, else ``crop``
``none``        identity
``crop``        random crop with zero padding of ``resolution // 8`` pixels (4 px at 32 px, as
                in the CIFAR ResNet recipe)
``crop_flip``   ``crop`` then a horizontal flip with probability 0.5
``rrc_flip``    random-resized crop (scale 0.35-1, kornia) then flip: the ImageNet-style recipe
``randaugment`` ``crop_flip`` then RandAugment (N=2, M=9; Cubuk et al. 2020), from kornia
``autoaugment`` ``crop_flip`` then AutoAugment's ImageNet policy (Cubuk et al. 2019, used by the
                EfficientNet paper, section 5.2), from kornia
==============  ==================================================================================

Crop and flip are written here in a few vectorised lines (one gather for the whole batch);
the policy augmentations come from kornia, which samples its sub-policy per batch. All
randomness uses torch's global generator, which the trainer checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

POLICIES = ("auto", "none", "crop", "crop_flip", "rrc_flip", "randaugment", "autoaugment")

Augment = Callable[[Tensor], Tensor]


def random_crop(x: Tensor, pad: int) -> Tensor:
    """Pad every image by ``pad`` zeros and crop back to its size at a random offset per image."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (n, 1, 1))
    ox = torch.randint(0, 2 * pad + 1, (n, 1, 1))
    rows = (oy + torch.arange(h).view(1, h, 1)).expand(n, h, w)
    cols = (ox + torch.arange(w).view(1, 1, w)).expand(n, h, w)
    flat = (rows * (w + 2 * pad) + cols).view(n, 1, h * w).expand(n, c, h * w)
    return xp.flatten(2).gather(2, flat).view(n, c, h, w)


def random_flip(x: Tensor, p: float = 0.5) -> Tensor:
    """Flip each image horizontally with probability ``p``."""
    mask = torch.rand(x.shape[0]) < p
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def make_augment(policy: str, *, resolution: int, flip_invariant: bool) -> Augment | None:
    """The batched augmentation ``policy`` at ``resolution`` px, or None for ``none``."""
    if policy not in POLICIES:
        raise ValueError(f"unknown augment policy {policy!r}: expected one of {', '.join(POLICIES)}")
    if policy == "auto":
        policy = "crop_flip" if flip_invariant else "crop"
    if policy == "none":
        return None
    pad = max(1, resolution // 8)
    if policy == "crop":
        return lambda x: random_crop(x, pad)
    if policy == "crop_flip":
        return lambda x: random_flip(random_crop(x, pad))
    if policy == "rrc_flip":
        import kornia.augmentation as K

        rrc = K.RandomResizedCrop((resolution, resolution), scale=(0.35, 1.0))
        return lambda x: random_flip(rrc(x))
    from kornia.augmentation import auto

    extra = auto.RandAugment(n=2, m=9) if policy == "randaugment" else auto.AutoAugment("imagenet")
    return lambda x: extra(random_flip(random_crop(x, pad))).clamp(0, 1)
