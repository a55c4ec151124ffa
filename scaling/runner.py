"""Train a list of specs through the trainer callable, resumably, and collect one table.

Every job (a member and a seed, a grid candidate, a backbone variant) trains into its own run
directory ``out_dir/<key>/``. After a run the result store writes ``result.json`` there (the
config and the returned metrics). A later call with ``resume=True`` reads finished runs back
without calling the trainer and hands the rest to the executor with ``resume: True`` in their
config, so the trainer continues interrupted runs from their last epoch checkpoint. Runs whose
status is not finished (:data:`effnas.scaling.record.FINISHED`: ``failed``, ``oom``, ``pruned``)
are trained again. A trainer that raises stops the batch (finished runs are kept). A run
directory that holds a *different* config (:func:`effnas.scaling.record.differing_key`) is
refused rather than silently mixed into the table.

The trainer and executor follow ``docs/architecture.md``: ``trainer(config, *, on_epoch=None)
-> metrics`` and ``executor(trainer, configs) -> metrics`` (same order); sequential by default.

Progress: given a ``progress`` (:class:`RunProgress`, e.g. the console board of
:class:`effnas.search_spaces.common.progress.RunBoard`), ``run_jobs`` names the runs it is about
to train and the executor reports, in this process, when each one starts, finishes an epoch and
ends: ``executor(trainer, configs, events=progress)`` (:func:`sequential` does it around each
call; Ray's executor from the driver's view of its trials). An executor without ``events`` can
only be used without ``progress``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from effnas.scaling.record import FINISHED, differing_key, read_result, write_result
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

TrainerFn = Callable[..., dict]
#: ``executor(trainer, configs) -> metrics``, also called as ``executor(trainer, configs, events=...)``
#: (a :class:`RunEvents`) when ``run_jobs`` has a ``progress``.
ExecutorFn = Callable[..., list[dict]]


class RunEvents(Protocol):
    """What an executor reports about ``configs[index]``, in the caller's process."""

    def started(self, index: int) -> None: ...

    def epoch(self, index: int, record: dict[str, Any]) -> None: ...

    def finished(self, index: int, metrics: dict[str, Any]) -> None: ...


class RunProgress(RunEvents, Protocol):
    """A :class:`RunEvents` that ``run_jobs`` first tells the batch (``begin``: the labels of
    the runs to train, the runs finished earlier, the epochs per run, each run's cost when known)
    and ``close``s at its end."""

    def begin(self, labels: Sequence[str], *, done: int = 0, epochs: int | None = None,
              costs: Sequence[float] | None = None) -> None: ...

    def close(self) -> None: ...


#: Metric columns copied into result tables, when the trainer returns them (``test_accuracy_tta``: runs with
#: ``train.tta``, e.g. the fast recipe; a resumed table gets it from each finished run's result.json).
METRIC_COLUMNS = ("status", "val_accuracy", "best_val_accuracy", "test_accuracy", "test_accuracy_tta", "train_seconds",
                  "images_per_second", "epochs_completed", "stopped_by", "error")


class RunsStopped(RuntimeError):
    """An executor could not finish its runs (e.g. Ray's workers were killed for memory); the runs
    that finished have their ``result.json``, so ``--resume`` continues. Exit code 1."""


class RunsFailed(RuntimeError):
    """No run of a stage finished (their errors are in the stage's table and run directories):
    nothing usable to go on with. The CLI prints it as one line with exit code 1."""


def sequential(trainer: TrainerFn, configs: list[dict], *, events: RunEvents | None = None) -> list[dict]:
    """The default executor: one config after the other, in this process (each one's start,
    epochs and end told to ``events``)."""
    if events is None:
        return [trainer(c) for c in configs]
    out = []
    for i, c in enumerate(configs):
        events.started(i)

        def on_epoch(record: dict[str, Any], i: int = i) -> bool:
            events.epoch(i, record)
            return False  # never stops the run

        out.append(m := trainer(c, on_epoch=on_epoch))
        events.finished(i, m)
    return out


