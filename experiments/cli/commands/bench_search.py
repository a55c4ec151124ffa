"""``effnas bench-search``: search strategies on a tabular benchmark under NAS-Bench-201's protocol.

N independent runs per strategy, each with its own seed and a simulated wall-clock budget (the
sum of the table's training times of the sampled architectures). Writes to ``--out``:
``runs.jsonl`` (every run's trajectory; ``--resume`` skips the runs already there), ``runs.csv``
(one row per run: the returned architecture's accuracy, latency and reward, the hypervolume),
``protocol.json`` (the settings, the table's optimum, the paper's numbers, machine and versions),
``results.csv`` / ``results.md`` (accuracy of the returned architecture, mean +- std per
strategy, beside the paper's numbers and the table's optimum; hypervolume; trials per second),
``anytime.csv`` / ``anytime.png`` (best so far vs simulated time: the returned architecture's accuracy,
or the hypervolume with ``--mode pareto``) and ``pareto.png``
(accuracy vs latency fronts).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import optuna
from tqdm import tqdm

from effnas.experiments.cli.commands._common import examples
from effnas.experiments.train import guard
from effnas.experiments.train.rundir import parse_jsonl
from effnas.nas import Objective
from effnas.nas.bench_fidelity import BENCH_STRATEGIES, SCHEDULED, run_strategy
from effnas.nas.bench_report import (
    anytime_frame,
    describe,
    markdown,
    per_run,
    plot_anytime,
    plot_fronts,
    summarize,
)
from effnas.nas.bench_search import DEFAULT_BUDGETS, Protocol, Run, median_latency
from effnas.nas.benchmarks import TabularBenchmark, get_benchmark
from effnas.nas.strategies import make_sampler
from effnas.search_spaces.common.atomic import atomic_text, disk_full
from effnas.search_spaces.common.errors import UserError, user_file

#: Largest --runs (and --population): the paper's protocol is 500 runs.
MAX_RUNS = 10_000
#: Largest --budget-seconds: 10x imagenet16-120's default of 120000 (a run's lookups grow with it).
MAX_BUDGET = 1_200_000.0
#: NAS-Bench-201's proxy: a lookup costs 12 of its 200 epochs (Dong & Yang 2020).
NB201_PROXY_EPOCHS = 12
#: The default budget on a built table, in full training runs of its median architecture.
BUILT_TABLE_RUNS = 25
#: Settings a runs file written before hyperband/asha/pred-evolution ran with (their defaults then).
PRE_MULTI_FIDELITY = {"min_epochs": 1, "eta": 3, "curve_noise": 0.02, "candidates": 10}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench-search", help="compare search strategies on a tabular benchmark (NAS-Bench-201)",
        description="Runs every strategy N times on a benchmark table under a simulated training-time budget "
        "(NAS-Bench-201's protocol) and reports the returned architecture's accuracy, anytime curves, "
        "Pareto fronts and hypervolume. Lookups, no training: 100 runs take seconds to minutes.",
        epilog=examples(
            ("effnas bench-search --benchmark nasbench201:cifar10 --runs 100 --out runs/nb201",
             "every strategy, 100 runs each, under the paper's 12000 s budget"),
            ("effnas bench-search --mode pareto --strategies random,tpe,nsga2 --runs 20 --out runs/nb201-pareto",
             "accuracy against latency: Pareto fronts and hypervolume"),
            ("effnas bench-search --runs 200 --out runs/nb201 --resume", "add runs to an earlier call"),
            ("effnas bench-search --strategies random,evolution,tpe,hyperband,asha,pred-evolution --runs 20 "
             "--out runs/nb201-mf", "multi-fidelity and predictor-guided search beside the baselines"),
        ),
    )
    p.add_argument("--benchmark", default="nasbench201:cifar10", metavar="NAME:DATASET",
                   help="nasbench201:cifar10, nasbench201:cifar100 or nasbench201:imagenet16-120 (default: "
                   "%(default)s)")
    p.add_argument("--strategies", default="random,tpe,evolution,rl,nsga2", metavar="LIST",
                   help=f"comma-separated, from {', '.join(BENCH_STRATEGIES)} (default: %(default)s)")
    p.add_argument("--runs", type=int, default=100, metavar="N",
                   help="independent runs per strategy (default: %(default)s; paper: 500)")
    p.add_argument("--budget-seconds", type=float, default=None, metavar="S",
                   help="simulated training seconds per run (default: 12000 on cifar10 as in NAS-Bench-201; "
                   "NATS-Bench's 40000 on cifar100 and 120000 on imagenet16-120; on a built mbconv table, 25 full "
                   "trainings of its median architecture)")
    p.add_argument("--charge-epochs", type=int, default=None, metavar="N",
                   help="each lookup costs this many epochs of the table's training time (default: 12 on "
                   "nasbench201, the paper's proxy, of its 200; a built mbconv table's own epochs)")
    p.add_argument("--population", type=int, default=10, metavar="N",
                   help="evolution / NSGA-II population (default: %(default)s, as REA)")
    p.add_argument("--tournament", type=int, default=3, metavar="N",
                   help="evolution tournament size (default: %(default)s, as REA)")
    p.add_argument("--min-epochs", type=int, default=1, metavar="N",
                   help="hyperband/asha: the smallest resource in epochs; the largest is --charge-epochs "
                   "(default: %(default)s)")
    p.add_argument("--eta", type=int, default=3, metavar="N",
                   help="hyperband/asha: reduction factor, 1/eta of a rung is promoted (default: %(default)s)")
    p.add_argument("--curve-noise", type=float, default=0.02, metavar="X",
                   help="hyperband/asha on a table without per-epoch accuracies: spread of the modelled "
                   "early-epoch accuracy (fraction; default: %(default)s)")
    p.add_argument("--modelled-curves", action="store_true",
                   help="hyperband/asha on a table that records no per-epoch accuracies (the offline NAS-Bench-201 "
                   "copy): run them on a modelled learning curve (docs/search.md, 'Multi-fidelity'); their results "
                   "then hold under that model only")
    p.add_argument("--candidates", type=int, default=10, metavar="K",
                   help="pred-evolution: mutations per child, the predictor picks one (default: %(default)s)")
    p.add_argument("--mode", default="reward", help="reward (one objective) or pareto "
                   "(accuracy up, latency down; random, tpe and nsga2 only) (default: %(default)s)")
    p.add_argument("--w", type=float, default=0.0, metavar="X", help="reward exponent: ACC x (latency/T)^w "
                   "(default: %(default)s, accuracy alone as in the paper; MnasNet: -0.07)")
    p.add_argument("--target-ms", type=float, default=None, metavar="T",
                   help="T of the reward, in ms of the table's latency (default: the table's median latency)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="run r uses seed SEED + r (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="keep the runs in OUT/runs.jsonl and run the missing ones")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="directory for runs.jsonl, results.csv/md, anytime.png, pareto.png")
    p.set_defaults(func=run)


def check_sizes(args: argparse.Namespace) -> None:
    """The sizes a user gives, against their bounds, before anything is created."""
    if not 1 <= args.runs <= MAX_RUNS:
        raise UserError(f"--runs must be an integer in [1, {MAX_RUNS}] (paper: 500), got {args.runs}")
    if not 0 <= args.seed <= 2**32 - 1 - args.runs:
        raise UserError(f"--seed must be in [0, 2**32 - 1 - --runs] (run r uses seed SEED + r), got {args.seed}")
    if args.budget_seconds is not None and not 0 < args.budget_seconds <= MAX_BUDGET:
        raise UserError(f"--budget-seconds must be a finite number in (0, {MAX_BUDGET:.0f}] (10x the largest default), "
                         f"got {args.budget_seconds}")
    if not 2 <= args.population <= MAX_RUNS:
        raise UserError(f"--population must be in [2, {MAX_RUNS}], got {args.population}")


def default_budget(table: TabularBenchmark) -> float:
    """NAS-Bench-201's budget on its tables; on another table, what :data:`BUILT_TABLE_RUNS` full training runs
    of its median architecture cost."""
    if table.name == "nasbench201":
        return DEFAULT_BUDGETS[table.dataset]
    return BUILT_TABLE_RUNS * statistics.median(table.record(p).train_seconds for p in table.keys())


def protocol_from_args(args: argparse.Namespace) -> tuple[Protocol, list[str]]:
    table = get_benchmark(args.benchmark)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not strategies:
        raise UserError("--strategies is empty: give e.g. random,tpe,evolution,rl,nsga2")
    for s in strategies:
        if s not in BENCH_STRATEGIES:
            raise UserError(f"unknown strategy {s!r} in --strategies: expected {', '.join(BENCH_STRATEGIES)}")
    check_sizes(args)
    if not 1 <= args.tournament <= args.population:
        raise UserError(f"--tournament must be in [1, --population], got {args.tournament}")
    if args.charge_epochs is None:
        args.charge_epochs = NB201_PROXY_EPOCHS if table.name == "nasbench201" else table.full_epochs
    if not 1 <= args.charge_epochs <= table.full_epochs:
        raise UserError(f"--charge-epochs must be in [1, {table.full_epochs}] (the table's epochs), got "
                         f"{args.charge_epochs}")
    if not 1 <= args.min_epochs <= args.charge_epochs:
        raise UserError(f"--min-epochs must be in [1, --charge-epochs], got {args.min_epochs}")
    if not 2 <= args.eta <= args.charge_epochs:
        raise UserError(f"--eta must be in [2, --charge-epochs], got {args.eta}")
    scheduled = [s for s in strategies if s in SCHEDULED]
    if scheduled and not table.records_curves and not args.modelled_curves:
        raise UserError(f"{scheduled[0]} needs per-epoch accuracies, which {table.ref} does not record: pass "
                        "--modelled-curves to run it on a modelled learning curve (docs/search.md), or leave it out")
    if args.modelled_curves and not scheduled:
        raise UserError("--modelled-curves applies to hyperband and asha only: add one to --strategies or drop it")
    if not (math.isfinite(args.curve_noise) and 0 <= args.curve_noise <= 1):
        raise UserError(f"--curve-noise must be a fraction in [0, 1], got {args.curve_noise}")
    if not 1 <= args.candidates <= MAX_RUNS:
        raise UserError(f"--candidates must be in [1, {MAX_RUNS}], got {args.candidates}")
    for flag, v in (("--w", args.w), ("--target-ms", args.target_ms)):
        if v is not None and not math.isfinite(v):
            raise UserError(f"{flag} must be a finite number, got {v}")
    if args.target_ms is None:
        target = median_latency(table)
    else:
        target = args.target_ms
    objective = Objective(target=target, w=args.w, metric="latency", mode=args.mode)
    budget = args.budget_seconds if args.budget_seconds is not None else default_budget(table)
    protocol = Protocol(table.ref, budget, objective=objective, charge_epochs=args.charge_epochs,
                        population_size=args.population, tournament_size=args.tournament,
                        min_epochs=args.min_epochs, eta=args.eta, curve_noise=args.curve_noise,
                        candidates=args.candidates)

    for s in strategies:  # strategy vs objective, before any run
        if s in SCHEDULED and objective.multi_objective:
            raise UserError(f"strategy {s!r} needs one objective: use --mode reward")
        if s not in SCHEDULED:
            make_sampler(s, multi_objective=objective.multi_objective)
    return protocol, strategies


def load_runs(path: Path, settings: dict[str, object]) -> list[Run]:
    """Runs stored by an earlier call with the same settings (else a one-line error)."""
    with user_file(path, "runs file", "restore it, or give another --out"):
        lines = path.read_text().splitlines()
        if not lines:
            return []
        head = json.loads(lines[0])
    if isinstance(head.get("settings"), dict):  # files from before the multi-fidelity settings hold their defaults
        head["settings"] = {**PRE_MULTI_FIDELITY, **head["settings"]}
    if head.get("settings") != settings:
        diff = sorted(k for k in settings if head.get("settings", {}).get(k) != settings[k])
        raise UserError(f"{path} was written with a different {diff[0] if diff else 'setting'}: resume with the "
                         f"same --benchmark/--budget-seconds/--charge-epochs/--mode/--w/--population/--eta/... or "
                         f"another --out")
    body = [line for line in lines[1:] if line.strip()]
    records = parse_jsonl(path, body)  # a torn last line (a full disk, a kill) is dropped with a warning
    if len(records) < len(body):  # cut it off, so that the next run's line is not appended to it
        atomic_text(path, "".join(line + "\n" for line in [lines[0], *body[:-1]]))
    with user_file(path, "runs file", "restore it, or give another --out"):
        return [Run.from_dict(r) for r in records]


def run(args: argparse.Namespace) -> int:
    protocol, strategies = protocol_from_args(args)  # bad flags or no table here: nothing is written
    with guard.Lock(guard.out_dir(args.out), what="bench-search directory"):  # one writer of runs.jsonl
        return _run(args, protocol, strategies)


def _run(args: argparse.Namespace, protocol: Protocol, strategies: list[str]) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    settings: dict[str, object] = {
        "benchmark": protocol.benchmark, "budget_seconds": protocol.budget_seconds,
        "charge_epochs": protocol.charge_epochs, "objective": protocol.objective.to_dict(),
        "population": protocol.population_size, "tournament": protocol.tournament_size, "seed": args.seed,
        "min_epochs": protocol.min_epochs, "eta": protocol.eta, "curve_noise": protocol.curve_noise,
        "candidates": protocol.candidates}
    if path.exists() and not args.resume:
        raise UserError(f"{path} exists: pass --resume to continue it or choose another --out")
    runs = load_runs(path, settings) if path.exists() else []
    if not path.exists() or not path.read_text().strip():
        path.write_text(json.dumps({"settings": settings}) + "\n")
    done = {(r.strategy, r.run) for r in runs}
    todo = [(s, i) for s in strategies for i in range(args.runs) if (s, i) not in done]
    bar = tqdm(total=len(todo), disable=args.quiet, desc=protocol.benchmark, unit="run", file=sys.stderr)
    with disk_full(path), open(path, "a") as f:
        for strategy, i in todo:
            r = run_strategy(protocol, strategy, run=i, seed=args.seed + i)
            f.write(json.dumps(r.to_dict()) + "\n")
            f.flush()
            runs.append(r)
            bar.set_postfix_str(f"{strategy} run {i}: {r.best_accuracy * 100:.2f} % in {len(r.seconds)} trials")
            bar.update()
    bar.close()
    runs = [r for r in runs if r.strategy in strategies and r.run < args.runs]
    atomic_text(out / "protocol.json", json.dumps(describe(protocol, strategies=strategies, runs=args.runs,
                                                            seed=args.seed), indent=1) + "\n")
    each = per_run(runs, protocol)
    each.to_csv(out / "runs.csv", index=False, float_format="%.10g")
    summary = summarize(each, protocol)
    summary.to_csv(out / "results.csv", index=False, float_format="%.4f")
    (out / "results.md").write_text(markdown(summary, protocol))
    frame = anytime_frame(runs, protocol, metric="hypervolume" if protocol.objective.multi_objective else "accuracy")
    frame.to_csv(out / "anytime.csv", index=False, float_format="%.4f")
    plot_anytime(frame, protocol, out / "anytime.png")
    plot_fronts(runs, protocol, out / "pareto.png")
    print(markdown(summary, protocol))
    return 0
