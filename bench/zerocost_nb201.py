"""Zero-cost proxies vs NAS-Bench-201: rank correlation with the table's CIFAR-10 accuracy, and cost.

For N random cells (distinct, seeded) of NAS-Bench-201, build the real network
(:mod:`effnas.nas.benchmarks.nb201_net`, PyTorch default initialisation under ``torch.manual_seed(seed)``),
compute every proxy of :mod:`effnas.nas.estimators.zerocost` on one minibatch of real CIFAR-10 training images
(``--batch`` random JPEGs read straight from ``../shared/data/cifar10-jpeg.tar.gz``, normalised
with the CIFAR-10 channel statistics) and time each pass (ms, one thread): ``grad_norm``, ``snip``
and ``fisher`` share one forward/backward pass, ``jacob_cov`` and ``naswot`` another
(:data:`effnas.nas.estimators.zerocost.GROUPS`), so their ms columns hold the shared pass's time. Rows are appended to
``OUT/proxies.csv`` as they are computed (a killed run keeps its rows; ``--resume`` continues);
``OUT/report.md`` holds Spearman's rho and Kendall's tau of each proxy (and of the parameter count)
against the table's mean validation accuracy (``cifar10-valid``, 200 epochs), beside the values
Abdelfattah et al. (ICLR 2021) published, and the cost per candidate.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/zerocost_nb201.py --n 5 --out /tmp/zc      # timing
    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/zerocost_nb201.py --n 400 --out docs/results/zerocost
    PYTHONPATH=. python bench/zerocost_nb201.py --report-only --out docs/results/zerocost
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import kendalltau, spearmanr

from effnas.nas.benchmarks import get_benchmark
from effnas.nas.benchmarks.nasbench201 import arch_string
from effnas.nas.benchmarks.nb201_net import build_cell_network
from effnas.nas.estimators.zerocost import GROUPS, PROXIES, compute

ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
#: Abdelfattah et al. (ICLR 2021), Spearman's rho over all 15,625 NAS-Bench-201 cells, CIFAR-10, as
#: printed by their repository's notebooks/nasbench201_correlations.ipynb ("Table 1"; |rho| against the
#: NAS-Bench-201 API's accuracy, one random minibatch, seed 42).
PUBLISHED_NOTEBOOK = {"grad_norm": 0.594, "snip": 0.596, "grasp": 0.514, "fisher": 0.36, "synflow": 0.737,
                      "jacob_cov": 0.731}
#: The same paper's values as quoted in issue 16 (not re-checked against the PDF here).
PUBLISHED_QUOTED = {"grad_norm": 0.58, "snip": 0.58, "grasp": 0.48, "fisher": 0.36, "synflow": 0.74,
                    "jacob_cov": 0.73}


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


def report(out: Path, batch: int, seed: int) -> str:
    rows = list(csv.DictReader(open(out / "proxies.csv")))
    acc = np.array([float(r["val_accuracy"]) for r in rows])
    proxies = [p for p in PROXIES if p in rows[0]]
    exact = sum(r["params_table"] == r["params_built"] for r in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Zero-cost proxies on NAS-Bench-201 (CIFAR-10)", "",
        f"{len(rows)} random cells (seed {seed}) of the 15,625, each built as a real PyTorch network "
        f"(`effnas.nas.benchmarks.nb201_net`, default init, seed {seed}) and scored on one minibatch of {batch} real "
        "CIFAR-10 training images; correlation with the table's mean `cifar10-valid` accuracy after 200 epochs. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared (load {load:.1f} at report time), "
        f"torch {torch.__version__}, 1 thread. Built networks' parameter count equals the table's `params` for "
        f"{exact} of {len(rows)} cells.", "",
        "| proxy | Spearman rho | Kendall tau | published Spearman: reference notebook / as quoted in issue 16 "
        "| ms per cell (median) | ms per cell (mean) |", "|---|---|---|---|---|---|",
    ]
    for p in [*proxies, "params"]:
        v = np.array([float(r[p if p != "params" else "params_table"]) for r in rows])
        rho, tau = spearmanr(v, acc).statistic, kendalltau(v, acc).statistic
        pub = f"{PUBLISHED_NOTEBOOK[p]} / {PUBLISHED_QUOTED[p]}" if p in PUBLISHED_NOTEBOOK else None
        ms = np.array([float(r[f"{p}_ms"]) for r in rows]) if p != "params" else None
        lines.append(f"| {p} | {rho:.3f} | {tau:.3f} | {pub if pub is not None else '-'} | "
                     + (f"{np.median(ms):.0f} | {ms.mean():.0f} |" if ms is not None else "0 (table) | - |"))
    inf = {p: sum(float(r[p]) == float("-inf") for r in rows) for p in proxies}
    lines += ["", "grad_norm, snip and fisher share one forward/backward pass, jacob_cov and naswot another: their "
              "ms are the shared pass's (what one of them costs alone), wall-clock on the shared machine. `params` is "
              "the table's parameter count, a zero-cost baseline every proxy should beat. Published values are "
              "Spearman only, over all 15,625 cells (Abdelfattah et al., ICLR 2021: the first from their repository's "
              "notebooks/nasbench201_correlations.ipynb, |rho| against the NAS-Bench-201 API's accuracy; the second "
              "as quoted in issue 16). Cells scored -inf (output independent of the input, ranked lowest): "
              + ", ".join(f"{p} {n}" for p, n in inf.items() if n) + "."]
    timing = out / "timing.csv"
    if timing.is_file():
        lines += _timing(list(csv.DictReader(open(timing))))
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def _timing(rows: list[dict[str, str]]) -> list[str]:
    """The cost table of a separate run with CPU times (and grasp, left out of the main run)."""
    acc = np.array([float(r["val_accuracy"]) for r in rows])
    slow = np.median([float(r[f"{p}_ms"]) / max(float(r[f"{p}_cpu_ms"]), 1e-3) for r in rows for p in PROXIES
                      if f"{p}_cpu_ms" in r])
    lines = ["", f"## Cost per candidate ({len(rows)} other random cells, seed 1, every proxy)", "",
             "CPU time counts only this process's work (the machine was shared by other jobs, so wall-clock "
             f"was {slow:.1f}x longer, median over cells and passes). grasp is in this run only (one gradient "
             "plus a Hessian-vector product); its "
             f"correlation below is over these {len(rows)} cells.", "",
             "| proxy | CPU ms per cell (median) | wall ms per cell (median) | Spearman rho | Kendall tau |",
             "|---|---|---|---|---|"]
    for p in PROXIES:
        if f"{p}_cpu_ms" not in rows[0]:
            continue
        v = np.array([float(r[p]) for r in rows])
        cpu = np.median([float(r[f"{p}_cpu_ms"]) for r in rows])
        wall = np.median([float(r[f"{p}_ms"]) for r in rows])
        lines.append(f"| {p} | {cpu:.0f} | {wall:.0f} | {spearmanr(v, acc).statistic:.3f} | "
                     f"{kendalltau(v, acc).statistic:.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="random cells")
    ap.add_argument("--batch", type=int, default=64, help="images in the minibatch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true", help="append to OUT/proxies.csv, skipping its cells")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run(args.out, args.n, args.batch, args.seed, args.proxies.split(","), args.archive, args.resume)
    print(report(args.out, args.batch, args.seed))


if __name__ == "__main__":
    main()
