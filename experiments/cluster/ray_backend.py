"""Grid and family runs as Ray Tune trials (:func:`run_configs`, :func:`executor`).

Every call into Ray lives in this package (Ray's reporting API has changed several times): the
session in :mod:`effnas.experiments.cluster.ray_session`, tasks in :mod:`effnas.experiments.cluster.tasks`,
Tune trials here.

Each trial is named after its run directory (``phi2-seed0``, ``width-phi2-seed0``,
``a1.2-b1.1-g1.15-seed0``: :func:`effnas.scaling.record.run_names`), and Tune keeps its experiment
state beside the runs, in ``<stage>/ray-tune/`` (:func:`tune_storage`). Tune prints nothing unless
``verbose`` (:func:`tune_env`); a trial's error is raised by :func:`run_configs` itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from typing import Any

from effnas.experiments.cluster.ray_session import (
    NEEDS_RAY,
    enter_driver_cwd,
    env_defaults,
    quiet_records,
    ray_session,
    set_threads_from_resources,
)
from effnas.experiments.cluster.resources import cluster_gpus, trial_gpus
from effnas.scaling.record import run_names
from effnas.scaling.runner import ExecutorFn, RunEvents, RunsStopped, TrainerFn, sequential
from effnas.search_spaces.common.errors import UserError, first_line, last_line
from effnas.search_spaces.common.extras import needs


def report(metrics: dict[str, Any]) -> None:
    """Report metrics from inside a Tune trial."""
    from ray import tune  # lazy: Ray is slow to import; only Ray runs need it

    tune.report({k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool) or v is None})


def trial(config: dict[str, Any], *, trainer: TrainerFn, configs: dict[str, dict[str, Any]], cwd: str) -> None:
    """One Tune trial: the trainer on ``configs[config["run"]]`` (a run's name: :func:`run_names`)."""
    enter_driver_cwd(cwd)
    n = set_threads_from_resources()
    cfg = dict(configs[config["run"]])
    if not cfg.get("threads"):  # 0 (automatic) means the trial's CPUs under Ray, not the free cores
        cfg["threads"] = n

    def on_epoch(record: dict[str, Any]) -> bool:
        report({**record, "final": False})
        return False

    metrics = trainer(cfg, on_epoch=on_epoch)
    report({**metrics, "final": True})


#: Times the trials of a dead node or worker are run again on the nodes left (env EFFNAS_NODE_RETRIES).
NODE_RETRIES = 2


def node_retries() -> int:
    """``EFFNAS_NODE_RETRIES`` (default :data:`NODE_RETRIES`): an integer >= 0."""
    text = os.environ.get("EFFNAS_NODE_RETRIES", str(NODE_RETRIES))
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise UserError(f"EFFNAS_NODE_RETRIES must be an integer >= 0, got {text!r}")
    return n


def lost_node_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors of a trial whose node or worker process went away (see :func:`node_lost`)."""
    from ray import exceptions as rx  # lazy: Ray is slow to import; only Ray runs need it

    return (rx.RayActorError, rx.NodeDiedError, rx.WorkerCrashedError)


def node_lost(error: BaseException) -> bool:
    """Whether a Tune trial ended because its node or worker went away, and so is worth running
    again elsewhere: not when its actor could not even be created (``actor_init_failed``: a setup
    problem that would fail again) and not Ray's memory monitor's ``OutOfMemoryError``."""
    return isinstance(error, lost_node_errors()) and not getattr(error, "actor_init_failed", False)


def run_configs(
    trainer: TrainerFn,
    configs: list[dict[str, Any]],
    *,
    workers: int,
    address: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    verbose: bool = False,
    name: str = "ray-tune",
    events: RunEvents | None = None,
) -> list[dict[str, Any]]:
    """Run ``trainer(config)`` for every config as Ray Tune trials, ``workers`` at a time.
    ``events`` hears, in this process, each trial's start, epochs and end
    (:class:`effnas.experiments.cluster.ray_progress.TrialEvents`).

    Returns the trainers' final metrics in the order of ``configs``. A trial that raised (bad
    data, a bug) stops the batch with its error, after every trial has ended (finished runs keep
    their result files). A trial whose node or worker process died is run again on the nodes
    left, resuming from its run directory's ``last.pt``, up to :data:`NODE_RETRIES` times.
    Starts (and stops) a local Ray on loopback with ``workers * cpus_per_trial`` CPUs unless
    ``address`` names a running cluster. Each trial asks
    for ``gpus_per_trial`` GPUs, resolved by :func:`effnas.experiments.cluster.resources.trial_gpus` from the
    configs' ``device`` and ``devices`` and the cluster's GPUs (a one-line ValueError before any
    trial starts when they cannot be had). Ray and Tune print nothing of their own unless
    ``verbose``; Tune's experiment state goes to ``name`` beside the run directories.
    """
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    if not configs:
        return []
    with needs(*NEEDS_RAY):
        from ray import tune  # lazy: Ray is slow to import; only Ray runs need it

    cpus = cpus_per_trial or max(1, (os.cpu_count() or 1) // workers)
    if not cpus > 0:
        raise UserError(f"cpus_per_trial must be > 0, got {cpus_per_trial}")
    retries = node_retries()
    # Absolute run directories: trials on other nodes (or in Tune's trial directory) write there.
    configs = [{**c, "out_dir": os.path.abspath(c["out_dir"])} if c.get("out_dir") else c for c in configs]
    names = run_names([c.get("out_dir") for c in configs])
    storage = tune_storage([c["out_dir"] for c in configs if c.get("out_dir")])
    with ray_session(num_cpus=None if address else math.ceil(workers * cpus), address=address, verbose=verbose), \
            contextlib.nullcontext(storage) if storage else tempfile.TemporaryDirectory(prefix="effnas-ray-") as where:
        gpus = trial_gpus(gpus_per_trial, configs, available=cluster_gpus())
        out: list[dict[str, Any]] = [{"status": "failed", "error": "trial did not report"} for _ in configs]
        errors, causes, user_errors = [], [], True
        pending: list[int] = list(range(len(configs)))
        lost: dict[int, str] = {}
        for attempt in range(1 + retries):
            if attempt:  # a node went away: can the nodes left still run one trial? (Tune would wait for ever)
                _check_fits(cpus, gpus, len(pending))
                print(f"effnas: {len(pending)} Ray trial(s) lost their node or worker (first: {names[pending[0]]}: "
                      f"{lost[pending[0]]}); running them again from their last epoch ({attempt} of {retries})",
                      file=sys.stderr)
            # Again: the trials of a node that died, on the nodes left, from their last.pt.
            table = [{**c, "resume": True} if attempt and c.get("out_dir") else c for c in configs]
            results = _fit(tune, trainer, table, pending, cpus=cpus, gpus=gpus, workers=workers, names=names,
                           storage=str(where), name=name, verbose=verbose, events=events)
            asked, pending = pending, []
            for idx in asked:
                if idx not in results:  # Tune returned no result and no error for it
                    errors.append(f"{configs[idx].get('out_dir') or idx}: the Ray trial ended without a result")
                    user_errors = False
            for idx, (metrics, error) in results.items():
                if error is None:
                    out[idx] = metrics
                elif node_lost(error):  # the trial's node or worker went away
                    pending.append(idx)
                    lost[idx] = last_line(error)
                else:
                    errors.append(f"{configs[idx].get('out_dir') or idx}: {_message(error)}")
                    causes.append(error)
                    # Ray re-raises a worker's error as an instance of its cause's class.
                    user_errors &= isinstance(error, ValueError | FileNotFoundError)
            if not pending:
                break
    if errors:  # bad input (UserError) is one line, as in one process; else the worker's traceback shows (the cause)
        kind = RuntimeError if not user_errors else UserError if all(isinstance(e, UserError) for e in causes) \
            else ValueError
        kept = f" (every trial's traceback: {os.path.join(storage, name)}/*/error.txt)" if storage and \
            kind is not UserError else ""
        cause = causes[0] if causes else None
        raise kind(f"{len(errors)} Ray trial(s) raised; the first: {errors[0]}{kept}") from cause
    if pending:  # not a bug: the cluster kept losing nodes
        first = configs[pending[0]].get("out_dir") or pending[0]
        raise RunsStopped(f"{len(pending)} Ray trial(s) lost their node or worker {1 + retries} times (first: {first}: "
                          f"{lost[pending[0]]}); finished runs are kept: re-run with --resume once the cluster is "
                          "stable (EFFNAS_NODE_RETRIES sets the retries)")
    return out


def _message(error: BaseException) -> str:
    """A trial's error in one line: a UserError's own message (as in one process), else the last
    line of Ray's (the worker's exception, after its traceback)."""
    cause = getattr(error, "cause", None)  # Ray's RayTaskError carries the worker's exception
    return first_line(cause) if isinstance(error, UserError) and isinstance(cause, BaseException) else last_line(error)


def _check_fits(cpus: float, gpus: float, lost: int) -> None:
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    have = ray.cluster_resources()
    if have.get("CPU", 0) < cpus or have.get("GPU", 0) < gpus:
        raise RunsStopped(f"{lost} Ray trial(s) lost their node, and the nodes left cannot run a trial of {cpus:g} "
                          f"CPUs and {gpus:g} GPUs (the cluster has {have.get('CPU', 0):g} and {have.get('GPU', 0):g});"
                          " finished runs are kept: add nodes and re-run with --resume")


def tune_storage(run_dirs: list[str]) -> str | None:
    """Where Tune keeps its experiment state: the directory that holds the run directories (the
    stage's, e.g. ``family/``; ``None`` without any). Not a temporary directory: what Tune's
    output names (``--verbose``) and a failed trial's ``error.txt`` stay there.

    >>> tune_storage(["/r/family/members/phi0-seed0", "/r/family/baselines/width-phi1-seed0"])
    '/r/family'
    """
    return os.path.commonpath([os.path.dirname(d) for d in run_dirs]) if run_dirs else None


def tune_env(*, verbose: bool) -> dict[str, str]:
    """Environment of a Tune run. Always ``TUNE_DISABLE_SIGINT_HANDLER=1``: Ctrl-C raises
    KeyboardInterrupt here, so the command stops Ray, keeps the finished runs and says "re-run with
    --resume" (exit 130), where Tune's own handler ended the run, told the user to call
    ``Tuner.restore`` and left every unfinished trial without a result, which then read as failed trials.
    Quiet (not ``verbose``): also Tune's older console output (``RAY_AIR_NEW_OUTPUT=0``), which prints
    nothing at ``verbose=0``, where the newer one (Ray 2.60's default) prints its "Configuration for
    experiment" box, "View detailed results here" and a TensorBoard command at every verbosity. Applied
    with :func:`effnas.experiments.cluster.ray_session.env_defaults` (a variable the user set stays).

    >>> tune_env(verbose=False), tune_env(verbose=True)
    ({'TUNE_DISABLE_SIGINT_HANDLER': '1', 'RAY_AIR_NEW_OUTPUT': '0'}, {'TUNE_DISABLE_SIGINT_HANDLER': '1'})
    """
    return {"TUNE_DISABLE_SIGINT_HANDLER": "1", **({} if verbose else {"RAY_AIR_NEW_OUTPUT": "0"})}


def _fit(tune: Any, trainer: TrainerFn, configs: list[dict[str, Any]], indexes: list[int], *, cpus: float,
         gpus: float, workers: int, names: list[str], storage: str, name: str,
         verbose: bool, events: RunEvents | None = None) -> dict[int, tuple[dict[str, Any], BaseException | None]]:
    """One Tune run of the trials ``indexes`` of ``configs`` (named ``names``) into ``storage/name``:
    each one's final metrics, or the error it ended with; ``events`` hears each trial's start,
    epochs and end in this process."""
    import ray  # lazy: Ray is slow to import; only Ray runs need it

    from effnas.experiments.cluster.ray_progress import TrialEvents  # lazy: imports Ray, slow to import

    by_name = {names[i]: configs[i] for i in indexes}
    trainable = tune.with_resources(
        tune.with_parameters(trial, trainer=trainer, configs=by_name, cwd=os.getcwd()), {"cpu": cpus, "gpu": gpus})
    with env_defaults(tune_env(verbose=verbose)), quiet_records(not verbose):
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search(list(by_name))},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers,
                                        trial_name_creator=lambda t: t.config["run"],
                                        trial_dirname_creator=lambda t: f"{t.config['run']}-{t.trial_id}"),
            run_config=tune.RunConfig(name=name, storage_path=storage, verbose=None if verbose else 0,
                                      callbacks=[TrialEvents(events, {names[i]: i for i in indexes})]
                                      if events is not None else None),
        )
        try:
            grid = tuner.fit()
        except (ray.exceptions.RayError, RuntimeError) as e:  # Tune itself stopped, e.g. workers killed
            raise RunsStopped(f"the Ray trials stopped ({last_line(e)[:300]}); finished runs are kept: "
                              "re-run with --resume (with fewer --workers if memory ran out)") from e
        out: dict[int, tuple[dict[str, Any], BaseException | None]] = {}
        for i in range(len(grid)):
            result = grid[i]
            idx = names.index((result.config or {})["run"])
            if result.error is not None:
                out[idx] = ({}, result.error)
            elif result.metrics and result.metrics.get("final"):
                out[idx] = ({k: v for k, v in result.metrics.items()
                             if k != "final" and not _is_tune_key(k)}, None)
        return out


_TUNE_KEYS = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
              "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config",
              "time_since_restore", "iterations_since_restore", "experiment_tag"}


def _is_tune_key(key: str) -> bool:
    return key in _TUNE_KEYS or key.startswith("config/")


def executor(workers: int = 1, address: str | None = None, *, cpus_per_trial: float | None = None,
             gpus_per_trial: float | None = None, verbose: bool = False) -> ExecutorFn:
    """The executor for ``workers`` / ``address``: sequential for 1 local worker, else Ray (quiet
    unless ``verbose``)."""
    if workers <= 1 and not address:
        return sequential
    return lambda trainer, configs, events=None: run_configs(
        trainer, configs, workers=workers, address=address, cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial, verbose=verbose, events=events)
