"""What ``train.track`` costs a run: seconds per epoch with and without it, and the time spent in
the tracker itself (docs/training.md, "Tracking").

    OMP_NUM_THREADS=1 python bench/tracking_cost.py --rounds 5 --epochs 3

Runs of ``tiny`` on ``digits`` (32 px, batch 128, one thread) with ``track = none``,
``tensorboard`` and, when the ``mlflow`` package is installed, ``mlflow`` (a SQLite store in the
temporary directory), alternated round by round so that a change in the machine's load hits them
alike. Per tracker: the median of the epochs' ``seconds`` (``epochs.jsonl``: training, validation,
checkpoints and tracking), the median wall time of a run (setup, the tracker's start and the test
evaluation included), and the time inside the tracker's calls per epoch and per run (its start
and close included), measured around the calls themselves.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effnas.experiments.train import loop  # noqa: E402
from effnas.experiments.train.steps import track  # noqa: E402

#: Seconds spent inside tracker calls during the current run.
SPENT: list[float] = []


def timed(fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT.append(time.perf_counter() - t0)
    return wrapper


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    trackers = ["none", "tensorboard"] + (["mlflow"] if importlib.util.find_spec("mlflow") else [])
    for name in ("epoch", "final", "__exit__"):
        setattr(track.Tracker, name, timed(getattr(track.Tracker, name)))
    track.open_tracker = timed(track.open_tracker)
    loop.open_tracker = track.open_tracker  # the trainer's own reference
    tmp = Path(tempfile.mkdtemp(prefix="effnas-tracking-"))
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; load average at start {load}")
    base = {"model": "tiny", "dataset": "digits", "epochs": args.epochs, "batch_size": 128, "threads": 1,
            "quiet": True}
    loop.train_fn({**base, "epochs": 1})  # digits and the imports load once, outside the rounds
    epoch_s: dict[str, list[float]] = {t: [] for t in trackers}
    run_s: dict[str, list[float]] = {t: [] for t in trackers}
    inside: dict[str, list[float]] = {t: [] for t in trackers}
    for r in range(args.rounds):
        for t in trackers if r % 2 == 0 else trackers[::-1]:
            out = tmp / f"{t}-{r}"
            SPENT.clear()
            t0 = time.perf_counter()
            m = loop.train_fn({**base, "out_dir": str(out), "track": t})
            run_s[t].append(time.perf_counter() - t0)
            assert m["status"] == "completed", m
            epoch_s[t] += [json.loads(x)["seconds"] for x in (out / "epochs.jsonl").read_text().splitlines()]
            inside[t].append(sum(SPENT))
        print(f"#   round {r + 1}/{args.rounds}, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# load average at end {load}; {args.rounds} runs of {args.epochs} epochs per tracker")
    print("| track | median s / epoch | median s / run | in the tracker, ms / run | ms / epoch |")
    print("|---|---:|---:|---:|---:|")
    for t in trackers:
        ms = statistics.median(inside[t]) * 1e3
        print(f"| {t} | {statistics.median(epoch_s[t]):.3f} | {statistics.median(run_s[t]):.2f} | {ms:.1f} | "
              f"{ms / args.epochs:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
