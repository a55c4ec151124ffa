"""The experiment's stages: search, grid, family, backbones, each executing a resolved plan.

``effnas search|grid|family|scale-backbone`` and ``effnas run`` resolve their
:class:`~effnas.experiments.config.schema.ExperimentConfig` (built from flags, ``--set`` and a TOML file) with
:mod:`effnas.experiments.pipeline.plan` and call these same functions with the result
(:mod:`effnas.experiments.pipeline.resolved`), so a stage behaves the same by hand and in the pipeline,
and trains exactly what the plan says. Each training stage returns its table; rows whose ``status`` is not
``completed`` are failures, which :func:`failures` lists and the commands turn into exit code 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from effnas.experiments.cluster.ray_backend import executor as ray_executor
from effnas.experiments.cluster.ray_session import probe_address, require_ray
from effnas.experiments.cluster.resources import check_local as check_gpus_here
from effnas.experiments.cluster.search_ray import run_search_ray
from effnas.experiments.config.schema import ExperimentConfig, JobConfig
from effnas.experiments.config.stages import estimator_kind
from effnas.experiments.data.datasets import check_dataset
from effnas.experiments.estimators.proxy import Prefiltered, ProxyTrainer
from effnas.experiments.estimators.supernet import CHECKPOINT, SupernetTrainer, train_supernet
from effnas.experiments.estimators.supernet import preflight as supernet_preflight
from effnas.experiments.pipeline.resolved import GridPlan, Runtime, SearchPlan, StagePlan
from effnas.experiments.pipeline.shared import with_aliases
from effnas.experiments.pipeline.timing import time_networks
from effnas.experiments.train import guard
from effnas.experiments.train.devices import resolve_device
from effnas.experiments.train.loop import train_fn
from effnas.nas import (
    BenchmarkTrainer,
    CellSpace,
    SearchSpace,
    SurrogateTrainer,
    get_space,
    open_storage,
    open_study,
    run_search,
    write_results,
)
from effnas.nas.measure import reward_formula
from effnas.nas.reevaluate import reevaluate, write_search_results
from effnas.nas.search import SearchFailed
from effnas.nas.trial import verify_latency
from effnas.scaling import GridResult, run_jobs
from effnas.scaling.grid import train_grid
from effnas.scaling.record import COMPLETED
from effnas.scaling.runner import ExecutorFn, RunProgress, TrainerFn
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_json, atomic_write
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.common.extras import require


def trainer(cfg: ExperimentConfig | None = None, name: str = "train") -> TrainerFn:
    """``effnas.experiments.train.loop.train_fn``; for a search (``cfg`` given) the trainer ``name``
    its plan resolved (:func:`effnas.experiments.pipeline.plan.search_trainer`): the surrogate, a benchmark
    table's lookup or a zero-cost proxy, behind ``search.prefilter``'s proxy when it is set."""
    fn = _trainer(cfg, name)
    if cfg is not None and cfg.search.prefilter is not None:
        reference = Prefiltered.reference_size(cfg.search.prefilter_keep)
        return Prefiltered(fn, estimator(cfg, cfg.search.prefilter, reference=reference))
    return fn


def estimator(cfg: ExperimentConfig, ref: str, *, reference: int | None = None) -> TrainerFn:
    """The candidate trainer of an estimator reference (``proxy:NAME`` or ``supernet:DIR``) over
    ``search.space``: the one place a zero-cost proxy or a supernet scorer is built."""
    kind, arg = estimator_kind(ref)
    space = get_space(cfg.search.space)
    extra: dict[str, Any] = {} if reference is None else {"reference": reference}
    if kind == "proxy":
        return ProxyTrainer(space, arg, **extra)
    assert kind == "supernet" and isinstance(space, SearchSpace)
    return SupernetTrainer(arg, space=space, calibration_batches=cfg.supernet.calibration_batches, **extra)


def _trainer(cfg: ExperimentConfig | None, name: str) -> TrainerFn:
    if name in ("proxy", "supernet"):
        assert cfg is not None and cfg.search.estimator is not None
        return estimator(cfg, cfg.search.estimator)
    if name == "surrogate":
        return SurrogateTrainer(seed=cfg.run.seed if cfg is not None else 0)
    if name == "table":
        space = get_space(cfg.search.space if cfg is not None else "")
        assert isinstance(space, CellSpace)
        return BenchmarkTrainer(space.benchmark)

    return train_fn


def executor(cfg: ExperimentConfig, rt: Runtime) -> ExecutorFn | None:
    """Ray's ``run_configs`` when the runtime asks for Ray (``run.workers > 1`` or ``run.ray_address``);
    else None (in process)."""
    if not rt.ray:
        check_local(cfg)
        return None

    return ray_executor(rt.workers, rt.ray_address, cpus_per_trial=rt.cpus_per_trial,
                        gpus_per_trial=rt.gpus_per_trial, verbose=rt.verbose)


#: Asked once a stage's checks passed and its directory is locked, right before anything trains
#: (the console's estimate and question): False stops the stage with :class:`Declined`.
GoAhead = Callable[[], bool]


class Declined(RuntimeError):
    """The user answered no to the estimate: nothing was trained or written."""


def ask(go_ahead: GoAhead | None) -> None:
    """Raise :class:`Declined` when ``go_ahead`` says no (None: go ahead)."""
    if go_ahead is not None and not go_ahead():
        raise Declined("nothing trained: the estimate was declined")


def check_local(cfg: ExperimentConfig) -> None:
    """Runs in this process: GPUs asked for must be here (the rule of :mod:`effnas.experiments.cluster.resources`)."""
    check_gpus_here(cfg.run.gpus_per_trial, cfg.train.device, cfg.train.devices)


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a trained table whose run did not complete (with their ``error``)."""
    if table.empty or "status" not in table.columns:
        return table.iloc[0:0]
    return table[table["status"] != COMPLETED]


