"""``effnas search``: a MnasNet-style architecture search recorded in one Optuna study.

In-process and sequential by default; ``--workers N`` / ``--ray-address ADDR`` run the trials as
Ray Tune trials (:mod:`experiments.search_ray`). The study's storage (SQLite in ``--out`` by
default) is the source of truth: ``--resume`` continues it after a crash and optuna-dashboard
can open it. Results go to ``--out``: ``trials.csv``, ``pareto.json``, ``pareto.png``,
``best_spec.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from nas import STRATEGIES, Objective, SearchConfig, SurrogateTrainer, get_space, open_study, run_search, write_results
from nas.benchmarks import BenchmarkTrainer, TabularBenchmark
from nas.cell_space import CellSpace
from nas.search import TrainerFn
from nas.space import SearchSpace

#: Class counts of the data sets the trainer knows (experiments/data.py), for pre-training cost.
NUM_CLASSES = {"digits": 10, "mnist5k": 10, "shapes": 10, "cifar10": 10, "cifar100": 100}
TRAINERS = ("train", "surrogate", "table")


def parse_count(text: str) -> float:
    """``400e6``, ``400M``, ``1.2G``, ``8.5k`` -> a float.

    >>> parse_count("400M"), parse_count("1.5e6"), parse_count("2G")
    (400000000.0, 1500000.0, 2000000000.0)
    """
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([kKmMgG]?)\s*", text)
    try:
        value = float(m.group(1)) if m else float("nan")
    except ValueError:
        value = float("nan")
    if not m or value != value:
        raise argparse.ArgumentTypeError(f"expected a number such as 400e6 or 400M, got {text!r}")
    return value * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "search", help="search an MBConv space for ACC x (MACs/T)^w (or a Pareto front)",
        description="MnasNet-style architecture search: every trial samples a network from the space, its "
        "params/MACs are computed first, it is trained briefly and scored with the reward "
        "ACC x (cost/T)^w. One Optuna study holds every trial (--storage), so --resume continues it.",
    )
    p.add_argument("--space", default="mnasnet", help="mnasnet, mnasnet_paper, efficientnet, tiny, nano, a .json/.toml "
                   "space file, or the benchmark table nasbench201 (with --dataset cifar10, cifar100 or "
                   "imagenet16-120; cost: the table's latency) (default: mnasnet)")
    p.add_argument("--dataset", default="digits", help="NAME[:PATH] as for 'effnas train' (default: digits)")
    p.add_argument("--strategy", default="tpe", help=f"one of {', '.join(STRATEGIES)} (default: tpe)")
    p.add_argument("--trials", type=int, default=20, help="finished trials wanted in the study (default: 20)")
    p.add_argument("--target-macs", type=parse_count, default=None, metavar="T",
                   help="T of the reward, in MACs (e.g. 400M); default: the space's base network's MACs")
    p.add_argument("--target-ms", type=float, default=None, metavar="MS",
                   help="use measured latency (ms, batch 1, this device) as the cost, with target MS")
    p.add_argument("--w", type=float, default=-0.07, help="reward exponent of the soft constraint (default: -0.07)")
    p.add_argument("--constraint", default="soft", help="soft (alpha=beta=w) or hard (alpha=0, beta=-1; "
                   "candidates over T are rejected before training)")
    p.add_argument("--objective", default="reward", help="reward (one objective) or pareto (accuracy up, cost down)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs per candidate (default: 1)")
    p.add_argument("--resolution", type=int, default=None, help="input pixels (default: the space's)")
    p.add_argument("--data-fraction", type=float, default=1.0, help="fraction of the training split (default: 1)")
    p.add_argument("--num-classes", type=int, default=None, help="classes (default: the data set's, else the space's)")
    p.add_argument("--seed", type=int, default=0, help="seeds the sampler and every candidate's training")
    p.add_argument("--population", type=int, default=20, help="NSGA-II / evolution population (default: 20)")
    p.add_argument("--no-prune", action="store_true", help="never stop candidates early")
    p.add_argument("--workers", type=int, default=0, help="run N trials at once with Ray Tune (default: in-process)")
    p.add_argument("--ray-address", default=None, metavar="ADDR", help="join this Ray cluster (implies Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs per Ray trial (default: cores / workers)")
    p.add_argument("--storage", default=None, help="Optuna storage: sqlite:///PATH.db, any SQLAlchemy URL or "
                   "PATH.journal (default: sqlite:///OUT/study.db)")
    p.add_argument("--study", default="search", help="study name in the storage (default: search)")
    p.add_argument("--resume", action="store_true", help="continue an existing study")
    p.add_argument("--trainer", default=None, help="train (experiments.training; the default on MBConv spaces), "
                   "surrogate (a seeded synthetic accuracy of the architecture, for testing strategies; no data) or "
                   "table (the benchmark's lookup; the default and only trainer of --space nasbench201)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="train_set",
                   help="a trainer config key for every candidate (e.g. batch_size=64, optimizer=adamw); repeatable")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    p.add_argument("--out", required=True, help="directory for trials.csv, pareto.json/png, best_spec.json")
    p.set_defaults(func=run)


def median_latency(table: TabularBenchmark) -> float:
    """The median latency (ms) of a benchmark's architectures: the default T on a table."""
    import statistics

    return statistics.median(table.record(p).latency_ms for p in table.keys())


