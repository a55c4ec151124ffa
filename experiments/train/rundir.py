"""A run directory: config, per-epoch log, final metrics and checkpoints, all written atomically.

Layout::

    config.json    the JobConfig (as a dict)
    epochs.jsonl   one JSON object per finished epoch (epoch, train_loss, val_accuracy, seconds, ...)
    metrics.json   the final metrics (status completed / diverged / failed / pruned, accuracies, cost)
    last.pt        the state after the last finished epoch (model, optimizer, EMA, RNG states, history)
    best.pt        the weights with the best validation accuracy so far
    events.out.tfevents.*.effnas   TensorBoard's per-epoch scalars (``train.track = "tensorboard"``)
    mlflow.json    the MLflow run this directory's epochs go to (``train.track = "mlflow"``)

The tracking files (:mod:`effnas.experiments.train.steps.track`) are for watching a run; nothing
reads them back.

Every file is written with :func:`effnas.search_spaces.common.atomic.atomic_write` (a temporary name in
the same directory, fsync, ``os.replace``, fsync of the directory), so a run killed at any
instant leaves either the old or the new file, never a torn one. When a run is over and which
config keys do not change it are the run record's rules (:mod:`effnas.scaling.record`). The
checkpoint carries the epoch history; on resume ``epochs.jsonl`` is rewritten from it, so each
epoch is recorded exactly once even if the process died between writing the checkpoint and
appending the log line. Checkpoints hold only tensors and primitive containers and load with
``torch.load(..., weights_only=True)``.

Nothing of a user's is cleared on a guess: a run file that exists but cannot be read (a garbled
``metrics.json`` may be a finished run) stops the command with ``unreadable: FILE`` rather than
being taken for an unfinished run and replaced. A checkpoint that is truncated, garbled, of an
older layout, of other shapes or holding NaN/inf is named with what to do (:func:`load_checkpoint`,
:func:`check_weights`) instead of being trained on.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from effnas.scaling.record import differing_key, is_finished, run_key, unreadable
from effnas.search_spaces.common.atomic import atomic_text, atomic_write, disk_full
from effnas.search_spaces.common.errors import UserError, first_line

if TYPE_CHECKING:
    from effnas.experiments.config.schema import JobConfig

CONFIG, EPOCHS, METRICS, LAST, BEST = "config.json", "epochs.jsonl", "metrics.json", "last.pt", "best.pt"
#: The tracking files: TensorBoard event files (``tensorboard`` finds them by "tfevents" in the name;
#: the suffix marks them as effnas's) and the id of the MLflow run.
EVENTS_PREFIX, EVENTS_SUFFIX, MLFLOW = "events.out.tfevents.", ".effnas", "mlflow.json"
#: What to do about a checkpoint a resume cannot use.
RESUME_FIX = "delete it (or the whole run directory) and train again, or start without --resume"
#: The keys of a trainer's ``last.pt`` a resume reads (an older layout lacks some).
LAST_KEYS = ("model", "optimizer", "epoch", "history", "rng")
#: What torch.load raises on a file that is not an intact checkpoint (truncated, garbled, empty).
LOAD_ERRORS = (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError,
               AttributeError)


def _tensors(obj: Any, prefix: str = "") -> Iterable[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}[{i}]")


def _failed_crc(path: Path) -> str | None:
    """The first record of checkpoint ``path`` (a zip file, as torch.save writes) whose bytes do
    not match their stored CRC-32 (torch.load does not check them: flipped bytes would load as
    wrong weights); None when all match or ``path`` is not a zip file (torch.load then says why)."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None


