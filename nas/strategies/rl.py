"""A MnasNet-style reinforcement-learning controller as an Optuna sampler.

MnasNet (Tan et al. 2019, §3.2) samples each block's choices from an RNN controller trained
with PPO on the reward. This controller is the factorized version of that policy: one
independent softmax over the choices of every parameter (``b{block}_{choice}``), trained with
REINFORCE (Williams 1992) and a moving-average baseline, advantages scaled by a moving
standard deviation. Its state is a pure function of the study's finished trials (replayed in
trial-number order, each once), so a resumed or parallel search rebuilds the same policy from
storage; pruned trials count with their ``reward`` attribute, rejected ones with the worst
reward seen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from effnas.nas.strategies.evolution import finished_trials, fitness
from effnas.search_spaces.common.errors import UserError


class ReinforceSampler(BaseSampler):
    """A factorized categorical policy trained with REINFORCE on the study's values.

    Args:
        learning_rate: step size on the logits per trial (0.1: the policy concentrates on a
            choice after ~100 consistent updates).
        baseline_decay: decay of the reward's moving average and variance (NASNet/MnasNet-style
            exponential baseline, 0.95).
        entropy_weight: pulls the logits towards uniform, against premature collapse.
        seed: seeds the policy's draws.
    """

    def __init__(self, *, learning_rate: float = 0.1, baseline_decay: float = 0.95, entropy_weight: float = 1e-3,
                 seed: int | None = None) -> None:
        if not learning_rate > 0:
            raise UserError(f"learning_rate must be > 0, got {learning_rate}")
        if not 0 <= baseline_decay < 1:
            raise UserError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        self.learning_rate = learning_rate
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self.logits: dict[str, np.ndarray] = {}
        self._seen: set[int] = set()
        self._baseline: float | None = None
        self._var: float | None = None
        self._worst = math.inf

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def _logits(self, name: str, n: int) -> np.ndarray:
        if name not in self.logits or len(self.logits[name]) != n:
            self.logits[name] = np.zeros(n)
        return self.logits[name]

    def update(self, trial: FrozenTrial) -> None:
        """One REINFORCE step on ``trial`` (its parameters were the actions)."""
        r = fitness(trial)
        if math.isfinite(r):
            self._worst = min(self._worst, r)
        elif math.isfinite(self._worst):
            r = self._worst
        else:
            return
        if self._baseline is None:
            self._baseline = r
            return
        diff = r - self._baseline
        if self._var is None:
            self._var = max(diff * diff, 1e-12)
        adv = diff / math.sqrt(self._var)
        d = self.baseline_decay
        self._var = d * self._var + (1 - d) * diff * diff
        self._baseline = d * self._baseline + (1 - d) * r
        for name, dist in trial.distributions.items():
            if not isinstance(dist, CategoricalDistribution) or name not in trial.params:
                continue
            logits = self._logits(name, len(dist.choices))
            p = _softmax(logits)
            a = dist.choices.index(trial.params[name])
            grad = -p
            grad[a] += 1.0
            # d(entropy)/d(logits) = -p * (log p + H)
            ent = -p * (np.log(p + 1e-12) + float(-(p * np.log(p + 1e-12)).sum()))
            logits += self.learning_rate * (float(np.clip(adv, -3, 3)) * grad + self.entropy_weight * ent)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if len(study.directions) > 1:
            raise UserError("the rl strategy needs a single objective: use search.mode = reward (--mode reward), "
                             "or nsga2 for pareto")
        for t in finished_trials(study):
            if t.number not in self._seen:
                self._seen.add(t.number)
                self.update(t)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if not isinstance(param_distribution, CategoricalDistribution):
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        p = _softmax(self._logits(param_name, len(param_distribution.choices)))
        return param_distribution.choices[int(self._rng.choice(len(p), p=p))]

    def probabilities(self, name: str) -> np.ndarray:
        """The policy's current distribution over ``name``'s choices."""
        return _softmax(self.logits[name])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
