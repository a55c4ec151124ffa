"""The search under Ray Tune: the same Optuna study, trials in parallel (``--workers``, ``--ray-address``).

Tune's ``OptunaSearch`` asks our study (same storage, same sampler) for each trial's choices,
a ``ConcurrencyLimiter`` keeps ``workers`` trials in flight, and in single-objective mode ASHA
(Li et al. 2020) stops weak candidates from their per-epoch reward. Each trial runs on a Ray
worker: it sets torch's threads to the CPUs it was given, computes the candidate's cost, rejects
it under a hard constraint, trains it with the trainer and reports every epoch. The searcher
writes the same trial attributes, states and statuses as the in-process driver
(:mod:`nas.search`), plus the Ray node that ran the trial. Ray itself is started and stopped by
:mod:`experiments.ray_backend` (loopback, explicit CPUs) or joined with ``address``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from experiments.ray_backend import enter_driver_cwd, ray_session, report, set_threads_from_resources
from nas.search import SearchConfig, TrainerFn, finished, open_study, outcome, recover

#: Keys of a trial's final report copied to the Optuna trial's user attributes.
ATTR_KEYS = ("strategy", "blocks", "spec", "params", "macs", "latency_ms", "status", "accuracy", "reward", "w",
             "target", "test_accuracy", "train_seconds", "error", "node", "threads")
SCORE = "score"  # what Tune and ASHA compare: the reward (0 for a candidate without one)


def _search_trial(config: dict[str, Any], *, cfg: SearchConfig, trainer: TrainerFn, cwd: str | None = None) -> None:
    """One Tune trial: ``config`` holds the sampled choices."""
    import ray

    enter_driver_cwd(cwd)
    threads = set_threads_from_resources()
    costs, attrs, train_config = cfg.prepare(dict(config))
    attrs = {**attrs, "node": ray.get_runtime_context().get_node_id(), "threads": threads}
    c = float(costs[cfg.objective.cost_key])
    scores = {SCORE: 0.0, "accuracy_score": 0.0, "cost_score": c}
    if cfg.objective.rejects(c):
        report({**attrs, **scores, "status": "rejected", "state": TrialState.PRUNED.name, "final": True})
        return

    def on_epoch(record: dict[str, Any]) -> bool:
        acc = record.get("val_accuracy")
        if isinstance(acc, int | float) and math.isfinite(acc):
            report({**attrs, SCORE: cfg.objective.reward(acc, c), "accuracy_score": float(acc), "cost_score": c,
                    "epoch": record.get("epoch"), "final": False})
        return False

    try:
        metrics = trainer({**train_config, "threads": threads}, on_epoch=on_epoch)
    except Exception as e:  # a candidate's failure must not end the study
        metrics = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:500]}
    state, _, out = outcome(cfg.objective, costs, metrics)
    if "reward" in out:
        scores.update({SCORE: out["reward"], "accuracy_score": out["accuracy"]})
    report({**attrs, **out, **scores, "state": state.name, "final": True})


def _make_searcher(cfg: SearchConfig, study: optuna.Study, storage: Any, progress: Callable[..., None] | None) -> Any:
    from ray.tune.search.optuna import OptunaSearch

    class StudySearch(OptunaSearch):  # type: ignore[misc]
        """OptunaSearch that records our attributes and states (pruned, rejected, failed)."""

        def save(self, checkpoint_path: str) -> None:
            """No Tune checkpoint of the searcher: the Optuna storage is the source of truth."""

        def restore(self, checkpoint_path: str) -> None:
            """See :meth:`save`."""

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            if not cfg.objective.multi_objective and not result.get("final") and math.isfinite(result.get(SCORE, 0.0)):
                super().on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            ot_trial = self._ot_trials[trial_id]
            r = result or {}
            for k in ATTR_KEYS:
                if r.get(k) is not None:
                    ot_trial.set_user_attr(k, r[k])
            values: list[float] | None = None
            if error or not r:
                state = TrialState.FAIL
                ot_trial.set_user_attr("status", "failed")
            elif r.get("final"):
                state = TrialState[r["state"]]
                if state == TrialState.COMPLETE:
                    values = cfg.objective.values(r["accuracy"], r["cost_score"])
            else:  # stopped by ASHA after an epoch
                state = TrialState.PRUNED
                acc = r.get("accuracy_score")
                ot_trial.set_user_attr("status", "pruned")
                if isinstance(acc, int | float):
                    c = r["cost_score"]
                    for k, v in (("accuracy", acc), ("reward", cfg.objective.reward(acc, c)),
                                 ("w", cfg.objective.exponent(c)), ("target", cfg.objective.target)):
                        ot_trial.set_user_attr(k, v)
            study.tell(ot_trial, values, state=state)
            self._completed_trials.add(trial_id)
            if progress is not None:
                progress(study, study.get_trials(deepcopy=False)[ot_trial.number], len(finished(study)))

    def define(trial: Any) -> None:
        cfg.space.sample(trial)
        trial.set_user_attr("strategy", cfg.strategy)

    obj = cfg.objective
    metric: str | list[str] = SCORE if not obj.multi_objective else ["accuracy_score", "cost_score"]
    mode: str | list[str] = "max" if not obj.multi_objective else ["max", "min"]
    return StudySearch(define, metric=metric, mode=mode, sampler=study.sampler, study_name=cfg.study_name,
                       storage=storage)


def run_search_ray(cfg: SearchConfig, trainer: TrainerFn, *, workers: int, address: str | None = None,
                   cpus_per_trial: float | None = None, out_dir: str | None = None,
                   progress: Callable[..., None] | None = None) -> optuna.Study:
    """Run the study's remaining trials as Ray Tune trials, ``workers`` at a time; returns the study.

    Starts (and stops) a local Ray on loopback with ``workers * cpus_per_trial`` CPUs, or joins the
    cluster at ``address``. ``cpus_per_trial`` defaults to this machine's cores / workers.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    from nas.search import Progress, open_storage

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    cpus = cpus_per_trial or max(1, (os.cpu_count() or 1) // workers)
    if not cpus > 0:
        raise ValueError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
    storage = open_storage(cfg.storage)
    study = open_study(cfg, storage=storage)
    recover(study)
    remaining = cfg.trials - len(finished(study))
    if progress is None:
        progress = Progress(cfg.trials, cfg.trials - remaining)
    if remaining <= 0:
        return study
    searcher = ConcurrencyLimiter(_make_searcher(cfg, study, storage, progress), max_concurrent=workers)
    scheduler: Any = FIFOScheduler()
    if cfg.prune and not cfg.objective.multi_objective and cfg.epochs > 1:
        # Rungs at epochs 1, 2, 4, ...; the final report is iteration epochs + 1.
        scheduler = ASHAScheduler(metric=SCORE, mode="max", max_t=cfg.epochs + 1, grace_period=1, reduction_factor=2)
    with ray_session(num_cpus=None if address else math.ceil(workers * cpus), address=address):
        trial = tune.with_parameters(_search_trial, cfg=cfg, trainer=trainer, cwd=os.getcwd())
        trainable = tune.with_resources(trial, {"cpu": cpus})
        with tempfile.TemporaryDirectory(prefix="effnas-search-") as tmp:
            where = os.path.abspath(os.path.join(out_dir, "ray")) if out_dir else tmp
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=remaining),
                run_config=tune.RunConfig(name=f"{cfg.study_name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                          storage_path=where, verbose=0),
            )
            tuner.fit()
    return study


def trial_nodes(study: optuna.Study) -> dict[str, int]:
    """Finished trials per Ray node id."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        node = t.user_attrs.get("node")
        if node:
            counts[node] = counts.get(node, 0) + 1
    return counts


__all__ = ["run_search_ray", "trial_nodes"]
