from __future__ import annotations

import os
from pathlib import Path

import pytest

from experiments.imagefolder import unpack

#: The real CIFAR-10 as JPEG files (see ../shared/data/README.md); unpacked once into the user's
#: cache directory (EFFNAS_CACHE, default ~/.cache/effnas), never into the repository.
CIFAR10_JPEG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(scope="session")
def cifar10_jpeg() -> Path:
    """The unpacked CIFAR-10 ImageFolder (train/ 50,000, test/ 10,000 JPEG files)."""
    archive = Path(os.environ.get("EFFNAS_CIFAR10_JPEG", CIFAR10_JPEG))
    if not archive.is_file():
        pytest.fail(f"the real CIFAR-10 archive is missing: expected {archive} (../shared/data/cifar10-jpeg.tar.gz "
                    f"from the project root, or set EFFNAS_CIFAR10_JPEG)")
    return unpack(archive)


@pytest.fixture(scope="session")
def cifar10_small(cifar10_jpeg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class-balanced subset of the real CIFAR-10: 100 training and 20 test images per class
    (symlinks into the unpacked set)."""
    root = tmp_path_factory.mktemp("cifar10-small")
    for split, n in (("train", 100), ("test", 20)):
        for cdir in sorted((cifar10_jpeg / split).iterdir()):
            dest = root / split / cdir.name
            dest.mkdir(parents=True)
            for f in sorted(cdir.iterdir())[:n]:
                (dest / f.name).symlink_to(f)
    return root
