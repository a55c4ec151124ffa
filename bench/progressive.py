"""Progressive learning against fixed-size training at equal wall time on CIFAR-10 (issue 28 item 4).

Per seed, two runs of one network on the same CIFAR-10 subset (the seed draws the subset, the
initialisation and the batch order; both runs of a seed share them):

1. **progressive**: ``--epochs`` epochs in ``--stages`` stages, image size ``--min-size`` -> ``--resolution``
   and regularisation ``[first, last]`` per stage (``train.progressive_*``, docs/training.md
   "Progressive learning"; the defaults follow EfficientNetV2-S's Table 6 where CIFAR allows: RandAugment
   5 -> 15, dropout 0.1 -> 0.3, no mixup (Table 6: 0 -> 0), 4 stages, the first at half the final size);
2. **fixed**: every epoch at ``--resolution`` with the progressive run's *last* regularisation throughout,
   for as many epochs as fit the progressive run's measured training time: ``round(T_p / t_R)`` (at least
   2), with ``T_p`` the progressive run's training seconds and ``t_R`` its training seconds per epoch in its
   last stage (at ``--resolution``, the fixed run's size). The fixed run is the same config in two identical
   stages at the final size and regularisation (``progressive_min_size = resolution``, ranges
   ``[last, last]``), so both go through the same code; its learning-rate schedule spans its own epochs.

Both evaluate at ``--resolution``. "Wall time" is the training time of the epochs (the optimiser steps,
batches and augmentation: ``train_seconds``); validation, loading and testing are reported beside it
(``wall_seconds``). One CSV row per run in docs/results/progressive/runs.csv (``--out``); a row already
there is skipped, and an interrupted run resumes from its run directory under ``--work`` (not
committed), so the bench is resumable at any point. Runs go seed-major. One torch thread.

    EFFNAS_CIFAR10_JPEG=/work/shared/data/cifar10-jpeg.tar.gz OMP_NUM_THREADS=1 python bench/progressive.py
    OMP_NUM_THREADS=1 python bench/progressive.py --seeds 0 1 2 3 4          # extend: more seeds
    OMP_NUM_THREADS=1 python bench/progressive.py --data-fraction 0.02 --epochs 2 --stages 2 \\
        --out /tmp/p/runs.csv --work /tmp/p/work                           # a tiny check that it runs

The page: ``python bench/results/progressive.py`` (docs/results/progressive/report.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effnas.experiments.config.schema import JobConfig  # noqa: E402
from effnas.experiments.train import loop  # noqa: E402

OUT = ROOT / "docs" / "results" / "progressive" / "runs.csv"
SPECS = ROOT / "experiments" / "config" / "presets" / "specs"
FIELDS = ("model", "mode", "seed", "epochs", "stages", "min_size", "resolution", "dropout", "randaug", "mixup",
          "recipe", "data_fraction", "val_fraction", "batch_size", "train_images", "macs", "params", "test_accuracy",
          "test_accuracy_tta", "val_accuracy", "train_seconds", "wall_seconds", "budget_seconds",
          "full_size_epoch_seconds", "schedule", "status", "threads", "machine", "cpus", "load_average", "torch")
#: What identifies a run of the bench (a row with these values is not trained again).
KEY = ("model", "mode", "seed", "epochs", "stages", "min_size", "resolution", "dropout", "randaug", "mixup", "recipe",
       "data_fraction")


def pair(values: list[float] | None) -> str:
    """A range as the CSV writes it: ``'0.1-0.3'``, or ``''`` when not scheduled."""
    return "" if not values else f"{values[0]:g}-{values[1]:g}"


def key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f"{float(row[k]):g}" if k == "data_fraction" else str(row[k]) for k in KEY)


def done(path: Path) -> dict[tuple[str, ...], dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open() as f:
        return {key(r): r for r in csv.DictReader(f)}


def job(args: argparse.Namespace, seed: int, mode: str, epochs: int, out: Path) -> JobConfig:
    """The run of ``mode`` (``progressive`` or ``fixed``): the fixed run holds the last stage's size and
    regularisation in every stage."""
    ranges = {k: tuple(v) for k, v in (("progressive_dropout", args.dropout), ("progressive_randaug", args.randaug),
                                        ("progressive_mixup", args.mixup)) if v}
    stages, min_size = args.stages, args.min_size
    if mode == "fixed":  # two identical stages: the trainer's progressive path, nothing progressing
        ranges = {k: (v[1], v[1]) for k, v in ranges.items()}
        stages, min_size = 2, args.resolution
    model = args.model if args.model.endswith(".json") else str(SPECS / f"{args.model}.json")
    return JobConfig(model=model, dataset=args.dataset, resolution=args.resolution, data_fraction=args.data_fraction,
                     val_fraction=args.val_fraction, epochs=epochs, batch_size=args.batch_size, recipe=args.recipe,
                     augment="randaugment" if args.randaug else "auto", threads=1, quiet=True, track="none",
                     seed=seed, out_dir=str(out), resume=True, progressive_stages=stages,
                     progressive_min_size=min_size, **ranges)


def epoch_seconds(run: Path, metrics: dict[str, Any], batch_size: int, stage: int) -> float:
    """Training seconds per epoch of ``run``'s epochs in ``stage`` (images over their images per second)."""
    images = metrics["train_size"] // batch_size * batch_size
    lines = [json.loads(x) for x in (run / "epochs.jsonl").read_text().splitlines()]
    times = [images / r["images_per_second"] for r in lines if r.get("stage") == stage]
    return sum(times) / len(times)


