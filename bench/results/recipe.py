"""docs/results/recipe.md: what each ingredient of the fast recipe buys, from
docs/results/recipe/ablation.csv (written by ``python bench/recipe_ablation.py``).

    python bench/results/recipe.py           # write the page
    python bench/results/recipe.py --check   # exit 1 when the page differs from the data

Per network and epoch budget: each configuration's mean test accuracy with its 95 % interval over
seeds, TTA beside it, and the fast recipe minus each configuration, paired by seed, with the verdict
of :mod:`effnas.search_spaces.common.stats`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from _common import Provenance, diff, iv, main, mark, table

from effnas.search_spaces.common.stats import BETTER, WORSE, Comparison, compare, interval

SCRIPT = "bench/results/recipe.py"
PAGES = ["recipe.md"]
#: The ablation's configurations in the order of bench/recipe_ablation.py, with what each one removes.
REMOVES = {"fast - label smoothing": "label smoothing 0.2 (back to 0.1)",
           "fast - EMA": "the weight EMA 0.99 (back to none)",
           "fast - linear decay": "linear decay (back to cosine; the 20 % warm-up stays)",
           "fast - flip_translate": "alternating flip + translate (back to random pad-crop + flip)",
           "fast - weight decay": "weight decay 5e-4 (back to 5e-5)",
           "fast - lr rule": "0.2 per 256 images (back to 0.4 per 256)"}
NETS = {"cifar10_found_base": "the base the CIFAR-10 study's search found (docs/results/cifar10/short-budget; "
                              "MBConv, SiLU)",
        "airbench_quarter": "an airbench-style conv net at a quarter of airbench's widths (16/64/64): "
                            "a 3x3 24-channel stem "
                            "(airbench: a 2x2 whitening layer), three stages of "
                            "two 3x3 conv-BN-ReLU layers, a stride-2 convolution in place of airbench's max-pool, "
                            "ReLU for its GELU, and an identity shortcut around each stage's second layer (the "
                            "spec's `conv` blocks add one where shapes allow)"}


def _acc(df: pd.DataFrame, config: str, col: str = "test_accuracy") -> tuple[list[float], list[int]]:
    d = df[df.config == config].sort_values("seed")
    return [float(x) for x in d[col]], [int(s) for s in d.seed]


def _cmp(df: pd.DataFrame, a: str, b: str, col: str = "test_accuracy") -> Comparison:
    xa, sa = _acc(df, a, col)
    xb, sb = _acc(df, b, col)
    return compare(xa, xb, seeds_a=sa, seeds_b=sb)


def _diff(c: Comparison) -> str:
    """:func:`diff`, or what is missing when there is no difference to state."""
    if c.n_a == 0 or c.n_b == 0:
        return "no runs on one side"
    return diff(c) if math.isfinite(c.diff) else c.verdict


def _tta_gain(d: pd.DataFrame) -> Comparison:
    s = [int(x) for x in d.seed]
    return compare([float(x) for x in d.test_accuracy_tta], [float(x) for x in d.test_accuracy], seeds_a=s, seeds_b=s)


def _section(df: pd.DataFrame, net: str) -> list[str]:
    r = df.iloc[0]
    configs = [c for c in ["default", "fast", *REMOVES] if c in set(df.config)]
    lines = [f"### {net}", "", f"{NETS.get(net, net)}: {int(r.macs):,} MACs, {int(r.params):,} parameters.", ""]
    rows = []
    for c in configs:
        d = df[df.config == c]
        gain = _tta_gain(d)
        rows.append((c, int(len(d)), iv(interval(d.test_accuracy)), iv(interval(d.test_accuracy_tta)),
                     _diff(gain), f"{d.train_seconds.mean():.1f}"))
    lines += table(["configuration", "n", "test accuracy %, mean [95 % CI]", "with TTA %", "TTA - plain, pts",
                    "train s (mean)"], rows)
    if "fast" not in configs:
        return [*lines, "", "No fast-recipe run yet: nothing to compare.", ""]
    lines += ["", "The fast recipe minus each configuration, paired by seed (positive: the fast recipe is more "
              "accurate; for `fast - X`, what X buys):", ""]
    cmps = {c: _cmp(df, "fast", c) for c in configs if c != "fast"}
    lines += table(["fast minus", "removes", "test", "test accuracy, pts", "with TTA, pts"],
                   [(c, REMOVES.get(c, "every ingredient (the default recipe)"), cmps[c].test, _diff(cmps[c]),
                     _diff(_cmp(df, "fast", c, "test_accuracy_tta"))) for c in cmps])
    helps = [c for c in REMOVES if c in cmps and cmps[c].verdict == BETTER]
    hurts = [c for c in REMOVES if c in cmps and cmps[c].verdict == WORSE]
    tied = [c for c in REMOVES if c in cmps and c not in helps + hurts]
    lines += [""]
    if "default" in cmps:
        c = cmps["default"]
        lines += [f"- The fast recipe against the default: {c.verdict} ({100 * c.diff:+.1f} points, {c.test})."]
    for label, group in (("Ingredients that help at this budget", helps), ("Ingredients that hurt", hurts),
                         ("Ingredients whose effect this budget and these seeds cannot separate from noise", tied)):
        names = ", ".join(REMOVES[c].split(" (")[0] for c in group) or "none"
        lines += [f"- {label}: {names}."]
    return [*lines, ""]


def render(results: Path) -> dict[str, str]:
    df = pd.read_csv(results / "recipe" / "ablation.csv")
    df = df[df.status == "completed"]
    lines = [mark(SCRIPT), "", "# What each ingredient of the fast recipe buys", "",
             "Issue 26 item 1: each network trained with the default recipe, the fast recipe "
             "(`train.recipe = \"fast\"`, docs/training.md \"The fast recipe\") and the fast recipe minus one "
             "ingredient at a time (that key set back to the default recipe's value), at equal epochs on the same "
             "CIFAR-10 subset (per seed), Nesterov SGD, batch 128, 32 px. Every run also reports test-time "
             "augmentation (flip + 1-pixel translations) as `test_accuracy_tta`, beside the plain accuracy and never "
             "in its place. Intervals are 95 % t-intervals over seeds; each comparison is a paired t-test over the "
             "seeds both sides share, with the verdict of docs/statistics.md (a `tied within noise` says this budget "
             "and these seeds cannot tell, not that the ingredient does nothing).", ""]
    for (epochs, frac), g in df.groupby(["epochs", "data_fraction"], sort=True):
        r = g.iloc[0]
        lines += [f"## {int(epochs)} epochs on {100 * float(frac):g} % of the training pool", "",
                  f"{int(r.train_images):,} training images per run ({int(r.images):,} images seen), "
                  f"{100 * float(r.val_fraction):g} % of the pool held out for validation, the 10,000 test images "
                  f"reported; seeds {', '.join(str(s) for s in sorted(set(g.seed)))}. The size was chosen so that "
                  "every configuration of both networks at 3 seeds fits about 45 minutes of one CPU thread: the "
                  "networks are far from converged, so the table says what each ingredient buys at this short "
                  "budget, not at convergence.", ""]
        for net in [n for n in NETS if n in set(g.net)] + sorted(set(g.net) - set(NETS)):
            lines += _section(g[g.net == net], net)
    total = df.wall_seconds.sum()
    lines += [f"In all {len(df)} runs, {df.train_seconds.sum() / 60:.1f} min of training and {total / 60:.1f} min "
              "of wall time (the rest: loading, the 10,000-image test set evaluated plainly and with TTA).", ""]
    machines = sorted({f"{m}, {int(c)} CPUs" for m, c in zip(df.machine, df.cpus, strict=True)})
    threads = sorted({int(t) for t in df.threads})
    load = (f"load average {df.load_average.min():.1f}-{df.load_average.max():.1f} during the runs"
            if math.isfinite(df.load_average.max()) else "load not recorded")
    lines += Provenance(
        hardware=f"{'; '.join(machines)}; {'/'.join(map(str, threads))} torch thread(s) per run; {load} "
                 "(the machine was shared: seconds are indicative, accuracies are not affected)",
        torch=", ".join(sorted(set(df.torch.astype(str)))),
        seeds=", ".join(str(s) for s in sorted(set(df.seed))) + " (the same seeds for every configuration)",
        data="CIFAR-10 (cifar10-jpeg.tar.gz): a fraction of the training pool drawn with the run's seed (every "
             "configuration of a seed trains on the same images, so the comparisons pair data and initialisation), "
             "the 10,000 test images",
        reproduce="`OMP_NUM_THREADS=1 python bench/recipe_ablation.py` (resumable; `--seeds 0 1 2 3 4` or "
                  "`--epochs 12` extends it)",
        regenerate="python bench/results/recipe.py").block()
    return {"recipe.md": "\n".join(lines)}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
