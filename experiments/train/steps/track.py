"""Experiment tracking: each validated epoch's metrics, to watch runs live (``train.track``).

* ``tensorboard`` (the default): an event file in the run directory. ``tensorboard --logdir DIR``
  shows every run directory below ``DIR`` as one run named by its path, so an experiment's grid
  candidates, family members and backbones (``grid/candidates/a1.2-b1.1-g1.15-seed0``,
  ``family/members/phi2-seed0``, ...) appear side by side. Scalars: :data:`TAGS` per epoch,
  :data:`FINAL_TAGS` at the last one, and the run's config as text.
* ``mlflow``: one MLflow run per run directory, named by its path, in the store MLflow's own
  settings name (``MLFLOW_TRACKING_URI``), experiment ``MLFLOW_EXPERIMENT_NAME`` or ``effnas``;
  ``mlflow.json`` keeps its id, so a resumed run continues it. Needs the ``mlflow`` package.
* ``none``. Runs without a run directory (search candidates: their Optuna study records them) and
  ranks other than 0 track nothing.

Events are written synchronously after the epoch's checkpoint: the records of an epoch (a few
hundred bytes) in one unbuffered write, framed by tensorboard's record writer, summaries built by
``torch.utils.tensorboard.summary``. (``torch.utils.tensorboard.SummaryWriter`` writes from a
background thread: on a full disk that thread printed a traceback and its error came back on
every later call.) A full disk stops the tracking with one warning and the run goes on: its
checkpoints and metrics matter more than its curves. Any other error propagates, as for every
file of the run (status ``failed``) or as the bug it is.

On resume the new event file starts with a purge mark at the first resumed epoch: TensorBoard
drops the points an interrupted process logged after its last checkpoint.
"""

from __future__ import annotations

import errno
import io
import itertools
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from effnas.experiments.config.schema import JobConfig
from effnas.experiments.train.rundir import EVENTS_PREFIX, EVENTS_SUFFIX, MLFLOW, RunDir
from effnas.search_spaces.common.atomic import DiskFull, atomic_json, disk_full
from effnas.search_spaces.common.errors import UserError

#: An epoch record's keys (``epochs.jsonl``) and the scalars they are tracked as.
TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
        "val_accuracy": "accuracy/val", "lr": "learning_rate", "images_per_second": "throughput/train_img_per_s",
        "seconds": "time/epoch_seconds"}
#: The final metrics tracked at the last epoch.
FINAL_TAGS = {"test_accuracy": "accuracy/test", "test_loss": "loss/test"}
#: A run's ``status`` as MLflow's run status (a run that stopped on an error: ``FAILED``).
MLFLOW_STATUS = {"completed": "FINISHED", "pruned": "KILLED"}
#: What MLflow's stores say when the disk is full (SQLite, files).
FULL_MESSAGES = ("database or disk is full", "No space left on device")

_FILE_NUMBER = itertools.count()


def scalars(values: dict[str, Any], tags: dict[str, str]) -> dict[str, float]:
    """The finite numbers of ``values`` under their tags.

    >>> scalars({"val_accuracy": 0.5, "lr": None, "train_loss": float("nan"), "epoch": 3}, TAGS)
    {'accuracy/val': 0.5}
    """
    return {tag: float(values[k]) for k, tag in tags.items()
            if isinstance(values.get(k), int | float) and math.isfinite(values[k])}


