"""Where one training run's time goes (issue 26): each piece of a run outside its training steps, timed
in one process by wrapping the functions the trainer calls.

    OMP_NUM_THREADS=1 python bench/run_overhead.py                         # the demo's family run
    OMP_NUM_THREADS=1 python bench/run_overhead.py --cold                  # with an empty data cache
    OMP_NUM_THREADS=1 python bench/run_overhead.py --model efficientnet_b0 --resolution 32 --epochs 1

The run is the demo preset's (experiments/config/presets/demo.toml: shapes, 80 % of the pool, 10 %
validation, efficientnet_nano at its 16 px, 3 epochs, batch 64) unless flags say otherwise, with one
thread and no tracking (``--track`` to add it). The first run in a process also pays torch's own lazy
start-up (importing ``torch._dynamo`` on the first optimiser); ``--warm`` pays it before the timed run,
as every later run in the same process (a Ray worker) does. Rows are wall seconds; ``other`` is the
rest of the run outside the training epochs (run directory, metrics, checkpoints, tracker).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effnas.experiments.config.schema import JobConfig  # noqa: E402
from effnas.experiments.train import loop  # noqa: E402
from effnas.experiments.train.steps import setup as setup_mod  # noqa: E402
from effnas.search_spaces import cost as cost_mod  # noqa: E402

SECONDS: dict[str, float] = defaultdict(float)


def timed(owner: Any, attr: str, label: str) -> None:
    fn: Callable[..., Any] = getattr(owner, attr)

    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            SECONDS[label] += time.perf_counter() - t0
    setattr(owner, attr, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="efficientnet_nano")
    ap.add_argument("--dataset", default="shapes")
    ap.add_argument("--resolution", type=int, default=0, help="0: the model's own")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data-fraction", type=float, default=0.8)
    ap.add_argument("--track", default="none")
    ap.add_argument("--cold", action="store_true", help="an empty data cache ($EFFNAS_CACHE): generate the set")
    ap.add_argument("--warm", action="store_true", help="pay torch's lazy start-up before the timed run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cold:
        os.environ["EFFNAS_CACHE"] = tempfile.mkdtemp(prefix="effnas-cold-")
    if args.warm:
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    data = setup_mod.data_mod
    timed(data, "load_dataset", "load (or generate) the data set")
    timed(data, "split", "split train / validation / test")
    timed(data, "make_loader", "loaders (resize to the run's resolution)")
    timed(setup_mod, "build_model", "build the model")
    timed(cost_mod, "cost", "count MACs and parameters")
    timed(setup_mod, "optimizer_for", "optimiser (first in a process: torch imports _dynamo)")
    timed(loop, "evaluate_ranks", "evaluation (validation every epoch, test once)")
    timed(loop, "train_epoch", "training epochs")
    out = tempfile.mkdtemp(prefix="effnas-overhead-")
    job = JobConfig(model=args.model, dataset=args.dataset, resolution=args.resolution or None, epochs=args.epochs,
                    batch_size=args.batch_size, data_fraction=args.data_fraction, val_fraction=0.1,
                    optimizer="adamw", lr=0.004, weight_decay=0.01, warmup_epochs=0.3, augment="none",
                    threads=1, quiet=True, track=args.track, out_dir=out)
    t0 = time.perf_counter()
    m = loop.train(job)
    wall = time.perf_counter() - t0
    print(f"# {args.model} on {args.dataset} at {m['resolution']} px, {m['train_size']} training images, "
          f"{args.epochs} epochs, batch {args.batch_size}; load average {os.getloadavg()[0]:.2f}; "
          f"{'cold' if args.cold else 'stored'} data, {'warm' if args.warm else 'fresh'} process")
    print(f"{'piece':<56} {'seconds':>8}")
    train_s = SECONDS.pop("training epochs")
    for label, s in SECONDS.items():
        print(f"{label:<56} {s:>8.2f}")
    other = wall - train_s - sum(SECONDS.values())
    print(f"{'other (run directory, metrics, checkpoints, tracker)':<56} {other:>8.2f}")
    print(f"{'= fixed overhead (wall - training epochs)':<56} {wall - train_s:>8.2f}")
    print(f"{'training epochs':<56} {train_s:>8.2f}")
    print(f"{'wall':<56} {wall:>8.2f}")


if __name__ == "__main__":
    main()
