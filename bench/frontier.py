"""The accuracy-compute frontier on this machine (issue 26, item 3): test accuracy against training compute
for the CIFAR-10 study's searched base and an airbench-style reference net, the fast recipe against the
default one, on the whole CIFAR-10 training pool, 3 seeds.

    OMP_NUM_THREADS=1 python bench/frontier.py                          # the committed page's settings
    OMP_NUM_THREADS=1 python bench/frontier.py --nets airbench_quarter  # one net (a second process: the other)
    OMP_NUM_THREADS=1 python bench/frontier.py --epochs 1 2 4 8 --minutes 60   # a longer budget, in parts

Each point is one training run of E epochs (the schedule spans the whole run, so a point is what a
user gets by asking for E epochs, not an early checkpoint of a longer run), one thread, batch 128, 32 px,
5 % of the pool held out for validation and the 10,000 test images reported (plain and with TTA). Runs go
by epochs, smallest first, then seed, so a stopped bench leaves the cheap points complete. One CSV row
per run in docs/results/frontier/frontier.csv (the columns of bench/recipe_ablation.py, which trains
them); a row already there is skipped, so the bench resumes and a later session extends it.
The page: ``python bench/results/frontier.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe_ablation  # noqa: E402

OUT = ROOT / "docs" / "results" / "frontier" / "frontier.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(recipe_ablation.NETS), choices=recipe_ablation.NETS)
    ap.add_argument("--configs", nargs="+", default=["default", "fast"], choices=list(recipe_ablation.CONFIGS))
    ap.add_argument("--epochs", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--data-fraction", type=float, default=1.0)
    ap.add_argument("--minutes", type=float, default=0, help="start no run after this many minutes (0: no limit)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    for epochs in sorted(args.epochs):
        left = args.minutes - (time.perf_counter() - t0) / 60 if args.minutes else 0
        if args.minutes and left <= 0:
            print(f"stopped: {args.minutes} min reached; rerun to resume")
            return 0
        rc = recipe_ablation.main(["--nets", *args.nets, "--configs", *args.configs,
                                   "--seeds", *map(str, args.seeds), "--epochs", str(epochs),
                                   "--data-fraction", str(args.data_fraction), "--out", str(args.out),
                                   *(["--minutes", f"{left:.3f}"] if args.minutes else [])])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