class Tracker:
    """No tracking, and the frame of every tracker: ``with open_tracker(...) as t:`` then
    ``t.epoch(record)`` per epoch and ``t.final(metrics)``; leaving the block closes it (an
    exception: status ``error``)."""

    name = "none"
    path: Path | None = None  # the file a full disk is named by
    stopped = False

    def __init__(self) -> None:
        self.last_epoch, self.status = 0, "completed"

    def epoch(self, record: dict[str, Any]) -> None:
        self.last_epoch = int(record["epoch"])
        self._safely(lambda: self._write(scalars(record, TAGS), self.last_epoch), f"at epoch {self.last_epoch}")

    def final(self, metrics: dict[str, Any]) -> None:
        """The run's final ``metrics``: test accuracy and loss at the last epoch, and the status."""
        self.status = str(metrics.get("status"))
        values = scalars(metrics, FINAL_TAGS)
        if values and self.last_epoch:
            self._safely(lambda: self._write(values, self.last_epoch), "at the end")

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        status = "error" if kind is not None else self.status
        self._safely(lambda: self._close(status), "at the end")

    def _safely(self, write: Callable[[], None], when: str) -> None:
        """``write()``, unless tracking stopped; a full disk stops it with a warning (``when``: at
        what point of the run). Any other error stops it too, and propagates."""
        if self.stopped:
            return
        try:
            with disk_full(self.path or "."):
                write()
        except DiskFull as e:
            self.stopped = True
            print(f"effnas: warning: {e}: {self.name} tracking stopped {when}; the run goes on "
                  "(free some space to track the next runs)", file=sys.stderr)
            self._abandon()
        except BaseException:
            self.stopped = True  # nothing more is written (not even the close) after an error it did not expect
            raise

    def _write(self, values: dict[str, float], step: int) -> None:
        """Record ``values`` at epoch ``step``."""

    def _close(self, status: str) -> None:
        """End the tracking of a run whose status is ``status``."""

    def _abandon(self) -> None:
        """Let go of whatever is open after a full disk (nothing more is written)."""


