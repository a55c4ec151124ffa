from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from effnas.experiments.data.files.imagefolder import unpack


@pytest.fixture(scope="session")
def cifar10_jpeg(cifar10_archive_path: Path) -> Path:
    """The unpacked CIFAR-10 ImageFolder (train/ 50,000, test/ 10,000 JPEG files), unpacked once
    into the cache directory (about 20 s the first time)."""
    return unpack(cifar10_archive_path)


@pytest.fixture(scope="session")
def cifar10_small(tmp_path_factory: pytest.TempPathFactory, cifar10_archive_path: Path) -> Path:
    """A class-balanced subset of the real CIFAR-10: the first 100 training and 20 test images
    of every class (by file name), extracted from the archive into a temporary directory."""
    root = tmp_path_factory.mktemp("cifar10-small")
    with tarfile.open(cifar10_archive_path) as tar:
        by_class: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
        for m in tar.getmembers():
            parts = Path(m.name).parts  # cifar10-jpeg/<split>/<class>/<file>
            if m.isfile() and len(parts) == 4 and parts[1] in ("train", "test"):
                by_class.setdefault((parts[1], parts[2]), []).append(m)
        for (split, _), members in sorted(by_class.items()):
            for m in sorted(members, key=lambda m: m.name)[: 100 if split == "train" else 20]:
                tar.extract(m, root, filter="data")
    return root / "cifar10-jpeg"


def _hold_lock(target: str, *, file: bool = False) -> subprocess.Popen[str]:
    """Another process that takes the effnas lock of directory (or lock ``file``) ``target``
    and keeps it for 60 s; returned once it holds it (the caller kills it)."""
    arg = f"file={target!r}" if file else repr(target)
    code = (f"import time; from effnas.experiments.train.guard import Lock; Lock({arg}).acquire(); "
            "print('held', flush=True); "
            "time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


@pytest.fixture()
def hold_lock() -> Callable[..., subprocess.Popen[str]]:
    """:func:`_hold_lock`: a second writer for the lock tests."""
    return _hold_lock

