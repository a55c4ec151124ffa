"""The alpha, beta, gamma grid search (EfficientNet paper, Section 3.3, step 1).

Fix phi (1 in the paper), enumerate coefficients on a grid with each >= 1 and
``|alpha * beta**2 * gamma**2 - target| <= tolerance``, scale the baseline by each, train it
and keep the best by validation accuracy (ties: fewer MACs). The paper found 1.2, 1.1, 1.15.

Candidates are compared at equal *realised* cost: each is brought within ``cost_tolerance``
(5 %) of ``target**phi`` times the base's MACs by moving its input size in whole pixels
(:func:`effnas.scaling.realised.fit_resolution`; alpha, beta, gamma stay its name). One that cannot be
is listed with ``status = "out_of_tolerance"`` and the reason, and is not trained. Candidates
train through :func:`effnas.scaling.runner.run_jobs`: in parallel when the executor is Ray's,
resumable per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.scaling.coefficients import Coefficients
from effnas.scaling.compound import member
from effnas.scaling.realised import GRID_TOLERANCE, check_tolerance, fit_resolution
from effnas.scaling.record import FINISHED, candidate_key
from effnas.scaling.runner import ExecutorFn, Job, RunProgress, RunsFailed, TrainerFn, run_jobs
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_write
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import counts

#: Most candidates a grid may have: each is scaled and costed before anything trains (the
#: paper's step 0.05 gives 111); a finer grid is refused rather than left to run for hours.
MAX_CANDIDATES = 5000


def grid_candidates(*, step: float = 0.05, target: float = 2.0, tolerance: float = 0.1,
                    limit: int = MAX_CANDIDATES) -> list[Coefficients]:
    """Every (alpha, beta, gamma) on the grid ``1, 1 + step, 1 + 2 step, ...`` with each >= 1 and
    ``|alpha * beta**2 * gamma**2 - target| <= tolerance``, in lexicographic order. The constraint
    is on the MACs ratio per unit of phi (Eq. 3), so the set does not depend on the phi the
    candidates are later scaled to (:func:`candidate_table`).

    Grid values are rounded to 10 decimals so that 1 + 4 * 0.05 is 1.2, not 1.2000000000000002.

    >>> c = grid_candidates(step=0.05, target=2.0, tolerance=0.1)
    >>> len(c), Coefficients(1.2, 1.1, 1.15) in c
    (111, True)
    """
    for name, v in (("step", step), ("target", target), ("tolerance", tolerance)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise UserError(f"{name} must be a finite number, got {v!r}")
    if not 0 < step <= 1:
        raise UserError(f"grid step must be in (0, 1], got {step}: e.g. --step 0.05")
    if target < 1:
        raise UserError(f"target must be >= 1 (every coefficient is >= 1), got {target}")
    if tolerance < 0:
        raise UserError(f"tolerance must be >= 0, got {tolerance}")
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
                    if len(found) > limit:
                        raise UserError(f"grid step {step:g} with tolerance {tolerance:g} gives more than {limit} "
                                         f"candidates (the limit): use a coarser --step (e.g. 0.05) or a smaller "
                                         "--tolerance")
    if not found:
        raise UserError(f"no grid point with step {step:g} has a product within {tolerance:g} of {target:g}: "
                         "widen --tolerance or use a finer --step")
    return found


#: Candidate statuses before training: ``ready`` (within tolerance, to be trained) or
#: ``out_of_tolerance`` (listed with its reason, never trained).
READY, OUT_OF_TOLERANCE = "ready", "out_of_tolerance"


def check_phi(phi: float) -> None:
    if isinstance(phi, bool) or not isinstance(phi, int | float) or not math.isfinite(phi) or phi <= 0:
        raise UserError(f"grid phi must be a finite number > 0 (the paper searches at phi = 1), got {phi!r}")


def candidate_table(
    base: NetworkSpec,
    candidates: Sequence[Coefficients],
    *,
    phi: float = 1.0,
    target: float = 2.0,
    cost_tolerance: float = GRID_TOLERANCE,
    depth_rounding: str = "round",
) -> tuple[pd.DataFrame, list[NetworkSpec]]:
    """Each candidate's spec at ``phi``, brought within ``cost_tolerance`` of ``target**phi`` times
    the base's MACs by whole-pixel resolution (no training), and a row per candidate:

    ``nominal_macs_ratio`` (``product**phi``), ``macs_ratio_unadjusted`` (counted at the nominal
    resolution ``resolution_nominal``), ``macs_ratio`` (counted at ``resolution``, what trains),
    ``target_macs_ratio`` (``target**phi``), ``cost_adjusted``, ``within_tolerance``, ``status``
    (``ready`` / ``out_of_tolerance``) and ``reason``.

    >>> import effnas.search_spaces as ss
    >>> t, _ = candidate_table(ss.get("efficientnet_nano"), grid_candidates(step=0.2))
    >>> print(t[["alpha", "beta", "gamma", "resolution_nominal", "resolution", "macs_ratio", "status"]]
    ...       .to_string(index=False))
     alpha  beta  gamma  resolution_nominal  resolution  macs_ratio           status
       1.0   1.0    1.4                  22          20      1.9062            ready
       1.0   1.2    1.2                  19          16      1.6280 out_of_tolerance
       1.0   1.4    1.0                  16          16      1.8552 out_of_tolerance
       1.4   1.0    1.2                  19          18      2.4910 out_of_tolerance
       1.4   1.2    1.0                  16          14      2.0615            ready
       2.0   1.0    1.0                  16          16      1.9876            ready
    """
    check_phi(phi)
    check_tolerance(cost_tolerance)
    if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target) or target < 1:
        raise UserError(f"target must be a finite number >= 1, got {target!r}")
    base_macs = counts(base).macs
    goal = target**phi
    rows, specs = [], []
    for c in candidates:
        spec, _ = member(base, phi, coefficients=c.as_tuple(), depth_rounding=depth_rounding)
        fit = fit_resolution(spec, base_macs=base_macs, target_ratio=goal, tolerance=cost_tolerance)
        k = counts(fit.spec)
        specs.append(fit.spec)
        rows.append({"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "product": c.product,
                     "resolution_nominal": fit.resolution_nominal, "resolution": fit.spec.resolution,
                     "cost_adjusted": fit.cost_adjusted, "blocks": fit.spec.num_blocks, "params": k.params,
                     "macs": k.macs, "nominal_macs_ratio": round(c.product**phi, 4),
                     "macs_ratio_unadjusted": round(fit.macs_ratio_unadjusted, 4),
                     "macs_ratio": round(fit.macs_ratio, 4), "target_macs_ratio": round(goal, 4),
                     "cost_tolerance": cost_tolerance, "within_tolerance": fit.within_tolerance,
                     "status": READY if fit.within_tolerance else OUT_OF_TOLERANCE, "reason": fit.reason})
    return pd.DataFrame(rows), specs


@dataclass(frozen=True)
class GridResult:
    """The grid table (a row per trained candidate and seed, with ``mean_accuracy`` over seeds,
    and a row per candidate left out as ``out_of_tolerance``), the winner and the phi searched at."""

    table: pd.DataFrame
    best: Coefficients
    phi: float = 1.0

    def save(self, out_dir: str | Path, **extra: Any) -> None:
        """``grid.csv`` and ``coefficients.json`` in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "grid.csv", lambda t: self.table.to_csv(t, index=False))
        row = self.table[(self.table.alpha == self.best.alpha) & (self.table.beta == self.best.beta)
                         & (self.table.gamma == self.best.gamma)].iloc[0]
        self.best.save(out / "coefficients.json", accuracy=float(row["mean_accuracy"]), macs=int(row["macs"]),
                       macs_ratio=float(row["macs_ratio"]), nominal_macs_ratio=float(row["nominal_macs_ratio"]),
                       resolution=int(row["resolution"]), resolution_nominal=int(row["resolution_nominal"]),
                       source=f"grid search at phi={self.phi:g}", **extra)


