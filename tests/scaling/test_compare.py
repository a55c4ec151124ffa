"""Computed verdicts on synthetic families whose truth is known, and the paper table built from them."""

import numpy as np
import pandas as pd

from effnas.scaling.analysis.compare import (
    CONTRADICTED,
    HOLDS,
    MIXED,
    NOT_SEPARATED,
    PARTLY,
    UNDECIDED,
    claim_verdict,
    compare_families,
    compare_methods,
    paper_table,
)


def family(acc: dict[str, list[float]], *, seeds: int = 3, sd: float = 0.005, macs_gap: float = 0.0,
           seed: int = 0) -> pd.DataFrame:
    """A family.csv: ``acc[method][phi]`` is the true accuracy, runs add N(0, sd) noise per seed."""
    rng = np.random.default_rng(seed)
    rows = []
    for method, means in acc.items():
        for phi, mean in enumerate(means):
            if method != "compound" and phi == 0:
                continue
            macs = 1e6 * 2**phi * (1 + (macs_gap if method == "width" else 0.0))
            rows += [{"method": method, "phi": phi, "macs": macs, "params": 1e4 * 2**phi, "seed": s,
                      "test_accuracy": mean + sd * rng.standard_normal()} for s in range(seeds)]
    return pd.DataFrame(rows)


TRUTH = {"compound": [0.60, 0.65, 0.68], "depth": [0.60, 0.62, 0.63], "width": [0.60, 0.65, 0.68],
         "resolution": [0.60, 0.67, 0.71]}


def test_each_comparison_finds_the_truth() -> None:
    t = compare_methods(family(TRUTH)).set_index(["phi", "b"])
    assert t.loc[(2, "depth"), "verdict"] == "better"  # 5 points, sd 0.5
    assert t.loc[(2, "width"), "verdict"] == "tied within noise"  # no difference
    assert t.loc[(2, "resolution"), "verdict"] == "worse"  # resolution wins by 3 points
    assert t.loc[(2, "depth"), "test"] == "paired t (3 seeds)"
    assert t.loc[(2, "depth"), "ci_low"] > 0 and abs(t.loc[(2, "depth"), "diff"] - 0.05) < 0.01


def test_one_seed_is_too_few_and_unequal_macs_not_comparable() -> None:
    one = compare_methods(family(TRUTH, seeds=1))
    assert set(one["verdict"]) == {"too few seeds"}
    gap = compare_methods(family(TRUTH, macs_gap=0.3)).set_index(["phi", "b"])
    assert gap.loc[(1, "width"), "verdict"] == "not comparable"
    assert "+30.0 %" in gap.loc[(1, "width"), "note"]
    assert gap.loc[(1, "depth"), "verdict"] == "better"


def test_paper_table_is_generated_from_the_verdicts() -> None:
    table = paper_table(family(TRUTH), other=family({"compound": [0.55, 0.60, 0.63]}, seed=1),
                        labels=("found", "B0")).set_index("claim")
    assert table.loc["compound beats depth-only scaling at equal MACs", "verdict"] == HOLDS
    assert table.loc["compound beats width-only scaling at equal MACs", "verdict"] == NOT_SEPARATED
    assert table.loc["compound beats resolution-only scaling at equal MACs", "verdict"] == CONTRADICTED
    assert table.loc["every method's largest member beats the base", "verdict"] == HOLDS
    assert table.loc["the found family beats the B0 family member for member", "verdict"] == HOLDS
    assert table.loc["compound beats depth-only scaling at equal MACs", "comparisons"] == "2 better (of 2)"
    fams = compare_families(family(TRUTH), family({"compound": [0.55, 0.60, 0.63]}, seed=1, seeds=1))
    assert set(fams["verdict"]) == {"too few seeds"}


def test_claim_verdict_rule() -> None:
    assert claim_verdict(["better", "better"]) == HOLDS
    assert claim_verdict(["better", "tied within noise"]) == PARTLY
    assert claim_verdict(["better", "worse"]) == MIXED
    assert claim_verdict(["worse", "tied within noise"]) == CONTRADICTED
    assert claim_verdict(["tied within noise", "too few seeds"]) == NOT_SEPARATED
    assert claim_verdict(["too few seeds", "not comparable"]) == UNDECIDED
    assert claim_verdict([]) == UNDECIDED
