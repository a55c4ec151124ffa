"""Atomic file writes shared by every package: a result file is either the old one or the
complete new one, never torn by a crash or a kill mid-write."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def tmp_path(path: str | Path) -> Path:
    """A temporary name beside ``path`` that keeps its suffix (so writers that infer the format
    from it, such as matplotlib's ``savefig``, still work): ``.name.PID.tmp.png``."""
    p = Path(path)
    return p.with_name(f".{p.stem}.{os.getpid()}.tmp{p.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` then rename ``tmp`` over ``path``; the temporary file is removed on error."""
    p = Path(path)
    tmp = tmp_path(p)
    try:
        write(tmp)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda t: t.write_text(text))


__all__ = ["atomic_text", "atomic_write", "tmp_path"]
