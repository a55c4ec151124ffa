"""The report's Findings: a few sentences computed from the run's files, first in the report.

Every sentence is computed by code from what the stages wrote (never typed), and every number it
states is a mean with its 95 % interval and ``n`` (:mod:`effnas.search_spaces.common.stats`, the one
rule for intervals and verdicts). A stage whose files are missing gives no sentence. In order
(docs/experiments.md, "Findings"):

1. **baseline**: the candidate the search picked (trial, spec name, MACs), its reward and accuracy,
   or score when an estimator measured it (never called an accuracy), and whether the re-evaluation
   found it distinguishable from the runners-up (``search/trials.csv``, ``pareto.json``,
   ``reevaluation.json``/``.csv``); or that ``train.model`` stood in when the search was skipped;
2. **grid**: the picked point against the runner-up (the other network of the last rung with the
   highest mean), both intervals and the verdict; the seed noise (noise floor); the tie set and the
   pick rule (``grid/grid.csv``, ``coefficients.json``);
3. **compound equals X-only**: when the picked coefficients leave one dimension scaling
   (``alpha = beta = 1``: resolution-only, ...), or the family's compound members are the same
   networks as a single dimension's (blocks, parameters, MACs and resolution, ``family/family.csv``);
   not for a family of the official table (``family.official``), which does not use them;
4. **verdicts**: compound against each single dimension at equal MACs at the largest phi, and
   over every phi (the report's comparisons: ``compare_methods``, ``verdict_lines``, ``claim_row``);
5. **fits**: per curve whether its fit is determined, its parameters at a bound, R² and RMSE over
   its runs, and the held-out check (``curves/fits.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effnas.experiments.report.reading import read_csv, read_json, value_column
from effnas.experiments.report.verdicts import trained
from effnas.nas.measure import SCORE, reward_formula
from effnas.scaling.analysis.compare import claim_row, compare_methods, verdict_lines
from effnas.scaling.analysis.rules import NOT_RULES, compare_rules, rule_lines
from effnas.scaling.curves import with_shared_base
from effnas.scaling.fit import AT_BOUND, DETERMINED, UNDETERMINED
from effnas.scaling.rungs import accuracy
from effnas.search_spaces import load_spec
from effnas.search_spaces.common.stats import BETTER, TIED, Comparison, Interval, compare, interval, noise_floor
from effnas.search_spaces.counts import counts
from effnas.search_spaces.spec import NetworkSpec

#: A coefficient this close to 1 does not scale its dimension.
ONE = 1e-6
#: The single dimension compound scaling reduces to when the other two coefficients are 1.
SINGLE = {("alpha", "beta"): "resolution", ("alpha", "gamma"): "width", ("beta", "gamma"): "depth"}
#: Columns of family.csv that make two members the same network.
SAME_NETWORK = ("blocks", "params", "macs", "resolution")


def findings(run: Path, *, config: dict[str, Any], stages: dict[str, Any],
             baseline: NetworkSpec | None = None) -> list[str]:
    """The Findings of the run directory ``run`` (see the module docstring); ``baseline`` is the
    report's chosen baseline (for a run whose search was skipped)."""
    same = _same_networks(run) if not (config.get("family") or {}).get("official") else ([], {})
    return [*_baseline(run, config, stages, baseline), *_grid(run), *same[0], *_verdicts(run, same[1]), *_rules(run),
            *_fits(run)]


# ---- numbers ------------------------------------------------------------------------------------

def _scale(measure: str) -> tuple[float, int, str]:
    """Scale, digits and unit of an accuracy (percent) or a score (as it is: a rank, no percentage)."""
    return (1.0, 3, "") if measure == SCORE else (100.0, 1, " points")


def _diff(c: Comparison, measure: str = "accuracy") -> str:
    """``'+1.9 [+0.4, +3.4] points'``; without an interval, why there is none."""
    k, d, unit = _scale(measure)
    if not math.isfinite(c.low):
        return f"{k * c.diff:+.{d}f}{unit} (no interval: {c.note or 'too few runs'})"
    return f"{k * c.diff:+.{d}f} [{k * c.low:+.{d}f}, {k * c.high:+.{d}f}]{unit}"


def _iv(iv: Interval, measure: str = "accuracy") -> str:
    k, d, _ = _scale(measure)
    return iv.text(scale=k, digits=d)


