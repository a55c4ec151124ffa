"""The search objective: MnasNet's reward, its constraints, and the multi-objective mode.

MnasNet (Tan et al. 2019, Eq. 2) maximises ``ACC(m) x [LAT(m)/T]^w`` with ``w = alpha`` if
``LAT(m) <= T`` else ``beta``; the soft constraint is ``alpha = beta = -0.07``, the hard one
``alpha = 0, beta = -1``. EfficientNet (§4) uses the same reward with MACs ("FLOPS") in place
of latency, ``T = 400 M``, ``w = -0.07``. Here the cost is MACs by default and measured batch-1
latency as an option: ms of PyTorch on the current device, or of onnxruntime (one CPU thread) on
the candidate exported to ONNX (``latency_runtime``). In ``pareto`` mode the study has two
objectives, accuracy (maximise) and cost (minimise); the reward is still recorded.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import LATENCY_RUNTIMES

METRICS = ("macs", "latency")
CONSTRAINTS = ("soft", "hard")
MODES = ("reward", "pareto")


@dataclass(frozen=True)
class Objective:
    """``reward = accuracy * (cost / target) ** (alpha if cost <= target else beta)``.

    Args:
        target: T, in MACs (``metric="macs"``) or milliseconds (``metric="latency"``); > 0.
        w: the exponent of the soft constraint (alpha = beta = w); MnasNet/EfficientNet -0.07.
        constraint: ``soft`` (alpha = beta = w) or ``hard`` (alpha = 0, beta = -1, and
            candidates over the target are rejected before training).
        metric: ``macs`` or ``latency``.
        mode: ``reward`` (one objective) or ``pareto`` (accuracy up, cost down).
        latency_runtime: what measures latency: ``torch`` (eager PyTorch) or ``onnxruntime``
            (the exported ONNX network); only with ``metric="latency"``.

    >>> o = Objective(target=400e6)
    >>> round(o.reward(0.8, 800e6), 4)  # 0.8 * 2 ** -0.07
    0.7621
    >>> Objective(target=400e6, constraint="hard").reward(0.8, 200e6)
    0.8
    """

    target: float
    w: float = -0.07
    constraint: str = "soft"
    metric: str = "macs"
    mode: str = "reward"
    latency_runtime: str = "torch"

    def __post_init__(self) -> None:
        if isinstance(self.target, bool) or not isinstance(self.target, int | float) or not self.target > 0:
            raise UserError(f"target T must be > 0 (MACs or ms), got {self.target!r}")
        if not isinstance(self.w, int | float) or not math.isfinite(self.w):
            raise UserError(f"w must be a finite number (e.g. -0.07), got {self.w!r}")
        for name, value, allowed in (("constraint", self.constraint, CONSTRAINTS), ("metric", self.metric, METRICS),
                                     ("objective", self.mode, MODES),
                                     ("latency runtime", self.latency_runtime, LATENCY_RUNTIMES)):
            if value not in allowed:
                raise UserError(f"unknown {name} {value!r}: expected one of {', '.join(allowed)}")
        if self.latency_runtime != "torch" and self.metric != "latency":
            raise UserError(f"latency runtime {self.latency_runtime!r} times a latency cost: use metric 'latency'")

    @property
    def alpha(self) -> float:
        return float(self.w) if self.constraint == "soft" else 0.0

    @property
    def beta(self) -> float:
        return float(self.w) if self.constraint == "soft" else -1.0

    @property
    def cost_key(self) -> str:
        """The trial attribute holding the cost: ``macs`` or ``latency_ms``."""
        return "macs" if self.metric == "macs" else "latency_ms"

    @property
    def directions(self) -> list[str]:
        return ["maximize"] if self.mode == "reward" else ["maximize", "minimize"]

    def metric_names(self, measure: str = "accuracy") -> list[str]:
        """What each of :meth:`values` is, as the study names them (optuna-dashboard's axis labels);
        ``measure`` is what a trial's value is (``accuracy``, or ``score`` for an estimate).

        >>> Objective(target=4e8).metric_names(), Objective(target=5.0, metric="latency", mode="pareto").metric_names()
        (['reward'], ['accuracy', 'latency_ms'])
        >>> Objective(target=4e8, mode="pareto").metric_names("score")
        ['score', 'macs']
        """
        return ["reward"] if self.mode == "reward" else [measure, self.cost_key]

    @property
    def multi_objective(self) -> bool:
        return self.mode == "pareto"

    def exponent(self, cost: float) -> float:
        return self.alpha if cost <= self.target else self.beta

    def reward(self, accuracy: float, cost: float) -> float:
        if not cost > 0:
            raise UserError(f"cost must be > 0 to compute a reward, got {cost}")
        return float(accuracy) * (float(cost) / self.target) ** self.exponent(cost)

    def rejects(self, cost: float) -> bool:
        """True when a hard constraint forbids ``cost`` (the candidate is never trained)."""
        return self.constraint == "hard" and cost > self.target

    def values(self, accuracy: float, cost: float) -> list[float]:
        """What the Optuna study is told: ``[reward]`` or ``[accuracy, cost]``."""
        if self.mode == "reward":
            return [self.reward(accuracy, cost)]
        return [float(accuracy), float(cost)]

    def to_dict(self) -> dict[str, Any]:
        """Fields as a dict; ``latency_runtime`` only when not ``torch`` (studies made before it
        existed resume with the same settings)."""
        d = dataclasses.asdict(self)
        if d["latency_runtime"] == "torch":
            del d["latency_runtime"]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Objective:
        return cls(**data)
