"""Ray adapter: real trials on a local loopback Ray, stopped afterwards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from effnas.experiments.cluster.ray_backend import executor, run_configs, sequential


def cost_trainer(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """A real (cheap) computation: the MACs of a registered model at a resolution, and the
    worker's pid and torch thread count, so the test sees where and how it ran."""
    import torch

    import effnas.search_spaces as ss
    from effnas.search_spaces.cost import macs

    if on_epoch is not None:
        on_epoch({"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5})
    if config.get("boom"):
        raise RuntimeError("boom")
    if config.get("out_dir"):  # a relative run directory must land where the driver meant it
        Path(config["out_dir"]).mkdir(parents=True, exist_ok=True)
        (Path(config["out_dir"]) / "done").write_text(os.getcwd())
    import ray

    return {"status": "completed", "trial_ip": ray.util.get_node_ip_address(),
            "macs": macs(ss.get(config["model"]), config["resolution"]),
            "worker_pid": os.getpid(), "threads": torch.get_num_threads(), "config_threads": config.get("threads")}


@pytest.mark.slow  # ~23 s: starts its own Ray
def test_sequential_matches_ray_and_order_is_kept() -> None:
    import ray

    configs = [{"model": "tiny", "resolution": r, "threads": 0} for r in (16, 32, 48)] + [
        {"model": "tiny", "boom": True, "resolution": 8}]
    seq = sequential(cost_trainer, configs[:3])
    par = run_configs(cost_trainer, configs[:3], workers=2, cpus_per_trial=1)
    assert [r["macs"] for r in par[:3]] == [r["macs"] for r in seq]
    assert par[0]["macs"] < par[1]["macs"] < par[2]["macs"]
    assert all(r["worker_pid"] != os.getpid() for r in par[:3])
    assert all(r["threads"] == 1 for r in par[:3])
    # threads = 0 (automatic) becomes the trial's CPUs: 2 trials of 2 threads on 2 cores would be 10-40x slower
    assert all(r["config_threads"] == 1 for r in par[:3])
    assert all(r["trial_ip"] == "127.0.0.1" for r in par[:3])  # Ray on loopback only
    assert not ray.is_initialized()
    # A trial that raises (a bug, bad data) stops the batch with its error once every trial ended.
    with pytest.raises(RuntimeError, match="1 Ray trial.s. raised; the first: 3: .*boom"):
        run_configs(cost_trainer, configs, workers=2, cpus_per_trial=1)
    assert not ray.is_initialized()


def test_relative_out_dirs_land_in_the_driver_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from ray import cloudpickle

    # The driver now runs elsewhere, so ship this test module's trainer by value to the workers.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.chdir(tmp_path)
    configs = [{"model": "tiny", "resolution": 16, "out_dir": f"runs/r{i}"} for i in range(2)]
    out = run_configs(cost_trainer, configs, workers=2, cpus_per_trial=1)
    assert [r["status"] for r in out] == ["completed", "completed"]
    assert all((tmp_path / "runs" / f"r{i}" / "done").exists() for i in range(2))


def test_executor_choice() -> None:
    assert executor(1) is sequential
    with pytest.raises(ValueError, match="workers"):
        run_configs(cost_trainer, [{}], workers=0)


def trainer_noting_attempts(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """The real trainer; each attempt first notes its node and whether a last.pt was there to resume."""
    import ray

    from effnas.experiments.train.loop import train_fn

    out = Path(config["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    node = ray.get_runtime_context().get_node_id()
    with open(out / "attempts.txt", "a") as f:
        f.write(f"{node} {int((out / 'last.pt').is_file())}\n")
    return train_fn(config, on_epoch=on_epoch)


@pytest.mark.slow
def test_trials_of_a_dead_node_run_again_on_the_node_left_from_their_checkpoint(tmp_path: Path) -> None:
    """Two raylets of one CPU each; the second is killed (no graceful stop) once its trial has a
    checkpoint. Every run still completes: the lost one again on the head, resumed from last.pt."""
    import threading
    import time

    from ray.cluster_utils import Cluster

    from effnas.experiments.cluster.ray_session import use_loopback

    use_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        configs = [{"model": "tiny", "dataset": "digits", "resolution": 16, "epochs": 12, "batch_size": 32,
                    "seed": i, "quiet": True, "out_dir": str(tmp_path / f"run{i}")} for i in range(3)]
        killed: list[str] = []

        def kill_when_checkpointed() -> None:
            deadline = time.time() + 240
            while time.time() < deadline and not killed:
                for c in configs:
                    a = Path(c["out_dir"]) / "attempts.txt"
                    if a.is_file() and a.read_text().split()[0] == second.node_id and \
                            (Path(c["out_dir"]) / "last.pt").is_file():
                        cluster.remove_node(second, allow_graceful=False)
                        killed.append(c["out_dir"])
                        return
                time.sleep(0.2)

        killer = threading.Thread(target=kill_when_checkpointed, daemon=True)
        killer.start()
        out = run_configs(trainer_noting_attempts, configs, workers=2, address=cluster.address, cpus_per_trial=1)
        killer.join()
    finally:
        cluster.shutdown()
    assert killed, "the second node never ran a trial"
    assert all(m["status"] == "completed" and m["epochs_completed"] == 12 for m in out)
    attempts = [ln.split() for ln in (Path(killed[0]) / "attempts.txt").read_text().splitlines()]
    assert attempts[0] == [second.node_id, "0"] and len(attempts) == 2
    assert attempts[1][0] != second.node_id and attempts[1][1] == "1"  # on the head, from its last.pt


def exits(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    os._exit(3)  # the worker process dies, as when a node or the kernel kills it


@pytest.mark.slow  # over 10 s: the default suite stays under 10 min (make test-slow runs it)
def test_a_trial_lost_every_time_stops_the_batch_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from effnas.scaling.runner import RunsStopped

    monkeypatch.setenv("EFFNAS_NODE_RETRIES", "1")
    with pytest.raises(RunsStopped, match=r"^1 Ray trial\(s\) lost their node or worker 2 times \(first: 0: "):
        run_configs(exits, [{"model": "tiny", "resolution": 16}], workers=1, cpus_per_trial=1)
    for bad in ("x", "-1"):
        monkeypatch.setenv("EFFNAS_NODE_RETRIES", bad)
        with pytest.raises(ValueError, match=f"^EFFNAS_NODE_RETRIES must be an integer >= 0, got '{bad}'"):
            run_configs(exits, [{"model": "tiny", "resolution": 16}], workers=1, cpus_per_trial=1)
