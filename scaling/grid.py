"""The alpha, beta, gamma grid search (EfficientNet paper, Section 3.3, step 1).

Fix phi (1 in the paper), enumerate coefficients on a grid with each >= 1 and
``|alpha * beta**2 * gamma**2 - target| <= tolerance``, scale the baseline by each, train it
and keep the best by validation accuracy (ties: fewer MACs). The paper found 1.2, 1.1, 1.15.

Candidates are compared at equal *realised* cost: each is brought within ``cost_tolerance``
(5 %) of ``target**phi`` times the base's MACs by moving its input size in whole pixels
(:func:`effnas.scaling.realised.fit_resolution`; alpha, beta, gamma stay its name). One that cannot be
is listed with ``status = "out_of_tolerance"`` and the reason, and is not trained. Points that
build the same network (the scaled spec, resolution included, after rounding) are trained once,
as the first of them in grid order; every point keeps its row with the shared result
(``same_network_as``). Candidates train through :func:`effnas.scaling.runner.run_jobs` in the rungs
of :func:`effnas.scaling.rungs.schedule` (one rung, or successive halving): in parallel when the
executor is Ray's, resumable per run. The winner is picked among the points tied with the best
within noise (:func:`effnas.scaling.rungs.tie_set`, docs/scaling.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.scaling.coefficients import Coefficients
from effnas.scaling.compound import member
from effnas.scaling.realised import GRID_TOLERANCE, check_tolerance, fit_resolution
from effnas.scaling.record import candidate_key
from effnas.scaling.rungs import Schedule, Ties, accuracy, one_rung, run_rungs, schedule, tie_set
from effnas.scaling.runner import ExecutorFn, Job, RunProgress, RunsFailed, TrainerFn
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
    (``ready`` / ``out_of_tolerance``) and ``reason``; ``network`` numbers the distinct networks
    (:func:`network_key`), ``points`` lists the points that build each, and ``same_network_as``
    names the first of them on the others' rows (empty on its own).

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
    table = pd.DataFrame(rows)
    nets = [network_key(spec) for spec in specs]
    members: dict[str, list[int]] = {}
    for i, key in enumerate(nets):
        members.setdefault(key, []).append(i)
    ids = {key: n for n, key in enumerate(members)}
    table["network"] = [ids[key] for key in nets]
    table["points"] = ["; ".join(point_text(candidates[j]) for j in members[key]) for key in nets]
    table["same_network_as"] = ["" if members[key][0] == i else point_text(candidates[members[key][0]])
                                for i, key in enumerate(nets)]
    return table, specs


def network_key(spec: NetworkSpec) -> str:
    """What makes two scaled specs the same network: the spec (stages, channels, repeats,
    resolution, dropout, ...) as canonical JSON, without its name (a label)."""
    return json.dumps({k: v for k, v in spec.to_dict().items() if k != "name"}, sort_keys=True, default=str)


def point_text(c: Coefficients) -> str:
    """``'(1.2, 1.1, 1.15)'``."""
    return f"({c.alpha:g}, {c.beta:g}, {c.gamma:g})"


@dataclass(frozen=True)
class GridResult:
    """The grid table (a row per trained point and run, every rung's, with the point's ``n``,
    ``mean_accuracy``, ``ci_low``, ``ci_high``, ``tied_with_best`` and ``picked``, and a row per
    point left out as ``out_of_tolerance``), the picked coefficients ``best``, the phi searched
    at, the last rung's verdicts ``ties`` and the ``schedule`` that trained it."""

    table: pd.DataFrame
    best: Coefficients
    phi: float = 1.0
    ties: Ties | None = None
    schedule: Schedule | None = None

    def spent(self) -> dict[str, int]:
        """Runs and epochs the grid trained (duplicate points counted once)."""
        runs = self.table.dropna(subset=["run_dir"]).drop_duplicates("run_dir") if "run_dir" in self.table else None
        if runs is None or "epochs" not in runs:
            return {"runs": 0, "epochs": 0}
        return {"runs": len(runs), "epochs": int(runs["epochs"].sum())}

    def save(self, out_dir: str | Path, **extra: Any) -> None:
        """``grid.csv`` and ``coefficients.json`` (the picked point, its interval, the tie set, the
        rule, the noise floor, the schedule with what it spent and the :meth:`lines`) in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "grid.csv", lambda t: self.table.to_csv(t, index=False))
        row = self.table[(self.table.alpha == self.best.alpha) & (self.table.beta == self.best.beta)
                         & (self.table.gamma == self.best.gamma)].iloc[0]
        more: dict[str, Any] = {}
        if self.ties is not None:
            more.update(n=int(row["n"]), ci_low=_num(row["ci_low"]), ci_high=_num(row["ci_high"]),
                        **self.ties.to_dict())
        if self.schedule is not None:
            more["schedule"] = {**self.schedule.to_dict(), "spent": self.spent()}
        more["summary"] = self.lines()
        if "rule" in self.table.columns:  # grid.rule = "fast": the scaling rule these coefficients are
            more["scaling_rule"] = str(row["rule"])
        self.best.save(out / "coefficients.json", accuracy=float(row["mean_accuracy"]), macs=int(row["macs"]),
                       macs_ratio=float(row["macs_ratio"]), nominal_macs_ratio=float(row["nominal_macs_ratio"]),
                       resolution=int(row["resolution"]), resolution_nominal=int(row["resolution_nominal"]),
                       source=f"grid search at phi={self.phi:g}", **more, **extra)

    def lines(self) -> list[str]:
        """The console summary: the schedule and what it spent, the best, the tie set and the pick."""
        out = []
        if self.schedule is not None:
            s = self.spent()
            out.append(f"schedule: {self.schedule.text()}; spent {s['epochs']} epochs in {s['runs']} runs")
        return out + (self.ties.lines() if self.ties is not None else [])


def _num(v: Any) -> float | None:
    """A JSON number, or None for NaN (no interval with one run)."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


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
    halving: bool = False,
    eta: int = 3,
    rungs: int = 3,
    budget_epochs: int | None = None,
) -> GridResult:
    """Train ``base`` scaled at ``phi`` by every candidate within cost tolerance (each distinct
    network once, in the rungs of :func:`effnas.scaling.rungs.schedule` with ``halving``, ``eta``,
    ``rungs``, ``budget_epochs``; ``train_config["epochs"]`` and ``seeds`` are the first rung's;
    see :func:`candidate_table`), pick by :func:`effnas.scaling.rungs.tie_set`, write ``grid.csv``
    (every candidate, the untrained ones with ``status = "out_of_tolerance"`` and their reason)
    and ``coefficients.json`` into ``out_dir``.

    Raises:
        UserError: no candidate can be brought within ``cost_tolerance`` (``grid.csv`` is written
            first, so the reasons can be read), or none finished training.
    """
    if not candidates:
        raise UserError("no grid candidates: widen --tolerance or use a finer --step")
    table, specs = candidate_table(base, candidates, phi=phi, target=target, cost_tolerance=cost_tolerance,
                                   depth_rounding=depth_rounding)
    jobs = candidate_jobs(candidates, specs, table, seeds)
    plan = schedule(len({j.info["network"] for j in jobs}), epochs=_epochs(train_config), seeds=seeds,
                    halving=halving, eta=eta, rungs=rungs, budget_epochs=budget_epochs) if jobs else None
    return train_grid(table, jobs, trainer, train_config=train_config, out_dir=out_dir, executor=executor,
                      resume=resume, phi=phi, target=target, cost_tolerance=cost_tolerance, base=base.name, plan=plan)


