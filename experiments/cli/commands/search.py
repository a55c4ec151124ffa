"""``effnas search``: a MnasNet-style architecture search recorded in one Optuna study.

In-process and sequential by default; ``--workers N`` / ``--ray-address ADDR`` run the trials as
Ray Tune trials (:mod:`effnas.experiments.cluster.search_ray`). The study's storage (SQLite in ``--out`` by
default) is the source of truth: ``--resume`` continues it after a crash and optuna-dashboard
can open it. Results go to ``--out``: ``trials.csv``, ``pareto.json``, ``pareto.png``,
``best_spec.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.config.choices import LATENCY_RUNTIMES, SEARCH_COSTS, SEARCH_PRUNERS
from effnas.experiments.pipeline import plan, stages
from effnas.search_spaces.common.errors import UserError


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
        "params/MACs are computed first, it is trained briefly (the [train] recipe with [search.train] on top) "
        "and scored with the reward ACC x (cost/T)^w. One Optuna study holds every trial (--storage), so "
        "--resume continues it. Writes trials.csv, pareto.json/png and best_spec.json into --out.",
        epilog=c.examples(
            ("effnas search --space nano --dataset shapes --strategy tpe --trials 20 --epochs 1 --target-macs 1M "
             "--out runs/search", "20 candidates of the nano space, one proxy epoch each, T = 1M MACs"),
            ("effnas search --space nano --dataset shapes --estimator proxy:jacob_cov --trials 500 --out runs/zc",
             "rank 500 candidates with a zero-cost proxy instead of training them"),
            ("effnas search --space nano --dataset shapes --trials 40 --epochs 1 --out runs/search --resume",
             "continue the study in runs/search up to 40 finished trials"),
            ("effnas search --space nasbench201 --dataset cifar100 --strategy evolution --trials 200 --out runs/nb",
             "regularised evolution on the NAS-Bench-201 table (lookups, no training)"),
            ("effnas search --space efficientnetv2_tiny --dataset digits --cost train_step --trials 20 --epochs 1 "
             "--out runs/v2", "EfficientNetV2's training-aware search: ACC x (S/S0)^-0.07 x (P/P0)^-0.05, S the "
             "measured training step time"),
        ),
    )
    c.add_config_args(p)
    g = p.add_argument_group("search (each flag sets the config key in brackets)")
    c.key_flag(g, "--space", key="search.space", help="mnasnet, mnasnet_paper, efficientnet, efficientnetv2 (V2-S's "
               "layout: MBConv or Fused-MBConv, kernel, expansion, layers per stage), efficientnetv2_tiny, nano, tiny, "
               "cifar, or a .json/.toml space file")
    c.key_flag(g, "--strategy", key="search.strategy", help="random, tpe, nsga2, evolution or rl")
    c.key_flag(g, "--trials", key="search.trials", help="finished trials wanted in the study")
    g.add_argument("--target-macs", type=parse_count, metavar="T", help="T of the reward in MACs, e.g. 400M "
                   "[search.cost = macs, search.target]; default: the space's base network's MACs")
    g.add_argument("--target-ms", type=float, metavar="MS", help="use measured latency (ms, batch 1, this device) "
                   "as the cost, with target MS [search.cost = latency, search.target]; default: MACs are the cost")
    g.add_argument("--target-step-ms", type=float, metavar="MS", help="use the measured training step time (ms; "
                   "forward, backward and SGD step of a batch of --batch-size images; EfficientNetV2's S) as the cost, "
                   "with target MS [search.cost = train_step, search.target]")
    c.key_flag(g, "--cost", key="search.cost", choices=SEARCH_COSTS, help="what T measures: MACs, batch-1 latency "
               "(ms) or the training step time (ms, EfficientNetV2's training-aware search; T default: the space's "
               "base network's, measured) (default: macs; a benchmark table's latency)")
    c.key_flag(g, "--v", key="search.v", help="exponent of the parameters' factor (params/P0)^v (default: -0.05 "
               "with --cost train_step, EfficientNetV2's; else 0, no factor)")
    c.key_flag(g, "--target-params", key="search.target_params", type=parse_count, metavar="P",
               help="P0 of the parameters' factor, e.g. 1.5M (default: the space's base network's parameters)")
    c.key_flag(g, "--latency-runtime", key="search.latency_runtime", choices=LATENCY_RUNTIMES,
               help="with --target-ms: time candidates (batch 1) in eager PyTorch or in onnxruntime on "
               "the exported ONNX network (one CPU thread; needs onnx and onnxruntime: effnas[deploy])")
    c.key_flag(g, "--latency-table", key="search.latency_table", metavar="FILE",
               help="with --target-ms: predict each candidate's latency from this lookup table (built for this "
               "machine by bench/latency_table.py; ops it lacks are timed once and added) instead of timing the "
               "network; the winner is measured after the search (latency_check.json); default: time every "
               "candidate")
    c.key_flag(g, "--w", key="search.w", help="reward exponent")
    c.key_flag(g, "--constraint", key="search.constraint", help="soft (alpha=beta=w) or hard (alpha=0, beta=-1)")
    c.key_flag(g, "--mode", key="search.mode",
               help="reward (one objective) or pareto (accuracy, or an estimator's score, up; cost down)")
    c.key_flag(g, "--resolution", key="search.resolution", help="input pixels (default: the space's)")
    c.key_flag(g, "--population", key="search.population", help="NSGA-II / evolution population")
    c.key_flag(g, "--pruner", key="search.pruner", choices=SEARCH_PRUNERS,
               help="what stops weak candidates early from their per-epoch reward: noise_floor (median pruning "
               "beyond the seed-to-seed noise), median (Optuna's), asha (successive halving, rungs at 1, 3, 9 epochs) "
               "or hyperband (brackets of successive halving); epochs are the resource")
    g.add_argument("--no-prune", dest="search.prune", action="store_const", const=False,
                   help="never stop candidates early (default: prune) [search.prune]")
    c.key_flag(g, "--noise-floor", key="search.noise_floor", metavar="SD",
               help="seed-to-seed standard deviation of a candidate's accuracy (a fraction) that pruning respects: "
               "a trial stops only when it is behind the median beyond it, once the median is beyond it above "
               "chance (default: measured, docs/search.md)")
    c.key_flag(g, "--reevaluate", key="search.reevaluate", metavar="K",
               help="after the search, train the top K candidates again with another seed, pick the winner by the "
               "mean of both runs and say which runners-up are tied within noise (reevaluation.csv; 0: off)")
    c.key_flag(g, "--trainer", key="search.trainer", help="train, surrogate (a seeded "
               "synthetic accuracy for testing strategies; no data) or table (a benchmark space's lookup, with "
               "--dataset cifar10, cifar100 or imagenet16-120) (default: table on --space nasbench201, else train)")
    c.key_flag(g, "--estimator", key="search.estimator", help="train (the --trainer); proxy:NAME: score "
               "each candidate at initialisation with a zero-cost proxy on one minibatch (the trial's score; "
               "synflow, jacob_cov, naswot, grad_norm, snip, grasp, fisher; docs/zerocost.md; on --space "
               "nasbench201 give --dataset cifar10:PATH for the images); supernet:DIR: inherited weights of a "
               "supernet trained by 'effnas supernet train --out DIR', BatchNorm recalibrated, validation accuracy "
               "as the score; supernet: train one into OUT/supernet first ([supernet] keys; docs/supernet.md)")
    c.key_flag(g, "--calibration-batches", key="supernet.calibration_batches",
               help="with a supernet estimator: training batches that re-estimate each candidate's BatchNorm "
               "statistics")
    c.key_flag(g, "--prefilter", key="search.prefilter", help="proxy:NAME or supernet:DIR: score each candidate "
               "first and train only the best --keep share (the others are PRUNED, status=filtered, and do "
               "not count towards --trials) (default: none)")
    c.key_flag(g, "--keep", key="search.prefilter_keep", help="share of candidates the pre-filter trains")
    c.key_flag(g, "--storage", key="search.storage", metavar="URL", help="Optuna storage: sqlite:///PATH.db, "
               "another SQLAlchemy URL or PATH.journal (default: sqlite:///OUT/study.db)")
    c.key_flag(g, "--study", key="search.study", metavar="NAME", help="study name in the storage")
    t = p.add_argument_group("proxy training of each candidate")
    c.add_data_args(t, fraction_key="search.train.data_fraction")
    c.key_flag(t, "--epochs", key="search.train.epochs", help="epochs per candidate")
    c.key_flag(t, "--seed", key="run.seed", help="seeds the sampler and every candidate's training")
    r = p.add_argument_group("execution")
    c.add_run_args(r)
    p.add_argument("--out", metavar="DIR", required=True, help="directory for trials.csv, pareto.json/png, "
                   "best_spec.json")
    p.add_argument("--json", action="store_true", help="print the search's summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = {"macs": args.target_macs, "latency": args.target_ms, "train_step": args.target_step_ms}
    given = [(cost, t) for cost, t in targets.items() if t is not None]
    flags = {"macs": "--target-macs", "latency": "--target-ms", "train_step": "--target-step-ms"}
    if len(given) > 1:
        raise UserError(f"give {' or '.join(flags[k] for k, _ in given)}, not {'both' if len(given) == 2 else 'all'}: "
                         "each sets the cost")
    cost = getattr(args, "search.cost")
    if given and cost is not None and cost != given[0][0]:
        raise UserError(f"--cost {cost} and {flags[given[0][0]]} name different costs: drop one of them")
    cfg = c.experiment(args)
    for cost, target in given:
        cfg = cfg.with_values({"search.cost": cost, "search.target": target})
    if args.out and getattr(args, "search.storage") is None:  # a storage path from --config / --set
        c.note_outside(args.out, f"--out {args.out!r}", {"search.storage": cfg.search.storage}, quiet=args.quiet)
    summary = stages.search(plan.resolve_search(cfg, args.out, resume=args.resume), quiet=args.quiet)
    print(json.dumps(summary) if args.json else summary_text(summary))
    return 0


def summary_text(s: dict[str, Any]) -> str:
    """The search's summary (:func:`effnas.experiments.pipeline.stages.search`) as lines to read.

    >>> print(summary_text({"trials": 3, "completed": 2, "front": 1, "best_trial": 1, "best_reward": 0.5,
    ...     "best_accuracy": 0.6, "best_macs": 1.2e6, "study": "search", "storage": "sqlite:///o/study.db",
    ...     "strategy": "tpe", "out": "o"}))
    search 'search' (tpe): 3 trials, 2 completed, 1 on the Pareto front
    best: trial 1, reward 0.5000, accuracy 0.6000, 1.20M MACs
    wrote trials.csv, pareto.json, pareto.png and best_spec.json in o; the study is in sqlite:///o/study.db
    """
    n = s["trials"]
    lines = [f"search {s.get('study')!r} ({s.get('strategy')}): {n} trial{'s' * (n != 1)}, {s['completed']} completed, "
             f"{s['front']} on the Pareto front"]
    if "best_trial" in s:
        runs = f" (mean of {s['best_runs']} runs)" if s.get("best_runs", 1) > 1 else ""
        measures = [f"{k.removeprefix('best_')} {v:.4f}" for k, v in s.items()
                    if k in ("best_reward", "best_accuracy", "best_score") and isinstance(v, int | float)]
        macs = [f"{c.fmt_count(s['best_macs'])} MACs"] if isinstance(s.get("best_macs"), int | float) else []
        lines.append(f"best: trial {s['best_trial']}, " + ", ".join(measures + macs) + runs)
    if isinstance(s.get("reevaluation"), dict) and s["reevaluation"].get("line"):
        lines.append(s["reevaluation"]["line"])
    out = Path(s["out"])
    best = "best_arch.json" if (out / "best_arch.json").is_file() else "best_spec.json"
    again = " and reevaluation.csv" if "reevaluation" in s else ""
    lines.append(f"wrote trials.csv, pareto.json, pareto.png and {best}{again} in {out}; the study is in "
                 f"{s.get('storage')}")
    return "\n".join(lines)
