"""Fair grid and honest members (issue 9): realised MACs within tolerance of the claimed ratio,
or a reason. Every number is counted on the real specs (effnas.search_spaces.counts, equal to fvcore)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import effnas.search_spaces as ss
from effnas.scaling import (
    Coefficients,
    all_within_tolerance,
    candidate_table,
    cost_flags,
    family,
    family_table,
    grid_candidates,
    grid_search,
    matched_baselines,
)
from effnas.scaling.realised import fit_resolution, pixel_bracket
from effnas.search_spaces.counts import count_macs


def no_pixel_within(spec: ss.NetworkSpec, base_macs: int, target: float, tol: float) -> bool:
    """Brute force: no input size from 1 px to 4x the nominal one realises ``target`` within ``tol``."""
    return all(abs(count_macs(spec, px) / base_macs / target - 1) > tol for px in range(1, 4 * spec.resolution))


def closest_pixels(spec: ss.NetworkSpec, base_macs: int, target: float) -> set[int]:
    """Brute force: every input size whose MACs are closest to ``target`` in log-ratio."""
    err = {px: abs(math.log(count_macs(spec, px) / base_macs / target)) for px in range(1, 4 * spec.resolution)}
    best = min(err.values())
    return {px for px, e in err.items() if e <= best + 1e-12}


@pytest.mark.parametrize("name,resolution", [("efficientnet_b0", 32), ("efficientnet_nano", 16)])
def test_every_grid_candidate_is_within_5_percent_or_says_why(name: str, resolution: int) -> None:
    base = ss.get(name, resolution=resolution)
    base_macs = count_macs(base)
    cands = grid_candidates()
    t, specs = candidate_table(base, cands)
    assert len(t) == len(cands) == 111  # never dropped
    print(f"{name} @ {resolution}px: {int(t.within_tolerance.sum())}/111 within 5 %; unadjusted ratios "
          f"{t.macs_ratio_unadjusted.min():.2f}-{t.macs_ratio_unadjusted.max():.2f}")
    for row, spec in zip(t.itertuples(), specs, strict=True):
        realised = count_macs(spec) / base_macs  # recounted, not read from the table
        assert spec.resolution == row.resolution and realised == pytest.approx(row.macs_ratio, abs=1e-4)
        if row.within_tolerance:
            assert row.status == "ready" and row.reason == ""
            assert abs(realised / 2 - 1) <= 0.05
            # Unchanged when the nominal resolution already fits; otherwise a closest pixel count.
            if abs(row.macs_ratio_unadjusted / 2 - 1) <= 0.05:
                assert row.resolution == row.resolution_nominal and not row.cost_adjusted
            else:
                assert row.cost_adjusted and row.resolution in closest_pixels(spec, base_macs, 2.0)
        else:
            assert row.status == "out_of_tolerance" and row.reason.startswith("cannot reach 2x +-5% in whole pixels")
            assert no_pixel_within(spec, base_macs, 2.0, 0.05)
            below, above = pixel_bracket(spec, 2.0 * base_macs)
            assert f"{below} px gives" in row.reason and f"{above} px gives" in row.reason


def test_the_demo_winner_realised_3x_and_now_is_held_to_2x_or_flagged() -> None:
    nano = ss.get("efficientnet_nano")  # 16 px, the demo's base
    t, _ = candidate_table(nano, grid_candidates(step=0.2))  # the demo's 6 candidates
    row = t[(t.alpha == 1.0) & (t.beta == 1.2) & (t.gamma == 1.2)].iloc[0]
    # Before: 19 px and 3.03x for a claimed 2.07x (the demo's winner). No whole pixel count gives 2x +-5 %
    # (16 px: 1.63x, 17 px: 2.92x), so it is listed, not trained at a misleading cost.
    assert (row.resolution_nominal, row.macs_ratio_unadjusted) == (19, pytest.approx(3.03, abs=0.01))
    assert row.status == "out_of_tolerance"
    assert row.reason == "cannot reach 2x +-5% in whole pixels: 16 px gives 1.63x, 17 px gives 2.92x"
    ready = t[t.status == "ready"]
    assert ready[["alpha", "beta", "gamma"]].values.tolist() == [[1.0, 1.0, 1.4], [1.4, 1.2, 1.0], [2.0, 1.0, 1.0]]
    assert ((ready.macs_ratio / 2 - 1).abs() <= 0.05).all()
    # Its family: phi 2 and 3 land within 10 % (4.43x, 9.66x for 4.30x, 8.92x); phi 1 cannot, and says so.
    fam = family_table(family(nano, range(4), coefficients=Coefficients(1.0, 1.2, 1.2)))
    assert fam.within_tolerance.tolist() == [True, False, True, True]
    assert fam.reason[1] == "cannot reach 2.07x +-10% in whole pixels: 16 px gives 1.63x, 17 px gives 2.92x"
    assert not all_within_tolerance(fam) and cost_flags(fam).phi.tolist() == [1]


@pytest.mark.parametrize("name,resolution", [("efficientnet_nano", 16), ("efficientnet_b0", 224)])
def test_paper_family_lands_within_10_percent(name: str, resolution: int) -> None:
    base = ss.get(name, resolution=resolution)
    members = family(base, range(5), coefficients=Coefficients(1.2, 1.1, 1.15))
    t = family_table(members)
    nominal = [1.92027**phi for phi in range(5)]
    realised = [count_macs(m.spec) / count_macs(base) for m in members]
    assert all(abs(r / n - 1) <= 0.10 for r, n in zip(realised, nominal, strict=True)), realised
    assert t.within_tolerance.all() and (t.reason == "").all() and all_within_tolerance(t)
    assert t.nominal_macs_ratio.tolist() == pytest.approx(nominal, abs=1e-3)
    if name == "efficientnet_nano":  # phi 2's nominal 21 px gives 4.64x for 3.69x: moved to 18 px (3.90x)
        assert t.resolution_nominal.tolist() == [16, 18, 21, 24, 28]
        assert t.resolution.tolist() == [16, 18, 18, 24, 28]


def test_members_that_cannot_fit_are_kept_at_the_closest_size_and_flagged() -> None:
    b0 = ss.get("efficientnet_b0", resolution=32)
    members = family(b0, range(3))
    t = family_table(members)
    assert len(t) == 3 and t.within_tolerance.tolist() == [True, False, False]
    for m in members[1:]:
        assert m.spec.resolution in closest_pixels(m.spec, count_macs(b0), m.multipliers.nominal_macs_ratio)
        assert no_pixel_within(m.spec, count_macs(b0), m.multipliers.nominal_macs_ratio, 0.10)
    assert t.reason[1] == "cannot reach 1.92x +-10% in whole pixels: 32 px gives 1.34x, 33 px gives 3.1x"
    # A looser tolerance is a real option: at 30 % phi 2 (4.40x for 3.69x) passes, phi 1 still not.
    assert family_table(family(b0, range(3), cost_tolerance=0.3)).within_tolerance.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="cost_tolerance must be a number in"):
        family(b0, [1], cost_tolerance=1.5)


def test_official_table_is_not_adjusted_but_shows_realised_vs_nominal() -> None:
    t = family_table(family(ss.get("efficientnet_b0"), range(8), official=True))
    assert (t.resolution == t.resolution_nominal).all() and not t.cost_adjusted.any()
    assert t.resolution.tolist() == [224, 240, 260, 300, 380, 456, 528, 600]
    # B1: d 1.1, r 240/224 -> nominal 1.26x; TF's ceil rounding realises 1.78x.
    assert t.nominal_macs_ratio[1] == pytest.approx(1.2628, abs=1e-4)
    assert t.macs_ratio[1] == pytest.approx(1.78, abs=0.01)
    assert t.reason[1].startswith("published B1 row, not adjusted")
    assert all_within_tolerance(t)  # official rows are what they are: left out of the check by default
    assert not all_within_tolerance(t, include_official=True)
    assert cost_flags(t, include_official=True).phi.tolist() == [1, 2, 3, 4, 5]


def test_baselines_for_every_phi_match_the_realised_cost_or_are_flagged() -> None:
    nano = ss.get("efficientnet_nano")
    members = family(nano, range(4))
    bl = matched_baselines(nano, members)
    assert [(b.method, b.phi) for b in bl] == [(d, p) for p in (1, 2, 3) for d in ("depth", "width", "resolution")]
    by_phi = {m.phi: m for m in members}
    for b in bl:
        assert b.target_macs_ratio == pytest.approx(by_phi[b.phi].macs_ratio)
        assert b.within_tolerance == (abs(count_macs(b.spec) / by_phi[b.phi].macs - 1) <= 0.10)
        assert b.within_tolerance or b.reason.startswith(f"nearest {b.method}-only network")
    t = family_table(members + bl)
    print(t[["method", "phi", "resolution", "macs_ratio", "target_macs_ratio", "within_tolerance"]].to_string())
    assert all_within_tolerance(t)
    # B0 at 32 px: phi 1's member sits at 32 px (1.34x); the resolution-only network matching it is the
    # base itself (33 px would be 2.23x) and is flagged, not hidden.
    b0 = ss.get("efficientnet_b0", resolution=32)
    res = [b for b in matched_baselines(b0, family(b0, [1])) if b.method == "resolution"][0]
    assert res.spec.resolution == 32 and not res.within_tolerance and "resolution-only" in res.reason


def test_grid_at_fractional_phi_and_when_nothing_fits(tmp_path, evaluator) -> None:
    nano = ss.get("efficientnet_nano", resolution=32)
    t, specs = candidate_table(nano, grid_candidates(step=0.2), phi=0.5)
    assert t.target_macs_ratio.unique().tolist() == [pytest.approx(math.sqrt(2), abs=1e-4)]
    assert t.within_tolerance.tolist() == [True, False, True, True, False, False]
    assert t.nominal_macs_ratio.tolist() == pytest.approx([c.product**0.5 for c in grid_candidates(step=0.2)], abs=1e-4)
    ok = t[t.within_tolerance]
    assert not ok.empty and ((ok.macs_ratio / math.sqrt(2) - 1).abs() <= 0.05).all()
    with pytest.raises(ValueError, match="grid phi must be"):
        candidate_table(nano, grid_candidates(step=0.2), phi=0)
    # A zero tolerance admits no candidate: grid.csv still lists all of them with reasons, nothing trains.
    with pytest.raises(ValueError, match="no grid candidate realises 2\\^1 = 2x"):
        grid_search(nano, evaluator, candidates=grid_candidates(step=0.2), train_config={"dataset": "test"},
                    out_dir=tmp_path, cost_tolerance=0.0)
    assert evaluator.calls == []
    csv = pd.read_csv(tmp_path / "grid.csv")
    assert len(csv) == 6 and set(csv.status) == {"out_of_tolerance"} and csv.reason.notna().all()


def test_fit_resolution_keeps_a_fitting_spec_unchanged() -> None:
    nano = ss.get("efficientnet_nano")
    f = fit_resolution(nano, base_macs=count_macs(nano), target_ratio=1.0, tolerance=0.0)
    assert f.spec is nano and not f.cost_adjusted and f.within_tolerance and f.reason == ""
