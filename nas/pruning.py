"""Pruning that respects the noise floor: the one pruner of every search path.

Optuna's MedianPruner stops a trial whose reward after an epoch is below the median of the
completed trials' rewards after that epoch. On CIFAR-10 (``docs/results/cifar10/short-budget``) it stopped 16 of
30 trials after their first epoch at 9-16 % validation accuracy with 10 classes: near chance, where
candidates differ by less than one seed's spread, so it ranked noise. :class:`NoiseFloorPruner`
asks the same question with the rule of :mod:`effnas.search_spaces.common.stats`
(:func:`~effnas.search_spaces.common.stats.compare` with a noise floor), each reward taken as one run whose
seed-to-seed standard deviation is the floor:

1. **Signal first.** Trials are compared at an epoch only once the median of the completed trials'
   rewards there is *better* than the reward the candidate would have at chance accuracy
   (1 / classes). Until then every candidate is still near chance and none is stopped.
2. **Behind beyond the noise.** A trial stops only when its reward is *worse* than that median; a
   trial *tied within noise* goes on.

A floor given as a number is taken as known (the normal quantile), so each difference must exceed
``1.96 x sqrt(2) x sd = 2.77 sd``. The floor is an accuracy's standard deviation; a reward is the
accuracy times the candidate's fixed cost factor ``f = (cost / T)^w``, so the trial's comparison uses
``sd x f`` and ``chance x f``. As in Optuna's MedianPruner, nothing is compared before
:data:`STARTUP_TRIALS` trials have completed with a reward at that epoch. docs/search.md
("Pruning") states the rule and where the default floor comes from.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from effnas.nas.objective import Objective
from effnas.search_spaces.common.stats import BETTER, WORSE, NoiseFloor, compare

#: The default ``search.noise_floor``: the pooled seed-to-seed standard deviation of a candidate's
#: validation accuracy after its first proxy epoch, 0.029 (12 df: 6 random candidates x 3 seeds),
#: measured on real CIFAR-10 with the cifar10-cpu preset's search recipe (2 epochs on 10 % of the
#: pool); after the second epoch it was 0.021, so the first epoch's is the floor
#: (``bench/search_noise.py``, ``docs/results/search_noise``; docs/search.md, "Pruning").
DEFAULT_NOISE_FLOOR = 0.029
#: Completed trials with a reward at an epoch before a trial is compared with them there
#: (Optuna's MedianPruner default ``n_startup_trials``).
STARTUP_TRIALS = 5
#: Degrees of freedom of a floor given as a number: taken as known, the t quantile is the normal one.
KNOWN_DF = 10**6

#: Why a trial goes on or stops (:func:`decide`).
KEEP_STARTUP, KEEP_NEAR_CHANCE, KEEP_WITHIN_NOISE, KEEP_AHEAD, PRUNE = (
    "fewer completed trials than the start-up", "the median is within noise of chance",
    "tied within noise of the median", "at or above the median", "worse than the median beyond noise")


def known_floor(sd: float) -> NoiseFloor:
    """A noise floor given as a number (a config key), taken as exactly known."""
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"a noise floor is a standard deviation >= 0, got {sd}")
    return NoiseFloor(sd=float(sd), df=KNOWN_DF, groups=0)


def decide(value: float, completed: Sequence[float], *, chance: float, floor: NoiseFloor,
           startup: int = STARTUP_TRIALS) -> str:
    """The pruning rule for a trial whose reward at an epoch is ``value``, given the completed
    trials' rewards at that epoch: :data:`PRUNE`, or why the trial goes on.

    >>> f = known_floor(0.02)
    >>> decide(0.10, [0.12, 0.14, 0.11, 0.16, 0.13], chance=0.1, floor=f)  # all near chance
    'the median is within noise of chance'
    >>> decide(0.40, [0.45, 0.50, 0.42, 0.47, 0.44], chance=0.1, floor=f)  # 4 points behind: noise
    'tied within noise of the median'
    >>> decide(0.30, [0.45, 0.50, 0.42, 0.47, 0.44], chance=0.1, floor=f)
    'worse than the median beyond noise'
    """
    values = [v for v in completed if math.isfinite(v)]
    if len(values) < startup or not math.isfinite(value):
        return KEEP_STARTUP
    median = statistics.median(values)
    if compare([median], [chance], floor=floor).verdict != BETTER:
        return KEEP_NEAR_CHANCE
    if value >= median:
        return KEEP_AHEAD
    return PRUNE if compare([value], [median], floor=floor).verdict == WORSE else KEEP_WITHIN_NOISE


class NoiseFloorPruner(optuna.pruners.BasePruner):
    """Median pruning that does not compare noise (the module's rule, :func:`decide`).

    Args:
        objective: gives each trial's cost factor (from its cost attribute, stored before training).
        chance: the accuracy of guessing, 1 / classes.
        noise_floor: the seed-to-seed standard deviation of a candidate's accuracy (a fraction).
        startup: completed trials needed at an epoch before any trial is compared there.
    """

    def __init__(self, *, objective: Objective, chance: float, noise_floor: float = DEFAULT_NOISE_FLOOR,
                 startup: int = STARTUP_TRIALS) -> None:
        if not 0 <= chance < 1:
            raise ValueError(f"chance must be in [0, 1), got {chance}")
        known_floor(noise_floor)
        self.objective, self.chance, self.noise_floor, self.startup = objective, chance, noise_floor, startup

    def factor(self, trial: FrozenTrial) -> float:
        """The trial's reward per unit accuracy, ``(cost / T)^w`` (times ``(params / P0)^v`` with ``v``;
        1 without a cost)."""
        cost = trial.user_attrs.get(self.objective.cost_key)
        if isinstance(cost, bool) or not isinstance(cost, int | float) or not cost > 0:
            return 1.0
        return self.objective.reward(1.0, float(cost), trial.user_attrs.get("params"))

    def decision(self, study: optuna.Study, trial: FrozenTrial) -> str:
        """:func:`decide` for the trial's last reported epoch."""
        step = trial.last_step
        if step is None:
            return KEEP_STARTUP
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        completed = [t.intermediate_values[step] for t in done if step in t.intermediate_values]
        f = self.factor(trial)
        return decide(trial.intermediate_values[step], completed, chance=self.chance * f,
                      floor=known_floor(self.noise_floor * f), startup=self.startup)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.decision(study, trial) == PRUNE