def _coeffs(r: Any) -> str:
    return f"({float(r['alpha']):g}, {float(r['beta']):g}, {float(r['gamma']):g})"


def _whole(v: Any) -> str:
    """``3961088.0`` -> ``'3961088'``; ``1.5`` -> ``'1.5'``."""
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def _has(df: pd.DataFrame, *cols: str) -> bool:
    return set(cols) <= set(df.columns)


# ---- 1. baseline --------------------------------------------------------------------------------

def _baseline(run: Path, config: dict[str, Any], stages: dict[str, Any], spec: NetworkSpec | None) -> list[str]:
    search = run / "search"
    if not (search / "trials.csv").is_file():
        info = stages.get("search")
        skipped = isinstance(info, dict) and info.get("status") == "skipped"
        if not (skipped or (config.get("search") or {}).get("trials") == 0) or spec is None:
            return []
        res = (config.get("data") or {}).get("resolution") or spec.resolution
        model = (config.get("train") or {}).get("model")
        who = f"train.model = {model}" if model else "the given baseline"
        return [f"Baseline: no search ran (search.trials = 0), so {who} stands in for it: {spec.name}, "
                f"{counts(spec, res).macs / 1e6:.2f} M MACs at {res} px, chosen by the config, not by a search."]
    trials = read_csv(search / "trials.csv")
    info = read_json(search / "pareto.json") if (search / "pareto.json").is_file() else {}
    column, measure, label = value_column(trials.columns, info, config)
    if not _has(trials, "number", "reward", "macs", column):
        return []
    done = trials[trials[column].notna() & trials["reward"].notna()]
    if "state" in done.columns:
        done = done[done["state"] == "COMPLETE"]
    if done.empty:
        return []
    reeval = read_json(search / "reevaluation.json") if (search / "reevaluation.json").is_file() else {}
    runs = read_csv(search / "reevaluation.csv") if (search / "reevaluation.csv").is_file() else pd.DataFrame()
    rm = str(reeval.get("measure", measure))
    if "winner" in reeval and _has(runs, "trial", "reward", rm) and (runs["trial"] == reeval["winner"]).any():
        winner = int(reeval["winner"])
    else:
        winner, runs = int(done.loc[done["reward"].astype(float).idxmax(), "number"]), pd.DataFrame()
    if not (done["number"] == winner).any():  # files of two searches: nothing to say that holds for both
        return []
    row = done[done["number"] == winner].iloc[0]
    name = _spec_name(search / "best_spec.json")
    formula = str(info.get("reward") or reward_formula(measure, str(info.get("cost") or "macs")))
    what = (f"score ({label}; a score ranks candidates, it is not an accuracy)" if measure == SCORE
            else f"{label} (%)")
    if runs.empty:
        why = ("search.reevaluate = 0" if (config.get("search") or {}).get("reevaluate") == 0
               else "no readable search/reevaluation.csv")
        text = (f"Baseline: the search picked trial #{winner} ({name}, {float(row['macs']) / 1e6:.2f} M MACs) by its "
                f"reward ({formula}) {_iv(interval([row['reward']]), measure)}; its {what}: "
                f"{_iv(interval([row[column]]), measure)}. Not re-evaluated ({why}): with one run per candidate, "
                "whether it stands out from the runners-up is not known.")
        return [text]
    groups = {int(t): g for t, g in runs.groupby("trial", sort=False)}
    order = [int(c["trial"]) for c in reeval.get("candidates", []) if int(c["trial"]) in groups] or list(groups)
    floor = noise_floor([groups[t]["reward"].astype(float).tolist() for t in order])  # as the re-evaluation did
    mine = groups[winner]["reward"].astype(float).tolist()
    text = (f"Baseline: the search picked trial #{winner} ({name}, {float(row['macs']) / 1e6:.2f} M MACs) by its mean "
            f"reward ({formula}) {_iv(interval(mine), measure)}; its {what}: "
            f"{_iv(interval(groups[winner][rm].astype(float)), measure)}")
    seeds = reeval.get("seeds") or (sorted(set(runs["seed"])) if "seed" in runs.columns else [])
    text += f", over seeds {', '.join(map(str, seeds))}" if seeds else ""
    if int(reeval.get("search_best", winner)) != winner:
        text += f" (the search's single runs ranked #{reeval['search_best']} first)"
    rivals = [t for t in order if t != winner]
    if not rivals:
        return [text + ". No runner-up was re-evaluated."]
    comps = {t: compare(mine, groups[t]["reward"].astype(float).tolist(), floor=floor) for t in rivals}
    verdicts = [c.verdict for c in comps.values()]
    head = ("distinguishable from every runner-up" if set(verdicts) == {BETTER} else
            f"not distinguishable from {verdicts.count(TIED)} of {len(rivals)} runners-up" if TIED in verdicts else
            "not separable from the runners-up with these runs")
    k, d, unit = _scale(measure)
    noise = f"noise floor sd {k * floor.sd:.{d + 1}f}{unit} ({floor.df} df)" if floor else "no noise floor"
    return [text + f". Re-evaluated against {len(rivals)} runner{'s' if len(rivals) > 1 else ''}-up ({noise}): {head}; "
            "winner minus runner-up in reward: " + "; ".join(f"#{t} {_diff(c, measure)}, {c.verdict}"
                                                             for t, c in comps.items()) + "."]


