"""``effnas finetune``: train a model starting from pretrained weights, with the transfer recipe.

The recipe (``experiments.weights.FINETUNE``) is a training config preset; ``--set KEY=VALUE``
overrides any trainer key. The classifier is re-initialised for the data set's class count.
Exit codes as ``effnas train``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from experiments.training import TrainConfig, train
from experiments.weights import FINETUNE, LAYOUTS


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("finetune", help="fine-tune pretrained weights on a data set (transfer recipe)",
                       description="Start from pretrained weights (an effnas weights file or run directory, or a "
                       "foreign checkpoint with --layout), replace the classifier for the data set's classes and "
                       "train with the fine-tuning recipe. See docs/transfer.md.")
    p.add_argument("--weights", required=True, help="effnas weights .pt, a run directory, or a foreign checkpoint")
    p.add_argument("--layout", choices=LAYOUTS, help="layout of a foreign checkpoint (converted on the fly)")
    p.add_argument("--model", required=True, help="the model the weights are for: a registered name or spec .json")
    p.add_argument("--dataset", required=True, help="as for 'effnas train' (e.g. imagefolder:PATH, cifar10:PATH)")
    p.add_argument("--resolution", type=int, help="input pixels (default: the model's own)")
    p.add_argument("--epochs", type=int, help=f"epochs (recipe: {FINETUNE['epochs']})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (recipe: {FINETUNE['lr']}, SGD)")
    p.add_argument("--batch-size", type=int, help=f"batch size (recipe: {FINETUNE['batch_size']})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other training key, JSON-typed (e.g. --set augment=\"none\" --set ema_decay=0.999)")
    p.add_argument("--out", help="run directory (default: runs/finetune-MODEL-DATASET-TIME)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    init = f"{args.layout}:{args.weights}" if args.layout else args.weights
    if not Path(args.weights).exists():
        raise ValueError(f"weights {args.weights!r} do not exist: give a weights file or run directory")
    out = args.out or (f"runs/finetune-{Path(args.model).stem}-{args.dataset.split(':')[0]}-"
                       f"{time.strftime('%Y%m%d-%H%M%S')}")
    d: dict[str, Any] = {**FINETUNE, "model": args.model, "dataset": args.dataset, "init_from": init,
                         "seed": args.seed, "out_dir": out, "quiet": args.quiet}
    for flag in ("resolution", "epochs", "lr", "batch_size", "threads"):
        if getattr(args, flag) is not None:
            d[flag] = getattr(args, flag)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r} is not KEY=VALUE")
        try:
            d[key] = json.loads(value)
        except json.JSONDecodeError:
            d[key] = value  # a bare string, e.g. --set augment=none
    return TrainConfig.from_dict(d)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
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
        print(f"{m['model']} from {cfg.init_from} ({head}) on {m['dataset']} at {m['resolution']} px: "
              f"test accuracy {m['test_accuracy']:.4f}, {m['epochs_completed']} epochs in {m['train_seconds']:.1f} s; "
              f"run in {cfg.out_dir}")
    return 0