#: ``search.pruner``: what stops a candidate early (:func:`make`).
PRUNERS = ("noise_floor", "median", "asha", "hyperband")
#: The reduction factor of ``asha`` and ``hyperband``: a third of the trials at a rung go on.
ETA = 3


def make(name: str, *, prune: bool, objective: Objective, chance: float, noise_floor: float,
         epochs: int) -> optuna.pruners.BasePruner:
    """The pruner ``name`` on the per-epoch reward, single-objective mode only (else, and without ``prune``,
    none). ``noise_floor`` is :class:`NoiseFloorPruner`: a trial stops after an epoch whose reward is below the
    median of the completed trials' rewards there by more than the floor allows, once :data:`STARTUP_TRIALS`
    trials have completed and that median is beyond the noise above chance. ``median``, ``asha`` and
    ``hyperband`` are Optuna's pruners with epochs as the resource (``min_resource`` 1, reduction factor
    :data:`ETA`, hyperband's ``max_resource`` the candidates' ``epochs``); they do not know the noise floor."""
    if not prune or objective.multi_objective:
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=ETA)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs), reduction_factor=ETA)
    return NoiseFloorPruner(objective=objective, chance=chance, noise_floor=noise_floor)


__all__ = ["DEFAULT_NOISE_FLOOR", "ETA", "KEEP_AHEAD", "KEEP_NEAR_CHANCE", "KEEP_STARTUP", "KEEP_WITHIN_NOISE",
           "KNOWN_DF", "PRUNE", "PRUNERS", "STARTUP_TRIALS", "NoiseFloorPruner", "decide", "known_floor", "make"]
