"""The report's computed verdicts: the family's comparisons (compound against each single
dimension at every phi, each method's largest member against the base) and the "against the
paper" table built from them (``effnas.scaling.analysis.compare``; rule in docs/statistics.md), and,
for a family trained with ``family.rules``, each rule against compound at equal MACs, activations and
measured training time (``effnas.scaling.analysis.rules``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from effnas.scaling.analysis.compare import compare_methods, compare_sizes, paper_table
from effnas.scaling.analysis.rules import NOT_RULES, compare_rules
from effnas.scaling.curves import BASE_METHODS

METRICS = ("test_accuracy", "val_accuracy")
RULE = ("A - B in points with its 95 % interval; paired t-test on shared seeds (Welch's t otherwise); better/worse "
        "when p < 0.05, tied within noise otherwise, too few seeds with one run a side, not comparable when realised "
        "MACs differ by more than 10 % (docs/statistics.md).")


def metric_of(df: pd.DataFrame) -> str | None:
    """The accuracy column the verdicts use: test accuracy when the runs have it, else validation."""
    return next((m for m in METRICS if m in df.columns and df[m].notna().any()), None)


def _readable(t: pd.DataFrame) -> pd.DataFrame:
    def pts(v: float) -> str:
        return f"{100 * v:+.1f}" if pd.notna(v) else "-"

    return pd.DataFrame({
        "phi": t["phi"].astype(str), "A": t["a"], "B": t["b"],
        "n": [f"{a}/{b}" for a, b in zip(t["n_a"], t["n_b"], strict=True)],
        "A - B (pts)": [pts(v) for v in t["diff"]],
        "95 % interval": [f"[{pts(lo)}, {pts(hi)}]" if pd.notna(lo) else "-"
                          for lo, hi in zip(t["ci_low"], t["ci_high"], strict=True)],
        "p": [(f"{v:.0e}" if v < 0.001 else f"{v:.3f}") if pd.notna(v) else "-" for v in t["p"]],
        "verdict": t["verdict"],
        "seeds for 80 % power": [str(int(v)) if pd.notna(v) else "-" for v in t["seeds_needed"]],
        "note": t["note"].fillna(""),
    })


def trained(family_csv: Path) -> tuple[pd.DataFrame, str] | None:
    """The trained runs of ``family.csv`` (those with the verdicts' accuracy) and that accuracy's
    column; None when there is no trained run of the family's own method (compound or official)."""
    df = pd.read_csv(family_csv)
    metric = metric_of(df)
    if metric is None or "method" not in df.columns or not df["method"].isin(BASE_METHODS).any():
        return None
    return df[df[metric].notna()], metric


def verdict_tables(family_csv: Path) -> list[tuple[str, pd.DataFrame | str]]:
    """(heading, table or sentence) pairs for the report; empty when there is nothing trained."""
    got = trained(family_csv)
    if got is None:
        return []
    df, metric = got
    methods, sizes = compare_methods(df, metric=metric), compare_sizes(df, metric=metric)
    both = pd.concat([t for t in (sizes, methods) if not t.empty], ignore_index=True) if len(sizes) or len(methods) \
        else pd.DataFrame()
    if both.empty:
        return [("Verdicts", "No verdicts: the family has no trained member at phi >= 1 beside the base.")]
    claims = paper_table(df, metric=metric)
    out: list[tuple[str, pd.DataFrame | str]] = [("Verdicts (computed)", f"On {metric.replace('_', ' ')}. {RULE}"),
                                                 ("Against the paper", claims), ("Comparisons", _readable(both))]
    methods = set(df["method"].astype(str))
    if "compound" in methods and methods - {*BASE_METHODS, *NOT_RULES}:
        rules = compare_rules(df, metric=metric)
        if not rules.empty:
            out.append(("Scaling rules against compound, at equal MACs, activations and training time",
                        _readable(rules).assign(cost=rules["cost"].to_numpy(), **{
                            "realised cost A / B": [f"{a:.4g} / {b:.4g} ({100 * g:+.1f} %)" for a, b, g in
                                                    zip(rules["cost_a"], rules["cost_b"], rules["cost_gap"],
                                                        strict=True)]})))
    return out
