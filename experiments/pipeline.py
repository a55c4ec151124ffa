"""``effnas run``: one experiment end to end.

search -> baseline -> grid -> family (+ single-dimension baselines, + backbones) -> curves ->
report. Each stage is an ``effnas`` sub-command run in this process with arguments derived from
the experiment config, so a stage behaves exactly as when a user runs it by hand, and resumes
the same way. ``stages.json`` in the run directory records each stage's status and wall time; a
re-run with ``--resume`` skips finished stages and resumes the interrupted one (the search from
its Optuna storage, grid and family from their per-run directories, where finished runs are
never trained again).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.config import ExperimentConfig, trainer_config

STAGES = ("search", "baseline", "grid", "family", "backbones", "curves", "report")

#: Trainer keys each stage sets itself (not passed as --option/--set).
_STAGE_KEYS = {"model", "dataset", "epochs", "seed", "resolution", "data_fraction", "out_dir", "resume"}


class StageLog:
    """``stages.json``: status (``done`` / ``running`` / ``failed`` / ``skipped``) and seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def done(self, stage: str) -> bool:
        return self.data.get(stage, {}).get("status") in ("done", "skipped")

    def mark(self, stage: str, status: str, seconds: float | None = None, **extra: Any) -> None:
        prev = self.data.get(stage, {}).get("seconds") or 0.0
        entry = {"status": status, "seconds": round(prev + (seconds or 0.0), 2), **extra}
        self.data[stage] = entry
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def _options(cfg: ExperimentConfig, flag: str) -> list[str]:
    opts = trainer_config(cfg, model="unused")
    args: list[str] = []
    for k, v in opts.items():
        if k in _STAGE_KEYS or v is None:
            continue
        args += [flag, f"{k}={json.dumps(v)}"]
    return args + [flag, "quiet=true"]


def _ray(cfg: ExperimentConfig, workers: int) -> list[str]:
    args = ["--workers", str(workers)] if workers > 1 else []
    if cfg.run.ray_address:
        args += ["--ray-address", cfg.run.ray_address]
    return args


def _cli(argv: list[str], stage: str) -> None:
    from experiments.cli import main

    print(f"  $ effnas {' '.join(argv)}", flush=True)
    code = main(argv)
    if code:
        raise ValueError(f"stage {stage!r} failed (effnas {argv[0]} exited {code}); fix the cause above and re-run "
                         f"with --resume: finished stages and runs are kept")


def search_args(cfg: ExperimentConfig, out: Path, resume: bool) -> list[str]:
    s, d = cfg.search, cfg.data
    storage = s.storage or f"sqlite:///{(out / 'search' / 'study.db').resolve()}"
    argv = ["search", "--space", s.space, "--dataset", d.dataset, "--strategy", s.strategy,
            "--trials", str(s.trials), "--w", str(s.w), "--constraint", s.constraint,
            "--epochs", str(s.epochs), "--data-fraction", str(s.data_fraction), "--seed", str(cfg.run.seed),
            "--storage", storage, "--study", s.study, "--out", str(out / "search")]
    argv += ["--target-ms", str(s.target_macs)] if s.objective == "latency" else ["--target-macs", str(s.target_macs)]
    res = s.resolution or d.resolution
    if res:
        argv += ["--resolution", str(res)]
    if resume and (out / "search" / "study.db").exists() or (resume and s.storage):
        argv.append("--resume")
    return argv + _ray(cfg, s.workers) + _options(cfg, "--set")


def _training_args(cfg: ExperimentConfig, epochs: int, seeds: int, resume: bool) -> list[str]:
    argv = ["--dataset", cfg.data.dataset, "--epochs", str(epochs), "--data-fraction", str(cfg.data.data_fraction),
            "--seeds", str(seeds)]
    if resume:
        argv.append("--resume")
    return argv + _ray(cfg, cfg.run.workers) + _options(cfg, "--option")


def _resolution(cfg: ExperimentConfig) -> list[str]:
    return ["--resolution", str(cfg.data.resolution)] if cfg.data.resolution else []


def _seed_count(cfg: ExperimentConfig) -> int:
    seeds = tuple(cfg.family.seeds)
    if seeds != tuple(range(len(seeds))):
        raise ValueError(f"family.seeds must be 0..N-1 (the runner seeds members 0, 1, ...), got {list(seeds)}")
    return len(seeds)


