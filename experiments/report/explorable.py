"""The interactive part of ``report.html``: the architecture viewer of the chosen baseline, the
search's Pareto front and the scaling curves, drawn by inline scripts from inline JSON.

:func:`explore_data` reads the run directory (``search/trials.csv``, ``grid/coefficients.json``,
``curves/curves.csv``, ``curves/bands.csv``, ``curves/fits.json``); every number and label the
page shows is formatted here, so the scripts (``viewer_assets/viewer.js``, ``report.js``) only
place them: hover a trial for its number, accuracy (a trained search) or score (a proxy or supernet
estimate, :mod:`effnas.nas.measure`), MACs, reward and block strings, click it for its spec JSON,
toggle each scaling method and the fit band. Static PNGs stay in ``report.md``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.experiments.report.reading import value_column
from effnas.experiments.report.viewer import asset, json_script, viewer_data, viewer_section
from effnas.nas.measure import ACCURACY
from effnas.nas.pareto import pareto_front
from effnas.scaling import PAPER, Coefficients
from effnas.scaling.curves import INTERVAL, interval_text
from effnas.scaling.fit import AT_BOUND, fit_note
from effnas.search_spaces.common.errors import first_line, user_file
from effnas.search_spaces.spec import NetworkSpec

#: Colours of the scaling methods, as ``effnas.scaling.curves.COLORS`` (matplotlib's default cycle).
METHOD_COLOURS = {"compound": "#d62728", "official": "#ff7f0e", "depth": "#1f77b4", "width": "#2ca02c",
                  "resolution": "#9467bd", "base": "#7f7f7f"}


def _num(v: Any) -> float | None:
    """A finite float, or ``None`` for empty and NaN cells."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame | str:
    """The CSV, or why it cannot be shown: missing, unreadable or without ``columns``."""
    if not path.is_file():
        return f"not run (no {path.parent.name}/{path.name})"
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        return f"cannot read {path.name}: {first_line(e)}"
    missing = [c for c in columns if c not in df.columns]
    return f"{path.name} has no column {missing[0]!r}" if missing else df


def pareto_data(run: Path, config: dict[str, Any] | None = None) -> dict[str, Any] | str:
    """The finished trials of ``search/trials.csv`` with their tooltip lines and spec JSON, and
    which of them are on the value-vs-MACs front (:func:`effnas.nas.pareto.pareto_front`), the
    value's name (``accuracy`` or ``score``) and axis label; or why there is nothing to show.
    ``config`` (the run's) names the estimator of a search written before ``pareto.json`` did."""
    df = _table(run / "search" / "trials.csv", ("number", "macs"))
    if isinstance(df, str):
        return df
    info: dict[str, Any] = {}
    pj = run / "search" / "pareto.json"
    if pj.is_file():
        with user_file(pj, "the search's", "restore it, or run the search again"):
            info = json.loads(pj.read_text())
    column, name, label = value_column(df.columns, info, config or {})
    if column not in df.columns:
        return f"trials.csv has no column {column!r}"
    if "state" in df.columns:
        df = df[df["state"] == "COMPLETE"]
    trials: list[dict[str, Any]] = []
    for r in df.to_dict(orient="records"):
        v, macs = _num(r.get(column)), _num(r.get("macs"))
        if v is None or macs is None:
            continue
        reward = _num(r.get("reward"))
        spec = r.get("spec")
        shown = f"accuracy {100 * v:.2f} %" if name == ACCURACY else f"score {v:.3f}"  # a score is no percentage
        trials.append({
            "number": int(r["number"]), "value": v, "macs": macs,
            "tip": [f"trial {int(r['number'])}", shown, f"MACs {int(macs):,}",
                    "reward " + (f"{reward:.4f}" if reward is not None else "-")]
            + str(r.get("blocks") or "").split(),
            "spec": json.dumps(json.loads(spec), indent=2) if isinstance(spec, str) and spec else None,
        })
    front = pareto_front([(t["value"], t["macs"]) for t in trials])
    for i in front:
        trials[i]["front"] = True
    target = _num((info.get("objective") or {}).get("target"))
    return {"trials": trials, "front": [trials[i]["number"] for i in front], "target": target, "measure": name,
            "ylabel": label}


