"""Cheap stand-ins for training a candidate: zero-cost proxies (:mod:`~effnas.nas.estimators.zerocost`),
the weight-sharing supernet (:mod:`~effnas.nas.estimators.supernet`) and the synthetic surrogate
objective (:mod:`~effnas.nas.estimators.surrogate`). ``experiments.estimators`` turns the first two into
trainers; the surrogate is one already."""

from effnas.nas.estimators import zerocost
from effnas.nas.estimators.supernet import Supernet, recalibrate_bn
from effnas.nas.estimators.surrogate import SurrogateTrainer, trials_to_target

__all__ = ["Supernet", "SurrogateTrainer", "recalibrate_bn", "trials_to_target", "zerocost"]