class TensorBoard(Tracker):
    """An event file in ``run_dir`` (see the module docstring)."""

    name = "TensorBoard"

    def __init__(self, run_dir: Path, *, start_epoch: int, config: dict[str, Any]) -> None:
        super().__init__()
        try:
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog  # lazy: only a tracked run needs it
            from tensorboard.summary.writer.record_writer import RecordWriter  # lazy: as above
            from torch.utils.tensorboard import summary  # lazy: as above (imports tensorboard)
        except ImportError as e:
            raise UserError("train.track = 'tensorboard' needs the tensorboard package, which is not installed: pip "
                            "install tensorboard (an effnas dependency), or set train.track = 'none'") from e
        self.event, self.record_writer, self.summary = Event, RecordWriter, summary
        self.last_epoch = start_epoch
        name = f"{EVENTS_PREFIX}{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_NUMBER)}"
        self.path = path = run_dir / (name + EVENTS_SUFFIX)
        self.file: io.FileIO | None = None
        now = time.time()
        first = [Event(wall_time=now, step=start_epoch, file_version="brain.Event:2")]
        if start_epoch:  # resumed: points past the checkpoint an earlier process logged are dropped
            first.append(Event(wall_time=now, step=start_epoch + 1, session_log=SessionLog(status=SessionLog.START)))
        else:
            text = "    " + json.dumps(config, indent=1, default=str).replace("\n", "\n    ")  # markdown code block
            first.append(Event(wall_time=now, step=0, summary=summary.text("config", text)))

        def start() -> None:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.file = io.FileIO(path, "ab")
            self._append(first)

        self._safely(start, "at the start")

    def _append(self, events: list[Any]) -> None:
        """``events`` in one write (a short write is what a full disk does too)."""
        buf = io.BytesIO()
        writer = self.record_writer(buf)
        for e in events:
            writer.write(e.SerializeToString())
        data = buf.getvalue()
        assert self.file is not None
        if self.file.write(data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    def _write(self, values: dict[str, float], step: int) -> None:
        now = time.time()
        self._append([self.event(wall_time=now, step=step, summary=self.summary.scalar(tag, v))
                      for tag, v in values.items()])

    def _close(self, status: str) -> None:
        self._abandon()

    def _abandon(self) -> None:
        if self.file is not None:
            self.file.close()  # unbuffered: nothing left to write
            self.file = None


class MLflow(Tracker):
    """An MLflow run for ``run_dir`` (see the module docstring)."""

    name = "MLflow"

    def __init__(self, run_dir: Path, *, start_epoch: int, config: dict[str, Any]) -> None:
        super().__init__()
        try:
            import mlflow  # lazy: an optional dependency (train.track = "mlflow" checks it is installed)
            from mlflow.entities import Metric, Param  # lazy: as above
            from mlflow.exceptions import MlflowException  # lazy: as above
            from sqlalchemy.exc import SQLAlchemyError  # lazy: what MLflow's SQL stores raise (a full disk among it)
        except ImportError as e:
            raise UserError("train.track = 'mlflow' needs the mlflow package, which is not installed: pip install "
                            "mlflow, or use train.track = 'tensorboard'") from e
        self.metric, self.failures = Metric, (MlflowException, SQLAlchemyError)
        self.uri = uri = mlflow.get_tracking_uri()
        self.path = path = run_dir / MLFLOW
        self.last_epoch = start_epoch
        stored = RunDir(run_dir).read_json(MLFLOW) if start_epoch else None
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "effnas")
        params = [Param(k, str(v)[:500]) for k, v in config.items() if v is not None and not isinstance(v, dict)]

        def start() -> None:
            self.client = mlflow.MlflowClient()  # opens (a local store: creates) the store
            if stored is not None and stored.get("tracking_uri") == uri:  # resumed: the same MLflow run goes on
                self.run_id = str(stored["run_id"])
                self.client.update_run(self.run_id, status="RUNNING")
                return
            found = self.client.get_experiment_by_name(experiment)
            exp_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
            run = self.client.create_run(exp_id, run_name=_run_name(run_dir), tags={"effnas.run_dir": str(run_dir)})
            self.run_id = run.info.run_id
            self.client.log_batch(self.run_id, params=params)
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_json(path, {"run_id": self.run_id, "tracking_uri": uri})

        self._safely(start, "at the start")

    def _safely(self, write: Callable[[], None], when: str) -> None:
        def mlflow_write() -> None:
            try:
                write()
            except self.failures as e:  # MLflow's stores raise their own errors: a full disk among them
                if not any(m in str(e) for m in FULL_MESSAGES):
                    raise
                raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), f"the MLflow store {self.uri}") from e

        super()._safely(mlflow_write, when)

    def _write(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self.metric(k, v, now, step) for k, v in values.items()])

    def _close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=MLFLOW_STATUS.get(status, "FAILED"))


def _run_name(run_dir: Path) -> str:
    """``run_dir`` relative to the working directory when below it (``runs/demo/family/members/phi2-seed0``)."""
    path = run_dir.absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _config(cfg: JobConfig) -> dict[str, Any]:
    """The run's config as tracked: the model by its name (a spec dict is in ``config.json``)."""
    d = cfg.to_dict()
    if isinstance(d["model"], dict):
        d["model"] = d["model"].get("name", "spec")
    return d


def open_tracker(cfg: JobConfig, run: RunDir | None, *, lead: bool, start_epoch: int) -> Tracker:
    """The tracker of ``cfg.track`` for run directory ``run`` from epoch ``start_epoch`` on (0: a
    fresh run); a no-op :class:`Tracker` without a run directory, on ranks other than 0 and for
    ``none``."""
    if run is None or not lead or cfg.track == "none":
        return Tracker()
    kind = TensorBoard if cfg.track == "tensorboard" else MLflow
    return kind(run.path, start_epoch=start_epoch, config=_config(cfg))


def event_files(run_dir: str | Path) -> Iterator[Path]:
    """The TensorBoard event files effnas wrote in ``run_dir``, oldest first."""
    yield from sorted(Path(run_dir).glob(f"{EVENTS_PREFIX}*{EVENTS_SUFFIX}"))


__all__ = ["FINAL_TAGS", "TAGS", "MLflow", "TensorBoard", "Tracker", "event_files", "open_tracker", "scalars"]
