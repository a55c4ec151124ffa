"""Hyperband's brackets, the multi-fidelity runs on NAS-Bench-201, and the accuracy predictor."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from scipy.stats import kendalltau

from effnas.nas.bench_fidelity import SCHEDULED, hyperband_brackets, observe_at, run_scheduled, run_strategy
from effnas.nas.bench_search import Protocol
from effnas.nas.strategies import PredictorEvolutionSampler, make_sampler
from effnas.nas.strategies.predictor import MLPEnsemble, encode, learning_curve
from effnas.search_spaces.common.errors import UserError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_hyperband_brackets_are_li_et_al_table_1() -> None:
    """Li et al. (JMLR 2018) Table 1: R = 81, eta = 3, every (n_i, r_i) of every bracket."""
    got = hyperband_brackets(1, 81, 3)
    assert got == [
        [(81, 1.0), (27, 3.0), (9, 9.0), (3, 27.0), (1, 81.0)],
        [(34, 3.0), (11, 9.0), (3, 27.0), (1, 81.0)],
        [(15, 9.0), (5, 27.0), (1, 81.0)],
        [(8, 27.0), (2, 81.0)],
        [(5, 81.0)],
    ]


def test_hyperband_brackets_of_the_12_epoch_proxy_and_scaling() -> None:
    # R = 12, eta = 3: s_max = 2, B = 36; n = ceil(3 * 9 / 3) = 9, ceil(3 * 3 / 2) = 5, ceil(3 / 1) = 3.
    b = hyperband_brackets(1, 12, 3)
    assert [[n for n, _ in br] for br in b] == [[9, 3, 1], [5, 1], [3]]
    assert [r for br in b for _, r in br] == pytest.approx([12 / 9, 4, 12, 4, 12, 12])
    # the schedule depends only on max/min: doubling both doubles every resource
    assert [[(n, 2 * r) for n, r in br] for br in hyperband_brackets(1, 81, 3)] == hyperband_brackets(2, 162, 3)
    with pytest.raises(UserError, match="eta"):
        hyperband_brackets(1, 81, 1)
    with pytest.raises(UserError, match="min <= max"):
        hyperband_brackets(9, 3, 3)


def test_modelled_curve_rises_to_the_tables_observation() -> None:
    p = Protocol("nasbench201:cifar10", 12000.0)
    table = p.table
    arch = table.optimum[0]
    seen = [observe_at(table, arch, e, epochs=12, seed=1, draw=4, noise=0.0) for e in range(1, 13)]
    assert seen[-1] == table.observe(arch, seed=1, draw=4)
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False)) and seen[0] > 0.1
    noisy = observe_at(table, arch, 1, epochs=12, seed=1, draw=4, noise=0.05)
    assert noisy != seen[0] and observe_at(table, arch, 12, epochs=12, seed=1, draw=4, noise=0.05) == seen[-1]


@pytest.mark.parametrize("strategy", list(SCHEDULED))
def test_scheduled_strategies_stay_within_budget_and_train_to_the_full_resource(strategy: str) -> None:
    p = Protocol("nasbench201:cifar10", 3000.0, eta=3)
    r = run_scheduled(p, strategy, run=0, seed=3)
    assert r.seconds and r.seconds[-1] <= 3000.0 and r.seconds == sorted(r.seconds)
    assert 0.1 < r.best_accuracy <= p.table.optimum[1].mean_accuracy
    assert r == run_scheduled(p, strategy, run=0, seed=3)  # seeded: reproducible


def test_a_promoted_trial_is_charged_only_its_new_epochs() -> None:
    from effnas.nas.bench_fidelity import _Tracker  # lazy: the tracker is internal to the loop it tests

    p = Protocol("nasbench201:cifar10", 6000.0)
    t = _Tracker(p, seed=0)
    arch = p.table.optimum[0]
    full = p.table.record(arch).train_seconds
    t.train(arch, 0, 0, 4)
    assert t.spent == pytest.approx(full * 4 / 200) and t.seconds == []  # not yet at the full resource
    t.train(arch, 0, 4, 12)
    assert t.spent == pytest.approx(full * 12 / 200) and t.seconds == [t.spent]
    assert t.train(arch, 1, 0, 12) is not None and t.train(arch, 2, 0, 12) is not None
    assert t.spent <= 6000.0 and len(t.seconds) == 3


def test_scheduled_strategies_refuse_pareto_and_bad_resources() -> None:
    from effnas.nas import Objective  # lazy: only this test builds a two-objective protocol

    pareto = Protocol("nasbench201:cifar10", 6000.0, objective=Objective(target=10.0, metric="latency", mode="pareto"))
    with pytest.raises(UserError, match="one objective"):
        run_scheduled(pareto, "hyperband", run=0, seed=0)
    with pytest.raises(UserError, match="min-epochs"):
        run_scheduled(Protocol("nasbench201:cifar10", 6000.0, min_epochs=13), "asha", run=0, seed=0)


def _synthetic(n: int, seed: int) -> tuple[list[dict[str, str]], np.ndarray, dict[str, tuple[str, ...]]]:
    """A table with known structure: accuracy is additive in the per-edge operation (plus a small noise)."""
    rng = np.random.default_rng(seed)
    choices = {f"e{i}": ("a", "b", "c", "d") for i in range(5)}
    effect = {k: dict(zip(v, rng.normal(size=len(v)), strict=True)) for k, v in choices.items()}
    archs = [{k: str(rng.choice(v)) for k, v in choices.items()} for _ in range(n)]
    acc = np.array([sum(effect[k][a[k]] for k in choices) for a in archs]) + rng.normal(scale=0.1, size=n)
    return archs, acc, choices


def test_predictor_ranks_a_synthetic_table_far_better_than_chance() -> None:
    archs, acc, choices = _synthetic(300, seed=0)
    x = encode(archs, choices)
    model = MLPEnsemble(seed=0).fit(x[:100], acc[:100])
    tau = kendalltau(model.predict(x[100:]), acc[100:]).statistic
    rand = kendalltau(np.random.default_rng(1).permutation(200), acc[100:]).statistic
    assert tau > 0.6 and abs(rand) < 0.15


def test_learning_curve_rises_with_training_samples_and_has_intervals() -> None:
    archs, acc, choices = _synthetic(400, seed=2)
    rows = learning_curve(archs, acc, choices, sizes=[5, 150], test=100, repeats=2, resamples=100, seed=0)
    assert [r["train"] for r in rows] == [5, 150]
    assert rows[1]["kendall_tau"] > rows[0]["kendall_tau"] + 0.1
    for r in rows:
        assert r["ci_low"] <= r["kendall_tau"] <= r["ci_high"]
    assert rows[1]["ci_low"] > 0  # far from a random ranking
    with pytest.raises(UserError, match="test architectures"):
        learning_curve(archs, acc, choices, sizes=[350], test=100)


def test_learning_curve_compares_with_a_baseline_on_the_same_held_out_sets() -> None:
    """A baseline that is the truth itself beats the predictor; a random one loses to it once it has learnt;
    training on noisy targets and testing on the truth is what ``truth`` does."""
    archs, acc, choices = _synthetic(400, seed=4)
    noisy = acc + np.random.default_rng(5).normal(scale=0.5, size=len(acc))
    rows = learning_curve(archs, noisy, choices, sizes=[150], test=100, repeats=2, resamples=100, seed=0, truth=acc,
                          baseline=acc)
    assert rows[0]["baseline_tau"] == pytest.approx(1.0) and rows[0]["verdict"] == "worse"
    assert rows[0]["diff"] == pytest.approx(rows[0]["kendall_tau"] - 1.0)
    rand = np.random.default_rng(6).permutation(len(acc)).astype(float)
    rows = learning_curve(archs, noisy, choices, sizes=[150], test=100, repeats=2, resamples=100, seed=0, truth=acc,
                          baseline=rand)
    assert abs(rows[0]["baseline_tau"]) < 0.15 and rows[0]["verdict"] == "better" and rows[0]["diff_low"] > 0
    with pytest.raises(UserError, match="one value per architecture"):
        learning_curve(archs, noisy, choices, sizes=[150], test=100, baseline=rand[:10])


@pytest.mark.slow  # 30 predictor fits per run: about 10 s on a loaded core
def test_pred_evolution_picks_the_best_predicted_child() -> None:
    """On the synthetic table, evolution's children through the predictor beat plain REA's."""
    archs, acc, choices = _synthetic(1, seed=3)
    rng = np.random.default_rng(3)
    effect = {k: dict(zip(v, rng.normal(size=len(v)), strict=True)) for k, v in choices.items()}

    def objective(trial: optuna.Trial) -> float:
        return sum(effect[k][trial.suggest_categorical(k, list(v))] for k, v in choices.items())

    def children(sampler: optuna.samplers.BaseSampler) -> float:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=30)
        return float(np.mean([t.value for t in study.trials[10:]]))

    plain = [children(make_sampler("evolution", seed=s, population_size=10, tournament_size=3)) for s in range(3)]
    guided = [children(PredictorEvolutionSampler(candidates=10, members=2, steps=40, population_size=10,
                                                 tournament_size=3, seed=s)) for s in range(3)]
    assert np.mean(guided) > np.mean(plain)
    assert isinstance(make_sampler("pred-evolution", seed=0, candidates=4), PredictorEvolutionSampler)
    with pytest.raises(UserError, match="candidates"):
        PredictorEvolutionSampler(candidates=0)


def test_pred_evolution_runs_on_the_table_through_bench_search() -> None:
    p = Protocol("nasbench201:cifar10", 1200.0, population_size=5, tournament_size=2, candidates=3)
    r = run_strategy(p, "pred-evolution", run=0, seed=0)
    assert len(r.seconds) > p.population_size and r.seconds[-1] <= 1200.0
    assert 0.1 < r.best_accuracy <= p.table.optimum[1].mean_accuracy


def test_bench_search_runs_multi_fidelity_on_modelled_curves_only_when_asked(tmp_path, capsys) -> None:
    """The offline NAS-Bench-201 copy records no per-epoch accuracies: hyperband/asha run on a modelled
    curve only with --modelled-curves, and the flag alone (no such strategy) is refused, not ignored."""
    from effnas.experiments.cli.main import main

    args = ["bench-search", "--benchmark", "nasbench201:cifar10", "--runs", "1", "--budget-seconds", "1500"]
    assert main([*args, "--strategies", "hyperband", "--out", str(tmp_path / "a")]) == 2
    assert "--modelled-curves" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main([*args, "--strategies", "random", "--modelled-curves", "--out", str(tmp_path / "b")]) == 2
    assert "applies to hyperband and asha only" in capsys.readouterr().err
    assert main([*args, "--strategies", "hyperband", "--modelled-curves", "--out", str(tmp_path / "c"), "-q"]) == 0
    assert (tmp_path / "c" / "runs.jsonl").read_text().count("hyperband") >= 1