def run_one(args: argparse.Namespace, seed: int, mode: str, epochs: int, work: Path) -> tuple[dict[str, Any], Path]:
    out = work / f"{mode}-seed{seed}"
    t0 = time.perf_counter()
    m = loop.train(job(args, seed, mode, epochs, out))
    wall = time.perf_counter() - t0
    row = {"model": Path(args.model).stem, "mode": mode, "seed": seed, "epochs": epochs, "stages": args.stages,
           "min_size": args.min_size, "resolution": args.resolution, "dropout": pair(args.dropout),
           "randaug": pair(args.randaug), "mixup": pair(args.mixup), "recipe": args.recipe,
           "data_fraction": args.data_fraction, "val_fraction": args.val_fraction, "batch_size": args.batch_size,
           "train_images": m.get("train_size"), "macs": m.get("macs"), "params": m.get("params"),
           "test_accuracy": m.get("test_accuracy"), "test_accuracy_tta": m.get("test_accuracy_tta"),
           "val_accuracy": m.get("best_val_accuracy"), "train_seconds": round(float(m.get("train_seconds", "nan")), 2),
           "wall_seconds": round(float(m.get("seconds", wall)), 2), "budget_seconds": "",
           "full_size_epoch_seconds": "",
           "schedule": " ".join(f"{s['image_size']}px" for s in m.get("progressive") or []),
           "status": m.get("status"), "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "load_average": round(os.getloadavg()[0], 2), "torch": torch.__version__}
    return row, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cifar10_found_base", help="a spec in presets/specs/, or a spec .json path")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=16, help="the progressive run's epochs")
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=32, help="the last stage's and the fixed run's size, px")
    ap.add_argument("--min-size", type=int, default=16, help="the first stage's size, px")
    ap.add_argument("--dropout", type=float, nargs=2, default=[0.1, 0.3], metavar=("FIRST", "LAST"))
    ap.add_argument("--randaug", type=float, nargs=2, default=[5.0, 15.0], metavar=("FIRST", "LAST"),
                    help="RandAugment magnitudes (kornia's scale)")
    ap.add_argument("--no-randaug", dest="randaug", action="store_const", const=None,
                    help="no RandAugment: the recipe's augmentation")
    ap.add_argument("--mixup", type=float, nargs=2, default=None, metavar=("FIRST", "LAST"))
    ap.add_argument("--recipe", default="fast", choices=("default", "fast"))
    ap.add_argument("--data-fraction", type=float, default=0.2)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dataset", default="cifar10:" + os.environ.get("EFFNAS_CIFAR10_JPEG",
                                                                     "/work/shared/data/cifar10-jpeg.tar.gz"))
    ap.add_argument("--minutes", type=float, default=0, help="start no run after this many minutes (0: no limit)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-progressive",
                    help="run directories (resumable; not committed)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    have = done(args.out)
    t0 = time.perf_counter()

    def write(row: dict[str, Any]) -> None:
        new = not args.out.is_file()
        with args.out.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                w.writeheader()
            w.writerow(row)
        have[key(row)] = {k: str(v) for k, v in row.items()}
        print(f"seed {row['seed']} {row['mode']:11s} {row['epochs']:>3} epochs: test {row['test_accuracy']} "
              f"train {row['train_seconds']} s (budget {row['budget_seconds'] or '-'} s)", flush=True)

    for seed in args.seeds:
        probe = {"model": Path(args.model).stem, "seed": seed, "stages": args.stages, "min_size": args.min_size,
                 "resolution": args.resolution, "dropout": pair(args.dropout), "randaug": pair(args.randaug),
                 "mixup": pair(args.mixup), "recipe": args.recipe, "data_fraction": args.data_fraction}
        work = args.work / "-".join(f"{k}{v}" for k, v in probe.items() if k != "seed").replace("/", "_")
        if args.minutes and time.perf_counter() - t0 > 60 * args.minutes:
            print(f"stopped: {args.minutes} min reached; rerun to resume")
            return 0
        prog = have.get(key({**probe, "mode": "progressive", "epochs": args.epochs}))
        run = work / f"progressive-seed{seed}"
        if prog is None:
            row, run = run_one(args, seed, "progressive", args.epochs, work)
            if row["status"] != "completed":
                write(row)
                continue
            metrics = json.loads((run / "metrics.json").read_text())
            row["full_size_epoch_seconds"] = round(epoch_seconds(run, metrics, args.batch_size, args.stages - 1), 3)
            write(row)
            prog = {k: str(v) for k, v in row.items()}
        if prog["status"] != "completed":
            continue
        budget, per_epoch = float(prog["train_seconds"]), float(prog["full_size_epoch_seconds"])
        epochs = max(2, round(budget / per_epoch))
        if key({**probe, "mode": "fixed", "epochs": epochs}) in have:
            continue
        if args.minutes and time.perf_counter() - t0 > 60 * args.minutes:
            print(f"stopped: {args.minutes} min reached; rerun to resume")
            return 0
        row, _ = run_one(args, seed, "fixed", epochs, work)
        row.update(budget_seconds=budget, full_size_epoch_seconds=per_epoch)
        write(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
