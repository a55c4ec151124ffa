"""The accuracy predictor's learning curve (issue 27, item 3): its Kendall tau on held-out architectures against
the number of architectures it was trained on, on NAS-Bench-201.

    OMP_NUM_THREADS=1 python bench/predictor_curve.py       # a few minutes on one core
    python bench/results/predictor.py                       # the page docs/results/predictor.md

For each data set of the table, :func:`effnas.nas.strategies.predictor.learning_curve` trains the predictor
(:class:`~effnas.nas.strategies.predictor.MLPEnsemble`, the one ``pred-evolution`` refits during a search) on n
architectures' one-seed accuracies (what a search observes: the table's first seed; and, for reference, on the
mean of their other seeds) and ranks ``--test`` others against the mean of their other seeds (leave one out: the
run a search saw never counts in the truth it is scored against; every cell has at least two seeds),
``--repeats`` seeded splits per n. On the same held-out architectures and bootstrap resamples, each row compares
the predictor with a score that needs no training samples (paired): the parameter count (bigger is better) and
one training seed (the first seed's accuracy itself: how well one run of each architecture ranks them, the
ceiling of anything that learns from single runs). Writes docs/results/predictor/curve.csv and run.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effnas.nas.benchmarks import get_benchmark  # noqa: E402
from effnas.nas.strategies.predictor import learning_curve  # noqa: E402
from effnas.search_spaces.timing import machine  # noqa: E402

OUT = ROOT / "docs" / "results" / "predictor"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "ImageNet16-120"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[10, 20, 50, 100, 200, 500, 1000])
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows, seconds = [], {}
    for ds in args.datasets:
        t0 = time.perf_counter()
        table = get_benchmark(f"nasbench201:{ds}")
        archs = list(table.keys())
        runs = [table.record(a).accuracies for a in archs]
        # leave one out: the search's one run is the first seed, the truth the mean of the others (never itself)
        observed = np.array([r[0] for r in runs])
        truth = np.array([float(np.mean(r[1:])) for r in runs])
        params = np.array([table.record(a).params_m for a in archs])
        kw = {"sizes": args.sizes, "test": args.test, "repeats": args.repeats, "resamples": args.resamples,
              "seed": args.seed, "truth": truth}
        for label, target in (("predictor, one seed", observed), ("predictor, other seeds' mean", truth)):
            for baseline, name in ((params, "parameter count"), (observed, "one training seed")):
                for r in learning_curve(archs, target, dict(table.choices), baseline=baseline, **kw):
                    rows.append({"dataset": ds, "estimator": label, "baseline": name, **r})
        seconds[ds] = round(time.perf_counter() - t0, 1)
        print(f"{ds}: {seconds[ds]} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out / "curve.csv", index=False)
    (args.out / "run.json").write_text(json.dumps(
        {"sizes": args.sizes, "test": args.test, "repeats": args.repeats, "resamples": args.resamples,
         "seed": args.seed, "seconds": seconds, "machine": machine(1),
         "command": "OMP_NUM_THREADS=1 python bench/predictor_curve.py " + " ".join(argv or sys.argv[1:])},
        indent=1) + "\n")
    print(f"wrote {args.out}: python bench/results/predictor.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
