"""Trials-to-target of the search strategies on the surrogate objective (effnas.nas.estimators.surrogate).

For each seed s (landscape s, sampler seed s) and strategy, the number of trials until some
trial's reward ACC x (MACs/400M)^-0.07 reaches the target, on the mnasnet space at 224 px. The
target is the landscape's ``--quantile`` of random rewards (0.995: the top 0.5 %, which random
search needs about 200 trials to reach).
Prints the per-seed counts and the median per strategy, with machine and versions.

    PYTHONPATH=. python bench/search_strategies.py --seeds 10 --quantile 0.995 --max-trials 3000
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import optuna

from effnas.nas import Objective, get_space
from effnas.nas.estimators.surrogate import reward_quantile, trials_to_target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quantile", type=float, default=0.995)
    ap.add_argument("--max-trials", type=int, default=3000)
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--strategies", default="random,tpe,evolution,rl")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"optuna {optuna.__version__}; space {args.space}, target: reward quantile {args.quantile}, "
          f"T = 400M, w = -0.07")
    space, obj = get_space(args.space), Objective(target=400e6)
    targets = [reward_quantile(space, obj, args.quantile, landscape=s) for s in range(args.seeds)]
    print("# targets " + " ".join(f"{t:.4f}" for t in targets))
    for strategy in args.strategies.split(","):
        t0 = time.perf_counter()
        runs = [trials_to_target(space, obj, strategy, target_reward=targets[s], max_trials=args.max_trials,
                                 seed=s, landscape=s) for s in range(args.seeds)]
        counted = [r if r is not None else args.max_trials + 1 for r in runs]
        print(f"{strategy:<10} median {statistics.median(counted):>7.1f}  runs {runs}  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
