from __future__ import annotations

import pytest

import effnas.search_spaces as ss
from effnas.scaling import Coefficients, family, family_table, parse_phis, side_by_side

#: REFERENCE.md: B0...B7 exact parameter counts (1000 classes, native resolution).
OFFICIAL_PARAMS = [5_288_548, 7_794_184, 9_109_994, 12_233_232, 19_341_616, 30_389_784, 43_040_704, 66_347_960]
OFFICIAL_RES = [224, 240, 260, 300, 380, 456, 528, 600]


def test_official_family_reproduces_reference_params_exactly() -> None:
    members = family(ss.get("efficientnet_b0"), range(8), official=True)
    assert [m.params for m in members] == OFFICIAL_PARAMS
    assert [m.spec.resolution for m in members] == OFFICIAL_RES
    assert [m.spec.dropout for m in members] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]
    assert abs(members[7].macs / 37.746e9 - 1) < 0.005


def test_coefficient_family_beside_official() -> None:
    b0 = ss.get("efficientnet_b0")
    paper = Coefficients(1.2, 1.1, 1.15)
    t = side_by_side(family(b0, range(8), official=True), family(b0, range(8), coefficients=paper))
    assert len(t) == 8
    assert t.compound_r.tolist() == [224, 258, 296, 341, 392, 451, 518, 596]
    assert t.compound_d.iloc[7] == pytest.approx(3.583, abs=1e-3)
    # Rounding-to-nearest keeps realised MACs within 15 % of nominal (README).
    assert ((t.compound_macs_ratio / t.compound_nominal_ratio - 1).abs() < 0.15).all()


def test_family_table_columns_and_monotone_cost() -> None:
    t = family_table(family(ss.get("tiny"), range(4)))
    assert list(t.columns[:7]) == ["method", "phi", "name", "depth", "width", "resolution", "resolution_mult"]
    assert t.macs.is_monotonic_increasing and t.params.is_monotonic_increasing
    assert t.dropout.is_monotonic_increasing
    # Activations (conv + linear outputs) beside params and MACs, counted for the member as adjusted.
    assert t.activations.is_monotonic_increasing
    assert t.activations.iloc[0] == 54_768 == ss.counts(ss.get("tiny")).activations


@pytest.mark.parametrize("text,needle", [("3-1", "empty phi range"), ("a-b", "bad phi range"), ("-1", "bad phi")])
def test_bad_phis(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_phis(text)


def test_empty_family_and_official_beyond_table() -> None:
    with pytest.raises(ValueError, match="empty phi range"):
        family(ss.get("tiny"), [])
    with pytest.raises(ValueError, match="B0...B8"):
        family(ss.get("tiny"), [9], official=True)
