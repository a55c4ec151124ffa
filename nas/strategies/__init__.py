"""Search strategies, each an Optuna sampler: the registry (:func:`make_sampler`, :data:`STRATEGIES`)
and our own samplers, regularized evolution (:mod:`~effnas.nas.strategies.evolution`) and the MnasNet RL
controller (:mod:`~effnas.nas.strategies.rl`), evolution through an accuracy predictor
(:mod:`~effnas.nas.strategies.predictor`). Uses ``search_spaces`` only."""

from effnas.nas.strategies.evolution import RegularizedEvolutionSampler
from effnas.nas.strategies.predictor import PredictorEvolutionSampler
from effnas.nas.strategies.registry import SINGLE_OBJECTIVE, STRATEGIES, make_sampler
from effnas.nas.strategies.rl import ReinforceSampler

__all__ = ["SINGLE_OBJECTIVE", "STRATEGIES", "PredictorEvolutionSampler", "RegularizedEvolutionSampler",
           "ReinforceSampler", "make_sampler"]
