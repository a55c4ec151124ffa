"""GPUs per trial: the rule, Ray's resource requests on a real local Ray, and the errors before
anything starts. A local Ray can *declare* GPUs the machine does not have (``num_gpus=1``): Ray
then schedules by that count and sets each trial's ``CUDA_VISIBLE_DEVICES`` exactly as on a GPU
node, which is what these tests check (no CUDA kernel runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from effnas.experiments.cluster.ray_backend import run_configs
from effnas.experiments.cluster.ray_session import ray_session
from effnas.experiments.cluster.resources import gpus_per_trial


@pytest.mark.parametrize(("requested", "device", "devices", "available", "expected"), [
    (None, "auto", 1, 0, 0.0),      # a CPU cluster: auto trains on CPUs
    (None, "auto", 1, 4, 1.0),      # GPUs exist: one per trial, never silently the CPU
    (None, "cuda", 2, 8, 2.0),      # one per data-parallel process
    (0.5, "auto", 1, 1, 0.5),       # two trials share a GPU
    (None, "cpu", 1, 8, 0.0),       # asked for the CPU
    (0, "auto", 1, 0, 0.0),
])
def test_the_gpu_rule(requested: float | None, device: str, devices: int, available: float,
                      expected: float) -> None:
    assert gpus_per_trial(requested, device=device, devices=devices, available=available) == expected


@pytest.mark.parametrize(("requested", "device", "devices", "available", "message"), [
    (1, "auto", 1, 0, "run.gpus_per_trial = 1 but the cluster has no GPU: set run.gpus_per_trial = 0"),
    (None, "cuda", 1, 0, "train.device = 'cuda' but the cluster has no GPU"),
    (0, "auto", 1, 2, "run.gpus_per_trial = 0 with train.device = 'auto' where the cluster has 2 GPU.s.: trials "
                      "would not get a GPU; set train.device = cpu"),
    (0, "cuda", 1, 0, "run.gpus_per_trial = 0 with train.device = 'cuda'"),
    (1, "cpu", 1, 2, "run.gpus_per_trial = 1 with train.device = 'cpu'"),
    (3, "auto", 1, 2, "run.gpus_per_trial = 3 but the cluster has 2 GPU"),
    (1, "auto", 2, 4, "train.devices = 2 processes need run.gpus_per_trial = 2"),
])
def test_impossible_requests_are_one_line_errors(requested: float | None, device: str, devices: int,
                                                 available: float, message: str) -> None:
    with pytest.raises(ValueError, match=message) as e:
        gpus_per_trial(requested, device=device, devices=devices, available=available)
    assert "\n" not in str(e.value)


def gpu_env_trainer(config: dict[str, Any], *, on_epoch: Any = None) -> dict[str, Any]:
    """What a trial sees: the GPUs Ray assigned and the CUDA_VISIBLE_DEVICES it set."""
    import time

    import ray

    Path(config["out_dir"]).mkdir(parents=True, exist_ok=True)
    start = time.time()
    time.sleep(1.0)  # long enough for the two trials to overlap when they are packed together
    return {"status": "completed", "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), "start": start, "end": time.time()}


@pytest.mark.slow
def test_half_a_gpu_each_packs_two_trials_on_one_gpu(tmp_path: Path) -> None:
    import ray

    configs = [{"device": "auto", "out_dir": str(tmp_path / f"r{i}")} for i in range(2)]
    with ray_session(num_cpus=2, num_gpus=1):  # a declared GPU: Ray schedules and sets env vars as on a GPU node
        out = run_configs(gpu_env_trainer, configs, workers=2, cpus_per_trial=1, gpus_per_trial=0.5)
        whole = run_configs(gpu_env_trainer, configs, workers=2, cpus_per_trial=1)  # default: 1 GPU per trial
    assert not ray.is_initialized()
    assert [(r["gpu_ids"], r["visible"]) for r in out] == [("0", "0"), ("0", "0")]
    assert max(r["start"] for r in out) < min(r["end"] for r in out)  # both at once on the one GPU
    assert [r["visible"] for r in whole] == ["0", "0"]
    assert max(r["start"] for r in whole) >= min(r["end"] for r in whole)  # one after the other


def test_gpus_on_a_cluster_without_any_is_one_line_before_any_trial(tmp_path: Path) -> None:
    import ray

    configs = [{"device": "auto", "out_dir": str(tmp_path / "r0")}]
    with pytest.raises(ValueError, match="^run.gpus_per_trial = 1 but the cluster has no GPU") as e:
        run_configs(gpu_env_trainer, configs, workers=2, cpus_per_trial=1, gpus_per_trial=1)
    assert "\n" not in str(e.value) and not (tmp_path / "r0").exists()  # no trial started
    assert not ray.is_initialized()


def test_search_on_a_cluster_without_gpus_is_one_line(tmp_path: Path) -> None:
    from effnas.experiments.cluster.search_ray import run_search_ray
    from effnas.nas import Objective, SearchConfig, SurrogateTrainer, get_space

    cfg = SearchConfig(space=get_space("tiny"), objective=Objective(target=2e6), strategy="random", trials=2,
                       storage=str(tmp_path / "s.journal"), train={"device": "cuda", "epochs": 1})
    with pytest.raises(ValueError, match="^run.gpus_per_trial = 0.5 but the cluster has no GPU"):
        run_search_ray(cfg, SurrogateTrainer(), workers=2, cpus_per_trial=1, gpus_per_trial=0.5)
    assert not (tmp_path / "s.journal").exists()  # the study was not touched


def test_cli_asks_for_a_gpu_this_machine_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In one process (no Ray) the same rule, before any run: one line, exit 2."""
    from effnas.experiments.cli.main import main

    code = main(["family", "--train", "--config", "demo", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                 "--phis", "0", "--set", "train.device=auto", "--workers", "1", "--gpus-per-trial", "1",
                 "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "run.gpus_per_trial = 1 but the cluster has no GPU" in err and "\n" not in err
    assert not (tmp_path / "f" / "members").exists()


def test_a_default_search_checks_the_gpus_of_this_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The local check runs for the resolved trainer: a search that leaves search.trainer unset
    trains its candidates, so a GPU this machine lacks is one line before the first trial."""
    from effnas.experiments.cli.main import main

    code = main(["search", "--config", "demo", "--estimator", "train", "--space", "tiny", "--trials", "1",
                 "--set", "train.device=auto", "--workers", "1", "--gpus-per-trial", "1", "--quiet",
                 "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "run.gpus_per_trial = 1 but the cluster has no GPU" in err and "\n" not in err
