"""docs/results/scaling/README.md from the family.csv and grid.csv files in docs/results/scaling/.

The first `efficientnet_nano` runs on `shapes` (2026-11-26), a historical record: every mean with
its 95 % t-interval over seeds, the comparisons of effnas.scaling.analysis.compare (each method's
largest member against the base, compound against each single dimension at equal phi, the claims
against the paper) and the grid's candidates, all computed from the committed files.

    python bench/results/scaling.py            # rewrite the page
    python bench/results/scaling.py --check    # exit 1 when the committed page differs
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Provenance, iv, main, mark, pval, table  # noqa: E402

from effnas.scaling.analysis.compare import compare_methods, compare_sizes, paper_table  # noqa: E402
from effnas.search_spaces.common.stats import compare, interval  # noqa: E402

SCRIPT = "bench/results/scaling.py"
PAGES = ["scaling/README.md"]
METRIC = "test_accuracy"
#: The runs, with what their commit messages and docs/scaling.md recorded about them (the CSVs hold
#: no command line).
RUNS = {
    "run1-nano-e3-f0.4": {
        "what": "compound phi 0..3 and depth-, width-, resolution-only baselines at phi = 2, 2 seeds, 3 epochs, "
                "40 % of `shapes` (commit 388a642)",
        "command": "not recorded (`effnas family ... --train --dataset shapes --epochs 3 --data-fraction 0.4 "
                   "--seeds 2`, then `effnas curves`)"},
    "run2-nano-e4-f0.6": {
        "what": "compound phi 0..3 and the three baselines at phi 1..3, 2 seeds, 4 epochs, 60 % of `shapes` "
                "(commit 6887b02)",
        "command": "`effnas family --base efficientnet_nano --alpha 1.2 --beta 1.1 --gamma 1.15 --phis 0-3 "
                   "--baselines --train --dataset shapes --epochs 4 --data-fraction 0.6 --seeds 2 --workers 3 "
                   "--option quiet=true --out runs/family4` then `effnas curves runs/family4 --out "
                   "runs/family4/curves` (docs/scaling.md)"},
}
GRID = "grid-nano-e2-f0.3"
#: Training images of `shapes` after the 10 % validation split (10,000-image pool).
POOL = 9000


def pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def comparison_rows(t: pd.DataFrame) -> list[list[object]]:
    rows = []
    for r in t.itertuples(index=False):
        ci = f"[{pct(r.ci_low)}, {pct(r.ci_high)}]" if pd.notna(r.ci_low) else "-"
        rows.append([r.phi, f"{r.a} - {r.b}", f"{pct(r.diff)} {ci}", pval(r.p) if pd.notna(r.p) else "-",
                     r.verdict + (f" ({r.note})" if r.note else ""),
                     int(r.seeds_needed) if pd.notna(r.seeds_needed) else "-"])
    return rows


def run_section(name: str, info: Mapping[str, str], df: pd.DataFrame) -> list[str]:
    df = df[df["status"] == "completed"]
    seen = (df["images_per_second"] * df["train_seconds"] / df["epochs_completed"]).median()
    lines = [f"## `{name}`", "", f"{info['what']}. Training images seen per epoch (images per second x train "
             f"seconds / epochs, median over runs): {seen:,.0f}, i.e. {100 * seen / POOL:.0f} % of the {POOL:,} of "
             f"`shapes`' training split. Command: {info['command']}.", ""]
    rows = []
    base = df[df["phi"] == 0]
    for (method, phi), g in df.groupby(["method", "phi"], sort=False):
        rows.append([method, phi, f"{g['macs'].iloc[0] / 1e6:.2f} M", f"{g['params'].iloc[0]:,}",
                     ", ".join(f"{100 * v:.1f}" for v in g[METRIC]), iv(interval(g[METRIC]))])
    lines += table(["method", "phi", "MACs", "params", "test accuracy per seed (%)", "mean [95 %]"], rows)
    lines += ["", f"The single-dimension baselines share the base (phi = 0: {iv(interval(base[METRIC]))} %).", "",
              "Comparisons (A - B in points, paired by seed; docs/statistics.md):", ""]
    t = pd.concat([compare_sizes(df, metric=METRIC), compare_methods(df, metric=METRIC)], ignore_index=True)
    lines += table(["phi", "A - B", "difference [95 %]", "p", "verdict", "seeds needed"], comparison_rows(t))
    claims = paper_table(df, metric=METRIC)
    lines += ["", "Against the paper:", "",
              *table(["claim", "paper", "comparisons", "verdict"], claims.values.tolist()), ""]
    return lines


def grid_section(results: Path) -> list[str]:
    d = results / "scaling" / GRID
    g = pd.read_csv(d / "grid.csv").sort_values("accuracy", ascending=False).reset_index(drop=True)
    chosen = json.loads((d / "coefficients.json").read_text())
    top, second = g.iloc[0], g.iloc[1]
    c = compare([top["accuracy"]], [second["accuracy"]])
    rows = [[r.alpha, r.beta, r.gamma, f"{r.product:.3f}", r.resolution, r.blocks, f"{r.macs_ratio:.2f}",
             f"{r.nominal_macs_ratio:.2f}", f"{100 * r.accuracy:.1f}", r.seed] for r in g.itertuples()]
    return [f"## `{GRID}`: the grid at phi = 1", "",
            "Grid search at step 0.2 with the real trainer, 2 epochs, 30 % of `shapes` (from the folder name and "
            "commit 6887b02; the command was not recorded), one seed per candidate, validation accuracy:", "",
            *table(["alpha", "beta", "gamma", "alpha beta^2 gamma^2", "res", "blocks", "realised MACs ratio",
                    "nominal", "val accuracy %", "seed"], rows), "",
            f"Chosen (`coefficients.json`): alpha {chosen['alpha']}, beta {chosen['beta']}, gamma {chosen['gamma']} "
            f"({100 * chosen['accuracy']:.1f} %). Against the runner-up ({second['alpha']}, {second['beta']}, "
            f"{second['gamma']}): {c.verdict} (one run each, no estimate of the noise), so the grid's choice is not "
            "separated from the other candidates by these runs.", ""]


def render(results: Path) -> dict[str, str]:
    lines = [mark(SCRIPT), "", "# Scaling runs on `shapes` (2026-11-26)", "",
             "**Historical record**: the first trained `efficientnet_nano` families (16 px base) on the generated "
             "`shapes` set, made before the realised-cost rule (members trained at their nominal input sizes) and "
             "with the trainer's defaults of that day. Each folder holds the files the commands wrote: `family.csv` "
             "(every member and seed), `family.log` and `grid.log` (their console tables, mean +- standard deviation), "
             "and the output of `effnas curves` at the time (`curves.csv`, `fits.json`, the plots, error bars = "
             "standard deviation). Their `summary.txt` files, which judged the curves by a rule docs/statistics.md "
             "has replaced, are removed; the intervals and verdicts below are computed from `family.csv` by today's "
             "rule.", ""]
    for name, info in RUNS.items():
        lines += run_section(name, info, pd.read_csv(results / "scaling" / name / "family.csv"))
    lines += grid_section(results)
    lines += Provenance(
        hardware="not recorded",
        torch="not recorded",
        seeds="0 and 1 per family member (run.seed: initialisation, data order, validation split); grid: seed 0",
        data="`shapes` (generated, 10,000 training-pool and 2,000 test images); validation 10 % of the pool "
             "drawn with the run's seed; the training share given per run above; test accuracy on the fixed test set",
        reproduce="the commands given per run above, at the code of 2026-11-26",
        regenerate=f"python {SCRIPT}").block()
    return {"scaling/README.md": "\n".join(lines).rstrip("\n") + "\n"}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
