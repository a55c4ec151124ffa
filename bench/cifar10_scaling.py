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
``--workers`` one-thread workers. One ``effnas family --resume`` run in ``--out``: jobs go seed-major, so
each part (``--seeds N`` trains seeds 0..N-1, keeping the finished runs) ends with whole curves, and a part
killed at a session's end continues where it stopped. After each part the family table and
``study.json`` (settings, every part's seeds and wall time, machine) are copied to docs/results/cifar10/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

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


def command(args: argparse.Namespace) -> list[str]:
    a, b, g = COEFFICIENTS
    return ["-m", "effnas", "family", "--base", BASE, "--alpha", a, "--beta", b, "--gamma", g, "--phis", args.phis,
            *(["--rules", args.rules] if args.rules else []),
            *([] if args.baselines else ["--no-baselines"]), "--train", "--dataset", f"cifar10:{args.data}",
            "--epochs", str(args.epochs), "--seeds", str(args.seeds), "--workers", str(args.workers),
            "--cpus-per-trial", "1", "--yes", "--set", "data.data_fraction=1.0", "--set", "data.val_fraction=0.05",
            "--set", "train.recipe=fast", "--set", "train.threads=1", "--out", str(args.out), "--resume"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, required=True, help="train seeds 0..N-1 (a part adds one seed)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the measured budget (budget.json)")
    ap.add_argument("--phis", default="0-2")
    ap.add_argument("--rules", default="", help="more rules beside compound, e.g. fast:0.8,resnet-rs (default: none)")
    ap.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                    help="depth-, width- and resolution-only networks at every phi >= 1 (default: on)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "cifar10-scaling")
    ap.add_argument("--data", default=os.environ.get("EFFNAS_CIFAR10_JPEG",
                                                      str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz")))
    ap.add_argument("--results", type=Path, default=RESULTS, help="where family.csv and study.json are copied")
    args = ap.parse_args(argv)
    if args.epochs is None:
        args.epochs = budget_epochs()
        if args.epochs is None:
            ap.error("no measured budget in docs/results/cifar10/budget/budget.json: run bench/cifar10_budget.py "
                     "first, or give --epochs")
    if not Path(args.data).is_file():
        ap.error(f"no CIFAR-10 archive at '{args.data}': set EFFNAS_CIFAR10_JPEG to cifar10-jpeg.tar.gz or pass --data")
    args.out.mkdir(parents=True, exist_ok=True)
    record_path = args.out / "study.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"parts": []}
    phis = sorted(int(p) for p in parse_phis(args.phis))
    rules = [r for r in args.rules.split(",") if r]
    for key, value in (("epochs", args.epochs), ("phis", phis), ("rules", rules), ("baselines", args.baselines)):
        if key in record and record[key] != value:
            ap.error(f"{args.out} holds a study with {key} = {record[key]!r}, not {value!r}: "
                     "use the same settings to resume, or a new --out")
    cmd = [sys.executable, *command(args)]
    record.update(epochs=args.epochs, phis=phis, rules=rules, baselines=args.baselines,
                  coefficients=list(map(float, COEFFICIENTS)),
                  base=BASE, recipe="fast", data_fraction=1.0, val_fraction=0.05, workers=args.workers,
                  threads_per_worker=1, torch=version("torch"),
                  machine=f"{platform.machine()}, {os.cpu_count()} logical cores",
                  command="python " + shlex.join(command(args)).replace(args.data, "$EFFNAS_CIFAR10_JPEG"))
    t0 = time.time()
    part = {"seeds": list(range(args.seeds)), "started_utc": _now()}
    record.setdefault("interrupted", []).append(part)  # moved to "parts" when it ends; a killed part stays here
    record_path.write_text(json.dumps(record, indent=1))
    print(f"{time.strftime('%H:%M:%S')} part: seeds 0-{args.seeds - 1}, {args.epochs} epochs -> {args.out}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rc = subprocess.run(cmd, env=env, cwd=ROOT).returncode
    if rc not in (0, 1):  # 1: a run failed (the table says which); anything else: nothing to collect
        return rc
    record["interrupted"].remove(part)
    part.update(wall_seconds=round(time.time() - t0, 1), returncode=rc, finished_utc=_now())
    record["parts"].append(part)
    record_path.write_text(json.dumps(record, indent=1))
    args.results.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.out / "family.csv", args.results / "family.csv")
    shutil.copy(record_path, args.results / "study.json")
    print(f"copied family.csv and study.json to {args.results}: python bench/results/cifar10_scaling.py")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
