"""Fixtures of tests/nas: a few real CIFAR-10 images, read straight from the shared archive."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session")
def cifar_batch(cifar10_archive_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten real CIFAR-10 images, one per class (the archive's first of each), normalised, with labels."""
    archive = cifar10_archive_path
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
