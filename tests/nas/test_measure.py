"""What a search measured, read back: a search's files and its study agree, and a study written
before scores were named (a proxy's rank stored as ``accuracy``) is read as the score it is."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from effnas.nas import (
    Objective,
    SearchConfig,
    SurrogateTrainer,
    get_space,
    read_search,
    read_study,
    run_search,
    trial_rows,
    write_results,
)
from effnas.search_spaces.common.errors import UserError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_read_search_and_read_study_agree(tmp_path: Path) -> None:
    cfg = SearchConfig(get_space("tiny"), Objective(target=1.5e6), strategy="random", trials=5, prune=False,
                       train={"epochs": 3, "data_fraction": 0.5})
    study = run_search(cfg, SurrogateTrainer(seed=2), progress=lambda *a: None)
    write_results(study, tmp_path, cfg.objective)
    files, stored = read_search(tmp_path), read_study(study)
    for s in (files, stored):
        assert (s.measure, s.label, s.reward, s.cost, s.target) == (
            "accuracy", "validation accuracy after 3 epochs on 50 % of the training split", "accuracy x (MACs/T)^w",
            "macs", 1.5e6)
    assert files.front == stored.front == tuple(r["number"] for r in json.loads(
        (tmp_path / "pareto.json").read_text())["front"])
    assert files.completed["accuracy"].tolist() == pytest.approx(stored.completed["accuracy"].tolist())
    assert files.completed["accuracy"].tolist() == pytest.approx([t.user_attrs["accuracy"] for t in study.trials])
    assert read_search(tmp_path.parent / tmp_path.name).path == tmp_path
    with pytest.raises(UserError, match="no trials.csv in"):
        read_search(tmp_path / "nothing")


def test_an_older_proxy_study_reads_as_scores(tmp_path: Path) -> None:
    """Before scores were named, a proxy search stored each trial's rank as ``accuracy``: the
    table, the front and the results written from it call it ``score``."""
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("settings", {"objective": {"target": 1e6, "w": -0.07},
                                     "train": {"estimator": "proxy:jacob_cov", "dataset": "shapes"}})
    dist = {"x": CategoricalDistribution([0, 1, 2])}
    for i, (rank, macs) in enumerate([(0.5, 8e5), (0.9, 1.2e6), (0.3, 1.5e6)]):
        reward = rank * (macs / 1e6) ** -0.07
        study.add_trial(create_trial(params={"x": i}, distributions=dist, value=reward, state=TrialState.COMPLETE,
                                     user_attrs={"status": "completed", "accuracy": rank, "reward": reward,
                                                 "macs": macs, "proxy_score": 10.0 * rank,
                                                 "spec": json.dumps({"x": i}), "blocks": f"cell{i}"}))
    rows = trial_rows(study)
    assert [r["score"] for r in rows] == [0.5, 0.9, 0.3] and all("accuracy" not in r for r in rows)
    s = read_study(study)
    assert s.measure == "score" and s.label == "jacob_cov proxy score (rank-normalised)" and s.front == (0, 1)
    summary = write_results(study, tmp_path, Objective(target=1e6))
    assert summary["best_score"] == 0.9 and "best_accuracy" not in summary
    header = (tmp_path / "trials.csv").read_text().splitlines()[0].split(",")
    assert "score" in header and "proxy_score" in header and "accuracy" not in header and "test_accuracy" not in header
