"""Scaling curves: accuracy against MACs and against params for each scaling method, seed
spread as error bars, a fitted saturating power law per method with an extrapolation band,
saved as PNG and as data (CSV and JSON).

Input is one or more result tables (``family.csv`` files) with at least ``method``, ``phi``,
``macs``, ``params`` and an accuracy column. Single-dimension baselines have no phi = 0 row of
their own: they start from the same base, so the family's phi = 0 rows are added to their curves.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effnas.scaling.fit import PowerLaw, fit_power_law
from effnas.search_spaces.common.atomic import atomic_text, atomic_write
from effnas.search_spaces.common.errors import UserError, user_file

#: Plot order and colours of the scaling methods (matplotlib's default cycle).
COLORS = {"compound": "C3", "official": "C1", "depth": "C0", "width": "C2", "resolution": "C4", "base": "C7"}
BASE_METHODS = ("compound", "official")


def with_shared_base(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus, for each single-dimension method without phi = 0, the family's phi = 0 rows."""
    base = df[df["method"].isin(BASE_METHODS) & (df["phi"] == 0)]
    extra = [base.assign(method=m) for m in df["method"].unique()
             if m not in BASE_METHODS and not ((df["method"] == m) & (df["phi"] == 0)).any() and not base.empty]
    return pd.concat([df, *extra], ignore_index=True) if extra else df


def aggregate(df: pd.DataFrame, *, metric: str) -> pd.DataFrame:
    """Mean and standard deviation of ``metric`` over seeds, a row per (method, phi)."""
    if metric not in df.columns:
        raise UserError(f"no accuracy column {metric!r} in the results: train the family first (--train), "
                         f"or pick --metric from {', '.join(c for c in df.columns if 'accuracy' in c) or 'none'}")
    d = with_shared_base(df[df[metric].notna()])
    g = d.groupby(["method", "phi"], sort=True)
    out = g.agg(macs=("macs", "first"), params=("params", "first"), mean=(metric, "mean"), std=(metric, "std"),
                n=(metric, "size")).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["metric"] = metric
    return out


def check_results(df: pd.DataFrame, *, metric: str) -> pd.DataFrame:
    """``df`` with its ``metric`` column checked: finite accuracies in [0, 1] (a column in percent,
    every value in [0, 100] and one above 1, is divided by 100), at least one of them, and positive
    finite ``macs`` and ``params``. A UserError names the column and the bad value otherwise."""
    if metric not in df.columns:
        aggregate(df, metric=metric)  # its error names the accuracy columns there are
    acc = pd.to_numeric(df[metric], errors="coerce")
    if bad := [v for v in df[metric][acc.isna() & df[metric].notna()]][:1]:
        raise UserError(f"--metric column {metric!r} holds {bad[0]!r}, not a number: give accuracies in [0, 1]")
    if not acc.notna().any():
        raise UserError(f"--metric column {metric!r} has no values (all empty or NaN): train the family first")
    given = acc[acc.notna()]
    if 1 < given.max() <= 100 and given.min() >= 0:
        acc = acc / 100  # percent
    wrong = acc[acc.notna() & ~acc.between(0, 1)]
    if len(wrong):
        raise UserError(f"--metric column {metric!r} holds {wrong.iloc[0]}, not an accuracy: give accuracies in "
                         "[0, 1] or in percent")
    for col in ("macs", "params"):
        x = pd.to_numeric(df[col], errors="coerce")
        if not (np.isfinite(x) & (x > 0)).all():
            raise UserError(f"column {col!r} holds {df[col][~(np.isfinite(x) & (x > 0))].iloc[0]!r}: every {col} "
                             "must be a positive number (a family.csv written by effnas)")
    return df.assign(**{metric: acc})


def fit_methods(df: pd.DataFrame, *, metric: str, x: str = "macs") -> dict[str, PowerLaw | str]:
    """A power-law fit of error (1 - accuracy) against ``x`` per method, every seed a point; a
    string saying why where a method has too few sizes."""
    d = with_shared_base(df[df[metric].notna()])
    fits: dict[str, PowerLaw | str] = {}
    for method, g in d.groupby("method", sort=True):
        try:
            fits[str(method)] = fit_power_law(g[x].to_numpy(float), 1.0 - g[metric].to_numpy(float))
        except (ValueError, RuntimeError) as e:
            fits[str(method)] = f"not fitted: {e}"
    return fits


