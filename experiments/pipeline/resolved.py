"""What a config resolves to, as data the stages execute: the pipeline resolves
(:mod:`effnas.experiments.pipeline.plan`), the stages (:mod:`effnas.experiments.pipeline.stages`)
run what they are handed and never go back to the config's rules.

* :class:`Runtime`: in this process or as Ray trials, with how many CPUs and GPUs each;
* :class:`SearchPlan`: the search's settings, its trainer and its own supernet, if any;
* :class:`StagePlan`: a training stage's table, its jobs and their shared trainer config
  (:class:`GridPlan` adds what the grid's result file records) and how its trained networks are timed;
* :class:`Plan`: all of them for one experiment (``effnas run --plan`` prints :meth:`Plan.to_dict`).

Each job trains ``{**train_config, model, resolution, seed, out_dir}``
(:func:`effnas.scaling.runner.make_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.experiments.config.schema import ExperimentConfig
from effnas.nas import SearchConfig
from effnas.scaling import Job, Schedule
from effnas.scaling.runner import make_config


@dataclass(frozen=True)
class Runtime:
    """How runs execute: ``workers`` at a time, on the Ray cluster at ``ray_address`` (or a local
    Ray when ``workers > 1``), each with ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs; Ray's
    own output on the console when ``verbose``."""

    workers: int = 1
    ray_address: str | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    verbose: bool = False

    @property
    def ray(self) -> bool:
        return self.workers > 1 or self.ray_address is not None

    def to_dict(self) -> dict[str, Any]:
        return {"workers": self.workers, "ray_address": self.ray_address, "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial, "ray": self.ray, "verbose": self.verbose}


@dataclass(frozen=True)
class SearchPlan:
    """The search of ``cfg`` into ``out``: ``settings`` (the Optuna study, objective and every
    candidate's trainer config), ``trainer`` (``train``, ``proxy``, ``supernet``, ``surrogate`` or
    ``table``), ``supernet`` (what ``[supernet]`` does, or None) and ``own_supernet`` (the
    directory of the search's own supernet, trained before the search, or None). ``cfg`` is the
    config with ``supernet`` estimators pointing at ``own_supernet``."""

    cfg: ExperimentConfig
    out: Path
    settings: SearchConfig
    trainer: str
    runtime: Runtime
    supernet: dict[str, Any] | None = None
    own_supernet: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        sc = self.settings
        cand = sc.spec({}) if sc.space.__class__.__name__ != "CellSpace" else None
        return {"settings": sc.settings(), "strategy": sc.strategy, "trials": sc.trials, "seed": sc.seed,
                "storage": sc.storage, "study": sc.study_name, "prune": sc.prune, "population": sc.population_size,
                "noise_floor": sc.noise_floor, "reevaluate": sc.reevaluate,
                "trainer": self.trainer, "max_failed_share": sc.max_failed_share,
                "candidate": brief(sc.trainer_config(cand)) if cand is not None else sc.train}


@dataclass(frozen=True, eq=False)
class StagePlan:
    """A training stage: ``table`` (the networks and their cost, before training), ``jobs`` (a
    run per network and seed) and ``train_config`` (the trainer config they share)."""

    table: pd.DataFrame
    jobs: list[Job]
    train_config: dict[str, Any]
    runtime: Runtime = field(default_factory=Runtime)
    #: How every trained network is timed after training (a :class:`effnas.search_spaces.timing.Protocol`
    #: as a dict), or None: not timed.
    timing: dict[str, Any] | None = None
    #: Jobs not run because an earlier job of ``jobs`` trains the same network with the same seed:
    #: ``(job, that job's key)``; their rows share its results (:mod:`effnas.experiments.pipeline.shared`).
    shared: list[tuple[Job, str]] = field(default_factory=list)

    def runs(self, out: str | Path) -> list[dict[str, Any]]:
        """Every job's trainer config under ``out`` (the model reduced by :func:`brief`)."""
        return [brief(make_config(j, self.train_config, Path(out), resume=False)) for j in self.jobs]


@dataclass(frozen=True, eq=False)
class GridPlan(StagePlan):
    """The grid's stage: its candidate table holds every candidate (the jobs are the first rung's:
    each distinct network within ``cost_tolerance`` of ``target**phi`` times the MACs of ``base``,
    once); ``schedule`` is its rungs (None: no network to train)."""

    phi: float = 1.0
    target: float = 2.0
    cost_tolerance: float = 0.05
    base: str = ""
    schedule: Schedule | None = None


@dataclass(frozen=True, eq=False)
class Plan:
    """Every stage of one experiment, resolved (:func:`effnas.experiments.pipeline.plan.resolve`)."""

    name: str
    description: str
    runtime: Runtime
    search: SearchPlan | None
    grid: GridPlan
    family: StagePlan
    backbones: dict[str, tuple[str, StagePlan]]  # backbone -> (its directory under backbones/, its stage)
    out: Path

    def to_dict(self) -> dict[str, Any]:
        """What every stage will run, as plain data (``effnas run --plan``)."""
        d: dict[str, Any] = {"name": self.name, "description": self.description, "runtime": self.runtime.to_dict()}
        if self.search is not None:
            d["search"] = self.search.to_dict()
            if self.search.supernet:
                d["supernet"] = self.search.supernet
        d["grid"] = {"candidates": self.grid.table.to_dict(orient="records"), "runs": self.grid.runs(self.out / "grid"),
                     "schedule": self.grid.schedule.to_dict() if self.grid.schedule else None}
        d["family"] = {"members": self.family.table.to_dict(orient="records"),
                       "runs": self.family.runs(self.out / "family"), "timing": self.family.timing,
                       "shared": {j.key: src for j, src in self.family.shared}}
        d["backbones"] = {name: {"networks": sp.table.to_dict(orient="records"),
                                 "runs": sp.runs(self.out / "backbones" / directory)}
                          for name, (directory, sp) in self.backbones.items()}
        return d


def brief(config: dict[str, Any]) -> dict[str, Any]:
    """A per-run config with the model spec reduced to what distinguishes it."""
    m = config.get("model")
    if isinstance(m, dict):
        blocks = sum(int(s.get("repeats", 1)) for s in m.get("stages", []))
        config = {**config, "model": {"name": m.get("name"), "resolution": m.get("resolution"), "blocks": blocks,
                                      "dropout": m.get("dropout"), "drop_connect_rate": m.get("drop_connect_rate"),
                                      "stages": m.get("stages")}}
    return config


__all__ = ["GridPlan", "Plan", "Runtime", "SearchPlan", "StagePlan", "brief"]