def load_checkpoint(path: str | Path, *, keys: Iterable[str] = (), fix: str = RESUME_FIX) -> dict[str, Any]:
    """A checkpoint to resume from (``weights_only``, on the CPU), checked: its records match their
    CRC-32, it loads, is a dict with ``keys``, and every floating-point tensor in it is finite (a
    damaged file that still loads would otherwise train on to a misleading "diverged").

    Raises:
        UserError: naming ``path``, what is wrong and ``fix``.
    """
    p = Path(path)
    bad = _failed_crc(p)
    if bad is not None:
        raise UserError(f"checkpoint {str(p)!r} is damaged: its record {bad!r} fails its CRC check: {fix}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):  # garbled bytes, not a pickled object of another kind
            raise UserError(f"checkpoint {str(p)!r} is truncated or corrupt ({first_line(e, typed=True)[:160]}): "
                            f"{fix}") from e
        # objects other than tensors and containers: refused, never unpickled
        raise UserError(f"checkpoint {str(p)!r} holds objects other than plain tensors, refused with "
                        f"weights_only=True (effnas runs no code from a file): {fix}") from e
    except LOAD_ERRORS as e:
        raise UserError(f"checkpoint {str(p)!r} is truncated or corrupt ({first_line(e, typed=True)[:160]}): "
                         f"{fix}") from e
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {str(p)!r} holds a {type(state).__name__}, not a dict: {fix}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise UserError(f"checkpoint {str(p)!r} lacks {missing[0]!r} (an older effnas's layout, or not a "
                         f"resumable checkpoint): {fix}")
    for name, t in _tensors(state):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise UserError(f"checkpoint {str(p)!r} is damaged: {name} holds NaN or inf values: {fix}")
    return state


def check_weights(path: str | Path, weights: Mapping[str, Any], model: Mapping[str, torch.Tensor], *,
                  fix: str = RESUME_FIX) -> None:
    """``weights`` (a checkpoint's model state) has exactly the tensors of the ``model``'s state
    dict, with their shapes: else the first missing, unknown or misshapen tensor is named."""
    for k, ref in model.items():
        t = weights.get(k)
        if not isinstance(t, torch.Tensor):
            raise UserError(f"checkpoint {str(path)!r} lacks the model's tensor {k!r}: {fix}")
        if t.shape != ref.shape:
            raise UserError(f"checkpoint {str(path)!r}: {k!r} has shape {tuple(t.shape)} but the model's is "
                             f"{tuple(ref.shape)}: {fix}")
    extra = [k for k in weights if k not in model]
    if extra:
        raise UserError(f"checkpoint {str(path)!r} holds {extra[0]!r}, which the model does not have: {fix}")


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
        """The JSON object in file ``name``, or None when there is no such file.

        Raises:
            UserError: ``unreadable: FILE`` when it exists but cannot be read or is not a JSON object.
        """
        p = self.file(name)
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
            raise unreadable(p, e) from e
        if not isinstance(data, dict):
            raise unreadable(p, f"a JSON {type(data).__name__}, not an object")
        return data

    def check_readable(self) -> None:
        """Every run file that exists can be read (before any is cleared): ``config.json`` and
        ``metrics.json`` parse, each line of ``epochs.jsonl`` but a torn last one parses, ``last.pt``
        loads.

        Raises:
            UserError: ``unreadable: FILE``.
        """
        for name in (CONFIG, METRICS):
            self.read_json(name)
        self.read_epochs()
        p = self.file(LAST)
        if p.exists():
            try:
                torch.load(p, map_location="cpu", weights_only=True)
            except LOAD_ERRORS as e:
                raise unreadable(p, e) from e

    def read_epochs(self) -> list[dict[str, Any]]:
        """The records of ``epochs.jsonl``; a torn last line (a full disk or a kill mid-append) is
        dropped with a warning.

        Raises:
            UserError: ``unreadable: FILE`` when it cannot be read or an earlier line is not JSON.
        """
        p = self.file(EPOCHS)
        if not p.exists():
            return []
        try:
            lines = p.read_text().splitlines()
        except (OSError, ValueError) as e:
            raise unreadable(p, e) from e
        return parse_jsonl(p, lines)

    def append_epoch(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with disk_full(self.file(EPOCHS)), self.file(EPOCHS).open("a") as f:
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

    def load(self, name: str, *, keys: Iterable[str] = ()) -> dict[str, Any] | None:
        """Checkpoint ``name`` (checked by :func:`load_checkpoint`), or None when there is none."""
        p = self.file(name)
        if not p.is_file():
            return None
        return load_checkpoint(p, keys=keys)

    def clear(self) -> None:
        """Remove the files of a previous run, its tracking files included (not the directory or
        unrelated files)."""
        for name in (EPOCHS, METRICS, LAST, BEST, MLFLOW):
            self.file(name).unlink(missing_ok=True)
        for p in self.path.glob(f"{EVENTS_PREFIX}*{EVENTS_SUFFIX}"):
            p.unlink(missing_ok=True)


def parse_jsonl(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of ``lines`` (of JSON-lines file ``path``); a torn last line is dropped
    with a warning on stderr.

    Raises:
        UserError: ``unreadable: FILE`` when a line before the last is not a JSON object.
    """
    out = []
    lines = [ln for ln in lines if ln.strip()]
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except ValueError as e:
            if i == len(lines) - 1:
                print(f"effnas: warning: dropped the torn last line of {path} (a full disk or a kill while "
                      "it was written)", file=sys.stderr)
                break
            raise unreadable(path, f"line {i + 1}: {first_line(e)}") from e
        if not isinstance(rec, dict):
            raise unreadable(path, f"line {i + 1} is not a JSON object")
        out.append(rec)
    return out


def is_run_config(d: dict[str, Any] | None) -> bool:
    """Whether a run directory's ``config.json`` is one the trainer wrote."""
    return d is not None and {"model", "dataset", "epochs", "seed"} <= set(d)


def _differing(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The first key whose value differs between a stored run config and this one."""
    key = differing_key(old, new, defaults)
    if key is None:  # a key only the stored config has
        key = next((k for k in run_key(old) if k not in new), "?")
    return key


def open_run(run: RunDir, cfg: JobConfig) -> dict[str, Any] | str | None:
    """Rank 0's look at the run directory: the finished run's metrics (reuse it), ``"resume"``
    (continue from ``last.pt``), or None (the old run files are cleared, the config written)."""
    key = run_key(cfg.to_dict())
    old_cfg, old_metrics = run.read_json(CONFIG), run.read_json(METRICS)
    if run.file(CONFIG).exists() and not is_run_config(old_cfg):
        raise UserError(f"{run.file(CONFIG)} was not written by effnas: choose another --out, or move it away")
    # A key added to the schema after the run was written counts with its default value.
    defaults = type(cfg)().to_dict()
    same = old_cfg is not None and run_key({**defaults, **old_cfg}) == key
    differs = "" if old_cfg is None or same else f" (its {_differing(old_cfg, cfg.to_dict(), defaults)!r} differs)"
    if same and is_finished(old_metrics):
        return old_metrics
    if not same and is_finished(old_metrics):
        raise UserError(f"out_dir {cfg.out_dir!r} holds a finished run of a different config{differs}: choose "
                         "another --out (or delete it) rather than losing it")
    if cfg.resume and old_cfg is not None and not same:
        raise UserError(f"out_dir {cfg.out_dir!r} holds a run with a different config{differs}: "
                         "resume with the same options, or choose another --out")
    if cfg.resume and same and run.file(LAST).is_file():
        return "resume"
    run.check_readable()  # nothing is cleared on a guess: a file that cannot be read may be a finished run
    run.clear()
    run.write_json(CONFIG, cfg.to_dict())
    return None
