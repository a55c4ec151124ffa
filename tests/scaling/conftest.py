from __future__ import annotations

import math
from typing import Any

import pytest

from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.counts import counts


class ClosedFormEvaluator:
    """A TEST evaluator, not a trainer: no data, no training. "Accuracy" is a closed-form,
    deterministic function of the spec's MACs and params (a saturating power law with a small
    seed-dependent offset), so that orchestration (grids, families, resumption, curve fits) can be
    tested in milliseconds, and so that a wrong spec (wrong MACs) changes the result. It counts
    its calls so that resumption tests can check that nothing finished is trained again."""

    def __init__(self, *, fail_on: set[str] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_on = fail_on or set()

    def __call__(self, config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        self.calls.append(config)
        if any(k in config["out_dir"] for k in self.fail_on):  # a training outcome, e.g. out of memory
            return {"status": "failed", "error": "RuntimeError: injected failure (out of memory)"}
        spec = NetworkSpec.from_dict(config["model"])
        c = counts(spec, config["resolution"])
        error = 0.6 * (c.macs / 1e6) ** -0.35 + 0.04 + 0.004 * math.sin(3.0 * config["seed"] + 1.0)
        acc = max(0.0, min(1.0, 1.0 - error))
        return {"status": "completed", "val_accuracy": acc, "test_accuracy": acc - 0.01, "params": c.params,
                "macs": c.macs, "resolution": config["resolution"], "num_classes": spec.num_classes,
                "train_seconds": 0.0, "images_per_second": 0.0}


@pytest.fixture
def evaluator() -> ClosedFormEvaluator:
    return ClosedFormEvaluator()


@pytest.fixture
def make_evaluator() -> type[ClosedFormEvaluator]:
    return ClosedFormEvaluator
