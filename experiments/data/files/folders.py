"""Image folders (and tar shards of them) as data sets: which path (in memory or streamed) and
which files to skip.

``data.path`` chooses how an image folder is read:

* ``stream``: an index of files; DataLoader workers decode each image every time it is used.
* ``memory``: the folder is decoded once into the memory-mapped cache of
  :mod:`effnas.experiments.data.files.decoded` (shared by every process on the machine). A folder of small images
  of one size (CIFAR as JPEG files: the ``small`` geometry) becomes uint8 tensors on the
  in-memory path (:class:`effnas.experiments.data.tensorloader.TensorLoader`, the path of the CIFAR pickles); any other
  keeps the per-image crops of the streaming path (the Inception crop of large images), reading
  pixels from the cache instead of decoding.
* ``auto`` (default): ``memory`` when the decoded folder (files x the sampled mean H x W x 3)
  is at most :data:`MEMORY_BYTES`, else ``stream``.

Files that cannot be decoded are named in a warning, skipped and counted (``skipped_images`` in
``metrics.json``); ``data.strict`` makes them an error. On the memory path they are found while
decoding (before training starts); on the streaming path when a worker first reads them.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from effnas.experiments.config.choices import DATA_PATHS, DATA_SEED
from effnas.experiments.data.files import decoded, imagefolder, shards
from effnas.experiments.data.files.imagefolder import FileSplit
from effnas.search_spaces.common.errors import UserError

#: ``data.path = auto`` decodes a folder into memory when it holds at most this many decoded bytes.
MEMORY_BYTES = 2 << 30


class Folder(NamedTuple):
    pool: FileSplit | tuple[Tensor, Tensor]  # a file index, or (uint8 (N, 3, H, W), labels) in memory
    test: FileSplit | tuple[Tensor, Tensor]
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    geometry: str
    skipped: tuple[str, ...]


def choose(path: str, nbytes: float) -> str:
    """``memory`` or ``stream`` for ``data.path`` and the folder's estimated decoded bytes.

    >>> choose("auto", 184e6), choose("auto", 140e9), choose("stream", 1.0)
    ('memory', 'stream', 'stream')
    """
    if path not in DATA_PATHS:
        raise UserError(f"unknown data.path {path!r}: expected one of {', '.join(DATA_PATHS)}")
    if path != "auto":
        return path
    return "memory" if nbytes <= MEMORY_BYTES else "stream"


def load_folder(name: str, root: str, *, test_mask: object, path: str = "auto", strict: bool = False) -> Folder:
    """An ImageFolder as a data set (see the module docstring). ``test_mask(labels)`` carves the
    test split of a flat folder (:func:`effnas.experiments.data.datasets._test_mask`)."""
    if name == "shards":
        if path == "memory":
            raise UserError(f"shards:{root} is streamed from its tar files: use data.path = 'auto' or 'stream'")
        path = "stream"
        train, evaluation, classes = shards.index_shards(root)
    else:
        train, evaluation, classes = imagefolder.index_imagefolder(root)
    expected = {"cifar10": 10, "cifar100": 100}.get(name)
    if expected is not None and len(classes) != expected:
        raise UserError(f"{name}:{root} has {len(classes)} class directories, not {expected}: "
                         f"use imagefolder:{root} for other sets")
    s = imagefolder.survey(train, seed=DATA_SEED)
    mode = choose(path, s.nbytes * (len(train) + (len(evaluation) if evaluation is not None else 0)))
    skipped: list[str] = []
    if mode == "memory":
        train = _cached(train, classes, strict, skipped)
        evaluation = None if evaluation is None else _cached(evaluation, classes, strict, skipped)
    if evaluation is None:
        assert callable(test_mask)
        test = test_mask(train.labels.numpy())
        evaluation = train.subset(torch.from_numpy(np.flatnonzero(test)))
        train = train.subset(torch.from_numpy(np.flatnonzero(~test)))
    geometry = "small" if s.side <= imagefolder.SMALL_SIDE else "inception"
    one_size = mode == "memory" and train.pixels.uniform() is not None and evaluation.pixels.uniform() is not None
    if one_size and geometry == "small":  # the in-memory loader's batched pad-crop is the small geometry
        return Folder(_tensors(train), _tensors(evaluation), classes, s.mean, s.std, geometry, tuple(skipped))
    return Folder(train, evaluation, classes, s.mean, s.std, geometry, tuple(skipped))


def _cached(split: FileSplit, classes: tuple[str, ...], strict: bool, skipped: list[str]) -> FileSplit:
    """``split`` reading from the decoded cache, without its undecodable files (``strict``: an error)."""
    images, _ = decoded.open_or_build(split)
    bad = images.bad
    if len(bad) and strict:
        raise imagefolder.BadImage(f"cannot decode image {split.path(int(bad[0]))!r} ({len(bad)} such files in "
                                   f"{split.root!r}): fix or remove it, or leave data.strict off to skip it")
    for i in bad.tolist():
        skipped.append(split.path(i))
        warnings.warn(f"skipped undecodable image {split.path(i)!r} (data.strict = true makes it an error)",
                      stacklevel=3)
    keep = np.flatnonzero(images.ok)
    out = FileSplit(split.root, split.paths, split.labels, images, np.arange(len(split))).subset(
        torch.from_numpy(keep))
    empty = sorted(set(range(len(classes))) - set(out.labels.tolist()))
    if empty:
        raise UserError(f"class {classes[empty[0]]!r} in {split.root!r} has no decodable images: "
                         f"fix or remove its files")
    return out


def _tensors(split: FileSplit) -> tuple[Tensor, Tensor]:
    """(uint8 (N, 3, H, W), labels) of a cached split of one image size; the pixels are
    copied out of the memory map once (the in-memory path indexes them directly)."""
    images = split.pixels
    assert split.rows is not None
    ok_rank = np.cumsum(images.ok) - 1  # row in the cache -> position among the decoded images
    x = torch.from_numpy(images.stacked())[torch.from_numpy(ok_rank[split.rows])]
    return x.permute(0, 3, 1, 2), split.labels
