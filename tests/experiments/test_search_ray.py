"""The search with trials in Ray tasks: the same trials as in-process, errors that stop it, resume.

A local loopback Ray with 2 CPUs serves the tests of this module (started once, stopped at the
end; a search uses a running Ray as it is); the 2-node cluster test (slow) starts its own.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.nas import Objective, SearchConfig, SurrogateTrainer, finished, get_space, open_study, run_search
from effnas.nas.study import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--space", "tiny", "--trainer", "surrogate", "--target-macs", "1.5M", "--quiet"]
QUIET = lambda *a: None  # noqa: E731
SOFT = Objective(target=2e6)
RAY_ONLY = ("node", "threads")  # attributes only a Ray task records: where and how it ran


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    from effnas.experiments.cluster.ray_session import ray_session

    with ray_session(num_cpus=2):
        yield
    assert not ray.is_initialized()


def test_cli_workers_2_runs_through_ray_and_completes(tmp_path, capsys: pytest.CaptureFixture[str],
                                                     local_ray: None) -> None:
    out = tmp_path / "run"
    assert main(["search", *TINY, "--strategy", "rl", "--trials", "4", "--epochs", "2", "--workers", "2",
                 "--cpus-per-trial", "1", "--json", "--out", str(out)]) == 0
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


def _cfg(storage: str, **kw: Any) -> SearchConfig:
    base: dict[str, Any] = dict(space=get_space("tiny"), objective=Objective(target=2e6, constraint="hard"),
                                strategy="random", trials=8, seed=2, storage=storage, prune=False,
                                train={"epochs": 2}, max_failed_share=1.0)
    return SearchConfig(**{**base, **kw})


def kernel5_diverges(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """The surrogate, except that a first block with a 5x5 kernel diverges (a training outcome)."""
    if ss.NetworkSpec.from_dict(config["model"]).stages[0].kernel == 5:
        return {"status": "diverged", "val_accuracy": float("nan"), "error": "loss is nan at epoch 1"}
    return SurrogateTrainer(seed=1)(config, on_epoch=on_epoch)


def _record(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [(t.number, t.state, t.values, t.params, t.intermediate_values,
             {k: v for k, v in t.user_attrs.items() if k not in RAY_ONLY}) for t in study.trials]


def test_ray_and_in_process_record_the_same_trials(tmp_path, local_ray: None) -> None:
    from effnas.experiments.cluster.search_ray import run_search_ray

    here = run_search(_cfg(str(tmp_path / "here.journal")), kernel5_diverges, progress=QUIET)
    there = run_search_ray(_cfg(str(tmp_path / "ray.journal")), kernel5_diverges, workers=2, cpus_per_trial=1,
                           progress=QUIET)
    assert _record(here) == _record(there)
    statuses = {t.user_attrs["status"] for t in here.trials}
    assert {"completed", "rejected", "diverged"} <= statuses  # every kind of outcome was compared
    assert all(t.user_attrs["threads"] == 1 and t.user_attrs["node"] for t in there.trials)
    assert all(not set(RAY_ONLY) & set(t.user_attrs) for t in here.trials)


def raises_type_error(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    return {"status": "completed", "val_accuracy": "0.9" + 1}  # type: ignore[operator]


def test_a_bug_in_the_trainer_stops_the_ray_search_and_resume_recovers(tmp_path, local_ray: None) -> None:
    from effnas.experiments.cluster.search_ray import run_search_ray

    db = str(tmp_path / "s.journal")
    with pytest.raises(TypeError, match="can only concatenate str") as e:
        run_search_ray(_cfg(db, objective=SOFT), raises_type_error, workers=2, cpus_per_trial=1, progress=QUIET)
    assert "raises_type_error" in str(e.value)  # the remote traceback
    study = open_study(_cfg(db, objective=SOFT, resume=True))
    errored = [t for t in study.trials if t.user_attrs.get("status") == "error"]
    failed = [t for t in errored if t.state == TrialState.FAIL]
    # The task whose error stopped the search marked its trial FAIL; the other task may have been
    # cancelled between writing its status and telling the study (left RUNNING, recovered on resume).
    assert failed and all(t.state in (TrialState.FAIL, TrialState.RUNNING) for t in errored)
    assert failed[0].user_attrs["error"].startswith("TypeError: can only concatenate str")
    assert len(study.trials) <= 2 and not finished(study)  # stopped at once, nothing counted
    # A crash: a trial the killed driver left RUNNING (the second task may also have been cancelled).
    study.ask()
    study = run_search_ray(_cfg(db, objective=SOFT, resume=True, trials=3), kernel5_diverges, workers=2,
                           cpus_per_trial=1, progress=QUIET)
    statuses = [t.user_attrs["status"] for t in study.trials]
    assert len(finished(study)) == 3 and "interrupted" in statuses
    assert len(study.trials) == 3 + statuses.count("interrupted") + statuses.count("error")


def test_a_value_error_from_the_trainer_is_one_line(tmp_path, local_ray: None) -> None:
    from effnas.experiments.cluster.search_ray import run_search_ray

    def bad_config(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        raise ValueError("unknown training config key 'lrr': expected one of lr, ...")

    with pytest.raises(ValueError, match="^unknown training config key 'lrr'") as e:
        run_search_ray(_cfg(str(tmp_path / "s.journal")), bad_config, workers=2, cpus_per_trial=1, progress=QUIET)
    assert "\n" not in str(e.value)


def test_one_real_training_trial_under_ray(tmp_path, local_ray: None) -> None:
    """train_fn on a fifth of digits, one epoch: the real trainer runs in a Ray task, 1 thread."""
    from effnas.experiments.cluster.search_ray import run_search_ray
    from effnas.experiments.train.loop import train_fn

    cfg = _cfg(str(tmp_path / "s.journal"), trials=1, objective=SOFT,
               train={"dataset": "digits", "epochs": 1, "data_fraction": 0.2, "seed": 0, "quiet": True})
    (t,) = run_search_ray(cfg, train_fn, workers=1, cpus_per_trial=1, progress=QUIET).trials
    a = t.user_attrs
    assert t.state == TrialState.COMPLETE and a["status"] == "completed" and a["threads"] == 1
    assert 0.0 <= a["accuracy"] <= 1.0 and a["train_seconds"] > 0
    assert t.value == pytest.approx(a["accuracy"] * (a["macs"] / 2e6) ** a["w"])
    assert t.intermediate_values == {1: pytest.approx(t.value)}  # the epoch's reward went to the pruner


@pytest.mark.slow  # ~20 s: waits for Ray to report the killed worker
def test_a_dead_worker_is_a_failed_trial(tmp_path, local_ray: None) -> None:
    """A worker process that dies (as when the kernel kills it for memory) fails its trial; the search goes on."""
    from effnas.experiments.cluster.search_ray import run_search_ray

    def dies(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
        os._exit(1)

    study = run_search_ray(_cfg(str(tmp_path / "s.journal"), objective=SOFT, trials=2), dies, workers=2,
                           cpus_per_trial=1, progress=QUIET)
    assert [(t.state, t.user_attrs["status"]) for t in study.trials] == [(TrialState.FAIL, "failed")] * 2
    assert all(t.user_attrs["error"].startswith("Ray worker died") for t in study.trials)


def test_in_memory_storage_cannot_go_to_ray() -> None:
    from effnas.experiments.cluster.search_ray import run_search_ray

    with pytest.raises(ValueError, match="in-memory study: give --storage") as e:
        run_search_ray(_cfg(None), SurrogateTrainer(), workers=2)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_ctrl_c_leaves_running_trials_that_resume_marks_interrupted(tmp_path) -> None:
    """SIGINT to `effnas search --workers 2` after 3 finished trials: exit 130, the trials in flight stay
    RUNNING; --resume marks them interrupted and finishes the requested number, each trial once."""
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "effnas", "search", *TINY[:-1], "--strategy", "random", "--trials", "40",
           "--epochs", "2", "--workers", "2", "--cpus-per-trial", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "err.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 300
        while "[3/40]" not in log.read_text() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[:3000]
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    running = [t.number for t in study.trials if t.state == TrialState.RUNNING]
    # The trials in flight when the signal arrived stay RUNNING, unless they finished before the
    # driver stopped (a surrogate trial takes about a second).
    assert 3 <= len(finished(study)) < 8 and len(running) <= 2
    assert len(study.trials) == len(finished(study)) + len(running)  # none told FAIL by the interrupt
    subprocess.run([*cmd, "--resume", "--trials", "8"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=300)
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    assert [study.trials[n].user_attrs["status"] for n in running] == ["interrupted"] * len(running)
    assert len(finished(study)) == 8 and not any(t.state == TrialState.RUNNING for t in study.trials)


@pytest.mark.slow
def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path) -> None:
    """A head and a second raylet on loopback (ray.cluster_utils.Cluster), one CPU each; the search
    joins with --ray-address, two trials at a time of one CPU each, so both nodes get trials."""
    from ray.cluster_utils import Cluster

    from effnas.experiments.cluster.ray_session import use_loopback

    use_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "run"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "effnas", "search", *TINY, "--strategy", "tpe", "--trials",
                        "6", "--epochs", "3", "--no-prune", "--workers", "2", "--cpus-per-trial", "1",
                        "--ray-address", cluster.address, "--out", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
        node_ids = {n.node_id for n in cluster.list_all_nodes()}
    finally:
        cluster.shutdown()
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    used = {t.user_attrs["node"] for t in study.get_trials()}
    assert len(study.get_trials()) == 6 and used == node_ids and len(used) == 2


def slow_surrogate(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """The surrogate, one second per epoch: trials are in flight long enough to lose their node."""
    import time

    def tick(record: dict[str, Any]) -> bool:
        time.sleep(1.0)
        return on_epoch(record) if on_epoch is not None else False

    return SurrogateTrainer(seed=1)(config, on_epoch=tick)


@pytest.mark.slow
def test_killing_a_raylet_during_a_search_still_finishes_the_requested_trials(tmp_path) -> None:
    """Two raylets of one CPU each; the second is killed (no graceful stop) while a trial runs on
    it. That trial is recorded as interrupted (not counted) and the search still finishes 6."""
    import threading
    import time

    from ray.cluster_utils import Cluster

    from effnas.experiments.cluster.ray_session import use_loopback
    from effnas.experiments.cluster.search_ray import run_search_ray

    use_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    db = str(tmp_path / "s.journal")
    try:
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        killed: list[bool] = []
        done = threading.Event()

        def kill_when_busy() -> None:
            while not done.is_set():
                try:
                    study = optuna.load_study(study_name="search", storage=open_storage(db))
                except KeyError:  # not created yet
                    time.sleep(0.2)
                    continue
                if any(t.user_attrs.get("node") == second.node_id and t.state == TrialState.RUNNING
                       and t.intermediate_values for t in study.trials):
                    cluster.remove_node(second, allow_graceful=False)
                    killed.append(True)
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        try:
            study = run_search_ray(_cfg(db, objective=SOFT, trials=6, train={"epochs": 4}), slow_surrogate,
                                   workers=2, address=cluster.address, cpus_per_trial=1, progress=QUIET)
        finally:
            done.set()
            killer.join()
    finally:
        cluster.shutdown()
    nodes = [(t.user_attrs.get("node"), t.user_attrs.get("status")) for t in study.trials]
    assert killed, f"no trial was seen running on the second node {second.node_id}: {nodes}"
    statuses = [t.user_attrs["status"] for t in study.trials]
    assert len(finished(study)) == 6 and "interrupted" in statuses, statuses
    lost = [t for t in study.trials if t.user_attrs["status"] == "interrupted"]
    assert all(t.state == TrialState.FAIL and t.user_attrs["error"].startswith("Ray node lost") for t in lost)


@pytest.mark.slow
def test_workers_2_on_the_nasbench201_table(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Ray path on a benchmark space: the workers look the cells up in the table."""
    from effnas.nas.benchmarks import get_benchmark

    out = tmp_path / "nb"
    assert main(["search", "--space", "nasbench201", "--dataset", "cifar10", "--strategy", "tpe", "--trials", "4",
                 "--workers", "2", "--cpus-per-trial", "1", "--quiet", "--json", "--out", str(out)]) == 0
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
