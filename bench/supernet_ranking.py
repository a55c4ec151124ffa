"""How well do cheap estimators rank candidates of an MBConv space? Supernets and zero-cost proxies
against stand-alone training, on real CIFAR-10.

    python bench/supernet_ranking.py --out runs/supernet-ranking            # resumable: re-run to continue
    python bench/supernet_ranking.py --out runs/supernet-ranking --report docs/results/cheap_search
    python bench/results/cheap_search.py                                    # the page

Steps, each resumable (finished parts are read back, not redone):

1. the supernets of ``--space`` (``effnas supernet train`` with the recipe of ``--config``'s
   ``[data]`` / ``[train]``): for every ``S:E`` of ``--supernets``, one supernet trained E epochs
   with sampling S into ``OUT/supernet-S-eE``;
2. ``--candidates`` random candidates of the space (seed ``--seed``), each trained stand-alone
   with the same recipe, data and split for ``--standalone-epochs`` epochs (``OUT/standalone/``);
   their final validation accuracy is the ground truth (``--repeat-seed N``: each trained again
   with seed N, which measures how well one stand-alone run ranks another);
3. every candidate evaluated by every supernet (inherited weights, BatchNorm recalibrated on
   ``supernet.calibration_batches`` training batches, validation accuracy) and scored by every
   zero-cost proxy on one minibatch of ``train.batch_size`` training images (``effnas.nas.estimators.zerocost``),
   plus MACs and parameters as free baselines; CPU seconds per candidate for each.

``--report DIR`` writes ``ranking.csv`` (every candidate's numbers) and ``run.json`` (settings, seeds,
machine, torch, supernet training time, the command); bench/results/cheap_search.py computes the
page from them (Kendall tau and Spearman rho of each estimator against stand-alone accuracy with
bootstrap intervals, cost per candidate and candidates per hour on this machine, one thread). Runs
with ``threads = 1`` (the other core stays free).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from effnas.experiments.config.schema import JobConfig, load_config  # noqa: E402
from effnas.experiments.data.datasets import load_dataset, split
from effnas.experiments.estimators.proxy import minibatch
from effnas.experiments.estimators.supernet import SupernetTrainer, train_supernet  # noqa: E402
from effnas.experiments.train.loop import train_fn
from effnas.nas.estimators import zerocost
from effnas.nas.estimators.supernet import random_params  # noqa: E402
from effnas.nas.space import get_mbconv_space  # noqa: E402
from effnas.search_spaces import NetworkSpec, build

PROXIES = ("synflow", "naswot", "jacob_cov", "grad_norm", "snip", "fisher")


def config(args: argparse.Namespace) -> Any:
    cfg = load_config(args.config, overrides=[
        f"search.space={args.space}", f"data.data_fraction={args.data_fraction}",
        f"train.epochs={args.standalone_epochs}", "train.threads=1", f"run.seed={args.split_seed}"])
    return cfg


def resolution(cfg: Any) -> int:
    return int(cfg.data.resolution or get_mbconv_space(cfg.search.space).resolution)


def candidates(cfg: Any, n: int, seed: int, num_classes: int) -> list[dict[str, Any]]:
    space = get_mbconv_space(cfg.search.space)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        params = random_params(space, rng)
        spec = space.to_spec(params, num_classes=num_classes, resolution=resolution(cfg), name=f"cand{i:02d}")
        out.append({"name": spec.name, "spec": spec.to_dict()})
    return out


def standalone(cfg: Any, cands: list[dict[str, Any]], out: Path) -> pd.DataFrame:
    rows = []
    for c in cands:
        job = JobConfig.make(cfg.data, cfg.train, model=c["spec"], seed=cfg.run.seed,
                             out_dir=str(out / "standalone" / c["name"]), resume=True, quiet=True)
        t0, c0 = time.perf_counter(), time.process_time()
        m = train_fn(job.to_dict())
        rows.append({"name": c["name"], "standalone_val": m["val_accuracy"], "standalone_test": m["test_accuracy"],
                     "macs": m["macs"], "params": m["params"], "standalone_seconds": m["train_seconds"],
                     "status": m["status"]})
        print(f"{c['name']}: val {m['val_accuracy']:.4f} ({m['macs'] / 1e6:.2f} M MACs, "
              f"{time.perf_counter() - t0:.0f} s, {time.process_time() - c0:.0f} s CPU)", flush=True)
    return pd.DataFrame(rows)


def supernet_scores(cfg: Any, cands: list[dict[str, Any]], path: Path, tag: str) -> pd.DataFrame:
    est = SupernetTrainer(str(path), space=get_mbconv_space(cfg.search.space))
    conf = {"dataset": cfg.data.dataset, "seed": cfg.run.seed, "val_fraction": cfg.data.val_fraction,
            "path": cfg.data.path, "strict": cfg.data.strict, "crop_pct": cfg.data.crop_pct,
            "batch_size": cfg.train.batch_size, "eval_batch_size": cfg.train.eval_batch_size, "threads": 1}
    est._setup(conf)  # data and checkpoint: once, not per candidate
    rows = []
    for c in cands:
        c0 = time.process_time()
        acc = est.evaluate(NetworkSpec.from_dict(c["spec"]), conf)
        rows.append({"name": c["name"], tag: acc, f"{tag}_cpu_s": time.process_time() - c0})
    return pd.DataFrame(rows)


def proxy_scores(cfg: Any, cands: list[dict[str, Any]]) -> pd.DataFrame:
    x, y, _ = minibatch(cfg.data.dataset, resolution=resolution(cfg), batch_size=cfg.train.batch_size,
                        seed=cfg.run.seed, val_fraction=cfg.data.val_fraction, data_fraction=cfg.data.data_fraction)
    rows = []
    for c in cands:
        row: dict[str, Any] = {"name": c["name"]}
        for p in PROXIES:
            torch.manual_seed(cfg.run.seed)
            net = build(NetworkSpec.from_dict(c["spec"]))
            c0 = time.process_time()
            row[p] = zerocost.score(net, x, y, p)
            row[f"{p}_cpu_s"] = time.process_time() - c0
        rows.append(row)
    return pd.DataFrame(rows)


def report(df: pd.DataFrame, meta: dict[str, Any], out: Path) -> str:
    """Write ``ranking.csv`` (every candidate's numbers) and ``run.json`` (what the run was: settings,
    seeds, machine, torch, supernet training minutes, the command) into ``out``; the page
    (docs/results/cheap_search.md) is computed from them by bench/results/cheap_search.py."""
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "ranking.csv", index=False)
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    return (f"wrote {out / 'ranking.csv'} and {out / 'run.json'} ({len(df)} candidates); the page: "
            "python bench/results/cheap_search.py")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="working directory (resumable)")
    p.add_argument("--config", default="experiments/config/presets/cifar10-cpu.toml", help="recipe: [data] and [train]")
    p.add_argument("--space", default="cifar")
    p.add_argument("--data-fraction", type=float, default=0.25, help="share of the training pool (default 0.25)")
    p.add_argument("--candidates", type=int, default=30)
    p.add_argument("--standalone-epochs", type=int, default=6)
    p.add_argument("--supernets", default="uniform:6,uniform:30,sandwich:8",
                   help="comma-separated SAMPLING:EPOCHS, one supernet each (default uniform:6,uniform:30,sandwich:8)")
    p.add_argument("--repeat-seed", type=int, help="train every candidate again with this run.seed (another "
                   "initialisation, data order and validation split): how well one stand-alone run ranks another")
    p.add_argument("--seed", type=int, default=1, help="seed of the candidate sample")
    p.add_argument("--split-seed", type=int, default=0, help="run.seed: weights and the train/val split")
    p.add_argument("--report", help="write ranking.csv and report.md here")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config(args)

    ds = load_dataset(cfg.data.dataset)
    cands = candidates(cfg, args.candidates, args.seed, ds.num_classes)
    (out / "candidates.json").write_text(json.dumps(cands, indent=1))
    tags = []
    train_cost = {}
    for item in args.supernets.split(","):
        sampling, _, epochs = item.partition(":")
        e = int(epochs)
        c = dataclasses.replace(cfg, supernet=dataclasses.replace(cfg.supernet, epochs=e, sampling=sampling))
        d = out / f"supernet-{sampling}-e{e}"
        t0 = time.perf_counter()
        m = train_supernet(c, d, resume=True, progress=False)
        print(f"supernet {sampling} {e} epochs: loss {m.get('train_loss', float('nan')):.3f} "
              f"({time.perf_counter() - t0:.0f} s this call)", flush=True)
        tags.append((f"supernet_{sampling}_e{e}", d))
        train_cost[tags[-1][0]] = float(pd.read_csv(d / "epochs.csv")["seconds"].sum())
    df = standalone(cfg, cands, out)
    if args.repeat_seed is not None:
        again = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, seed=args.repeat_seed))
        rep = standalone(again, cands, out / f"seed{args.repeat_seed}")
        rep = rep[["name", "standalone_val", "standalone_seconds"]]
        tag = f"standalone_seed{args.repeat_seed}"
        df = df.merge(rep.rename(columns={"standalone_val": tag, "standalone_seconds": f"{tag}_cpu_s"}), on="name")
    for tag, d in tags:
        df = df.merge(supernet_scores(cfg, cands, d, tag), on="name")
    df = df.merge(proxy_scores(cfg, cands), on="name")
    df["neg_macs"] = -df["macs"].astype(float)
    tr, va, _ = split(ds, seed=cfg.run.seed, val_fraction=cfg.data.val_fraction, data_fraction=cfg.data.data_fraction)
    meta = {"source": "written by bench/supernet_ranking.py with ranking.csv", "space": cfg.search.space,
            "resolution": resolution(cfg), "train_images": len(tr), "val_images": len(va),
            "data_fraction": cfg.data.data_fraction, "val_fraction": cfg.data.val_fraction,
            "standalone_epochs": args.standalone_epochs, "config": args.config, "candidates": args.candidates,
            "candidate_seed": args.seed, "split_seed": args.split_seed, "repeat_seed": args.repeat_seed,
            "supernets": args.supernets, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "gpu": "none" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
            "torch": torch.__version__, "threads": 1, "load": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
            "train_minutes": {k: v / 60 for k, v in train_cost.items()}, "train_minutes_note": "wall-clock",
            "command": " ".join(["python", *sys.argv])}
    text = report(df, meta, Path(args.report) if args.report else out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
