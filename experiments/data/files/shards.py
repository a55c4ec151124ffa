"""Tar shards in the WebDataset layout: ``effnas data pack`` writes them, ``--dataset shards:DIR`` reads them.

A cluster copies a few large files to every node instead of sharing a filesystem of a million
small ones. ``pack`` writes, per split (``train`` and the evaluation split ``val`` or ``test``;
a flat folder has ``train`` only and its test split is carved at load time as for the folder):

* ``DIR/<split>-000000.tar``, ... (plain, uncompressed POSIX tar files of about ``shard_mb``
  MB each), whose members come in pairs sharing a key: ``<key>.<ext>`` (the image file's bytes,
  unchanged; ``ext`` its lower-cased extension, ``jpg`` for ``.jpeg``) and ``<key>.cls`` (the class index as ASCII
  digits). Keys are 8-digit positions in an order shuffled with a fixed seed, so sequential
  readers (the ``webdataset`` package: ``WebDataset(urls).decode("rgb").to_tuple("jpg", "cls")``)
  see mixed classes;
* ``DIR/dataset.json``: the class names (index order), and each split's shards and image count.

Reading (:func:`index_shards`) lists the members' offsets once (the tar headers; no pixels) and
streams images by random access into the shards through the same per-image workers, crops and
augmentation as an image folder (:class:`~effnas.experiments.data.files.streamloader.StreamLoader`).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effnas.experiments.config.choices import DATA_SEED
from effnas.experiments.data.files.imagefolder import FileSplit, index_imagefolder
from effnas.search_spaces.common.errors import UserError, user_file

META = "dataset.json"
LAYOUT = f"DIR/{META} and DIR/<split>-NNNNNN.tar shards written by 'effnas data pack'"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_split(split: FileSplit, name: str, out: Path, shard_bytes: int) -> list[str]:
    order = np.random.default_rng(DATA_SEED).permutation(len(split))  # the packed order
    shards: list[str] = []
    tar: tarfile.TarFile | None = None
    size = 0
    try:
        for key, i in enumerate(order.tolist()):
            if tar is None or size >= shard_bytes:
                if tar is not None:
                    tar.close()
                shards.append(f"{name}-{len(shards):06d}.tar")
                tar = tarfile.open(out / shards[-1], "w", format=tarfile.USTAR_FORMAT)
                size = 0
            path = split.path(i)
            data = Path(path).read_bytes()
            ext = os.path.splitext(path)[1].lower().lstrip(".").replace("jpeg", "jpg")  # WebDataset's names
            _add(tar, f"{key:08d}.{ext}", data)
            _add(tar, f"{key:08d}.cls", str(int(split.labels[i])).encode())
            size += len(data) + 1024
    finally:
        if tar is not None:
            tar.close()
    return shards


def pack(root: str | Path, out: str | Path, *, shard_mb: float = 256.0) -> dict[str, Any]:
    """Write the image folder ``root`` as tar shards into ``out`` (created; must hold no shards
    yet); returns the ``dataset.json`` it wrote."""
    train, evaluation, classes = index_imagefolder(root)
    out = Path(out)
    if (out / META).exists() or any(out.glob("*.tar")):
        raise UserError(f"--out {str(out)!r} already holds shards: give an empty or new directory")
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    named = [("train", train)]
    if evaluation is not None:
        named.append((Path(evaluation.root).name, evaluation))
    for name, split in named:
        shards = _write_split(split, name, out, int(shard_mb * 2**20))
        splits[name] = {"shards": shards, "images": len(split)}
    meta: dict[str, Any] = {"format": "effnas-webdataset-1", "source": str(Path(root).resolve()),
                            "classes": list(classes), "splits": splits}
    (out / META).write_text(json.dumps(meta, indent=1))
    return meta


def _index_split(root: Path, shards: list[str], n_classes: int) -> FileSplit:
    names: list[bytes] = []
    spans: list[tuple[int, int]] = []
    labels: list[int] = []
    for shard in shards:
        path = root / shard
        if not path.is_file():
            raise UserError(f"shard {str(path)!r} listed in {META} is missing: copy every shard, or pack again")
        pending: dict[str, tuple[str, int, int]] = {}
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                key, _, ext = m.name.partition(".")
                if ext == "cls":
                    f = tar.extractfile(m)
                    assert f is not None
                    label = int(f.read())
                    if not 0 <= label < n_classes:
                        raise UserError(f"{str(path)!r}: {m.name} holds class {label}, not 0..{n_classes - 1}: "
                                         f"expected {LAYOUT}")
                    if key not in pending:
                        raise UserError(f"{str(path)!r}: {m.name} has no image before it: expected {LAYOUT}")
                    name, offset, size = pending.pop(key)
                    names.append(f"{shard}/{name}".encode())
                    spans.append((offset, size))
                    labels.append(label)
                elif m.isfile():
                    pending[key] = (m.name, m.offset_data, m.size)
    return FileSplit(str(root), np.array(names, dtype=bytes), torch.tensor(labels, dtype=torch.int64),
                     spans=np.array(spans, dtype=np.int64).reshape(-1, 2))


def index_shards(root: str | Path) -> tuple[FileSplit, FileSplit | None, tuple[str, ...]]:
    """(training files, evaluation files or None, class names) of a directory written by :func:`pack`."""
    root = Path(root)
    meta_path = root / META
    if not meta_path.is_file():
        raise UserError(f"shards directory {str(root)!r} has no {META}: expected {LAYOUT}")
    with user_file(meta_path, "the shards' index", f"restore it or pack the folder again (expected {LAYOUT})"):
        meta = json.loads(meta_path.read_text())
    classes = tuple(meta["classes"])
    splits = meta["splits"]
    if "train" not in splits:
        raise UserError(f"{str(meta_path)!r} lists no train split: expected {LAYOUT}")
    train = _index_split(root, splits["train"]["shards"], len(classes))
    evals = [s for s in ("val", "test") if s in splits]
    evaluation = _index_split(root, splits[evals[0]]["shards"], len(classes)) if evals else None
    named = [("train", train)] + ([(evals[0], evaluation)] if evaluation is not None else [])
    for name, split in named:
        assert split is not None
        if len(split) != splits[name]["images"]:
            raise UserError(f"the {name} shards of {str(root)!r} hold {len(split)} images, not the "
                             f"{splits[name]['images']} of {META}: copy them again, or pack again")
        missing = sorted(set(range(len(classes))) - set(split.labels.tolist()))
        if missing:
            raise UserError(f"the {name} shards of {str(root)!r} have no images of class {classes[missing[0]]!r}: "
                             f"every split needs every class")
    return train, evaluation, classes
