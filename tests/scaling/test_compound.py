from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import effnas.search_spaces as ss
from effnas.scaling import compound, member

# Closed-form counts equal effnas.search_spaces.cost.macs exactly (tests/scaling/test_counts.py) and are ~1000x faster.
from effnas.search_spaces.counts import count_macs as macs

OFFICIAL_PARAMS = [5_288_548, 7_794_184, 9_109_994, 12_233_232, 19_341_616, 30_389_784, 43_040_704, 66_347_960]


@pytest.mark.parametrize("phi", [0, 1, 2, 3])
def test_official_family_members_are_the_registered_models(phi: int) -> None:
    spec, mult = member(ss.get("efficientnet_b0"), phi, official=True)
    assert spec.resolution == ss.get(f"efficientnet_b{phi}").resolution
    assert dataclass_equal_but_name(spec, ss.get(f"efficientnet_b{phi}"))


def dataclass_equal_but_name(a: ss.NetworkSpec, b: ss.NetworkSpec) -> bool:
    import dataclasses

    return dataclasses.replace(a, name="x") == dataclasses.replace(b, name="x")


@pytest.mark.parametrize("phi", [1, 2, 3, 4])
def test_realised_macs_ratio_within_15_percent_of_nominal(phi: int) -> None:
    base = ss.get("efficientnet_b0")
    b0 = macs(base)
    spec, mult = member(base, phi, coefficients=(1.2, 1.1, 1.15))
    realised = macs(spec) / b0
    nominal = (1.2 * 1.1**2 * 1.15**2) ** phi
    print(f"phi={phi}: realised {realised:.3f} nominal {nominal:.3f}")
    assert abs(realised / nominal - 1) < 0.15


@given(st.floats(1.0, 2.0), st.floats(1.0, 2.0), st.floats(1.0, 2.0), st.integers(0, 8))
def test_compound_is_powers(a: float, b: float, g: float, phi: int) -> None:
    m = compound(a, b, g, phi)
    assert m.depth == pytest.approx(a**phi)
    assert m.nominal_macs_ratio == pytest.approx((a * b * b * g * g) ** phi)


def test_coefficients_below_one_rejected() -> None:
    with pytest.raises(ValueError, match="beta must be"):
        compound(1.2, 0.9, 1.1, 1)
