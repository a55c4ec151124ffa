"""Multi-fidelity search on a tabular benchmark: Hyperband and ASHA with epochs as the resource.

The resource of a trial is its training epochs, from ``min_epochs`` to the protocol's
``charge_epochs`` (R, NAS-Bench-201's 12-epoch proxy); an architecture trained to R is observed as
every other strategy observes it (:func:`effnas.nas.bench_search.run_once`: one seed's table
accuracy), and each epoch is charged ``1 / full_epochs`` of the table's training time, only for the
epochs actually trained (a promoted trial continues from where it stopped).

- ``hyperband``: Li et al., "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
  Optimization" (JMLR 2018, Algorithm 1): brackets s = s_max .. 0 of synchronous successive
  halving (:func:`hyperband_brackets`), repeated until the budget is spent; configurations drawn at
  random (``hyperband``) or by TPE (``hyperband-tpe``, which models the finished and pruned trials
  like Optuna's TPE does; BOHB, Falkner et al. 2018, models each budget with its own KDE).
- ``asha``: asynchronous successive halving (Li et al., MLSys 2020) as Optuna runs it in process,
  :class:`optuna.pruners.SuccessiveHalvingPruner` (rungs at ``min_epochs * eta^k``, a trial stops at
  a rung unless it is in the top ``1/eta`` of the trials that reached it); sampling random
  (``asha``) or TPE (``asha-tpe``).

The table may hold no per-epoch accuracies (the offline NAS-Bench-201 copy has only the
200-epoch ones): then a trial's accuracy after e of R epochs is a **model**, :func:`observe_at`,
not data, and multi-fidelity results on such a table hold under that model only. A table with
recorded curves (:meth:`~effnas.nas.benchmarks.base.TabularBenchmark.curve`) is read instead.
Only the returned-architecture protocol of ``run_once`` applies: the search returns the best
architecture trained to R, and a :class:`~effnas.nas.bench_search.Run` lists those trials only
(with the compute spent when each finished, low-fidelity epochs included).
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna

from effnas.nas.bench_search import Protocol, Run, run_once
from effnas.nas.benchmarks.base import TabularBenchmark
from effnas.nas.benchmarks.cell_space import CellSpace
from effnas.nas.strategies import STRATEGIES
from effnas.search_spaces.common.errors import UserError

#: Multi-fidelity strategies: name -> (scheduler, sampler).
SCHEDULED = {"hyperband": ("hyperband", "random"), "hyperband-tpe": ("hyperband", "tpe"),
             "asha": ("asha", "random"), "asha-tpe": ("asha", "tpe")}
#: Every strategy ``effnas bench-search`` runs.
BENCH_STRATEGIES = (*STRATEGIES, *SCHEDULED)
#: Shape of the modelled learning curve: the share of (final - chance) reached after a fraction x
#: of the epochs is (1 - exp(-K x)) / (1 - exp(-K)).
CURVE_RATE = 3.0


def hyperband_brackets(min_resource: float, max_resource: float, eta: int) -> list[list[tuple[int, float]]]:
    """Hyperband's brackets (Li et al. 2018, Algorithm 1): for s = s_max .. 0, the rungs
    ``(n_i, r_i)``, i = 0 .. s, of successive halving: n_i configurations trained to r_i.

    With R = max / min resource (in units of ``min_resource``), s_max = floor(log_eta R),
    B = (s_max + 1) R, n = ceil(B / R * eta^s / (s + 1)), r = R eta^-s, n_i = floor(n eta^-i),
    r_i = r eta^i (times ``min_resource``). Li et al.'s Table 1 (R = 81, eta = 3):

    >>> [b[0] for b in hyperband_brackets(1, 81, 3)]
    [(81, 1.0), (34, 3.0), (15, 9.0), (8, 27.0), (5, 81.0)]
    """
    if not (isinstance(eta, int) and eta >= 2):
        raise UserError(f"eta must be an integer >= 2, got {eta!r}")
    if not 0 < min_resource <= max_resource or not math.isfinite(max_resource):
        raise UserError(f"resources must satisfy 0 < min <= max, got min {min_resource}, max {max_resource}")
    big_r = max_resource / min_resource
    s_max = int(math.floor(math.log(big_r, eta) + 1e-9))
    budget = (s_max + 1) * big_r
    out = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil(budget / big_r * eta**s / (s + 1) - 1e-9))
        r = big_r * eta**-s
        out.append([(int(math.floor(n * eta**-i + 1e-9)), min_resource * r * eta**i) for i in range(s + 1)])
    return out


def observe_at(table: TabularBenchmark, params: Mapping[str, Any], epoch: int, *, epochs: int, seed: int,
               draw: int, noise: float) -> float:
    """The validation accuracy a search sees after ``epoch`` of ``epochs`` (at ``epochs``: the
    table's observation, :meth:`~effnas.nas.benchmarks.base.TabularBenchmark.observe`).

    A table's recorded curve is read when it has one. Otherwise the model: chance + (final - chance)
    x (1 - exp(-K e/E)) / (1 - exp(-K)) with K = :data:`CURVE_RATE`, plus ``noise`` x (1 - e/E) x z
    with z a standard normal fixed per (seed, draw, architecture): early epochs rank architectures
    less faithfully, and the ranking is exact at E.
    """
    if not 1 <= epoch <= epochs:
        raise UserError(f"epoch must be in [1, {epochs}], got {epoch}")
    final = table.observe(params, seed=seed, draw=draw)
    if epoch == epochs:  # trained to R: what every other strategy observes
        return final
    curve = table.curve(params, seed=seed, draw=draw)
    if curve is not None:
        return float(curve[min(epoch, len(curve)) - 1])
    chance = 1.0 / table.num_classes
    x = epoch / epochs
    key = "|".join([str(seed), str(draw), *(str(params[k]) for k in table.choices)]).encode()
    z = float(np.random.default_rng(zlib.crc32(key)).standard_normal())
    share = (1 - math.exp(-CURVE_RATE * x)) / (1 - math.exp(-CURVE_RATE))
    return float(np.clip(chance + (final - chance) * share + noise * (1 - x) * z, 0.0, 1.0))


class _Tracker:
    """The budget, and the trials trained to the full resource (what a :class:`Run` lists)."""

    def __init__(self, protocol: Protocol, seed: int) -> None:
        self.protocol, self.table, self.seed = protocol, protocol.table, seed
        self.epochs = protocol.charge_epochs or self.table.full_epochs
        self.spent = 0.0
        self.seconds: list[float] = []
        self.observed: list[float] = []
        self.accuracy: list[float] = []
        self.latency: list[float] = []
        self.keys: list[str] = []

    def train(self, params: Mapping[str, Any], draw: int, done: int, to: int) -> float | None:
        """Train from epoch ``done`` to ``to``: the value seen, or None when the budget cannot pay."""
        rec = self.table.record(params)
        cost = rec.train_seconds * (to - done) / self.table.full_epochs
        if self.spent + cost > self.protocol.budget_seconds:
            return None
        self.spent += cost
        acc = observe_at(self.table, params, to, epochs=self.epochs, seed=self.seed, draw=draw,
                         noise=self.protocol.curve_noise)
        value = self.protocol.objective.reward(acc, rec.latency_ms)
        if to == self.epochs:
            self.seconds.append(self.spent)
            self.observed.append(value)
            self.accuracy.append(rec.mean_accuracy)
            self.latency.append(rec.latency_ms)
            self.keys.append(self.table.describe(params))
        return value


def _hyperband(study: optuna.Study, space: CellSpace, t: _Tracker) -> None:
    brackets = hyperband_brackets(t.protocol.min_epochs, t.epochs, t.protocol.eta)
    while True:
        for bracket in brackets:
            trials = [study.ask() for _ in range(bracket[0][0])]
            params = {tr.number: space.sample(tr) for tr in trials}
            trained = dict.fromkeys(params, 0)
            for i, (_, r) in enumerate(bracket):
                to = t.epochs if i == len(bracket) - 1 else max(1, round(r))
                values = {}
                for tr in trials:
                    v = t.train(params[tr.number], tr.number, trained[tr.number], to)
                    if v is None:
                        return
                    trained[tr.number] = to
                    tr.report(v, to)
                    values[tr.number] = v
                keep = bracket[i + 1][0] if i + 1 < len(bracket) else len(trials)
                ranked = sorted(trials, key=lambda tr: (-values[tr.number], tr.number))
                for tr in ranked[keep:]:
                    study.tell(tr, state=optuna.trial.TrialState.PRUNED)
                trials = ranked[:keep]
            for tr in trials:
                study.tell(tr, values[tr.number])


def _asha(study: optuna.Study, space: CellSpace, t: _Tracker) -> None:
    while True:
        tr = study.ask()
        params = space.sample(tr)
        for e in range(1, t.epochs + 1):
            v = t.train(params, tr.number, e - 1, e)
            if v is None:
                return
            tr.report(v, e)
            if e < t.epochs and tr.should_prune():
                study.tell(tr, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(tr, v)


def run_scheduled(protocol: Protocol, strategy: str, *, run: int, seed: int) -> Run:
    """One budgeted multi-fidelity search (``strategy`` in :data:`SCHEDULED`), seeded by ``seed``."""
    if strategy not in SCHEDULED:
        raise UserError(f"unknown multi-fidelity strategy {strategy!r}: expected one of {', '.join(SCHEDULED)}")
    if protocol.objective.multi_objective:
        raise UserError(f"{strategy} needs one objective: use --mode reward")
    t0 = time.perf_counter()
    scheduler, sampling = SCHEDULED[strategy]
    t = _Tracker(protocol, seed)
    if not protocol.min_epochs <= t.epochs:
        raise UserError(f"--min-epochs {protocol.min_epochs} exceeds the full resource of {t.epochs} epochs "
                         "(--charge-epochs)")
    sampler = (optuna.samplers.RandomSampler(seed=seed) if sampling == "random" else
               optuna.samplers.TPESampler(seed=seed, n_startup_trials=protocol.startup_trials))
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=protocol.min_epochs,
                                                     reduction_factor=protocol.eta)
              if scheduler == "asha" else optuna.pruners.NopPruner())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    space = CellSpace(protocol.table.name)
    (_asha if scheduler == "asha" else _hyperband)(study, space, t)
    return Run(strategy, run, seed, t.seconds, t.observed, t.accuracy, t.latency, t.keys,
               time.perf_counter() - t0)


def run_strategy(protocol: Protocol, strategy: str, *, run: int, seed: int) -> Run:
    """One run of any :data:`BENCH_STRATEGIES` entry."""
    if strategy in SCHEDULED:
        return run_scheduled(protocol, strategy, run=run, seed=seed)
    return run_once(protocol, strategy, run=run, seed=seed)


__all__ = ["BENCH_STRATEGIES", "SCHEDULED", "hyperband_brackets", "observe_at", "run_scheduled", "run_strategy"]
