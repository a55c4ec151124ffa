"""A search that knows its noise: pruning that respects the noise floor (effnas.nas.pruning) and
the top-k re-evaluation (effnas.nas.reevaluate)."""

from __future__ import annotations

import csv
import json
import math
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from effnas.nas import (
    BenchmarkTrainer,
    CellSpace,
    Objective,
    SearchConfig,
    SurrogateTrainer,
    get_space,
    reevaluate,
    run_search,
    write_results,
)
from effnas.nas.benchmarks import get_benchmark
from effnas.nas.pruning import (
    DEFAULT_NOISE_FLOOR,
    KEEP_AHEAD,
    KEEP_NEAR_CHANCE,
    KEEP_STARTUP,
    KEEP_WITHIN_NOISE,
    PRUNE,
    decide,
    known_floor,
)
from effnas.nas.reevaluate import ATTR, measure_name, reevaluation_seed, write_search_results
from effnas.search_spaces.common.stats import TIED, WORSE, compare, interval, noise_floor

optuna.logging.set_verbosity(optuna.logging.WARNING)
QUIET = lambda *a: None  # noqa: E731

#: Validation accuracies after epoch 1 of the 16 trials the median pruner stopped in the CIFAR-10
#: search of docs/results/cifar10/short-budget (trials.csv): near chance (10 classes).
CIFAR_EPOCH1 = (0.0944, 0.0944, 0.1096, 0.1088, 0.106, 0.114, 0.1104, 0.0948, 0.1588, 0.1052, 0.1204, 0.0964,
                0.1016, 0.0984, 0.1148, 0.1048)


# -- the pruning rule on synthetic intermediate values -------------------------------------------

@pytest.mark.parametrize("value,completed,expected", [
    (0.0944, CIFAR_EPOCH1[1:6], KEEP_NEAR_CHANCE),  # every candidate near chance: nothing is compared
    (0.02, CIFAR_EPOCH1[1:6], KEEP_NEAR_CHANCE),  # not even a trial below chance
    (0.30, (0.50, 0.52, 0.49, 0.54, 0.51), PRUNE),  # far behind median 0.51 (2.77 sd = 5.5 points)
    (0.47, (0.50, 0.52, 0.49, 0.54, 0.51), KEEP_WITHIN_NOISE),  # 4 points behind: within the noise
    (0.53, (0.50, 0.52, 0.49, 0.54, 0.51), KEEP_AHEAD),
    (0.10, (0.50, 0.52, 0.49, 0.54), KEEP_STARTUP),  # 4 completed: fewer than the start-up's 5
])
def test_the_rule_on_synthetic_values(value: float, completed: tuple[float, ...], expected: str) -> None:
    assert decide(value, completed, chance=0.1, floor=known_floor(0.02)) == expected


def test_the_thresholds_are_those_of_the_stats_rule() -> None:
    """A trial is pruned exactly when stats.compare calls it worse than the median with the floor
    as the noise of one run (1.96 x sqrt(2) x sd behind), and only above chance by the same test."""
    floor = known_floor(0.02)
    edge = 1.959964 * math.sqrt(2) * 0.02
    completed = (0.50,) * 5
    assert decide(0.50 - edge * 1.01, completed, chance=0.1, floor=floor) == PRUNE
    assert decide(0.50 - edge * 0.99, completed, chance=0.1, floor=floor) == KEEP_WITHIN_NOISE
    assert compare([0.50 - edge * 1.01], [0.50], floor=floor).verdict == WORSE
    near = (0.1 + edge * 0.99,) * 5  # the median just within noise of chance: a trial at 0 goes on
    assert decide(0.0, near, chance=0.1, floor=floor) == KEEP_NEAR_CHANCE
    assert decide(0.0, (0.1 + edge * 1.01,) * 5, chance=0.1, floor=floor) == PRUNE
    # at a floor of 0 the rule is the median rule, with the median above chance
    assert decide(0.499, completed, chance=0.1, floor=known_floor(0.0)) == PRUNE
    with pytest.raises(ValueError, match="standard deviation"):
        known_floor(-0.1)