@dataclass(frozen=True)
class Job:
    """One training run: ``spec`` with ``seed``, into ``out_dir/key``; ``info`` becomes table columns."""

    key: str
    spec: NetworkSpec
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How progress lines name the run: its directory's last part in words, with the
        method in front when the name lacks it (``members/phi2-seed0`` -> ``compound phi2 seed0``,
        ``baselines/width-phi2-seed0`` -> ``width phi2 seed0``)."""
        name = self.key.rsplit("/", 1)[-1].replace("-", " ")
        method = str(self.info.get("method") or "")
        return f"{method} {name}" if method and method not in name.split() else name


class RecordingTrainer:
    """Wraps the trainer: records each finished run's ``result.json``. Training outcomes (out of
    memory, divergence) come back from the trainer as a status; an exception (bad data, a bug)
    propagates and stops the batch. A top-level class so that Ray can pickle it to its workers."""

    def __init__(self, trainer: TrainerFn) -> None:
        self.trainer = trainer

    def __call__(self, config: dict[str, Any], *, on_epoch: Callable[[dict], bool] | None = None) -> dict[str, Any]:
        metrics = dict(self.trainer(config, on_epoch=on_epoch))
        if metrics.get("status") in FINISHED and config.get("out_dir"):
            write_result(config["out_dir"], config, metrics)
        return metrics


def _execute(executor: ExecutorFn, trainer: TrainerFn, configs: list[dict[str, Any]], progress: RunProgress | None,
             *, labels: list[str], done: int, epochs: Any, costs: list[float] | None = None) -> list[dict[str, Any]]:
    if progress is None:
        return executor(RecordingTrainer(trainer), configs)
    progress.begin(labels, done=done, epochs=epochs if isinstance(epochs, int) else None, costs=costs)
    try:
        return executor(RecordingTrainer(trainer), configs, events=progress)
    finally:
        progress.close()


def _costs(jobs: Sequence[Job]) -> list[float] | None:
    """Each job's MACs per image at its resolution (what a run's time grows with at equal images and
    epochs), for a cost-weighted ETA; None when a job's table row does not carry them."""
    costs = []
    for job in jobs:
        macs = job.info.get("macs")
        if not isinstance(macs, int | float) or not macs > 0:
            return None
        costs.append(float(macs))
    return costs


def make_config(job: Job, train_config: dict[str, Any], out_dir: Path, *, resume: bool) -> dict[str, Any]:
    return {**train_config, "model": job.spec.to_dict(), "resolution": job.spec.resolution, "seed": job.seed,
            "out_dir": str(out_dir / job.key), "resume": resume}


def run_jobs(
    jobs: Sequence[Job],
    trainer: TrainerFn,
    *,
    train_config: dict[str, Any],
    out_dir: str | Path,
    executor: ExecutorFn | None = None,
    resume: bool = False,
    defaults: dict[str, Any] | None = None,
    progress: RunProgress | None = None,
) -> pd.DataFrame:
    """Train ``jobs`` (finished ones skipped when ``resume``) and return a row per job:
    its ``info``, ``seed``, the metric columns and ``run_dir``.

    ``defaults``: the trainer's default config; a stored run lacking a key counts with it.
    ``progress``: told the runs to train (by :attr:`Job.label`) and, through the executor,
    each one's start, epochs and end.

    Raises:
        UserError: a job's run directory already holds a finished run and ``resume`` is False,
            or it holds a run of a different config.
    """
    import pandas as pd  # lazy: pandas is slow to import, and the trainer imports effnas.scaling
    out = Path(out_dir)
    keys = [j.key for j in jobs]
    if len(set(keys)) != len(keys):
        raise UserError(f"duplicate run keys: {sorted(k for k in set(keys) if keys.count(k) > 1)[0]!r}")
    configs = [make_config(j, train_config, out, resume=resume) for j in jobs]
    metrics: list[dict[str, Any] | None] = [None] * len(jobs)
    for i, cfg in enumerate(configs):
        stored = read_result(cfg["out_dir"])
        if stored is None:
            continue
        key = differing_key(stored.get("config", {}), cfg, defaults)
        if key is not None:
            raise UserError(f"run directory {cfg['out_dir']} holds a run with a different {key!r}: "
                             "use a new --out (or delete it)")
        if not resume:
            raise UserError(f"{cfg['out_dir']} already holds a finished run: pass --resume to keep finished runs, "
                             "or use a new --out")
        if stored["metrics"].get("status") in FINISHED:
            metrics[i] = stored["metrics"]
    pending = [i for i, m in enumerate(metrics) if m is None]
    if pending:
        results = _execute(executor or sequential, trainer, [configs[i] for i in pending], progress,
                           labels=[jobs[i].label for i in pending], done=len(jobs) - len(pending),
                           epochs=train_config.get("epochs"), costs=_costs([jobs[i] for i in pending]))
        if len(results) != len(pending):
            raise RuntimeError(f"executor returned {len(results)} results for {len(pending)} configs")
        for i, r in zip(pending, results, strict=True):
            metrics[i] = dict(r)
            if r.get("status") in FINISHED and read_result(configs[i]["out_dir"]) is None:
                write_result(configs[i]["out_dir"], configs[i], dict(r))
    rows = []
    for job, cfg, m in zip(jobs, configs, metrics, strict=True):
        assert m is not None
        row: dict[str, Any] = {**job.info, "seed": job.seed}
        row.update({k: m.get(k) for k in METRIC_COLUMNS if k in m})
        row["trained_params"] = m.get("params")
        row["trained_macs"] = m.get("macs")
        row["run_dir"] = cfg["out_dir"]
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["ExecutorFn", "Job", "RecordingTrainer", "RunEvents", "RunProgress", "RunsFailed", "RunsStopped",
           "TrainerFn", "run_jobs", "sequential"]
