"""``effnas run``: one experiment end to end.

search -> baseline -> grid -> family (+ single-dimension baselines, + official table) ->
backbones -> curves -> report. Each stage's plan is resolved once by :mod:`effnas.experiments.pipeline.plan`
as soon as its inputs exist (the grid needs the search's baseline, the family and backbones the grid's
coefficients) and executed by a function of :mod:`effnas.experiments.pipeline.stages` (the same functions the
sub-commands call), so a stage behaves exactly as when a user runs it by hand, and resumes the same way.
``stages.json`` in the run directory records each stage's status and wall time; a re-run with
``--resume`` skips finished stages and resumes the interrupted one (the search from its Optuna
storage, grid and family from their per-run directories, where finished runs are never trained
again). Runs that failed are listed in the report, and :func:`run_experiment` returns them so that
``effnas run`` exits 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.experiments.config.schema import ExperimentConfig
from effnas.experiments.config.sections import with_defaults
from effnas.experiments.data.datasets import check_dataset
from effnas.experiments.pipeline import plan, stages
from effnas.experiments.report.markdown import write_report
from effnas.experiments.train import guard
from effnas.scaling import Coefficients, load_results, plot_curves
from effnas.scaling.record import backbone_dir
from effnas.scaling.runner import RunProgress, RunsFailed
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_json, atomic_text
from effnas.search_spaces.common.errors import UserError, first_line

STAGES = ("search", "baseline", "grid", "family", "backbones", "curves", "report")


class StageLog:
    """``stages.json``: status (``done`` / ``running`` / ``failed`` / ``skipped``) and seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
        except ValueError as e:
            raise UserError(f"{path} is not valid JSON: restore it, or start the run in another --out") from e
        if not isinstance(self.data, dict):
            raise UserError(f"{path} is not a stages table: restore it, or start the run in another --out")

    def done(self, stage: str) -> bool:
        return self.data.get(stage, {}).get("status") in ("done", "skipped")

    def mark(self, stage: str, status: str, seconds: float | None = None, **extra: Any) -> None:
        prev = self.data.get(stage, {}).get("seconds") or 0.0
        entry = {"status": status, "seconds": round(prev + (seconds or 0.0), 2), **extra}
        self.data[stage] = entry
        atomic_text(self.path, json.dumps(self.data, indent=2))


def run_experiment(cfg: ExperimentConfig, *, out: Path, resume: bool = False,
                   log: Callable[[str], None] = print, progress: RunProgress | None = None,
                   quiet: bool = False, go_ahead: stages.GoAhead | None = None) -> tuple[Path, pd.DataFrame]:
    """Run every stage of ``cfg`` into ``out``; returns the path of ``report.md`` and the runs
    that did not complete (grid candidates, members, backbones; empty when all completed).
    ``out`` is locked while the run writes it (a second run into it is refused, naming this one).
    ``progress`` hears of every run of the grid, family and backbones; ``quiet``: no search trial lines;
    ``go_ahead`` is asked once the checks passed, before anything is written (:func:`stages.ask`)."""
    guard.out_dir(out)
    with guard.Lock(out):
        return _run(cfg, out, resume=resume, log=log, progress=progress, quiet=quiet, go_ahead=go_ahead)


