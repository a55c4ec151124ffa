"""effnas: neural architecture search and compound scaling in the style of MnasNet and EfficientNet.

``import effnas`` gives the main jobs as plain functions (docs/python.md); each resolves its arguments
into the typed :class:`~effnas.experiments.config.schema.ExperimentConfig` the ``effnas`` command
builds from its flags, then calls the same stage function, so a call and the command it mirrors
train the same runs and write the same files::

    cfg = effnas.load_config("demo", overrides=["search.trials=10"])
    found = effnas.search(cfg, out="runs/search")          # SearchResult: trials, best spec
    members = effnas.family(cfg, coefficients=(1.2, 1.1, 1.15))   # the cost table, nothing trained

Arguments: ``config`` is an :class:`ExperimentConfig`, a TOML path, a preset name (``demo``,
``cifar10``, ``paper``) or ``None`` (the defaults); the keyword arguments set the config keys named
in each docstring, then ``overrides`` (``"section.key=value"`` strings, as ``--set``) apply. Bad
input raises :class:`UserError` (a ``ValueError``) naming the value and the fix.

The full API lives in the sub-packages: :mod:`effnas.experiments.config` (configs),
:mod:`effnas.experiments.pipeline` (stages and plans), :mod:`effnas.scaling`, :mod:`effnas.nas`,
:mod:`effnas.search_spaces`.

The functions import what they use inside them: every ``import effnas.<anything>`` runs this file
first, so it loads neither torch, pandas, optuna nor Ray (seconds) until a function is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from effnas.experiments.config.schema import ExperimentConfig
    from effnas.scaling import Coefficients, GridResult
    from effnas.search_spaces import NetworkSpec
    from effnas.search_spaces.common.errors import UserError

_PACKAGES = ("experiments", "nas", "scaling", "search_spaces")

__all__ = [
    "RunResult", "SearchResult", "UserError", "build", "family", "grid", "load_config", "run", "scale_backbone",
    "search", "spec", "train",
]


def __getattr__(name: str) -> Any:
    """``effnas.UserError`` and the sub-packages (``effnas.scaling``, ...), imported when first used
    (effnas.search_spaces imports torch)."""
    if name == "UserError":
        from effnas.search_spaces.common.errors import UserError

        return UserError
    if name in _PACKAGES:
        return importlib.import_module(f"effnas.{name}")
    raise AttributeError(f"module 'effnas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_PACKAGES})


# -- arguments into the typed config ---------------------------------------------------------------

def load_config(config: ExperimentConfig | str | Path | None = None, *,
                overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The typed experiment config: ``config`` as in the module docstring, then ``overrides``.

    >>> cfg = load_config("demo", overrides=["family.seeds=3"])
    >>> cfg.name, cfg.family.seeds
    ('demo', (0, 1, 2))
    """
    from effnas.experiments.config.schema import ExperimentConfig
    from effnas.experiments.config.schema import load_config as load

    cfg = config if isinstance(config, ExperimentConfig) else load(config)
    return cfg.with_overrides(tuple(overrides)) if overrides else cfg


def _config(config: ExperimentConfig | str | Path | None, overrides: Sequence[str],
            values: dict[str, Any]) -> ExperimentConfig:
    """``config``, then the keyword arguments (``values`` by dotted key; None: not given), then
    ``overrides``: the order of ``--config``, flags and ``--set`` on the command line."""
    cfg = load_config(config)
    cfg = cfg.with_values(values, source="the arguments")
    return cfg.with_overrides(tuple(overrides)) if overrides else cfg


def _model(model: str | Path | NetworkSpec | None) -> tuple[str | None, NetworkSpec | None]:
    """A model argument as ``train.model`` (a name or path) or as a spec object."""
    if model is None or isinstance(model, str | Path):
        return (str(model) if model is not None else None), None
    return None, model


