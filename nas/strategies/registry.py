"""One interface for the search strategies: each is an Optuna sampler.

Random, TPE (Bergstra et al. 2011) and NSGA-II (Deb et al. 2002) are Optuna's own; regularized
evolution (:mod:`effnas.nas.strategies.evolution`) and the RL controller (:mod:`effnas.nas.strategies.rl`),
and predictor-guided evolution (:mod:`effnas.nas.strategies.predictor`) are ours, written as
:class:`optuna.samplers.BaseSampler` subclasses. Every strategy therefore records into
the same kind of study, and strategies can be mixed in one study (each trial stores the
``strategy`` that proposed it).
"""

from __future__ import annotations

import optuna

from effnas.nas.strategies.evolution import RegularizedEvolutionSampler
from effnas.nas.strategies.predictor import PredictorEvolutionSampler
from effnas.nas.strategies.rl import ReinforceSampler
from effnas.search_spaces.common.errors import UserError

STRATEGIES = ("random", "tpe", "nsga2", "evolution", "rl", "pred-evolution")
#: Strategies that only optimise one objective.
SINGLE_OBJECTIVE = ("evolution", "rl", "pred-evolution")


def make_sampler(name: str, *, seed: int | None = None, multi_objective: bool = False,
                 population_size: int = 20, startup_trials: int = 10,
                 tournament_size: int | None = None, candidates: int = 10) -> optuna.samplers.BaseSampler:
    """The sampler for strategy ``name``.

    Args:
        name: one of :data:`STRATEGIES`.
        seed: seeds the sampler.
        multi_objective: the study has several objectives (``pareto`` mode).
        population_size: NSGA-II generation size and evolution population (Optuna's NSGA-II
            default is 50; small studies need fewer).
        startup_trials: random trials before TPE models the results (Optuna's default 10; a
            study of 8 trials would never leave them).
        tournament_size: evolution's tournament (None: a quarter of the population, at least 2;
            NAS-Bench-201's REA: population 10, tournament 3).
        candidates: mutations per child of ``pred-evolution``, of which the predictor picks one.
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}: expected one of {', '.join(STRATEGIES)}")
    if multi_objective and name in SINGLE_OBJECTIVE:
        raise UserError(f"strategy {name!r} needs a single objective: use search.mode = reward (--mode reward), "
                         "or nsga2/tpe/random")
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size)
    tournament = tournament_size or max(2, population_size // 4)
    if name == "evolution":
        return RegularizedEvolutionSampler(population_size=population_size, tournament_size=tournament, seed=seed)
    if name == "pred-evolution":
        return PredictorEvolutionSampler(candidates=candidates, population_size=population_size,
                                         tournament_size=tournament, seed=seed)
    return ReinforceSampler(seed=seed)
