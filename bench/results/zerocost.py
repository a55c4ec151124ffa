"""docs/results/zerocost/report.md from proxies.csv, timing.csv, run.json and published.json beside it.

Zero-cost proxies of random NAS-Bench-201 cells (bench/zerocost_nb201.py) against the table's
200-epoch accuracy: Spearman's rho with its bootstrap interval over the cells, Kendall's tau, the
difference to the published rho (a bootstrap comparison against a constant) and to the parameter
count (paired, the same resamples), and the cost per cell.

    python bench/results/zerocost.py            # rewrite the page
    python bench/results/zerocost.py --check    # exit 1 when the committed page differs
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Provenance,
    compare_correlations,
    correlation,
    diff,
    iv,
    kendall_rows,
    main,
    mark,
    spearman_rows,
    table,
)

from effnas.search_spaces.common.stats import Comparison, Interval, resample_indices  # noqa: E402

SCRIPT = "bench/results/zerocost.py"
PAGES = ["zerocost/report.md"]
#: The proxies in the order of effnas.nas.estimators.zerocost.PROXIES (not imported: it loads torch).
PROXIES = ("synflow", "jacob_cov", "naswot", "grad_norm", "snip", "grasp", "fisher")
PARAMS = "params_table"
#: Seed of the bootstrap resampling (fixed, so that the page is reproducible).
RESAMPLE_SEED = 0


@dataclass(frozen=True)
class ProxyRow:
    """One proxy (or the parameter count) on one sample of cells."""

    name: str
    cells: int
    rho: Interval
    tau: float
    vs_published: Comparison | None
    vs_params: Comparison | None
    published: float | None
    quoted: float | None
    wall_ms_median: float | None
    wall_ms_mean: float | None
    cpu_ms_median: float | None


def proxy_rows(csv: Path, published: dict[str, Any]) -> list[ProxyRow]:
    """Every proxy of ``csv`` (and the table's parameter count) against the table's accuracy."""
    df = pd.read_csv(csv)
    acc = df["val_accuracy"].to_numpy(float)
    idx = resample_indices(len(df), seed=RESAMPLE_SEED)
    names = [p for p in PROXIES if p in df.columns] + [PARAMS]
    corr = {p: correlation(spearman_rows, df[p].to_numpy(float), acc, idx) for p in names}
    rows = []
    for p in names:
        pub = published["notebook"]["rho"].get(p)
        tau = float(kendall_rows(df[p].to_numpy(float), acc)[0]) if len(df) <= 64 else _kendall(df[p], acc)
        rows.append(ProxyRow(
            name=p, cells=len(df), rho=corr[p][0], tau=tau,
            vs_published=compare_correlations(corr[p], pub) if pub is not None else None,
            vs_params=compare_correlations(corr[p], corr[PARAMS]) if p != PARAMS else None,
            published=pub, quoted=published["quoted"]["rho"].get(p),
            wall_ms_median=float(df[f"{p}_ms"].median()) if f"{p}_ms" in df else None,
            wall_ms_mean=float(df[f"{p}_ms"].mean()) if f"{p}_ms" in df else None,
            cpu_ms_median=float(df[f"{p}_cpu_ms"].median()) if f"{p}_cpu_ms" in df else None))
    return rows


def _kendall(x: pd.Series, y: np.ndarray) -> float:
    """Kendall's tau-b of many cells (the vectorised form would need n^2 memory)."""
    return float(kendalltau(x.to_numpy(float), y).statistic)


def label(p: str) -> str:
    return "parameter count (the table's)" if p == PARAMS else p


def load(results: Path) -> tuple[dict[str, Any], dict[str, Any], list[ProxyRow], list[ProxyRow]]:
    d = results / "zerocost"
    run = json.loads((d / "run.json").read_text())
    published = json.loads((d / "published.json").read_text())
    return run, published, proxy_rows(d / "proxies.csv", published), proxy_rows(d / "timing.csv", published)


def render(results: Path) -> dict[str, str]:
    run, published, main_rows, cost_rows = load(results)
    d = results / "zerocost"
    df = pd.read_csv(d / "proxies.csv")
    cells, seed = len(df), run["files"]["proxies.csv"]["seed"]
    exact = int((df["params_table"] == df["params_built"]).sum())
    inf = {p: int(np.isneginf(df[p]).sum()) for p in PROXIES if p in df}
    lines = [mark(SCRIPT), "", "# Zero-cost proxies on NAS-Bench-201 (CIFAR-10)", "",
             f"{cells} random cells of the table's 15,625, each built as a real PyTorch network "
             "(`effnas.nas.benchmarks.nb201_net`, default initialisation) and scored on one minibatch of "
             f"{run['files']['proxies.csv']['batch']} real CIFAR-10 training images, against the table's mean "
             "`cifar10-valid` accuracy after 200 epochs. Intervals are 95 % bootstrap intervals over the cells "
             f"(2,000 resamples, seed {RESAMPLE_SEED}); differences are tested on the same resamples, and against "
             "a published value as against a constant; verdicts follow docs/statistics.md. The built network's "
             f"parameter count equals the table's for {exact} of {cells} cells.", "",
             f"## Rank correlation ({cells} cells, seed {seed})", ""]
    rows = []
    for r in main_rows:
        pub = f"{r.published} / {r.quoted}" if r.published is not None else "-"
        rows.append([label(r.name), iv(r.rho, scale=1, digits=3), f"{r.tau:.3f}", pub,
                     diff(r.vs_published, scale=1, digits=3) if r.vs_published else "-",
                     diff(r.vs_params, scale=1, digits=3) if r.vs_params else "-",
                     f"{r.wall_ms_median:.0f} / {r.wall_ms_mean:.0f}" if r.wall_ms_median is not None else "0 (table)"])
    lines += table(["proxy", "Spearman rho [95 %]", "Kendall tau", "published rho: notebook / quoted in issue 16",
                    "rho - notebook's", "rho - parameter count's", "wall ms per cell (median / mean)"], rows)
    worst = max((r for r in main_rows if r.vs_published), key=lambda r: abs(r.vs_published.diff))  # type: ignore[union-attr]
    differ = [r.name for r in main_rows if r.vs_published and r.vs_published.verdict in ("better", "worse")]
    above = [r.name for r in main_rows if r.vs_params and r.vs_params.verdict == "better"]
    lines += ["", f"Largest distance to a published value on these cells: {worst.name}, "
              f"{worst.vs_published.diff:+.3f}; "  # type: ignore[union-attr]
              + (f"separated from its published value: {', '.join(differ)}." if differ else
                 "no proxy is separated from its published value by this sample.")
              + " Ranking above the parameter count (a free baseline): "
              + (", ".join(above) if above else "none") + ". "
              "grad_norm, snip and fisher share one forward/backward pass and jacob_cov and naswot another: their "
              "ms are the shared pass's, wall-clock on the shared machine. Published values are |rho| over all "
              "15,625 cells with another minibatch (published.json gives the sources). Cells scored -inf (output "
              "independent of the input, ranked lowest): "
              + (", ".join(f"{p} {n}" for p, n in inf.items() if n) or "none") + ".", ""]
    cost = pd.read_csv(d / "timing.csv")
    slow = float(np.median([cost[f"{p}_ms"] / cost[f"{p}_cpu_ms"].clip(lower=1e-3) for p in PROXIES
                            if f"{p}_cpu_ms" in cost]))
    tseed = run["files"]["timing.csv"]["seed"]
    lines += [f"## Cost per cell ({len(cost)} other random cells, seed {tseed}, every proxy)", "",
              "CPU time counts only the scoring process's work; wall-clock was "
              f"{slow:.1f}x longer (median over cells and passes) on the shared machine. grasp (one gradient plus a "
              f"Hessian-vector product) is in this run only, so its correlation is over these {len(cost)} cells "
              "and its interval is wide.", ""]
    rows = []
    for r in cost_rows:
        if r.name == PARAMS:
            rows.append([label(r.name), "0", "0", iv(r.rho, scale=1, digits=3), f"{r.tau:.3f}", "-"])
            continue
        rows.append([r.name, f"{r.cpu_ms_median:.0f}", f"{r.wall_ms_median:.0f}", iv(r.rho, scale=1, digits=3),
                     f"{r.tau:.3f}", diff(r.vs_published, scale=1, digits=3) if r.vs_published else "-"])
    lines += table(["proxy", "CPU ms per cell (median)", "wall ms per cell (median)", "Spearman rho [95 %]",
                    "Kendall tau", "rho - notebook's"], rows)
    lines += ["", *Provenance(
        hardware=f"{run['machine']}; GPU: {run['gpu']}; {run['threads']} torch thread",
        torch=run["torch"],
        seeds=f"cells and minibatch: seed {seed} (proxies.csv), seed {tseed} (timing.csv); networks initialised "
              "under torch.manual_seed(the same seed); bootstrap resampling seed "
              f"{RESAMPLE_SEED}",
        data=f"proxies.csv: the first {cells} cells of random.Random({seed}).sample(all 15,625 cells, n); timing.csv: "
             f"random.Random({tseed}).sample(all cells, {len(cost)}); the minibatch: random.Random(seed).sample of the "
             "CIFAR-10 JPEG archive's training images (../shared/data/cifar10-jpeg.tar.gz). Accuracy: "
             + run["table"],
        reproduce=f"proxies.csv: `{run['files']['proxies.csv']['command']}` ({run['files']['proxies.csv']['note']}); "
                  f"timing.csv: {run['files']['timing.csv']['command']}",
        regenerate=f"python {SCRIPT}").block()]
    return {"zerocost/report.md": "\n".join(lines).rstrip("\n") + "\n"}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
