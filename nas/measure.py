"""What a search measured of each candidate, and what to call it.

A trained candidate (``search.estimator = train``, the surrogate, a benchmark table's lookup) has a
validation **accuracy**. A candidate that was not trained but estimated has a **score**: a zero-cost
proxy's rank among reference candidates (``proxy:NAME``, :mod:`effnas.nas.estimators.zerocost`) or
the validation accuracy of its slice of a shared supernet (``supernet:DIR``). A score ranks
candidates; it is not the accuracy the candidate would reach trained, so every place a search's
value appears names it by :func:`measure_name`: the trial's user attribute, the column of
``trials.csv`` and ``reevaluation.csv``, the console line, ``pareto.json``, the report and the
notebooks; and says what it is by :func:`measure_label` (a chart's axis).

The reward is ``measure x (cost / T)^w`` either way (:func:`reward_formula`), times ``(params / P0)^v``
in EfficientNetV2's training-aware form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The value of a trained candidate, and of an estimated one.
ACCURACY, SCORE = "accuracy", "score"
MEASURES = (ACCURACY, SCORE)


def estimator_of(train: Mapping[str, Any]) -> str:
    """The estimator of a search's trainer config (``train``): ``proxy:NAME``, ``supernet:DIR`` or ``train``."""
    return str(train.get("estimator") or "train")


def measure_name(train: Mapping[str, Any]) -> str:
    """``score`` when the candidates are estimated (``estimator = proxy:NAME`` or ``supernet:DIR``), else ``accuracy``.

    >>> measure_name({"estimator": "proxy:jacob_cov"}), measure_name({"estimator": "supernet:runs/s"})
    ('score', 'score')
    >>> measure_name({"epochs": 2}), measure_name({})
    ('accuracy', 'accuracy')
    """
    return SCORE if estimator_of(train).startswith(("proxy:", "supernet")) else ACCURACY


def measure_label(train: Mapping[str, Any]) -> str:
    """What the measure is, for a chart's axis or a table's caption.

    >>> measure_label({"estimator": "proxy:jacob_cov"})
    'jacob_cov proxy score (rank-normalised)'
    >>> measure_label({"estimator": "supernet:runs/s"})
    'supernet score (validation accuracy with inherited weights)'
    >>> measure_label({"epochs": 2, "data_fraction": 0.25})
    'validation accuracy after 2 epochs on 25 % of the training split'
    >>> measure_label({"epochs": 1})
    'validation accuracy after 1 epoch'
    """
    est = estimator_of(train)
    if est.startswith("proxy:"):
        return f"{est.removeprefix('proxy:')} proxy score (rank-normalised)"
    if est.startswith("supernet"):
        return "supernet score (validation accuracy with inherited weights)"
    epochs = train.get("epochs")
    label = "validation accuracy"
    if isinstance(epochs, int | float) and not isinstance(epochs, bool):
        label += f" after {epochs:g} epoch{'' if epochs == 1 else 's'}"
    fraction = train.get("data_fraction")
    if isinstance(fraction, int | float) and 0 < fraction < 1:
        label += f" on {100 * fraction:g} % of the training split"
    return label


#: What each cost column is called in a reward's formula.
COST_NAMES = {"macs": "MACs", "latency_ms": "latency", "train_step_ms": "train step"}


def reward_formula(measure: str, cost_key: str = "macs", *, params: bool = False) -> str:
    """``score x (MACs/T)^w``: the reward of a search that measures ``measure``, by its cost (and with
    ``params``, EfficientNetV2's parameter factor).

    >>> reward_formula("score"), reward_formula("accuracy", "latency_ms")
    ('score x (MACs/T)^w', 'accuracy x (latency/T)^w')
    >>> reward_formula("accuracy", "train_step_ms", params=True)
    'accuracy x (train step/T)^w x (params/P0)^v'
    """
    return f"{measure} x ({COST_NAMES.get(cost_key, 'latency')}/T)^w" + (" x (params/P0)^v" if params else "")


def trial_value(attrs: Mapping[str, Any], measure: str) -> Any:
    """A trial's ``measure`` from its user attributes. A study written before a score was called
    one stored it as ``accuracy``: that value is the score."""
    if measure in attrs:
        return attrs[measure]
    return attrs.get(ACCURACY) if measure == SCORE else None


__all__ = ["ACCURACY", "COST_NAMES", "MEASURES", "SCORE", "estimator_of", "measure_label", "measure_name",
           "reward_formula", "trial_value"]
