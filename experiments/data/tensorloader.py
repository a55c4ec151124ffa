"""The in-memory path: a :class:`Split` (uint8 tensors at native size) and its
:class:`TensorLoader`, which resizes, augments and normalises batches in torch in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from effnas.experiments.data.augment import FlipTranslate
from effnas.experiments.data.batching import Batches

#: Resized copies of a split are cached in memory up to this many bytes (uint8).
CACHE_BYTES = 1 << 30


@dataclass(frozen=True, eq=False)
class Split:
    """Images (uint8 ``(N, C, H, W)``, native size) and int64 labels ``(N,)``."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4
        assert self.labels.dtype == torch.int64 and len(self.labels) == len(self.images)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Tensor) -> Split:
        return Split(self.images[index], self.labels[index])


def resize(images: Tensor, resolution: int, *, chunk: int = 1024) -> Tensor:
    """uint8 ``(N, C, H, W)`` -> uint8 ``(N, C, R, R)``: bilinear, antialiased when downsampling."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = torch.empty((*images.shape[:2], resolution, resolution), dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        out[i:i + chunk] = _resize_float(images[i:i + chunk].float(), resolution).round_().clamp_(0, 255)
    return out


def _resize_float(x: Tensor, resolution: int) -> Tensor:
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    down = resolution < max(x.shape[-2:])
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=down)


class TensorLoader:
    """Batches of one split at one resolution, ready for the model.

    uint8 -> float in [0, 1] at ``resolution`` (a resized uint8 copy of the split is cached
    when it fits in :data:`CACHE_BYTES`; otherwise each batch is resized) -> 3 channels ->
    ``augment`` (a batched function on [0, 1] images; a
    :class:`~effnas.experiments.data.augment.FlipTranslate` also gets the indices and the epoch) ->
    per-channel normalisation ->
    channels_last on ``device``. Its batches are :class:`~effnas.experiments.data.batching.Batches`
    (the order of epoch ``e`` seeded with ``(seed, e)`` only, as the streamed loader's); a
    :class:`~effnas.experiments.data.batching.Loader`.
    """

    def __init__(self, data: Split, *, resolution: int, mean: tuple[float, ...], std: tuple[float, ...],
                 batch_size: int, shuffle: bool = False, drop_last: bool = False, seed: int = 0,
                 augment: Callable[[Tensor], Tensor] | None = None, device: torch.device | str = "cpu",
                 channels_last: bool = True, shard: tuple[int, int, int] = (0, 1, 1)) -> None:
        self.batches = Batches(len(data), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                               shard=shard)
        self.labels = data.labels
        nbytes = len(data) * data.images.shape[1] * resolution * resolution
        self.resized = nbytes <= CACHE_BYTES
        self.images = resize(data.images, resolution) if self.resized else data.images
        self.resolution, self.batch_size, self.augment = resolution, batch_size, augment
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def num_images(self) -> int:
        return self.batches.num_images

    def batch(self, index: Tensor, epoch: int = 0) -> tuple[Tensor, Tensor]:
        x = self.images[index].float().div_(255)
        if not self.resized:
            x = _resize_float(x, self.resolution).clamp_(0, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if isinstance(self.augment, FlipTranslate):
            x = self.augment.indexed(x, index, epoch)
        elif self.augment is not None:
            x = self.augment(x)
        x = ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)
        y = self.labels[index]
        if self.device.type != "cpu":
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return x, y

    def epoch(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The epoch's batches; with a ``shard``, this rank's micro-batches of each batch in turn."""
        for index in self.batches.indices(epoch):
            yield self.batch(index, epoch)
