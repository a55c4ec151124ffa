"""The search under Ray Tune: a local loopback Ray (default suite) and a 2-node cluster (slow)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from experiments.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--space", "tiny", "--trainer", "surrogate", "--target-macs", "1.5M", "--quiet"]


def test_workers_2_runs_through_ray_and_completes(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import ray

    out = tmp_path / "run"
    assert main(["search", *TINY, "--strategy", "rl", "--trials", "4", "--epochs", "2", "--workers", "2",
                 "--cpus-per-trial", "1", "--out", str(out)]) == 0
    assert not ray.is_initialized()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["trials"] == 4
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state.is_finished() for t in trials)
    for t in trials:  # the same attributes as in-process trials, plus where and how it ran
        a = t.user_attrs
        assert a["strategy"] == "rl" and a["node"] and a["threads"] == 1
        assert {"blocks", "spec", "macs", "params", "status"} <= set(a)
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == pytest.approx(a["accuracy"] * (a["macs"] / 1.5e6) ** -0.07)
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 4


@pytest.mark.slow
def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path) -> None:
    """A head and a second raylet on loopback (ray.cluster_utils.Cluster), one CPU each; the search
    joins with --ray-address, two trials at a time of one CPU each, so both nodes get trials."""
    from ray.cluster_utils import Cluster

    from experiments.ray_backend import use_loopback

    use_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "run"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "experiments.cli", "search", *TINY, "--strategy", "tpe", "--trials",
                        "6", "--epochs", "3", "--no-prune", "--workers", "2", "--cpus-per-trial", "1",
                        "--ray-address", cluster.address, "--out", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
        node_ids = {n.node_id for n in cluster.list_all_nodes()}
    finally:
        cluster.shutdown()
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    used = {t.user_attrs["node"] for t in study.get_trials()}
    assert len(study.get_trials()) == 6 and used == node_ids and len(used) == 2


@pytest.mark.slow
def test_workers_2_on_the_nasbench201_table(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Ray path on a benchmark space: the workers look the cells up in the table."""
    from nas.benchmarks import get_benchmark

    out = tmp_path / "nb"
    assert main(["search", "--space", "nasbench201", "--dataset", "cifar10", "--strategy", "tpe", "--trials", "4",
                 "--workers", "2", "--cpus-per-trial", "1", "--quiet", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["trials"] == 4
    table = get_benchmark("nasbench201:cifar10")
    trials = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}").get_trials()
    assert len(trials) == 4
    for t in trials:
        a = t.user_attrs
        assert a["node"] and a["blocks"] == table.describe(t.params)
        assert a["latency_ms"] == pytest.approx(table.record(t.params).latency_ms)
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert a["accuracy"] in table.record(t.params).accuracies
