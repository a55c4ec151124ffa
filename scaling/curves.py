"""Scaling curves: accuracy against MACs, params and (when the table has them) activations, training
time and measured latency for each scaling method, the 95 %
t-interval over seeds as error bars, a fitted saturating power law per method with an
extrapolation band and a held-out check, saved as PNG and as data (CSV and JSON).

Input is one or more result tables (``family.csv`` files) with at least ``method``, ``phi``,
``macs``, ``params`` and an accuracy column. Single-dimension baselines have no phi = 0 row of
their own: they start from the same base, so the family's phi = 0 rows are added to their curves.

Every aggregate is ``n``, ``mean``, ``std`` and the 95 % Student-t interval of the mean over
seeds (``ci_low``, ``ci_high``; :func:`effnas.search_spaces.common.stats.interval`). A point of one run
has no interval: NaN in the data, ``n = 1`` and no error bar where it is shown.

How fits are drawn: a ``determined`` fit as a line with its 90 % band; a fit with a parameter
``at bound`` as a dashed line without band (the legend says which parameter); an
``undetermined`` fit not at all (its points only; the legend says so): a curve the data do not
determine is not shown as if it were one.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effnas.scaling.fit import DETERMINED, UNDETERMINED, PowerLaw, fit_power_law
from effnas.search_spaces.common.atomic import atomic_text, atomic_write
from effnas.search_spaces.common.errors import UserError, user_file
from effnas.search_spaces.common.stats import Interval, interval

#: Plot order and colours of the scaling methods (matplotlib's default cycle).
COLORS = {"compound": "C3", "official": "C1", "depth": "C0", "width": "C2", "resolution": "C4", "base": "C7"}
BASE_METHODS = ("compound", "official")
#: Measured costs (this machine's, per run): seconds in training steps, and the median inference latency of
#: :mod:`effnas.search_spaces.timing` at batch 1 and at ``family.latency_batch``. A point's value is the mean
#: over its runs (latency is measured once per network, so its runs agree).
MEASURED = ("train_seconds", "latency_ms_b1", "latency_ms_bN")
#: The cost axes a curve can be drawn against; ``activations`` and the :data:`MEASURED` ones only when
#: the table has that column (family tables written before it was added do not) and every value is positive.
AXES = ("macs", "params", "activations", *MEASURED)
AXIS_LABELS = {"macs": "MACs (multiply-adds per image)", "params": "parameters",
               "activations": "activations (conv + linear output elements per image)",
               "train_seconds": "training time (s in training steps, this machine)",
               "latency_ms_b1": "latency at batch 1 (ms, median; torch eager, this machine)",
               "latency_ms_bN": "latency at batch N = latency_batch (ms per batch, median; torch eager)"}


def cost_axes(df: pd.DataFrame, *, metric: str | None = None) -> list[str]:
    """The :data:`AXES` ``df`` can be drawn against: macs and params always, the others when present
    and positive on every row (every row that has ``metric``, when given).

    >>> cost_axes(pd.DataFrame({"macs": [1], "params": [2], "activations": [3]}))
    ['macs', 'params', 'activations']
    >>> cost_axes(pd.DataFrame({"macs": [1], "params": [2], "activations": [0], "latency_ms_b1": [0.5]}))
    ['macs', 'params', 'latency_ms_b1']
    """
    rows = df[df[metric].notna()] if metric is not None and metric in df.columns else df
    out = ["macs", "params"]
    for axis in AXES[2:]:
        if axis in rows.columns:
            a = pd.to_numeric(rows[axis], errors="coerce")
            if len(a) and bool((np.isfinite(a) & (a > 0)).all()):
                out.append(axis)
    return out


def with_shared_base(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus, for each single-dimension method without phi = 0, the family's phi = 0 rows."""
    base = df[df["method"].isin(BASE_METHODS) & (df["phi"] == 0)]
    extra = [base.assign(method=m) for m in df["method"].unique()
             if m not in BASE_METHODS and not ((df["method"] == m) & (df["phi"] == 0)).any() and not base.empty]
    return pd.concat([df, *extra], ignore_index=True) if extra else df


#: How every interval of an aggregate is computed, as written beside it.
INTERVAL = "95 % t-interval over seeds"
#: The columns of an aggregate after the grouping keys.
AGGREGATE_COLUMNS = ("n", "mean", "std", "ci_low", "ci_high")


