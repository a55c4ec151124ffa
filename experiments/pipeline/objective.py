"""The search's objective, resolved from ``[search]``: the cost, T, and EfficientNetV2's parameter factor.

``search.cost = train_step`` is EfficientNetV2's training-aware reward (Tan & Le 2021, Sec. 3.3:
``A x S^w x P^v``): S is the measured training step time of a candidate
(:func:`effnas.nas.trial.step_time`, the protocol of :mod:`effnas.search_spaces.timing`), P its
parameters; ``w = -0.07`` (``search.w``) and ``v = -0.05`` (``search.v``'s default there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effnas.experiments.config.schema import ExperimentConfig
from effnas.nas import Objective
from effnas.nas.trial import step_time
from effnas.search_spaces import NetworkSpec, build
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.cost import count_params

#: EfficientNetV2's exponent of the parameters (``v = -0.05``), ``search.v``'s default with
#: ``search.cost = train_step``; 0 (no parameter factor) with the other costs, as in MnasNet and EfficientNet.
V2_PARAMS_EXPONENT = -0.05


def search_objective(cfg: ExperimentConfig, cost: str, target: float | None, base: NetworkSpec | None,
                     stored: dict[str, Any] | None) -> Objective:
    """The search's objective. ``train_step`` times a step of ``search.train.batch_size`` (else
    ``train.batch_size``) images with ``train.threads`` threads (one when 0, so that every candidate is
    timed alike); T defaults to the base network's step time, measured here, or to the ``stored``
    objective's when a resumed study has one. ``v`` defaults to -0.05 with ``train_step`` (EfficientNetV2),
    else 0, and P0 to the base network's parameters."""
    s = cfg.search
    v = s.v if s.v is not None else (V2_PARAMS_EXPONENT if cost == "train_step" else 0.0)
    if not v and s.target_params is not None:
        raise UserError(f"search.target_params weights the reward by (params/P0)^v, but search.v is {v:g}: set "
                         "search.v (--v) or drop search.target_params (--target-params)")
    if v and s.target_params is None and base is None:
        raise UserError(f"search.v = {v:g} on a benchmark table needs search.target_params, P0 (--target-params)")
    step: dict[str, Any] = {}
    if cost == "train_step":
        step = {"step_batch": s.train.batch_size or cfg.train.batch_size, "step_threads": cfg.train.threads or 1}
        if target is None and stored is not None and stored.get("metric") == "train_step":
            target = float(stored["target"])
        elif target is None:
            assert base is not None
            target = step_time(base, batch=step["step_batch"], threads=step["step_threads"])
    assert target is not None
    params_target = s.target_params if s.target_params is not None else (
        float(count_params(build(base))) if v and base is not None else None)
    return Objective(target=target, w=s.w, constraint=s.constraint, metric=cost, mode=s.mode,
                     latency_runtime=s.latency_runtime, v=v, params_target=params_target, **step,
                     latency_table=str(Path(s.latency_table).resolve()) if s.latency_table is not None else None)


__all__ = ["V2_PARAMS_EXPONENT", "search_objective"]
