"""Loading a streamed image folder: :class:`StreamLoader`, batches of an index of files.

Each image of a :class:`~effnas.experiments.data.files.imagefolder.FileSplit` is read, decoded and given its
:class:`~effnas.experiments.data.files.transforms.ImageTransform` in DataLoader worker processes
(``data.loader_workers``), in threads of this process (``data.loader_threads``) or in this
process; batches travel as uint8 ``(N, R, R, 3)`` (pinned on CUDA, copied non-blocking) and are
normalised after the copy as a channels_last float batch. Randomness of image ``i`` in epoch
``e`` is drawn from ``(seed, e, i)`` alone, so the batches do not depend on workers or threads
(``docs/data.md``).
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from torch import Tensor

from effnas.experiments.data.batching import Batches
from effnas.experiments.data.files.imagefolder import BadImage, FileSplit
from effnas.experiments.data.files.transforms import ImageTransform
from effnas.experiments.data.malloc import reuse_large_blocks
from effnas.search_spaces.common.errors import UserError


class _Images(torch.utils.data.Dataset[tuple[Tensor, int, int]]):
    """Indexed by ``(index, epoch)`` so the transform's randomness is a function of both. An
    undecodable file gives an empty image, dropped by :func:`_collate` and reported to the main
    process (which warns or, with ``data.strict``, raises a one-line error naming the file)."""

    def __init__(self, split: FileSplit, transform: ImageTransform) -> None:
        self.split, self.transform = split, transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, int, int]:
        i, epoch = key
        try:
            return self.transform(self.split.fetch(i), epoch, i), int(self.split.labels[i]), i
        except BadImage:  # from the read or, for an encoded JPEG, from the decode in the transform
            return torch.empty(0, dtype=torch.uint8), -1, i


def _collate(items: list[tuple[Tensor, int, int]]) -> tuple[Tensor, Tensor, Tensor]:
    """(images, labels, indices of the skipped files) of one batch."""
    good = [(x, y) for x, y, _ in items if y >= 0]
    skipped = torch.tensor([i for _, y, i in items if y < 0], dtype=torch.int64)
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), skipped
    images = [x for x, _ in good]
    out = None
    if torch.utils.data.get_worker_info() is not None:  # stack straight into shared memory, as torch's
        storage = images[0]._typed_storage()._new_shared(len(images) * images[0].numel())  # default_collate
        out = images[0].new(storage).resize_(len(images), *images[0].shape)  # (saves a copy of the batch)
    return torch.stack(images, out=out), torch.tensor([y for _, y in good], dtype=torch.int64), skipped


class EpochBatches(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """:class:`~effnas.experiments.data.batching.Batches` as a DataLoader's batch sampler of
    ``(index, epoch)`` (the in-memory loader's order). Set :attr:`epoch` before iterating."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Any:
        e = self.epoch
        for part in self.batches.indices(e):  # this rank's micro-batches (all of it on one device)
            yield [(i, e) for i in part.tolist()]


def default_workers() -> int:
    """Worker processes when the run does not say: half the cores (the rest train), at most 8;
    none on 1-2 cores, where training already uses every core and a worker only adds the
    inter-process copy (``bench/data_throughput.py``; docs/data.md, "Measured numbers behind the
    code's choices")."""
    cpus = os.cpu_count() or 1
    return 0 if cpus <= 2 else min(8, cpus // 2)


class StreamLoader:
    """Batches of a :class:`FileSplit`, decoded and transformed per image in worker processes.

    A :class:`~effnas.experiments.data.batching.Loader` (``len``, ``num_images``, ``epoch(e)``).
    ``workers`` processes (0: the main process) are started on the first epoch
    and kept (persistent) for the next ones; on CUDA batches are pinned and copied
    non-blocking, then converted to float, normalised with ``mean``/``std`` and made
    channels_last on the device. A file that cannot be decoded is named in a warning (once) and
    left out of its batch (:attr:`skipped` collects the paths); ``strict``: a one-line
    :class:`BadImage` instead.
    """

    def __init__(self, split: FileSplit, *, transform: ImageTransform, mean: tuple[float, ...],
                 std: tuple[float, ...], batch_size: int, shuffle: bool = False, drop_last: bool = False,
                 seed: int = 0, device: torch.device | str = "cpu", channels_last: bool = True,
                 workers: int | None = None, threads: int = 0, prefetch: int = 4, strict: bool = False,
                 shard: tuple[int, int, int] = (0, 1, 1)) -> None:
        batches = Batches(len(split), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                          shard=shard)
        workers = (0 if threads else default_workers()) if workers is None else workers
        if workers < 0 or threads < 0:
            raise UserError(f"loader_workers and loader_threads must be >= 0, got {workers} and {threads}")
        if workers and threads:
            raise UserError("loader_workers and loader_threads both set: decode in worker processes or in threads of "
                             "the main process, not both")
        if threads and transform.policy is not None:
            raise UserError(f"data.loader_threads cannot run {transform.policy} (its per-image draws use torch's "
                             "process-wide generator, which threads would share): use data.loader_workers instead")
        self.transform, self.workers, self.threads, self.batch_size = transform, workers, threads, batch_size
        self.prefetch = prefetch
        self.device = torch.device(device)
        reuse_large_blocks()  # the batches here are tens of MB: reuse them, do not fault them in each time
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.sampler = EpochBatches(batches)
        self.split, self.strict, self.skipped = split, strict, set[str]()  # skipped: undecodable files' paths
        self.loader = torch.utils.data.DataLoader(
            _Images(split, transform), batch_sampler=self.sampler, num_workers=workers, collate_fn=_collate,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=prefetch if workers > 0 else None)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self._rows: dict[int, tuple[Tensor, Tensor]] = {}  # width -> per-row scale and shift (channels_last)

    def __len__(self) -> int:
        return len(self.sampler)

    @property
    def num_images(self) -> int:
        return self.sampler.batches.num_images

    def _threaded(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """The batches of the sampler's epoch, each image decoded and transformed by one of
        ``threads`` threads (``prefetch`` batches ahead), collated in order in this thread."""

        images = _Images(self.split, self.transform)
        batches = iter(self.sampler)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="effnas-loader") as pool:
            pending: deque[list[Future[tuple[Tensor, int, int]]]] = deque()
            try:
                while True:
                    while len(pending) < self.prefetch:
                        keys = next(batches, None)
                        if keys is None:
                            break
                        pending.append([pool.submit(images.__getitem__, k) for k in keys])
                    if not pending:
                        return
                    batch = pending.popleft()
                    try:
                        items = [f.result() for f in batch]
                    except BaseException:
                        for f in batch:
                            f.cancel()
                        raise
                    x, y, bad = _collate(items)
                    if self.device.type == "cuda":
                        x = x.pin_memory()
                    yield x, y, bad
            finally:  # an abandoned epoch: drop what was queued
                for futures in pending:
                    for f in futures:
                        f.cancel()

    def epoch(self, epoch: int = 0) -> Any:
        self.sampler.epoch = epoch
        for x, y, bad in (self._threaded() if self.threads else self.loader):  # x: uint8 (N, R, R, 3)
            for i in bad.tolist():
                path = self.split.path(i)
                if self.strict:
                    raise BadImage(f"cannot decode image {path!r}: fix or remove the file "
                                   f"(or leave data.strict off to skip it)")
                if path not in self.skipped:
                    self.skipped.add(path)
                    warnings.warn(f"skipped undecodable image {path!r} (data.strict = true makes it an error)",
                                  stacklevel=2)
            if not len(y):
                continue
            yield self.normalise(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def normalise(self, x: Tensor) -> Tensor:
        """uint8 ``(N, R, R, 3)`` -> float ``(N, 3, R, R)``, ``(x - 255 mean) / (255 std)`` per channel,
        in the loader's memory format. channels_last: one pass over the float batch seen as rows of
        ``R x 3`` values against a row of per-channel scales and shifts (a broadcast over the last,
        3-long dimension is slower on CPU: docs/data.md, "Measured numbers behind the code's choices")."""
        n, h, w, c = x.shape
        if self.memory_format != torch.channels_last:
            return x.permute(0, 3, 1, 2).contiguous().float().sub_(self.mean).div_(self.std)
        if w not in self._rows:
            scale = (1 / self.std).reshape(-1).expand(c)
            self._rows[w] = (scale.repeat(w), (-self.mean.reshape(-1).expand(c) * scale).repeat(w))
        scale, shift = self._rows[w]
        out = x.float()
        rows = out.view(n * h, w * c)
        torch.addcmul(shift, rows, scale, out=rows)
        return out.permute(0, 3, 1, 2)  # channels_last
