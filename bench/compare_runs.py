"""Compare two run directories' result tables cell by cell, ignoring what a machine's speed decides.

Used to check that a refactoring changed no number: run the same seeded command before and after
(e.g. ``effnas run demo --out A --set run.workers=1 --set train.threads=1``, once per version) and

    python bench/compare_runs.py A B

Every CSV under A and B (search/trials.csv, grid/grid.csv, family/family.csv, curves/*.csv, ...) is
compared exactly (no tolerance) on every column but timings (:data:`TIMING`); each directory's own
path inside cells is replaced by ``RUN`` first. Exit code 0 when all are equal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

#: Columns measured in time or speed: they differ between any two runs.
TIMING = frozenset({"train_seconds", "images_per_second", "latency_ms", "seconds", "wall_seconds", "elapsed"})


def compare(a: Path, b: Path) -> bool:
    same = True
    names = sorted({str(p.relative_to(d)) for d in (a, b) for p in d.rglob("*.csv")})
    for rel in names:
        pa, pb = a / rel, b / rel
        if not (pa.is_file() and pb.is_file()):
            print(f"MISSING {rel}: {'only in ' + str(a) if pa.is_file() else 'only in ' + str(b)}")
            same = False
            continue
        da = pd.read_csv(pa).replace(str(a), "RUN", regex=True)
        db = pd.read_csv(pb).replace(str(b), "RUN", regex=True)
        if list(da.columns) != list(db.columns):
            print(f"COLUMNS {rel}: {sorted(set(da.columns) ^ set(db.columns))}")
            same = False
            continue
        cols = [c for c in da.columns if c not in TIMING]
        try:
            pd.testing.assert_frame_equal(da[cols], db[cols], check_exact=True)
            print(f"same {rel}: {len(da)} rows x {len(cols)} columns compared (ignored: "
                  f"{', '.join(c for c in da.columns if c in TIMING) or 'none'})")
        except AssertionError as e:
            print(f"DIFF {rel}: {' '.join(str(e).split())[:300]}")
            same = False
    print("ALL SAME" if same else "DIFFERENCES")
    return same


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/compare_runs.py RUN_DIR_A RUN_DIR_B")
    sys.exit(0 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 1)
