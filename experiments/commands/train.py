"""``effnas train``: train one model on one data set, with a progress bar and a run directory.

Exit codes: 0 when the run completed; 1 when it diverged (NaN/inf loss) or failed (an error
while training), with one line on stderr naming the status, the epoch or error, and the
run directory; 2 for bad input (unknown model, missing data path, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from experiments.training import PRESETS, TrainConfig, train


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train", help="train a model on a data set (resumable run directory, progress bar)",
        description="Train a registered model or a spec JSON on a data set held in memory, at any resolution. "
        "Writes config.json, epochs.jsonl, metrics.json and atomic checkpoints to --out.",
    )
    p.add_argument("--model", required=True, help="a registered name (see 'effnas models list') or a spec .json file")
    p.add_argument("--dataset", required=True,
                   help="digits, mnist5k, shapes, cifar10:PATH, cifar100:PATH or imagefolder:PATH")
    p.add_argument("--resolution", type=int, help="input pixels (default: the model's own)")
    p.add_argument("--epochs", type=int, help="epochs to train (default 30)")
    p.add_argument("--batch-size", type=int, help="training batch (default 128)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: per optimizer, scaled with the batch)")
    p.add_argument("--optimizer", choices=("sgd", "adamw", "rmsprop"), help="default sgd (Nesterov)")
    p.add_argument("--augment", help="auto, none, crop, crop_flip, rrc_flip, randaugment, autoaugment")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="a named recipe; 'paper' is EfficientNet section 5.2 (RMSProp, step decay, EMA, AutoAugment)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--data-fraction", type=float, help="share of the training split used (proxy training)")
    p.add_argument("--max-minutes", type=float, help="stop after the epoch that exceeds this budget")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="autocast; default: fp32 on CPU")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--out", help="run directory (default: runs/MODEL-DATASET-rRES-sSEED-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


_FLAGS = {"resolution": "resolution", "epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
          "optimizer": "optimizer", "augment": "augment", "seed": "seed", "data_fraction": "data_fraction",
          "max_minutes": "max_minutes", "precision": "precision", "threads": "threads", "device": "device"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides: dict[str, Any] = {"model": args.model, "dataset": args.dataset, "resume": args.resume,
                                 "quiet": args.quiet}
    for flag, key in _FLAGS.items():
        v = getattr(args, flag)
        if v is not None:
            overrides[key] = v
    if args.resume and not args.out:
        raise ValueError("--resume needs --out DIR: the run directory to continue")
    if args.out:
        overrides["out_dir"] = args.out
    else:
        stem = Path(args.model).stem
        res = f"-r{args.resolution}" if args.resolution else ""
        tag = args.dataset.split(":")[0]
        overrides["out_dir"] = f"runs/{stem}-{tag}{res}-s{args.seed or 0}-{time.strftime('%Y%m%d-%H%M%S')}"
    return TrainConfig.preset(args.preset, **overrides)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    m = train(cfg)
    if args.json:
        print(json.dumps(m, indent=2))
    status = m["status"]
    if status == "diverged":
        print(f"effnas: run diverged at epoch {m['diverged_epoch']} (non-finite loss; lower --lr); "
              f"results in {cfg.out_dir}", file=sys.stderr)
        return 1
    if status == "failed":
        print(f"effnas: run failed: {m['error']}; results in {cfg.out_dir}", file=sys.stderr)
        return 1
    if not args.json:
        reused = " (already completed; not retrained)" if m.get("reused") else ""
        print(f"{m['model']} on {m['dataset']} at {m['resolution']} px: test accuracy {m['test_accuracy']:.4f}, "
              f"val {m['val_accuracy']:.4f}, {m['epochs_completed']} epochs in {m['train_seconds']:.1f} s "
              f"({m['images_per_second']:.0f} img/s); {m['params']:,} params, {m['macs'] / 1e6:.2f} M MACs; "
              f"run in {cfg.out_dir}{reused}")
    return 0
