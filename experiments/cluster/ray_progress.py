"""The driver's view of Ray Tune trials, for progress lines: a Tune callback that hands each
trial's start, epoch reports and final report to a :class:`effnas.scaling.runner.RunEvents`.

Every trial already reports each epoch (``final: False``) and its metrics (``final: True``) with
``tune.report`` (:mod:`effnas.experiments.cluster.ray_backend`); Tune delivers those reports to its
callbacks in the driver's process, so nothing is polled and no worker writes to the console. Only
:mod:`effnas.experiments.cluster.ray_backend` imports this module (Ray is slow to import).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from effnas.scaling.runner import RunEvents


class TrialEvents(tune.Callback):
    """Tells ``events`` about the trials of one Tune run, by their index in the configs
    (``index_of`` maps a trial's ``run`` name, its config's one key, to it)."""

    def __init__(self, events: RunEvents, index_of: dict[str, int]) -> None:
        self.events: RunEvents | None = events
        self.index_of = index_of

    # Tune pickles its run config (callbacks included) into the experiment's directory: the
    # events (a console) stay in this process.
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.events, self.index_of = None, {}

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.events is not None:
            self.events.started(self.index_of[trial.config["run"]])

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        if self.events is None:
            return
        index = self.index_of[trial.config["run"]]
        if result.get("final"):
            self.events.finished(index, result)
        else:
            self.events.epoch(index, result)


__all__ = ["TrialEvents"]
