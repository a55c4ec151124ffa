"""Generated data sets stored once per machine: ``shapes`` takes about 6 s to generate (and its
statistics 0.5 s to compute) but about 0.1 s to read back, in every process that trains on it
(each ``effnas train``, each Ray worker of a pipeline; docs/training.md, "Where a run's time goes").

:func:`load_or_build` returns the arrays that ``build()`` makes, stored in
``cache_root()/generated/<name>-<key>.npz`` (``$EFFNAS_CACHE``, default ``~/.cache/effnas``). The key
hashes what decides the arrays: the caller's ``sources`` (the generating code's text) and
``params``, and numpy's and torch's versions (their random streams and reductions). So editing the
generator, or upgrading numpy, gives a new file instead of stale images.

Writes are atomic (:func:`effnas.search_spaces.common.atomic.atomic_write`: a temporary file, then a
rename): two processes that build the same key at once both generate and the second rename replaces
identical bytes; a reader never sees a partial file. A file that cannot be read back (truncated, or
not the arrays expected) is built and written again; a cache directory that cannot be written is
warned about once and the arrays are generated in every process instead.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from effnas.experiments.data.files.decoded import cache_root
from effnas.search_spaces.common.atomic import atomic_write

VERSION = 1  #: part of the key: bump when the file layout changes


def key(sources: Sequence[str], params: Sequence[object]) -> str:
    """Hash of the generating code, its parameters and the numeric libraries' versions."""
    h = hashlib.sha256(f"effnas-generated-v{VERSION}\0numpy {np.__version__}\0torch {torch.__version__}\0".encode())
    for s in sources:
        h.update(s.encode() + b"\0")
    h.update(repr(tuple(params)).encode())
    return h.hexdigest()[:24]


def path_for(name: str, sources: Sequence[str], params: Sequence[object]) -> Path:
    return cache_root() / "generated" / f"{name}-{key(sources, params)}.npz"


def _read(path: Path, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The arrays in ``path``, or None when it is missing, unreadable or lacks one of ``names``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if set(f.files) != set(names):
                return None
            return {n: f[n] for n in names}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # truncated or corrupt: build it again
        return None


def load_or_build(name: str, names: Sequence[str], *, sources: Sequence[str], params: Sequence[object],
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays (named ``names``), read from the stored file when there is a readable
    one, else built and stored."""
    path = path_for(name, sources, params)
    arrays = _read(path, names)
    if arrays is not None:
        return arrays
    arrays = build()
    if set(arrays) != set(names):
        raise ValueError(f"build() of {name!r} returned {sorted(arrays)}, expected {sorted(names)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda t: _save(t, arrays))
    except OSError as e:  # a read-only or full cache directory: train anyway, generating per process
        warnings.warn(f"could not store the generated {name!r} set in {path.parent} ({e}); "
                      f"it is generated again in every process", stacklevel=2)
    return arrays


def _save(tmp: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would append '.npz' to a bare name
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy types the keywords as allow_pickle
