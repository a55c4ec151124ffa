"""``[supernet]``: the weight-sharing supernet a search can evaluate candidates with.
:mod:`effnas.experiments.config.schema` re-exports it; see there for how sections are read,
validated and overridden."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from effnas.experiments.config.choices import SAMPLINGS
from effnas.experiments.config.sections import Section, choice, positive
from effnas.search_spaces.common.errors import UserError


@dataclass(frozen=True)
class SupernetConfig(Section):
    """``[supernet]``: the weight-sharing supernet of ``search.space`` (``effnas supernet train``,
    :mod:`effnas.experiments.estimators.supernet`), trained with the ``[train]`` recipe on ``[data]``.

    Args:
        epochs: supernet training epochs (``train.epochs`` stays the full runs').
        sampling: ``uniform`` (single-path one-shot: one uniformly drawn candidate per step,
            Guo et al. 2020) or ``sandwich`` (BigNAS: the largest, the smallest and
            ``sandwich_random`` random candidates per step, gradients summed; the others learn
            from the largest's soft predictions, in-place distillation).
        sandwich_random: random candidates per step with ``sandwich``.
        calibration_batches: training batches (of the evaluating search's batch size) that
            re-estimate a candidate's BatchNorm statistics before it is evaluated.
    """

    SECTION: ClassVar[str] = "supernet"

    epochs: int = 10
    sampling: str = "uniform"
    sandwich_random: int = 2
    calibration_batches: int = 8

    def __post_init__(self) -> None:
        positive("supernet.epochs", self.epochs)
        choice("supernet.sampling", self.sampling, SAMPLINGS)
        positive("supernet.sandwich_random", self.sandwich_random, zero=True)
        if self.sampling == "uniform" and self.sandwich_random != 2:
            raise UserError("supernet.sandwich_random acts with supernet.sampling = 'sandwich': set that, or drop it")
        positive("supernet.calibration_batches", self.calibration_batches)