def _coefficients(c: Coefficients | tuple[float, float, float] | str | Path | None,
                  cfg: ExperimentConfig) -> Coefficients | None:
    """Coefficients from any of their forms, checked against ``grid.target`` as ``--alpha`` is."""
    from effnas.scaling import Coefficients, check_product

    if c is None:
        return None
    coeffs = c if isinstance(c, Coefficients) else Coefficients.load(c) if isinstance(c, str | Path) \
        else Coefficients(*c)
    check_product(coeffs, target=cfg.grid.target)
    return coeffs


# -- models ----------------------------------------------------------------------------------------

def spec(model: str | Path | NetworkSpec, *, num_classes: int | None = None,
         resolution: int | None = None) -> NetworkSpec:
    """The :class:`~effnas.search_spaces.NetworkSpec` of a registered name or a spec ``.json``
    (``effnas models show``), with its class count and input pixels replaced when given.

    >>> s = spec("tiny", num_classes=10, resolution=16)
    >>> s.name, s.num_classes, s.resolution
    ('tiny', 10, 16)
    """
    import dataclasses

    from effnas.search_spaces import NetworkSpec, load_spec

    if isinstance(model, NetworkSpec):
        changes = {k: v for k, v in (("num_classes", num_classes), ("resolution", resolution)) if v is not None}
        return dataclasses.replace(model, **changes) if changes else model  # type: ignore[arg-type]
    return load_spec(str(model), num_classes=num_classes, resolution=resolution)


def build(model: str | Path | NetworkSpec, *, num_classes: int | None = None,
          resolution: int | None = None) -> torch.nn.Module:
    """The PyTorch network of :func:`spec` (random initialisation, training mode)."""
    from effnas.search_spaces import build as build_network

    return build_network(spec(model, num_classes=num_classes, resolution=resolution))


# -- the jobs --------------------------------------------------------------------------------------

