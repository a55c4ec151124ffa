"""Augmentation of in-memory batches in torch (float images in [0, 1] at the run's resolution),
and the per-image AutoAugment / RandAugment shared with the streaming path.

Policies (``TrainConfig.augment``) on in-memory sets (streamed image folders map the same
names onto their per-image crops: ``effnas.experiments.data.datasets.image_transform``, ``docs/data.md``):

==============  ==================================================================================
``auto``        ``crop_flip`` for sets where a horizontal flip keeps the label, else ``crop``
``none``        identity
``crop``        random crop with zero padding of ``resolution // 8`` pixels (4 px at 32 px, as
                in the CIFAR ResNet recipe)
``crop_flip``   ``crop`` then a horizontal flip with probability 0.5
``flip_translate`` the fast recipe's (airbench): translation by up to ``resolution // 16`` pixels (2 at
                32 px; reflect padding, random crop) and a *derandomised* flip: each image is
                flipped in alternate epochs, starting flipped or not by a seeded hash of its index,
                so every two epochs show each image both ways (:class:`FlipTranslate`; no flip
                on sets a flip does not keep the label of)
``rrc_flip``    random-resized crop (scale 0.35-1, kornia) then flip (streamed sets: the Inception
                crop, scale 0.08-1, from native pixels)
``randaugment`` ``crop_flip`` then RandAugment (N=2, M=9; Cubuk et al. 2020), kornia, per image
                (progressive learning sets M per stage: ``train.progressive_randaug``)
``autoaugment`` ``crop_flip`` then AutoAugment's ImageNet policy (Cubuk et al. 2019, used by the
                EfficientNet paper, section 5.2), kornia, drawn per image
==============  ==================================================================================

Crop and flip are written here in a few vectorised lines (one gather for the whole batch).
The policy augmentations come from kornia, whose ``AutoAugment`` / ``RandAugment`` draw **one**
sub-policy (or one set of operations) per call, i.e. per batch; :class:`PerImagePolicy` calls
them on one image at a time so that every image draws its own, as in the papers (TF
EfficientNet's ``distort_image_with_autoaugment`` runs per image). All randomness of the batched
functions uses torch's global generator, which the trainer checkpoints.

The streaming ImageFolder path (:mod:`effnas.experiments.data.files.imagefolder`) does its geometry per image in
its DataLoader workers and uses :class:`PerImagePolicy` there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from effnas.experiments.config.choices import AUGMENTS, PER_IMAGE_AUGMENTS
from effnas.search_spaces.common.errors import UserError

Augment = Callable[[Tensor], Tensor]
#: RandAugment's magnitude unless a run schedules it (Cubuk et al. 2020's ResNet-50 setting, on kornia's scale).
RANDAUG_M = 9.0


def random_crop(x: Tensor, pad: int, mode: str = "constant") -> Tensor:
    """Pad every image by ``pad`` pixels (zeros; ``mode="reflect"``: mirrored) and crop back to its
    size at a random offset per image (one gather for the batch)."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), mode=mode)
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


class FlipTranslate:
    """``flip_translate``: reflect-padded translation by up to ``pad`` pixels, then (``flip``) the
    alternating flip. Image ``i`` is flipped in epoch ``e`` iff ``bit(i) != e % 2``, where ``bit`` is
    a fixed hash of the index and ``seed``: half the images start flipped, and every image is seen both
    ways in any two consecutive epochs (airbench, Jordan 2024, "alternating flip"). Called by the
    in-memory loader with the batch's indices and epoch (:meth:`indexed`)."""

    def __init__(self, pad: int, *, flip: bool, seed: int = 0) -> None:
        self.pad, self.flip, self.seed = pad, flip, seed

    def bits(self, index: Tensor) -> Tensor:
        """The seeded per-image bit (a multiplicative hash of the index: no table, no state)."""
        h = (index.to(torch.int64) + self.seed * 1_000_003) * 2_654_435_761 % (1 << 32)
        return (h >> 16) & 1

    def indexed(self, x: Tensor, index: Tensor, epoch: int) -> Tensor:
        x = random_crop(x, self.pad, mode="reflect")
        if not self.flip:
            return x
        mask = self.bits(index) != epoch % 2
        return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)

    def __call__(self, x: Tensor) -> Tensor:
        """Without indices (a caller that has none): translation and a random flip."""
        x = random_crop(x, self.pad, mode="reflect")
        return random_flip(x) if self.flip else x


