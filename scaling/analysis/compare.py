"""Computed verdicts: scaling methods and families compared at equal phi, with intervals.

Every comparison goes through :func:`effnas.search_spaces.common.stats.compare` (paired by seed
where seeds match, Welch otherwise) and so carries the difference, its 95 % interval, the
p-value, one verdict word and the seeds that would separate the observed difference at 80 %
power. Two members whose realised MACs differ by more than ``tolerance`` are not compared: the
verdict is ``not comparable`` and the note says by how much they differ.

:func:`paper_table` turns the comparisons into the "against the paper" table of a report: one row
per claim of EfficientNet the results can test, its evidence and a claim verdict from
:func:`claim_verdict` (docs/statistics.md states both rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from effnas.scaling.curves import BASE_METHODS, with_shared_base
from effnas.scaling.realised import FAMILY_TOLERANCE
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.stats import BETTER, NOT_COMPARABLE, TIED, TOO_FEW, WORSE, compare

#: Claim verdicts, from the verdicts of the comparisons behind a claim (:func:`claim_verdict`).
HOLDS, PARTLY, MIXED, CONTRADICTED, NOT_SEPARATED, UNDECIDED = (
    "holds", "holds in part", "mixed", "contradicted", "not separated by the noise", "undecided")

COLUMNS = ["phi", "a", "b", "n_a", "n_b", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p", "test", "verdict",
           "seeds_needed", "macs_a", "macs_b", "macs_gap", "note"]


def _runs(df: pd.DataFrame, metric: str) -> tuple[list[float], list[Any] | None, float]:
    seeds = list(df["seed"]) if "seed" in df.columns and df["seed"].notna().all() else None
    return list(df[metric].astype(float)), seeds, float(df["macs"].median())


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, *, metric: str, label_a: str, label_b: str, phi: int,
                 tolerance: float = FAMILY_TOLERANCE) -> dict[str, Any]:
    """One row of a comparison table: the runs ``a`` (rows of a result table) minus the runs ``b``."""
    va, sa, macs_a = _runs(a, metric)
    vb, sb, macs_b = _runs(b, metric)
    c = compare(va, vb, seeds_a=sa, seeds_b=sb)
    gap = macs_b / macs_a - 1 if macs_a > 0 else float("nan")
    row = {"phi": phi, "a": label_a, "b": label_b, "n_a": c.n_a, "n_b": c.n_b, "mean_a": c.mean_a, "mean_b": c.mean_b,
           "diff": c.diff, "ci_low": c.low, "ci_high": c.high, "p": c.p, "test": c.test, "verdict": c.verdict,
           "seeds_needed": c.seeds_needed, "macs_a": macs_a, "macs_b": macs_b, "macs_gap": gap, "note": c.note}
    if abs(gap) > tolerance:
        row.update(verdict=NOT_COMPARABLE, note=f"realised MACs differ by {100 * gap:+.1f} % (tolerance "
                                                f"{100 * tolerance:.0f} %): no verdict at unequal cost")
    return row


def _check(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    missing = [c for c in ("method", "phi", "macs", metric) if c not in df.columns]
    if missing:
        raise UserError(f"the results lack column {missing[0]!r}: give a family.csv written by 'effnas family --train'"
                        + (f" (or pick --metric from {', '.join(c for c in df.columns if 'accuracy' in c)})"
                           if missing[0] == metric else ""))
    return with_shared_base(df[df[metric].notna()])


def compare_methods(df: pd.DataFrame, *, metric: str = "test_accuracy", reference: str | None = None,
                    tolerance: float = FAMILY_TOLERANCE) -> pd.DataFrame:
    """At every phi >= 1, ``reference`` (default: the family's own method, compound or official)
    against each other method of the same phi (depth, width, resolution): a row per pair, columns
    :data:`COLUMNS` (``diff`` is reference minus method; ``better`` means the reference wins)."""
    d = _check(df, metric)
    methods = list(d["method"].unique())
    ref = reference or next((m for m in BASE_METHODS if m in methods), None)
    if ref is None or ref not in methods:
        raise UserError(f"no {reference or 'compound'} rows in the results: give a family.csv with the family's "
                        f"members, or pick --reference from {', '.join(map(str, methods))}")
    rows = []
    for phi in sorted(int(p) for p in d["phi"].unique() if p > 0):
        a = d[(d["method"] == ref) & (d["phi"] == phi)]
        if a.empty:
            continue
        for m in sorted(set(methods) - {ref}):
            b = d[(d["method"] == m) & (d["phi"] == phi)]
            if not b.empty:
                rows.append(compare_runs(a, b, metric=metric, label_a=ref, label_b=str(m), phi=phi,
                                         tolerance=tolerance))
    return pd.DataFrame(rows, columns=COLUMNS)


def compare_sizes(df: pd.DataFrame, *, metric: str = "test_accuracy") -> pd.DataFrame:
    """Each method's largest phi against the base (phi 0): does scaling up help at all? MACs differ
    by design here, so no cost check."""
    d = _check(df, metric)
    rows = []
    for m in sorted(map(str, d["method"].unique())):
        g = d[d["method"] == m]
        hi = int(g["phi"].max())
        if hi > 0 and (g["phi"] == 0).any():
            rows.append(compare_runs(g[g["phi"] == hi], g[g["phi"] == 0], metric=metric, label_a=f"{m} phi {hi}",
                                     label_b="base (phi 0)", phi=hi, tolerance=float("inf")))
    return pd.DataFrame(rows, columns=COLUMNS)


def compare_families(a: pd.DataFrame, b: pd.DataFrame, *, labels: tuple[str, str] = ("A", "B"),
                     metric: str = "test_accuracy", tolerance: float = FAMILY_TOLERANCE) -> pd.DataFrame:
    """Two families (e.g. a searched base scaled against B0 scaled), member against member at each
    phi both have; their own methods (compound or official) only."""
    da, db = _check(a, metric), _check(b, metric)
    da, db = da[da["method"].isin(BASE_METHODS)], db[db["method"].isin(BASE_METHODS)]
    rows = []
    for phi in sorted(set(map(int, da["phi"])) & set(map(int, db["phi"]))):
        rows.append(compare_runs(da[da["phi"] == phi], db[db["phi"] == phi], metric=metric, label_a=labels[0],
                                 label_b=labels[1], phi=phi, tolerance=tolerance))
    return pd.DataFrame(rows, columns=COLUMNS)


def claim_verdict(verdicts: Sequence[str]) -> str:
    """One word for a claim from the verdicts of the comparisons that test it (``better`` = as the
    paper says): all better -> holds; better and worse -> mixed; worse and no better ->
    contradicted; better, the rest tied or undecided -> holds in part; all tied -> not separated by
    the noise; nothing comparable with enough seeds -> undecided."""
    v = set(verdicts)
    if not v or v <= {TOO_FEW, NOT_COMPARABLE}:
        return UNDECIDED
    if v == {BETTER}:
        return HOLDS
    if BETTER in v and WORSE in v:
        return MIXED
    if WORSE in v:
        return CONTRADICTED
    if BETTER in v:
        return PARTLY
    return NOT_SEPARATED if TIED in v else UNDECIDED


def claim_row(claim: str, paper: str, verdicts: Sequence[str]) -> dict[str, str]:
    """One row of the "against the paper" table: the claim, the paper's figure, the count of each
    verdict among the comparisons that test it (``'2 tied within noise, 1 better (of 3)'``) and
    the claim verdict (:func:`claim_verdict`). For claims :func:`paper_table` does not cover (a
    report's own comparisons, e.g. Fig. 4's width gains), built by the same rule.

    >>> claim_row("c", "Fig. 8", ["better", "tied within noise", "better"])["comparisons"]
    '2 better, 1 tied within noise (of 3)'
    """
    counts = pd.Series(list(verdicts), dtype=object).value_counts()
    return {"claim": claim, "paper": paper,
            "comparisons": ", ".join(f"{n} {v}" for v, n in counts.items()) + f" (of {len(verdicts)})",
            "verdict": claim_verdict(list(verdicts))}


def paper_table(df: pd.DataFrame, *, metric: str = "test_accuracy", other: pd.DataFrame | None = None,
                labels: tuple[str, str] = ("found", "B0"), tolerance: float = FAMILY_TOLERANCE) -> pd.DataFrame:
    """The "against the paper" table: a row per EfficientNet claim the results test (claim,
    paper's figure, comparisons, their verdicts, the claim verdict). ``other`` is a second family
    (e.g. B0 scaled) for the Fig. 1/5 claim."""
    rows = []
    methods = compare_methods(df, metric=metric, tolerance=tolerance)
    if not methods.empty:
        for b, g in methods.groupby("b", sort=True):
            rows.append(claim_row(f"compound beats {b}-only scaling at equal MACs",
                                  "Fig. 8 / Table 7: by up to 2.5 % top-1 at ~1.8 B FLOPs", list(g["verdict"])))
    sizes = compare_sizes(df, metric=metric)
    if not sizes.empty:
        rows.append(claim_row("every method's largest member beats the base",
                              "Fig. 3: scaling any dimension helps, with diminishing returns", list(sizes["verdict"])))
    if other is not None:
        fams = compare_families(df, other, labels=labels, metric=metric, tolerance=tolerance)
        if not fams.empty:
            rows.append(claim_row(f"the {labels[0]} family beats the {labels[1]} family member for member",
                                  "Fig. 1 / Fig. 5: EfficientNets beat other families at equal FLOPs",
                                  list(fams["verdict"])))
    return pd.DataFrame(rows, columns=["claim", "paper", "comparisons", "verdict"])


def verdict_lines(table: pd.DataFrame, *, scale: float = 100.0) -> list[str]:
    """A line per comparison: ``phi 2  compound - width  +1.9 [0.4, 3.4] pts  p 0.03  better (3 seeds)``."""
    lines = []
    for r in table.itertuples(index=False):
        ci = (f"[{scale * r.ci_low:+.1f}, {scale * r.ci_high:+.1f}]" if pd.notna(r.ci_low) else "[no interval]")
        p = f"p {r.p:.3f}" if pd.notna(r.p) else "p -"
        need = (f"; {int(r.seeds_needed)} seeds would separate it"
                if pd.notna(r.seeds_needed) and r.verdict == TIED else "")
        note = f"; {r.note}" if r.note else ""
        lines.append(f"phi {r.phi}  {r.a} - {r.b}: {scale * r.diff:+.1f} {ci} pts, {p}, n {r.n_a}/{r.n_b}: "
                     f"{r.verdict}{need}{note}")
    return lines


def summary(df: pd.DataFrame, *, metric: str | None = None) -> str:
    """The verdicts a family or backbone run is trained for, as lines for a console: each method's
    largest member against the base and the family's method against each single dimension at
    every phi (``effnas compare`` gives the table). ``metric``: default test accuracy, else
    validation accuracy, whichever the runs have."""
    metric = metric or next((m for m in ("test_accuracy", "val_accuracy") if m in df.columns and
                             df[m].notna().any()), None)
    if metric is None or "method" not in df.columns:
        return "no verdicts: no trained runs"
    d = df[df[metric].notna()]
    sizes = compare_sizes(d, metric=metric)
    methods = compare_methods(d, metric=metric) if d["method"].isin(["compound", "official"]).any() else sizes[:0]
    both = [t for t in (sizes, methods) if not t.empty]
    if not both:
        return "no verdicts: the results need trained members at phi >= 1 beside the base"
    return "\n".join([f"verdicts on {metric} (A - B in points, 95 % interval; rule in docs/statistics.md):",
                      *verdict_lines(pd.concat(both, ignore_index=True))])


__all__ = ["CONTRADICTED", "HOLDS", "MIXED", "NOT_SEPARATED", "PARTLY", "UNDECIDED", "claim_row", "claim_verdict",
           "compare_families", "compare_methods", "compare_runs", "compare_sizes", "paper_table", "summary",
           "verdict_lines"]
