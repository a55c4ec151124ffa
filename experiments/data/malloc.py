"""The C allocator of this process, tuned for batch-sized tensors (both loaders and the trainer use it)."""

from __future__ import annotations

import ctypes
import os
import sys

from effnas.search_spaces.common.errors import UserError

#: glibc's ``mallopt`` parameters (malloc.h) and what effnas sets them to.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 256 << 20, 512 << 20
_tuned: list[bool] = []


def reuse_large_blocks() -> bool:
    """Let glibc reuse freed blocks up to 256 MiB instead of mapping fresh pages for each one.

    glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a new
    ``mmap`` and returns it on ``free``, so a tensor of that size (a float batch of 64 images at
    224 px is 38.5 MB; so are activations of large models) is page-faulted in again at every
    step: 0.63 vs 0.26 CPU ms per 224-px image to build and use a normalised batch here
    (docs/data.md). Raising the threshold (and the trim threshold above it) keeps those blocks in
    the heap, the effect PyTorch's CPU tuning guide gets from jemalloc or tcmalloc. Once per
    process, on Linux with glibc; ``EFFNAS_MALLOC=default`` leaves malloc alone. Returns whether it
    is in effect."""
    if _tuned:
        return _tuned[0]
    mode = os.environ.get("EFFNAS_MALLOC", "reuse")
    if mode not in ("reuse", "default"):
        raise UserError(f"EFFNAS_MALLOC={mode!r}: expected reuse (the default) or default (glibc's own thresholds)")
    ok = False
    if sys.platform == "linux" and mode == "reuse":
        try:
            libc = ctypes.CDLL("libc.so.6")
            ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        except (OSError, AttributeError):  # not glibc (e.g. musl): its malloc is left alone
            ok = False
    _tuned.append(ok)
    return ok