def _run(cfg: ExperimentConfig, out: Path, *, resume: bool, log: Callable[[str], None],
         progress: RunProgress | None = None, quiet: bool = False,
         go_ahead: stages.GoAhead | None = None) -> tuple[Path, pd.DataFrame]:
    if not all(StageLog(out / "stages.json").done(n) for n in STAGES[:5]):
        check_dataset(cfg.data.dataset)  # before anything is written or trained
        stages.check_cluster(cfg)
        stages.check_latency_runtime(cfg)
        if not plan.runtime(cfg).ray:
            stages.check_local(cfg)
    saved = out / "config.json"
    if saved.exists():
        if not resume:
            raise UserError(f"{out} already holds a run: add --resume to continue it, or choose another --out")
        try:
            old = json.loads(saved.read_text())
        except ValueError:
            old = None
        if old is None or with_defaults(old, ExperimentConfig().to_dict()) != cfg.to_dict():
            raise UserError(f"the config differs from the one {out} was started with ({saved}); "
                             f"use another --out, or the same config to resume")
    stages.ask(go_ahead)
    if not saved.exists():
        atomic_json(saved, cfg.to_dict(), indent=2, default=str)
    atomic_text(out / "config.toml", cfg.to_toml())
    log_ = StageLog(out / "stages.json")
    baseline = out / "baseline.json"
    coefficients = out / "grid" / "coefficients.json"

    def stage_search() -> None:
        sp = plan.resolve_search(cfg, out / "search", resume=resume and (out / "search").exists())
        summary = stages.search(sp, quiet=quiet)
        reward = summary.get("best_reward")
        log(f"  search: {summary.get('completed', 0)} trials completed"
            + (f", best reward {reward:.4f} (trial {summary.get('best_trial')})" if reward is not None else ""))
        if "reevaluation" in summary:
            log(f"  {summary['reevaluation']['line']}")

    def stage_baseline() -> None:
        best = out / "search" / "best_spec.json"
        if cfg.search.trials > 0:
            if not best.exists():
                raise UserError(f"the search wrote no {best}: no trial completed; re-run with --resume")
            NetworkSpec.load(best).save(baseline)  # atomic
        else:
            plan.base_spec(cfg).save(baseline)
        log(f"  baseline: {baseline}")

    def base() -> Any:
        return plan.base_spec(cfg, str(baseline))

    def stage_grid() -> None:
        stages.grid(cfg, plan.grid_plan(cfg, base()), out / "grid", resume=resume or (out / "grid").exists(),
                    progress=progress)

    def coeffs() -> Any:
        return Coefficients.load(coefficients)

    def stage_family() -> None:
        fp = plan.family_plan(cfg, base(), coeffs())
        t = stages.family(cfg, fp, out / "family", resume=resume or (out / "family").exists(), progress=progress)
        if len(stages.failures(t)) == len(t):  # nothing to fit curves to: stop here, with the reason

            first = stages.failures(t).iloc[0] if len(t) else None
            why = f" (first: {first['run_dir']}: {first.get('error') or first['status']})" if first is not None else ""
            raise RunsFailed(f"no family member completed{why}: fix the cause and re-run with --resume")

    def stage_backbones() -> None:
        c = coeffs()
        for name in cfg.backbones.models:
            d = out / "backbones" / backbone_dir(name)
            stages.backbones(cfg, plan.backbone_plan(cfg, name, c), d, resume=resume or d.exists(), progress=progress)

    def stage_curves() -> None:
        res = plot_curves(load_results([str(out / "family")]), out / "curves", metric="test_accuracy")
        log(f"  curves: {', '.join(res['files'])}")

    def stage_report() -> None:
        shown = {**log_.data, "report": {"status": "done", "seconds": 0.0}}  # written by this very stage
        md, html = write_report(out, config=cfg.to_dict(), stages=shown, baseline=None,
                                title=f"effnas experiment: {cfg.name}")
        log(f"  report: {md} and {html}")

    runners: dict[str, Callable[[], None]] = {
        "search": stage_search, "baseline": stage_baseline, "grid": stage_grid, "family": stage_family,
        "backbones": stage_backbones, "curves": stage_curves, "report": stage_report,
    }
    skip = {"search"} if cfg.search.trials == 0 else set()
    if not cfg.backbones.models:
        skip.add("backbones")
    for i, name in enumerate(STAGES, 1):
        if name in skip:
            log_.mark(name, "skipped")
            continue
        if resume and log_.done(name) and name != "report":
            log(f"[{i}/{len(STAGES)}] {name}: done, skipped (resume)")
            continue
        log(f"[{i}/{len(STAGES)}] {name}")
        log_.mark(name, "running")
        t0 = time.perf_counter()
        try:
            runners[name]()
        except BaseException as e:
            log_.mark(name, "failed", time.perf_counter() - t0, error=first_line(e))
            raise
        log_.mark(name, "done", time.perf_counter() - t0)
    return out / "report.md", _all_failures(out)


def _all_failures(out: Path) -> pd.DataFrame:
    """Runs that did not complete, from the tables on disk (so a resumed run reports them too)."""
    frames = []
    for csv in [out / "grid" / "grid.csv", out / "family" / "family.csv",
                *sorted((out / "backbones").glob("*/backbones.csv"))]:
        if csv.is_file():
            t = pd.read_csv(csv)
            if "run_dir" in t.columns:
                frames.append(stages.failures(t[t["run_dir"].notna()]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
