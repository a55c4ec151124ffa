from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import effnas.search_spaces as ss
from effnas.scaling import Coefficients, grid_candidates, grid_search


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([0.02, 0.05, 0.1, 0.15, 0.25]), st.floats(1.2, 3.0), st.floats(0.01, 0.4))
def test_every_candidate_satisfies_the_constraint_and_none_is_missed(step: float, target: float, tol: float) -> None:
    try:
        cands = grid_candidates(step=step, target=target, tolerance=tol, limit=10**7)
    except ValueError as e:
        assert "no grid point" in str(e)
        cands = []
    for c in cands:
        assert min(c.alpha, c.beta, c.gamma) >= 1.0
        assert abs(c.alpha * c.beta**2 * c.gamma**2 - target) <= tol + 1e-9
        for v in (c.alpha, c.beta, c.gamma):  # on the grid
            assert abs((v - 1) / step - round((v - 1) / step)) < 1e-6
    # Completeness: brute force over the same grid.
    n = int(math.ceil((target + tol) / step)) + 2
    grid = [round(1 + i * step, 10) for i in range(n)]
    brute = {(a, b, g) for a in grid for b in grid for g in grid if abs(a * b * b * g * g - target) <= tol}
    assert brute <= {c.as_tuple() for c in cands}
    assert len(set(cands)) == len(cands)


def test_paper_coefficients_are_on_the_default_grid() -> None:
    assert Coefficients(1.2, 1.1, 1.15) in grid_candidates()


@pytest.mark.parametrize("kwargs,needle", [
    ({"step": 0.0}, "grid step"), ({"step": 0.5, "tolerance": 0.01, "target": 2.1}, "no grid point"),
    ({"tolerance": -1}, "tolerance"), ({"target": 0.5}, "target"),
])
def test_bad_grid_arguments(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        grid_candidates(**kwargs)


def test_grid_search_picks_best_writes_files_and_resumes(tmp_path, evaluator) -> None:
    base = ss.get("tiny")
    cands = grid_candidates(step=0.1, tolerance=0.1)
    res = grid_search(base, evaluator, candidates=cands, train_config={"dataset": "test", "epochs": 1},
                      out_dir=tmp_path)
    t = res.table
    ready = t[t.status != "out_of_tolerance"]
    # Only candidates brought within 5 % of 2x are trained, each distinct network once; the others are
    # listed with a reason.
    networks = ready.drop_duplicates("network")
    assert len(evaluator.calls) == len(networks) == 7 < len(ready) == int(t.within_tolerance.sum()) == 10
    assert len(ready) < len(cands) == len(t)
    assert [c["resolution"] for c in evaluator.calls] == networks.resolution.tolist()
    assert {"alpha", "beta", "gamma", "product", "accuracy", "macs", "macs_ratio", "nominal_macs_ratio",
            "resolution_nominal", "resolution", "cost_adjusted", "status", "reason", "network", "points",
            "same_network_as", "n", "mean_accuracy", "ci_low", "ci_high", "tied_with_best", "picked"} <= set(t)
    assert ((ready.macs_ratio / 2 - 1).abs() <= 0.05).all() and (ready.reason == "").all()
    skipped = t[t.status == "out_of_tolerance"]
    assert skipped.accuracy.isna().all() and skipped.run_dir.isna().all()
    assert skipped.reason.str.contains("cannot reach 2x").all()
    # One seed: no estimate of the noise, so the closed-form evaluator's most accurate network (the
    # most MACs) is picked, among its points the one whose product is closest to 2.
    top = ready[ready.accuracy == ready.accuracy.max()]
    best = ready[ready.picked.astype(bool)]
    assert len(best) == 1 and best.index[0] in top.index  # two networks of equal MACs tie: the first is the best
    mine = top[top.network == best.network.iloc[0]]
    closest = mine.loc[(mine["product"] - 2).abs().idxmin(), ["alpha", "beta", "gamma"]].tolist()
    assert list(res.best.as_tuple()) == closest == best[["alpha", "beta", "gamma"]].iloc[0].tolist()
    assert set(ready.tied_with_best.map(repr)) == {"True", "None"}  # the best's own points, the rest unknown
    saved = json.loads((tmp_path / "coefficients.json").read_text())
    assert (saved["alpha"], saved["beta"], saved["gamma"]) == res.best.as_tuple()
    assert saved["source"] == "grid search at phi=1" and saved["noise_floor"] is None
    assert saved["picked_by"].startswith("no estimate of the noise") and saved["n"] == 1
    assert saved["schedule"]["spent"] == {"runs": 7, "epochs": 7} and saved["schedule"]["halving"] is False
    csv = pd.read_csv(tmp_path / "grid.csv", keep_default_na=False)
    assert len(csv) == len(cands) and set(csv.status) == {"completed", "out_of_tolerance"}
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("candidates/*/result.json")}
    assert len(mtimes) == len(networks)
    # Re-running without --resume refuses; with resume nothing is retrained.
    with pytest.raises(ValueError, match="--resume"):
        grid_search(base, evaluator, candidates=cands, train_config={"dataset": "test", "epochs": 1}, out_dir=tmp_path)
    again = grid_search(base, evaluator, candidates=cands, train_config={"dataset": "test", "epochs": 1},
                        out_dir=tmp_path, resume=True)
    assert len(evaluator.calls) == len(networks)
    assert again.best == res.best
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