def aggregate(df: pd.DataFrame, *, metric: str, shared_base: bool = True) -> pd.DataFrame:
    """A row per (method, phi): ``macs``, ``params``, ``activations`` and the :data:`MEASURED` costs
    (when present; those as the mean over the runs) and, of
    ``metric`` over the runs that have it, ``n``, ``mean``, ``std`` and the 95 % t-interval of
    the mean (``ci_low``, ``ci_high``;
    NaN, as ``std``, when ``n = 1``). With ``shared_base`` the family's phi = 0 runs are also
    the first point of each single-dimension method (:func:`with_shared_base`).

    >>> d = pd.DataFrame({"method": ["compound"] * 4, "phi": [0, 0, 0, 1], "macs": [1, 1, 1, 2],
    ...                   "params": [5, 5, 5, 9], "acc": [0.60, 0.62, 0.64, 0.7]})
    >>> aggregate(d, metric="acc")[["phi", "n", "mean", "ci_low", "ci_high"]].round(3).values.tolist()
    [[0.0, 3.0, 0.62, 0.57, 0.67], [1.0, 1.0, 0.7, nan, nan]]
    """
    if metric not in df.columns:
        raise UserError(f"no accuracy column {metric!r} in the results: train the family first (--train), "
                         f"or pick --metric from {', '.join(c for c in df.columns if 'accuracy' in c) or 'none'}")
    d = df[df[metric].notna()]
    d = with_shared_base(d) if shared_base else d
    cost = [c for c in AXES if c in d.columns]
    rows = []
    for (method, phi), g in d.groupby(["method", "phi"], sort=True):
        iv = interval(g[metric])
        at = {c: pd.to_numeric(g[c], errors="coerce").mean() if c in MEASURED else g[c].iloc[0] for c in cost}
        rows.append({"method": method, "phi": phi, **at, "n": iv.n, "mean": iv.mean,
                     "std": iv.sd, "ci_low": iv.low, "ci_high": iv.high})
    out = pd.DataFrame(rows, columns=["method", "phi", *cost, *AGGREGATE_COLUMNS])
    out["metric"] = metric
    return out


def interval_text(row: Any, *, prefix: str = "", scale: float = 100.0, digits: int = 2) -> str:
    """An aggregate's row (``n``, ``mean``, ``std``, ``ci_low``, ``ci_high``, each after
    ``prefix``) as ``'63.10 [61.20, 65.00] (n = 3)'``, or ``'63.10 (n = 1)'`` (no interval);
    ``'no runs'`` when ``n`` is 0 or missing.

    >>> interval_text({"n": 1, "mean": 0.631, "std": float("nan"), "ci_low": float("nan"),
    ...                "ci_high": float("nan")})
    '63.10 (n = 1)'
    """
    def num(key: str) -> float:  # NaN for a missing value (None in JSON)
        v = row[f"{prefix}{key}"]
        return math.nan if v is None else float(v)

    n = num("n")
    if not (math.isfinite(n) and n >= 1):
        return "no runs"
    return Interval(int(n), num("mean"), num("ci_low"), num("ci_high"), num("std")).text(scale=scale, digits=digits)


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


def fit_methods(df: pd.DataFrame, *, metric: str, x: str = "macs", bootstrap: int = 0) -> dict[str, PowerLaw | str]:
    """A power-law fit of error (1 - accuracy) against ``x`` per method, every seed a point (and
    ``bootstrap`` refits on the seeds resampled within each size); a string saying why where a
    method has too few sizes."""
    d = with_shared_base(df[df[metric].notna()])
    fits: dict[str, PowerLaw | str] = {}
    for method, g in d.groupby("method", sort=True):
        try:
            fits[str(method)] = fit_power_law(g[x].to_numpy(float), 1.0 - g[metric].to_numpy(float),
                                              bootstrap=bootstrap)
        except (ValueError, RuntimeError) as e:
            fits[str(method)] = f"not fitted: {e}"
    return fits


