"""The batches of an epoch, for both loaders: the seeded order, and how one optimiser step's
batch is cut into data-parallel ranks times gradient-accumulation micro-batches.

Both loaders (in-memory :mod:`~effnas.experiments.data.tensorloader` and streamed
:mod:`~effnas.experiments.data.files.streamloader`) draw their order and cut each global batch here
(:class:`Batches`), so a resumed run sees the same batches as an uninterrupted one and a run on
``devices x accumulate`` processes sees the same images per step as one process
(docs/training.md). Both have the surface of the :class:`Loader` protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from effnas.search_spaces.common.errors import UserError


class Loader(Protocol):
    """What training asks of a loader: the batches of an epoch, ready for the model."""

    def __len__(self) -> int:
        """Batches (optimiser steps) per epoch."""

    @property
    def num_images(self) -> int:
        """Images per epoch."""

    def epoch(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """(images, labels) of epoch ``epoch``; with a shard, this rank's micro-batches in turn."""


def epoch_order(n: int, *, seed: int, epoch: int) -> Tensor:
    """The order of ``n`` images in epoch ``epoch``: a permutation seeded with ``(seed, epoch)``
    only (an int64 tensor: 8 bytes an image, no Python ints).

    >>> torch.equal(epoch_order(10, seed=1, epoch=3), epoch_order(10, seed=1, epoch=3))
    True
    """
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


@dataclass(frozen=True)
class Batches:
    """The batches of ``n`` images: shuffled with :func:`epoch_order` when ``shuffle``, a last
    partial batch dropped when ``drop_last`` (unless it is the only one), each batch cut into this
    rank's micro-batches (``shard = (rank, world, accumulate)``, :func:`micro_batches`).

    >>> b = Batches(10, batch_size=4, shuffle=False, drop_last=True, seed=0)
    >>> len(b), b.num_images, [p.tolist() for p in b.indices(0)]
    (2, 8, [[0, 1, 2, 3], [4, 5, 6, 7]])
    """

    n: int
    batch_size: int
    shuffle: bool
    drop_last: bool
    seed: int
    shard: tuple[int, int, int] = (0, 1, 1)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        object.__setattr__(self, "drop_last", self.drop_last and self.n > self.batch_size)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self) * self.batch_size if self.drop_last else self.n

    def indices(self, epoch: int) -> Iterator[Tensor]:
        """The image indices of each (micro-)batch of epoch ``epoch``, in order."""
        order = epoch_order(self.n, seed=self.seed, epoch=epoch) if self.shuffle else torch.arange(self.n)
        for b in range(len(self)):
            yield from micro_batches(order[b * self.batch_size:(b + 1) * self.batch_size], self.shard)


def micro_batches(index: torch.Tensor, shard: tuple[int, int, int]) -> list[torch.Tensor]:
    """Rank ``r``'s micro-batches of one step's global batch ``index``, ``shard = (r, world,
    accumulate)``: the batch cut into ``world * accumulate`` parts, parts ``r*accumulate ..``.

    >>> [p.tolist() for p in micro_batches(torch.arange(8), (1, 2, 2))]
    [[4, 5], [6, 7]]
    """
    rank, world, accumulate = shard
    parts = index.tensor_split(world * accumulate)
    if any(len(p) == 0 for p in parts):
        raise UserError(f"a batch of {len(index)} images cannot be cut into train.devices x train.accumulate = "
                         f"{world * accumulate} micro-batches: lower them or use more data")
    return list(parts[rank * accumulate:(rank + 1) * accumulate])
