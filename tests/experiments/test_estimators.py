"""Estimators keep their data and reference scores per process: a Ray task's fresh copy reuses them."""

from __future__ import annotations

import pickle

import pytest

import effnas.experiments.estimators.proxy as est
from effnas.nas.space import get_space


def test_a_pickled_proxy_trainer_reuses_the_processes_reference_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    space = get_space("tiny")
    trainer = est.ProxyTrainer(space, "synflow", reference=4)
    conf = {"dataset": "digits", "batch_size": 8, "seed": 0, "val_fraction": 0.1, "data_fraction": 1.0,
            "resolution": 32, "model": space.to_spec({}, num_classes=10, resolution=32).to_dict()}
    est._CACHE.clear()
    calls: list[str] = []
    real = est.score
    monkeypatch.setattr(est, "score", lambda *a: calls.append("s") or real(*a))
    first = trainer(conf)
    assert len(calls) == 4 + 1  # the reference sample, then the candidate
    again = pickle.loads(pickle.dumps(trainer))(conf)  # as a Ray task: a fresh unpickled trainer
    assert len(calls) == 4 + 2, "the reference is scored once per process"
    assert again["proxy_score"] == first["proxy_score"] and again["val_accuracy"] == first["val_accuracy"]
    other = est.ProxyTrainer(space, "synflow", reference=5)(conf)  # another reference size: its own sample
    assert len(calls) == 6 + 5 + 1 and other["proxy_score"] == first["proxy_score"]
