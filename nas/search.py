"""The search driver: one loop for every way of running trials, one Optuna study as the record.

The driver owns the sampler (random, TPE, NSGA-II, evolution, RL all keep their state here): it
asks the study for a trial, samples its choices from the space, and hands ``(number, params)``
to an :class:`Evaluator`, which runs :func:`effnas.nas.trial.evaluate_trial` on it: in this process
(:class:`InProcess`, the default) or in Ray tasks (``effnas.experiments.cluster.search_ray``), ``slots`` trials
at a time. Both write the same attributes and states into the study with the same pruner, so a
search's results do not depend on where its trials ran.

A study is resumable: trials left RUNNING by a killed process are marked FAIL
(``status=interrupted``) and not counted, and the search runs until ``trials`` trials have
finished (COMPLETE, PRUNED, or FAIL for a candidate's own failure). Resuming assumes no other
process is working on the same study at the time.

The search stops early, with the traceback, when evaluating a trial raises (a bug, or a
``UserError`` for a bad trainer config): such a trial is FAIL with ``status=error`` and does not
count. It stops with :class:`SearchFailed` once more than ``max_failed_share`` of the requested
trials failed or diverged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from effnas.nas.measure import ACCURACY, SCORE
from effnas.nas.study import (
    COUNTED,
    SearchConfig,
    TrainerFn,
    finished,
    make_pruner,
    open_storage,
    open_study,
    recover,
)
from effnas.nas.trial import candidate_attrs, evaluate_trial, measure, outcome
from effnas.search_spaces.common.progress import Console, duration, eta, run_line

ProgressFn = Callable[[optuna.Study, FrozenTrial | None, int], None]


class Evaluator(Protocol):
    """Runs :func:`effnas.nas.trial.evaluate_trial` on trials the driver submits, ``slots`` at a time."""

    slots: int

    def submit(self, number: int, params: dict[str, Any]) -> None:
        """Start evaluating trial ``number`` (RUNNING in the study) with its sampled ``params``."""

    def wait(self) -> list[int]:
        """Block until at least one submitted trial is finished; their numbers. Raises what an
        evaluation raised."""
        ...


class InProcess:
    """Evaluate each submitted trial in this process, one at a time, on the study's own storage."""

    slots = 1

    def __init__(self, cfg: SearchConfig, trainer: TrainerFn, storage: BaseStorage) -> None:
        self.cfg, self.trainer, self.storage = cfg, trainer, storage
        self._pending: list[tuple[int, dict[str, Any]]] = []

    def submit(self, number: int, params: dict[str, Any]) -> None:
        self._pending.append((number, params))

    def wait(self) -> list[int]:
        number, params = self._pending.pop(0)
        evaluate_trial(self.cfg, self.storage, number, params, self.trainer)
        return [number]


class SearchFailed(RuntimeError):
    """More than ``max_failed_share`` of the requested trials failed; ``study`` holds them."""

    def __init__(self, message: str, study: optuna.Study) -> None:
        super().__init__(message)
        self.study = study


def check_failures(cfg: SearchConfig, study: optuna.Study) -> None:
    """Raise :class:`SearchFailed`, naming the trials' errors, past ``cfg.max_failed_share``."""
    failed = [t for t in finished(study) if t.state == TrialState.FAIL]
    if len(failed) <= cfg.max_failed_share * cfg.trials:
        return
    errors: dict[str, list[int]] = {}
    for t in failed:
        a = t.user_attrs
        errors.setdefault(f"{a.get('status', 'failed')}: {a.get('error', 'no error message')}", []).append(t.number)
    named = "; ".join(f"trial{'s' if len(n) > 1 else ''} {', '.join(map(str, n[:5]))}{' ...' if len(n) > 5 else ''} {e}"
                      for e, n in sorted(errors.items(), key=lambda x: -len(x[1]))[:3])
    raise SearchFailed(f"search stopped: {len(failed)} of {cfg.trials} trials failed (max_failed_share "
                       f"{cfg.max_failed_share}): {named}", study)


