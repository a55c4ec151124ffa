"""Scaling rules compared on one base: each rule's member ``phi`` against the reference rule's
(compound by default) at equal MACs, at equal activations and at equal measured training time.

Members are matched by phi: member ``phi`` of every rule claims the MACs of compound's member ``phi``
(docs/scaling.md, "Cost per phi"), so at a phi the two members' *realised* costs are compared first,
one cost at a time. Where the two differ by more than ``tolerance`` (relative, the family's cost
tolerance by default) on that cost, the pair gets ``not comparable`` at that cost, and the note says
by how much: a rule that saves activations at equal MACs is not compared "at equal activations" with
one that spends more. Otherwise the accuracies are compared by
:func:`effnas.scaling.analysis.compare.compare_runs` (paired by seed, 95 % interval, verdict word).
Training time is each run's own ``train_seconds``, averaged over the runs of a member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from effnas.scaling.analysis.compare import compare_runs
from effnas.scaling.realised import FAMILY_TOLERANCE
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.stats import NOT_COMPARABLE

#: The costs rules are compared at (those the results have), in this order.
RULE_COSTS = ("macs", "activations", "train_seconds")
#: Methods of a family table that are not rules of their own: the published table and the matched baselines.
NOT_RULES = ("official", "depth", "width", "resolution")
COLUMNS = ["cost", "phi", "a", "b", "n_a", "n_b", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p", "test",
           "verdict", "seeds_needed", "cost_a", "cost_b", "cost_gap", "note"]


def _cost(runs: pd.DataFrame, cost: str) -> float:
    return float(pd.to_numeric(runs[cost], errors="coerce").mean())


def compare_rules(df: pd.DataFrame, *, metric: str = "test_accuracy", reference: str = "compound",
                  costs: Sequence[str] = RULE_COSTS, tolerance: float = FAMILY_TOLERANCE) -> pd.DataFrame:
    """Every rule of ``df`` (its methods but :data:`NOT_RULES` and ``reference``) against ``reference`` at
    every phi >= 1 both have, once per cost of ``costs`` the table has: a row per (cost, phi, rule),
    columns :data:`COLUMNS` (``diff`` is reference minus rule; ``cost_gap`` the rule's realised cost
    over the reference's, minus 1)."""
    for col in ("method", "phi", metric):
        if col not in df.columns:
            raise UserError(f"the results lack column {col!r}: give a family.csv written by 'effnas family --train'")
    d = df[df[metric].notna()]
    methods = [str(m) for m in d["method"].unique()]
    if reference not in methods:
        raise UserError(f"no trained {reference} rows in the results: compare rules against one of "
                        f"{', '.join(methods) or 'none'}")
    rules = [m for m in methods if m != reference and m not in NOT_RULES]
    if not rules:
        raise UserError(f"the results hold no rule beside {reference}: train a family with family.rules "
                        "(--rules fast:0.8,...)")
    rows: list[dict[str, Any]] = []
    for cost in (c for c in costs if c in d.columns):
        for phi in sorted(int(p) for p in d["phi"].unique() if p > 0):
            a = d[(d["method"] == reference) & (d["phi"] == phi)]
            for rule in rules:
                b = d[(d["method"] == rule) & (d["phi"] == phi)]
                if a.empty or b.empty:
                    continue
                row = compare_runs(a, b, metric=metric, label_a=reference, label_b=rule, phi=phi,
                                   tolerance=float("inf"))
                ca, cb = _cost(a, cost), _cost(b, cost)
                gap = cb / ca - 1 if ca > 0 else float("nan")
                row = {k: v for k, v in row.items() if not k.startswith("macs")}
                row.update(cost=cost, cost_a=ca, cost_b=cb, cost_gap=gap)
                if not abs(gap) <= tolerance:
                    row.update(verdict=NOT_COMPARABLE, note=f"{rule}'s {cost} differ by {100 * gap:+.1f} % "
                                                            f"(tolerance {100 * tolerance:.0f} %): no verdict at "
                                                            f"equal {cost}")
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def rule_lines(table: pd.DataFrame, *, scale: float = 100.0) -> list[str]:
    """A line per comparison: ``at equal macs (compound's 2.34M vs 2.40M, +2.6 %)  phi 1  compound - fast:0.8:
    +1.2 [-0.3, +2.7] pts, p 0.090, n 3/3: tied within noise``."""
    lines = []
    for r in table.itertuples(index=False):
        ci = f"[{scale * r.ci_low:+.1f}, {scale * r.ci_high:+.1f}]" if pd.notna(r.ci_low) else "[no interval]"
        p = f"p {r.p:.3f}" if pd.notna(r.p) else "p -"
        note = f"; {r.note}" if r.note and r.verdict != NOT_COMPARABLE else ""
        lines.append(f"equal {r.cost:<13} phi {r.phi}  {r.a} - {r.b}: {scale * r.diff:+.1f} {ci} pts, {p}, "
                     f"n {r.n_a}/{r.n_b}: {r.verdict} ({r.cost} {r.cost_a:.4g} vs {r.cost_b:.4g}, "
                     f"{100 * r.cost_gap:+.1f} %){note}")
    return lines


__all__ = ["COLUMNS", "NOT_RULES", "RULE_COSTS", "compare_rules", "rule_lines"]
