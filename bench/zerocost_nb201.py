"""Zero-cost proxies vs NAS-Bench-201: rank correlation with the table's CIFAR-10 accuracy, and cost.

For N random cells (distinct, seeded) of NAS-Bench-201, build the real network
(:mod:`effnas.nas.benchmarks.nb201_net`, PyTorch default initialisation under ``torch.manual_seed(seed)``),
compute every proxy of :mod:`effnas.nas.estimators.zerocost` on one minibatch of real CIFAR-10 training images
(``--batch`` random JPEGs read straight from ``../shared/data/cifar10-jpeg.tar.gz``, normalised
with the CIFAR-10 channel statistics) and time each pass (ms, one thread): ``grad_norm``, ``snip``
and ``fisher`` share one forward/backward pass, ``jacob_cov`` and ``naswot`` another
(:data:`effnas.nas.estimators.zerocost.GROUPS`), so their ms columns hold the shared pass's time. Rows are appended to
``OUT/proxies.csv`` as they are computed (a killed run keeps its rows; ``--resume`` continues);
``OUT/run.json`` records the machine, torch version, seed, batch and command. The page
(docs/results/zerocost/report.md: Spearman's rho with bootstrap intervals and Kendall's tau of each
proxy and of the parameter count against the table's mean validation accuracy, ``cifar10-valid``,
200 epochs, beside the values Abdelfattah et al. (ICLR 2021) published in
docs/results/zerocost/published.json, and the cost per candidate) is computed from those files by
bench/results/zerocost.py.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/zerocost_nb201.py --n 5 --out /tmp/zc      # timing
    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/zerocost_nb201.py --n 1000 --out docs/results/zerocost
    PYTHONPATH=. python bench/results/zerocost.py                                          # the page
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import random
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from effnas.nas.benchmarks import get_benchmark
from effnas.nas.benchmarks.nasbench201 import arch_string
from effnas.nas.benchmarks.nb201_net import build_cell_network
from effnas.nas.estimators.zerocost import GROUPS, PROXIES, compute

ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def cifar_batch(archive: Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random CIFAR-10 training images (normalised float32 NCHW) and their labels."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).parts[1:2] == ("train",)]
        classes = sorted({Path(m.name).parts[2] for m in members})
        picked = random.Random(seed).sample(sorted(members, key=lambda m: m.name), n)
        images, labels = [], []
        for m in picked:
            f = tar.extractfile(m)
            assert f is not None
            images.append(np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"), dtype=np.float32) / 255)
            labels.append(classes.index(Path(m.name).parts[2]))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x.contiguous(), torch.tensor(labels)


def run(out: Path, n: int, batch: int, seed: int, proxies: list[str], archive: Path, resume: bool) -> None:
    table = get_benchmark("nasbench201:cifar10")
    cells = random.Random(seed).sample(list(table.keys()), n)
    path = out / "proxies.csv"
    done = {r["arch"] for r in csv.DictReader(open(path))} if resume and path.is_file() else set()
    x, y = cifar_batch(archive, batch, seed)
    cols = ["arch", "val_accuracy", "params_table", "params_built", *proxies, *(f"{p}_ms" for p in proxies),
            *(f"{p}_cpu_ms" for p in proxies)]
    new = not done
    if not new:  # keep the file's columns
        cols = next(csv.reader(open(path)))
    with open(path, "w" if new else "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        if new:
            w.writeheader()
        t_start = time.perf_counter()
        for i, ops in enumerate(cells):
            arch = arch_string(ops)
            if arch in done:
                continue
            torch.manual_seed(seed)
            net = build_cell_network(ops)
            rec = table.record(ops)
            row: dict[str, object] = {"arch": arch, "val_accuracy": round(rec.mean_accuracy, 6),
                                      "params_table": round(rec.params_m * 1e6),
                                      "params_built": sum(p.numel() for p in net.parameters())}
            for members in GROUPS.values():  # each pass timed in wall-clock and CPU time
                wanted = [p for p in members if p in proxies]
                if wanted:
                    t0, c0 = time.perf_counter(), time.process_time()
                    row.update(compute(net, x, y, wanted))
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    for p in wanted:
                        row[f"{p}_ms"], row[f"{p}_cpu_ms"] = round(wall * 1e3, 1), round(cpu * 1e3, 1)
            w.writerow(row)
            f.flush()
            if (i + 1) % 25 == 0:
                el = time.perf_counter() - t_start
                print(f"{i + 1}/{n} cells, {el:.0f} s", flush=True)


def record(out: Path, batch: int, seed: int) -> None:
    """``OUT/run.json``: what the rows of ``OUT/proxies.csv`` were made with (machine, torch, seed,
    batch, the command), for the page bench/results/zerocost.py computes from them."""
    path = out / "run.json"
    meta = json.loads(path.read_text()) if path.is_file() else {}
    meta.update({"machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__,
                 "gpu": "none" if not torch.cuda.is_available() else torch.cuda.get_device_name(), "threads": 1})
    meta.setdefault("files", {})["proxies.csv"] = {"seed": seed, "batch": batch,
                                                    "command": " ".join(["python", *sys.argv]), "note": ""}
    path.write_text(json.dumps(meta, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="random cells")
    ap.add_argument("--batch", type=int, default=64, help="images in the minibatch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="append to OUT/proxies.csv, skipping its cells")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    run(args.out, args.n, args.batch, args.seed, args.proxies.split(","), args.archive, args.resume)
    record(args.out, args.batch, args.seed)
    print(f"wrote {args.out / 'proxies.csv'} and run.json; the page: python bench/results/zerocost.py")


if __name__ == "__main__":
    main()
