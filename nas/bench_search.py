"""Search strategies on a tabular benchmark under a simulated wall-clock budget (NAS-Bench-201's protocol).

Dong & Yang (ICLR 2020, NAS-Bench-201 §5; scripts ``scripts-search/algos/{R-EA,Random,REINFORCE}.sh``
and ``exps/algos/R_EA.py`` of D-X-Y/AutoDL-Projects) run each non-weight-sharing strategy 500
times with a budget of 12,000 simulated seconds on CIFAR-10: every sampled architecture costs
the time the benchmark recorded for training it (their 12-epoch proxy schedule, ``hp='12'``)
and the search stops before the architecture that would overrun the budget. The architecture
with the best observed validation accuracy is then reported by its 200-epoch accuracy.
NATS-Bench (Dong et al., TPAMI 2021, ``exps/NATS-algos/run-all.sh``) uses 20,000 / 40,000 /
120,000 s for CIFAR-10 / CIFAR-100 / ImageNet16-120 with the same proxy.

Here each run is one in-memory Optuna study driven by the search driver's own
:func:`~effnas.nas.trial.evaluate_trial` and the strategy's sampler, unchanged; the trainer is a
:class:`~effnas.nas.benchmarks.BenchmarkTrainer` that charges ``charge_epochs / 200`` of the table's
200-epoch training time (the table has no 12-epoch accuracies, so the search observes one seed's
200-epoch validation accuracy, a less noisy signal than the paper's proxy). Run ``r`` uses seed
``seed + r`` for its sampler and for which training seed of the table it observes.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from effnas.nas.benchmarks import BenchmarkTrainer, get_benchmark
from effnas.nas.benchmarks.base import TabularBenchmark
from effnas.nas.benchmarks.cell_space import CellSpace
from effnas.nas.objective import Objective
from effnas.nas.pareto import pareto_front
from effnas.nas.strategies import make_sampler
from effnas.nas.study import SearchConfig, open_study
from effnas.nas.trial import evaluate_trial
from effnas.search_spaces.common.errors import UserError

#: Default simulated budgets (s) per data set: NAS-Bench-201's 12,000 s for CIFAR-10 (the only one
#: it searched on), NATS-Bench's for the others; all with the 12-epoch proxy's time.
DEFAULT_BUDGETS = {"cifar10": 12000.0, "cifar100": 40000.0, "imagenet16-120": 120000.0}


@functools.cache
def _fastest_training(benchmark: str) -> float:
    table = get_benchmark(benchmark)
    return min(table.record(p).train_seconds for p in table.keys())


@dataclass(frozen=True)
class Protocol:
    """One benchmark experiment: where, how long, what is optimised.

    Args:
        benchmark: ``NAME:DATASET`` (``nasbench201:cifar10``).
        budget_seconds: simulated seconds of training per run (> 0).
        objective: what the study optimises; the default rewards accuracy alone
            (``w = 0``); a ``w < 0`` adds the latency term, ``mode="pareto"`` makes it two-objective.
        charge_epochs: the epochs of training a lookup costs (12: the paper's proxy; None: the
            table's full run).
        population_size, tournament_size: of evolution (the paper's REA: 10 and 3) and NSGA-II.
        startup_trials: TPE's random start.
        max_trials: a safety cap per run.
        min_epochs, eta: the smallest resource and the reduction factor of the multi-fidelity
            strategies (:mod:`effnas.nas.bench_fidelity`; the largest is ``charge_epochs``).
        curve_noise: spread of the modelled early-epoch accuracy on a table without recorded curves
            (:func:`effnas.nas.bench_fidelity.observe_at`).
        candidates: mutations per child of ``pred-evolution`` (the predictor picks one).
    """

    benchmark: str
    budget_seconds: float
    objective: Objective = field(default_factory=lambda: Objective(target=1.0, w=0.0, metric="latency"))
    charge_epochs: int | None = 12
    population_size: int = 10
    tournament_size: int = 3
    startup_trials: int = 10
    max_trials: int = 100_000
    min_epochs: int = 1
    eta: int = 3
    curve_noise: float = 0.02
    candidates: int = 10

    def __post_init__(self) -> None:
        get_benchmark(self.benchmark)
        if not self.budget_seconds > 0 or not math.isfinite(self.budget_seconds):
            raise UserError(f"budget must be a positive number of seconds, got {self.budget_seconds}")
        if self.objective.metric != "latency":
            raise UserError("a benchmark table has no MACs: the objective's cost must be latency")
        if self.charge_epochs is not None and not 1 <= self.charge_epochs:
            raise UserError(f"charge_epochs must be >= 1, got {self.charge_epochs}")
        if self.min_epochs < 1 or self.eta < 2:
            raise UserError(f"min_epochs must be >= 1 and eta >= 2, got {self.min_epochs} and {self.eta}")
        if not 0 <= self.curve_noise <= 1:
            raise UserError(f"curve_noise must be in [0, 1] (accuracy is a fraction), got {self.curve_noise}")
        if self.budget_seconds < self.cheapest_trial():
            raise UserError(f"a budget of {self.budget_seconds:g} s fits no trial: the cheapest lookup of "
                            f"{self.benchmark} costs {self.cheapest_trial():.4g} simulated s (--budget-seconds)")

    def cheapest_trial(self) -> float:
        """The simulated seconds of the cheapest lookup in the table (what a budget must at least hold)."""
        table = self.table
        epochs = self.charge_epochs or table.full_epochs
        return _fastest_training(self.benchmark) * epochs / table.full_epochs

    @property
    def table(self) -> TabularBenchmark:
        return get_benchmark(self.benchmark)


@dataclass(frozen=True)
class Run:
    """One search run: the trials that fit in the budget, in order."""

    strategy: str
    run: int
    seed: int
    seconds: list[float]          # cumulative simulated seconds after each trial
    observed: list[float]         # the value the search saw: the reward (or the observed accuracy)
    accuracy: list[float]         # the table's mean accuracy of each trial's architecture
    latency_ms: list[float]
    keys: list[str]               # the architectures (benchmark notation)
    wall_seconds: float = field(default=math.nan, compare=False)  # real time of the run (strategy + lookups)

    @property
    def best_index(self) -> int:
        """The trial a search would return: the best observed value (first on ties)."""
        return int(np.argmax(self.observed)) if self.observed else -1

    @property
    def best_accuracy(self) -> float:
        """The reported result: the mean accuracy of the returned architecture."""
        return self.accuracy[self.best_index] if self.observed else math.nan

    def best_so_far(self) -> list[float]:
        """After each trial, the reported accuracy of the architecture the search would return."""
        out, best, arg = [], -math.inf, -1
        for i, v in enumerate(self.observed):
            if v > best:
                best, arg = v, i
            out.append(self.accuracy[arg])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "run": self.run, "seed": self.seed, "seconds": self.seconds,
                "observed": self.observed, "accuracy": self.accuracy, "latency_ms": self.latency_ms,
                "keys": self.keys, "wall_seconds": self.wall_seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        return cls(**{k: d[k] for k in ("strategy", "run", "seed", "seconds", "observed", "accuracy",
                                        "latency_ms", "keys")}, wall_seconds=float(d.get("wall_seconds", math.nan)))


def median_latency(table: TabularBenchmark) -> float:
    """The median latency (ms) of a benchmark's architectures: the default T on a table."""
    return float(statistics.median(table.record(p).latency_ms for p in table.keys()))


def run_once(protocol: Protocol, strategy: str, *, run: int, seed: int) -> Run:
    """One budgeted search with ``strategy``, seeded by ``seed``."""
    t0 = time.perf_counter()
    table = protocol.table
    space = CellSpace(table.name)
    cfg = SearchConfig(space=space, objective=protocol.objective, strategy=strategy, trials=protocol.max_trials,
                       seed=seed, storage=None, study_name=f"{strategy}-{run}", prune=False,
                       population_size=protocol.population_size, train={"dataset": table.dataset, "seed": seed},
                       max_failed_share=1.0)
    sampler = make_sampler(strategy, seed=seed, multi_objective=protocol.objective.multi_objective,
                           population_size=protocol.population_size, startup_trials=protocol.startup_trials,
                           tournament_size=protocol.tournament_size, candidates=protocol.candidates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = open_study(cfg, sampler=sampler)
    trainer = BenchmarkTrainer(table.name, charge_epochs=protocol.charge_epochs)
    seconds: list[float] = []
    observed: list[float] = []
    accuracy: list[float] = []
    latency: list[float] = []
    keys: list[str] = []
    spent = 0.0
    for _ in range(protocol.max_trials):
        trial = study.ask()
        evaluate_trial(cfg, study._storage, trial.number, space.sample(trial), trainer)
        frozen = study.get_trials(deepcopy=False)[trial.number]
        a = frozen.user_attrs
        if a.get("status") != "completed":
            raise UserError(f"trial {trial.number} of {strategy} run {run} ended {a.get('status')}: "
                             f"{a.get('error', 'no error recorded')}")
        cost = float(a["train_seconds"])
        if spent + cost > protocol.budget_seconds:  # the paper stops before the overrunning architecture
            break
        spent += cost
        params = {k: frozen.params[k] for k in space.choices}
        seconds.append(spent)
        observed.append(float(a["reward"]))
        accuracy.append(table.record(params).mean_accuracy)
        latency.append(float(a["latency_ms"]))
        keys.append(str(a["blocks"]))
    return Run(strategy, run, seed, seconds, observed, accuracy, latency, keys, time.perf_counter() - t0)


# -- summaries -------------------------------------------------------------------------------


def anytime(runs: list[Run], grid: np.ndarray, series: list[list[float]] | None = None) -> np.ndarray:
    """A per-trial value of each run at each simulated time of ``grid`` (NaN before a run's first
    trial finishes); shape ``(runs, len(grid))``. The value is the best-so-far reported accuracy,
    or ``series[i]`` (one value per trial of run i)."""
    out = np.full((len(runs), len(grid)), np.nan)
    for i, r in enumerate(runs):
        if not r.seconds:
            continue
        idx = np.searchsorted(np.asarray(r.seconds), grid, side="right") - 1
        best = np.asarray(series[i] if series is not None else r.best_so_far())
        ok = idx >= 0
        out[i, ok] = best[idx[ok]]
    return out


def pareto_points(accuracy: list[float], cost: list[float]) -> list[tuple[float, float]]:
    """The non-dominated ``(accuracy, cost)`` pairs (accuracy up, cost down), by cost."""
    pts = list(zip(accuracy, cost, strict=True))
    return [pts[i] for i in pareto_front(pts)]


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``(accuracy, cost)`` points (maximise accuracy, minimise cost) and bounded
    by the reference point ``ref = (worst accuracy, worst cost)``.

    >>> hypervolume([(0.9, 10.0), (0.8, 5.0)], ref=(0.0, 20.0))
    13.0
    """
    front = [(a, c) for a, c in pareto_points([p[0] for p in points], [p[1] for p in points])
             if a > ref[0] and c < ref[1]]
    area, prev_acc = 0.0, ref[0]
    for a, c in front:  # increasing cost, increasing accuracy
        area += (a - prev_acc) * (ref[1] - c)
        prev_acc = a
    return area


def table_front(table: TabularBenchmark) -> list[tuple[float, float]]:
    """The whole table's Pareto front of mean accuracy vs latency."""
    acc, lat = [], []
    for p in table.keys():
        rec = table.record(p)
        acc.append(rec.mean_accuracy)
        lat.append(rec.latency_ms)
    return pareto_points(acc, lat)
