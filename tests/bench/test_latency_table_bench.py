"""bench/latency_table.py and its page on a small real run (the tiny space, 3 calibration networks, 4 held out):
every held-out candidate is predicted and measured, the table file reloads and predicts the same, and the
page's counts are the CSV's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from effnas.search_spaces.latency_table import LatencyTable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "results"))
_spec = importlib.util.spec_from_file_location("_bench_latency_table", ROOT / "bench" / "latency_table.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

import latency_table as page  # noqa: E402


def test_candidates_are_distinct_and_reproducible() -> None:
    a, b = bench.candidates("tiny", 12, 3), bench.candidates("tiny", 12, 3)
    assert [s.to_json() for s in a] == [s.to_json() for s in b]
    assert len({s.to_json() for s in a}) == 12
    assert [s.to_json() for s in bench.candidates("tiny", 12, 4)] != [s.to_json() for s in a]


def test_the_bench_predicts_and_measures_every_held_out_candidate(tmp_path: Path) -> None:
    out = tmp_path / "latency_table"
    assert bench.main(["--spaces", "tiny", "--calibrate", "3", "--candidates", "4", "--out", str(out)]) == 0
    df = pd.read_csv(out / "candidates.csv")
    assert len(df) == 4 and (df.measured_ms > 0).all() and (df.predicted_ms > 0).all()
    table = LatencyTable.load(out / "tiny.json")
    specs = bench.candidates("tiny", 7, 0)[3:]
    assert [table.predict(s) for s in specs] == pytest.approx(list(df.predicted_ms))
    text = page.render(tmp_path)["latency_table.md"]
    within = int(((df.predicted_ms / df.measured_ms - 1).abs() <= 0.1).sum())
    assert f"| latency table | 4 | {within} (" in text
    assert "## `tiny` space (32 px)" in text and "Target (at least 90 % within +-10 %)" in text


def test_a_table_closer_than_the_macs_line_is_called_better(tmp_path: Path) -> None:
    import json

    d = tmp_path / "latency_table"
    d.mkdir()
    n = 20
    measured = [1.0 + 0.1 * i for i in range(n)]
    pd.DataFrame({"space": "cifar", "candidate": range(n), "resolution": 32, "macs": [1e6 + i for i in range(n)],
                  "params": 1000, "ops_added": 0, "op_sum_ms": measured,
                  "predicted_ms": [m * 1.01 for m in measured],
                  "measured_ms": measured,
                  "macs_line_ms": [m * (1.2 if i % 2 else 0.8) for i, m in enumerate(measured)],
                  "predict_seconds": 0.01}).to_csv(d / "candidates.csv", index=False)
    (d / "run.json").write_text(json.dumps({
        "protocol": {"batch": 1, "threads": 1, "runtime": "torch", "warmup": 5, "repeats": 20},
        "machine": {"processor": "cpu", "cpu_count": 2, "platform": "linux", "torch": "2"}, "calibrate": 10,
        "candidates": n, "seed": 0, "command": "python bench/latency_table.py",
        "spaces": {"cifar": {"entries": 5, "a_ms": 0.0, "b": 1.0}}}))
    text = page.render(tmp_path)["latency_table.md"]
    assert "| latency table | 20 | 20 (100 % [" in text and "| line on MACs | 20 | 0 (0 % [" in text
    assert "`better`: the table predicts closer): +19.0 [" in text and "pts, p < 0.001: better" in text
    assert "**met** (the interval's lower end" in text and "a measurement is 25 calls" in text
