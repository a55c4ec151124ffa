"""Strategy overhead on NAS-Bench-201: trials per second when a trial is a table lookup.

For each strategy, one run of N trials (no budget) on nasbench201:cifar10 through the search
driver (in-memory Optuna study, the strategy's sampler, the lookup trainer); prints trials per
second for each N, with machine and versions. TPE refits its Parzen estimators on every finished
trial, so its rate falls as N grows; the others stay nearly flat.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/nb201_overhead.py --trials 100,300,1000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import optuna

from effnas.nas.bench_search import Protocol, run_once


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", default="100,300,1000")
    ap.add_argument("--strategies", default="random,tpe,evolution,rl,nsga2")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, "
          f"python {platform.python_version()}, optuna {optuna.__version__}; nasbench201:cifar10, trials/s")
    sizes = [int(n) for n in args.trials.split(",")]
    print("strategy   " + "".join(f"{n:>10}" for n in sizes))
    for strategy in args.strategies.split(","):
        rates = []
        for n in sizes:
            protocol = Protocol("nasbench201:cifar10", 1e12, max_trials=n)
            t0 = time.perf_counter()
            r = run_once(protocol, strategy, run=0, seed=0)
            rates.append(len(r.seconds) / (time.perf_counter() - t0))
        print(f"{strategy:<11}" + "".join(f"{x:>10.0f}" for x in rates), flush=True)


if __name__ == "__main__":
    main()
