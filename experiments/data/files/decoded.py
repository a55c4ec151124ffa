"""Decode a small image folder once: a memory-mapped uint8 cache at native size, shared by every
process on the machine.

``open_or_build(split)`` returns the decoded pixels of a :class:`~effnas.experiments.data.files.imagefolder.FileSplit`.
The cache lives in ``cache_root()/decoded/<key>/`` (``$EFFNAS_CACHE``, default ``~/.cache/effnas``),
where ``key`` hashes the split's directory and every file's relative path, size and modification
time: touching, replacing, adding or removing a file gives a new key (the folder is decoded again);
otherwise every trial, Ray worker and later run on the machine maps the same file (the OS page
cache holds it once) instead of decoding. Files:

* ``pixels.u8``: the images' RGB pixels, ``(H, W, 3)`` row-major each, one after the other;
* ``index.npz``: ``offsets`` (int64, N + 1) into ``pixels.u8`` and ``shapes`` (int32 ``(N, 2)``,
  ``(0, 0)`` for a file that could not be decoded).

A cache is written into a temporary directory and renamed into place, so a reader never sees a
partial one; two processes building the same key at once both decode, and the second rename
loses harmlessly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from effnas.experiments.data.files.imagefolder import BadImage, FileSplit, decode

VERSION = 1  #: part of the key: bump when the layout or the decoder's output changes


def cache_root() -> Path:
    """``$EFFNAS_CACHE``, else ``~/.cache/effnas`` (``$XDG_CACHE_HOME/effnas`` when that is set)."""
    env = os.environ.get("EFFNAS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "effnas"


def key(split: FileSplit) -> str:
    """Hash of the split's directory and each file's relative path, size and mtime (ns)."""
    h = hashlib.sha256(f"effnas-decoded-v{VERSION}\0{os.path.abspath(split.root)}\0".encode())
    for i in range(len(split)):
        st = os.stat(split.path(i))
        h.update(bytes(split.paths[i]) + f"\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:32]


@dataclass(frozen=True, eq=False)
class DecodedImages:
    """The decoded images of one split: ``images[i]`` is a read-only ``(H, W, 3)`` uint8 view
    into the memory map (no copy); ``bad`` lists the rows whose file could not be decoded."""

    directory: Path
    pixels: np.ndarray  # flat uint8 memmap
    offsets: np.ndarray
    shapes: np.ndarray

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, i: int) -> np.ndarray:
        h, w = (int(v) for v in self.shapes[i])
        return self.pixels[self.offsets[i]:self.offsets[i + 1]].reshape(h, w, 3)

    @property
    def ok(self) -> np.ndarray:
        """Bool mask of the rows that hold an image."""
        return self.shapes[:, 0] > 0

    @property
    def bad(self) -> np.ndarray:
        return np.flatnonzero(~self.ok)

    def uniform(self) -> tuple[int, int] | None:
        """(H, W) when every decoded image has that one size, else None."""
        good = self.shapes[self.ok]
        if len(good) and (good == good[0]).all():
            return int(good[0, 0]), int(good[0, 1])
        return None

    def stacked(self) -> np.ndarray:
        """All decoded images of a :meth:`uniform` cache as one ``(N_ok, H, W, 3)`` view (no copy)."""
        hw = self.uniform()
        assert hw is not None
        return self.pixels[: self.offsets[-1]].reshape(-1, hw[0], hw[1], 3)


def _open(directory: Path) -> DecodedImages:
    with np.load(directory / "index.npz") as z:
        offsets, shapes = z["offsets"], z["shapes"]
    size = int(offsets[-1])
    # copy-on-write: torch may wrap it without a read-only warning; nothing writes to it
    pixels = (np.memmap(directory / "pixels.u8", dtype=np.uint8, mode="c", shape=(size,)) if size
              else np.zeros(0, np.uint8))
    return DecodedImages(directory, pixels, offsets, shapes)


def _build(split: FileSplit, directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp's 0o700 would hide the cache from other users' runs
    try:
        offsets = np.zeros(len(split) + 1, dtype=np.int64)
        shapes = np.zeros((len(split), 2), dtype=np.int32)
        with open(tmp / "pixels.u8", "wb") as f:
            for i in range(len(split)):
                try:
                    img = decode(split.path(i))
                except BadImage:
                    img = np.zeros((0, 0, 3), np.uint8)  # recorded as (0, 0): skipped or an error later
                f.write(np.ascontiguousarray(img).data)
                shapes[i] = img.shape[:2]
                offsets[i + 1] = offsets[i] + img.size
        np.savez(tmp / "index.npz", offsets=offsets, shapes=shapes)
        try:
            os.rename(tmp, directory)
        except OSError:  # another process finished the same key first: keep its copy
            if not (directory / "index.npz").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def open_or_build(split: FileSplit, cache_dir: str | Path | None = None) -> tuple[DecodedImages, bool]:
    """(the decoded images of ``split``, whether they were decoded now). Files that cannot be
    decoded are recorded, not raised: the caller skips or rejects them (``data.strict``)."""
    directory = Path(cache_dir or cache_root()) / "decoded" / key(split)
    built = not (directory / "index.npz").is_file()
    if built:
        _build(split, directory)
    return _open(directory), built
