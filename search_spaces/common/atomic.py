"""Atomic file writes shared by every package: a result file is either the old one or the
complete new one, never torn by a crash, a kill or a power cut mid-write.

The one recipe (:func:`atomic_write`): write a temporary file beside the target, ``fsync`` it,
``os.replace`` it over the target, then ``fsync`` the directory so that the rename itself is on
disk. Every result file of effnas (run directories, tables, specs, plots, reports) goes through it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def tmp_path(path: str | Path) -> Path:
    """A temporary name beside ``path``, unique per process and thread, that keeps its suffix (so
    writers that infer the format from it, such as matplotlib's ``savefig``, still work):
    ``.name.PID-THREAD.tmp.png``."""
    p = Path(path)
    return p.with_name(f".{p.stem}.{os.getpid()}-{threading.get_ident()}.tmp{p.suffix}")


def fsync_file(path: Path) -> None:
    """Flush a written file's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: str | Path) -> None:
    """Flush a directory's entries (a rename in it) to disk; a no-op where directories cannot be
    opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory: the rename is still atomic
        pass
    finally:
        os.close(fd)


#: errno values of a write that failed for want of space (a full disk, a quota).
FULL = (errno.ENOSPC, errno.EDQUOT)
#: What torch.save's writer raises (a RuntimeError, not an OSError) when the disk fills up.
TORCH_WRITE_FAILED = re.compile(r"file write failed|unexpected pos \d+|No space left on device", re.I)


class DiskFull(OSError):
    """A write to ``filename`` failed for want of space; shown as ``No space left on device: PATH``."""

    def __str__(self) -> str:
        return f"No space left on device: {self.filename}"


@contextmanager
def disk_full(path: str | Path) -> Iterator[None]:
    """Writes to ``path`` inside: a full disk (an ``OSError`` ENOSPC/EDQUOT, or torch.save's
    ``RuntimeError``) becomes :class:`DiskFull` naming ``path``; other errors pass unchanged."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as e:
        if e.errno not in FULL:
            raise
        raise DiskFull(e.errno, os.strerror(e.errno), str(path)) from e
    except RuntimeError as e:
        if not TORCH_WRITE_FAILED.search(str(e)):
            raise
        raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)``, fsync ``tmp``, rename it over ``path`` and fsync the directory; the
    temporary file is removed on error. The directory must exist. A full disk raises
    :class:`DiskFull` naming ``path``."""
    p = Path(path)
    tmp = tmp_path(p)
    try:
        with disk_full(p):
            write(tmp)
            fsync_file(tmp)
            os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(p.parent)


def atomic_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda t: t.write_text(text))


def atomic_json(path: str | Path, data: Any, **dumps: Any) -> None:
    """Write ``json.dumps(data, **dumps)`` and a newline to ``path`` atomically."""
    atomic_text(path, json.dumps(data, **dumps) + "\n")


__all__ = ["FULL", "DiskFull", "atomic_json", "atomic_text", "atomic_write", "disk_full", "fsync_dir", "fsync_file",
           "tmp_path"]
