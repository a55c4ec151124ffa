"""The search objective: MnasNet's reward, its constraints, and the multi-objective mode.

MnasNet (Tan et al. 2019, Eq. 2) maximises ``ACC(m) x [LAT(m)/T]^w`` with ``w = alpha`` if
``LAT(m) <= T`` else ``beta``; the soft constraint is ``alpha = beta = -0.07``, the hard one
``alpha = 0, beta = -1``. EfficientNet (§4) uses the same reward with MACs ("FLOPS") in place
of latency, ``T = 400 M``, ``w = -0.07``. Here the cost is MACs by default and measured batch-1
latency as an option: ms of PyTorch on the current device, or of onnxruntime (one CPU thread) on
the candidate exported to ONNX (``latency_runtime``). EfficientNetV2's training-aware search
(Tan & Le 2021, Sec. 3.3) rewards ``A x S^w x P^v`` with S the training step time and P the
parameters, ``w = -0.07, v = -0.05``: here the cost ``train_step`` (ms of one measured training
step at ``step_batch`` images, :func:`effnas.search_spaces.timing.time_train_step`) and the factor
``(P / params_target)^v``, which any cost can carry (``v = 0``: none). In ``pareto`` mode the study
has two objectives, accuracy (maximise) and cost (minimise); the reward is still recorded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import LATENCY_RUNTIMES

METRICS = ("macs", "latency", "train_step")
#: The trial attribute holding each metric's cost.
COST_KEYS = {"macs": "macs", "latency": "latency_ms", "train_step": "train_step_ms"}
#: Fields recorded in a study's settings only when they differ from these (studies made before them resume).
_OPTIONAL = {"latency_runtime": "torch", "latency_table": None, "v": 0.0, "params_target": None, "step_batch": None,
             "step_threads": 1}
CONSTRAINTS = ("soft", "hard")
MODES = ("reward", "pareto")


@dataclass(frozen=True)
class Objective:
    """``reward = accuracy * (cost / target) ** (alpha if cost <= target else beta) * (params / params_target) ** v``.

    Args:
        target: T, in MACs (``metric="macs"``) or milliseconds (``metric="latency"``, ``"train_step"``); > 0.
        w: the exponent of the soft constraint (alpha = beta = w); MnasNet/EfficientNet -0.07.
        constraint: ``soft`` (alpha = beta = w) or ``hard`` (alpha = 0, beta = -1, and
            candidates over the target are rejected before training).
        metric: ``macs``, ``latency`` or ``train_step`` (the measured training step time, EfficientNetV2's S).
        mode: ``reward`` (one objective) or ``pareto`` (accuracy up, cost down).
        latency_runtime: what measures latency: ``torch`` (eager PyTorch) or ``onnxruntime``
            (the exported ONNX network); only with ``metric="latency"``.
        latency_table: a latency lookup table's file (:mod:`effnas.search_spaces.latency_table`): the latency
            cost is the table's prediction (ops it lacks are timed once and added to the file) instead of a
            measurement; ``metric="latency"`` with the ``torch`` runtime only.
        v: the exponent of the parameters (EfficientNetV2: -0.05); 0: no parameter factor.
        params_target: P0, the parameters the factor is relative to (> 0; with ``v != 0`` only).
        step_batch, step_threads: the images and torch threads of a timed training step (``train_step`` only).

    >>> o = Objective(target=400e6)
    >>> round(o.reward(0.8, 800e6), 4)  # 0.8 * 2 ** -0.07
    0.7621
    >>> Objective(target=400e6, constraint="hard").reward(0.8, 200e6)
    0.8
    >>> v2 = Objective(target=50.0, metric="train_step", step_batch=128, v=-0.05, params_target=1e6)
    >>> round(v2.reward(0.8, 100.0, params=2e6), 4)  # 0.8 * 2 ** -0.07 * 2 ** -0.05
    0.7362
    """

    target: float
    w: float = -0.07
    constraint: str = "soft"
    metric: str = "macs"
    mode: str = "reward"
    latency_runtime: str = "torch"
    latency_table: str | None = None
    v: float = 0.0
    params_target: float | None = None
    step_batch: int | None = None
    step_threads: int = 1

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
        if self.latency_table is not None and (self.metric != "latency" or self.latency_runtime != "torch"):
            raise UserError("a latency table predicts a torch latency cost: use metric 'latency' with runtime "
                             "'torch', or drop the table")
        if isinstance(self.v, bool) or not isinstance(self.v, int | float) or not math.isfinite(self.v):
            raise UserError(f"v must be a finite number (e.g. -0.05), got {self.v!r}")
        if self.v and (isinstance(self.params_target, bool) or not isinstance(self.params_target, int | float)
                       or not self.params_target > 0):
            raise UserError(f"v = {self.v} weights params by (params/P0)^v: give params_target P0 > 0, got "
                             f"{self.params_target!r}")
        if not self.v and self.params_target is not None:
            raise UserError("params_target P0 acts only with v != 0 (the parameter exponent): give v or drop it")
        for field_name, n in (("step_batch", self.step_batch), ("step_threads", self.step_threads)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                raise UserError(f"{field_name} must be an integer >= 1, got {n!r}")
        if (self.metric == "train_step") != (self.step_batch is not None):
            raise UserError("a train_step cost times a step of step_batch images: give step_batch with metric "
                             "'train_step' only")
        if self.step_threads != 1 and self.metric != "train_step":
            raise UserError("step_threads times a training step: use metric 'train_step'")

    @property
    def alpha(self) -> float:
        return float(self.w) if self.constraint == "soft" else 0.0

    @property
    def beta(self) -> float:
        return float(self.w) if self.constraint == "soft" else -1.0

    @property
    def cost_key(self) -> str:
        """The trial attribute holding the cost: ``macs``, ``latency_ms`` or ``train_step_ms``."""
        return COST_KEYS[self.metric]

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

    def reward(self, accuracy: float, cost: float, params: float | None = None) -> float:
        """``accuracy`` times the cost factor and, with ``v != 0``, the parameter factor (``params`` needed)."""
        if not cost > 0:
            raise UserError(f"cost must be > 0 to compute a reward, got {cost}")
        r = float(accuracy) * (float(cost) / self.target) ** self.exponent(cost)
        if self.v:
            if isinstance(params, bool) or not isinstance(params, int | float) or not params > 0:
                raise UserError(f"a reward with v = {self.v} needs the candidate's params (> 0), got {params!r}")
            r *= (float(params) / float(self.params_target or 1)) ** self.v
        return r

    def reward_of(self, accuracy: float, costs: Mapping[str, Any]) -> float:
        """:meth:`reward` with the cost and params read from a trial's ``costs`` (its attributes)."""
        return self.reward(accuracy, float(costs[self.cost_key]), costs.get("params"))

    def rejects(self, cost: float) -> bool:
        """True when a hard constraint forbids ``cost`` (the candidate is never trained)."""
        return self.constraint == "hard" and cost > self.target

    def values(self, accuracy: float, cost: float, params: float | None = None) -> list[float]:
        """What the Optuna study is told: ``[reward]`` or ``[accuracy, cost]``."""
        if self.mode == "reward":
            return [self.reward(accuracy, cost, params)]
        return [float(accuracy), float(cost)]

    def to_dict(self) -> dict[str, Any]:
        """Fields as a dict; ``latency_runtime``, ``latency_table``, ``v``, ``params_target``, ``step_batch`` and
        ``step_threads`` only when set (studies made before they existed resume with the same settings)."""
        d = dataclasses.asdict(self)
        for k, default in _OPTIONAL.items():
            if d[k] == default:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Objective:
        return cls(**data)