def make_augment(policy: str, *, resolution: int, flip_invariant: bool, seed: int = 0,
                 magnitude: float | None = None) -> Augment | None:
    """The batched augmentation ``policy`` at ``resolution`` px, or None for ``none``; ``seed``: the
    alternating flip's (``flip_translate``); ``magnitude``: RandAugment's (None: :data:`RANDAUG_M`)."""
    if policy not in AUGMENTS:
        raise UserError(f"unknown augment policy {policy!r}: expected one of {', '.join(AUGMENTS)}")
    if policy == "auto":
        policy = "crop_flip" if flip_invariant else "crop"
    if policy == "none":
        return None
    if policy == "flip_translate":
        return FlipTranslate(max(1, resolution // 16), flip=flip_invariant, seed=seed)
    pad = max(1, resolution // 8)
    if policy == "crop":
        return lambda x: random_crop(x, pad)
    if policy == "crop_flip":
        return lambda x: random_flip(random_crop(x, pad))
    if policy == "rrc_flip":
        import kornia.augmentation as K  # lazy: kornia takes seconds to import; only augmenting runs need it

        rrc = K.RandomResizedCrop((resolution, resolution), scale=(0.35, 1.0))
        return lambda x: random_flip(rrc(x))
    extra = PerImagePolicy(policy, magnitude=magnitude)
    return lambda x: extra.batch(random_flip(random_crop(x, pad)))


def _applied(params: list[Any]) -> tuple[str, ...]:
    """Names of the operations kornia's parameters say were applied to the (single) image."""
    names: list[str] = []
    for item in params:
        data = item.data
        if isinstance(data, list):  # a sub-policy (PolicySequential): its operations
            names += _applied(data)
        elif isinstance(data, dict) and "batch_prob" in data:
            if bool(data["batch_prob"].bool().all()):
                names.append(item.name.rsplit("_", 1)[0])
    return tuple(names)


class PerImagePolicy:
    """kornia's AutoAugment (ImageNet policy) or RandAugment (N=2, M=``magnitude``, default
    :data:`RANDAUG_M`; kornia's scale: an operation's strength is ``M / 30`` of its range) drawn per image.

    ``__call__`` augments one uint8 ``(3, H, W)`` image with its own draw from ``seed`` (the
    global torch generator is left untouched); ``batch`` augments each image of a float
    ``(N, 3, H, W)`` batch in [0, 1] with its own draw from the global generator.
    :attr:`last_ops` names the operations the last image received (for tests and logs).
    """

    def __init__(self, name: str, *, magnitude: float | None = None) -> None:
        if name not in PER_IMAGE_AUGMENTS:
            raise UserError(f"unknown per-image policy {name!r}: expected one of {', '.join(PER_IMAGE_AUGMENTS)}")
        if magnitude is not None and name != "randaugment":
            raise UserError(f"a magnitude is RandAugment's; {name} has its own per operation: drop the magnitude")
        from kornia.augmentation import (
            auto,  # lazy: kornia takes seconds to import; only AutoAugment/RandAugment need it
        )

        self.name = name
        self.magnitude = RANDAUG_M if magnitude is None else magnitude
        self.policy: auto.RandAugment | auto.AutoAugment
        if name == "randaugment":  # kornia types m as int but takes any number in (0, 30): it computes m / 30
            self.policy = auto.RandAugment(n=2, m=self.magnitude)  # type: ignore[arg-type]
        else:
            self.policy = auto.AutoAugment("imagenet")
        self.last_ops: tuple[str, ...] = ()

    def _one(self, x: Tensor) -> Tensor:
        params = self.policy.forward_parameters(x.shape)
        self.last_ops = _applied(params)
        return self.policy(x, params=params).clamp_(0, 1)

    def __call__(self, img: Tensor, *, seed: int) -> Tensor:
        gen = torch.default_generator  # kornia draws from it; seeding it alone is 1 us (torch.manual_seed: 80)
        state = gen.get_state()
        try:
            gen.manual_seed(seed)
            out = self._one(img.unsqueeze(0).float().div_(255))[0]
        finally:
            gen.set_state(state)
        return out.mul_(255).round_().to(torch.uint8)

    def batch(self, x: Tensor) -> Tensor:
        return torch.cat([self._one(x[i:i + 1]) for i in range(len(x))])