def _spec_name(path: Path) -> str:
    if not path.is_file():
        return "its spec"
    try:
        return load_spec(str(path)).name
    except ValueError as e:  # a damaged file: the report says so and goes on
        return f"its spec ({path.name}: {e})"


# ---- 2. grid ------------------------------------------------------------------------------------

def _grid(run: Path) -> list[str]:
    path = run / "grid" / "grid.csv"
    if not path.is_file():
        return []
    g = read_csv(path)
    if not _has(g, "alpha", "beta", "gamma", "network", "rung", "seed", "status", "val_accuracy", "picked"):
        return []
    c = read_json(run / "grid" / "coefficients.json") if (run / "grid" / "coefficients.json").is_file() else {}
    done = g.assign(_acc=accuracy(g)).dropna(subset=["_acc"]).drop_duplicates(["network", "rung", "seed"])
    picked = g[g["picked"].map(lambda v: str(v).lower() == "true")]
    if done.empty or picked.empty:
        return []
    last = done.groupby("network")["rung"].max()
    final = done[done["rung"] == done["network"].map(last)]
    final = final[final["network"].map(last) == last.max()]  # the networks compared in the last rung
    per = {int(n): r.sort_values("seed") for n, r in final.groupby("network")}
    win = int(picked.iloc[0]["network"])
    if win not in per:
        return []
    floor = noise_floor(r["_acc"].tolist() for r in per.values())  # as the tie set did (scaling/rungs.py)
    e = int(per[win]["epochs"].iloc[0]) if "epochs" in per[win].columns else None
    epochs = "" if e is None else f", {e} epoch{'' if e == 1 else 's'}"
    src = f"{c['source']}, " if isinstance(c.get("source"), str) else ""
    w = per[win]
    text = (f"Grid ({src}validation accuracy (%) in rung {int(last.max())}{epochs}): picked {_coeffs(picked.iloc[0])} "
            f"{_iv(interval(w['_acc']))}")
    others = {n: r for n, r in per.items() if n != win}
    if others:
        ru = max(others, key=lambda n: (others[n]["_acc"].mean(), -n))
        r = others[ru]
        cmp = compare(w["_acc"].tolist(), r["_acc"].tolist(), seeds_a=w["seed"].astype(int).tolist(),
                      seeds_b=r["seed"].astype(int).tolist(), floor=floor)
        first = g[g["network"] == ru].iloc[0]
        text += (f" against the runner-up {_coeffs(first)} (the other network with the highest mean) "
                 f"{_iv(interval(r['_acc']))}: picked minus runner-up {_diff(cmp)}, {cmp.verdict}")
    else:
        text += ", the only network trained to the last rung"
    text += (f". Seed noise: noise floor sd {100 * floor.sd:.2f} points ({floor.df} df, {floor.groups} networks)"
             if floor else ". Seed noise: not measured (one run per network in the last rung; set grid.seeds to 2)")
    points = g.drop_duplicates(["alpha", "beta", "gamma"])
    points = points[points["network"].isin(per)]
    tied = points["tied_with_best"].map(lambda v: str(v).lower() == "true") if "tied_with_best" in points else None
    if floor is None or tied is None:
        text += "; which points are tied with the best is unknown"
    else:
        text += f"; {int(tied.sum())} of {len(points)} trained points tied with the best within noise"
    rule = c.get("picked_by")
    return [text + (f"; picked by the rule: {rule}." if isinstance(rule, str) else ".")]