def format_failures(table: pd.DataFrame, what: str) -> str:
    bad = failures(table)
    if bad.empty:
        return ""
    lines = [f"{len(bad)} of {len(table)} {what} did not complete:"]
    for _, r in bad.iterrows():
        err = r.get("error")
        lines.append(f"  {r.get('run_dir', '')}: {r['status']}" + (f" ({err})" if isinstance(err, str) and err else ""))
    return "\n".join(lines)


# -- search --------------------------------------------------------------------------------------

def search(sp: SearchPlan, *, quiet: bool = False) -> dict[str, Any]:
    """Run the resolved search (:func:`effnas.experiments.pipeline.plan.resolve_search`) into its
    ``out`` (``trials.csv``, ``pareto.json/png``, ``best_spec.json``; with ``search.reevaluate``, the
    top candidates trained again in this process, ``reevaluation.csv``); returns the summary. Checks
    the data set and ``out`` first and locks ``out`` and the study's file. Raises
    :class:`effnas.nas.search.SearchFailed` (exit code 1) when no trial completed (nothing to choose
    from) or more than ``search.max_failed_share`` of the trials failed."""
    cfg = sp.cfg
    if sp.trainer == "train":
        check_dataset(cfg.data.dataset)
    check_cluster(cfg)
    check_latency_runtime(cfg)
    out = guard.out_dir(sp.out)
    sc = sp.settings
    study_lock = guard.study_lock_path(sc.storage, sc.study_name)
    if study_lock is not None and not study_lock.parent.is_dir():
        study_lock = None  # opening the storage fails with its own message
    with guard.Lock(out, what="search directory"), \
            guard.Lock(file=study_lock, what="study storage") if study_lock else contextlib.nullcontext():
        if sp.own_supernet is not None:
            sc = _train_own_supernet(cfg, sc, sp.own_supernet, resume=sc.resume, quiet=quiet)
        _check_supernets(cfg, sc)
        return _search(dataclasses.replace(sp, settings=sc), quiet=quiet)


def _train_own_supernet(cfg: ExperimentConfig, sc: Any, path: Path, *, resume: bool, quiet: bool) -> Any:
    """Train (or, with ``resume``, continue) the search's own supernet at the candidates' resolution.
    A search stopped while its supernet trained has no study yet: ``resume`` then starts it."""
    if (path / CHECKPOINT).exists() and not resume:
        raise UserError(f"{path} holds the supernet of an earlier search: continue with --resume, or give another "
                         "--out")
    check_dataset(cfg.data.dataset)
    net_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, resolution=sc.resolution))
    m = train_supernet(net_cfg, path, resume=resume, progress=not quiet)
    if not quiet:
        print(f"supernet of {cfg.search.space}: {m['epochs']} epochs in {path}", file=sys.stderr)
    if resume:
        names = {s.study_name for s in optuna.get_all_study_summaries(open_storage(sc.storage))}
        if sc.study_name not in names:
            sc = dataclasses.replace(sc, resume=False)
    return sc


def _check_supernets(cfg: ExperimentConfig, sc: Any) -> None:
    for ref in (cfg.search.estimator, cfg.search.prefilter):
        kind, path = estimator_kind(ref) if ref is not None else ("train", "")
        if kind == "supernet":
            supernet_preflight(path, space=sc.space, resolution=sc.resolution, dataset=cfg.data.dataset,
                               seed=cfg.run.seed, val_fraction=cfg.data.val_fraction)


