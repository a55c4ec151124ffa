"""Collect a finished CIFAR-10 study (bench/cifar10_study.sh) into docs/results/cifar10/.

Writes the result tables (trials.csv, grid.csv, family.csv with the found family, its baselines and
the B0 family, backbones.csv), the curve fits (fits.json: error = a (MACs/x0)^-b + c per method),
the figures (the four methods with seed error bars, from scaling.plot_curves; b0_vs_found.png;
efficiency.png)
and tables.md (every number report.md quotes). No checkpoints are copied.

    python bench/cifar10_report.py [RUN_DIR] [--out docs/results/cifar10]
"""

from __future__ import annotations

import argparse
import json
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

from effnas.scaling import aggregate, matched_comparison, plot_curves  # noqa: E402
from effnas.scaling.curves import AGGREGATE_COLUMNS, INTERVAL  # noqa: E402
from effnas.search_spaces.stats import interval  # noqa: E402

DROP = ["run_dir", "error", "spec", "stopped_by"]
#: Columns of every aggregate table: n, mean, std and the 95 % t-interval over seeds.
AGG = ["method", "phi", "macs", "params", *AGGREGATE_COLUMNS]
METHODS = ("compound", "depth", "width", "resolution")


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SystemExit(f"{path} does not exist: run bench/cifar10_study.sh to the end first")
    return pd.read_csv(path)


def _table(df: pd.DataFrame, cols: list[str], floatfmt: str = ".4f") -> str:
    return df[[c for c in cols if c in df.columns]].to_markdown(index=False, floatfmt=floatfmt)


def _stage_seconds(run: Path) -> dict[str, float]:
    stages = json.loads((run / "stages.json").read_text()) if (run / "stages.json").is_file() else {}
    return {k: round(float(v.get("seconds", 0.0)), 1) for k, v in stages.items() if isinstance(v, dict)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", default="runs/cifar10-cpu", help="the study's run directory")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "cifar10"))
    ap.add_argument("--longer", help="a family.csv directory of the same family trained longer (written to "
                                     "OUT/longer/: its curves and table)")
    ap.add_argument("--fig4", help="the --out directory of bench/cifar10_fig4.py (fig4.csv, fig4.png copied)")
    args = ap.parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra: list[str] = []
    if args.longer:
        longer = _read(Path(args.longer) / "family.csv")
        (out / "longer").mkdir(exist_ok=True)
        longer.drop(columns=[c for c in DROP if c in longer.columns]).to_csv(out / "longer" / "family.csv",
                                                                              index=False)
        lres = plot_curves(longer, out / "longer", metric="test_accuracy", extrapolate=4.0)
        extra += [f"## The same family trained longer (mean, std and {INTERVAL})", "",
                  _table(aggregate(longer, metric="test_accuracy"), AGG), "",
                  "Matched comparison:", "", matched_comparison(longer, metric="test_accuracy").to_markdown(
                      index=False, floatfmt=".4f"), "", "Fits:", "", "```json",
                  json.dumps(lres["fits"], indent=1, default=str), "```", ""]
    if args.fig4:
        f4 = _read(Path(args.fig4) / "fig4.csv")
        f4.to_csv(out / "fig4.csv", index=False)
        shutil.copy(Path(args.fig4) / "fig4.png", out / "fig4.png")
        extra += ["## Fig. 4: width at four depth/resolution settings (seed 0)", "",
                  _table(f4, ["depth", "resolution", "width", "macs", "params", "test_accuracy", "val_accuracy",
                              "train_seconds"]), ""]

    trials = _read(run / "search" / "trials.csv")
    grid = _read(run / "grid" / "grid.csv")
    fam = _read(run / "family" / "family.csv").assign(family="found")
    b0_csv = run / "b0-family" / "family.csv"
    b0 = _read(b0_csv).assign(family="b0") if b0_csv.is_file() else fam.iloc[:0].assign(family="b0")
    tables = [_read(p).assign(backbone=p.parent.name) for p in sorted((run / "backbones").glob("*/backbones.csv"))]
    backbones = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["backbone", "method", "macs", "params", "test_accuracy"])
    trials.drop(columns=[c for c in DROP if c in trials.columns]).to_csv(out / "trials.csv", index=False)
    grid.drop(columns=[c for c in DROP if c in grid.columns]).to_csv(out / "grid.csv", index=False)
    both = pd.concat([fam, b0], ignore_index=True)
    both.drop(columns=[c for c in DROP if c in both.columns]).to_csv(out / "family.csv", index=False)
    backbones.drop(columns=[c for c in DROP if c in backbones.columns]).to_csv(out / "backbones.csv", index=False)

    # The four methods of the found base (paper Fig. 3 / Fig. 8), with power-law fits and bands.
    res = plot_curves(fam, out, metric="test_accuracy", extrapolate=4.0)
    fits = res["fits"]  # also written to fits.json by plot_curves (per x axis: MACs, params)
    agg = aggregate(fam, metric="test_accuracy")
    matched = matched_comparison(fam, metric="test_accuracy")

    # Found family vs B0 scaled by (1.2, 1.1, 1.15) (paper Fig. 1 / Fig. 5), accuracy against MACs.
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, d, style in (("found base x grid coefficients", fam[fam["method"] == "compound"], "o-"),
                           ("EfficientNet-B0 x (1.2, 1.1, 1.15)", b0, "s--")):
        if d.empty:
            continue
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

    seconds = _stage_seconds(run)
    b0_seconds = float(b0["train_seconds"].sum()) if "train_seconds" in b0 else float("nan")
    lines = ["# Tables of the CIFAR-10 study (generated by bench/cifar10_report.py)", "",
             "## Stage wall times (s)", "", json.dumps(seconds), "",
             f"B0 family: {b0_seconds:.0f} s of training (sum of its runs)", "",
             "## Search trials (best 10 by reward)", "",
             _table(trials.sort_values("reward", ascending=False).head(10) if "reward" in trials else trials.head(10),
                    ["number", "status", "accuracy", "macs", "params", "reward"]), "",
             "## Grid at phi = 1", "",
             _table(grid.sort_values("val_accuracy", ascending=False),
                    ["alpha", "beta", "gamma", "product", "resolution", "macs_ratio", "within_tolerance", "status",
                     "val_accuracy", "test_accuracy", "train_seconds"]), "",
             f"## Found family and single-dimension baselines (mean, std and {INTERVAL})", "",
             _table(agg, AGG), "",
             "## Matched comparison (each baseline at its compound member's MACs)", "",
             matched.to_markdown(index=False, floatfmt=".4f"), "",
             "## B0 family", "", _table(aggregate(b0, metric="test_accuracy"), AGG)
             if not b0.empty else "(not trained yet)", "",
             f"## Backbones (phi = 2; mean, std and {INTERVAL})", "",
             _table(pd.concat([aggregate(d, metric="test_accuracy", shared_base=False).assign(backbone=name)
                               for name, d in backbones.groupby("backbone", sort=False)] or [backbones]),
                    ["backbone", *AGG]), "",
             "## Efficiency", "", _table(eff, ["family", "method", "phi", "macs", "n", "accuracy", "accuracy_ci_low",
                                                "accuracy_ci_high", "train_seconds", "acc_per_mmac",
                                                "acc_per_train_minute"]), "",
             "## Fits (error = a (MACs/x0)^-b + c)", "", "```json", json.dumps(fits, indent=1, default=str), "```",
             "", *extra]
    (out / "tables.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}; curves: {res['files']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
