"""The report's tables: what a reader needs from grid.csv, family.csv and the failed runs (the
CSV files keep every column)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

#: Columns of the report's grid table, a row per point (grid.csv has them all, a row per run).
GRID_COLUMNS = ("alpha", "beta", "gamma", "resolution_nominal", "resolution", "macs", "nominal_macs_ratio",
                "macs_ratio", "within_tolerance", "status", "reason", "same_network_as", "last_rung", "n",
                "mean_accuracy", "ci_low", "ci_high", "tied_with_best", "picked")
#: Columns of the report's member table, before the accuracy columns.
MEMBER_COLUMNS = ("method", "phi", "depth", "width", "resolution", "params", "macs", "nominal_macs_ratio",
                  "macs_ratio")


def columns(df: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    return df[[c for c in names if c in df.columns]]


def grid_noise(c: dict[str, Any]) -> list[str]:
    """The grid's summary lines as ``effnas grid`` printed them (``coefficients.json``'s ``summary``:
    the schedule and what it spent, the best with its interval, the tie set, the pick, the rule and
    the noise floor); none for a file written before the grid knew its noise."""
    lines = c.get("summary")
    return [str(line) for line in lines] if isinstance(lines, list) else []


def grid_points(df: pd.DataFrame) -> pd.DataFrame:
    """A row per grid point (grid.csv has one per run), those of the last rung first, by mean
    accuracy; flags as yes/no and empty cells left empty."""
    if not {"alpha", "beta", "gamma"} <= set(df.columns):
        return df
    df = df.drop_duplicates(["alpha", "beta", "gamma"])
    by = [c for c in ("last_rung", "mean_accuracy") if c in df.columns]
    df = df.sort_values(by, ascending=False, na_position="last", kind="stable") if by else df
    flags = {c: df[c].map(lambda v: "" if pd.isna(v) else "yes" if bool(v) else "no")
             for c in ("tied_with_best", "picked") if c in df.columns}
    text = {c: df[c].map(lambda v: "" if pd.isna(v) else v) for c in ("reason", "same_network_as") if c in df.columns}
    return df.assign(**flags, **text)


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
