"""docs/results/cifar10/budget.md: the new CIFAR-10 study's epoch budget, measured, from
docs/results/cifar10/budget/ (``budget.json`` and one ``e<E>.csv`` per rung, the family tables that
``python bench/cifar10_budget.py`` trains and copies there).

    python bench/results/cifar10_budget.py           # write the page
    python bench/results/cifar10_budget.py --check   # exit 1 when the page differs from the data

Per rung (E epochs) and member: the test accuracy with its 95 % interval over seeds and the measured
training time; per doubling: each member's gain (2E minus E, paired by seed) with its interval and
verdict (:mod:`effnas.search_spaces.common.stats`), and the rule's decision: the budget is the first
E at which every member gains less than the threshold from twice the epochs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from _common import Provenance, diff, iv, main, mark, table

from effnas.search_spaces.common.stats import compare, interval

SCRIPT = "bench/results/cifar10_budget.py"
PAGES = ["cifar10/budget.md"]
#: The study's accuracy goals (issue 26): the base and the largest member, test accuracy.
GOALS = {"base (phi 0)": 0.75, "largest member": 0.85}


def load(results: Path) -> tuple[dict, dict[int, pd.DataFrame]]:
    folder = results / "cifar10" / "budget"
    record = json.loads((folder / "budget.json").read_text())
    rungs = {int(p.stem[1:]): pd.read_csv(p) for p in sorted(folder.glob("e*.csv"))}
    return record, {e: d[d.status == "completed"] for e, d in sorted(rungs.items())}


def _runs(d: pd.DataFrame) -> tuple[list[float], list[int]]:
    d = d.sort_values("seed")
    return [float(x) for x in d.test_accuracy], [int(s) for s in d.seed]


#: Networks per seed of the study at phi 0-2: the base, then compound and the three single-dimension
#: baselines at phi 1 and at phi 2 (docs/cifar10_study.md).
STUDY_NETWORKS = {0: 1, 1: 4, 2: 4}
STUDY_SEEDS, WORKERS = 3, 2


def cost_section(rungs: dict[int, pd.DataFrame]) -> list[str]:
    """What the study (phi 0-2 with baselines, 3 seeds, 2 one-thread workers) costs at each rung's
    epochs, from the measured training seconds per epoch of phi 0 and phi 2; phi 1's networks are
    estimated at the geometric mean of the two (their MACs lie between)."""
    rows = []
    for e, d in rungs.items():
        per = {int(p): float(g.train_seconds.mean()) / e for p, g in d.groupby("phi")}
        if not {0, 2} <= set(per):
            continue
        per.setdefault(1, math.sqrt(per[0] * per[2]))
        seconds = sum(STUDY_NETWORKS[p] * per[p] for p in STUDY_NETWORKS) * e * STUDY_SEEDS / WORKERS
        rows.append((e, f"{per[0]:.0f} / {per[1]:.0f} / {per[2]:.0f}", f"{seconds / 3600:.1f}"))
    if not rows:
        return []
    return ["## What the study costs at each budget", "",
            f"The study trains {sum(STUDY_NETWORKS.values())} networks per seed at phi 0-2 (the base; compound and "
            f"the depth-, width- and resolution-only baselines at phi 1 and 2), {STUDY_SEEDS} seeds, {WORKERS} "
            "one-thread workers. From the training seconds per epoch measured above (phi 1's estimated at the "
            "geometric mean of phi 0's and phi 2's; evaluation and start-up not counted):", "",
            *table(["epochs", "train s per epoch, phi 0 / 1 / 2", "study wall time, h (estimate)"], rows), ""]


def render(results: Path) -> dict[str, str]:
    record, rungs = load(results)
    threshold = float(record["threshold"])
    coeff = ", ".join(f"{c:g}" for c in record["coefficients"])
    lines = [mark(SCRIPT), "", "# The CIFAR-10 study's epoch budget, measured", "",
             "Issue 26 item 4: before the study trains its family, the budget is chosen by measurement. The "
             f"study's found base (phi 0) and its phi 2 compound member (alpha, beta, gamma = {coeff}, the paper's) "
             f"train with the `{record['recipe']}` recipe on the whole CIFAR-10 training pool "
             f"({100 * (1 - float(record['val_fraction'])):g} % of it; {100 * float(record['val_fraction']):g} % "
             "held out for validation; the 10,000 test images reported) at E epochs, then 2E, 4E, ...; after each "
             "doubling every member's test accuracy at 2E is compared with the same member at E, paired by seed. "
             f"**Rule:** the budget is the first E at which every member gains less than {threshold:g} points from "
             "twice the epochs (the mean gain; its 95 % interval is shown beside it). Each rung is a resumable "
             f"`effnas family` run with {record['workers']} one-thread workers.", "", "## Accuracy per rung", ""]
    rows = []
    for e, d in rungs.items():
        for phi, g in d.groupby("phi", sort=True):
            rows.append((e, int(phi), f"{int(g.macs.iloc[0]):,}", int(g.resolution.iloc[0]), len(g),
                         iv(interval(g.test_accuracy)), f"{g.train_seconds.mean() / 60:.1f}",
                         f"{g.train_seconds.mean() / e:.0f}"))
    lines += table(["epochs", "phi", "MACs", "px", "n", "test accuracy %, mean [95 % CI]", "train min per run",
                    "train s per epoch"], rows)
    lines += ["", "## What twice the epochs buys", ""]
    rows, decided = [], None
    for e in rungs:
        if 2 * e not in rungs:
            continue
        gains = []
        for phi in sorted(set(rungs[e].phi) & set(rungs[2 * e].phi)):
            xa, sa = _runs(rungs[2 * e][rungs[2 * e].phi == phi])
            xb, sb = _runs(rungs[e][rungs[e].phi == phi])
            c = compare(xa, xb, seeds_a=sa, seeds_b=sb)
            gains.append(c.diff)
            below = math.isfinite(c.diff) and 100 * c.diff < threshold
            rows.append((f"{e} -> {2 * e}", int(phi), c.test, diff(c), "yes" if below else "no"))
        if decided is None and gains and all(math.isfinite(g) and 100 * g < threshold for g in gains):
            decided = e
    lines += table(["epochs", "phi", "test", "gain, pts", f"< {threshold:g} pts"], rows) if rows else [
        "(one rung so far: no doubling measured yet)"]
    top = max(rungs) if rungs else 0
    lines += [""]
    if not rows:
        lines += ["**No budget yet**: the next rung decides.", ""]
    elif decided is not None:
        lines += [f"**Budget: {decided} epochs**: doubling it gains less than {threshold:g} points for every member.",
                  ""]
    else:
        lines += [f"**No budget up to {top} epochs**: every doubling measured so far gains {threshold:g} points or "
                  "more for at least one member; the networks are still learning at the largest rung.", ""]
    lines += cost_section(rungs)
    lines += ["## Against the study's goals", ""]
    rows = []
    for e, d in rungs.items():
        base, largest = d[d.phi == 0], d[d.phi == d.phi.max()]
        rows.append((e, iv(interval(base.test_accuracy)), "yes" if base.test_accuracy.mean() >= GOALS["base (phi 0)"]
                     else "no", f"phi {int(d.phi.max())}: {iv(interval(largest.test_accuracy))}",
                     "yes" if largest.test_accuracy.mean() >= GOALS["largest member"] else "no"))
    lines += table(["epochs", "base (phi 0) %", f"base >= {100 * GOALS['base (phi 0)']:g} %", "largest here %",
                    f">= {100 * GOALS['largest member']:g} %"], rows)
    lines += ["", "(The largest member here is phi 2; the study's own largest member may be larger.)", ""]
    all_runs = pd.concat(rungs.values()) if rungs else pd.DataFrame()
    walls = [float(r["wall_seconds"]) for r in record.get("rungs", {}).values()]
    lines += [f"In all {len(all_runs)} runs, {all_runs.train_seconds.sum() / 3600:.2f} h of training (summed over "
              f"workers) in {sum(walls) / 3600:.2f} h of wall time.", ""]
    lines += Provenance(
        hardware=f"{record.get('machine', 'the 2-core CPU machine of docs/results')}; {record['workers']} workers x "
                 f"{record['threads_per_worker']} torch thread (the machine's other work shared the cores at times)",
        torch=record.get("torch", "not recorded"),
        seeds=", ".join(str(s) for s in sorted(set(all_runs.seed))) if len(all_runs) else "none yet",
        data="CIFAR-10 (cifar10-jpeg.tar.gz): the whole training pool less the validation share, the 10,000 test "
             "images",
        reproduce="`OMP_NUM_THREADS=1 python bench/cifar10_budget.py` (resumable; `--max 32` adds a rung)",
        regenerate="python bench/results/cifar10_budget.py").block()
    return {"cifar10/budget.md": "\n".join(lines)}


if __name__ == "__main__":
    raise SystemExit(main(SCRIPT, PAGES, render))