# ---- 3. compound equals a single dimension -------------------------------------------------------

def _same_networks(run: Path) -> tuple[list[str], dict[str, list[int]]]:
    """The finding, and per single-dimension method the phis at which the family's compound
    members are the same networks as its."""
    coef = run / "grid" / "coefficients.json"
    c = read_json(coef) if coef.is_file() else {}
    ones = {k: math.isclose(float(v), 1.0, abs_tol=ONE) for k in ("alpha", "beta", "gamma")
            if isinstance(v := c.get(k), int | float)}
    by_coef = next((m for pair, m in SINGLE.items() if len(ones) == 3 and all(ones[k] for k in pair)), None)
    same, differ = _realised(run)
    lines = []
    if by_coef is not None:
        grown = {"resolution": "gamma", "width": "beta", "depth": "alpha"}[by_coef]
        fixed = [k for k in ("alpha", "beta", "gamma") if k != grown]
        text = (f"Compound equals {by_coef}-only here: {fixed[0]} = 1 and {fixed[1]} = 1 (grid/coefficients.json), so "
                f"compound scaling grows only the {by_coef} ({grown} = {float(c[grown]):g} per phi)")
        if same.get(by_coef):
            text += f", and builds the same networks as {by_coef}-only at phi {', '.join(map(str, same[by_coef]))}"
        if differ.get(by_coef):
            text += f" (they differ at {'; '.join(differ[by_coef])}: rounding to whole pixels, repeats or channels)"
        text += f". The compound curve lies on (or next to) the {by_coef}-only curve"
        if same.get(by_coef):
            at = "" if not differ.get(by_coef) else f"at phi {', '.join(map(str, same[by_coef]))} "
            text += f", and {at}compound against {by_coef}-only compares a network with itself"
        lines.append(text + ".")
    for m, phis in same.items():
        if m != by_coef and phis:
            whole = not differ.get(m)
            but = "" if whole else f", not at {'; '.join(differ[m])}"
            lines.append(f"Compound {'equals ' + m + '-only here' if whole else 'and ' + m + '-only coincide'}: at "
                         f"phi {', '.join(map(str, phis))} they build the same network ({', '.join(SAME_NETWORK)} "
                         f"equal in family/family.csv){but}, although the coefficients scale more than the {m}.")
    return lines, same


def _realised(run: Path) -> tuple[dict[str, list[int]], dict[str, list[str]]]:
    """Per single-dimension method, the phis >= 1 where its member is the same network as the
    compound member of that phi, and where it is not (``'phi 1 (resolution 22 vs 21)'``)."""
    path = run / "family" / "family.csv"
    df = read_csv(path) if path.is_file() else pd.DataFrame()
    keys = [k for k in SAME_NETWORK if k in df.columns]
    if not _has(df, "method", "phi") or len(keys) < 2 or not (df["method"] == "compound").any():
        return {}, {}
    first = df.drop_duplicates(["method", "phi"]).set_index(["method", "phi"])
    same: dict[str, list[int]] = {}
    differ: dict[str, list[str]] = {}
    for m in ("depth", "width", "resolution"):
        for phi in sorted(int(p) for p in df.loc[df["method"] == m, "phi"].unique() if p > 0):
            if ("compound", phi) in first.index:
                a, b = first.loc[("compound", phi)], first.loc[(m, phi)]
                gaps = [f"{k} {_whole(a[k])} vs {_whole(b[k])}" for k in keys if a[k] != b[k]]
                if gaps:
                    differ.setdefault(m, []).append(f"phi {phi} ({', '.join(gaps)})")
                else:
                    same.setdefault(m, []).append(phi)
    return same, differ


# ---- 4. verdicts -------------------------------------------------------------------------------

def _verdicts(run: Path, same: dict[str, list[int]]) -> list[str]:
    path = run / "family" / "family.csv"
    got = trained(path) if path.is_file() else None
    if got is None:
        return []
    df, metric = got
    table = compare_methods(df, metric=metric)
    lines = []
    for b, t in table.groupby("b", sort=True):
        top = t[t["phi"] == t["phi"].max()]
        claim = claim_row("", "", list(t["verdict"]))
        ident = f" (the same networks as compound at phi {', '.join(map(str, same[str(b)]))})" if same.get(str(b)) \
            else ""
        lines.append(f"{top['a'].iloc[0].capitalize()} against {b}-only at equal MACs ({metric.replace('_', ' ')}, "
                     f"A - B with its 95 % interval){ident}: at the largest phi, {verdict_lines(top)[0]}; over phi "
                     f"{', '.join(map(str, t['phi']))}: {claim['comparisons']}, so the paper's claim (compound beats "
                     f"{b}-only scaling): {claim['verdict']}.")
    return lines