def trainer_name(args: argparse.Namespace, space: SearchSpace | CellSpace) -> str:
    """``--trainer``, defaulting to ``table`` on a benchmark space and ``train`` elsewhere."""
    if isinstance(space, CellSpace):
        if args.trainer not in (None, "table"):
            raise ValueError(f"space {space.name!r} is a benchmark table: its trainer is the table lookup "
                             f"(--trainer table), not {args.trainer!r}")
        return "table"
    if args.trainer == "table":
        raise ValueError(f"--trainer table needs a benchmark space (--space nasbench201), not {space.name!r}")
    return args.trainer or "train"


def make_trainer(name: str, *, seed: int, space: SearchSpace | CellSpace | None = None) -> TrainerFn:
    if name not in TRAINERS:
        raise ValueError(f"unknown trainer {name!r}: expected one of {', '.join(TRAINERS)}")
    if name == "table":
        if not isinstance(space, CellSpace):
            raise ValueError("--trainer table needs a benchmark space (--space nasbench201)")
        return BenchmarkTrainer(space.benchmark)
    if name == "surrogate":
        return SurrogateTrainer(seed=seed)
    try:
        from experiments.training import train_fn  # type: ignore[attr-defined]
    except ImportError:
        raise ValueError("experiments.training is not in this checkout: use --trainer surrogate") from None
    return train_fn  # type: ignore[no-any-return]


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    space = get_space(args.space)
    if args.trials < 1:
        raise ValueError(f"--trials must be a positive integer, got {args.trials}")
    for name in ("epochs", "population", "workers"):
        if getattr(args, name) < (0 if name == "workers" else 1):
            raise ValueError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    name = args.dataset.split(":", 1)[0]
    num_classes = args.num_classes or NUM_CLASSES.get(name)
    if isinstance(space, CellSpace):
        if args.target_macs is not None:
            raise ValueError(f"space {space.name!r} is a benchmark table without MACs: give --target-ms (latency)")
        resolution = None
        metric = "latency"
        target = args.target_ms if args.target_ms is not None else median_latency(space.table(args.dataset))
    elif args.target_ms is not None:
        resolution = args.resolution or space.resolution
        metric, target = "latency", args.target_ms
    else:
        resolution = args.resolution or space.resolution
        metric = "macs"
        target = args.target_macs
        if target is None:
            from search_spaces.cost import macs

            target = float(macs(space.to_spec({}, num_classes=num_classes, resolution=resolution)))
    objective = Objective(target=target, w=args.w, constraint=args.constraint, metric=metric, mode=args.objective)
    out = Path(args.out)
    storage = args.storage
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{out.resolve() / 'study.db'}"
    options: dict[str, object] = {"quiet": True} if trainer_name(args, space) == "train" else {}
    for item in args.train_set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. batch_size=64")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return SearchConfig(space=space, objective=objective, strategy=args.strategy, trials=args.trials,
                        dataset=args.dataset, epochs=args.epochs, resolution=resolution,
                        data_fraction=args.data_fraction, seed=args.seed, num_classes=num_classes, storage=storage,
                        study_name=args.study, resume=args.resume, prune=not args.no_prune,
                        population_size=args.population, train_options=options)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    trainer = make_trainer(trainer_name(args, cfg.space), seed=args.seed, space=cfg.space)
    progress = (lambda *a: None) if args.quiet else None
    if not args.quiet:
        per_block = cfg.space.size ** (1 / cfg.space.num_blocks)
        print(f"space {cfg.space.name}: {cfg.space.size:.3g} networks ({per_block:.0f} choices per block, "
              f"{cfg.space.num_blocks} blocks); T = {cfg.objective.target:.4g} {cfg.objective.metric}, "
              f"strategy {cfg.strategy}, {cfg.trials} trials", file=sys.stderr)
    if args.workers > 0 or args.ray_address:
        from experiments.search_ray import run_search_ray

        study = run_search_ray(cfg, trainer, workers=max(1, args.workers), address=args.ray_address,
                               cpus_per_trial=args.cpus_per_trial, out_dir=args.out, progress=progress)
    else:
        study = run_search(cfg, trainer, study=open_study(cfg), progress=progress)
    summary = write_results(study, args.out, cfg.objective)
    summary.update(study=cfg.study_name, storage=cfg.storage, strategy=cfg.strategy, out=str(args.out))
    print(json.dumps(summary))
    return 0
