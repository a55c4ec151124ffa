"""Fixtures shared by tests/experiments and tests/browser."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

import effnas.search_spaces as ss
from effnas.nas.pareto import COLUMNS
from effnas.scaling import PAPER, family, matched_baselines, plot_curves


def cifar10_archive() -> Path:
    """The real CIFAR-10 JPEG archive (../shared/data/README.md): ``$EFFNAS_CIFAR10_JPEG``, else
    ``../shared/data/cifar10-jpeg.tar.gz`` beside the project root, else beside the repository this
    checkout was cloned from (a clean clone in a temporary directory). Missing: the test fails, naming
    where it looked (never a silent skip)."""
    import os
    import subprocess

    rel = Path("shared") / "data" / "cifar10-jpeg.tar.gz"
    root = Path(__file__).resolve().parents[1]
    tried = [Path(os.environ["EFFNAS_CIFAR10_JPEG"])] if os.environ.get("EFFNAS_CIFAR10_JPEG") else []
    tried.append(root.parent / rel)
    origin = subprocess.run(["git", "-C", str(root), "config", "--get", "remote.origin.url"], capture_output=True,
                            text=True).stdout.strip()
    if origin and Path(origin).is_dir():
        tried.append(Path(origin).resolve().parent / rel)
    for p in tried:
        if p.is_file():
            return p
    pytest.fail(f"the real CIFAR-10 archive is missing: looked at {', '.join(map(str, tried))} "
                "(../shared/data/cifar10-jpeg.tar.gz from the project root, or set EFFNAS_CIFAR10_JPEG)")


@pytest.fixture(scope="session")
def cifar10_archive_path() -> Path:
    return cifar10_archive()


def make_run(run: Path) -> Path:
    """A small run directory in the pipeline's layout, made with the real writers: ``trials.csv`` in
    ``effnas.nas.pareto.COLUMNS`` with real specs (trial 8 pruned), the baseline, the paper's coefficients as
    ``grid/coefficients.json`` and ``curves/`` from ``scaling.plot_curves`` on a family table."""
    base = ss.get("efficientnet_nano")
    (run / "search").mkdir(parents=True)
    rows = []
    for i in range(9):
        spec = ss.scale(base, width=1.0 + 0.1 * (i % 4), depth=1.0 + 0.25 * (i % 3), name=f"trial{i}")
        c = ss.counts(spec)
        acc = round(0.30 + 0.012 * (i % 4) + 0.009 * (i % 3) - 0.004 * (i % 2), 4)
        d = json.loads(spec.to_json())
        rows.append({"number": i, "state": "COMPLETE" if i != 8 else "PRUNED", "status": "completed",
                     "strategy": "random", "accuracy": acc, "macs": c.macs, "params": c.params,
                     "reward": round(acc * (c.macs / 1e6) ** -0.07, 4), "target": 1e6, "w": -0.07,
                     "blocks": " ".join(d["stages"]), "spec": json.dumps(d, separators=(",", ":"))})
    with open(run / "search" / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS), restval="")
        w.writeheader()
        w.writerows(rows)
    (run / "search" / "pareto.json").write_text(json.dumps({"cost": "macs", "objective": {"target": 1e6}}))
    dataclasses.replace(base, name="baseline").save(run / "baseline.json")
    (run / "grid").mkdir()
    PAPER.save(run / "grid" / "coefficients.json")
    members = family(base, [0, 1, 2, 3], coefficients=PAPER)
    table = []
    for m in members + matched_baselines(base, [members[2]]):
        for seed in (0, 1):
            acc = 0.95 - 0.5 * (m.macs / 1e5) ** -0.4 + 0.01 * seed - (0.03 if m.method != "compound" else 0.0)
            table.append({**m.row(), "seed": seed, "test_accuracy": acc})
    plot_curves(pd.DataFrame(table), run / "curves", metric="test_accuracy")
    return run


@pytest.fixture(scope="session")
def explore_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`make_run` with ``report.md`` and ``report.html`` written."""
    from effnas.experiments.report.markdown import write_report

    run = make_run(tmp_path_factory.mktemp("explore") / "run")
    config = {"name": "explore", "train": {"model": "efficientnet_nano"}, "family": {"phis": [0, 1, 2, 3]}}
    write_report(run, config=config, stages={"search": {"seconds": 3.0}})
    return run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run only where a CUDA device exists (bench/gpu_check.sh runs them)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: run bench/gpu_check.sh on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
