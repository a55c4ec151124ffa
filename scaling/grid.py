"""The alpha, beta, gamma grid search (EfficientNet paper, Section 3.3, step 1).

Fix phi = 1, enumerate coefficients on a grid with each >= 1 and
``|alpha * beta**2 * gamma**2 - target| <= tolerance``, scale the baseline by each, train it
and keep the best by validation accuracy (ties: fewer MACs). The paper found 1.2, 1.1, 1.15.
Candidates train through :func:`scaling.runner.run_jobs`: in parallel when the executor is
Ray's, resumable per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scaling.coefficients import Coefficients
from scaling.compound import member
from scaling.runner import FINISHED, ExecutorFn, Job, TrainerFn, run_jobs
from search_spaces import NetworkSpec
from search_spaces.counts import counts


def grid_candidates(*, step: float = 0.05, target: float = 2.0, tolerance: float = 0.1) -> list[Coefficients]:
    """Every (alpha, beta, gamma) on the grid ``1, 1 + step, 1 + 2 step, ...`` with each >= 1 and
    ``|alpha * beta**2 * gamma**2 - target| <= tolerance``, in lexicographic order.

    Grid values are rounded to 10 decimals so that 1 + 4 * 0.05 is 1.2, not 1.2000000000000002.

    >>> c = grid_candidates(step=0.05, target=2.0, tolerance=0.1)
    >>> len(c), Coefficients(1.2, 1.1, 1.15) in c
    (111, True)
    """
    for name, v in (("step", step), ("target", target), ("tolerance", tolerance)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if not 0 < step <= 1:
        raise ValueError(f"grid step must be in (0, 1], got {step}: e.g. --step 0.05")
    if target < 1:
        raise ValueError(f"target must be >= 1 (every coefficient is >= 1), got {target}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    hi = target + tolerance + 1e-9

    def values(limit: float) -> list[float]:
        out, i = [], 0
        while (v := round(1 + i * step, 10)) <= limit:
            out.append(v)
            i += 1
        return out

    found = []
    for a in values(hi):
        for b in values(math.sqrt(hi / a)):
            for g in values(math.sqrt(hi / (a * b * b))):
                c = Coefficients(a, b, g)
                if abs(c.product - target) <= tolerance + 1e-9:
                    found.append(c)
    if not found:
        raise ValueError(f"no grid point with step {step:g} has a product within {tolerance:g} of {target:g}: "
                         "widen --tolerance or use a finer --step")
    return found


def candidate_key(c: Coefficients, seed: int) -> str:
    """Run directory of a candidate: ``candidates/a1.2-b1.1-g1.15-seed0``."""
    return f"candidates/a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}-seed{seed}"


def candidate_table(base: NetworkSpec, candidates: Sequence[Coefficients], *, depth_rounding: str = "round"
                    ) -> tuple[pd.DataFrame, list[NetworkSpec]]:
    """Each candidate's phi = 1 spec with its realised and nominal MACs ratio (no training)."""
    base_macs = counts(base).macs
    rows, specs = [], []
    for c in candidates:
        spec, _ = member(base, 1, coefficients=c.as_tuple(), depth_rounding=depth_rounding)
        k = counts(spec)
        specs.append(spec)
        rows.append({"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "product": c.product,
                     "resolution": spec.resolution, "blocks": spec.num_blocks, "params": k.params, "macs": k.macs,
                     "macs_ratio": round(k.macs / base_macs, 4), "nominal_macs_ratio": c.product})
    return pd.DataFrame(rows), specs


@dataclass(frozen=True)
class GridResult:
    """The grid table (a row per candidate and seed, plus ``accuracy`` averaged over seeds) and the winner."""

    table: pd.DataFrame
    best: Coefficients

    def save(self, out_dir: str | Path, **extra: Any) -> None:
        """``grid.csv`` and ``coefficients.json`` in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "grid.csv", index=False)
        row = self.table[(self.table.alpha == self.best.alpha) & (self.table.beta == self.best.beta)
                         & (self.table.gamma == self.best.gamma)].iloc[0]
        self.best.save(out / "coefficients.json", accuracy=float(row["mean_accuracy"]), macs=int(row["macs"]),
                       macs_ratio=float(row["macs_ratio"]), source="grid search at phi=1", **extra)


def pick_best(table: pd.DataFrame) -> Coefficients:
    """Highest mean validation accuracy over seeds; ties go to fewer MACs.

    >>> t = pd.DataFrame({"alpha": [1.2, 1.0], "beta": [1.1, 1.2], "gamma": [1.15, 1.15],
    ...                   "accuracy": [0.9, 0.9], "macs": [200, 190], "status": ["completed"] * 2})
    >>> pick_best(t)
    Coefficients(alpha=1.0, beta=1.2, gamma=1.15)
    """
    ok = table[table["status"].isin(FINISHED) & table["accuracy"].notna()]
    if ok.empty:
        raise ValueError("no grid candidate finished training: see the run directories' logs")
    ranked = ok.sort_values(["accuracy", "macs", "alpha", "beta", "gamma"], ascending=[False, True, True, True, True])
    r = ranked.iloc[0]
    return Coefficients(float(r["alpha"]), float(r["beta"]), float(r["gamma"]))


def grid_search(
    base: NetworkSpec,
    trainer: TrainerFn,
    *,
    candidates: Sequence[Coefficients],
    train_config: dict[str, Any],
    out_dir: str | Path,
    seeds: Sequence[int] = (0,),
    executor: ExecutorFn | None = None,
    resume: bool = False,
    depth_rounding: str = "round",
) -> GridResult:
    """Train ``base`` scaled at phi = 1 by every candidate (and seed), pick the best, write
    ``grid.csv`` and ``coefficients.json`` into ``out_dir``."""
    if not candidates:
        raise ValueError("no grid candidates: widen --tolerance or use a finer --step")
    table, specs = candidate_table(base, candidates, depth_rounding=depth_rounding)
    jobs = [Job(candidate_key(c, s), spec, s, {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma})
            for c, spec in zip(candidates, specs, strict=True) for s in seeds]
    trained = run_jobs(jobs, trainer, train_config=train_config, out_dir=out_dir, executor=executor, resume=resume)
    merged = table.merge(trained, on=["alpha", "beta", "gamma"], how="right")
    ok = merged["status"].isin(FINISHED)
    merged["accuracy"] = merged["val_accuracy"].where(ok)
    mean = merged.groupby(["alpha", "beta", "gamma"])["accuracy"].transform("mean")
    merged.insert(list(merged.columns).index("accuracy") + 1, "mean_accuracy", mean)
    summary = merged.drop(columns=["accuracy"]).rename(columns={"mean_accuracy": "accuracy"})
    best = pick_best(summary.drop_duplicates(["alpha", "beta", "gamma"]))
    result = GridResult(merged, best)
    result.save(out_dir, base=base.name)
    return result


__all__ = ["GridResult", "candidate_key", "candidate_table", "grid_candidates", "grid_search", "pick_best"]
