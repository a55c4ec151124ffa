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

from effnas.experiments.cli.commands import _common as c
from effnas.experiments.config.choices import AUGMENTS, DEVICES, OPTIMIZERS, PRECISIONS, TRACKERS
from effnas.experiments.config.recipes import RECIPE_NAMES
from effnas.experiments.config.schema import JobConfig
from effnas.experiments.data.datasets import check_dataset
from effnas.experiments.pipeline import plan
from effnas.experiments.train import guard
from effnas.experiments.train.devices import device_for
from effnas.experiments.train.loop import train
from effnas.search_spaces import load_spec
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train", help="train a model on a data set (resumable run directory, progress bar)",
        description="Train a registered model or a spec JSON on a data set (in memory, or streamed from an "
        "image folder), at any resolution, with the "
        "[data] and [train] sections of a config (--config paper: EfficientNet section 5.2's recipe). "
        "Writes config.json, epochs.jsonl, metrics.json and atomic checkpoints to --out.",
        epilog=c.examples(
            ("effnas train --model tiny --dataset digits --out runs/tiny",
             "the tiny model on scikit-learn's digits: ~97-99 % test accuracy in a few minutes on a CPU"),
            ("effnas train --model efficientnet_b0 --dataset cifar10:/data/cifar-10-batches-py --resolution 32 "
             "--epochs 10", "EfficientNet-B0 on a local CIFAR-10 at its native 32 px"),
            ("effnas train --config paper --model efficientnet_b0 --dataset imagefolder:/data/imagenet",
             "the paper's recipe (EfficientNet section 5.2) on an ImageNet folder"),
            ("effnas train --model tiny --dataset digits --out runs/tiny --resume",
             "continue an interrupted run from its last epoch"),
        ),
    )
    c.add_config_args(p)
    g = p.add_argument_group("what to train (each flag sets the config key in brackets)")
    c.key_flag(g, "--model", key="train.model", help="a registered name (see 'effnas models list') or a spec .json")
    c.add_data_args(g)
    c.key_flag(g, "--resolution", key="data.resolution", help="input pixels (default: the model's own)")
    c.key_flag(g, "--epochs", key="train.epochs", help="epochs to train")
    c.key_flag(g, "--batch-size", key="train.batch_size", help="training batch")
    c.key_flag(g, "--lr", key="train.lr", help="peak learning rate (default: per optimizer, scaled with the batch)")
    c.key_flag(g, "--optimizer", key="train.optimizer", choices=OPTIMIZERS, help="the optimiser")
    c.key_flag(g, "--recipe", key="train.recipe", choices=RECIPE_NAMES, help="defaults of the keys left unset "
               "(fast: a short-budget recipe for small images; docs/training.md)")
    c.key_flag(g, "--augment", key="train.augment", help=", ".join(AUGMENTS))
    c.key_flag(g, "--seed", key="run.seed", help="seed of the weights, the split and the batch order")
    c.key_flag(g, "--max-minutes", key="train.max_minutes", help="stop after the epoch that exceeds this "
               "(default: no limit)")
    c.key_flag(g, "--precision", key="train.precision", choices=PRECISIONS, help="autocast (auto: fp32 on CPU)")
    c.key_flag(g, "--threads", key="train.threads", help="torch threads (0: the cores other processes leave free, "
               "1 to 4; docs/training.md)")
    c.key_flag(g, "--track", key="train.track", choices=TRACKERS, help="where each epoch's metrics go to watch the "
               "run live (tensorboard: event files in --out; docs/experiments.md)")
    c.key_flag(g, "--device", key="train.device", choices=DEVICES, help="where to train (auto: a GPU when present)")
    c.key_flag(g, "--devices", key="train.devices", help="data-parallel processes, one per GPU "
               "(DistributedDataParallel; gloo on CPU); --batch-size is split between them")
    c.key_flag(g, "--accumulate", key="train.accumulate", help="micro-batches accumulated per optimiser step")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/MODEL-DATASET-rRES-sSEED-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> JobConfig:
    cfg = c.experiment(args)
    if args.resume and not args.out:
        raise UserError("--resume needs --out DIR: the run directory to continue")
    out = args.out
    if not out:
        stem = Path(cfg.train.model).stem
        res = f"-r{cfg.data.resolution}" if cfg.data.resolution else ""
        tag = cfg.data.dataset.split(":")[0]
        out = f"runs/{stem}-{tag}{res}-s{cfg.run.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    return JobConfig.make(cfg.data, cfg.train, seed=cfg.run.seed, out_dir=out, resume=args.resume, quiet=args.quiet)


def preflight(cfg: JobConfig) -> None:
    """Before training: the data set's layout, the run directory, and that the model fits in memory
    at its resolution and batch (one-line errors, exit code 2)."""
    check_dataset(cfg.dataset)
    assert cfg.out_dir is not None
    guard.out_dir(cfg.out_dir)
    model = cfg.model if isinstance(cfg.model, str) else None
    if model is not None:
        n = plan.NUM_CLASSES.get(cfg.dataset.split(":", 1)[0])
        spec = load_spec(model, num_classes=n, resolution=cfg.resolution)
        device = device_for(cfg).type
        guard.check_memory(spec, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, device=device)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    preflight(cfg)
    with guard.Lock(cfg.out_dir):
        m = train(cfg)
    if args.json:
        print(json.dumps(m, indent=2))
    status = m["status"]
    if status == "diverged":
        print(f"effnas: run diverged at epoch {m['diverged_epoch']} (non-finite loss; lower --lr); "
              f"results in {cfg.out_dir}", file=sys.stderr)
        return 1
    if status in ("failed", "oom"):
        print(f"effnas: run failed: {m['error']}; results in {cfg.out_dir}", file=sys.stderr)
        return 1
    if not args.json:
        reused = " (already completed; not retrained)" if m.get("reused") else ""
        print(f"{m['model']} on {m['dataset']} at {m['resolution']} px: test accuracy {m['test_accuracy']:.4f}, "
              f"val {m['val_accuracy']:.4f}, {m['epochs_completed']} epochs in {m['train_seconds']:.1f} s "
              f"({m['images_per_second']:.0f} img/s); {m['params']:,} params, {m['macs'] / 1e6:.2f} M MACs; "
              f"run in {cfg.out_dir}{reused}")
    return 0
