"""``effnas data info|pack``: what a data set holds, and packing an image folder into tar shards.

``info DATASET`` prints the classes, images per split (and per class), the distribution of
image sizes and the files that cannot be decoded. Image folders and shards are decoded file by
file (``--sample N`` decodes N files per split, drawn with a fixed seed, instead of all: the
counts stay exact, sizes and bad files are then those of the sample). ``pack imagefolder:PATH
--out DIR`` writes WebDataset tar shards that ``--dataset shards:DIR`` streams
(:mod:`effnas.experiments.data.files.shards`).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from effnas.experiments.cli.commands._common import examples
from effnas.experiments.data import datasets as data_mod
from effnas.experiments.data.files.imagefolder import BadImage, FileSplit, index_imagefolder, looks_like_imagefolder
from effnas.experiments.data.files.shards import META, index_shards, pack
from effnas.experiments.train import guard
from effnas.search_spaces.common.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    info_examples = (("effnas data info digits", "scikit-learn's digits: classes, images per split, sizes"),
                     ("effnas data info imagefolder:/data/imagenet --sample 2000",
                      "an image folder, decoding 2000 files per split"))
    pack_example = ("effnas data pack imagefolder:/data/imagenet --out /data/inet-shards",
                    "WebDataset tar shards that --dataset shards:/data/inet-shards streams")
    p = sub.add_parser("data", help="inspect a data set, or pack an image folder into tar shards",
                       epilog=examples(info_examples[0], pack_example))
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    pi = dsub.add_parser(
        "info", help="classes, images per split, image sizes and bad files of a data set",
        description="Classes, images per split and per class, the image-size distribution and the files that "
        "cannot be decoded, of any --dataset name (image folders and shards are decoded file by file).",
        epilog=examples(*info_examples))
    pi.add_argument("dataset", help="shapes, digits, mnist5k, cifar10:PATH, cifar100:PATH, imagefolder:PATH, "
                    "shards:DIR")
    pi.add_argument("--sample", type=int, metavar="N", help="decode N files per split (drawn with a fixed seed) "
                    "instead of all (default: all)")
    pi.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    pi.set_defaults(func=run_info)
    pp = dsub.add_parser(
        "pack", help="write an image folder as WebDataset tar shards (read with --dataset shards:DIR)",
        description="Write the image files of an image folder (train/ and val/ or test/, or class folders) "
        "unchanged into tar shards in the WebDataset layout (KEY.jpg + KEY.cls pairs, shuffled order) plus "
        "dataset.json; --dataset shards:DIR streams them.",
        epilog=examples(pack_example, ("effnas data pack cifar10:/data/cifar10-jpeg --out /data/c10-shards "
                                       "--shard-mb 64", "smaller shards")))
    pp.add_argument("dataset", help="imagefolder:PATH (or cifar10:PATH / cifar100:PATH of an image folder)")
    pp.add_argument("--out", metavar="DIR", required=True, help="a new or empty directory for the shards")
    pp.add_argument("--shard-mb", type=float, default=256.0, metavar="MB",
                    help="shard size in MB (default: %(default)g)")
    pp.set_defaults(func=run_pack)


def _folder_root(ref: str) -> str | None:
    name, root = data_mod.parse_ref(ref)
    if root is not None and (name == "imagefolder" or looks_like_imagefolder(root)):
        return root
    return None


def _split_info(split: FileSplit, classes: tuple[str, ...], sample: int | None) -> dict[str, Any]:
    n = len(split)
    counts = np.bincount(split.labels.numpy(), minlength=len(classes))
    pick = range(n) if sample is None or sample >= n else sorted(
        np.random.default_rng(0).choice(n, size=sample, replace=False).tolist())
    sizes: Counter[tuple[int, int]] = Counter()
    bad: list[str] = []
    for i in pick:
        try:
            h, w = split.read(i).shape[:2]
        except BadImage:
            bad.append(split.path(i))
            continue
        sizes[(w, h)] += 1
    return {"images": n, "decoded": len(pick), "per_class": {"min": int(counts.min()), "max": int(counts.max())},
            **_size_summary(sizes), "bad_files": bad}


def _size_summary(sizes: Counter[tuple[int, int]]) -> dict[str, Any]:
    if not sizes:
        return {"sizes": {}}
    short = np.repeat([min(s) for s in sizes], list(sizes.values()))
    common = {f"{w}x{h}": c for (w, h), c in sizes.most_common(5)}
    return {"shorter_side": {q: int(np.percentile(short, p)) for q, p in
                             (("min", 0), ("p10", 10), ("median", 50), ("p90", 90), ("max", 100))},
            "distinct_sizes": len(sizes), "sizes": common}


def info(ref: str, *, sample: int | None = None) -> dict[str, Any]:
    """The report of ``effnas data info`` as a dict."""
    name, root = data_mod.parse_ref(ref)
    if name == "shards" or _folder_root(ref) is not None:
        assert root is not None
        if name == "shards":
            train, evaluation, classes = index_shards(root)
            eval_name = "val" if "val" in json.loads((Path(root) / META).read_text())["splits"] else "test"
        else:
            train, evaluation, classes = index_imagefolder(root)
            eval_name = Path(evaluation.root).name if evaluation is not None else "test"
        splits = {"train": train} | ({eval_name: evaluation} if evaluation is not None else {})
        out = {name_: _split_info(s, classes, sample) for name_, s in splits.items()}
        if evaluation is None:
            out["train"]["note"] = "no evaluation split: 20 % of every class is carved as the test split"
        return {"dataset": ref, "storage": "files", "classes": list(classes), "splits": out}
    ds = data_mod.load_dataset(ref)
    out = {}
    for split_name, s in (("train", ds.pool), ("test", ds.test)):
        assert isinstance(s, data_mod.Split)
        counts = np.bincount(s.labels.numpy(), minlength=ds.num_classes)
        h, w = s.images.shape[-2:]
        out[split_name] = {"images": len(s), "per_class": {"min": int(counts.min()), "max": int(counts.max())},
                           **_size_summary(Counter({(int(w), int(h)): len(s)})), "channels": int(s.images.shape[1]),
                           "bad_files": []}
    return {"dataset": ref, "storage": "memory", "classes": list(ds.classes), "splits": out}


def run_info(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise UserError(f"--sample must be >= 1, got {args.sample}")
    report = info(args.dataset, sample=args.sample)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    classes = report["classes"]
    shown = ", ".join(classes[:10]) + (f", ... ({len(classes)} in all)" if len(classes) > 10 else "")
    print(f"{report['dataset']}: {len(classes)} classes ({shown})")
    for name, s in report["splits"].items():
        decoded = "" if s.get("decoded", s["images"]) == s["images"] else f", {s['decoded']:,} decoded"
        print(f"  {name}: {s['images']:,} images ({s['per_class']['min']:,}-{s['per_class']['max']:,} per class"
              f"{decoded})")
        if "shorter_side" in s:
            q = s["shorter_side"]
            print(f"    shorter side: min {q['min']}, p10 {q['p10']}, median {q['median']}, p90 {q['p90']}, "
                  f"max {q['max']} px; {s['distinct_sizes']:,} distinct sizes, most common: "
                  + ", ".join(f"{k} ({v:,})" for k, v in s["sizes"].items()))
        shown = s["bad_files"] if args.verbose else s["bad_files"][:20]
        print(f"    bad files: {len(s['bad_files'])}" + "".join(f"\n      {f}" for f in shown)
              + (f"\n      ... and {len(s['bad_files']) - len(shown)} more (--verbose or --json lists them all)"
                 if len(shown) < len(s["bad_files"]) else ""))
        if "note" in s:
            print(f"    ({s['note']})")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    root = _folder_root(args.dataset)
    if root is None:
        raise UserError(f"data pack reads image folders, not {args.dataset!r}: give imagefolder:PATH")
    if args.shard_mb <= 0:
        raise UserError(f"--shard-mb must be > 0, got {args.shard_mb}")

    with guard.Lock(guard.out_dir(args.out), what="shard directory"):
        meta = pack(root, args.out, shard_mb=args.shard_mb)
    for name, s in meta["splits"].items():
        print(f"{name}: {s['images']:,} images in {len(s['shards'])} shard(s)")
    print(f"wrote {args.out}; train with --dataset shards:{args.out}")
    return 0