def pick_best(table: pd.DataFrame) -> Coefficients:
    """Highest mean validation accuracy over seeds; ties go to fewer MACs.

    >>> t = pd.DataFrame({"alpha": [1.2, 1.0], "beta": [1.1, 1.2], "gamma": [1.15, 1.15],
    ...                   "accuracy": [0.9, 0.9], "macs": [200, 190], "status": ["completed"] * 2})
    >>> pick_best(t)
    Coefficients(alpha=1.0, beta=1.2, gamma=1.15)
    """
    ok = table[table["status"].isin(FINISHED) & table["accuracy"].notna()]
    if ok.empty:
        raise RunsFailed("no grid candidate finished training: see the errors in grid.csv, fix the cause and "
                         "re-run with --resume")
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
    phi: float = 1.0,
    target: float = 2.0,
    cost_tolerance: float = GRID_TOLERANCE,
) -> GridResult:
    """Train ``base`` scaled at ``phi`` by every candidate within cost tolerance (and seed; see
    :func:`candidate_table`), pick the best, write ``grid.csv`` (every candidate, the untrained
    ones with ``status = "out_of_tolerance"`` and their reason) and ``coefficients.json`` into
    ``out_dir``.

    Raises:
        UserError: no candidate can be brought within ``cost_tolerance`` (``grid.csv`` is written
            first, so the reasons can be read), or none finished training.
    """
    if not candidates:
        raise UserError("no grid candidates: widen --tolerance or use a finer --step")
    table, specs = candidate_table(base, candidates, phi=phi, target=target, cost_tolerance=cost_tolerance,
                                   depth_rounding=depth_rounding)
    return train_grid(table, candidate_jobs(candidates, specs, table, seeds), trainer, train_config=train_config,
                      out_dir=out_dir, executor=executor, resume=resume, phi=phi, target=target,
                      cost_tolerance=cost_tolerance, base=base.name)


