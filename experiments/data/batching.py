"""How one optimiser step's batch is cut: data-parallel ranks times gradient-accumulation micro-batches.

Both loaders (in-memory :mod:`~effnas.experiments.data.datasets` and streamed
:mod:`~effnas.experiments.data.streamloader`) cut each global batch here, so a run on ``devices x
accumulate`` processes sees the same images per step as one process (docs/training.md).
"""

from __future__ import annotations

import torch

from effnas.search_spaces.errors import UserError


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
