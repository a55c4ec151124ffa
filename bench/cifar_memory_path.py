"""The real CIFAR-10 JPEGs on the memory path (decoded cache) or the streaming path: load time and loader cost.

    EFFNAS_CACHE=/tmp/c python bench/cifar_memory_path.py memory   # first run: decodes into the cache
    EFFNAS_CACHE=/tmp/c python bench/cifar_memory_path.py memory   # later runs: map the cache, no decode
    python bench/cifar_memory_path.py stream

Prints the wall and CPU time of ``load_dataset`` (the cache's build or reuse), the rate and CPU
ms per image of 60 training batches of 128 at 32 px in the main process, and the peak RSS.
Results: ``docs/data.md``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effnas.experiments.data import datasets as data  # noqa: E402
from effnas.experiments.data.files.imagefolder import unpack  # noqa: E402

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "memory"
    torch.set_num_threads(1)
    root = unpack(ARCHIVE, Path.home() / ".cache" / "effnas")  # the unpacked folder stays in the user's cache
    t0, c0 = time.perf_counter(), time.process_time()
    ds = data.load_dataset(f"cifar10:{root}", path=path)
    print(f"{path} load: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU; pool "
          f"{type(ds.pool).__name__} {len(ds.pool)}, test {len(ds.test)}, load average {os.getloadavg()[0]:.1f}")
    tr, _, _ = data.split(ds, seed=0)
    loader = data.make_loader(ds, tr, resolution=32, batch_size=128, train=True, seed=0, workers=0)
    it = loader.epoch(0)
    next(it)
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for _ in range(60):
        n += len(next(it)[1])
    print(f"loader {data.describe(loader, loader)['path']} @32: {n / (time.perf_counter() - t0):,.0f} img/s wall, "
          f"{(time.process_time() - c0) * 1e3 / n:.3f} CPU ms/img; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