class Scripted:
    """Trial ``i`` (trials run in order in this process) reports ``first[i]`` after epoch 1 and
    0.3 more after epoch 2."""

    def __init__(self, first: list[float]) -> None:
        self.first, self.calls = first, 0

    def __call__(self, config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        acc = self.first[self.calls]
        self.calls += 1
        for epoch in (1, 2):
            a = acc + 0.3 * (epoch - 1)
            if on_epoch is not None and on_epoch({"epoch": epoch, "val_accuracy": a}):
                return {"status": "pruned", "val_accuracy": a}
        return {"status": "completed", "val_accuracy": acc + 0.3}


def _cfg(**kw: Any) -> SearchConfig:
    """NAS-Bench-201's cells on CIFAR-10 (costs from the table, nothing to trace) with w = 0: a
    reward is the accuracy (the rule's cost factor is 1)."""
    base: dict[str, Any] = dict(space=CellSpace("nasbench201"),
                                objective=Objective(target=10.0, w=0.0, metric="latency"), strategy="random",
                                trials=10, storage=None, train={"dataset": "cifar10", "epochs": 2})
    return SearchConfig(**{**base, **kw})


def _states(cfg: SearchConfig, first: list[float]) -> list[TrialState]:
    study = run_search(cfg, Scripted(first), progress=QUIET)
    return [t.state for t in study.trials]


def test_near_chance_trials_are_not_pruned_where_plain_median_pruning_stopped_them() -> None:
    """The CIFAR-10 case: every epoch-1 accuracy within a few points of chance (10 %). The default
    floor compares nothing; a floor of 0 (the median rule) stops trials 7 and 9 on noise."""
    first = list(CIFAR_EPOCH1[:10])
    assert _cfg().noise_floor == DEFAULT_NOISE_FLOOR
    assert TrialState.PRUNED not in _states(_cfg(), first)
    pruned = _states(_cfg(noise_floor=0.0), first)
    assert [n for n, s in enumerate(pruned) if s == TrialState.PRUNED] == [7, 9]


def test_a_trial_clearly_behind_the_others_is_pruned_and_one_within_noise_is_not() -> None:
    first = [0.50, 0.52, 0.49, 0.54, 0.51, 0.30, 0.47, 0.20]
    states = _states(_cfg(trials=len(first)), first)
    assert states == [TrialState.COMPLETE] * 5 + [TrialState.PRUNED, TrialState.COMPLETE, TrialState.PRUNED]
    # a wider floor (the config key) keeps the trial at 0.30: 2.77 x 0.08 = 22 points
    states = _states(_cfg(trials=len(first), noise_floor=0.08), first)
    assert states[5] == TrialState.COMPLETE and states[7] == TrialState.PRUNED


def test_a_reward_is_compared_in_its_own_units() -> None:
    """The pruner scales chance and the floor by the trial's cost factor (cost / T)^w."""
    from effnas.nas.pruning import NoiseFloorPruner

    obj = Objective(target=1e6, w=-0.07)
    pruner = NoiseFloorPruner(objective=obj, chance=0.1)
    trial = optuna.trial.create_trial(value=0.5, user_attrs={"macs": 2e6}, intermediate_values={1: 0.5})
    assert pruner.factor(trial) == pytest.approx(2 ** -0.07) == pytest.approx(obj.reward(0.5, 2e6) / 0.5)
    assert pruner.factor(optuna.trial.create_trial(value=0.5)) == 1.0


def test_chance_is_one_over_the_classes() -> None:
    tiny = dict(space=get_space("tiny"), objective=Objective(target=1.5e6))
    assert SearchConfig(**tiny).chance == pytest.approx(0.1)  # the space's 10 classes
    assert SearchConfig(**tiny, num_classes=100).chance == pytest.approx(0.01)
    assert _cfg().chance == pytest.approx(0.1)
    assert _cfg(train={"dataset": "imagenet16-120"}).chance == pytest.approx(1 / 120)


@pytest.mark.parametrize("bad,message", [({"noise_floor": -0.01}, "noise_floor must be"),
                                         ({"noise_floor": 1.0}, "noise_floor must be"),
                                         ({"reevaluate": -1}, "reevaluate must be"),
                                         ({"reevaluate": 1.5}, "reevaluate must be")])
def test_bad_settings_are_one_line_errors(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _cfg(**bad)


# -- the re-evaluation -----------------------------------------------------------------------------

def _table_cfg(**kw: Any) -> SearchConfig:
    """NAS-Bench-201 on CIFAR-10 with its lookup trainer: real accuracies of 2-3 training seeds per cell."""
    base: dict[str, Any] = dict(space=CellSpace("nasbench201"), objective=Objective(target=10.0, metric="latency"),
                                strategy="random", trials=12, storage=None, train={"dataset": "cifar10", "seed": 0})
    return SearchConfig(**{**base, **kw})


def test_reevaluation_on_the_nasbench201_table(tmp_path) -> None:
    """The table holds 2-3 real training seeds per cell; the re-evaluation observes another one."""
    cfg = _table_cfg(reevaluate=3)
    trainer = BenchmarkTrainer("nasbench201")
    study = run_search(cfg, trainer, progress=QUIET)
    lines: list[str] = []
    r = reevaluate(cfg, study, trainer, progress=lines.append)
    assert r is not None and len(r.candidates) == 3 and len(lines) == 3 and r.seeds == (0, 1)
    done = sorted((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: -t.user_attrs["reward"])
    assert {c.trial for c in r.candidates} == {t.number for t in done[:3]} and r.search_best == done[0].number
    table = get_benchmark("nasbench201:cifar10")
    for c in r.candidates:
        search, again = c.runs
        assert (search.seed, again.seed, again.source) == (0, 1, "reevaluation")
        params = study.trials[c.trial].params
        assert again.value == table.observe(params, seed=1, draw=c.trial)  # the table's own seed
        assert again.value in table.record(params).accuracies
        assert c.reward.n == 2 and c.reward.mean == pytest.approx((search.reward + again.reward) / 2)
    means = [c.reward.mean for c in r.candidates]
    assert means == sorted(means, reverse=True)  # the winner has the highest mean, then the runners-up
    assert r.floor is not None and r.floor.df == 3
    for c in r.candidates[1:]:
        expected = compare([x.reward for x in c.runs], [x.reward for x in r.winner.runs], floor=r.floor)
        assert c.verdict == expected.verdict in (TIED, WORSE)
    summary = write_search_results(study, tmp_path, cfg.objective, r)
    assert summary["best_trial"] == r.winner.trial and summary["best_reward"] == pytest.approx(means[0])
    assert summary["reevaluation"]["line"] == r.line()
    acc = summary["reevaluation"]["noise_floor_accuracy"]  # of the accuracy: what search.noise_floor takes
    assert acc["df"] == 3 and acc["sd"] == pytest.approx(noise_floor([[x.value for x in c.runs]
                                                                       for c in r.candidates]).sd)
    assert r.line().startswith(f"re-evaluated top 3 (seeds 0, 1; reward of the accuracy, %): winner #{r.winner.trial}: "
                               f"{interval([x.reward for x in r.winner.runs]).text()}")
    assert "runners-up " + ", ".join(f"#{c.trial} {c.verdict}" for c in r.candidates[1:]) in r.line()
    rows = list(csv.DictReader(open(tmp_path / "reevaluation.csv")))
    assert len(rows) == 6 and {r_["run"] for r_ in rows} == {"search", "reevaluation"}
    assert json.loads((tmp_path / "best_arch.json").read_text())["choices"] == study.trials[r.winner.trial].params
    # off: nothing re-evaluated, nothing written
    assert reevaluate(_table_cfg(), study, trainer) is None
    assert write_search_results(study, tmp_path / "off", cfg.objective, None) == write_results(
        study, tmp_path / "off", cfg.objective)
    assert not (tmp_path / "off" / "reevaluation.csv").exists()


#: The cells whose first edge is one of these are lucky under seed 0 (:class:`Lucky`).
LUCKY = ("none", "skip_connect")


class Lucky:
    """Accuracy by cell (its first edge) and seed: the :data:`LUCKY` cells score 0.9 under seed 0
    and 0.4 under seed 1 (a lucky first run, mean 0.65); every other cell 0.7 under both."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        self.calls.append(config["seed"])
        lucky = config["model"]["edge_1_0"] in LUCKY
        acc = (0.9 if config["seed"] == 0 else 0.4) if lucky else 0.7
        return {"status": "completed", "val_accuracy": acc}


def test_the_pick_is_the_best_mean_and_a_resumed_search_does_not_train_again() -> None:
    cfg = _cfg(trials=6, prune=False, train={"dataset": "cifar10", "epochs": 1, "seed": 0}, reevaluate=6)
    trainer = Lucky()
    study = run_search(cfg, trainer, progress=QUIET)
    lucky = {t.number: t.params["edge_1_0"] in LUCKY for t in study.trials}
    assert any(lucky.values()) and not all(lucky.values())
    r = reevaluate(cfg, study, trainer)
    assert r is not None and trainer.calls == [0] * 6 + [1] * 6
    assert lucky[r.search_best] and not lucky[r.winner.trial]  # the lucky first place lost its lead
    assert r.winner.reward.mean == pytest.approx(0.7)
    assert f"(the search ranked #{r.search_best} first)" in r.line()
    assert {c.verdict for c in r.candidates[1:]} == {TIED}  # 0.65 vs 0.7 with a pooled sd of 0.2 or so: noise
    assert set(study.user_attrs[ATTR]) == {f"{n}:1" for n in lucky}
    again = reevaluate(cfg, study, trainer)
    assert again == r and len(trainer.calls) == 12  # stored in the study: nothing trained twice


def test_a_deterministic_trainer_has_no_noise_and_every_difference_counts() -> None:
    cfg = SearchConfig(space=get_space("tiny"), objective=Objective(target=1.5e6), strategy="random", trials=4,
                       prune=False, train={"epochs": 1, "seed": 3}, reevaluate=3)
    study = run_search(cfg, SurrogateTrainer(), progress=QUIET)
    r = reevaluate(cfg, study, SurrogateTrainer())
    assert r is not None and r.seeds == (3, reevaluation_seed(3)) == (3, 2)
    assert r.floor is not None and r.floor.sd == 0 and r.winner.trial == r.search_best
    assert all(c.verdict == WORSE for c in r.candidates[1:])


def test_a_failed_reevaluation_leaves_one_run() -> None:
    cfg = _table_cfg(trials=3, reevaluate=2)
    study = run_search(cfg, BenchmarkTrainer("nasbench201"), progress=QUIET)

    def fails(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        return {"status": "oom", "val_accuracy": None, "error": "out of memory"}

    r = reevaluate(cfg, study, fails)
    assert r is not None and all(c.reward.n == 1 and c.runs[1].status == "oom" for c in r.candidates)
    assert r.floor is None and r.candidates[1].verdict == "too few seeds"
    assert r.line().endswith("no noise floor")


def test_an_estimate_is_labelled_a_score() -> None:
    assert measure_name({"estimator": "proxy:synflow"}) == measure_name({"estimator": "supernet:runs/s"}) == "score"
    assert measure_name({"estimator": "train", "epochs": 2}) == measure_name({}) == "accuracy"
