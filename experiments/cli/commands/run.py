"""``effnas run CONFIG`` (or ``--config CONFIG``): search -> baseline -> grid -> family -> backbones -> curves ->
report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands import _progress as console
from effnas.experiments.config.schema import ExperimentConfig, load_config
from effnas.experiments.pipeline.estimate import Estimate, estimate, plan_work
from effnas.experiments.pipeline.plan import base_spec, resolve, runtime
from effnas.experiments.pipeline.resolved import Plan
from effnas.experiments.pipeline.run import StageLog, run_experiment
from effnas.experiments.pipeline.stages import format_failures
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.progress import duration, plural


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run", help="run a whole experiment from a config (search, grid, family, curves, report)",
        description="Run one experiment end to end: search the space for a baseline, grid-search "
        "compound coefficients, train the phi family with single-dimension baselines at every phi (and the "
        "official table, backbones), fit scaling curves and write report.md/report.html. Each stage is "
        "resumable. Before training it says how long it will take on this machine (and asks, on a terminal, "
        "when that is over 30 min). Exit code 1 when any run failed (listed at the end and in the report).",
        epilog=c.examples(
            ("effnas run demo --out runs/demo", "the demo experiment on generated data (about 15 minutes on 2 cores)"),
            ("effnas run --config demo --set search.trials=20 --set family.phis=0-2 --out runs/exp1",
             "the same config with keys changed (--config FILE or the positional CONFIG)"),
            ("effnas run demo --out runs/demo --resume", "continue an interrupted run: finished stages are kept"),
            ("effnas run demo --plan", "what every stage will run and how long it takes here, before anything "
             "trains (--plan --json: the resolved configs)"),
        ),
    )
    p.add_argument("preset", nargs="?", metavar="CONFIG", help=f"a TOML config file, or a named one: {c.PRESETS} "
                   "(experiments/config/presets/); the same as --config CONFIG")
    c.add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: the config's run.out)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: finished stages and trained runs are kept")
    p.add_argument("--plan", action="store_true", help="say what every stage will run (runs, epochs, the time it "
                   "takes here) and exit; with --json the resolved per-run configs; the grid's and search's results "
                   "are stood in for by the paper's coefficients and train.model")
    if "--json" not in p._option_string_actions:
        p.add_argument("--json", action="store_true", help="with --plan: the whole plan as JSON")
    console.add_args(p)
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
    if args.json and not args.plan:
        raise UserError("--json prints the plan: give it with --plan")
    if args.plan:
        p = resolve(cfg)
        if args.json:
            print(json.dumps(p.to_dict(), indent=1, default=str))
        else:
            print(plan_summary(p, experiment_estimate(cfg, p), config=config_ref(args)))
        return 0
    if args.out is None:  # the config's run.out is the run directory
        c.note_outside(Path.cwd(), "the current directory", {"run.out": cfg.run.out}, quiet=args.quiet)
    c.note_outside(out, f"--out {str(out)!r}", {"search.storage": cfg.search.storage if cfg.search.trials else None},
                   quiet=args.quiet)
    ask = console.asker(args, lambda: experiment_estimate(cfg, resolve(cfg), out=out if args.resume else None),
                        shrink="--set family.epochs=N (and grid.epochs, search.trials, family.seeds)")
    t0 = time.perf_counter()
    report, failed = run_experiment(cfg, out=out, resume=args.resume, progress=console.board(args, runtime(cfg)),
                                    quiet=args.quiet, go_ahead=ask, log=(lambda line: None) if args.quiet else print)
    print(f"done in {time.perf_counter() - t0:.0f} s: {report}")
    if not failed.empty:
        print(format_failures(failed, "runs"))
        return 1
    return 0


def experiment_estimate(cfg: ExperimentConfig, p: Plan, *, out: Path | None = None) -> Estimate:
    """The estimate of every stage of plan ``p``; resuming in ``out``, without its finished stages
    (``stages.json``) and runs."""
    base = base_spec(cfg)
    work = plan_work(p, base, out=out, resume=out is not None)
    if out is not None and (out / "stages.json").is_file():
        log = StageLog(out / "stages.json")
        work = [w for w in work if not log.done(w.stage.split()[0])]
    return estimate(work, base, p.family.train_config, p.runtime)


def plan_summary(p: Plan, est: Estimate, *, config: str) -> str:
    """What ``effnas run --plan`` says: a line per stage (runs, epochs, time here) and the total."""
    where = "in this process" if not p.runtime.ray else (
        f"{p.runtime.workers} at a time on Ray" + (f" at {p.runtime.ray_address}" if p.runtime.ray_address else ""))
    lines = [f"experiment {p.name} into {p.out} ({where})"]
    by_stage = {w.stage: w for w in est.work}
    if p.search is not None:
        s = p.search.settings
        w = by_stage.get("search")
        what = f"{s.trials} trials of {s.strategy} in {s.space.name}, trainer {p.search.trainer}"
        lines.append(_stage_line("search", what, est.stage_seconds(w) if w else None, epochs=w.epochs if w else None))
    else:
        lines.append(f"  {'search':<10} none: the baseline is train.model")
    grid, fam = by_stage["grid"], by_stage["family"]
    comparable = len({(j.info["alpha"], j.info["beta"], j.info["gamma"]) for j in p.grid.jobs})
    lines.append(_stage_line("grid", f"{plural(grid.runs, 'run')}: {comparable} of {len(p.grid.table)} candidates "
                             f"within the cost tolerance x {_per(p.grid.jobs, comparable)}", est.stage_seconds(grid),
                             epochs=grid.epochs))
    lines.append(_stage_line("family", f"{plural(fam.runs, 'run')}: {len(p.family.table)} networks x "
                             f"{_per(p.family.jobs, len(p.family.table))}", est.stage_seconds(fam), epochs=fam.epochs))
    for name in p.backbones:
        w = by_stage[f"backbones {name}"]
        lines.append(_stage_line("backbones", f"{plural(w.runs, 'run')} of {name}", est.stage_seconds(w),
                                 epochs=w.epochs))
    lines.append(f"  {'total':<10} {est.text()}" if est.runs else f"  {'total':<10} nothing to train")
    lines.append(f"the stand-ins: grid and family from train.model and the paper's coefficients; every per-run "
                 f"config: effnas run {config} --plan --json")
    return "\n".join(lines)


def _per(jobs: list, networks: int) -> str:
    return plural(len(jobs) // max(1, networks), "seed")


def _stage_line(stage: str, what: str, seconds: float | None, *, epochs: int | None) -> str:
    tail = (f" x {plural(epochs, 'epoch')}" if epochs is not None else "") + (
        f", about {duration(seconds)}" if seconds is not None else "")
    return f"  {stage:<10} {what}{tail}"
