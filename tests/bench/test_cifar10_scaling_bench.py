"""bench/cifar10_scaling.py adds seeds to the committed study without runs/: which seeds a part trains
and how a finished seed's table is merged, on the budget's real 8-epoch rows (docs/results/cifar10/budget/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
# bench/results/cifar10_scaling.py (the page) has the same module name: load the bench script under its own
_spec = importlib.util.spec_from_file_location("_bench_cifar10_scaling", ROOT / "bench" / "cifar10_scaling.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
REAL = ROOT / "docs" / "results" / "cifar10" / "budget" / "e8.csv"


def rows(seed: int) -> pd.DataFrame:
    df = pd.read_csv(REAL)
    return df[df["seed"] == seed].reset_index(drop=True)


def test_a_seed_counts_as_done_only_when_all_its_runs_completed(tmp_path: Path) -> None:
    family = tmp_path / "family.csv"
    assert bench.complete_seeds(family) == set()
    df = pd.read_csv(REAL)
    df.to_csv(family, index=False)
    assert bench.complete_seeds(family) == {0, 1}
    df.loc[df.index[-1], "status"] = "failed"  # a seed-1 row
    df.to_csv(family, index=False)
    assert bench.complete_seeds(family) == {0}


def test_merging_a_seed_keeps_the_others_and_replaces_its_own(tmp_path: Path) -> None:
    family, part = tmp_path / "results" / "family.csv", tmp_path / "part.csv"
    rows(1).to_csv(part, index=False)
    merged = bench.merge(family, part, 1)  # no committed table yet
    assert list(merged["seed"]) == [1, 1]
    rows(0).to_csv(part, index=False)
    merged = bench.merge(family, part, 0)
    assert list(merged["seed"]) == [0, 0, 1, 1]
    retrained = rows(1).assign(test_accuracy=0.5)
    retrained.to_csv(part, index=False)
    merged = bench.merge(family, part, 1)
    assert list(merged["seed"]) == [0, 0, 1, 1]
    assert list(merged["test_accuracy"]) == [*rows(0)["test_accuracy"], 0.5, 0.5]
    pd.testing.assert_frame_equal(pd.read_csv(family), merged)
    with pytest.raises(ValueError, match="not only seed 2"):
        bench.merge(family, part, 2)


def test_a_part_with_every_seed_committed_trains_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    pd.read_csv(REAL).to_csv(results / "family.csv", index=False)
    (results / "study.json").write_text(json.dumps({"epochs": 8, "phis": [0, 1, 2], "rules": [], "baselines": True,
                                                    "parts": []}))
    data = tmp_path / "archive.tar.gz"
    data.write_bytes(b"")
    argv = ["--seeds", "2", "--epochs", "8", "--data", str(data), "--results", str(results), "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    assert "holds seeds [0, 1] complete: nothing to train" in capsys.readouterr().out
    assert not (tmp_path / "seed0").exists()
    with pytest.raises(SystemExit):  # other settings than the committed study's: refused before any training
        bench.main([*argv[:2], "--epochs", "16", *argv[4:]])
    assert "holds a study with epochs = 8, not 16" in capsys.readouterr().err
