"""bench/progressive.py and its page on a tiny real run (digits, 2 epochs): the fixed run gets the
progressive run's measured training time in whole epochs, a second call trains nothing (resumable), and
the page's paired difference is scipy's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from scipy.stats import ttest_rel

import effnas.search_spaces as ss

ROOT = Path(__file__).resolve().parents[2]


def script(path: str) -> ModuleType:
    folder = str((ROOT / path).parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"_bench_{Path(path).stem}_{len(path)}", ROOT / path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_the_bench_matches_time_resumes_and_its_page_recomputes(tmp_path: Path) -> None:
    bench, page = script("bench/progressive.py"), script("bench/results/progressive.py")
    csv, spec = tmp_path / "progressive" / "runs.csv", tmp_path / "tiny.json"
    spec.write_text(ss.get("tiny", num_classes=10).to_json())
    argv = ["--model", str(spec), "--dataset", "digits", "--resolution", "16", "--min-size", "8", "--epochs", "2",
            "--stages", "2", "--no-randaug", "--data-fraction", "0.3", "--batch-size", "64", "--seeds", "0", "1",
            "--out", str(csv), "--work", str(tmp_path / "work")]
    assert bench.main(argv) == 0
    runs = pd.read_csv(csv)
    assert sorted(zip(runs["mode"], runs.seed, strict=True)) == [("fixed", 0), ("fixed", 1), ("progressive", 0),
                                                                 ("progressive", 1)]
    assert set(runs.status) == {"completed"}
    prog, fixed = (runs[runs["mode"] == m].set_index("seed") for m in ("progressive", "fixed"))
    assert list(prog.schedule) == ["8px 16px"] * 2 and list(fixed.schedule) == ["16px 16px"] * 2
    for s in (0, 1):
        assert fixed.budget_seconds[s] == prog.train_seconds[s]
        assert fixed.epochs[s] == max(2, round(prog.train_seconds[s] / prog.full_size_epoch_seconds[s]))
    assert bench.main(argv) == 0 and len(pd.read_csv(csv)) == 4  # resumed: nothing trained again
    assert page.main(page.SCRIPT, page.PAGES, page.render, ["--data", str(tmp_path)]) == 0
    text = (tmp_path / "progressive" / "report.md").read_text()
    t = ttest_rel(prog.test_accuracy.sort_index(), fixed.test_accuracy.sort_index())
    assert f"p {t.pvalue:.3f}" in text or "p < 0.001" in text
    d = 100 * (prog.test_accuracy.sort_index() - fixed.test_accuracy.sort_index()).mean()
    assert f"test accuracy (paired t (2 seeds)): {d:+.1f}" in text
