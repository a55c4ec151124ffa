from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--space", "tiny", "--trainer", "surrogate", "--target-macs", "1.5M", "--quiet"]


def _rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(out / "trials.csv")))


def test_search_writes_results_and_export_rebuilds_a_trial(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["search", *TINY, "--strategy", "evolution", "--population", "2", "--trials", "3", "--epochs", "2",
                 "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["trials"] == 3
    for name in ("trials.csv", "pareto.json", "pareto.png", "best_spec.json", "study.db"):
        assert (out / name).is_file()
    rows = _rows(out)
    assert [r["strategy"] for r in rows] == ["evolution"] * 3
    for r in rows:
        if r["reward"]:
            expected = float(r["accuracy"]) * (float(r["macs"]) / float(r["target"])) ** float(r["w"])
            assert float(r["reward"]) == pytest.approx(expected) and float(r["target"]) == 1.5e6
            assert float(r["w"]) == -0.07
    assert main(["export", "--storage", f"sqlite:///{out / 'study.db'}", "--trial", "1", "-o",
                 str(tmp_path / "t1.json")]) == 0
    spec = ss.NetworkSpec.load(tmp_path / "t1.json")
    assert " ".join(ss.encode_block(s) for s in spec.stages) == rows[1]["blocks"]
    assert ss.cost.macs(spec) == int(rows[1]["macs"])
    ss.NetworkSpec.load(out / "best_spec.json")


def test_onnxruntime_latency_is_the_cost_of_a_latency_search(tmp_path) -> None:
    """Same seed, same candidates: one search timed by eager torch, one by onnxruntime on the exported
    network. trials.csv records each runtime's batch-1 latencies, and the rewards use them."""
    rows = {}
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / runtime
        assert main(["search", "--space", "tiny", "--trainer", "surrogate", "--quiet", "--target-ms", "0.5",
                     "--latency-runtime", runtime, "--strategy", "random", "--trials", "3", "--epochs", "1",
                     "--out", str(out)]) == 0
        rows[runtime] = _rows(out)
    torch_rows, ort_rows = rows["torch"], rows["onnxruntime"]
    assert [r["blocks"] for r in ort_rows] == [r["blocks"] for r in torch_rows]
    assert {r["latency_runtime"] for r in ort_rows} == {"onnxruntime"} and {r["latency_runtime"] for r in torch_rows} \
        == {"torch"}
    ort, eager = [float(r["latency_ms"]) for r in ort_rows], [float(r["latency_ms"]) for r in torch_rows]
    assert all(a > 0 and a != b for a, b in zip(ort, eager, strict=True))
    assert sorted(ort)[1] < sorted(eager)[1]  # one ORT session call vs eager per-module dispatch on a tiny net
    for r in ort_rows:
        expected = float(r["accuracy"]) * (float(r["latency_ms"]) / 0.5) ** float(r["w"])
        assert float(r["reward"]) == pytest.approx(expected)


def test_a_latency_table_predicts_the_cost_and_the_winner_is_measured(tmp_path, capsys) -> None:
    """search.latency_table: each trial's latency_ms is the table's prediction (the ops it lacked were timed and
    saved into the file), the rewards use it, and the winner is measured afterwards (latency_check.json)."""
    from effnas.nas.space import get_space
    from effnas.search_spaces.latency_table import LatencyTable

    space = get_space("tiny")
    base = space.to_spec({})
    path = LatencyTable.build([base]).save(tmp_path / "lut.json")
    size = len(json.loads(path.read_text())["ops"])
    out = tmp_path / "run"
    assert main(["search", "--space", "tiny", "--trainer", "surrogate", "--target-ms", "0.5", "--latency-table",
                 str(path), "--strategy", "random", "--trials", "3", "--epochs", "1", "--out", str(out)]) == 0
    rows = _rows(out)
    table = LatencyTable.load(path)
    assert len(table.entries) > size  # the random candidates' new ops were timed once and kept
    for r in rows:
        spec = ss.NetworkSpec.from_json(r["spec"])
        assert r["latency_runtime"] == "table" and float(r["latency_ms"]) == pytest.approx(table.predict(spec))
        assert float(r["reward"]) == pytest.approx(float(r["accuracy"]) * (float(r["latency_ms"]) / 0.5) ** -0.07)
    check = json.loads((out / "latency_check.json").read_text())
    best = max(rows, key=lambda r: float(r["reward"]))
    assert check["trial"] == int(best["number"]) and check["measured_ms"] > 0
    assert check["predicted_ms"] == pytest.approx(float(best["latency_ms"]))
    assert check["error"] == pytest.approx(check["predicted_ms"] / check["measured_ms"] - 1)
    assert f"winner #{check['trial']}: the latency table predicted" in capsys.readouterr().err


def test_asha_stops_candidates_at_its_rungs(tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["search", *TINY, "--strategy", "random", "--pruner", "asha", "--trials", "12", "--epochs", "9",
                 "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 12 and {"pruned", "completed"} <= {r["status"] for r in rows}


@pytest.mark.parametrize("args,needle", [
    (["--latency-table", "NOFILE", "--target-ms", "1"], "no latency table at"),
    (["--latency-table", "NOFILE", "--target-ms", "1", "--workers", "2"], "run the search with --workers 1"),
    (["--latency-table", "NOFILE"], "search.latency_table predicts a torch latency cost, but search.cost is 'macs'"),
    (["--pruner", "asha", "--no-prune"], "search.pruner = 'asha' stops candidates early, but search.prune is off"),
    (["--pruner", "hyperband", "--noise-floor", "0.02"], "search.noise_floor acts on the noise_floor pruner"),
    (["--pruner", "bohb"], "invalid choice: 'bohb'"),
    (["--strategy", "hillclimb"], "unknown strategy 'hillclimb'"),
    (["--space", "nasnet"], "unknown search space 'nasnet'"),
    (["--space", "EMPTY"], "choice list 'kernel' of space 'mine' is empty"),
    (["--target-macs", "0"], "search.target must be a finite number > 0"),
    (["--target-macs=-3M"], "search.target must be a finite number > 0"),
    (["--target-ms", "5", "--target-macs", "3M"], "not both"),
    (["--set", "search.train.epochs=0"], "search.train.epochs must be"),
    (["--storage", "sqlite:////no/such/dir/x.db"], "cannot open storage 'sqlite:////no/such/dir/x.db'"),
    (["--storage", "mysql+nodriver://u@h/db"], "cannot open storage"),
    (["--constraint", "firm"], "search.constraint must be one of soft, hard, got 'firm'"),
    (["--mode", "pareto", "--strategy", "rl"], "strategy 'rl' needs a single objective"),
    (["--trials", "0"], "search.trials is 0"),
    (["--latency-runtime", "onnxruntime"], "search.latency_runtime = 'onnxruntime' times a latency cost, but "
                                           "search.cost is 'macs'"),
    (["--latency-runtime", "tvm"], "invalid choice: 'tvm'"),
    (["--resume"], "--resume: no study 'search'"),
])
def test_bad_input_is_a_one_line_error(tmp_path, capsys: pytest.CaptureFixture[str], args: list[str],
                                       needle: str) -> None:
    space = tmp_path / "empty.json"
    space.write_text(json.dumps({"name": "mine", "stages": ["r1_k3_s11_e1_i32_o16"], "choices": {"kernel": []}}))
    args = [str(space) if a == "EMPTY" else str(tmp_path / "none.json") if a == "NOFILE" else a for a in args]
    tiny = [a for a in TINY if a not in ("--target-macs", "1.5M")] if "--target-ms" in args else TINY
    assert main(["search", *tiny, "--trials", "1", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("effnas: error: ") and needle in err[-1], err


def _finished_in_db(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow  # over 10 s: the default suite stays under 10 min (make test-slow runs it)
def test_sigkill_then_resume_keeps_every_finished_trial(tmp_path) -> None:
    """Must show: SIGKILL mid-study, then --resume: finished trials kept, requested number done, none twice."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "effnas", "search", *TINY, "--strategy", "tpe", "--trials", "8",
           "--epochs", "2", "--no-prune", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _finished_in_db(out / "study.db") < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(out / "study.db") as con:
        before = dict(con.execute("select t.number, v.value from trials t join trial_values v using (trial_id) "
                                  "where t.state = 'COMPLETE'").fetchall())
    assert 3 <= len(before) < 8
    subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    rows = _rows(out)
    numbers = [int(r["number"]) for r in rows]
    assert len(numbers) == len(set(numbers))
    counted = [r for r in rows if r["status"] != "interrupted"]
    assert len(counted) == 8 and all(r["state"] == "COMPLETE" for r in counted)
    assert all(r["state"] == "FAIL" for r in rows if r["status"] == "interrupted")
    after = {int(r["number"]): float(r["reward"]) for r in counted}
    assert all(after[n] == pytest.approx(v) for n, v in before.items())


def test_search_with_the_real_trainer_on_embedded_data(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two candidates really trained (one short epoch on a fifth of digits): the wiring, not accuracy.
    A trained candidate's value is its accuracy, and everything calls it so."""
    pytest.importorskip("effnas.experiments.train.loop")
    out = tmp_path / "run"
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--strategy", "tpe", "--trials", "2",
                 "--epochs", "1", "--data-fraction", "0.2", "--target-macs", "1.5M",
                 "--out", str(out)]) == 0
    rows = _rows(out)
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    assert "score" not in rows[0] and "proxy_score" not in rows[0]
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0 and float(r["train_seconds"]) > 0
        assert float(r["reward"]) == pytest.approx(float(r["accuracy"]) * (float(r["macs"]) / 1.5e6) ** -0.07)
    pareto = json.loads((out / "pareto.json").read_text())
    assert (pareto["measure"], pareto["label"], pareto["reward"]) == (
        "accuracy", "validation accuracy after 1 epoch on 20 % of the training split", "accuracy x (MACs/T)^w")
    err = capsys.readouterr().err.splitlines()
    assert any(line.endswith("2 trials; reward = accuracy x (MACs/T)^w") for line in err), err
    lines = [line for line in err if line.startswith("[")]
    assert len(lines) == 2 and all(re.search(r"  val \d+\.\d %  ", line) for line in lines), lines


def test_too_many_failed_trials_exit_1_with_their_errors(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """A learning rate of 1e9 makes the real trainer diverge: past --max-failed-share the search stops
    with exit 1, naming the error, and trials.csv lists the failed trial."""
    out = tmp_path / "run"
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--trials", "3", "--epochs", "1",
                 "--data-fraction", "0.05", "--target-macs", "1.5M", "--set", "train.lr=1e9",
                 "--set", "search.max_failed_share=0.3",
                 "--quiet", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("effnas: error: search stopped: 1 of 3 trials failed (max_failed_share 0.3): trial 0 diverged: "
                   "loss or accuracy not finite at epoch 1")
    rows = _rows(out)
    assert [(r["state"], r["status"]) for r in rows] == [("FAIL", "diverged")]


def test_a_bad_trainer_key_is_refused_before_any_trial(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--trials", "5", "--set", "train.lrr=0.1",
                 "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("effnas: error: unknown key 'train.lrr' in --set: did you mean 'train.lr'?")
    assert not (tmp_path / "run" / "study.db").exists()


# -- zero-cost proxies as the estimator (effnas.experiments.estimators.proxy) ---------------------------------


def _proxy_scores(out: Path) -> list[float]:
    import optuna

    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    return [t.user_attrs["proxy_score"] for t in study.trials]


def test_a_proxy_estimator_searches_the_tiny_space(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """A proxy's value is a score, never an accuracy: trials.csv, pareto.json and the console say so."""
    out = tmp_path / "run"
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--estimator", "proxy:synflow", "--strategy",
                 "random", "--trials", "3", "--target-macs", "1.5M", "--set", "search.train.batch_size=16",
                 "--json", "--out", str(out)]) == 0
    rows = _rows(out)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert "accuracy" not in rows[0] and "test_accuracy" not in rows[0]
    ranks, scores = [float(r["score"]) for r in rows], _proxy_scores(out)
    assert [float(r["proxy_score"]) for r in rows] == scores  # the raw value beside its rank
    assert all(0 < a < 1 for a in ranks) and all(s > 0 for s in scores)
    # the score is the proxy value's rank: it keeps the proxy's order
    assert [a for _, a in sorted(zip(scores, ranks, strict=True))] == sorted(ranks)
    for r in rows:
        assert float(r["reward"]) == pytest.approx(float(r["score"]) * (float(r["macs"]) / 1.5e6) ** -0.07)
    pareto = json.loads((out / "pareto.json").read_text())
    assert (pareto["measure"], pareto["label"], pareto["reward"]) == (
        "score", "synflow proxy score (rank-normalised)", "score x (MACs/T)^w")
    assert all("score" in f and "accuracy" not in f for f in pareto["front"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert "best_score" in summary and "best_accuracy" not in summary
    err = captured.err.splitlines()
    assert any(line.endswith("3 trials; reward = score x (MACs/T)^w") for line in err), err
    lines = [line for line in err if line.startswith("[")]
    assert len(lines) == 3 and all(" score 0." in line and " val " not in line and "acc" not in line
                                   for line in lines), lines


def test_a_proxy_estimator_searches_nasbench201_on_real_images(tmp_path, cifar10_small: Path) -> None:
    out = tmp_path / "nb"
    assert main(["search", "--space", "nasbench201", "--dataset", f"cifar10:{cifar10_small}", "--estimator",
                 "proxy:synflow", "--strategy", "random", "--trials", "2", "--set", "search.train.batch_size=16",
                 "--quiet", "--out", str(out)]) == 0
    rows = _rows(out)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 2
    assert all(r["blocks"].startswith("|") and 0 < float(r["score"]) < 1 for r in rows)
    assert all(s > 0 for s in _proxy_scores(out))


@pytest.mark.parametrize("args,needle", [
    (["--space", "tiny", "--estimator", "proxy:synflo"], "unknown zero-cost proxy 'synflo'"),
    (["--space", "tiny", "--estimator", "zero"], "search.estimator must be train, proxy:NAME"),
    (["--space", "tiny", "--trainer", "surrogate", "--estimator", "proxy:snip"], "drop search.trainer = 'surrogate'"),
    (["--space", "nasbench201", "--dataset", "cifar10", "--estimator", "proxy:synflow"], "give --dataset cifar10:PATH"),
    (["--space", "nasbench201", "--dataset", "cifar10", "--prefilter", "proxy:synflow"], "give --dataset cifar10:PATH"),
    (["--space", "tiny", "--prefilter", "train"], "search.prefilter must be proxy:NAME"),
    (["--space", "tiny", "--prefilter", "proxy:snip", "--estimator", "proxy:snip"], "needs search.estimator = train"),
    (["--space", "tiny", "--prefilter", "proxy:snip", "--keep", "0"], "search.prefilter_keep must be in [0.02, 1]"),
])
def test_bad_estimators_are_one_line_errors(tmp_path, capsys: pytest.CaptureFixture[str], args: list[str],
                                            needle: str) -> None:
    assert main(["search", "--trials", "1", "--quiet", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("effnas: error: ") and needle in err[-1], err


def test_a_proxy_prefilter_trains_only_the_best_scored_candidates(tmp_path) -> None:
    import optuna

    out = tmp_path / "pf"
    assert main(["search", "--space", "tiny", "--dataset", "digits", "--trainer", "surrogate", "--prefilter",
                 "proxy:synflow", "--keep", "0.5", "--strategy", "random", "--trials", "3", "--target-macs", "1.5M",
                 "--reevaluate", "3", "--set", "search.train.batch_size=16", "--quiet", "--out", str(out)]) == 0
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    trained = [t for t in study.trials if t.user_attrs["status"] == "completed"]
    filtered = [t for t in study.trials if t.user_attrs["status"] == "filtered"]
    assert len(trained) == 3 and filtered, "a random sample of 3+ candidates keeps about half"
    assert all(t.state.name == "PRUNED" and "accuracy" not in t.user_attrs for t in filtered)
    assert min(t.user_attrs["proxy_score"] for t in trained) > max(t.user_attrs["proxy_score"] for t in filtered)
    # the re-evaluation trains the candidates that passed the filter without filtering them again
    again = list(csv.DictReader(open(out / "reevaluation.csv")))
    assert len(again) == 6 and {r["status"] for r in again} == {"completed"}


@pytest.mark.slow
def test_a_prefilter_in_front_of_the_nasbench201_table(tmp_path, cifar10_small: Path) -> None:
    out = tmp_path / "pf201"
    assert main(["search", "--space", "nasbench201", "--dataset", f"cifar10:{cifar10_small}", "--prefilter",
                 "proxy:synflow", "--keep", "0.5", "--strategy", "random", "--trials", "2", "--set",
                 "search.train.batch_size=16", "--quiet", "--out", str(out)]) == 0
    rows = _rows(out)
    assert sum(r["state"] == "COMPLETE" for r in rows) == 2
    assert all(r["status"] in ("completed", "filtered") for r in rows)


def test_the_demo_search_scores_candidates_with_its_proxy(tmp_path) -> None:
    """The shipped demo's search (experiments/config/presets/demo.toml: proxy:jacob_cov, TPE), shortened."""
    import optuna

    out = tmp_path / "demo-search"
    assert main(["search", "--config", "demo", "--trials", "4", "--set", "run.workers=1", "--set", "train.threads=1",
                 "--quiet", "--out", str(out)]) == 0
    study = optuna.load_study(study_name="demo-search", storage=f"sqlite:///{out / 'study.db'}")
    assert study.user_attrs["settings"]["train"]["estimator"] == "proxy:jacob_cov"
    trials = [t for t in study.trials if t.user_attrs["status"] == "completed"]
    assert len(trials) == 4 and all("proxy_score" in t.user_attrs for t in trials)
    for t in trials:  # the score is the rank among 16 references, (k + 0.5) / 17 in halves: not trained
        halves = t.user_attrs["score"] * 17 * 2
        assert halves == pytest.approx(round(halves)) and 0 < t.user_attrs["score"] < 1
        assert "accuracy" not in t.user_attrs
    assert study.metric_names == ["reward"]
    assert json.loads((out / "pareto.json").read_text())["label"] == "jacob_cov proxy score (rank-normalised)"
    assert (out / "best_spec.json").is_file()