def candidate_jobs(candidates: Sequence[Coefficients], specs: Sequence[NetworkSpec], table: pd.DataFrame,
                   seeds: Sequence[int]) -> list[Job]:
    """The training jobs of a :func:`candidate_table`: every candidate within tolerance, with every
    seed, into ``candidates/a1.2-b1.1-g1.15-seed0`` (:func:`effnas.scaling.record.candidate_key`)."""
    ok = table["within_tolerance"].astype(bool)
    return [Job(candidate_key(c, s), spec, s, {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma})
            for c, spec, good in zip(candidates, specs, ok, strict=True) if good for s in seeds]


def train_grid(
    table: pd.DataFrame,
    jobs: Sequence[Job],
    trainer: TrainerFn,
    *,
    train_config: dict[str, Any],
    out_dir: str | Path,
    executor: ExecutorFn | None = None,
    resume: bool = False,
    phi: float = 1.0,
    target: float = 2.0,
    cost_tolerance: float = GRID_TOLERANCE,
    base: str = "",
    progress: RunProgress | None = None,
) -> GridResult:
    """Train the :func:`candidate_jobs` of a :func:`candidate_table`, pick the best and write
    ``grid.csv`` and ``coefficients.json`` (see :func:`grid_search`; ``base`` names the base
    network in ``coefficients.json``; ``progress`` as in :func:`effnas.scaling.runner.run_jobs`)."""
    ok = table["within_tolerance"].astype(bool)
    if not ok.any():
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        atomic_write(Path(out_dir) / "grid.csv", lambda t: table.to_csv(t, index=False))
        raise UserError(f"no grid candidate realises {target:g}^{phi:g} = {target**phi:.3g}x the base's MACs within "
                         f"+-{cost_tolerance * 100:g}% at any whole-pixel input size (reasons in "
                         f"{Path(out_dir) / 'grid.csv'}): raise the cost tolerance or use a larger base resolution")
    trained = run_jobs(jobs, trainer, train_config=train_config, out_dir=out_dir, executor=executor, resume=resume,
                       progress=progress)
    keys = ["alpha", "beta", "gamma"]
    merged = table[ok].drop(columns=["status"]).merge(trained, on=keys, how="right")
    done = merged["status"].isin(FINISHED)
    merged["accuracy"] = merged["val_accuracy"].where(done)
    mean = merged.groupby(keys)["accuracy"].transform("mean")
    merged.insert(list(merged.columns).index("accuracy") + 1, "mean_accuracy", mean)
    summary = merged.drop(columns=["accuracy"]).rename(columns={"mean_accuracy": "accuracy"})
    best = pick_best(summary.drop_duplicates(keys))
    full = pd.concat([merged, table[~ok]], ignore_index=True).sort_values(keys, kind="stable", ignore_index=True)
    result = GridResult(full, best, phi)
    result.save(out_dir, base=base)
    return result


__all__ = ["OUT_OF_TOLERANCE", "READY", "GridResult", "candidate_jobs", "candidate_table", "grid_candidates",
           "grid_search", "pick_best", "train_grid"]
