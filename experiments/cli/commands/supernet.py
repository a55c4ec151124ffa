"""``effnas supernet train``: train a weight-sharing supernet of a search space (docs/supernet.md).

Exit codes: 0 when the supernet trained; 2 for bad input (a space that cannot share weights, an
existing supernet in --out without --resume, ...).
"""

from __future__ import annotations

import argparse
import json

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.config.choices import AUGMENTS, DEVICES, OPTIMIZERS, SAMPLINGS
from effnas.experiments.data.datasets import check_dataset
from effnas.experiments.estimators.supernet import train_supernet
from effnas.experiments.train import guard


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("supernet", help="train a weight-sharing supernet that evaluates any candidate of a space")
    ssub = p.add_subparsers(dest="supernet_command", metavar="ACTION", required=True)
    t = ssub.add_parser(
        "train", help="train the supernet of an MBConv space (single-path one-shot; resumable)",
        description="Train one network that contains every candidate of --space (widest filters, largest "
        "expansion, kernel, SE and depth; a candidate is a slice of it) with the [train] recipe on [data]: "
        "each step trains one uniformly drawn candidate (--sampling uniform) or the largest, the smallest and "
        "random ones with in-place distillation (--sampling sandwich). A search then ranks candidates with "
        "--estimator supernet:DIR (inherited weights, BatchNorm recalibrated, validation accuracy as the trial's "
        "score). Writes "
        "DIR/supernet.pt after every epoch, config.json and epochs.csv.",
    )
    c.add_config_args(t)
    g = t.add_argument_group("what to train (each flag sets the config key in brackets)")
    c.key_flag(g, "--space", key="search.space", help="an MBConv search space (nano, cifar, tiny, efficientnet, "
               "mnasnet, or a .json/.toml file)")
    c.add_data_args(g)
    c.key_flag(g, "--resolution", key="data.resolution", type=int, help="input pixels (default: the space's)")
    c.key_flag(g, "--epochs", key="supernet.epochs", type=int, help="supernet training epochs (default 10)")
    c.key_flag(g, "--sampling", key="supernet.sampling", choices=SAMPLINGS,
               help="candidates per step: one uniform (default) or the sandwich rule with in-place distillation")
    c.key_flag(g, "--batch-size", key="train.batch_size", type=int, help="training batch (default 128)")
    c.key_flag(g, "--lr", key="train.lr", type=float, help="peak learning rate (default: per optimizer)")
    c.key_flag(g, "--optimizer", key="train.optimizer", choices=OPTIMIZERS, help="default sgd")
    c.key_flag(g, "--augment", key="train.augment", help=", ".join(AUGMENTS))
    c.key_flag(g, "--seed", key="run.seed", type=int, help="seed of the weights, the split and the sampled "
               "candidates (default 0)")
    c.key_flag(g, "--threads", key="train.threads", type=int, help="torch threads (default: all cores)")
    c.key_flag(g, "--device", key="train.device", choices=DEVICES, help="default auto")
    t.add_argument("--out", required=True, help="the supernet's directory")
    t.add_argument("--resume", action="store_true", help="continue the supernet in --out from its last epoch")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the last epoch's record as JSON")
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    cfg = c.experiment(args)
    check_dataset(cfg.data.dataset)
    guard.out_dir(args.out)
    with guard.Lock(args.out):
        m = train_supernet(cfg, args.out, resume=args.resume, progress=not args.quiet)
    if args.json:
        print(json.dumps(m, indent=2))
    else:
        print(f"supernet of {cfg.search.space} trained for {m['epochs']} epochs ({m.get('subnets', 0)} candidates "
              f"in the last epoch, train loss {m.get('train_loss', float('nan')):.3f}); "
              f"search with --estimator supernet:{args.out}")
    return 0
