"""``effnas search --cost train_step``: EfficientNetV2's training-aware search from the command line,
its reward ``ACC x (S/T)^w x (P/P0)^v`` recomputed from ``trials.csv``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import load_config
from effnas.experiments.pipeline import plan
from effnas.experiments.report.markdown import write_report
from effnas.nas import read_search

V2 = ["--space", "efficientnetv2_tiny", "--strategy", "random", "--set", "train.threads=1"]
SURROGATE = [*V2, "--trainer", "surrogate", "--quiet", "--epochs", "1"]


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(out / "trials.csv")))


def _expected(r: dict[str, str]) -> float:
    reward = float(r["accuracy"]) * (float(r["train_step_ms"]) / float(r["target"])) ** float(r["w"])
    if r["v"]:
        reward *= (float(r["params"]) / float(r["target_params"])) ** float(r["v"])
    return reward


@pytest.mark.slow
def test_a_training_aware_search_trains_candidates_and_records_step_time_and_params(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three candidates of the V2 space really trained (one epoch of digits, one thread): each row has its
    measured step time and params, T is the base network's measured step time, P0 its params, and the
    reward is ACC x (S/T)^-0.07 x (P/P0)^-0.05 (about 25 s here)."""
    out = tmp_path / "run"
    assert main(["search", *V2, "--dataset", "digits", "--cost", "train_step", "--trials", "3", "--epochs", "1",
                 "--no-prune", "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows)
    targets = {(r["target"], r["target_params"], r["v"], r["w"]) for r in rows}
    assert len(targets) == 1
    target, target_params, v, w = next(iter(targets))
    assert float(target) > 0 and (float(v), float(w)) == (-0.05, -0.07)
    assert float(target_params) == 371_230  # efficientnetv2_tiny's base network at 10 classes
    for r in rows:
        spec = ss.NetworkSpec.from_dict(json.loads(r["spec"]))
        assert int(r["params"]) == ss.cost.count_params(ss.build(spec))
        assert float(r["train_step_ms"]) > 0 and float(r["train_seconds"]) > 0 and 0 <= float(r["accuracy"]) <= 1
        assert float(r["reward"]) == pytest.approx(_expected(r))
    assert len({r["train_step_ms"] for r in rows}) == 3
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["cost"] == "train_step_ms" and pareto["reward"] == "accuracy x (train step/T)^w x (params/P0)^v"
    assert pareto["objective"]["step_batch"] == 128 and "step_threads" not in pareto["objective"]  # one: the default
    err = capsys.readouterr().err
    assert "P0 = 3.712e+05 params" in err and "reward = accuracy x (train step/T)^w x (params/P0)^v" in err
    assert all(" step " in line and " ms " in line for line in err.splitlines() if line.startswith("["))


@pytest.mark.parametrize("factor,params", [(["--v", "-0.1", "--target-params", "400k"], (4e5, -0.1)),
                                           (["--v", "0"], None)])
def test_a_given_step_target_and_parameter_factor(tmp_path: Path, factor: list[str],
                                                  params: tuple[float, float] | None) -> None:
    """--target-step-ms sets T (nothing measured for it), --v and --target-params the parameter factor (v = 0:
    none); the surrogate stands in for training, the step times (batch 8) are measured for real. The search's
    reader and the report's caption name the cost and the formula."""
    out = tmp_path / "search"
    assert main(["search", *SURROGATE, "--target-step-ms", "80", *factor, "--set", "search.train.batch_size=8",
                 "--trials", "1", "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 1
    for r in rows:
        assert float(r["target"]) == 80.0 and float(r["train_step_ms"]) > 0
        assert (float(r["target_params"]), float(r["v"])) == params if params else r["v"] == r["target_params"] == ""
        assert float(r["reward"]) == pytest.approx(_expected(r))
    assert json.loads((out / "pareto.json").read_text())["objective"]["step_batch"] == 8
    formula = "accuracy x (train step/T)^w" + (" x (params/P0)^v" if params else "")
    found = read_search(out)
    assert (found.cost, found.reward, found.target) == ("train_step_ms", formula, 80.0)
    write_report(tmp_path, config={"name": "v2"}, stages={"search": {"seconds": 1.0}})
    assert f"against train step of the trials and their Pareto front (reward = {formula})" in (
        tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_a_resumed_search_keeps_its_measured_step_target(tmp_path: Path) -> None:
    """T measured when the study was created is the study's: --resume reads it back instead of timing the
    base again (a new measurement would differ and the study would refuse the resume)."""
    out = tmp_path / "run"
    args = ["search", *SURROGATE, "--cost", "train_step", "--set", "search.train.batch_size=16", "--out", str(out)]
    assert main([*args, "--trials", "2"]) == 0
    assert main([*args, "--trials", "3", "--resume"]) == 0
    rows = _rows(out)
    assert len(rows) == 3 and len({r["target"] for r in rows}) == 1


@pytest.mark.parametrize("args,needle", [
    (["--space", "nasbench201", "--dataset", "cifar10", "--cost", "train_step"],
     "space 'nasbench201' is a benchmark table: its candidates are not networks to time"),
    ([*SURROGATE, "--target-params", "1M"], "search.target_params weights the reward by (params/P0)^v, but search.v "
                                           "is 0"),
    ([*SURROGATE, "--cost", "macs", "--target-step-ms", "5"], "--cost macs and --target-step-ms name different costs"),
    ([*SURROGATE, "--target-ms", "5", "--target-step-ms", "5"], "give --target-ms or --target-step-ms, not both"),
    ([*SURROGATE, "--v", "0.1"], "search.v must be <= 0"),
    ([*SURROGATE, "--cost", "flops"], "invalid choice: 'flops'"),
])
def test_bad_training_aware_input_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      args: list[str], needle: str) -> None:
    assert main(["search", *args, "--trials", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("effnas: error: ") and needle in err[-1], err


def test_the_plan_times_steps_at_the_candidates_batch_and_threads(tmp_path: Path) -> None:
    """The objective's step protocol is the candidates' batch (``search.train.batch_size``, else
    ``train.batch_size``) and ``train.threads`` (one when 0); v and P0 default to EfficientNetV2's -0.05 and
    the base network's parameters, and v applies to the other costs only when set."""
    cfg = load_config("demo").with_values({"search.space": "efficientnetv2_tiny", "search.cost": "train_step",
                                           "search.target": 50.0, "train.threads": 0})
    o = plan.search_plan(cfg, tmp_path).objective
    assert (o.metric, o.target, o.step_batch, o.step_threads) == ("train_step", 50.0, cfg.train.batch_size, 1)
    assert (o.v, o.params_target, o.w) == (-0.05, 371_230, -0.07)
    o = plan.search_plan(cfg.with_values({"train.threads": 2, "search.train.batch_size": 32}), tmp_path).objective
    assert (o.step_batch, o.step_threads) == (32, 2)
    macs = cfg.with_values({"search.cost": "macs", "search.target": None})
    assert plan.search_plan(macs, tmp_path).objective.v == 0.0
    o = plan.search_plan(macs.with_values({"search.v": -0.1, "search.target_params": 5e5}), tmp_path).objective
    assert (o.v, o.params_target, o.step_batch) == (-0.1, 5e5, None)
