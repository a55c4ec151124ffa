"""Ray is quiet by default: none of Ray's banners, notices, Tune tables or temporary paths on the
console; ``--verbose`` / ``run.verbose`` brings them back; trials are named after their runs.

The fast tests check the settings (no Ray started); the slow ones run real Ray jobs (2 trials of
the tiny model on embedded data, 1 epoch) in a subprocess and read what reached its console.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from effnas.experiments.cli.commands import _common
from effnas.experiments.cli.main import build_parser
from effnas.experiments.cluster.ray_backend import tune_env, tune_storage
from effnas.experiments.cluster.ray_session import env_defaults, init_kwargs, quiet_records, ray_env
from effnas.experiments.pipeline import plan
from effnas.scaling.record import run_names

ROOT = Path(__file__).resolve().parents[2]
#: What Ray and Tune print by themselves, and what a quiet run must not show.
RAY_NOISE = ("Configuration for experiment", "View detailed results", "tensorboard --logdir", "/tmp/ray",
             "Token authentication", "Started a local Ray instance", "Trial status", "index=", "Trial task failed",
             "Trials did not complete", "ray-tune")
TINY_RUN = ["--dataset", "digits", "--epochs", "1", "--set", "train.threads=1", "--workers", "2",
            "--cpus-per-trial", "1"]


# -- the settings (fast: no Ray started) ----------------------------------------------------------

def test_quiet_and_verbose_settings_differ() -> None:
    quiet, verbose = init_kwargs(verbose=False), init_kwargs(verbose=True)
    assert quiet["logging_level"] == logging.WARNING and verbose["logging_level"] == logging.INFO
    assert quiet["log_to_driver"] and verbose["log_to_driver"]  # the trials' own lines and tracebacks: always
    assert not quiet["include_dashboard"] and quiet["configure_logging"]
    assert ray_env(verbose=False)["RAY_USAGE_STATS_ENABLED"] == "0" and "RAY_USAGE_STATS_ENABLED" not in ray_env(
        verbose=True)
    assert tune_env(verbose=False) == {"TUNE_DISABLE_SIGINT_HANDLER": "1", "RAY_AIR_NEW_OUTPUT": "0"}
    assert tune_env(verbose=True) == {"TUNE_DISABLE_SIGINT_HANDLER": "1"}


def test_env_defaults_keep_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    with env_defaults({"RAY_AIR_NEW_OUTPUT": "0", "RAY_USAGE_STATS_ENABLED": "0"}):
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1" and os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1" and "RAY_USAGE_STATS_ENABLED" not in os.environ


def test_quiet_records_drop_ray_notices_and_keep_its_other_warnings() -> None:
    import ray  # noqa: F401  (its logger's handlers are set up on import)

    token = logging.getLogger("ray._private.authentication.authentication_token_setup")
    tune = logging.getLogger("ray.tune.execution.tune_controller")
    # Ray's console handlers, pointed at a buffer for this test (they keep the stream of whichever
    # test imported Ray first, so capturing the process's stderr would depend on the test order).
    handlers = [h for h in logging.getLogger("ray").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers
    buf = io.StringIO()
    old = [h.setStream(buf) for h in handlers]

    def log() -> str:
        token.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled ...")
        tune.error("Trial task failed for trial phi2-seed0")
        tune.warning("No trial is running and no new trial has been started within the last 60 seconds.")
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    try:
        with quiet_records(True):
            err = log()
        assert "Token authentication" not in err and "Trial task failed" not in err and "No trial is running" in err
        with quiet_records(False):
            err = log()
        assert "Token authentication" in err and "Trial task failed for trial phi2-seed0" in err
        assert "Token authentication" in log()  # the filter is gone after the block
    finally:
        for h, stream in zip(handlers, old, strict=True):
            h.setStream(stream)


def test_trials_are_named_after_their_run_directories() -> None:
    family = ["/r/family/members/phi0-seed0", "/r/family/members/phi2-seed0", "/r/family/official/phi2-seed0",
              "/r/family/baselines/width-phi2-seed0"]
    assert run_names(family) == ["phi0-seed0", "members-phi2-seed0", "official-phi2-seed0", "width-phi2-seed0"]
    assert run_names(["/r/grid/candidates/a1.2-b1.1-g1.15-seed0", None]) == ["a1.2-b1.1-g1.15-seed0", "run1"]
    assert tune_storage(family) == "/r/family" and tune_storage(family[:2]) == "/r/family/members"
    assert tune_storage([]) is None


@pytest.mark.parametrize("command", [
    ["family", "--base", "tiny", "--official", "--phis", "0-1"],
    ["grid", "--base", "tiny"],
    ["search", "--space", "tiny", "--out", "runs/s"],
])
def test_verbose_flag_flows_through_the_config(command: list[str]) -> None:
    for flags, want in (([], False), (["--verbose"], True)):
        cfg = _common.experiment(build_parser().parse_args([*command, *flags]))
        assert cfg.run.verbose is want and plan.runtime(cfg).verbose is want


def test_run_verbose_key_reaches_the_plan() -> None:
    from effnas.experiments.config.schema import load_config

    cfg = load_config("demo", overrides=["run.workers=2", "run.verbose=true"])
    assert plan.resolve(cfg).to_dict()["runtime"] == {**plan.runtime(cfg).to_dict(), "verbose": True}
    assert plan.resolve(load_config("demo")).to_dict()["runtime"]["verbose"] is False


# -- real Ray runs (slow: Ray's start-up) ---------------------------------------------------------

def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for var in ("RAY_AIR_NEW_OUTPUT", "RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE", "RAY_COLOR_PREFIX"):
        env.pop(var, None)  # Ray's own defaults, as a user has them
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def _trial_names(experiment: Path) -> list[str]:
    """The trials' names in Tune's experiment state (``experiment_state-*.json`` in ``experiment``)."""
    (state,) = experiment.glob("experiment_state-*.json")
    assert "index=" not in state.read_text()  # not Tune's names from the search space
    return sorted(json.loads(t)["custom_trial_name"] for t, _ in json.loads(state.read_text())["trial_data"])


@pytest.mark.slow
def test_a_workers_2_family_shows_no_ray_output_by_default(tmp_path: Path) -> None:
    out = tmp_path / "run" / "family"
    code, console = _run(["-m", "effnas", "family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma",
                          "1.15", "--phis", "0-1", "--train", "--no-baselines", *TINY_RUN, "--out", str(out)], tmp_path)
    assert code == 0, console[-3000:]
    assert [n for n in RAY_NOISE if n in console] == [], console[-3000:]
    assert "wrote " in console and "compound" in console  # effnas's own lines
    # The trials carry the runs' names; Tune's state is kept beside the runs, not in a deleted temp dir.
    assert _trial_names(out / "members" / "ray-tune") == ["phi0-seed0", "phi1-seed0"]
    assert sorted(p.name.rsplit("-", 1)[0] for p in (out / "members" / "ray-tune").glob("phi*-seed0-*")) == [
        "phi0-seed0", "phi1-seed0"]


@pytest.mark.slow
def test_verbose_brings_ray_output_back(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    code, console = _run(["-m", "effnas", "grid", "--base", "tiny", "--step", "0.3", "--tolerance", "0.2",
                          *TINY_RUN, "--verbose", "--out", str(out)], tmp_path)
    assert code == 0, console[-3000:]
    assert "Configuration for experiment" in console and "Started a local Ray instance" in console
    assert f"View detailed results here: {out / 'candidates' / 'ray-tune'}" in console
    runs = sorted(p.name for p in (out / "candidates").iterdir() if p.name != "ray-tune")
    assert len(runs) == 2 and all(f"Trial {name} completed" in console for name in runs)
    assert _trial_names(out / "candidates" / "ray-tune") == runs


#: A job that runs Tune trials and search tasks whose trainers print, warn and (one) raise a bug.
SCRIPT = textwrap.dedent('''
    import sys, time, warnings
    from ray import cloudpickle

    def trainer(config, *, on_epoch=None):
        print("our line from", config["out_dir"].rsplit("/", 1)[-1], flush=True)
        warnings.warn("our warning")
        time.sleep(1)  # Ray streams a worker's lines while it runs (a trial that ends at once may lose them)
        if config.get("boom"):
            raise RuntimeError("a bug in the trainer")
        return {"status": "completed"}

    def bad_input(config, *, on_epoch=None):
        raise UserError("data.dataset 'x' does not exist: give one of digits, ...")

    def search_trainer(config, *, on_epoch=None):
        print("our search line", flush=True)
        time.sleep(1)
        return SurrogateTrainer(seed=1)(config, on_epoch=on_epoch)

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    from effnas.experiments.cluster.ray_backend import run_configs
    from effnas.experiments.cluster.ray_session import ray_session
    from effnas.experiments.cluster.search_ray import run_search_ray
    from effnas.nas import Objective, SearchConfig, SurrogateTrainer, get_space
    from effnas.search_spaces.common.errors import UserError

    out = sys.argv[1]
    with ray_session(num_cpus=2):
        cfg = SearchConfig(space=get_space("tiny"), objective=Objective(target=2e6), strategy="random", trials=2,
                           seed=0, storage=f"{out}/s.journal", prune=False, train={"epochs": 1})
        run_search_ray(cfg, search_trainer, workers=2, cpus_per_trial=1, progress=lambda *a: None)
        try:  # bad input in a trial: a UserError, one line, as in one process
            run_configs(bad_input, [{"out_dir": f"{out}/bad/phi0-seed0"}], workers=2, cpus_per_trial=1)
        except UserError as e:
            print(f"caught {type(e).__name__}: {e}")
        run_configs(trainer, [{"out_dir": f"{out}/members/phi{i}-seed0", "boom": i == 1} for i in range(2)],
                    workers=2, cpus_per_trial=1)
''')


@pytest.mark.slow
def test_the_trials_own_output_and_a_workers_traceback_reach_the_console(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(SCRIPT)
    code, console = _run(["job.py", str(tmp_path)], tmp_path)
    assert code == 1, console[-3000:]
    # Search tasks are named after their trials, Tune trials are "trial"; their own lines and warnings arrive.
    assert "(trial0 pid=" in console and "(trial1 pid=" in console and "our search line" in console
    assert "our line from phi0-seed0" in console and "our line from phi1-seed0" in console
    assert "UserWarning: our warning" in console
    # The bug's traceback from the worker (its file and line), then effnas's one line naming the run.
    assert re.search(r'job\.py", line \d+, in trainer', console) and "RuntimeError: a bug in the trainer" in console
    assert f"1 Ray trial(s) raised; the first: {tmp_path}/members/phi1-seed0: RuntimeError: a bug" in console
    assert (f"caught UserError: 1 Ray trial(s) raised; the first: {tmp_path}/bad/phi0-seed0: data.dataset 'x' does "
            "not exist") in console and "raise UserError" not in console  # no traceback for bad input
    assert (tmp_path / "members" / "ray-tune").is_dir()
    assert len(list((tmp_path / "members" / "ray-tune").glob("phi1-seed0-*/error.txt"))) == 1
    assert [n for n in RAY_NOISE if n in console and n != "ray-tune"] == [], console[-3000:]