def holdout(df: pd.DataFrame, *, metric: str, x: str = "macs") -> dict[str, dict[str, Any] | str]:
    """Per method, how well the curve predicts its largest member: the law fitted to phi <= K-1
    (every seed a point), its predicted accuracy at phi = K (the method's largest phi) beside the
    observed mean with its 95 % t-interval, and the difference (predicted - observed); a string
    saying why where there are fewer than three sizes below K."""
    d = with_shared_base(df[df[metric].notna()])
    out: dict[str, dict[str, Any] | str] = {}
    for method, g in d.groupby("method", sort=True):
        k = int(g["phi"].max())
        train, test = g[g["phi"] < k], g[g["phi"] == k]
        try:
            f = fit_power_law(train[x].to_numpy(float), 1.0 - train[metric].to_numpy(float))
        except (ValueError, RuntimeError) as e:
            out[str(method)] = f"not checked: the fit to phi <= {k - 1} failed: {e}"
            continue
        xk = float(test[x].iloc[0])
        obs = interval(test[metric])
        pred = float(1.0 - f.predict([xk])[0])
        lo, hi = f.band([xk])
        out[str(method)] = {
            "fit_phis": sorted(int(p) for p in train["phi"].unique()), "phi": k, "x": xk,
            "predicted_accuracy": pred, "band_low": float(1 - hi[0]), "band_high": float(1 - lo[0]),
            "fit_status": f.status, "at_bound": list(f.at_bound),
            "observed_accuracy": obs.mean, "observed_n": obs.n, "observed_ci_low": obs.low,
            "observed_ci_high": obs.high, "difference": pred - obs.mean}
    return out


def holdout_text(h: dict[str, Any] | str) -> str:
    """A held-out check in one line: ``'fit to phi 0-2 predicts phi 3: 62.10 %; observed 61.00
    [59.00, 63.00] (n = 3); predicted - observed +1.10 points'``."""
    if isinstance(h, str):
        return h
    obs = {"n": h["observed_n"], "mean": h["observed_accuracy"], "std": math.nan, "ci_low": h["observed_ci_low"],
           "ci_high": h["observed_ci_high"]}
    phis = h["fit_phis"]
    fit = f"phi {phis[0]}-{phis[-1]}" if phis == list(range(phis[0], phis[-1] + 1)) else f"phis {phis}"
    note = f" ({h['fit_status']}{': ' + ', '.join(h['at_bound']) if h['at_bound'] else ''})" \
        if h["fit_status"] != DETERMINED else ""
    return (f"fit to {fit}{note} predicts phi {h['phi']}: {100 * h['predicted_accuracy']:.2f} %; observed "
            f"{interval_text(obs)}; predicted - observed {100 * h['difference']:+.2f} points")


