"""The report's tables: what a reader needs from grid.csv, family.csv and the failed runs (the
CSV files keep every column)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from effnas.scaling.curves import INTERVAL, interval_text
from effnas.scaling.family import ACCURACIES, trained_summary
from effnas.scaling.fit import PARAMETERS

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
    """A row per (method, phi): the cost columns, runs completed, and each accuracy's mean with its
    95 % t-interval over seeds in percent (``n = 1``: the mean alone, no interval)."""
    if not {"method", "phi"} <= set(df.columns):
        return df
    keys = [c for c in MEMBER_COLUMNS if c in df.columns]
    acc = [m for m in ACCURACIES if m in df.columns and df[m].notna().any()]
    summary = trained_summary(df, metrics=acc)
    rows = []
    for (_, g), (_, s) in zip(df.groupby(["method", "phi"], sort=False), summary.iterrows(), strict=True):
        row = {k: g.iloc[0][k] for k in keys}
        if "status" in g.columns:
            row["runs ok"] = f"{int((g['status'] == 'completed').sum())}/{len(g)}"
        for m in acc:
            row[f"{m} % (mean [{INTERVAL}])"] = interval_text(s, prefix=f"{m}_")
        rows.append(row)
    return pd.DataFrame(rows)


def fit_table(fits: dict[str, Any]) -> pd.DataFrame | None:
    """``fits.json`` of ``effnas curves`` as a row per axis and method: the parameters with their
    standard errors, the fit's status (a parameter at its bound, undetermined), the held-out check
    and, when run, the bootstrap intervals; None for any other JSON."""
    per_axis = {a: fits[a] for a in ("macs", "params") if isinstance(fits.get(a), dict)}
    if not per_axis:
        return None
    rows = []
    for axis, methods in per_axis.items():
        for method, f in methods.items():
            row: dict[str, Any] = {"axis": axis, "method": method}
            if not isinstance(f, dict):
                rows.append({**row, "status": str(f)})
                continue
            se = f.get("stderr") or [None] * 3
            for k, e in zip(PARAMETERS, se, strict=True):
                row[f"{k} (± s.e.)"] = f"{f[k]:.4g}" + (f" ± {e:.2g}" if isinstance(e, int | float) else "")
            at = f.get("at_bound") or []
            row["status"] = f.get("status", "") + (f": {', '.join(at)}" if at else "")
            row["rmse"], row["points"] = f"{f['rmse']:.4f}", f["n_points"]
            row.update(_holdout_cells(f.get("holdout")))
            b = f.get("bootstrap")
            row["bootstrap 95 %"] = (", ".join(f"{k} [{b[k][0]:.3g}, {b[k][1]:.3g}]" for k in PARAMETERS)
                                     if isinstance(b, dict) else str(b or ""))
            rows.append(row)
    out = pd.DataFrame(rows)
    if "bootstrap 95 %" in out.columns and not out["bootstrap 95 %"].str.contains(r"\[", na=False).any():
        out = out.drop(columns="bootstrap 95 %")  # not run on any fit
    return out.astype(object).fillna("")


def _holdout_cells(h: Any) -> dict[str, Any]:
    """The held-out check of a fit as four cells: which phi, predicted, observed, difference."""
    if not isinstance(h, dict):
        return {"held out": str(h or "")}
    phis = h["fit_phis"]
    obs = {"n": h["observed_n"], "mean": h["observed_accuracy"], "std": None, "ci_low": h["observed_ci_low"],
           "ci_high": h["observed_ci_high"]}
    return {"held out": f"phi {h['phi']} (fit to phi {', '.join(map(str, phis))})",
            "predicted %": round(100 * h["predicted_accuracy"], 2),
            f"observed % (mean [{INTERVAL}])": interval_text(obs),
            "predicted - observed (points)": round(100 * h["difference"], 2) + 0.0}  # + 0.0: no "-0"


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