def _search(sp: SearchPlan, *, quiet: bool) -> dict[str, Any]:
    cfg, sc, out, rt = sp.cfg, sp.settings, sp.out, sp.runtime
    fn = trainer(cfg, sp.trainer)
    progress = (lambda *a: None) if quiet else None
    if sp.trainer == "train" and (not rt.ray or sc.reevaluate):  # in this process: the trials, or the re-evaluation
        check_local(cfg)
    if not quiet:
        space = sc.space
        o = sc.objective
        goal = (f"objectives {sc.measure} up, {o.metric} down" if o.multi_objective else  # a proxy's value is a score
                f"reward = {reward_formula(sc.measure, o.cost_key, params=bool(o.v))}")
        p0 = f", P0 = {o.params_target:.4g} params" if o.v else ""
        print(f"space {space.name}: {space.size:.3g} networks; T = {o.target:.4g} {o.metric}{p0}, "
              f"strategy {sc.strategy}, {sc.trials} trials; {goal}", file=sys.stderr)
    try:
        if rt.ray:
            study = run_search_ray(sc, fn, workers=rt.workers, address=rt.ray_address,
                                   cpus_per_trial=rt.cpus_per_trial, gpus_per_trial=rt.gpus_per_trial,
                                   progress=progress, verbose=rt.verbose)
        else:
            study = run_search(sc, fn, study=open_study(sc), progress=progress)
    except SearchFailed as e:  # the trials so far are written, with their errors, before the stop
        write_results(e.study, out, sc.objective)
        raise
    # after either path, in this process; a pre-filter's candidates passed it already
    again = reevaluate(sc, study, fn.unfiltered if isinstance(fn, Prefiltered) else fn,
                       progress=None if quiet else lambda line: print(line, file=sys.stderr, flush=True))
    summary = write_search_results(study, out, sc.objective, again)
    summary.update(study=sc.study_name, storage=sc.storage, strategy=sc.strategy, out=str(out))
    if sc.objective.latency_table is not None and summary.get("best_trial") is not None:
        check = verify_latency(sc.objective, NetworkSpec.load(Path(out) / "best_spec.json"))
        atomic_json(Path(out) / "latency_check.json", {"trial": summary["best_trial"], **check}, indent=2)
        summary["latency_check"] = check
        if not quiet:
            print(f"winner #{summary['best_trial']}: the latency table predicted {check['predicted_ms']:.2f} ms, "
                  f"measured {check['measured_ms']:.2f} ms ({100 * check['error']:+.1f} %)", file=sys.stderr)
    if again is not None and not quiet:
        print(again.line(), file=sys.stderr, flush=True)
    if not summary.get("completed"):
        raise SearchFailed("no search trial completed (every one was pruned, rejected or failed: see "
                           f"{out / 'trials.csv'}): widen search.target or the space, and re-run with --resume", study)
    return summary


# -- grid ----------------------------------------------------------------------------------------

def grid(cfg: ExperimentConfig, gp: GridPlan, out: str | Path, *, resume: bool = False,
         progress: RunProgress | None = None, go_ahead: GoAhead | None = None) -> GridResult:
    """Train the comparable candidates of the resolved grid (:func:`effnas.experiments.pipeline.plan.grid_plan`)
    in its rungs, write ``grid.csv`` (every candidate, with realised cost and, for those not
    comparable, the reason; the trained ones with their interval and tie flag) and ``coefficients.json``.
    ``progress`` hears of every run (a console's board); ``go_ahead`` as in :func:`ask`."""
    if not gp.jobs:
        raise UserError("no grid candidate is within grid.cost_tolerance of the target cost: widen "
                         "grid.cost_tolerance or grid.tolerance (see the table from --dry-run)")
    out = preflight(cfg, out, gp.jobs, gp.train_config)
    with guard.Lock(out, what="grid directory"):
        ex = executor(cfg, gp.runtime)
        ask(go_ahead)
        return train_grid(gp.table, gp.jobs, trainer(), train_config=gp.train_config, out_dir=out,
                          executor=ex, resume=resume, phi=gp.phi, target=gp.target,
                          cost_tolerance=gp.cost_tolerance, base=gp.base, plan=gp.schedule, progress=progress)


# -- family and backbones ---------------------------------------------------------------------

