"""``effnas run CONFIG`` (or ``--config CONFIG``): search -> baseline -> grid -> family -> backbones -> curves ->
report."""

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
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run", help="run a whole experiment from a config (search, grid, family, curves, report)",
        description="Run one experiment end to end: search the space for a baseline, grid-search "
        "compound coefficients, train the phi family with single-dimension baselines at every phi (and the "
        "official table, backbones), fit scaling curves and write report.md/report.html. Each stage is "
        "resumable. Exit code 1 when any run failed (listed at the end and in the report).",
        epilog=c.examples(
            ("effnas run demo --out runs/demo", "the demo experiment on generated data (about 15 minutes on 2 cores)"),
            ("effnas run --config demo --set search.trials=20 --set family.phis=0-2 --out runs/exp1",
             "the same config with keys changed (--config FILE or the positional CONFIG)"),
            ("effnas run demo --out runs/demo --resume", "continue an interrupted run: finished stages are kept"),
            ("effnas run demo --plan", "what every stage will run, as JSON, before anything trains"),
        ),
    )
    p.add_argument("preset", nargs="?", metavar="CONFIG", help=f"a TOML config file, or a named one: {c.PRESETS} "
                   "(experiments/config/presets/); the same as --config CONFIG")
    c.add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: the config's run.out)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: finished stages and trained runs are kept")
    p.add_argument("--plan", action="store_true", help="print what every stage will run (the resolved per-run "
                   "configs, as JSON) and exit; the grid's and search's results are stood in for by the paper's "
                   "coefficients and train.model")
    p.set_defaults(func=run)


def config_ref(args: argparse.Namespace) -> str:
    """The config of ``effnas run CONFIG`` or ``effnas run --config CONFIG`` (given once)."""
    if args.preset and args.config and args.preset != args.config:
        raise UserError(f"two configs given ({args.preset!r} and --config {args.config!r}): give one")
    ref = args.preset or args.config
    if not ref:
        raise UserError("give a config: effnas run CONFIG or effnas run --config CONFIG (e.g. demo, or a TOML file)")
    return str(ref)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(config_ref(args), overrides=args.overrides)
    if args.out:
        cfg = cfg.with_values({"run.out": args.out})
    if args.verbose:  # -v/--verbose also shows Ray's own output [run.verbose]
        cfg = cfg.with_values({"run.verbose": True})
    c.say_config(args, cfg)
    out = Path(cfg.run.out)
    if args.plan:
        print(json.dumps(resolve(cfg).to_dict(), indent=1, default=str))
        return 0
    if args.out is None:  # the config's run.out is the run directory
        c.note_outside(Path.cwd(), "the current directory", {"run.out": cfg.run.out}, quiet=args.quiet)
    c.note_outside(out, f"--out {str(out)!r}", {"search.storage": cfg.search.storage if cfg.search.trials else None},
                   quiet=args.quiet)
    t0 = time.perf_counter()
    report, failed = run_experiment(cfg, out=out, resume=args.resume, quiet=args.quiet,
                                    log=(lambda line: None) if args.quiet else print)
    print(f"done in {time.perf_counter() - t0:.0f} s: {report}")
    if not failed.empty:
        print(format_failures(failed, "runs"))
        return 1
    return 0
