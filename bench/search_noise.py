"""The seed-to-seed noise of a search's candidates, epoch by epoch: the number behind ``search.noise_floor``.

Draws ``--candidates`` random candidates of the config's search space (a fixed draw, ``--draw``),
trains each with ``--seeds`` training seeds exactly as the search trains a candidate (the resolved
``[search.train]`` recipe, the search's trainer), records every epoch's validation accuracy and
prints, per epoch, the pooled seed-to-seed standard deviation
(:func:`effnas.search_spaces.common.stats.noise_floor`, the floor the pruner uses), the candidates' mean
accuracy and the chance level. Writes every run to ``--out`` (CSV). Machine and versions first.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/search_noise.py experiments/config/presets/cifar10-cpu.toml \\
        --candidates 4 --seeds 3 --out docs/results/search_noise/cifar10.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch

from effnas.experiments.config.schema import load_config
from effnas.experiments.pipeline import plan, stages
from effnas.nas.trial import candidate_config
from effnas.search_spaces.common.stats import interval, noise_floor


def record(seen: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
    """An ``on_epoch`` that keeps every epoch's record and never stops the run."""
    def on_epoch(r: dict[str, Any]) -> bool:
        seen.append(r)
        return False

    return on_epoch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", help="a preset name or TOML file (its [search] and [search.train] are used)")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--draw", type=int, default=0, help="seeds the draw of candidates")
    ap.add_argument("--set", action="append", default=[], help="section.key=value overrides")
    ap.add_argument("--out", required=True, help="CSV of every run's per-epoch accuracy")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config(args.config, overrides=args.set)
    sp = plan.resolve_search(cfg, Path(args.out).parent / "unused")
    sc, fn = sp.settings, stages.trainer(cfg, sp.trainer)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, torch {torch.__version__}, threads {cfg.train.threads}; config "
          f"{args.config} {' '.join(args.set)}; space {sc.space.name}, dataset {sc.dataset}, trainer {sp.trainer}, "
          f"epochs {sc.train.get('epochs')}, data_fraction {sc.train.get('data_fraction')}; chance {sc.chance:.3f}")
    rng = random.Random(args.draw)
    dists = sc.space.distributions()
    rows: list[dict[str, Any]] = []
    for c in range(args.candidates):
        params = {n: d.choices[rng.randrange(len(d.choices))] for n, d in dists.items()}
        for seed in range(args.seeds):
            seen: list[dict[str, Any]] = []
            t0 = time.perf_counter()
            m = fn({**candidate_config(sc, params, trial=c), "seed": seed}, on_epoch=record(seen))
            for r in seen:
                rows.append({"candidate": c, "seed": seed, "epoch": r["epoch"], "val_accuracy": r["val_accuracy"],
                             "status": m.get("status"), "seconds": round(time.perf_counter() - t0, 1)})
            print(f"candidate {c} seed {seed}: " + " ".join(f"{r['val_accuracy']:.4f}" for r in seen)
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for epoch in sorted({r["epoch"] for r in rows}):
        groups = [[r["val_accuracy"] for r in rows if r["epoch"] == epoch and r["candidate"] == c]
                  for c in range(args.candidates)]
        floor = noise_floor(groups)
        means = [statistics.fmean(g) for g in groups]
        print(f"epoch {epoch}: noise floor sd {floor.sd if floor else float('nan'):.4f} "
              f"({floor.df if floor else 0} df, {args.candidates} candidates x {args.seeds} seeds); candidates' "
              f"means {' '.join(f'{m:.4f}' for m in means)}; all runs {interval(sum(groups, [])).text()}")


if __name__ == "__main__":
    main()
