"""``effnas bench-build``: train every network of a small MBConv space under one protocol and write the table
:class:`effnas.nas.benchmarks.mbconv.MBConvTable` reads (``table.csv`` and ``protocol.json``).

The jobs go seed-major (every architecture with seed 0, then seed 1, ...), so a build stopped part-way leaves
whole seeds; ``--resume`` keeps every finished run. After training, each network's batch-1 latency is measured
(``family.latency_*``) and each run's per-epoch validation accuracy is read from its ``epochs.jsonl``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from effnas.experiments.config.schema import ExperimentConfig
from effnas.experiments.pipeline.plan import num_classes, runtime, timing_protocol, train_config
from effnas.experiments.pipeline.resolved import StagePlan
from effnas.experiments.train.rundir import parse_jsonl
from effnas.nas.benchmarks.mbconv import arch_key, architectures, space_choices
from effnas.nas.space import get_mbconv_space
from effnas.scaling.runner import Job
from effnas.search_spaces.common.atomic import atomic_json, atomic_text
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs
from effnas.search_spaces.timing import machine

#: The largest space a build trains whole (every network x every seed).
MAX_ARCHS = 1000
#: The per-run table ``train_table`` writes; ``table.csv`` is built from it.
RUNS = "runs.csv"


def bench_plan(cfg: ExperimentConfig, space_name: str) -> StagePlan:
    """Every architecture of ``space_name`` x ``family.seeds`` (seed-major), trained with ``[train]``."""
    space = get_mbconv_space(space_name)
    if space.size > MAX_ARCHS:
        raise UserError(f"space {space.name!r} has {space.size:.3g} networks, more than a build trains ({MAX_ARCHS}): "
                         "use a smaller space (e.g. cifar_bench, 216 networks)")
    names = list(space_choices(space))
    archs = architectures(space)
    specs = [space.to_spec(p, num_classes=num_classes(cfg), resolution=cfg.data.resolution or None,
                           name=f"{space.name}-{arch_key(p, names)}") for p in archs]
    jobs = [Job(key=f"archs/{arch_key(p, names)}-seed{s}", spec=spec, seed=s, info={"method": "arch", **p})
            for s in cfg.family.seeds for p, spec in zip(archs, specs, strict=True)]
    table = pd.DataFrame([{"arch": arch_key(p, names), **p, "macs": count_macs(spec), "resolution": spec.resolution}
                          for p, spec in zip(archs, specs, strict=True)])
    return StagePlan(table, jobs, train_config(cfg, cfg.train), runtime(cfg), timing=timing_protocol(cfg))


def curve(run_dir: str | Path) -> str:
    """The run's validation accuracy after each epoch, ``;`` between them (its ``epochs.jsonl``)."""
    path = Path(run_dir) / "epochs.jsonl"
    values = [r.get("val_accuracy") for r in parse_jsonl(path, path.read_text().splitlines())]
    if not values or any(v is None for v in values):
        raise UserError(f"{path} has an epoch without a validation accuracy: a table needs data.val_fraction > 0")
    return ";".join(f"{v:.4f}" for v in values)


def write_table(cfg: ExperimentConfig, space_name: str, trained: pd.DataFrame, out: str | Path,
                command: str) -> Path:
    """``table.csv`` (a row per completed run: the choices, seed, accuracies, curve, costs, latency) and
    ``protocol.json`` in ``out``; the table's path."""
    space = get_mbconv_space(space_name)
    names = list(space_choices(space))
    done = trained[trained["status"] == "completed"]
    rows = [{**{n: r[n] for n in names}, "seed": int(r["seed"]), "val_accuracy": r["val_accuracy"],
             "test_accuracy": r["test_accuracy"], "curve": curve(r["run_dir"]), "train_seconds": r["train_seconds"],
             "params": r["trained_params"], "macs": r["trained_macs"], "latency_ms": r.get("latency_ms_b1")}
            for _, r in done.iterrows()]
    path = Path(out) / "table.csv"
    atomic_text(path, pd.DataFrame(rows).to_csv(index=False))
    d, t = cfg.data, cfg.train
    atomic_json(Path(out) / "protocol.json", {
        "space": space.to_dict(), "dataset": d.dataset.split(":")[0], "num_classes": num_classes(cfg) or
        space.num_classes, "epochs": t.epochs, "recipe": t.recipe, "data_fraction": d.data_fraction,
        "val_fraction": d.val_fraction, "batch_size": t.batch_size, "seeds": list(cfg.family.seeds),
        "architectures": space.size, "rows": len(rows), "latency": timing_protocol(cfg),
        "train": dataclasses.asdict(t), "machine": machine(t.threads or 1), "command": command}, indent=1)
    return path


__all__ = ["MAX_ARCHS", "RUNS", "bench_plan", "curve", "write_table"]
