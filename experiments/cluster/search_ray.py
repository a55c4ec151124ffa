"""The search with trials in Ray tasks: the same driver, the same evaluation, ``workers`` at a time.

The driver of :func:`effnas.nas.search.run_search` stays in this process with the study's sampler; a
:class:`RayEvaluator` runs :func:`effnas.nas.trial.evaluate_trial` for each trial it submits as a Ray
task of ``cpus_per_trial`` CPUs. The task enters the driver's working directory, sets torch's
threads to its CPUs, opens the study's storage (so the storage must be reachable from every
node: a SQLite or journal file on a shared path, or a database server), writes the trial's
attributes (plus the Ray ``node`` and ``threads``), reports each epoch's reward to the study's
pruner and tells the study the outcome. Ray itself is started and stopped by
:mod:`effnas.experiments.cluster.ray_session` (loopback, explicit CPUs) or joined with ``address``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from effnas.experiments.cluster.ray_session import enter_driver_cwd, node_id, ray_session, set_threads_from_resources
from effnas.experiments.cluster.resources import cluster_gpus, trial_gpus
from effnas.experiments.cluster.tasks import TaskPool
from effnas.nas.search import ProgressFn, run_search
from effnas.nas.study import SearchConfig, TrainerFn, open_storage, open_study
from effnas.nas.trial import evaluate_trial
from effnas.search_spaces.common.errors import UserError, first_line


def _evaluate_task(cfg: SearchConfig, number: int, params: dict[str, Any], trainer: TrainerFn,
                   cwd: str | None) -> str:
    """One trial in a Ray task; the name of its final state."""
    enter_driver_cwd(cwd)
    threads = set_threads_from_resources()
    state = evaluate_trial(cfg, cfg.storage, number, params, trainer, attrs={"node": node_id(), "threads": threads},
                           runtime={"threads": threads})
    return state.name


#: Seconds a trial whose worker died waits for Ray to report its node dead before it counts as failed.
NODE_DEATH_WAIT = 10.0


class RayEvaluator:
    """Evaluates trials as Ray tasks, ``workers`` at a time (see :class:`effnas.nas.search.Evaluator`)."""

    def __init__(self, cfg: SearchConfig, trainer: TrainerFn, study: optuna.Study, *, workers: int,
                 cpus_per_trial: float, gpus_per_trial: float = 0) -> None:
        self.cfg, self.trainer, self.study, self.slots = cfg, trainer, study, workers
        self.pool = TaskPool(_evaluate_task, num_cpus=cpus_per_trial, num_gpus=gpus_per_trial)
        self.cwd = os.getcwd()

    def submit(self, number: int, params: dict[str, Any]) -> None:
        self.pool.submit(number, self.cfg, number, params, self.trainer, self.cwd, name=f"trial{number}")

    def wait(self) -> list[int]:
        from ray.exceptions import RayTaskError  # lazy: Ray is slow to import; only Ray runs need it

        try:
            done = self.pool.wait()
        except RayTaskError as e:  # the task marked its trial FAIL (status=error) before raising
            if isinstance(e.cause, ValueError):  # a bad config or data set: one line, as in-process
                raise UserError(str(e.cause)) from e
            raise  # a bug: the remote traceback is in the message
        for number, result in done:
            if isinstance(result, str):
                continue
            if self._node_lost(number, result):  # not counted: the search runs another trial instead
                self._fail(number, f"Ray node lost: {first_line(result)}", status="interrupted")
            else:  # the worker process died on a live node (killed for memory, a crash): a failed trial
                self._fail(number, f"Ray worker died: {first_line(result)}")
        return [number for number, _ in done]

    def _node_lost(self, number: int, error: BaseException) -> bool:
        """Whether trial ``number`` ended because its node went away (not its own process)."""
        import ray  # lazy: Ray is slow to import; only Ray runs need it
        from ray.exceptions import NodeDiedError  # lazy: Ray is slow to import; only Ray runs need it

        if isinstance(error, NodeDiedError):
            return True
        node = self.study.get_trials(deepcopy=False)[number].user_attrs.get("node")
        if not node:
            return False
        deadline = time.monotonic() + NODE_DEATH_WAIT  # the GCS marks a dead raylet a little later
        while True:
            if node not in {n["NodeID"] for n in ray.nodes() if n.get("Alive")}:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)

    def _fail(self, number: int, error: str, *, status: str = "failed") -> None:
        trial = self.study.get_trials(deepcopy=False)[number]
        if trial.state == TrialState.RUNNING:
            self.study._storage.set_trial_user_attr(trial._trial_id, "status", status)
            self.study._storage.set_trial_user_attr(trial._trial_id, "error", error[:500])
            self.study.tell(number, state=TrialState.FAIL)


def run_search_ray(cfg: SearchConfig, trainer: TrainerFn, *, workers: int, address: str | None = None,
                   cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
                   progress: ProgressFn | None = None, verbose: bool = False) -> optuna.Study:
    """Run the study's remaining trials as Ray tasks (``trial7``: the study's trial number),
    ``workers`` at a time; returns the study. Ray prints nothing of its own unless ``verbose``.

    Starts (and stops) a local Ray on loopback with ``workers * cpus_per_trial`` CPUs, or joins
    the cluster at ``address``; an already running Ray is used as it is. ``cpus_per_trial``
    defaults to this machine's cores / workers; ``gpus_per_trial`` follows the rule of
    :mod:`effnas.experiments.cluster.resources` (checked against the cluster before the first trial).
    """
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if cfg.storage is None:
        raise UserError("Ray workers cannot reach an in-memory study: give --storage sqlite:///PATH.db or "
                         "PATH.journal (on a shared path, or a database URL, for a multi-node cluster)")
    cpus = cpus_per_trial or max(1, (os.cpu_count() or 1) // workers)
    if not cpus > 0:
        raise UserError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
    with ray_session(num_cpus=None if address else math.ceil(workers * cpus), address=address,
                     verbose=verbose) as started:
        gpus = trial_gpus(gpus_per_trial, [cfg.train], available=cluster_gpus())  # before the study is touched
        study = open_study(cfg, storage=open_storage(cfg.storage))
        evaluator = RayEvaluator(cfg, trainer, study, workers=workers, cpus_per_trial=cpus, gpus_per_trial=gpus)
        try:
            return run_search(cfg, trainer, study=study, progress=progress, evaluator=evaluator)
        finally:  # after an error or Ctrl-C: trials left RUNNING are recovered on resume
            if not started:  # a Ray this search started ends its tasks when it stops
                evaluator.pool.cancel()


__all__ = ["RayEvaluator", "run_search_ray"]
