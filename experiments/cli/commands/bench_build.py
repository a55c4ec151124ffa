"""``effnas bench-build``: a ground-truth table of our own, every network of a small MBConv space trained under
one recorded protocol (:mod:`effnas.experiments.pipeline.bench_table`), for ``effnas bench-search
--benchmark mbconv:DIR``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.pipeline import stages
from effnas.experiments.pipeline.bench_table import RUNS, bench_plan, write_table
from effnas.experiments.pipeline.estimate import estimate, stage_work
from effnas.nas.benchmarks.mbconv import SPACE
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench-build", help="train every network of a small MBConv space: a benchmark table for bench-search",
        description="Trains every architecture of the cifar_bench space (216 MBConv networks: kernel 3/5/7 x "
        "expansion 3/6 in each of 3 stages, 32 px) with "
        "every seed of --seeds under one protocol (the [train] recipe, --epochs, the data keys), measures each "
        "network's batch-1 latency, and writes OUT/table.csv (a row per architecture and seed: its choices, "
        "validation accuracy after every epoch, test accuracy, training seconds, params, MACs, latency) and "
        "OUT/protocol.json. Seed-major and resumable (--resume keeps the finished runs; the table is rewritten "
        "from all of them). Replay every search strategy on it in seconds with "
        "`effnas bench-search --benchmark mbconv:OUT`.",
        epilog=c.examples(
            ("effnas bench-build --dataset digits --epochs 2 --seeds 1 --out runs/table",
             "a quick table on the built-in digits"),
            ("effnas bench-build --dataset cifar10:../shared/data/cifar10-jpeg.tar.gz --epochs 4 --seeds 2 "
             "--set data.data_fraction=0.2 --set train.recipe=fast --workers 2 --cpus-per-trial 1 --out runs/mbconv",
             "the CIFAR-10 table: 216 networks x 2 seeds"),
        ),
    )
    c.add_config_args(p)
    g = p.add_argument_group("table (each flag sets the config key in brackets)")
    c.add_data_args(g)
    c.key_flag(g, "--epochs", key="train.epochs", help="epochs per network")
    c.key_flag(g, "--seeds", key="family.seeds", help="seeds per network: a count (2), a list (0,5) or a range (0-2)")
    p.add_argument("--out", metavar="DIR", required=True, help="directory for the runs, table.csv and protocol.json")
    c.add_run_args(g)
    console.add_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = c.experiment(args)
    bp = bench_plan(cfg, SPACE)
    stages.preflight(cfg, args.out, bp.jobs, bp.train_config)
    if not args.quiet:
        print(f"{len(bp.table)} networks of {SPACE} x {len(cfg.family.seeds)} seed(s) = {len(bp.jobs)} runs of "
              f"{cfg.train.epochs} epochs, {bp.table['macs'].min() / 1e6:.2f}-{bp.table['macs'].max() / 1e6:.2f} M "
              "MACs", file=sys.stderr)
    work = [stage_work("bench-build", bp, out=args.out, resume=args.resume)]
    base = bp.jobs[0].spec
    ask = console.asker(args, lambda: estimate(work, base, bp.train_config, bp.runtime), shrink="--epochs or --seeds")
    trained = stages.train_table(cfg, bp, args.out, resume=args.resume, name=RUNS,
                                 progress=console.board(args, bp.runtime), go_ahead=ask)
    path = write_table(cfg, SPACE, trained, args.out, "effnas " + shlex.join(sys.argv[1:]))
    print(f"wrote {path} ({int((trained['status'] == 'completed').sum())} runs): effnas bench-search "
          f"--benchmark mbconv:{Path(args.out)}")
    bad = stages.format_failures(trained, "runs")
    if bad:
        print(bad)
        return 1
    if trained.empty:
        raise UserError("no run was trained")
    return 0