def plot_curves(df: pd.DataFrame, out_dir: str | Path, *, metric: str = "test_accuracy", extrapolate: float = 4.0,
                title: str | None = None, bootstrap: int = 0) -> dict[str, Any]:
    """Write ``accuracy_vs_macs.png``, ``accuracy_vs_params.png`` and, when every trained row has them
    (:func:`cost_axes`), ``accuracy_vs_activations.png``, ``accuracy_vs_train_seconds.png``,
    ``accuracy_vs_latency_ms_b1.png`` and ``accuracy_vs_latency_ms_bN.png``, ``curves.csv`` (points: n,
    mean, std and 95 % t-interval over seeds), ``fits.json`` (power-law parameters, status,
    parameters at a bound, the held-out check and, with ``bootstrap`` resamples, bootstrap
    intervals; per method and axis) and ``bands.csv`` (fitted curve and 90 % band out to
    ``extrapolate`` times the largest size) into ``out_dir``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is slow to import
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = aggregate(df, metric=metric)
    atomic_write(out / "curves.csv", lambda t: points.to_csv(t, index=False))
    fits_json: dict[str, Any] = {"metric": metric, "extrapolate": extrapolate,
                                 "points": f"curves.csv: n, mean, std, ci_low, ci_high ({INTERVAL})",
                                 "holdout": "per method: the law fitted to phi <= K-1 predicts phi = K, the "
                                            "method's largest phi; difference = predicted - observed mean"}
    bands = []
    files = []
    for axis in cost_axes(df, metric=metric):
        fits = fit_methods(df, metric=metric, x=axis, bootstrap=bootstrap)
        checks = holdout(df, metric=metric, x=axis)
        fits_json[axis] = {m: ({**f.to_dict(), "holdout": checks[m]} if isinstance(f, PowerLaw) else f)
                           for m, f in fits.items()}
        fig = Figure(figsize=(7, 4.8))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        bands += draw_curves(ax, points, fits, axis, extrapolate=extrapolate)
        ax.set_title(title or f"{metric.replace('_', ' ')} against {axis}; lines: saturating power-law fit, "
                     f"band 90 % (dashed: a parameter at its bound, no band)", fontsize=8)
        fig.tight_layout()
        path = out / f"accuracy_vs_{axis}.png"
        atomic_write(path, functools.partial(fig.savefig, dpi=120))
        files.append(str(path))
    atomic_text(out / "fits.json", json.dumps(_clean(fits_json), indent=2) + "\n")
    atomic_write(out / "bands.csv", lambda t: pd.DataFrame(bands).to_csv(t, index=False))
    return {"files": files, "fits": fits_json, "points": points}


def draw_curves(ax: Any, points: pd.DataFrame, fits: dict[str, PowerLaw | str], axis: str, *,
                extrapolate: float) -> list[dict[str, Any]]:
    """Draw on the matplotlib axes ``ax``, per method, the points of :func:`aggregate` against
    ``axis`` (one of :data:`AXES`) with their 95 % t-interval (n = 1: hollow, no bar) and the
    fit of :func:`fit_methods` out to ``extrapolate`` times the largest size: with its 90 % band
    when determined, dashed without band when a parameter is at its bound, not at all when
    undetermined. Returns the drawn curves as rows of ``bands.csv``."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # lazy: matplotlib is slow to import

    bands = []
    methods = sorted(points["method"].unique(), key=lambda m: list(COLORS).index(m) if m in COLORS else 99)
    for m in methods:
        p = points[points["method"] == m].sort_values(axis)
        color = COLORS.get(m, None)
        f = fits.get(m)
        _draw_points(ax, p, axis, color, f"{m} ({_n_label(p['n'])}){_fit_label(f)}")
        if isinstance(f, PowerLaw) and f.status != UNDETERMINED:
            xs = np.geomspace(p[axis].min(), p[axis].max() * extrapolate, 80)
            lo, hi = f.band(xs)
            ax.plot(xs, 100 * (1 - f.predict(xs)), color=color, lw=1.2, ls="-" if f.has_band else "--")
            if f.has_band:
                ax.fill_between(xs, 100 * (1 - hi), 100 * (1 - lo), color=color, alpha=0.12, lw=0)
            bands += [{"axis": axis, "method": m, "x": float(v), "predicted_accuracy": float(1 - e),
                       "band_low": float(1 - h), "band_high": float(1 - lo_)}
                      for v, e, lo_, h in zip(xs, f.predict(xs), lo, hi, strict=True)]
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _short(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(AXIS_LABELS[axis])
    metric = str(points["metric"].iloc[0]).replace("_", " ") if len(points) else "accuracy"
    ax.set_ylabel(f"{metric} (%): mean, bars {INTERVAL}\n(hollow: n = 1, no bar)", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return bands


def _draw_points(ax: Any, p: pd.DataFrame, axis: str, color: str | None, label: str) -> None:
    """Means with their 95 % t-interval as error bars; points of one run hollow and without a bar."""
    many = p[p["n"] >= 2]
    one = p[p["n"] < 2]
    if len(many):
        yerr = 100 * np.vstack([many["mean"] - many["ci_low"], many["ci_high"] - many["mean"]])
        ax.errorbar(many[axis], 100 * many["mean"], yerr=yerr, marker="o", capsize=3, ls="none", color=color,
                    label=label)
    if len(one):
        ax.plot(one[axis], 100 * one["mean"], marker="o", ls="none", color=color, markerfacecolor="none",
                label=None if len(many) else label)


def _n_label(n: pd.Series) -> str:
    lo, hi = int(n.min()), int(n.max())
    return f"n = {lo}" if lo == hi else f"n = {lo}-{hi}"


def _fit_label(f: PowerLaw | str | None) -> str:
    if not isinstance(f, PowerLaw):
        return ""
    if f.status == UNDETERMINED:
        return f"; fit {f.note}"
    law = f"; err = {f.a:.3f}(x/x0)^-{f.b:.2f} + {f.c:.3f}"
    return law + (f", {f.note}" if f.note else "")


def matched_comparison(df: pd.DataFrame, *, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per phi >= 1: each method's mean and std of ``metric`` over seeds, its MACs, and its
    difference from the family member (compound or official) of the same phi, best first."""
    pts = aggregate(df, metric=metric)
    pts = pts[pts["phi"] > 0]
    fam = pts[pts["method"].isin(BASE_METHODS)].set_index("phi")["mean"]
    out = pts.assign(delta_vs_family=pts["mean"] - pts["phi"].map(fam))
    return out.sort_values(["phi", "mean"], ascending=[True, False]).reset_index(drop=True)


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


__all__ = ["AGGREGATE_COLUMNS", "AXES", "INTERVAL", "MEASURED", "aggregate", "check_results", "cost_axes",
           "draw_curves", "fit_methods", "holdout", "holdout_text", "interval_text", "load_results",
           "matched_comparison", "plot_curves", "with_shared_base"]
