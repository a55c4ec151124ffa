"""Regularized ("aging") evolution as an Optuna sampler.

Real et al., "Regularized Evolution for Image Classifier Architecture Search" (AAAI 2019,
Algorithm 1): the population is the ``population_size`` most recent finished trials (the
oldest dies as each child is born); a parent is the fittest of ``tournament_size`` members drawn
at random; the child is the parent with one parameter changed to a different value. Until the
population is full, parameters are drawn at random.

Everything the sampler knows is read from the study's trials, so it shares storage, resume and
parallel workers with Optuna's own samplers: a restarted search rebuilds the same population.
Fitness is the trial's value; pruned trials count with their ``reward`` attribute (the reward
at the epoch they were stopped), rejected ones (a hard constraint) as the worst.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from effnas.search_spaces.common.errors import UserError


def fitness(trial: FrozenTrial) -> float:
    """A single-objective trial's fitness: its value, else its ``reward`` attribute, else -inf."""
    if trial.state == TrialState.COMPLETE and trial.values is not None and len(trial.values) == 1:
        return float(trial.values[0])
    r = trial.user_attrs.get("reward")
    return float(r) if isinstance(r, int | float) and math.isfinite(r) else -math.inf


def finished_trials(study: Study) -> list[FrozenTrial]:
    """COMPLETE and PRUNED trials in creation order (what the search learns from)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return sorted(trials, key=lambda t: t.number)


class RegularizedEvolutionSampler(BaseSampler):
    """Aging evolution (Real et al. 2019) over categorical parameters.

    Args:
        population_size: P, the number of most recent trials that form the population.
        tournament_size: S, members drawn per tournament (the paper: P = 100, S = 25 for
            20k models; small studies need small values).
        seed: seeds the tournament and mutation draws.
    """

    def __init__(self, *, population_size: int = 20, tournament_size: int = 5, seed: int | None = None) -> None:
        if population_size < 2:
            raise UserError(f"population_size must be >= 2, got {population_size}")
        if not 1 <= tournament_size <= population_size:
            raise UserError(f"tournament_size must be in [1, {population_size}], got {tournament_size}")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {n: d for n, d in self._space.calculate(study).items() if isinstance(d, CategoricalDistribution)}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        if not search_space:
            return {}
        population = finished_trials(study)[-self.population_size:]
        if len(population) < self.population_size:
            return {}
        picks = self._rng.choice(len(population), size=self.tournament_size, replace=False)
        parent = max((population[i] for i in picks), key=lambda t: (fitness(t), -t.number))
        child = {n: parent.params[n] for n in search_space if n in parent.params}
        mutable = [n for n in child if len(search_space[n].choices) > 1]  # type: ignore[attr-defined]
        if mutable:
            name = mutable[self._rng.randint(len(mutable))]
            choices = [c for c in search_space[name].choices if c != child[name]]  # type: ignore[attr-defined]
            child[name] = choices[self._rng.randint(len(choices))]
        return child

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        pass


__all__ = ["RegularizedEvolutionSampler", "finished_trials", "fitness"]