def run_experiment(cfg: ExperimentConfig, *, out: Path, resume: bool = False,
                   log: Callable[[str], None] = print) -> Path:
    """Run every stage of ``cfg`` into ``out``; returns the path of ``report.md``."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.json"
    if saved.exists():
        if not resume:
            raise ValueError(f"{out} already holds a run: add --resume to continue it, or choose another --out")
        if json.loads(saved.read_text()) != cfg.to_dict():
            raise ValueError(f"the config differs from the one {out} was started with ({saved}); "
                             f"use another --out, or the same config to resume")
    else:
        saved.write_text(json.dumps(cfg.to_dict(), indent=2))
    (out / "config.toml").write_text(cfg.to_toml())
    stages = StageLog(out / "stages.json")
    seeds = _seed_count(cfg)
    baseline = out / "baseline.json"
    coefficients = out / "grid" / "coefficients.json"
    phis = ",".join(str(p) for p in cfg.family.phis)

    def stage_search() -> None:
        (out / "search").mkdir(exist_ok=True)
        _cli(search_args(cfg, out, resume), "search")

    def stage_baseline() -> None:
        best = out / "search" / "best_spec.json"
        if best.exists():
            shutil.copyfile(best, baseline)
        else:
            from search_spaces import load_spec

            load_spec(cfg.train.model).save(baseline)
        log(f"  baseline: {baseline}")

    def stage_grid() -> None:
        g = cfg.grid
        argv = ["grid", "--base", str(baseline), "--step", str(g.step), "--tolerance", str(g.tolerance),
                "--target", str(g.target), "--out", str(out / "grid"), *_resolution(cfg)]
        _cli(argv + _training_args(cfg, g.epochs, 1, resume or (out / "grid").exists()), "grid")

    def stage_family() -> None:
        f = cfg.family
        argv = ["family", "--base", str(baseline), "--phis", phis, "--train", "--out", str(out / "family"),
                *_resolution(cfg)]
        argv += ["--official"] if f.official else ["--coefficients", str(coefficients)]
        if f.single_dimension:
            argv += ["--baselines"] + (["--baseline-phis", ",".join(map(str, f.baseline_phis))]
                                       if f.baseline_phis else [])
        _cli(argv + _training_args(cfg, f.epochs, seeds, resume or (out / "family").exists()), "family")

    def stage_backbones() -> None:
        for name in cfg.family.backbones:
            argv = ["scale-backbone", "--backbone", name, "--coefficients", str(coefficients),
                    "--phi", str(max(cfg.family.phis)), "--compare", "--train", "--out", str(out / "backbones" / name)]
            _cli(argv + _training_args(cfg, cfg.family.epochs, seeds,
                                       resume or (out / "backbones" / name).exists()), "backbones")

    def stage_curves() -> None:
        _cli(["curves", str(out / "family"), "--out", str(out / "curves")], "curves")

    def stage_report() -> None:
        from experiments.report import write_report

        shown = {**stages.data, "report": {"status": "done", "seconds": 0.0}}  # written by this very stage
        md, html = write_report(out, config=cfg.to_dict(), stages=shown, baseline=None,
                                title=f"effnas experiment: {cfg.name}")
        log(f"  report: {md} and {html}")

    runners: dict[str, Callable[[], None]] = {
        "search": stage_search, "baseline": stage_baseline, "grid": stage_grid, "family": stage_family,
        "backbones": stage_backbones, "curves": stage_curves, "report": stage_report,
    }
    skip = {"search"} if cfg.search.trials == 0 else set()
    if not cfg.family.backbones:
        skip.add("backbones")
    for i, name in enumerate(STAGES, 1):
        if name in skip:
            stages.mark(name, "skipped")
            continue
        if resume and stages.done(name) and name != "report":
            log(f"[{i}/{len(STAGES)}] {name}: done, skipped (resume)")
            continue
        log(f"[{i}/{len(STAGES)}] {name}")
        stages.mark(name, "running")
        t0 = time.perf_counter()
        try:
            runners[name]()
        except BaseException as e:
            stages.mark(name, "failed", time.perf_counter() - t0, error=str(e).splitlines()[0] if str(e) else
                        type(e).__name__)
            raise
        stages.mark(name, "done", time.perf_counter() - t0)
    return out / "report.md"
