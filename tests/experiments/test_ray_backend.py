"""Ray adapter: real trials on a local loopback Ray, stopped afterwards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from experiments.ray_backend import executor, run_configs, sequential


def cost_trainer(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """A real (cheap) computation: the MACs of a registered model at a resolution, and the
    worker's pid and torch thread count, so the test sees where and how it ran."""
    import torch

    import search_spaces as ss
    from search_spaces.cost import macs

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
            "worker_pid": os.getpid(), "threads": torch.get_num_threads()}


def test_sequential_matches_ray_and_order_is_kept() -> None:
    import ray

    configs = [{"model": "tiny", "resolution": r} for r in (16, 32, 48)] + [{"model": "tiny", "boom": True,
                                                                               "resolution": 8}]
    seq = sequential(cost_trainer, configs[:3])
    par = run_configs(cost_trainer, configs[:3], workers=2, cpus_per_trial=1)
    assert [r["macs"] for r in par[:3]] == [r["macs"] for r in seq]
    assert par[0]["macs"] < par[1]["macs"] < par[2]["macs"]
    assert all(r["worker_pid"] != os.getpid() for r in par[:3])
    assert all(r["threads"] == 1 for r in par[:3])
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
