"""Images per second of the streaming ImageFolder loader, per resolution, transform and worker count.

    python bench/data_throughput.py                      # the real CIFAR-10 JPEGs + generated ImageNet-like JPEGs
    python bench/data_throughput.py --batches 20 --workers 0,1,2
    python bench/data_throughput.py --only imagenet --workers 0,1,2 --batches 15   # the 224-px rows only

Two folders, measured in one run:

* ``cifar10``: the real CIFAR-10 as 32x32 JPEG files (``../shared/data/cifar10-jpeg.tar.gz``,
  unpacked once into ``$EFFNAS_CACHE`` or ``~/.cache/effnas``), small-image geometry: at 32 px
  pad-crop + flip, at 224 px the same after an upsampling resize;
* ``imagenet-like``: ``--images`` generated 500x375 JPEG files at quality 90 (the typical
  ImageNet size) in a temporary directory, the Inception random-resized crop + flip to 224 px
  (and the evaluation centre crop), with and without per-image AutoAugment; ``imagenet-like
  cached``: the training transform reading the same images from the decoded cache
  (``data.path = memory``: decoded once, no decode per image).

For every (folder, transform, resolution, workers) the loader's ``epoch()`` is iterated for
``--batches`` batches after one warm-up batch (worker start-up excluded); throughput is the
images of the timed batches over their wall time. The reference is the single-thread raw decode
of the same files in the main process (read + full-size decode to RGB, no crop; the loader decodes
a JPEG at 1/2, 1/4 or 1/8 of its size when the crop keeps the resolution, which a 224-px crop of
a 500x375 file never does); ``x decode`` is the
row's rate over that rate. ``CPU ms/img`` is the CPU time of the main process and its workers
(user + system, counted once the workers have exited) per image: the cost of the pipeline,
robust to other load on a shared machine, where the wall-clock rates are not; ``decode/CPU`` is
the raw decode's CPU time per image over the loader's (1.0: the loader costs only the decode);
``free cores`` is what that predicts for the rate on idle cores, ``max(1, workers, threads) x
decode/CPU`` x decode (each worker or thread a core of its own; the main process's share, the normalisation, counted
in the CPU time). ``--threads 2``: rows ``2t`` decode in two threads of the main process
(``data.loader_threads``). ``--only cifar10|imagenet`` measures one folder.
The header records machine, versions and load average; numbers are comparable within one run. Results: ``docs/data.md``.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effnas.experiments.data import datasets as data  # noqa: E402
from effnas.experiments.data.files.imagefolder import FileSplit, decode, unpack  # noqa: E402
from effnas.experiments.data.files.streamloader import StreamLoader  # noqa: E402
from effnas.experiments.data.files.transforms import ImageTransform  # noqa: E402

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def generate(root: Path, n: int, *, classes: int = 10, size: tuple[int, int] = (500, 375), quality: int = 90) -> None:
    """``n`` natural-looking JPEG files (smooth colour fields, edges and noise) in ``classes`` folders."""
    from PIL import Image, ImageFilter  # lazy: Pillow only for the synthetic images

    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        small = rng.integers(0, 256, (h // 25, w // 25, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.DETAIL)
        arr = np.asarray(im).astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
        d = root / "train" / f"c{i % classes}"
        d.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
        (d / f"{i:05d}.JPEG").write_bytes(buf.getvalue())
    (root / "val").mkdir(exist_ok=True)
    for c in range(classes):
        (root / "val" / f"c{c}").mkdir(exist_ok=True)
        os.link(next((root / "train" / f"c{c}").iterdir()), root / "val" / f"c{c}" / "0.JPEG")


def decode_rate(split: FileSplit, n: int) -> tuple[float, float]:
    """Raw decode (read + decode to RGB) of the first ``n`` files, main process, one thread:
    (images/s, CPU ms per image)."""
    decode(split.path(0))
    n = min(n, len(split))
    t0, cpu0 = time.perf_counter(), _cpu()
    for i in range(n):
        decode(split.path(i))
    return n / (time.perf_counter() - t0), (_cpu() - cpu0) * 1e3 / n


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def loader_rate(split: FileSplit, tf: ImageTransform, *, workers: int, batch: int, batches: int,
                threads: int = 0) -> tuple[float, float]:
    """(images/s over the timed batches, CPU ms per image of all processes incl. worker start-up).

    The CPU time counts the workers once they have exited (``del`` of the loader joins them), so
    it is robust to other load on the machine, unlike the wall-clock rate."""
    gc.collect()
    cpu0 = _cpu()
    loader = StreamLoader(split, transform=tf, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=batch, shuffle=True,
                          drop_last=True, workers=workers, threads=threads)
    batches = min(batches, len(loader) - 1)
    it = loader.epoch(1)
    next(it)  # warm-up: worker start-up and the first batch
    t0 = time.perf_counter()
    seen = 0
    for _ in range(batches):
        x, _ = next(it)
        seen += len(x)
    rate = seen / (time.perf_counter() - t0)
    del it, loader
    gc.collect()
    return rate, (_cpu() - cpu0) * 1e3 / (seen + batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archive", default=str(ARCHIVE), help="the CIFAR-10 JPEG archive")
    ap.add_argument("--images", type=int, default=1000, help="generated ImageNet-like files")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=12, help="timed batches per row")
    ap.add_argument("--workers", default="0,2", help="comma-separated worker counts")
    ap.add_argument("--threads", default="", help="comma-separated loader-thread counts (data.loader_threads, "
                    "no worker processes), measured after the worker counts; rows marked 2t etc.")
    ap.add_argument("--only", choices=("cifar10", "imagenet"), help="measure one folder (default: both)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    workers = [(int(w), 0) for w in args.workers.split(",") if w] + [(0, int(t)) for t in args.threads.split(",") if t]
    print(f"# {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}; batch {args.batch_size}, {args.batches} timed batches per row")

    rows: list[tuple[str, ImageTransform, FileSplit, tuple[float, float]]] = []
    c_rate = (float("nan"), float("nan"))
    if args.only != "imagenet":
        cifar = data.load_dataset(f"cifar10:{unpack(args.archive)}", path="stream")
        assert isinstance(cifar.pool, FileSplit)
        c_rate = decode_rate(cifar.pool, 3000)
        for res in (32, 224):
            rows.append(("cifar10 train", data.image_transform(cifar, resolution=res, train=True), cifar.pool,
                         c_rate))
    with tempfile.TemporaryDirectory() as tmp:
        i_rate = (float("nan"), float("nan"))
        if args.only != "cifar10":
            generate(Path(tmp), args.images)
            inet = data.load_dataset(f"imagefolder:{tmp}", path="stream")
            assert isinstance(inet.pool, FileSplit) and inet.geometry == "inception"
            i_rate = decode_rate(inet.pool, 300)
            for policy, train in (("auto", True), ("autoaugment", True), ("none", False)):
                tf = data.image_transform(inet, resolution=224, train=train, policy=policy)
                rows.append((f"imagenet-like {'train' if train else 'eval'}", tf, inet.pool, i_rate))
            os.environ["EFFNAS_CACHE"] = str(Path(tmp) / "cache")  # the decoded cache, removed with the folder
            t0, cpu0 = time.perf_counter(), _cpu()
            cached = data.load_dataset(f"imagefolder:{tmp}", path="memory")
            print(f"decoded cache of the imagenet-like folder: built in {time.perf_counter() - t0:.1f} s "
                  f"({(_cpu() - cpu0) * 1e3 / (len(cached.pool) + len(cached.test)):.3f} CPU ms/img incl. the survey)")
            assert isinstance(cached.pool, FileSplit) and cached.pool.pixels is not None
            tf = data.image_transform(cached, resolution=224, train=True)
            rows.append(("imagenet-like cached", tf, cached.pool, i_rate))
        print(f"raw decode, one thread: cifar10 32x32 {c_rate[0]:,.0f} img/s ({c_rate[1]:.3f} CPU ms/img); "
              f"imagenet-like 500x375 q90 {i_rate[0]:,.0f} img/s ({i_rate[1]:.3f} CPU ms/img)")
        print(f"{'folder':<20} {'transform':<36} {'workers':>7} {'img/s':>7} {'x decode':>8} {'CPU ms/img':>10} "
              f"{'decode/CPU':>10} {'free cores':>10}")
        for name, tf, split, ref in rows:
            for w, t in workers:
                r, cpu = loader_rate(split, tf, workers=w, threads=t, batch=args.batch_size, batches=args.batches)
                label = f"{t}t" if t else str(w)
                print(f"{name:<20} {tf.describe():<36} {label:>7} {r:>7,.0f} {r / ref[0]:>8.2f} {cpu:>10.3f} "
                      f"{ref[1] / cpu:>10.2f} {max(1, w, t) * ref[1] / cpu:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
