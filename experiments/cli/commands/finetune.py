"""``effnas finetune``: train a model starting from pretrained weights, with the transfer recipe.

The recipe (``effnas.experiments.weights.convert.FINETUNE``) gives the ``[train]`` defaults; flags and
``--set section.key=value`` override any key, as in every command. The classifier is
re-initialised for the data set's class count. ``--freeze-backbone`` trains only the classifier
(the backbone, BatchNorm statistics included, stays as loaded); ``--lr-backbone-mult M`` gives the
backbone M x the classifier's learning rate.
``--resume`` continues an interrupted run in ``--out`` from its ``last.pt``, as ``effnas train --resume``.
Exit codes as ``effnas train``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.cli.commands.train import preflight
from effnas.experiments.config.choices import TRACKERS
from effnas.experiments.config.schema import ExperimentConfig, JobConfig
from effnas.experiments.train import guard
from effnas.experiments.train.loop import train
from effnas.experiments.weights.convert import FINETUNE, LAYOUTS
from effnas.search_spaces.common.errors import UserError

#: The fine-tuning recipe as the config the flags start from (their shown defaults).
RECIPE = ExperimentConfig().with_values({f"train.{k}": v for k, v in FINETUNE.items()})


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("finetune", help="fine-tune pretrained weights on a data set (transfer recipe)",
                       description="Start from pretrained weights (an effnas weights file or run directory, or a "
                       "foreign checkpoint with --layout), replace the classifier for the data set's classes and "
                       "train with the fine-tuning recipe (weights.convert.FINETUNE as [train] defaults; "
                       "--config FILE replaces them). See docs/transfer.md.",
                       epilog=c.examples(
                           ("effnas finetune --weights lite0.pt --model efficientnet_lite0 --dataset "
                            "imagefolder:/data/pets --resolution 224 --out runs/pets",
                            "ImageNet weights (from 'effnas weights import') on a folder of pet photos"),
                           ("effnas finetune --weights lite0.pt --model efficientnet_lite0 --dataset "
                            "imagefolder:/data/pets --freeze-backbone --epochs 3",
                            "train only the new classifier"),
                           ("effnas finetune --weights runs/tiny --model tiny --dataset mnist5k --lr-backbone-mult 0.1",
                            "from a run directory of 'effnas train', the backbone at a tenth of the learning rate"),
                       ))
    c.add_config_args(p)
    p.add_argument("--weights", required=True, help="effnas weights .pt, a run directory, or a foreign checkpoint "
                   "[train.init_from]")
    p.add_argument("--layout", choices=LAYOUTS, help="layout of a foreign checkpoint, converted on the fly (default: "
                   "an effnas weights file or run directory)")
    g = p.add_argument_group("what to train (each flag sets the config key in brackets; defaults: the recipe)")
    c.key_flag(g, "--model", key="train.model", required=True, help="the model the weights are for: a registered "
               "name or spec .json", defaults=RECIPE)
    c.key_flag(g, "--dataset", key="data.dataset", required=True, help="as for 'effnas train' (e.g. "
               "imagefolder:PATH, cifar10:PATH)", defaults=RECIPE)
    c.key_flag(g, "--resolution", key="data.resolution", help="input pixels (default: the model's own)")
    c.key_flag(g, "--epochs", key="train.epochs", help="epochs", defaults=RECIPE)
    c.key_flag(g, "--lr", key="train.lr", help="peak learning rate (SGD)", defaults=RECIPE)
    c.key_flag(g, "--batch-size", key="train.batch_size", help="batch", defaults=RECIPE)
    h = g.add_mutually_exclusive_group()
    h.add_argument("--freeze-backbone", dest="train.freeze_backbone", action="store_const", const=True, default=None,
                   help="train only the classifier; the backbone (weights and BatchNorm statistics) stays as loaded "
                   "[train.freeze_backbone]")
    c.key_flag(h, "--lr-backbone-mult", key="train.lr_backbone_mult", metavar="M",
               help="the backbone's learning rate is M x the classifier's (e.g. 0.1)", defaults=RECIPE)
    c.key_flag(g, "--seed", key="run.seed", help="seed of the new classifier, the split and the batch order",
               defaults=RECIPE)
    c.key_flag(g, "--threads", key="train.threads", help="torch threads (0: the cores other processes leave free, "
               "1 to 4; docs/training.md)", defaults=RECIPE)
    c.key_flag(g, "--track", key="train.track", choices=TRACKERS, help="where each epoch's metrics go to watch the "
               "run live (tensorboard: event files in --out; docs/experiments.md)", defaults=RECIPE)
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/finetune-MODEL-DATASET-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> JobConfig:
    if args.resume and not args.out:
        raise UserError("--resume needs --out DIR: the run directory to continue")
    if not Path(args.weights).exists():
        raise UserError(f"weights {args.weights!r} do not exist: give a weights file or run directory")
    init = f"{args.layout}:{args.weights}" if args.layout else args.weights
    cfg = c.experiment(args, defaults=RECIPE).with_values({"train.init_from": init})
    out = args.out or (f"runs/finetune-{Path(cfg.train.model).stem}-{cfg.data.dataset.split(':')[0]}-"
                       f"{time.strftime('%Y%m%d-%H%M%S')}")
    return JobConfig.make(cfg.data, cfg.train, seed=cfg.run.seed, out_dir=out, resume=args.resume,
                          quiet=args.quiet)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    preflight(cfg)
    with guard.Lock(cfg.out_dir):
        m = train(cfg)
    if args.json:
        print(json.dumps(m, indent=2))
    if m["status"] != "completed":
        print(f"effnas: fine-tuning {m['status']}: {m.get('error') or m.get('diverged_epoch')}; results in "
              f"{cfg.out_dir}", file=sys.stderr)
        return 1
    if not args.json:
        init = m["init_from"]
        head = "new classifier" if init["classifier_replaced"] else "classifier kept"
        if cfg.freeze_backbone:
            head += f", backbone frozen: {m['trainable_params']:,} trainable parameters"
        elif cfg.lr_backbone_mult != 1.0:
            head += f", backbone lr x{cfg.lr_backbone_mult:g}"
        print(f"{m['model']} from {cfg.init_from} ({head}) on {m['dataset']} at {m['resolution']} px: "
              f"test accuracy {m['test_accuracy']:.4f}, {m['epochs_completed']} epochs in {m['train_seconds']:.1f} s; "
              f"run in {cfg.out_dir}")
    return 0
