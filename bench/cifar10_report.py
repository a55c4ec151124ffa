"""Collect a finished short-budget CIFAR-10 study (bench/cifar10_study.sh) into
docs/results/cifar10/short-budget/ and write its page.

Writes the result tables (trials.csv, grid.csv, family.csv with the found family, its baselines and
the B0 family, backbones.csv, efficiency.csv), the curve fits (fits.json: error = a (MACs/x0)^-b + c
per method), the figures (the four methods with seed error bars, from scaling.plot_curves;
b0_vs_found.png; efficiency.png), the longer family (longer/), Fig. 4 (fig4.csv, fig4.png), and the
pipeline's report.html as run_report.html (its Provenance table and Configuration block are the
page's record of the machine, the versions and the config). Then bench/results/cifar10_page.py
writes report.md and tables.md from those files alone (and can again later, without the run
directory). No checkpoints are copied.

    python bench/cifar10_report.py [RUN_DIR] [--longer DIR] [--fig4 DIR] [--out docs/results/cifar10/short-budget]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "results"))

from cifar10_page import render  # noqa: E402

from effnas.scaling import aggregate, plot_curves  # noqa: E402
from effnas.scaling.curves import INTERVAL  # noqa: E402
from effnas.search_spaces.common.errors import UserError, first_line  # noqa: E402
from effnas.search_spaces.common.stats import interval  # noqa: E402

DROP = ["run_dir", "error", "spec", "stopped_by"]


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path} does not exist: run bench/cifar10_study.sh to the end first")
    return pd.read_csv(path)


def _write(df: pd.DataFrame, path: Path) -> None:
    df.drop(columns=[c for c in DROP if c in df.columns]).to_csv(path, index=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", default="runs/cifar10-cpu", help="the study's run directory")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "cifar10" / "short-budget"))
    ap.add_argument("--longer", help="the family.csv directory of the same family trained longer (default: "
                                     "RUN/family-e12; written to OUT/longer/ with its curves)")
    ap.add_argument("--fig4", help="the --out directory of bench/cifar10_fig4.py (default: RUN/fig4)")
    args = ap.parse_args(argv)
    try:
        return collect(Path(args.run), Path(args.out), Path(args.longer or Path(args.run) / "family-e12"),
                       Path(args.fig4 or Path(args.run) / "fig4"))
    except UserError as e:  # bad input: one line, as the effnas CLI does
        print(f"cifar10_report.py: error: {first_line(e)}", file=sys.stderr)
        return 2


def collect(run: Path, out: Path, longer_dir: Path, fig4_dir: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    if not (run / "report.html").is_file():
        raise UserError(f"{run / 'report.html'} does not exist: the study's 'effnas run' has not finished")
    shutil.copy(run / "report.html", out / "run_report.html")

    longer = _read(longer_dir / "family.csv")
    (out / "longer").mkdir(exist_ok=True)
    _write(longer, out / "longer" / "family.csv")
    plot_curves(longer, out / "longer", metric="test_accuracy", extrapolate=4.0)
    _read(fig4_dir / "fig4.csv").to_csv(out / "fig4.csv", index=False)
    shutil.copy(fig4_dir / "fig4.png", out / "fig4.png")

    trials = _read(run / "search" / "trials.csv")
    grid = _read(run / "grid" / "grid.csv")
    fam = _read(run / "family" / "family.csv").assign(family="found")
    b0 = _read(run / "b0-family" / "family.csv").assign(family="b0")
    tables = [_read(p).assign(backbone=p.parent.name) for p in sorted((run / "backbones").glob("*/backbones.csv"))]
    if not tables:
        raise UserError(f"no {run / 'backbones'}/*/backbones.csv: the study's backbones stage has not run")
    backbones = pd.concat(tables, ignore_index=True)
    _write(trials, out / "trials.csv")
    _write(grid, out / "grid.csv")
    both = pd.concat([fam, b0], ignore_index=True)
    _write(both, out / "family.csv")
    _write(backbones, out / "backbones.csv")

    # The four methods of the found base (paper Fig. 3 / Fig. 8), with power-law fits and bands
    # (fits.json, curves.csv, bands.csv, accuracy_vs_*.png).
    plot_curves(fam, out, metric="test_accuracy", extrapolate=4.0)

    # Found family vs B0 scaled by (1.2, 1.1, 1.15) (paper Fig. 1 / Fig. 5), accuracy against MACs.
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, d, style in (("found base x grid coefficients", fam[fam["method"] == "compound"], "o-"),
                           ("EfficientNet-B0 x (1.2, 1.1, 1.15)", b0, "s--")):
        a = aggregate(d, metric="test_accuracy")
        yerr = 100 * np.vstack([a["mean"] - a["ci_low"], a["ci_high"] - a["mean"]])  # NaN (n = 1): no bar
        ax.errorbar(a["macs"] / 1e6, a["mean"] * 100, yerr=yerr, fmt=style, capsize=3, label=name)
        for _, r in a.iterrows():
            ax.annotate(f"phi {int(r['phi'])}", (r["macs"] / 1e6, r["mean"] * 100), fontsize=7,
                        textcoords="offset points", xytext=(4, -10))
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions, realised)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title(f"Found family vs B0 family (mean of seeds, bars: {INTERVAL})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "b0_vs_found.png", dpi=120)
    plt.close(fig)

    # Efficiency: accuracy per MAC and per training second, every trained network.
    done = both[both["test_accuracy"].notna()]
    eff = done.groupby(["family", "method", "phi"], sort=True).agg(
        macs=("macs", "first"), params=("params", "first"), accuracy=("test_accuracy", "mean"),
        train_seconds=("train_seconds", "mean")).reset_index()
    ivs = [interval(g["test_accuracy"]) for _, g in done.groupby(["family", "method", "phi"], sort=True)]
    eff = eff.assign(n=[iv.n for iv in ivs], accuracy_std=[iv.sd for iv in ivs],
                     accuracy_ci_low=[iv.low for iv in ivs], accuracy_ci_high=[iv.high for iv in ivs])
    eff["acc_per_mmac"] = eff["accuracy"] / (eff["macs"] / 1e6)
    eff["acc_per_train_minute"] = eff["accuracy"] / (eff["train_seconds"] / 60)
    eff.to_csv(out / "efficiency.csv", index=False)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (fam_name, method), d in eff.groupby(["family", "method"]):
        label = f"{fam_name}: {method}"
        axes[0].plot(d["macs"] / 1e6, d["accuracy"] * 100, "o-", label=label)
        axes[1].plot(d["train_seconds"], d["accuracy"] * 100, "o-", label=label)
    axes[0].set_xlabel("MACs (millions)")
    axes[1].set_xlabel("training seconds per run (1 CPU thread)")
    for a in axes:
        a.set_xscale("log")
        a.set_ylabel("test accuracy (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "efficiency.png", dpi=120)
    plt.close(fig)

    for name, text in render(out).items():  # report.md and tables.md, from the files just written
        (out / name).write_text(text)
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
