"""A run directory: config, per-epoch log, final metrics and checkpoints, all written atomically.

Layout::

    config.json    the JobConfig (as a dict)
    epochs.jsonl   one JSON object per finished epoch (epoch, train_loss, val_accuracy, seconds, ...)
    metrics.json   the final metrics (status completed / diverged / failed / pruned, accuracies, cost)
    last.pt        the state after the last finished epoch (model, optimizer, EMA, RNG states, history)
    best.pt        the weights with the best validation accuracy so far

Every file is written with :func:`effnas.search_spaces.atomic.atomic_write` (a temporary name in
the same directory, fsync, ``os.replace``, fsync of the directory), so a run killed at any
instant leaves either the old or the new file, never a torn one. When a run is over and which
config keys do not change it are the run record's rules (:mod:`effnas.scaling.record`). The
checkpoint carries the epoch history; on resume ``epochs.jsonl`` is rewritten from it, so each
epoch is recorded exactly once even if the process died between writing the checkpoint and
appending the log line. Checkpoints hold only tensors and primitive containers and load with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from effnas.experiments.weights.convert import read_checkpoint
from effnas.scaling.record import is_finished, run_key
from effnas.search_spaces.atomic import atomic_text, atomic_write
from effnas.search_spaces.errors import UserError

if TYPE_CHECKING:
    from effnas.experiments.config.schema import JobConfig

CONFIG, EPOCHS, METRICS, LAST, BEST = "config.json", "epochs.jsonl", "metrics.json", "last.pt", "best.pt"


class RunDir:
    """The files of one training run under ``path`` (created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"out_dir {str(self.path)!r} is a file: give a directory path")

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_text(self.file(name), json.dumps(data, indent=2, sort_keys=False) + "\n")

    def read_json(self, name: str) -> dict[str, Any] | None:
        p = self.file(name)
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def append_epoch(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with self.file(EPOCHS).open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_epochs(self, records: list[dict[str, Any]]) -> None:
        """Replace ``epochs.jsonl`` with ``records`` (atomically)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_text(self.file(EPOCHS), "".join(json.dumps(r) + "\n" for r in records))

    def save(self, name: str, state: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.file(name), lambda t: torch.save(state, t))

    def load(self, name: str) -> dict[str, Any] | None:
        p = self.file(name)
        if not p.is_file():
            return None
        return read_checkpoint(p)  # weights_only: a crafted last.pt runs no code, a one-line error

    def clear(self) -> None:
        """Remove the files of a previous run (not the directory or unrelated files)."""
        for name in (EPOCHS, METRICS, LAST, BEST):
            self.file(name).unlink(missing_ok=True)


def is_run_config(d: dict[str, Any] | None) -> bool:
    """Whether a run directory's ``config.json`` is one the trainer wrote."""
    return d is not None and {"model", "dataset", "epochs", "seed"} <= set(d)


def open_run(run: RunDir, cfg: JobConfig) -> dict[str, Any] | str | None:
    """Rank 0's look at the run directory: the finished run's metrics (reuse it), ``"resume"``
    (continue from ``last.pt``), or None (the old run files are cleared, the config written)."""
    key = run_key(cfg.to_dict())
    old_cfg, old_metrics = run.read_json(CONFIG), run.read_json(METRICS)
    if run.file(CONFIG).exists() and not is_run_config(old_cfg):
        raise UserError(f"{run.file(CONFIG)} was not written by effnas: choose another --out, or move it away")
    # A key added to the schema after the run was written counts with its default value.
    same = old_cfg is not None and run_key({**type(cfg)().to_dict(), **old_cfg}) == key
    if same and is_finished(old_metrics):
        return old_metrics
    if not same and is_finished(old_metrics):
        raise UserError(f"out_dir {cfg.out_dir!r} holds a finished run of a different config: choose another "
                         "--out (or delete it) rather than losing it")
    if cfg.resume and old_cfg is not None and not same:
        raise UserError(f"out_dir {cfg.out_dir!r} holds a run with a different config: "
                         "resume with the same options, or choose another --out")
    if cfg.resume and same and run.file(LAST).is_file():
        return "resume"
    run.clear()
    run.write_json(CONFIG, cfg.to_dict())
    return None
