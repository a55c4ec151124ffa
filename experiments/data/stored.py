"""Generated data sets stored once per machine: ``shapes`` takes about 6 s to generate (and its
statistics 0.5 s to compute) but well under 0.1 s to map back, in every process that trains on it
(each ``effnas train``, each Ray worker of a pipeline; docs/training.md, "Where a run's time goes").

:func:`load_or_build` returns the arrays that ``build()`` makes, stored as one ``.npy`` file per
array in ``cache_root()/generated/<name>-<key>/`` (``$EFFNAS_CACHE``, default ``~/.cache/effnas``).
The key hashes what decides the arrays: the caller's ``sources`` (the generating code's text) and
``params``, and numpy's and torch's versions (their random streams and reductions). So editing the
generator, or upgrading numpy, gives a new directory instead of stale images.

Reading maps the files copy-on-write: no copy and no checksum, pages shared by every process through
the page cache. Writes are atomic (a temporary directory, then a rename): two processes that build
the same key at once both generate, and the later rename keeps either identical copy; a reader
never sees a partial directory. A file that cannot be read back (truncated, corrupt) is built and
written again; a cache directory that cannot be written is warned about and the arrays are
generated in every process instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from effnas.experiments.data.files.decoded import cache_root
from effnas.search_spaces.common.atomic import disk_full, fsync_dir, fsync_file

VERSION = 1  #: part of the key: bump when the file layout changes


def key(sources: Sequence[str], params: Sequence[object]) -> str:
    """Hash of the generating code, its parameters and the numeric libraries' versions."""
    h = hashlib.sha256(f"effnas-generated-v{VERSION}\0numpy {np.__version__}\0torch {torch.__version__}\0".encode())
    for s in sources:
        h.update(s.encode() + b"\0")
    h.update(repr(tuple(params)).encode())
    return h.hexdigest()[:24]


def path_for(name: str, sources: Sequence[str], params: Sequence[object]) -> Path:
    """The directory holding ``name``'s arrays, one ``<array>.npy`` each."""
    return cache_root() / "generated" / f"{name}-{key(sources, params)}"


def _read(path: Path, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The arrays in ``path``, memory-mapped copy-on-write (no read until used, writable, shared with
    every process through the page cache), or None when one is missing or unreadable."""
    try:
        arrays = {n: np.load(path / f"{n}.npy", mmap_mode="c", allow_pickle=False) for n in names}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError):  # truncated or corrupt: build it again
        return None
    return arrays


def load_or_build(name: str, names: Sequence[str], *, sources: Sequence[str], params: Sequence[object],
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays (named ``names``), read from the stored directory when there is a
    readable one, else built and stored."""
    path = path_for(name, sources, params)
    arrays = _read(path, names)
    if arrays is not None:
        return arrays
    arrays = build()
    if set(arrays) != set(names):
        raise ValueError(f"build() of {name!r} returned {sorted(arrays)}, expected {sorted(names)}")
    try:
        _store(path, arrays)
    except OSError as e:  # a read-only or full cache directory: train anyway, generating per process
        warnings.warn(f"could not store the generated {name!r} set in {path.parent} ({e}); "
                      f"it is generated again in every process", stacklevel=2)
    return arrays


def _store(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays into a temporary directory beside ``path``, then rename it into place (a
    concurrent writer's identical directory, or a broken one, is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like the decoded one
    try:
        with disk_full(path):
            for n, a in arrays.items():
                np.save(tmp / f"{n}.npy", a, allow_pickle=False)
        for f in tmp.iterdir():
            fsync_file(f)
        if path.exists():  # a broken copy (or another writer's): replace it
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():  # not another writer's copy that landed first
                raise
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