def plot_curves(df: pd.DataFrame, out_dir: str | Path, *, metric: str = "test_accuracy", extrapolate: float = 4.0,
                title: str | None = None) -> dict[str, Any]:
    """Write ``accuracy_vs_macs.png``, ``accuracy_vs_params.png``, ``curves.csv`` (points),
    ``fits.json`` (power-law parameters per method and axis) and ``bands.csv`` (fitted curve and
    90 % band out to ``extrapolate`` times the largest size) into ``out_dir``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is slow to import
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # lazy: matplotlib is slow to import

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = aggregate(df, metric=metric)
    atomic_write(out / "curves.csv", lambda t: points.to_csv(t, index=False))
    fits_json: dict[str, Any] = {"metric": metric, "extrapolate": extrapolate}
    bands = []
    files = []
    for axis in ("macs", "params"):
        fits = fit_methods(df, metric=metric, x=axis)
        fits_json[axis] = {m: (f.to_dict() if isinstance(f, PowerLaw) else f) for m, f in fits.items()}
        fig = Figure(figsize=(7, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        methods = sorted(points["method"].unique(), key=lambda m: list(COLORS).index(m) if m in COLORS else 99)
        for m in methods:
            p = points[points["method"] == m].sort_values(axis)
            color = COLORS.get(m, None)
            f = fits.get(m)
            fit_label = ""
            if isinstance(f, PowerLaw):
                fit_label = f"; err = {f.a:.3f}(x/x0)^-{f.b:.2f} + {f.c:.3f}" + ("" if f.has_band else ", no band")
            ax.errorbar(p[axis], 100 * p["mean"], yerr=100 * p["std"], marker="o", capsize=3, ls="none",
                        color=color, label=f"{m} (n={int(p['n'].max())}/size){fit_label}")
            if isinstance(f, PowerLaw):
                xs = np.geomspace(p[axis].min(), p[axis].max() * extrapolate, 80)
                lo, hi = f.band(xs)
                ax.plot(xs, 100 * (1 - f.predict(xs)), color=color, lw=1.2)
                if np.all(np.isfinite(lo)):
                    ax.fill_between(xs, 100 * (1 - hi), 100 * (1 - lo), color=color, alpha=0.12, lw=0)
                bands += [{"axis": axis, "method": m, "x": float(v), "predicted_accuracy": float(1 - e),
                           "band_low": float(1 - h), "band_high": float(1 - lo_)}
                          for v, e, lo_, h in zip(xs, f.predict(xs), lo, hi, strict=True)]
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _short(v)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("MACs (multiply-adds per image)" if axis == "macs" else "parameters")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (%), mean ± std over seeds")
        ax.set_title(title or f"{metric.replace('_', ' ')} against {axis}; lines: saturating power-law fit, "
                     f"band 90 %", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path = out / f"accuracy_vs_{axis}.png"
        atomic_write(path, functools.partial(fig.savefig, dpi=120))
        files.append(str(path))
    atomic_text(out / "fits.json", json.dumps(_clean(fits_json), indent=2) + "\n")
    atomic_write(out / "bands.csv", lambda t: pd.DataFrame(bands).to_csv(t, index=False))
    return {"files": files, "fits": fits_json, "points": points}


def matched_comparison(df: pd.DataFrame, *, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per phi >= 1: each method's mean and std of ``metric`` over seeds, its MACs, and its
    difference from the family member (compound or official) of the same phi, best first."""
    pts = aggregate(df, metric=metric)
    pts = pts[pts["phi"] > 0]
    fam = pts[pts["method"].isin(BASE_METHODS)].set_index("phi")["mean"]
    out = pts.assign(delta_vs_family=pts["mean"] - pts["phi"].map(fam))
    return out.sort_values(["phi", "mean"], ascending=[True, False]).reset_index(drop=True)


def family_gain(df: pd.DataFrame, *, metric: str = "test_accuracy") -> dict[str, Any]:
    """Does the largest family member beat the base by more than the seed spread?

    The seed spread is the largest range (max - min over seeds) of the two members; the gain
    counts only if it exceeds that spread (a conservative check: with 2 seeds there is no
    meaningful confidence interval).
    """
    d = df[df["method"].isin(BASE_METHODS) & df[metric].notna()]
    if d.empty:
        raise UserError(f"no trained family member has {metric!r}")
    lo, hi = int(d["phi"].min()), int(d["phi"].max())
    a, b = d[d["phi"] == lo][metric], d[d["phi"] == hi][metric]
    spread = float(max(a.max() - a.min(), b.max() - b.min()))
    gain = float(b.mean() - a.mean())
    return {"metric": metric, "base_phi": lo, "largest_phi": hi, "base_mean": float(a.mean()),
            "largest_mean": float(b.mean()), "gain": gain, "seed_spread": spread, "seeds": int(min(len(a), len(b))),
            "beats_base_beyond_spread": bool(gain > spread)}


def _short(v: float) -> str:
    """Axis label of a count: ``2e6 -> '2M'``."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def _clean(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def load_results(paths: list[str]) -> pd.DataFrame:
    """Concatenate ``family.csv`` tables: each path is a CSV or a directory holding ``family.csv``."""
    if not paths:
        raise UserError("no result directories given: pass the --out DIR of 'effnas family'")
    frames = []
    seen: dict[Path, str] = {}
    for p in paths:
        path = Path(p)
        with user_file(p, "results", "give a directory written by 'effnas family --train'"):
            csv = path / "family.csv" if path.is_dir() else path
            if not csv.is_file():
                raise UserError(f"{str(csv)!r} does not exist: give a directory written by 'effnas family --train'")
            if csv.resolve() in seen:
                raise UserError(f"{p!r} and {seen[csv.resolve()]!r} are the same results: give each directory once")
            seen[csv.resolve()] = str(p)
            d = pd.read_csv(csv)
        if d.empty:
            raise UserError(f"{str(csv)!r} has no rows: give a family.csv of trained members")
        missing = [c for c in ("method", "phi", "macs", "params") if c not in d.columns]
        if missing:
            raise UserError(f"{str(csv)!r} lacks column {missing[0]!r}: expected a family.csv")
        frames.append(d)
    return pd.concat(frames, ignore_index=True)


__all__ = ["aggregate", "check_results", "family_gain", "fit_methods", "load_results", "matched_comparison",
           "plot_curves", "with_shared_base"]
