"""The report's tables: what a reader needs from grid.csv, family.csv and the failed runs (the
CSV files keep every column)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.search_spaces.stats import Interval

#: Columns of the report's grid table, a row per point (grid.csv has them all, a row per run).
GRID_COLUMNS = ("alpha", "beta", "gamma", "resolution_nominal", "resolution", "macs", "nominal_macs_ratio",
                "macs_ratio", "within_tolerance", "status", "reason", "same_network_as", "last_rung", "n",
                "mean_accuracy", "ci_low", "ci_high", "tied_with_best", "picked")
#: Columns of the report's member table, before the accuracy columns.
MEMBER_COLUMNS = ("method", "phi", "depth", "width", "resolution", "params", "macs", "nominal_macs_ratio",
                  "macs_ratio")


def columns(df: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    return df[[c for c in names if c in df.columns]]


def grid_points(df: pd.DataFrame) -> pd.DataFrame:
    """A row per grid point (grid.csv has one per run), those of the last rung first, by mean accuracy."""
    if not {"alpha", "beta", "gamma"} <= set(df.columns):
        return df
    df = df.drop_duplicates(["alpha", "beta", "gamma"])
    by = [c for c in ("last_rung", "mean_accuracy") if c in df.columns]
    return df.sort_values(by, ascending=False, na_position="last", kind="stable") if by else df


def _point(c: Any) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in c) + ")" if isinstance(c, list) else "?"


def grid_noise(c: dict[str, Any]) -> list[str]:
    """What ``coefficients.json`` says of the grid's noise: the best by mean with its interval, the
    points tied with it, the pick and its rule, the noise floor, the schedule and what it spent
    (nothing for a file written before the grid knew its noise)."""
    best = c.get("best_by_mean")
    if not isinstance(best, dict):
        return []
    mean, low, high = (math.nan if best.get(k) is None else float(best[k]) for k in ("mean_accuracy", "ci_low",
                                                                                      "ci_high"))
    iv = Interval(int(best.get("n") or 0), mean, low, high, math.nan)
    tied = [_point(t) for t in c.get("tied_with_best") or []]
    floor = c.get("noise_floor")
    lines = [f"Best by mean accuracy: {_point([best.get(k) for k in ('alpha', 'beta', 'gamma')])}, {iv.text()}; "
             f"tied within noise: {', '.join(tied) if floor else 'unknown'}; picked by rule: "
             f"{_point([c.get(k) for k in ('alpha', 'beta', 'gamma')])}.",
             f"Rule: {c.get('picked_by', '')}.",
             f"Noise floor: sd {100 * floor['sd']:.2f} accuracy points ({floor['df']} df, {floor['groups']} networks "
             f"with two runs or more in the last rung)." if isinstance(floor, dict) else "Noise floor: none."]
    sched = c.get("schedule")
    if isinstance(sched, dict):
        rungs = "; ".join(f"rung {r['rung']}: {r['networks']} networks x {len(r['seeds'])} seeds x {r['epochs']} "
                          f"epochs" for r in sched.get("rungs", []))
        spent = sched.get("spent", {})
        lines.append(f"Schedule ({'halving, eta ' + str(sched.get('eta')) if sched.get('halving') else 'one rung'}; "
                     f"budget {sched.get('budget_epochs') or 'none'}): {rungs}; spent {spent.get('epochs')} epochs in "
                     f"{spent.get('runs')} runs.")
    return lines


def member_summary(df: pd.DataFrame) -> pd.DataFrame:
    """A row per (method, phi): the cost columns, seeds, and accuracy mean +- std in percent."""
    if not {"method", "phi"} <= set(df.columns):
        return df
    keys = [c for c in MEMBER_COLUMNS if c in df.columns]
    rows = []
    for _, g in df.groupby(["method", "phi"], sort=False):
        row = {k: g.iloc[0][k] for k in keys}
        if "status" in g.columns:
            row["runs ok"] = f"{int((g['status'] == 'completed').sum())}/{len(g)}"
        for m in ("val_accuracy", "test_accuracy"):
            if m in g.columns and g[m].notna().any():
                v = 100 * g[m].dropna()
                row[f"{m} %"] = f"{v.mean():.2f} ± {v.std():.2f}" if len(v) > 1 else f"{v.mean():.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def failures(run: Path, stages: dict[str, Any]) -> pd.DataFrame:
    """Every stage that failed and every run that did not complete, with its error."""
    rows = [{"where": f"stage {k}", "status": v.get("status"), "error": v.get("error", "")}
            for k, v in stages.items() if isinstance(v, dict) and v.get("status") == "failed"]
    for csv in [run / "grid" / "grid.csv", run / "family" / "family.csv",
                *sorted(run.glob("backbones/*/backbones.csv"))]:
        if not csv.is_file():
            continue
        df = pd.read_csv(csv)
        if "status" not in df.columns or "run_dir" not in df.columns:
            continue
        bad = df[df["run_dir"].notna() & (df["status"] != "completed")].drop_duplicates("run_dir")  # shared runs once
        for _, r in bad.iterrows():
            err = r.get("error")
            rows.append({"where": relative(str(r["run_dir"]), run), "status": r["status"],
                         "error": err if isinstance(err, str) else ""})
    return pd.DataFrame(rows, columns=["where", "status", "error"])


def relative(path: str, run: Path) -> str:
    try:
        return Path(path).resolve().relative_to(run.resolve()).as_posix()
    except ValueError:
        return path
