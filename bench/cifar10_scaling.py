"""The CIFAR-10 scaling study trained enough (issue 26, item 4), in resumable parts.

    OMP_NUM_THREADS=1 python bench/cifar10_scaling.py --seeds 1     # part 1: every network, seed 0
    OMP_NUM_THREADS=1 python bench/cifar10_scaling.py --seeds 2     # part 2: adds seed 1
    OMP_NUM_THREADS=1 python bench/cifar10_scaling.py --seeds 3     # part 3: adds seed 2
    python bench/results/cifar10_scaling.py                          # the page, from the committed files

The study's found base (experiments/config/presets/specs/cifar10_found_base.json, the short-budget study's
search winner) scaled by the paper's alpha, beta, gamma = 1.2, 1.1, 1.15 at ``--phis``, with depth-, width-
and resolution-only baselines at every phi >= 1 and the other scaling rules of ``--rules`` on the same base,
trained with the fast recipe on the whole CIFAR-10 pool (5 % held out for validation) for ``--epochs``
(default: the budget that ``bench/cifar10_budget.py`` measured, docs/results/cifar10/budget/budget.json),
``--workers`` one-thread workers.

A part trains one seed at a time, each as its own ``effnas family --seeds k-k --resume`` run in
``--out``/seed<k>, and merges that seed's rows into the committed ``--results``/family.csv as soon as the
seed ends (with ``study.json``: settings, every part's seed and wall time, machine). ``--seeds N`` trains
the seeds of 0..N-1 that family.csv does not hold complete, so a part needs nothing but the committed
files: ``runs/`` does not survive a fresh clone, family.csv does. A seed killed part-way continues from
its epoch checkpoints when ``--out`` still holds them, and starts again when it does not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effnas.scaling.family import parse_phis  # noqa: E402

BASE = "experiments/config/presets/specs/cifar10_found_base.json"
COEFFICIENTS = ("1.2", "1.1", "1.15")
RESULTS = ROOT / "docs" / "results" / "cifar10"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def budget_epochs() -> int | None:
    path = RESULTS / "budget" / "budget.json"
    return json.loads(path.read_text()).get("budget_epochs") if path.is_file() else None


def command(args: argparse.Namespace, seed: int, out: Path) -> list[str]:
    a, b, g = COEFFICIENTS
    return ["-m", "effnas", "family", "--base", BASE, "--alpha", a, "--beta", b, "--gamma", g, "--phis", args.phis,
            *(["--rules", args.rules] if args.rules else []),
            *([] if args.baselines else ["--no-baselines"]), "--train", "--dataset", f"cifar10:{args.data}",
            "--epochs", str(args.epochs), "--seeds", f"{seed}-{seed}", "--workers", str(args.workers),
            "--cpus-per-trial", "1", "--yes", "--set", "data.data_fraction=1.0", "--set", "data.val_fraction=0.05",
            "--set", "train.recipe=fast", "--set", "train.threads=1", "--out", str(out), "--resume"]


def complete_seeds(family: Path) -> set[int]:
    """The seeds whose every row in ``family`` (a family.csv) is a completed run."""
    if not family.is_file():
        return set()
    df = pd.read_csv(family)
    done = df.groupby("seed")["status"].agg(lambda s: bool((s == "completed").all()))
    return {int(seed) for seed, ok in done.items() if ok}


def merge(family: Path, part: Path, seed: int) -> pd.DataFrame:
    """``family`` (the committed table, if any) with its rows of ``seed`` replaced by ``part``'s (the table
    one seed's ``effnas family`` run wrote), ordered by seed; written back to ``family``."""
    new = pd.read_csv(part)
    if set(new["seed"].astype(int)) != {seed}:
        raise ValueError(f"{part} holds seeds {sorted(set(new['seed']))}, not only seed {seed}")
    if family.is_file():
        old = pd.read_csv(family)
        new = pd.concat([old[old["seed"].astype(int) != seed], new], ignore_index=True)
    new = new.sort_values("seed", kind="stable").reset_index(drop=True)
    family.parent.mkdir(parents=True, exist_ok=True)
    new.to_csv(family, index=False)
    return new


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, required=True,
                    help="the study's seeds are 0..N-1: train those family.csv does not hold complete")
    ap.add_argument("--epochs", type=int, default=None, help="default: the measured budget (budget.json)")
    ap.add_argument("--phis", default="0-2")
    ap.add_argument("--rules", default="", help="more rules beside compound, e.g. fast:0.8,resnet-rs (default: none)")
    ap.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                    help="depth-, width- and resolution-only networks at every phi >= 1 (default: on)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "cifar10-scaling",
                    help="run directories, one per seed (seed<k>/); not committed")
    ap.add_argument("--data", default=os.environ.get("EFFNAS_CIFAR10_JPEG",
                                                      str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz")))
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="the committed family.csv and study.json each finished seed is merged into")
    args = ap.parse_args(argv)
    if args.epochs is None:
        args.epochs = budget_epochs()
        if args.epochs is None:
            ap.error("no measured budget in docs/results/cifar10/budget/budget.json: run bench/cifar10_budget.py "
                     "first, or give --epochs")
    if not Path(args.data).is_file():
        ap.error(f"no CIFAR-10 archive at '{args.data}': set EFFNAS_CIFAR10_JPEG to cifar10-jpeg.tar.gz or pass --data")
    family, record_path = args.results / "family.csv", args.results / "study.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"parts": []}
    phis = sorted(int(p) for p in parse_phis(args.phis))
    rules = [r for r in args.rules.split(",") if r]
    for key, value in (("epochs", args.epochs), ("phis", phis), ("rules", rules), ("baselines", args.baselines)):
        if key in record and record[key] != value:
            ap.error(f"{args.results} holds a study with {key} = {record[key]!r}, not {value!r}: "
                     "use the same settings to add seeds, or another --results")
    done = complete_seeds(family)
    todo = [s for s in range(args.seeds) if s not in done]
    if not todo:
        print(f"{family} holds seeds {sorted(done)} complete: nothing to train for --seeds {args.seeds}")
        return 0
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rc = 0
    for seed in todo:
        out = args.out / f"seed{seed}"
        out.mkdir(parents=True, exist_ok=True)
        cmd = command(args, seed, out)
        record.update(epochs=args.epochs, phis=phis, rules=rules, baselines=args.baselines,
                      coefficients=list(map(float, COEFFICIENTS)),
                      base=BASE, recipe="fast", data_fraction=1.0, val_fraction=0.05, workers=args.workers,
                      threads_per_worker=1, torch=version("torch"),
                      machine=f"{platform.machine()}, {os.cpu_count()} logical cores",
                      command="python " + shlex.join(command(args, seed, Path("runs/cifar10-scaling") / f"seed{seed}"))
                      .replace(args.data, "$EFFNAS_CIFAR10_JPEG").replace(f"{seed}-{seed}", "K-K")
                      .replace(f"seed{seed}", "seedK"))
        t0 = time.time()
        print(f"{time.strftime('%H:%M:%S')} seed {seed} of 0-{args.seeds - 1}, {args.epochs} epochs -> {out}",
              flush=True)
        code = subprocess.run([sys.executable, *cmd], env=env, cwd=ROOT).returncode
        if code not in (0, 1) or not (out / "family.csv").is_file():  # 1: a run failed (the table says which)
            print(f"seed {seed} stopped (exit {code}) before its table was written: run the same command again to "
                  f"continue from {out}", file=sys.stderr)
            return code or 1
        rc = max(rc, code)
        merge(family, out / "family.csv", seed)
        record["parts"] = [p for p in record["parts"] if p["seeds"] != [seed]]
        record["parts"].append({"seeds": [seed], "wall_seconds": round(time.time() - t0, 1), "returncode": code,
                                "finished_utc": _now()})
        record["parts"].sort(key=lambda p: p["seeds"])
        record_path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"merged seed {seed} into {family} and {record_path}: python bench/results/cifar10_scaling.py",
              flush=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
