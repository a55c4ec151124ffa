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
    example = ("effnas supernet train --space nano --dataset shapes --epochs 5 --out runs/sn",
               "the supernet of the nano space on the generated shapes")
    p = sub.add_parser("supernet", help="train a weight-sharing supernet that evaluates any candidate of a space",
                       epilog=c.examples(example))
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
        epilog=c.examples(
            example,
            ("effnas supernet train --config cifar10-cpu --space cifar --sampling sandwich --epochs 30 --out runs/sn2",
             "the sandwich rule with in-place distillation on the real CIFAR-10 preset"),
            ("effnas supernet train --space nano --dataset shapes --epochs 10 --out runs/sn --resume",
             "continue it to 10 epochs; then 'effnas search --estimator supernet:runs/sn' ranks with its weights"),
        ),
    )
    c.add_config_args(t)
    g = t.add_argument_group("what to train (each flag sets the config key in brackets)")
    c.key_flag(g, "--space", key="search.space", help="an MBConv search space (nano, cifar, tiny, efficientnet, "
               "mnasnet, or a .json/.toml file)")
    c.add_data_args(g)
    c.key_flag(g, "--resolution", key="data.resolution", help="input pixels (default: the space's)")
    c.key_flag(g, "--epochs", key="supernet.epochs", help="supernet training epochs")
    c.key_flag(g, "--sampling", key="supernet.sampling", choices=SAMPLINGS,
               help="candidates per step: one uniform, or the sandwich rule with in-place distillation")
    c.key_flag(g, "--batch-size", key="train.batch_size", help="training batch")
    c.key_flag(g, "--lr", key="train.lr", help="peak learning rate (default: per optimizer)")
    c.key_flag(g, "--optimizer", key="train.optimizer", choices=OPTIMIZERS, help="the optimiser")
    c.key_flag(g, "--augment", key="train.augment", help=", ".join(AUGMENTS))
    c.key_flag(g, "--seed", key="run.seed", help="seed of the weights, the split and the sampled candidates")
    c.key_flag(g, "--threads", key="train.threads", help="torch threads (0: the cores other processes leave free, "
               "1 to 4; docs/training.md)")
    c.key_flag(g, "--device", key="train.device", choices=DEVICES, help="where to train (auto: a GPU when present)")
    t.add_argument("--out", metavar="DIR", required=True, help="the supernet's directory")
    t.add_argument("--resume", action="store_true", help="continue the supernet in --out from its last epoch")
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
