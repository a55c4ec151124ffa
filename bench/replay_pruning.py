"""Which trials of a finished search each pruning rule would have stopped, replayed on its recorded rewards.

Reads every trial's per-epoch rewards (from the study, ``--storage URL --study NAME``, which it also
writes to ``--csv``; or from that CSV alone) and its cost factor, then replays the trials in order:
Optuna's MedianPruner (5 start-up trials: below the median of the completed trials' rewards at that
epoch) and effnas's :func:`effnas.nas.pruning.decide` at ``--noise-floor`` (default: the search's
default). A stopped trial stops counting as completed, as in a search; no trial is stopped after its
last epoch (effnas.nas.trial). The replay keeps the trials the search sampled: a pruned search's
sampler would have seen other results afterwards.

    PYTHONPATH=. python bench/replay_pruning.py --storage sqlite:///runs/s/study.db --study search \\
        --csv docs/results/search_noise/cifar10_search/epochs.csv --classes 10
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import optuna

from effnas.nas.pruning import DEFAULT_NOISE_FLOOR, PRUNE, known_floor
from effnas.nas.pruning import decide as noise_floor_rule


def export(storage: str, study: str, path: Path) -> None:
    """Each completed or pruned trial's rewards per epoch, with its cost factor (reward / accuracy)."""
    s = optuna.load_study(study_name=study, storage=storage)
    rows = []
    for t in s.trials:
        a = t.user_attrs
        if "reward" not in a or not a.get("accuracy"):
            continue
        for epoch, value in sorted(t.intermediate_values.items()):
            rows.append({"trial": t.number, "epoch": epoch, "reward": value, "factor": a["reward"] / a["accuracy"],
                         "state": t.state.name})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def median_rule(value: float, completed: list[float]) -> bool:
    """Optuna's MedianPruner(n_startup_trials=5, n_warmup_steps=0)."""
    return len(completed) >= 5 and value < statistics.median(completed)


def replay(path: Path, *, chance: float, floor: float) -> dict[str, list[int]]:
    rows = list(csv.DictReader(open(path)))
    trials = sorted({int(r["trial"]) for r in rows})
    curve = {n: {int(r["epoch"]): float(r["reward"]) for r in rows if int(r["trial"]) == n} for n in trials}
    factor = {int(r["trial"]): float(r["factor"]) for r in rows}
    last = max(int(r["epoch"]) for r in rows)
    out: dict[str, list[int]] = {}
    for name in ("median", "noise floor"):
        done: list[int] = []
        stopped: list[int] = []
        for n in trials:
            f = factor[n]
            for epoch in (e for e in sorted(curve[n]) if e < last):  # never after the last epoch
                prev = [curve[m][epoch] for m in done if epoch in curve[m]]
                value = curve[n][epoch]
                if (median_rule(value, prev) if name == "median" else
                        noise_floor_rule(value, prev, chance=chance * f, floor=known_floor(floor * f)) == PRUNE):
                    stopped.append(n)
                    break
            else:
                done.append(n)
        out[name] = stopped
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", help="the study's storage URL (exports it to --csv first)")
    ap.add_argument("--study", default="search")
    ap.add_argument("--csv", required=True, help="per-epoch rewards (written from --storage, else read)")
    ap.add_argument("--classes", type=int, required=True, help="the data set's classes (chance = 1 / classes)")
    ap.add_argument("--noise-floor", type=float, default=DEFAULT_NOISE_FLOOR)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.storage:
        export(args.storage, args.study, Path(args.csv))
    result = replay(Path(args.csv), chance=1 / args.classes, floor=args.noise_floor)
    n = len({r["trial"] for r in csv.DictReader(open(args.csv))})
    for name, stopped in result.items():
        print(f"{name} rule (floor {args.noise_floor if name != 'median' else 0}): stops {len(stopped)} of {n} "
              f"trials: {stopped}")


if __name__ == "__main__":
    main()
