"""Small sets at memory speed (issue 26): the trainer against a bare torch loop, and a run's fixed cost.

    OMP_NUM_THREADS=1 python bench/memory_speed.py                       # B0 and MobileNetV2-0.35 at 32 px
    OMP_NUM_THREADS=1 python bench/memory_speed.py --models tiny --dataset digits --epochs 2

For each model, in one process and one thread:

* **trainer**: :func:`effnas.experiments.train.loop.train` on an in-memory set (``--dataset``, default the
  demo's ``shapes``) at ``--resolution``: its training images per second (the epochs' own clock: data
  batches, augmentation, forward, backward, step, EMA) and its **fixed overhead**, the run's wall time
  minus its training time (loading and splitting the set, building and costing the model, validation and
  test evaluation, start-up);
* **bare loop**: forward, label-smoothed cross-entropy, backward and a Nesterov SGD step on one batch
  already in memory (channels_last, as the trainer), the same model and batch, timed before and after the
  trainer run (the mean of both, so that a change in machine load hits both sides alike).

Prints the ratio trainer / bare (target >= 0.9) and the fixed overhead (target <= 2 s) beside the
targets; both numbers come from the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import effnas.search_spaces as ss  # noqa: E402
from effnas.experiments.config.schema import JobConfig  # noqa: E402
from effnas.experiments.train.loop import train  # noqa: E402

DEFAULT_MODELS = "efficientnet_b0,experiments/config/presets/specs/mobilenet_v2_0.35.json"


def bare_images_per_second(model_ref: str, *, resolution: int, batch_size: int, steps: int, seed: int = 0) -> float:
    """Images per second of forward + backward + SGD step on one in-memory batch (median step time)."""
    torch.manual_seed(seed)
    spec = dataclasses.replace(ss.load_spec(model_ref, num_classes=10), resolution=resolution)
    model = ss.build(spec).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch_size, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
        opt.step()
        if i:  # the first step allocates
            times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated names or spec paths")
    ap.add_argument("--dataset", default="shapes", help="an in-memory set (default: the demo's)")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8, help="timed steps of the bare loop, before and after")
    ap.add_argument("--recipe", default="default")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# machine: {platform.machine()}, {os.cpu_count()} logical cores; torch {torch.__version__}; 1 thread; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# dataset {args.dataset} at {args.resolution} px, batch {args.batch_size}, {args.epochs} epoch(s), "
          f"recipe {args.recipe}")
    print(f"{'model':<40} {'trainer img/s':>13} {'bare img/s':>10} {'ratio':>6} {'(>=0.9)':>7} "
          f"{'overhead s':>10} {'(<=2)':>5} {'wall s':>7}")
    for ref in args.models.split(","):
        common = {"resolution": args.resolution, "batch_size": args.batch_size, "steps": args.steps}
        before = bare_images_per_second(ref, **common)
        job = JobConfig(model=ref, dataset=args.dataset, resolution=args.resolution, epochs=args.epochs,
                        batch_size=args.batch_size, threads=1, quiet=True, track="none", recipe=args.recipe)
        t0 = time.perf_counter()
        m = train(job)
        wall = time.perf_counter() - t0
        after = bare_images_per_second(ref, **common)
        bare = (before + after) / 2
        ratio = m["images_per_second"] / bare
        overhead = wall - m["train_seconds"]
        print(f"{Path(ref).stem:<40} {m['images_per_second']:>13.1f} {bare:>10.1f} {ratio:>6.2f} "
              f"{'yes' if ratio >= 0.9 else 'NO':>7} {overhead:>10.2f} {'yes' if overhead <= 2 else 'NO':>5} "
              f"{wall:>7.1f}")


if __name__ == "__main__":
    main()