def _rules(run: Path) -> list[str]:
    """Each other rule of ``family.rules`` against compound at the largest phi, at every cost
    (:func:`effnas.scaling.analysis.rules.compare_rules`); none for a family of one rule."""
    path = run / "family" / "family.csv"
    got = trained(path) if path.is_file() else None
    if got is None:
        return []
    df, metric = got
    if not set(df["method"].astype(str)) - {"compound", *NOT_RULES}:
        return []
    table = compare_rules(df, metric=metric)
    if table.empty:
        return []
    top = table[table["phi"] == table["phi"].max()]
    return [f"Rules against compound at phi {int(top['phi'].iloc[0])} ({metric.replace('_', ' ')}, compound - rule "
            f"with its 95 % interval; a cost the two do not share within the tolerance gets no verdict): "
            + "; ".join(" ".join(line.split()) for line in rule_lines(top)) + "."]


# ---- 5. fits ------------------------------------------------------------------------------------

def _fits(run: Path) -> list[str]:
    path = run / "curves" / "fits.json"
    if not path.is_file():
        return []
    fits = read_json(path)
    metric = str(fits.get("metric", "test_accuracy"))
    family = run / "family" / "family.csv"
    df = read_csv(family) if family.is_file() else pd.DataFrame()
    data = with_shared_base(df[df[metric].notna()]) if _has(df, "method", "phi", metric) else pd.DataFrame()
    lines = []
    for axis in ("macs", "params"):
        methods = fits.get(axis)
        if not isinstance(methods, dict) or not methods:
            continue
        parts = [f"{m} {_fit_text(f, data[data['method'] == m] if len(data) else data, axis, metric)}"
                 for m, f in methods.items()]
        lines.append(f"Fits of error = a (x / x0)^-b + c against {axis} ({metric.replace('_', ' ')}, every run a "
                     f"point): " + "; ".join(parts) + ".")
    return lines


def _fit_text(f: Any, runs: pd.DataFrame, axis: str, metric: str) -> str:
    if not isinstance(f, dict):
        return str(f)  # "not fitted: why"
    status = str(f.get("status", ""))
    words = {DETERMINED: "determined (drawn with its 90 % band)",
             AT_BOUND: f"at a bound ({', '.join(f.get('at_bound') or [])}; drawn dashed, no band)",
             UNDETERMINED: "undetermined (not drawn)"}.get(status, status)
    if status == UNDETERMINED:
        return words + f", n = {f.get('n_points')} runs"
    r2 = _r2(f, runs, axis, metric)
    out = words + (f", R² {round(r2, 2) + 0.0:.2f}" if r2 is not None else "")  # + 0.0: no "-0.00"
    out += f", RMSE {100 * float(f['rmse']):.1f} points, n = {f.get('n_points')} runs"
    h = f.get("holdout")
    if isinstance(h, dict):
        lo, hi = (math.nan if v is None else float(v) for v in (h["observed_ci_low"], h["observed_ci_high"]))
        obs = Interval(int(h["observed_n"]), float(h["observed_accuracy"]), lo, hi, math.nan)
        out += (f"; fitted to phi {', '.join(map(str, h['fit_phis']))} it predicts phi {h['phi']} at "
                f"{100 * float(h['predicted_accuracy']):.1f} %, observed {_iv(obs)}")
    return out


def _r2(f: dict[str, Any], runs: pd.DataFrame, axis: str, metric: str) -> float | None:
    """R² of the fitted law over the runs it was fitted to (None when they are not the fit's runs)."""
    if runs.empty or axis not in runs.columns or len(runs) != f.get("n_points"):
        return None
    y = 1.0 - runs[metric].to_numpy(float)
    pred = float(f["a"]) * np.power(runs[axis].to_numpy(float) / float(f["x0"]), -float(f["b"])) + float(f["c"])
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else None


__all__ = ["findings"]
