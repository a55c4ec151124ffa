"""Choose the new CIFAR-10 study's epoch budget by measurement (issue 26, item 4).

    OMP_NUM_THREADS=1 python bench/cifar10_budget.py [--out runs/cifar10-budget] [--start 4] [--max 32]

Trains the study's found base (phi 0) and its phi 2 compound member (the paper's alpha, beta, gamma =
1.2, 1.1, 1.15: about 4x the MACs) with the fast recipe on the whole training pool (5 % held out for
validation, the 10,000 test images reported) at E = --start epochs, then 2E, 4E, ... (each a family run
in ``OUT/e<E>``, ``--seeds`` seeds, ``--workers`` one-thread workers, resumable). After each doubling it
compares every member at 2E with the same member at E (``effnas.scaling.analysis.compare_families``:
the difference of test accuracy with its 95 % interval, paired by seed) and stops at the first E at which
both members gain less than ``--threshold`` points (1.5) from twice the epochs: that E is the budget.
``OUT/budget.json`` holds every step's gains, times and the decision; run it again after a kill and the
finished runs are kept (``--resume``). ``bench/results/cifar10_budget.py`` writes the page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from importlib.metadata import version  # noqa: E402

from effnas.scaling.analysis.compare import compare_families  # noqa: E402

BASE = "experiments/config/presets/specs/cifar10_found_base.json"
COEFFICIENTS = ("1.2", "1.1", "1.15")


def family_args(args: argparse.Namespace, epochs: int) -> list[str]:
    """The ``effnas family`` command line of one rung (E epochs)."""
    a, b, g = COEFFICIENTS
    return [sys.executable, "-m", "effnas", "family", "--base", BASE, "--alpha", a, "--beta", b, "--gamma", g,
            "--phis", args.phis, "--no-baselines", "--train", "--dataset", f"cifar10:{args.data}",
            "--epochs", str(epochs), "--seeds", str(args.seeds), "--workers", str(args.workers),
            "--cpus-per-trial", "1", "--yes", "--set", "data.data_fraction=1.0", "--set", "data.val_fraction=0.05",
            "--set", f"train.recipe={args.recipe}", "--set", "train.threads=1", "--out", str(args.out / f"e{epochs}"),
            "--resume"]


def gains(longer: Path, shorter: Path, e: int) -> list[dict[str, object]]:
    """Each member at 2E minus the same member at E (points of test accuracy, paired by seed)."""
    a, b = pd.read_csv(longer / "family.csv"), pd.read_csv(shorter / "family.csv")
    t = compare_families(a, b, labels=(f"e{2 * e}", f"e{e}"))
    return [{"phi": int(r.phi), "n": int(min(r.n_a, r.n_b)), "mean_e": 100 * r.mean_b, "mean_2e": 100 * r.mean_a,
             "gain": 100 * r.diff, "ci_low": 100 * r.ci_low, "ci_high": 100 * r.ci_high, "p": r.p, "test": r.test,
             "verdict": r.verdict} for r in t.itertuples()]


def copy(args: argparse.Namespace, record_path: Path) -> None:
    """The finished rungs' family tables (``e<E>.csv``) and ``budget.json`` into ``--results``, for the page."""
    args.results.mkdir(parents=True, exist_ok=True)
    for rung in json.loads(record_path.read_text())["rungs"]:
        shutil.copy(args.out / f"e{rung}" / "family.csv", args.results / f"e{rung}.csv")
    shutil.copy(record_path, args.results / "budget.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs/cifar10-budget")
    ap.add_argument("--data", default=os.environ.get("EFFNAS_CIFAR10_JPEG",
                                                      str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz")))
    ap.add_argument("--start", type=int, default=4, help="the first rung's epochs (E)")
    ap.add_argument("--max", type=int, default=32, help="never train more epochs than this")
    ap.add_argument("--threshold", type=float, default=1.5, help="points: the budget is E once 2E gains less")
    ap.add_argument("--phis", default="0,2")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--results", type=Path, default=ROOT / "docs/results/cifar10/budget",
                    help="where each rung's family table (e<E>.csv) and budget.json are copied for the page")
    args = ap.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"cifar10_budget.py: error: no CIFAR-10 archive at '{args.data}': set EFFNAS_CIFAR10_JPEG "
                 "to cifar10-jpeg.tar.gz or pass --data")
    args.out.mkdir(parents=True, exist_ok=True)
    record_path = args.out / "budget.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record.update(base=BASE, coefficients=list(map(float, COEFFICIENTS)), phis=args.phis, seeds=args.seeds,
                  recipe=args.recipe, threshold=args.threshold, workers=args.workers, threads_per_worker=1,
                  data_fraction=1.0, val_fraction=0.05, torch=version("torch"),
                  machine=f"{platform.machine()}, {os.cpu_count()} logical cores")
    record.setdefault("rungs", {})
    record.setdefault("steps", [])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    e, budget = args.start, None
    while e <= args.max:
        out = args.out / f"e{e}"
        if str(e) not in record["rungs"]:
            t0 = time.time()
            print(f"{time.strftime('%H:%M:%S')} rung E = {e} epochs -> {out}", flush=True)
            subprocess.run(family_args(args, e), check=True, env=env, cwd=ROOT)
            record["rungs"][str(e)] = {"wall_seconds": round(time.time() - t0, 1), "dir": out.name}
            record_path.write_text(json.dumps(record, indent=1))
            copy(args, record_path)
        half = args.out / f"e{e // 2}"
        if e > args.start and not any(s["e"] == e // 2 for s in record["steps"]):
            step = {"e": e // 2, "gains": gains(out, half, e // 2)}
            step["passed"] = all(g["gain"] < args.threshold for g in step["gains"])
            record["steps"].append(step)
            record_path.write_text(json.dumps(record, indent=1))
        for step in record["steps"]:
            if step["e"] == e // 2:
                for g in step["gains"]:
                    print(f"  phi {g['phi']}: {g['mean_e']:.1f} % at {e // 2} epochs -> {g['mean_2e']:.1f} % at {e}: "
                          f"{g['gain']:+.1f} pts [{g['ci_low']:+.1f}, {g['ci_high']:+.1f}] ({g['verdict']})")
                if step["passed"]:
                    budget = e // 2
        if budget is not None:
            break
        e *= 2
    record["budget_epochs"] = budget
    record_path.write_text(json.dumps(record, indent=1))
    copy(args, record_path)
    print(f"copied the rungs' tables and budget.json to {args.results}: python bench/results/cifar10_budget.py")
    if budget is None:
        print(f"no budget up to {args.max} epochs: every doubling gained {args.threshold} points or more "
              f"({record_path})")
    else:
        print(f"budget: {budget} epochs (doubling it gains less than {args.threshold} points) ({record_path})")


if __name__ == "__main__":
    main()
