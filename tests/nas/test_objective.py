from __future__ import annotations

import math

import pytest

from effnas.nas import Objective


def test_soft_reward_is_mnasnet_eq2() -> None:
    o = Objective(target=400e6, w=-0.07)
    for acc, macs in ((0.75, 200e6), (0.8, 400e6), (0.7, 900e6)):
        assert math.isclose(o.reward(acc, macs), acc * (macs / 400e6) ** -0.07)


def test_hard_constraint_rejects_over_target() -> None:
    o = Objective(target=100.0, constraint="hard")
    assert (o.alpha, o.beta) == (0.0, -1.0)
    assert o.reward(0.9, 50.0) == 0.9 and math.isclose(o.reward(0.9, 200.0), 0.45)
    assert o.rejects(101.0) and not o.rejects(100.0)
    assert not Objective(target=100.0).rejects(1e9)


def test_pareto_values() -> None:
    o = Objective(target=10.0, mode="pareto", metric="latency")
    assert o.directions == ["maximize", "minimize"] and o.values(0.5, 3.0) == [0.5, 3.0]
    assert o.cost_key == "latency_ms"


@pytest.mark.parametrize("kwargs,needle", [
    ({"target": 0}, "target T must be > 0"), ({"target": -5.0}, "target T must be > 0"),
    ({"target": 1.0, "constraint": "medium"}, "unknown constraint 'medium'"),
    ({"target": 1.0, "mode": "both"}, "unknown objective 'both'"),
    ({"target": 1.0, "w": float("nan")}, "w must be a finite number"),
    ({"target": 1.0, "metric": "latency", "latency_runtime": "tflite"}, "unknown latency runtime 'tflite'"),
    ({"target": 1.0, "latency_runtime": "onnxruntime"}, "times a latency cost: use metric 'latency'"),
])
def test_bad_objectives(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Objective(**kwargs)


def test_latency_runtime_is_in_the_settings_only_when_not_torch() -> None:
    """Studies created before ``latency_runtime`` existed resume with equal settings."""
    assert "latency_runtime" not in Objective(target=1.0, metric="latency").to_dict()
    o = Objective(target=1.0, metric="latency", latency_runtime="onnxruntime")
    assert Objective.from_dict(o.to_dict()) == o and o.to_dict()["latency_runtime"] == "onnxruntime"
