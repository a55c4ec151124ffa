"""What each ingredient of ``train.recipe = "fast"`` buys (issue 26 item 1): at equal epochs on a fixed
CIFAR-10 subset, each network is trained with the default recipe, the fast recipe, and the fast recipe
minus one ingredient at a time (that key set back to the default recipe's value), seeds 0-2.

    OMP_NUM_THREADS=1 python bench/recipe_ablation.py                  # the committed table's settings
    OMP_NUM_THREADS=1 python bench/recipe_ablation.py --seeds 0 1 2 3 4  # extend: more seeds
    OMP_NUM_THREADS=1 python bench/recipe_ablation.py --minutes 30     # stop starting runs after 30 min

One CSV row per run in docs/results/recipe/ablation.csv; a row already there (same net, config, seed,
epochs, data fraction) is skipped, so the bench resumes where it stopped and a later session extends
it (more seeds; more epochs: ``--epochs 8`` writes new rows beside the 6-epoch ones, the page reads
each epoch budget as its own table). Runs go seed-major (every configuration of seed 0 first), so a
stopped bench leaves whole seeds. The page: ``python bench/results/recipe.py``.

The networks (experiments/config/presets/specs/): ``cifar10_found_base`` (the base the CIFAR-10
study's search found, docs/results/cifar10/short-budget) and ``airbench_quarter`` (an airbench-style conv net at a
quarter of airbench's widths, 16/64/64: stride-2 convolutions stand in for airbench's max-pools).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effnas.experiments.config.recipes import RECIPES  # noqa: E402
from effnas.experiments.config.schema import JobConfig  # noqa: E402
from effnas.experiments.train import loop  # noqa: E402

OUT = ROOT / "docs" / "results" / "recipe" / "ablation.csv"
SPECS = ROOT / "experiments" / "config" / "presets" / "specs"
NETS = ("cifar10_found_base", "airbench_quarter")
_D = RECIPES["default"]
#: Each configuration: the recipe and the keys set over it. ``fast - X``: X back to the default recipe's.
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {"recipe": "default"},
    "fast": {"recipe": "fast"},
    "fast - label smoothing": {"recipe": "fast", "label_smoothing": _D.label_smoothing},
    "fast - EMA": {"recipe": "fast", "ema": _D.ema},
    "fast - linear decay": {"recipe": "fast", "schedule": _D.schedule},
    "fast - flip_translate": {"recipe": "fast", "augment": "crop_flip"},  # the default's ``auto`` on CIFAR-10
    "fast - weight decay": {"recipe": "fast", "weight_decay": _D.weight_decay},
    "fast - lr rule": {"recipe": "fast", "lr": _D.base_lr("sgd"), "lr_batch": 256},
}
FIELDS = ("net", "config", "seed", "epochs", "data_fraction", "val_fraction", "batch_size", "train_images",
          "images", "macs", "params", "test_accuracy", "test_accuracy_tta", "val_accuracy", "train_seconds",
          "wall_seconds", "status", "overrides", "threads", "machine", "cpus", "load_average", "torch")


def key(row: dict[str, Any]) -> tuple[str, ...]:
    return (str(row["net"]), str(row["config"]), str(row["seed"]), str(row["epochs"]),
            f"{float(row['data_fraction']):g}")


def done(path: Path) -> set[tuple[str, ...]]:
    if not path.is_file():
        return set()
    with path.open() as f:
        return {key(r) for r in csv.DictReader(f)}


def run_one(net: str, config: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    overrides = CONFIGS[config]
    with tempfile.TemporaryDirectory(prefix="effnas-ablation-") as out:
        job = JobConfig(model=str(SPECS / f"{net}.json"), dataset=args.dataset, resolution=32,
                        data_fraction=args.data_fraction, val_fraction=args.val_fraction, epochs=args.epochs,
                        batch_size=args.batch_size, optimizer="sgd", threads=1, quiet=True, track="none",
                        seed=seed, out_dir=out, tta=True, **overrides)
        t0 = time.perf_counter()
        m = loop.train(job)
        wall = time.perf_counter() - t0
    return {"net": net, "config": config, "seed": seed, "epochs": args.epochs, "data_fraction": args.data_fraction,
            "val_fraction": args.val_fraction, "batch_size": args.batch_size, "train_images": m.get("train_size"),
            "images": m.get("train_size", 0) * args.epochs, "macs": m.get("macs"), "params": m.get("params"),
            "test_accuracy": m.get("test_accuracy"), "test_accuracy_tta": m.get("test_accuracy_tta"),
            "val_accuracy": m.get("best_val_accuracy", m.get("val_accuracy")),
            "train_seconds": round(float(m.get("train_seconds", float("nan"))), 2), "wall_seconds": round(wall, 2),
            "status": m.get("status"), "overrides": " ".join(f"{k}={v}" for k, v in overrides.items()),
            "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--data-fraction", type=float, default=0.1)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dataset", default="cifar10:" + os.environ.get("EFFNAS_CIFAR10_JPEG",
                                                                     "/work/shared/data/cifar10-jpeg.tar.gz"))
    ap.add_argument("--minutes", type=float, default=0, help="start no run after this many minutes (0: no limit)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    have = done(args.out)
    t0 = time.perf_counter()
    for seed in args.seeds:
        for config in args.configs:
            for net in args.nets:
                probe = {"net": net, "config": config, "seed": seed, "epochs": args.epochs,
                         "data_fraction": args.data_fraction}
                if key(probe) in have:
                    continue
                if args.minutes and time.perf_counter() - t0 > 60 * args.minutes:
                    print(f"stopped: {args.minutes} min reached; rerun to resume")
                    return 0
                row = run_one(net, config, seed, args)
                new = not args.out.is_file()
                with args.out.open("a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=FIELDS)
                    if new:
                        w.writeheader()
                    w.writerow(row)
                have.add(key(row))
                print(f"{net:20s} {config:24s} seed {seed}: test {row['test_accuracy']} tta {row['test_accuracy_tta']}"
                      f" train {row['train_seconds']} s wall {row['wall_seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