def best_reward(study: optuna.Study) -> float | None:
    rewards = [t.user_attrs["reward"] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if "reward" in t.user_attrs]
    return max(rewards) if rewards else None


class Progress:
    """One line per finished trial on stderr, the line of every batch of runs
    (:func:`effnas.search_spaces.common.progress.run_line`): trials done, the trial's outcome,
    validation accuracy (trained) or ``score`` (estimated: :mod:`effnas.nas.measure`) and wall
    time, its reward and MACs, the best reward so far, and the ETA from the mean trial time with
    ``workers`` trials at a time."""

    def __init__(self, total: int, done: int, *, stream: Any = None, workers: int = 1) -> None:
        self.total, self.workers = total, max(1, workers)
        self.console = Console(stream if stream is not None else sys.stderr, live=False)
        self.durations: list[float] = []

    def __call__(self, study: optuna.Study, trial: FrozenTrial | None, done: int) -> None:
        best = best_reward(study)
        label, status, accuracy, seconds, about = "trial", None, None, None, ""
        if trial is not None:
            a = trial.user_attrs
            label = f"trial {trial.number} {a.get('strategy', '')}".rstrip()
            status = a.get("status", trial.state.name.lower())
            scored = SCORE in a  # an estimate is a score, never an accuracy (effnas.nas.measure)
            accuracy = None if scored else a.get(ACCURACY)
            seconds = trial.duration.total_seconds() if trial.duration is not None else None
            if seconds is not None:
                self.durations.append(seconds)
            about = ((f"score {a[SCORE]:.4f}  " if scored and a[SCORE] is not None else "")
                     + (f"reward {a['reward']:.4f}  " if "reward" in a else "")
                     + f"MACs {a.get('macs', 0) / 1e6:.2f}M"
                     + (f"  step {a['train_step_ms']:.1f} ms" if a.get("train_step_ms") is not None else "") + " | ")
        left = eta(self.durations, self.total - done, self.workers)
        self.console.line(run_line(done, self.total, label, status=status, accuracy=accuracy, seconds=seconds,
                                   tail=f"{about}best reward {best if best is None else round(best, 4)} | "
                                   f"ETA {duration(left)}"))


def run_search(cfg: SearchConfig, trainer: TrainerFn, *, study: optuna.Study | None = None,
               progress: ProgressFn | None = None, evaluator: Evaluator | None = None) -> optuna.Study:
    """Run trials until ``cfg.trials`` have finished; returns the study.

    ``evaluator`` runs the trials (default: :class:`InProcess`); the driver keeps its ``slots``
    trials in flight and samples each new trial after the previous ones were submitted.

    >>> from effnas.nas import Objective, SearchConfig, SurrogateTrainer, get_space
    >>> cfg = SearchConfig(get_space("tiny"), Objective(target=2e6), strategy="random", trials=3)
    >>> study = run_search(cfg, SurrogateTrainer(seed=0), progress=lambda *a: None)
    >>> len(finished(study))
    3
    """
    study = study if study is not None else open_study(cfg)
    recover(study)
    ev = evaluator if evaluator is not None else InProcess(cfg, trainer, study._storage)
    done = len(finished(study))
    progress = progress if progress is not None else Progress(cfg.trials, done, workers=ev.slots)
    in_flight = 0
    while done < cfg.trials or in_flight:
        while in_flight < ev.slots and done + in_flight < cfg.trials:
            trial = study.ask()
            ev.submit(trial.number, cfg.space.sample(trial))
            in_flight += 1
        for number in ev.wait():
            in_flight -= 1
            done = len(finished(study))
            progress(study, study.get_trials(deepcopy=False)[number], done)
            check_failures(cfg, study)
    return study


__all__ = ["COUNTED", "Evaluator", "InProcess", "Progress", "SearchConfig", "SearchFailed", "candidate_attrs",
           "check_failures", "evaluate_trial", "finished", "make_pruner", "measure", "open_storage", "open_study",
           "outcome", "recover", "run_search"]
