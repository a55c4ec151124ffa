"""The grid's training schedule (one rung, or successive halving) and the tie set of its last rung.

**Schedule** (:func:`schedule`). Without halving the grid is one rung: every distinct network
(:func:`effnas.scaling.grid.candidate_table` trains a network once however many points build it)
with every seed for ``epochs``. With halving (Jamieson & Talwalkar 2016, the rungs of Hyperband):
rung 0 trains every network with ``seeds`` for ``epochs``; rung ``r + 1`` keeps the best
``ceil(n_r / eta)`` networks of rung ``r`` by mean accuracy (at least :data:`MIN_LAST`, a tie
set needs two) and trains them again from scratch for ``epochs * eta**(r + 1)`` epochs with one
more seed. It stops after a rung of :data:`MIN_LAST` networks or fewer, after ``rungs`` rungs, or
before a rung that would take the total past ``budget_epochs``. The schedule is fixed before
anything trains: its epochs and runs are an upper bound of what the grid spends (fewer when runs
fail and fewer networks can be promoted).

**Tie set** (:func:`tie_set`). Only the last rung's runs are compared (earlier rungs trained
shorter; their runs are not repeats of the same measurement). The noise floor is
:func:`effnas.search_spaces.common.stats.noise_floor` over the last rung's networks with two runs or
more; each network is compared with the best (highest mean) by
:func:`effnas.search_spaces.common.stats.compare` with that floor, and is tied when the verdict is
``tied within noise``. Without any estimate of the noise (one run per network and no floor)
nothing is called tied or not (``tied_with_best`` is empty) and :data:`NO_NOISE_RULE` picks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.scaling.coefficients import Coefficients
from effnas.scaling.record import FINISHED, candidate_key
from effnas.scaling.runner import ExecutorFn, Job, RunProgress, RunsFailed, TrainerFn, run_jobs
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.stats import TIED, Interval, NoiseFloor, compare, interval, noise_floor
from effnas.search_spaces.counts import counts

#: A halving stops after a rung of this many networks or fewer: two is the least a tie set needs.
MIN_LAST = 2
#: The pick among the points tied with the best (docs/scaling.md).
PICK_RULE = ("among the points tied with the best within noise (last rung, noise floor): the fewest realised MACs, "
             "then alpha*beta^2*gamma^2 closest to the target, then the highest mean accuracy")
#: The pick when the grid has no estimate of its noise (one run per network in the last rung).
NO_NOISE_RULE = ("no estimate of the noise (one run per network in the last rung): the highest mean accuracy, then "
                 "the fewest MACs, then alpha*beta^2*gamma^2 closest to the target")


@dataclass(frozen=True)
class Rung:
    """``networks`` distinct networks (at most), each with every one of ``seeds``, for ``epochs``."""

    index: int
    networks: int
    epochs: int
    seeds: tuple[int, ...]

    @property
    def runs(self) -> int:
        return self.networks * len(self.seeds)

    @property
    def cost(self) -> int:
        """Training epochs of the rung: runs x epochs."""
        return self.runs * self.epochs

    def text(self) -> str:
        def n(k: int, word: str) -> str:
            return f"{k} {word}" if k == 1 else f"{k} {word}s"

        return (f"rung {self.index}: {n(self.networks, 'network')} x {n(len(self.seeds), 'seed')} x "
                f"{n(self.epochs, 'epoch')} = {self.cost} epochs")


@dataclass(frozen=True)
class Schedule:
    """The rungs a grid trains, ``eta`` (None: no halving) and the budget they were fitted to."""

    rungs: tuple[Rung, ...]
    eta: int | None = None
    budget_epochs: int | None = None

    @property
    def epochs(self) -> int:
        return sum(r.cost for r in self.rungs)

    @property
    def runs(self) -> int:
        return sum(r.runs for r in self.rungs)

    def text(self) -> str:
        """The rungs, their total and the budget in words (see :func:`schedule`)."""
        budget = f"budget {self.budget_epochs}" if self.budget_epochs is not None else "no budget set"
        halving = f"halving, eta {self.eta}" if self.eta is not None else "one rung"
        return (f"{'; '.join(r.text() for r in self.rungs)}; at most {self.epochs} epochs in {self.runs} runs "
                f"({halving}; {budget})")

    def to_dict(self) -> dict[str, Any]:
        return {"halving": self.eta is not None, "eta": self.eta, "budget_epochs": self.budget_epochs,
                "epochs": self.epochs, "runs": self.runs,
                "rungs": [{"rung": r.index, "networks": r.networks, "seeds": list(r.seeds), "epochs": r.epochs,
                           "runs": r.runs, "cost_epochs": r.cost} for r in self.rungs]}


def schedule(networks: int, *, epochs: int, seeds: Sequence[int], halving: bool = False, eta: int = 3,
             rungs: int = 3, budget_epochs: int | None = None) -> Schedule:
    """The rungs of a grid of ``networks`` distinct networks (see the module's docstring).

    >>> s = schedule(8, epochs=2, seeds=[0], halving=True, eta=3)
    >>> for r in s.rungs:
    ...     print(r.text())
    rung 0: 8 networks x 1 seed x 2 epochs = 16 epochs
    rung 1: 3 networks x 2 seeds x 6 epochs = 36 epochs
    rung 2: 2 networks x 3 seeds x 18 epochs = 108 epochs
    >>> s.epochs, s.runs
    (160, 20)
    >>> schedule(8, epochs=2, seeds=[0], halving=True, budget_epochs=60).epochs
    52

    Raises:
        UserError: the first rung alone needs more than ``budget_epochs``.
    """
    if networks < 1:
        raise UserError("no network to train: widen grid.cost_tolerance or grid.tolerance")
    seeds = tuple(seeds)
    first = Rung(0, networks, epochs, seeds)
    if budget_epochs is not None and first.cost > budget_epochs:
        raise UserError(f"grid.budget_epochs = {budget_epochs} is less than the first rung needs ({first.text()} "
                         f"epochs): raise grid.budget_epochs, or lower grid.epochs or grid.seeds")
    out = [first]
    while halving and out[-1].networks > MIN_LAST and len(out) < rungs:
        last = out[-1]
        nxt = Rung(last.index + 1, max(MIN_LAST, math.ceil(last.networks / eta)), last.epochs * eta,
                   (*last.seeds, max(last.seeds) + 1))
        if budget_epochs is not None and sum(r.cost for r in out) + nxt.cost > budget_epochs:
            break
        out.append(nxt)
    return Schedule(tuple(out), eta if halving else None, budget_epochs)


def one_rung(jobs: Sequence[Job], epochs: int) -> Schedule:
    """The schedule of ``jobs`` trained as they are (the networks of their ``info["network"]``)."""
    nets = {j.info["network"] for j in jobs}
    seeds = tuple(dict.fromkeys(j.seed for j in jobs))
    return Schedule((Rung(0, len(nets), epochs, seeds),))


def _point(info: dict[str, Any]) -> Coefficients:
    return Coefficients(float(info["alpha"]), float(info["beta"]), float(info["gamma"]))


def run_rungs(jobs: Sequence[Job], plan: Schedule, trainer: TrainerFn, *, train_config: dict[str, Any],
              out_dir: str | Path, executor: ExecutorFn | None = None, resume: bool = False,
              progress: RunProgress | None = None) -> pd.DataFrame:
    """Train the rungs of ``plan``: ``jobs`` are rung 0's (a job per network and seed, ``info``
    with ``network`` and the point that names its run directories), later rungs train the best
    networks of the one before (mean accuracy of its finished runs; ties: fewer MACs). A row per
    run: ``network``, ``rung``, ``epochs``, ``seed``, the metrics and ``run_dir``. ``progress``
    hears of each rung's runs as one batch."""
    nets: dict[int, Job] = {}
    for j in jobs:
        nets.setdefault(int(j.info["network"]), j)
    macs = {n: counts(j.spec).macs for n, j in nets.items()}
    alive = list(nets)
    frames = []
    for rung in plan.rungs:
        alive = alive[:rung.networks]
        rung_jobs = [replace(nets[n], key=candidate_key(_point(nets[n].info), s, rung.index), seed=s,
                             info={**nets[n].info, "rung": rung.index, "epochs": rung.epochs})
                     for n in alive for s in rung.seeds]
        t = run_jobs(rung_jobs, trainer, train_config={**train_config, "epochs": rung.epochs}, out_dir=out_dir,
                     executor=executor, resume=resume, progress=progress)
        frames.append(t)
        means = accuracy(t).groupby(t["network"]).mean().dropna()
        order = {n: i for i, n in enumerate(alive)}
        alive = sorted((int(n) for n in means.index), key=lambda n: (-means[n], macs[n], order[n]))
        if not alive:
            break
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Ties:
    """The last rung's verdicts: ``best`` (highest mean, :class:`Interval` ``best_interval``),
    ``picked`` (by ``rule`` among ``tied``: every point tied with the best, the best's own points
    included), ``floor`` (None: no estimate of the noise) and ``points``: a row per trained point
    with ``n``, ``mean_accuracy``, ``ci_low``, ``ci_high`` (its last rung's runs), ``last_rung``,
    ``vs_best`` (its verdict against the best), ``tied_with_best`` (None: unknown) and ``picked``."""

    best: Coefficients
    best_interval: Interval
    picked: Coefficients
    tied: tuple[Coefficients, ...]
    floor: NoiseFloor | None
    rule: str
    points: pd.DataFrame
    final_rung: int = 0

    def lines(self) -> list[str]:
        """The console summary: the best with its interval, the tie set, the pick, the rule and the floor."""
        if self.floor is None:
            others = "unknown (no estimate of the noise: one run per network in the last rung; set grid.seeds = 2)"
        else:
            others = self._tied_text()
        floor = (f"noise floor: sd {100 * self.floor.sd:.2f} accuracy points ({self.floor.df} df, from "
                 f"{self.floor.groups} networks with >= 2 runs in rung {self.final_rung})" if self.floor
                 else "noise floor: none")
        return [f"best {_text(self.best)}: {self.best_interval.text()}; tied within noise: {others}; picked by rule: "
                f"{_text(self.picked)}", f"rule: {self.rule}", floor]

    def _tied_text(self) -> str:
        """The tied networks other than the best's, each by its first point (and how many points
        build it), then how many more points build the best's network."""
        tied = self.points[self.points["tied_with_best"].map(lambda t: t is True)]
        mine = int(self.points.loc[self.points["vs_best"] == "best", "network"].iloc[0])
        parts = []
        for n, g in tied.groupby("network", sort=False):
            if n != mine:
                more = f" [{len(g)} points]" if len(g) > 1 else ""
                parts.append(f"{_text(Coefficients(*map(float, g.iloc[0][['alpha', 'beta', 'gamma']])))}{more}")
        own = int((tied["network"] == mine).sum()) - 1
        if own:
            parts.append(f"the best's network's {own} other point{'s' if own > 1 else ''}")
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        best = {**self.best.to_dict(), **_iv(self.best_interval, for_json=True)}
        return {"best_by_mean": best, "picked_by": self.rule, "tied_with_best": [list(c.as_tuple()) for c in self.tied],
                "noise_floor": self.floor.to_dict() if self.floor else None, "final_rung": self.final_rung}