def curves_data(run: Path) -> dict[str, Any] | str:
    """Mean and 95 % t-interval over seeds per method and phi (``curves.csv``; ``lo``/``hi`` None
    for one run), the fitted curves and 90 % bands (``bands.csv``) and the fit formulas and
    statuses (``fits.json``), per axis (MACs, params); or why there is nothing to show."""
    points = _table(run / "curves" / "curves.csv", ("method", "phi", "macs", "params", "n", "mean", "ci_low",
                                                     "ci_high"))
    if isinstance(points, str):
        return points
    bands = _table(run / "curves" / "bands.csv", ("axis", "method", "x", "predicted_accuracy", "band_low",
                                                   "band_high"))
    if isinstance(bands, str):  # no fit had enough sizes: the curves show points only
        bands = pd.DataFrame(columns=["axis", "method"])
    fits_path = run / "curves" / "fits.json"
    try:
        fits = json.loads(fits_path.read_text()) if fits_path.is_file() else {}
    except json.JSONDecodeError:
        fits = {}
    metric = str(points["metric"].iloc[0]) if "metric" in points.columns and len(points) else "accuracy"
    methods = sorted(points["method"].unique(), key=lambda m: list(METHOD_COLOURS).index(m)
                     if m in METHOD_COLOURS else 99)
    shown = metric.replace("_", " ")
    out: dict[str, Any] = {"metric": shown, "interval": INTERVAL, "methods": [],
                           "axes": ["macs", "params"]}
    for m in methods:
        p = points[points["method"] == m]
        entry: dict[str, Any] = {"method": m, "colour": METHOD_COLOURS.get(m, "#444444")}
        for axis in ("macs", "params"):
            pts = p.sort_values(axis)
            entry[axis] = {"points": [
                {"x": float(r[axis]), "y": float(r["mean"]), "lo": _num(r["ci_low"]), "hi": _num(r["ci_high"]),
                 "tip": f"{m} phi {int(r['phi'])}: {shown} (%) {interval_text(r)}, {int(r[axis]):,} {axis}"}
                for _, r in pts.iterrows()]}
            fit = fits.get(axis, {}).get(m)
            entry[axis]["fit"] = (f"error = {fit['a']:.3f} (x/x0)^-{fit['b']:.2f} + {fit['c']:.3f}" + _fit_note(fit)
                                  if isinstance(fit, dict) else str(fit or "not fitted"))
            entry[axis]["dashed"] = isinstance(fit, dict) and fit.get("status") == AT_BOUND
            b = bands[(bands["axis"] == axis) & (bands["method"] == m)]
            entry[axis]["line"] = [[float(r["x"]), float(r["predicted_accuracy"]), _num(r["band_low"]),
                                    _num(r["band_high"])] for _, r in b.iterrows()]
        out["methods"].append(entry)
    return out


def _fit_note(fit: dict[str, Any]) -> str:
    """Why a fit has no band (and, undetermined, no line), as in the PNG's legend."""
    note = fit_note(str(fit.get("status", "")), fit.get("at_bound") or [])
    return f" ({note})" if note else ""


def explore_data(run: Path, config: dict[str, Any], baseline: NetworkSpec | None) -> dict[str, Any]:
    """Everything the interactive section shows; a part that cannot be shown is a string saying why."""
    viewer: dict[str, Any] | str = "no baseline"
    if baseline is not None:
        res = config.get("data", {}).get("resolution") or baseline.resolution
        base = dataclasses.replace(baseline, resolution=int(res))
        coef_file = run / "grid" / "coefficients.json"
        official = bool(config.get("family", {}).get("official"))
        coeffs: Coefficients | None = None
        source = "the paper's coefficients (no grid/coefficients.json)"
        if coef_file.is_file() and not official:
            try:
                coeffs, source = Coefficients.load(coef_file), "grid/coefficients.json"
            except ValueError as e:
                source = f"the paper's coefficients ({e})"
        viewer = viewer_data(base, coefficients=coeffs or PAPER, official=official,
                             source=f"{baseline.name} at {res} px; " + ("official table" if official else source))
    return {"viewer": viewer, "pareto": pareto_data(run, config), "curves": curves_data(run)}


def explore_html(data: dict[str, Any]) -> str:
    """The section's HTML: its own styles, the three parts (or why one is missing), its scripts."""
    parts = [f"<style>{asset('viewer.css')}\n{asset('report.css')}</style>"]
    measure = data["pareto"]["measure"] if isinstance(data["pareto"], dict) else ACCURACY
    for key, title in (("viewer", "Architecture over phi"), ("pareto", f"Search: {measure} against MACs"),
                       ("curves", "Scaling curves")):
        parts.append(f"<h3>{title}</h3>")
        if isinstance(data[key], str):
            parts.append(f"<p><em>{html.escape(data[key][:1].upper() + data[key][1:])}.</em></p>")
        elif key == "viewer":
            parts.append(viewer_section(data[key]))
        else:
            parts.append(f"<div class='effnas-{key}' data-source='{key}-data'></div>")
            parts.append(json_script(data[key], f"{key}-data"))
    parts.append(f"<script>\n{asset('viewer.js')}\n</script>\n<script>\n{asset('report.js')}\n</script>")
    return "\n".join(parts)


__all__ = ["curves_data", "explore_data", "explore_html", "pareto_data", "value_column"]
