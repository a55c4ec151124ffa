"""Measured time of a trained stage's networks: training throughput from each run's metrics and
inference latency under the documented protocol (:mod:`effnas.search_spaces.timing`), written
into each run directory (``latency.json``) and as columns of the stage's table.

Latency is measured in this process after every run of the stage has ended (nothing else of the
stage runs meanwhile), once per distinct network (seeds, and members of different rules that are
the same network, share it: :func:`effnas.scaling.grid.network_key`). A run directory whose
``latency.json`` was measured under the same protocol on the same machine is read back on
``--resume``, not measured again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.scaling.grid import network_key
from effnas.scaling.record import COMPLETED, unreadable
from effnas.scaling.runner import Job
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.atomic import atomic_json
from effnas.search_spaces.timing import Protocol, machine, measure

#: Each timed run's record: its latencies, the protocol and the machine.
LATENCY_FILE = "latency.json"
#: The table's columns of measured time (``ort_*`` only with onnxruntime; ``train_seconds`` is the trainer's).
TIME_COLUMNS = ("train_img_per_s", "latency_batch", "latency_ms_b1", "latency_ms_bN", "ort_latency_ms_b1",
                "ort_latency_ms_bN")

Measure = Callable[[NetworkSpec, Protocol], dict[str, Any]]


def stored_latency(run_dir: str | Path, protocol: Protocol, here: dict[str, Any]) -> dict[str, Any] | None:
    """The run's ``latency.json`` when it was measured under ``protocol`` on machine ``here``, else None."""
    p = Path(run_dir) / LATENCY_FILE
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise unreadable(p, e) from e
    if data.get("protocol") == protocol.to_dict() and data.get("machine") == here:
        return dict(data)
    return None


def time_networks(table: pd.DataFrame, jobs: Sequence[Job], protocol: dict[str, Any], *,
                  measure_fn: Measure | None = None) -> pd.DataFrame:
    """``table`` (a row per job, as :func:`effnas.scaling.runner.run_jobs` returns it) with
    ``train_img_per_s`` (the trainer's ``images_per_second``: training images over the seconds spent
    in training steps) and, for every completed run, the latencies of :func:`effnas.search_spaces.timing.measure`
    under ``protocol`` (``measure_fn``, default :func:`effnas.search_spaces.timing.measure`); each completed
    run's directory gets ``latency.json``."""
    measure_fn = measure_fn or measure
    p = Protocol(**protocol)
    here = machine(p.threads, runtimes=p.runtimes)
    out = table.copy()
    if "images_per_second" in out.columns:
        out["train_img_per_s"] = pd.to_numeric(out["images_per_second"], errors="coerce")
    measured: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    for job, (_, row) in zip(jobs, out.iterrows(), strict=True):
        if row.get("status") != COMPLETED or not isinstance(row.get("run_dir"), str):
            records.append({})
            continue
        key = network_key(job.spec)
        record = stored_latency(row["run_dir"], p, here) or measured.get(key)
        if record is None:
            record = measure_fn(job.spec, p)
        measured.setdefault(key, record)
        atomic_json(Path(row["run_dir"]) / LATENCY_FILE, record, indent=2, default=str)
        records.append(record)
    for col in TIME_COLUMNS[1:]:
        values = [r.get(col) for r in records]
        if any(v is not None for v in values):
            out[col] = values
    return out


__all__ = ["LATENCY_FILE", "TIME_COLUMNS", "stored_latency", "time_networks"]
