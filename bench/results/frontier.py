"""docs/results/frontier.md: test accuracy against training compute on this machine, from
docs/results/frontier/frontier.csv (written by ``python bench/frontier.py``), and the figure
docs/results/frontier/frontier.png beside it.

    python bench/results/frontier.py           # write the page and the figure
    python bench/results/frontier.py --check   # exit 1 when the page differs from the data

Per network, recipe and epoch budget: the mean test accuracy with its 95 % interval over seeds, the
training compute (core-seconds: the epochs' own clock times the run's threads; FLOPs: 6 x MACs per
image x images seen, the usual forward + backward estimate), the fast recipe against the default at
each budget (paired by seed), and what doubling the budget buys (Welch: the runs of two budgets are
different runs), with the verdicts of :mod:`effnas.search_spaces.common.stats`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from _common import Provenance, diff, iv, main, mark, table

from effnas.search_spaces.common.stats import Comparison, compare, interval

SCRIPT = "bench/results/frontier.py"
PAGES = ["frontier.md"]
FIGURE = "frontier/frontier.png"
#: A doubling of the epochs that gains less than this many points marks the end of the steep part.
KNEE = 1.5
NETS = {"cifar10_found_base": "the base the CIFAR-10 study's search found (MBConv, SiLU)",
        "airbench_quarter": "an airbench-style conv net at a quarter of airbench's widths (the reference net; "
                            "docs/results/recipe.md describes it)"}


def load(results: Path) -> pd.DataFrame:
    df = pd.read_csv(results / "frontier" / "frontier.csv")
    df = df[df.status == "completed"].copy()
    df["core_seconds"] = df.train_seconds * df.threads
    df["flops"] = 6.0 * df.macs * df.images
    return df


def _runs(d: pd.DataFrame, col: str = "test_accuracy") -> tuple[list[float], list[int]]:
    d = d.sort_values("seed")
    return [float(x) for x in d[col]], [int(s) for s in d.seed]


def _cmp(a: pd.DataFrame, b: pd.DataFrame, *, paired: bool) -> Comparison:
    xa, sa = _runs(a)
    xb, sb = _runs(b)
    return compare(xa, xb, seeds_a=sa if paired else None, seeds_b=sb if paired else None)


def _flops(x: float) -> str:
    return f"{x / 1e12:.2f}"


def _section(g: pd.DataFrame, net: str) -> list[str]:
    r = g.iloc[0]
    lines = [f"## {net}", "", f"{NETS.get(net, net)}: {int(r.macs):,} MACs, {int(r.params):,} parameters, "
             f"{int(r.train_images):,} training images per epoch.", ""]
    rows = []
    for (config, epochs), d in g.groupby(["config", "epochs"], sort=True):
        rows.append((config, int(epochs), len(d), iv(interval(d.test_accuracy)), iv(interval(d.test_accuracy_tta)),
                     f"{d.core_seconds.mean():,.0f}", _flops(float(d.flops.mean())), f"{d.wall_seconds.mean():,.0f}"))
    lines += table(["recipe", "epochs", "n", "test accuracy %, mean [95 % CI]", "with TTA %",
                    "training core-s (mean)", "training TFLOPs", "wall s (mean)"], rows)
    lines += [""]
    both = sorted(set(g[g.config == "fast"].epochs) & set(g[g.config == "default"].epochs))
    if both:
        lines += ["The fast recipe against the default at equal epochs (paired by seed; positive: fast is more "
                  "accurate):", ""]
        lines += table(["epochs", "fast - default, pts"],
                       [(int(e), diff(_cmp(g[(g.config == "fast") & (g.epochs == e)],
                                           g[(g.config == "default") & (g.epochs == e)], paired=True)))
                        for e in both])
        lines += [""]
    lines += ["What doubling the epochs buys (2E minus E; different runs, so Welch's test):", ""]
    rows, knees = [], {}
    for config in sorted(set(g.config)):
        d = g[g.config == config]
        for e in sorted(set(d.epochs)):
            if 2 * e in set(d.epochs):
                c = _cmp(d[d.epochs == 2 * e], d[d.epochs == e], paired=False)
                rows.append((config, f"{int(e)} -> {int(2 * e)}", diff(c)))
                if config not in knees and math.isfinite(c.diff) and 100 * c.diff < KNEE:
                    knees[config] = int(e)
    lines += table(["recipe", "epochs", "gain, pts"], rows) if rows else ["(one budget per recipe so far)"]
    lines += [""]
    for config in sorted(set(g.config)):
        top = int(g[g.config == config].epochs.max())
        lines += [f"- {config}: " + (f"doubling {knees[config]} epochs gains less than {KNEE} points: the curve has "
                                     f"flattened by {knees[config]} epochs." if config in knees else
                                     f"every doubling up to {top} epochs still gains {KNEE} points or more (or "
                                     "cannot be told apart from that): the curve is still climbing.")]
    return [*lines, ""]


def render(results: Path) -> dict[str, str]:
    df = load(results)
    lines = [mark(SCRIPT), "", "# Accuracy against training compute on this machine", "",
             "Issue 26 item 3: how accuracy grows with the training compute a user of this 2-core CPU machine "
             "spends, for the CIFAR-10 study's searched base and an airbench-style reference net, with the "
             "fast recipe (`train.recipe = \"fast\"`, docs/training.md) and the default one. Each point is a "
             "run of E epochs on the CIFAR-10 training pool (the schedule spans the run: what a user gets "
             "by asking for E epochs), one torch thread, batch 128, 32 px; 5 % of the pool is held out for "
             "validation and the 10,000 test images are reported, plainly and with test-time augmentation "
             "(flip + 1-pixel translations, never mixed into the plain number). Compute is core-seconds of "
             "training (the epochs' own clock times the threads; loading and evaluation excluded) and training "
             "FLOPs estimated as 6 x MACs per image x images seen. Intervals are 95 % t-intervals over seeds; "
             "verdicts follow docs/statistics.md.", "",
             f"![test accuracy against training core-seconds]({FIGURE})", ""]
    for net in [n for n in NETS if n in set(df.net)] + sorted(set(df.net) - set(NETS)):
        lines += _section(df[df.net == net], net)
    lines += ["How to read it for a budget: the core-seconds column is one thread's time, so two one-thread "
              "workers train two such runs at once; the point where a doubling stops paying is where a "
              "study's epochs are well spent (the CIFAR-10 study chooses its budget the same way on its own "
              "networks: docs/results/cifar10/budget.md).", ""]
    lines += [f"In all {len(df)} runs, {df.train_seconds.sum() / 3600:.2f} h of training and "
              f"{df.wall_seconds.sum() / 3600:.2f} h of wall time.", ""]
    machines = sorted({f"{m}, {int(c)} CPUs" for m, c in zip(df.machine, df.cpus, strict=True)})
    lines += Provenance(
        hardware=f"{'; '.join(machines)}; {'/'.join(str(int(t)) for t in sorted(set(df.threads)))} torch thread(s) "
                 f"per run; load average {df.load_average.min():.1f}-{df.load_average.max():.1f} at the runs' "
                 "ends (one-minute average; 2 means both cores busy)",
        torch=", ".join(sorted(set(df.torch.astype(str)))),
        seeds=", ".join(str(s) for s in sorted(set(df.seed))) + " (the same seeds for every recipe and budget)",
        data="CIFAR-10 (cifar10-jpeg.tar.gz): " + "; ".join(
            f"{100 * float(f):g} % of the training pool, {100 * float(v):g} % of it held out for validation"
            for f, v in sorted(set(zip(df.data_fraction, df.val_fraction, strict=True)))) + "; the 10,000 test images",
        reproduce="`OMP_NUM_THREADS=1 python bench/frontier.py` (resumable; `--epochs 1 2 4 8` extends it; one "
                  "process per net runs them side by side)",
        regenerate="python bench/results/frontier.py").block()
    return {"frontier.md": "\n".join(lines)}


def plot(results: Path) -> Path:
    """The figure: mean test accuracy against training core-seconds (log scale), 95 % intervals as bars."""
    import matplotlib  # lazy: only the figure needs it, not --check
    import matplotlib.ticker  # lazy: as above

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after the Agg backend is chosen

    df = load(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (net, config), g in df.groupby(["net", "config"], sort=True):
        pts = []
        for _, d in g.groupby("epochs", sort=True):
            i = interval(d.test_accuracy)
            lo, hi = (i.mean - i.low, i.high - i.mean) if math.isfinite(i.low) else (0.0, 0.0)
            pts.append((d.core_seconds.mean(), 100 * i.mean, 100 * lo, 100 * hi, int(d.epochs.iloc[0])))
        x, y, lo, hi, ep = zip(*pts, strict=True)
        ax.errorbar(x, y, yerr=[lo, hi], marker="o" if config == "fast" else "s", capsize=3,
                    linestyle="-" if config == "fast" else "--", label=f"{net}, {config} recipe")
        for xi, yi, e in zip(x, y, ep, strict=True):
            ax.annotate(f"{e} ep", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("training compute, core-seconds (one thread)")
    ax.set_ylabel("CIFAR-10 test accuracy, % (mean, 95 % CI)")
    ax.set_title("CIFAR-10: accuracy against training compute")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    out = results / FIGURE
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render, figure=plot))