def _epochs(train_config: dict[str, Any]) -> int:
    epochs = train_config.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"the grid's train_config needs 'epochs' (an integer >= 1: the first rung's), got {epochs!r}")
    return epochs


def candidate_jobs(candidates: Sequence[Coefficients], specs: Sequence[NetworkSpec], table: pd.DataFrame,
                   seeds: Sequence[int]) -> list[Job]:
    """The first rung's training jobs of a :func:`candidate_table`: every distinct network within
    tolerance (the first point that builds it), with every seed, into
    ``candidates/a1.2-b1.1-g1.15-seed0`` (:func:`effnas.scaling.record.candidate_key`)."""
    ok = table["within_tolerance"].astype(bool) & (table["same_network_as"] == "")
    return [Job(candidate_key(c, s), spec, s, {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "network": n})
            for c, spec, good, n in zip(candidates, specs, ok, table["network"], strict=True) if good for s in seeds]


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
    plan: Schedule | None = None,
    progress: RunProgress | None = None,
) -> GridResult:
    """Train the :func:`candidate_jobs` of a :func:`candidate_table` (the first rung's) in the
    rungs of ``plan`` (None: one rung of ``jobs`` as they are), pick by
    :func:`effnas.scaling.rungs.tie_set` and write ``grid.csv`` and ``coefficients.json`` (see
    :func:`grid_search`; ``base`` names the base network in ``coefficients.json``; ``progress``
    hears of each rung's runs, as in :func:`effnas.scaling.runner.run_jobs`)."""
    ok = table["within_tolerance"].astype(bool)
    out = Path(out_dir)
    if not ok.any() or not jobs:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "grid.csv", lambda t: table.to_csv(t, index=False))
        raise UserError(f"no grid candidate realises {target:g}^{phi:g} = {target**phi:.3g}x the base's MACs within "
                         f"+-{cost_tolerance * 100:g}% at any whole-pixel input size (reasons in "
                         f"{out / 'grid.csv'}): raise the cost tolerance or use a larger base resolution")
    plan = plan or one_rung(jobs, _epochs(train_config))
    runs = run_rungs(jobs, plan, trainer, train_config=train_config, out_dir=out, executor=executor, resume=resume,
                     progress=progress)
    keys = ["alpha", "beta", "gamma"]
    merged = table[ok].drop(columns=["status"]).merge(runs.drop(columns=keys), on="network", how="inner")
    merged["accuracy"] = accuracy(merged)
    try:
        ties = tie_set(runs, table[ok], target=target)
    except RunsFailed:
        full = pd.concat([merged, table[~ok]], ignore_index=True).sort_values(keys, kind="stable", ignore_index=True)
        atomic_write(out / "grid.csv", lambda t: full.to_csv(t, index=False))
        raise
    merged = merged.merge(ties.points.drop(columns=["network"]), on=keys, how="left")
    full = pd.concat([merged, table[~ok]], ignore_index=True).sort_values([*keys, "rung", "seed"], kind="stable",
                                                                          ignore_index=True)
    for col in ("rung", "epochs", "seed", "n", "last_rung"):  # whole numbers, empty on untrained rows
        full[col] = full[col].astype("Int64")
    result = GridResult(full, ties.picked, phi, ties, plan)
    result.save(out_dir, base=base)
    return result


__all__ = ["OUT_OF_TOLERANCE", "READY", "GridResult", "candidate_jobs", "candidate_table", "grid_candidates",
           "grid_search", "network_key", "point_text", "train_grid"]
