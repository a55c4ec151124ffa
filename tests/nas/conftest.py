"""Fixtures of tests/nas: a few real CIFAR-10 images, read straight from the shared archive."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

#: The real CIFAR-10 as JPEG files (../shared/data/README.md).
CIFAR10_JPEG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.fixture(scope="session")
def cifar_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Ten real CIFAR-10 images, one per class (the archive's first of each), normalised, with labels."""
    archive = Path(os.environ.get("EFFNAS_CIFAR10_JPEG", CIFAR10_JPEG))
    if not archive.is_file():
        pytest.fail(f"the real CIFAR-10 archive is missing: expected {archive} (../shared/data/cifar10-jpeg.tar.gz "
                    f"from the project root, or set EFFNAS_CIFAR10_JPEG)")
    found: dict[str, np.ndarray] = {}
    with tarfile.open(archive) as tar:
        for m in tar:  # stops reading once every class has an image
            parts = Path(m.name).parts
            if m.isfile() and len(parts) == 4 and parts[2] not in found:
                f = tar.extractfile(m)
                assert f is not None
                found[parts[2]] = np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"), dtype=np.float32) / 255
                if len(found) == 10:
                    break
    classes = sorted(found)
    x = torch.from_numpy(np.stack([found[c] for c in classes])).permute(0, 3, 1, 2)
    x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
    return x.contiguous(), torch.arange(10)