def train(config: ExperimentConfig | str | Path | None = None, *, model: str | Path | NetworkSpec | None = None,
          dataset: str | None = None, epochs: int | None = None, seed: int | None = None,
          out: str | Path | None = None, resume: bool = False, quiet: bool = False,
          overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train one model (``effnas train``): ``[data]`` and ``[train]`` of the config with ``model``
    [train.model], ``dataset`` [data.dataset], ``epochs`` [train.epochs], ``seed`` [run.seed]. With
    ``out`` the run directory is checked, locked and written (resumable); without it nothing is
    written. Returns the metrics (``status``, ``val_accuracy``, ``test_accuracy``, ``params``,
    ``macs``, ...: docs/architecture.md, the trainer contract)."""
    from effnas.experiments.cli.commands.train import preflight
    from effnas.experiments.config.schema import JobConfig
    from effnas.experiments.train import guard
    from effnas.experiments.train.loop import train as train_job

    name, net = _model(model)
    cfg = _config(config, overrides, {"train.model": name, "data.dataset": dataset, "train.epochs": epochs,
                                      "run.seed": seed})
    job = JobConfig.make(cfg.data, cfg.train, seed=cfg.run.seed, out_dir=str(out) if out is not None else None,
                         resume=resume, quiet=quiet, **({"model": net.to_dict()} if net is not None else {}))
    if job.out_dir is None:
        return train_job(job)
    preflight(job)
    with guard.Lock(job.out_dir):
        return train_job(job)


@dataclass(frozen=True)
class SearchResult:
    """A finished search: ``summary`` (trial counts, best reward, study and storage), ``trials``
    (``trials.csv``, a row per trial) and ``best`` (``best_spec.json``; None on a benchmark table)."""

    out: Path
    summary: dict[str, Any]
    trials: pd.DataFrame
    best: NetworkSpec | None


def search(config: ExperimentConfig | str | Path | None = None, *, out: str | Path, space: str | None = None,
           strategy: str | None = None, trials: int | None = None, target: float | None = None,
           estimator: str | None = None, trainer: str | None = None, dataset: str | None = None,
           epochs: int | None = None, seed: int | None = None, resume: bool = False, quiet: bool = False,
           overrides: Sequence[str] = ()) -> SearchResult:
    """The architecture search (``effnas search``) into ``out``: ``space`` [search.space], ``strategy``
    [search.strategy], ``trials`` [search.trials], ``target`` MACs [search.target], ``estimator``
    [search.estimator], ``trainer`` [search.trainer], ``dataset`` [data.dataset], ``epochs`` per
    candidate [search.train.epochs], ``seed`` [run.seed]. Raises
    :class:`effnas.nas.search.SearchFailed` when no trial completed."""
    import pandas as pd

    from effnas.experiments.pipeline import plan, stages
    from effnas.search_spaces import NetworkSpec

    cfg = _config(config, overrides, {"search.space": space, "search.strategy": strategy, "search.trials": trials,
                                      "search.target": target, "search.estimator": estimator,
                                      "search.trainer": trainer, "data.dataset": dataset,
                                      "search.train.epochs": epochs, "run.seed": seed})
    summary = stages.search(plan.resolve_search(cfg, out, resume=resume), quiet=quiet)
    path = Path(out)
    best = path / "best_spec.json"
    return SearchResult(out=path, summary=summary, trials=pd.read_csv(path / "trials.csv"),
                        best=NetworkSpec.load(best) if best.is_file() else None)


def grid(config: ExperimentConfig | str | Path | None = None, *, out: str | Path,
         base: str | Path | NetworkSpec | None = None, dataset: str | None = None, epochs: int | None = None,
         seeds: int | Sequence[int] | None = None, resume: bool = False,
         overrides: Sequence[str] = ()) -> GridResult:
    """The alpha, beta, gamma grid search at ``grid.phi`` (``effnas grid``) into ``out``: ``base``
    [train.model, or a spec], ``dataset`` [data.dataset], ``epochs`` [grid.epochs], ``seeds`` (a
    count or a list) [grid.seeds]; successive halving and the budget through ``overrides``
    (``grid.halving=true``, ``grid.eta``, ``grid.rungs``, ``grid.budget_epochs``). Returns
    :class:`effnas.scaling.GridResult`: ``table`` (``grid.csv``), ``best`` (the coefficients the pick
    rule chose, also in ``coefficients.json``), ``ties`` (tie set, rule, noise floor) and ``schedule``."""
    from effnas.experiments.pipeline import plan, stages

    name, net = _model(base)
    cfg = _config(config, overrides, {"train.model": name, "data.dataset": dataset, "grid.epochs": epochs,
                                      "grid.seeds": _seeds(seeds)})
    return stages.grid(cfg, plan.grid_plan(cfg, plan.base_spec(cfg, net)), out, resume=resume)


def _seeds(seeds: int | Sequence[int] | None) -> int | tuple[int, ...] | None:
    return seeds if seeds is None or isinstance(seeds, int) else tuple(seeds)


def family(config: ExperimentConfig | str | Path | None = None, *,
           coefficients: Coefficients | tuple[float, float, float] | str | Path | None = None,
           official: bool | None = None, base: str | Path | NetworkSpec | None = None,
           phis: Sequence[int] | None = None, dataset: str | None = None, epochs: int | None = None,
           seeds: int | Sequence[int] | None = None, out: str | Path | None = None, train: bool = False,
           resume: bool = False, overrides: Sequence[str] = ()) -> pd.DataFrame:
    """The compound-scaled family (``effnas family``): members ``phis`` [family.phis] of ``base``
    [train.model, or a spec] scaled with ``coefficients`` and/or the ``official`` B0..B7 table
    [family.official], with single-dimension baselines [family.single_dimension]. Without ``train``
    the cost table of every network (a row each; ``out``, when given, gets ``members.csv`` and
    the specs); with ``train`` every network trains into ``out`` (``dataset`` [data.dataset],
    ``epochs`` [family.epochs], ``seeds`` [family.seeds]) and the table has a row per run and seed
    with its metrics (``family.csv``)."""
    from effnas.experiments.pipeline import plan, stages
    from effnas.search_spaces.common.errors import UserError

    name, net = _model(base)
    cfg = _config(config, overrides, {"train.model": name, "family.official": official,
                                      "family.phis": tuple(phis) if phis is not None else None,
                                      "data.dataset": dataset, "family.epochs": epochs,
                                      "family.seeds": _seeds(seeds)})
    coeffs = _coefficients(coefficients, cfg)
    if coeffs is None and not cfg.family.official:
        raise UserError("give coefficients=(alpha, beta, gamma) or a coefficients.json, or official=True")
    fp = plan.family_plan(cfg, plan.base_spec(cfg, net), coeffs)
    if train:
        if out is None:
            raise UserError("train=True needs out=DIR for the run directories and family.csv")
        stages.preflight(cfg, out, fp.jobs, fp.train_config)
        return stages.family(cfg, fp, out, resume=resume)
    if out is not None:
        stages.write_plan(fp, out, "members.csv")
    return fp.table


def scale_backbone(backbone: str, config: ExperimentConfig | str | Path | None = None, *,
                   coefficients: Coefficients | tuple[float, float, float] | str | Path | None = None,
                   phi: int | None = None, dataset: str | None = None, epochs: int | None = None,
                   seeds: int | Sequence[int] | None = None, out: str | Path | None = None, train: bool = False,
                   resume: bool = False, overrides: Sequence[str] = ()) -> pd.DataFrame:
    """A backbone (``resnet18``, ``resnet50``, ``mobilenet_v1``, ``mobilenet_v2``, a registered model
    or a spec ``.json``) scaled at ``phi`` [backbones.phi] with ``coefficients`` (default: the
    paper's 1.2, 1.1, 1.15), and depth-, width- and resolution-only scaling at its MACs
    [backbones.single_dimension] (``effnas scale-backbone``). Without ``train`` the cost table
    (``out``, when given, gets ``networks.csv`` and the specs); with ``train`` every network trains
    into ``out`` (``dataset``, ``epochs`` [backbones.epochs], ``seeds`` [family.seeds]) and the
    table has a row per run and seed (``backbones.csv``)."""
    from effnas.experiments.pipeline import plan, stages
    from effnas.scaling import PAPER
    from effnas.search_spaces.common.errors import UserError

    cfg = _config(config, overrides, {"backbones.models": (backbone,), "backbones.phi": phi,
                                      "data.dataset": dataset, "backbones.epochs": epochs,
                                      "family.seeds": _seeds(seeds)})
    coeffs = _coefficients(coefficients, cfg) or PAPER
    bp = plan.backbone_plan(cfg, backbone, coeffs)
    if train:
        if out is None:
            raise UserError("train=True needs out=DIR for the run directories and backbones.csv")
        stages.preflight(cfg, out, bp.jobs, bp.train_config)
        return stages.backbones(cfg, bp, out, resume=resume)
    if out is not None:
        stages.write_plan(bp, out, "networks.csv")
    return bp.table


@dataclass(frozen=True)
class RunResult:
    """A finished ``effnas run``: its directory, ``report`` (``report.md``; ``report.html`` beside
    it), ``family`` (``family/family.csv``) and ``failed`` (the runs that did not complete; empty
    when all did)."""

    out: Path
    report: Path
    family: pd.DataFrame
    failed: pd.DataFrame


def run(config: ExperimentConfig | str | Path, *, out: str | Path | None = None, resume: bool = False,
        quiet: bool = False, overrides: Sequence[str] = ()) -> RunResult:
    """One experiment end to end (``effnas run``): search -> baseline -> grid -> family ->
    backbones -> curves -> report, into ``out`` [run.out]; ``resume`` continues an interrupted run.
    Stage lines are printed unless ``quiet``."""
    import pandas as pd

    from effnas.experiments.pipeline.run import run_experiment

    cfg = _config(config, overrides, {"run.out": str(out) if out is not None else None})
    path = Path(cfg.run.out)
    report, failed = run_experiment(cfg, out=path, resume=resume, log=(lambda _: None) if quiet else print)
    table = path / "family" / "family.csv"
    return RunResult(out=path, report=report, family=pd.read_csv(table) if table.is_file() else pd.DataFrame(),
                     failed=failed)