def _text(c: Coefficients) -> str:
    return f"({c.alpha:g}, {c.beta:g}, {c.gamma:g})"


def _iv(iv: Interval, *, for_json: bool = False) -> dict[str, Any]:
    """``n``, ``mean_accuracy``, ``ci_low``, ``ci_high``; for JSON a missing bound is None, not NaN."""
    def bound(v: float) -> float | None:
        return None if for_json and not math.isfinite(v) else v

    return {"n": iv.n, "mean_accuracy": iv.mean, "ci_low": bound(iv.low), "ci_high": bound(iv.high)}


def accuracy(runs: pd.DataFrame) -> pd.Series:
    """Each run's validation accuracy when it finished (:data:`FINISHED`), else NaN."""
    if "val_accuracy" not in runs.columns:
        return pd.Series(math.nan, index=runs.index)
    return runs["val_accuracy"].astype(float).where(runs["status"].isin(FINISHED))


def tie_set(runs: pd.DataFrame, points: pd.DataFrame, *, target: float) -> Ties:
    """The verdicts of :class:`Ties` from ``runs`` (:func:`run_rungs`' rows) and ``points`` (the
    trained points: ``alpha``, ``beta``, ``gamma``, ``product``, ``macs``, ``network``). With a
    noise floor the pick is :data:`PICK_RULE`'s, without one :data:`NO_NOISE_RULE`'s.

    Raises:
        RunsFailed: no run finished.
    """
    done = runs.assign(_acc=accuracy(runs)).dropna(subset=["_acc"])
    if done.empty:
        raise RunsFailed("no grid candidate finished training: see the errors in grid.csv, fix the cause and "
                         "re-run with --resume")
    last = done.groupby("network")["rung"].max().astype(int)
    final = int(last.max())
    per: dict[int, tuple[list[float], list[int]]] = {}
    for n, g in done.groupby("network"):
        g = g[g["rung"] == last[n]]
        per[int(n)] = (g["_acc"].tolist(), g["seed"].astype(int).tolist())  # type: ignore[call-overload]
    compared = [n for n in per if last[n] == final]
    floor = noise_floor(per[n][0] for n in compared)
    macs = points.groupby("network")["macs"].first()
    mean = {n: sum(v) / len(v) for n, (v, _) in per.items()}
    top = min(compared, key=lambda n: (-mean[n], macs[n], n))
    verdict: dict[int, str] = {top: "best"}
    for n in per:
        if n == top:
            continue
        verdict[n] = (compare(per[n][0], per[top][0], seeds_a=per[n][1], seeds_b=per[top][1], floor=floor).verdict
                      if n in compared else f"not promoted past rung {last[n]}")
    tied: dict[int, bool | None] = {n: n == top or (v == TIED if floor else (None if n in compared else False))
                                    for n, v in verdict.items()}
    rows = []
    for p in points.itertuples():
        n = int(p.network)
        iv = interval(per.get(n, ([], []))[0])
        rows.append({"alpha": p.alpha, "beta": p.beta, "gamma": p.gamma, "network": n, **_iv(iv),
                     "last_rung": last.get(n, math.nan), "vs_best": verdict.get(n, "no finished run"),
                     "tied_with_best": tied.get(n, False), "_macs": p.macs, "_off": abs(float(p.product) - target),
                     "_neg": -iv.mean})
    pts = pd.DataFrame(rows)
    pool = pts[pts["tied_with_best"].map(lambda t: t is True)]
    by = ["_macs", "_off", "_neg"] if floor else ["_neg", "_macs", "_off"]
    pick = pool.sort_values([*by, "alpha", "beta", "gamma"]).iloc[0]
    first = pts[pts.network == top].sort_values(["_off", "alpha", "beta", "gamma"]).iloc[0]

    def coeffs(r: Any) -> Coefficients:
        return Coefficients(float(r["alpha"]), float(r["beta"]), float(r["gamma"]))

    picked = coeffs(pick)
    pts["picked"] = (pts.alpha == picked.alpha) & (pts.beta == picked.beta) & (pts.gamma == picked.gamma)
    return Ties(coeffs(first), interval(per[top][0]), picked, tuple(coeffs(r) for _, r in pool.iterrows()), floor,
                PICK_RULE if floor else NO_NOISE_RULE, pts.drop(columns=["_macs", "_off", "_neg"]), final)


__all__ = ["MIN_LAST", "NO_NOISE_RULE", "PICK_RULE", "Rung", "Schedule", "Ties", "accuracy", "one_rung", "run_rungs",
           "schedule", "tie_set"]