def train_table(cfg: ExperimentConfig, sp: StagePlan, out: str | Path, *, resume: bool, name: str,
                progress: RunProgress | None = None, go_ahead: GoAhead | None = None) -> pd.DataFrame:
    """Check, then train the stage's jobs into ``out`` (locked), time them when the plan says how
    (:func:`effnas.experiments.pipeline.timing.time_networks`) and write ``out/name`` (a row per job and seed);
    ``progress`` hears of every run; ``go_ahead`` as in :func:`ask`."""
    out = preflight(cfg, out, sp.jobs, sp.train_config)
    if sp.timing is not None and sp.timing["runtime"] == "onnxruntime":
        for module in ("onnx", "onnxruntime"):
            require(module, "family.latency_runtime = 'onnxruntime'", "set family.latency_runtime = 'torch'")
    with guard.Lock(out):
        ex = executor(cfg, sp.runtime)
        ask(go_ahead)
        save_specs(sp.jobs, out)
        trained = run_jobs(sp.jobs, trainer(), train_config=sp.train_config, out_dir=out, executor=ex,
                           resume=resume, defaults=JobConfig().to_dict(), progress=progress)
        if sp.timing is not None:  # after every run ended: nothing of the stage trains while it is timed
            trained = time_networks(trained, sp.jobs, sp.timing)
        trained = with_aliases(trained, sp.jobs, sp.shared)
        write_csv(trained, out / name)
    return trained


def check_cluster(cfg: ExperimentConfig) -> None:
    """Ray runs need Ray installed (``effnas[ray]``); a ``run.ray_address`` that does not answer
    fails within ``ray_session.CONNECT_TIMEOUT`` s."""
    require_ray(cfg.run.workers, cfg.run.ray_address)
    if cfg.run.ray_address:
        probe_address(cfg.run.ray_address)


def check_latency_runtime(cfg: ExperimentConfig) -> None:
    """A search timed in onnxruntime needs onnx and onnxruntime installed (``effnas[deploy]``)."""
    if cfg.search.latency_runtime == "onnxruntime" and cfg.search.trials:
        for module in ("onnx", "onnxruntime"):
            require(module, "search.latency_runtime = 'onnxruntime' (--latency-runtime)", "use --latency-runtime torch")


def preflight(cfg: ExperimentConfig, out: str | Path, jobs: list, tc: dict[str, Any]) -> Path:
    """What can be checked before the first run trains (exit code 2 rather than failed runs):
    the data set's name and layout, the output directory, and that the largest network fits in
    memory at its resolution and batch."""
    check_dataset(cfg.data.dataset)
    check_cluster(cfg)
    path = guard.out_dir(out)
    device = resolve_device(tc.get("device", "auto")).type
    if jobs:
        big = max(jobs, key=lambda j: guard.memory_estimate(j.spec, batch_size=tc["batch_size"],
                                                            eval_batch_size=tc["eval_batch_size"]))
        guard.check_memory(big.spec, batch_size=tc["batch_size"], eval_batch_size=tc["eval_batch_size"],
                           device=device, what=f"{big.spec.name} ({big.key})")
    return path


def family(cfg: ExperimentConfig, sp: StagePlan, out: str | Path, *, resume: bool = False,
           progress: RunProgress | None = None, go_ahead: GoAhead | None = None) -> pd.DataFrame:
    """Train the resolved family (compound, official, single-dimension baselines:
    :func:`effnas.experiments.pipeline.plan.family_plan`); writes ``family.csv``."""
    return train_table(cfg, sp, out, resume=resume, name="family.csv", progress=progress, go_ahead=go_ahead)


def backbones(cfg: ExperimentConfig, sp: StagePlan, out: str | Path, *, resume: bool = False,
              progress: RunProgress | None = None, go_ahead: GoAhead | None = None) -> pd.DataFrame:
    """Train one resolved backbone scaled at ``backbones.phi`` (and its single-dimension variants:
    :func:`effnas.experiments.pipeline.plan.backbone_plan`); writes ``backbones.csv``."""
    return train_table(cfg, sp, out, resume=resume, name="backbones.csv", progress=progress, go_ahead=go_ahead)


def write_plan(sp: StagePlan, out: str | Path, name: str) -> Path:
    """A stage's plan without training: every network's spec under ``out/specs`` and the cost
    table as ``out/NAME`` (``members.csv``, ``networks.csv``). Returns ``out`` (checked, created)."""
    path = guard.out_dir(out)
    save_specs(sp.jobs, path)
    write_csv(sp.table, path / name)
    return path


def save_specs(jobs: list, out: str | Path) -> None:
    d = Path(out) / "specs"
    d.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        job.spec.save(d / f"{guard.safe_name(job.spec.name)}.json")


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a table atomically (:func:`effnas.search_spaces.common.atomic.atomic_write`)."""
    atomic_write(path, lambda t: df.to_csv(t, index=False))
