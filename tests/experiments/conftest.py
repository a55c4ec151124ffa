from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from experiments.imagefolder import unpack

#: The real CIFAR-10 as JPEG files (see ../shared/data/README.md); unpacked once into the user's
#: cache directory (EFFNAS_CACHE, default ~/.cache/effnas), never into the repository.
CIFAR10_JPEG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def _archive() -> Path:
    archive = Path(os.environ.get("EFFNAS_CIFAR10_JPEG", CIFAR10_JPEG))
    if not archive.is_file():
        pytest.fail(f"the real CIFAR-10 archive is missing: expected {archive} (../shared/data/cifar10-jpeg.tar.gz "
                    f"from the project root, or set EFFNAS_CIFAR10_JPEG)")
    return archive


@pytest.fixture(scope="session")
def cifar10_jpeg() -> Path:
    """The unpacked CIFAR-10 ImageFolder (train/ 50,000, test/ 10,000 JPEG files), unpacked once
    into the cache directory (about 20 s the first time)."""
    return unpack(_archive())


@pytest.fixture(scope="session")
def cifar10_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-balanced subset of the real CIFAR-10: the first 100 training and 20 test images
    of every class (by file name), extracted from the archive into a temporary directory."""
    root = tmp_path_factory.mktemp("cifar10-small")
    with tarfile.open(_archive()) as tar:
        by_class: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
        for m in tar.getmembers():
            parts = Path(m.name).parts  # cifar10-jpeg/<split>/<class>/<file>
            if m.isfile() and len(parts) == 4 and parts[1] in ("train", "test"):
                by_class.setdefault((parts[1], parts[2]), []).append(m)
        for (split, _), members in sorted(by_class.items()):
            for m in sorted(members, key=lambda m: m.name)[: 100 if split == "train" else 20]:
                tar.extract(m, root, filter="data")
    return root / "cifar10-jpeg"
