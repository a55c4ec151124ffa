"""``effnas run CONFIG``: search -> baseline -> grid -> family -> backbones -> curves -> report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.config.schema import load_config
from effnas.experiments.pipeline.plan import resolve
from effnas.experiments.pipeline.run import run_experiment
from effnas.experiments.pipeline.stages import format_failures


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run", help="run a whole experiment from a config (search, grid, family, curves, report)",
        description="Run one experiment end to end: search the space for a baseline, grid-search "
        "compound coefficients, train the phi family with single-dimension baselines at every phi (and the "
        "official table, backbones), fit scaling curves and write report.md/report.html. Each stage is "
        "resumable. Exit code 1 when any run failed (listed at the end and in the report).",
    )
    p.add_argument("config", help="a TOML config file, or a named one: demo, cifar10, paper "
                   "(experiments/config/presets/)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="set any config key, e.g. --set search.trials=20 --set family.seeds=2; repeatable")
    p.add_argument("--out", help="run directory (default: the config's run.out)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: finished stages and trained runs are kept")
    p.add_argument("--plan", action="store_true", help="print what every stage will run (the resolved per-run "
                   "configs, as JSON) and exit; the grid's and search's results are stood in for by the paper's "
                   "coefficients and train.model")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, overrides=args.overrides)
    if args.out:
        cfg = cfg.with_values({"run.out": args.out})
    out = Path(cfg.run.out)
    if args.plan:
        print(json.dumps(resolve(cfg).to_dict(), indent=1, default=str))
        return 0
    if args.out is None:  # the config's run.out is the run directory
        c.note_outside(Path.cwd(), "the current directory", {"run.out": cfg.run.out})
    c.note_outside(out, f"--out {str(out)!r}", {"search.storage": cfg.search.storage if cfg.search.trials else None})
    t0 = time.perf_counter()
    report, failed = run_experiment(cfg, out=out, resume=args.resume)
    print(f"done in {time.perf_counter() - t0:.0f} s: {report}")
    if not failed.empty:
        print(format_failures(failed, "runs"))
        return 1
    return 0
