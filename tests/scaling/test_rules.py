"""Scaling rules (effnas.scaling.rules): the exponent forms of Dollar et al. 2021, members held to
their MACs within the realised-cost tolerance or flagged, and a rule as config (TOML, --set, --rule)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.config.schema import load_config
from effnas.experiments.pipeline import plan
from effnas.scaling.baselines import match_macs, single_dimension
from effnas.scaling.compound import compound
from effnas.scaling.rules import compound_exponents, parse_rule, rule_family
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

RULES = ("compound", "fast:0.8", "fast:1", "fast:0.333333", "resnet-rs", "resnet-rs:short", "depth", "width",
         "resolution", "exponents:0.2,0.6,0.2")


def _shares(m) -> tuple[float, float, float]:
    """Each axis's share of the log-MACs ratio d * w^2 * r^2."""
    total = math.log(m.nominal_macs_ratio)
    return math.log(m.depth) / total, 2 * math.log(m.width) / total, 2 * math.log(m.resolution) / total


@pytest.mark.parametrize("s", [2.0, 4.0, 37.5])
def test_fast_at_one_is_width_only_and_at_a_third_scales_the_axes_alike(s: float) -> None:
    fast1, width = parse_rule("fast:1").multipliers(s), parse_rule("width").multipliers(s)
    assert fast1 == width and (fast1.depth, fast1.resolution) == (1.0, 1.0)
    assert fast1.width == pytest.approx(math.sqrt(s))
    third = parse_rule(f"fast:{1 / 3}").multipliers(s)
    assert third.nominal_macs_ratio == pytest.approx(s)
    assert _shares(third) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # dWr (alpha 0.8): width takes 80 % of the log-MACs, depth and resolution 10 % each (pycls d1_w8_g8_r1).
    assert _shares(parse_rule("fast").multipliers(s)) == pytest.approx((0.1, 0.8, 0.1))


def test_fast_at_one_family_is_the_width_only_network_of_the_same_macs() -> None:
    tiny = ss.get("tiny")
    fast1 = rule_family(tiny, range(4), parse_rule("fast:1"))
    width = rule_family(tiny, range(4), parse_rule("width"))
    assert [m.spec.stages for m in fast1] == [m.spec.stages for m in width]
    for m in fast1[1:]:
        # each member is the width-only scaling of the base at its width multiplier (depth, input unchanged)
        spec = single_dimension(tiny, "width", m.multipliers.width)
        assert (spec.stages, spec.head_channels, spec.stem_channels) == \
            (m.spec.stages, m.spec.head_channels, m.spec.stem_channels)
        assert (m.spec.resolution, m.spec.num_blocks, m.multipliers.depth) == (32, tiny.num_blocks, 1.0)
        # and it spends what the width-only baseline search finds for the same MACs, within the tolerance
        _, w = match_macs(tiny, "width", round(m.target_macs_ratio * count_macs(tiny)))
        assert m.within_tolerance and abs(w / m.multipliers.width - 1) < 0.1


def test_compound_rule_is_the_coefficient_family_and_its_exponents() -> None:
    nano = ss.get("efficientnet_nano")
    a = rule_family(nano, range(3), parse_rule("compound"))
    assert [m.method for m in a] == ["compound"] * 3
    e = compound_exponents(1.2, 1.1, 1.15)
    assert sum(e) == pytest.approx(1) and _shares(compound(1.2, 1.1, 1.15, 2)) == pytest.approx(e)


@pytest.mark.parametrize("base", ["tiny", "efficientnet_nano", "efficientnet_b0"])
def test_every_rules_members_land_within_tolerance_or_are_flagged(base: str) -> None:
    spec = ss.get(base)
    for text in RULES:
        members = rule_family(spec, range(4), parse_rule(text), cost_tolerance=0.1)
        assert [m.phi for m in members] == [0, 1, 2, 3]
        for m in members:
            off = abs(m.macs_ratio / m.target_macs_ratio - 1)
            assert m.macs == count_macs(m.spec)
            assert (off <= 0.1 + 1e-9) == m.within_tolerance, (text, m.phi)
            assert (m.reason == "") == m.within_tolerance, (text, m.phi, m.reason)
        if text != "compound":  # growth 2 per phi without coefficients
            assert [m.target_macs_ratio for m in members] == [1, 2, 4, 8]
    if base == "efficientnet_b0":  # at 224 px every rule lands
        assert all(m.within_tolerance for t in RULES for m in rule_family(spec, range(4), parse_rule(t)))


def test_a_member_that_cannot_land_is_kept_and_says_why_for_both_fits() -> None:
    (m,) = rule_family(ss.get("tiny"), [1], parse_rule("fast:0.8"))
    assert not m.within_tolerance
    assert "in whole pixels: 32 px gives 1.8x, 33 px gives 2.58x" in m.reason and "along fast:0.8" in m.reason


def test_resnet_rs_spends_on_depth_first_and_grows_resolution_slower_than_compound() -> None:
    rs, short = parse_rule("resnet-rs").multipliers(8.0), parse_rule("resnet-rs:short").multipliers(8.0)
    eff = compound(1.2, 1.1, 1.15, math.log(8.0) / math.log(1.2 * 1.1**2 * 1.15**2))
    assert rs.width == 1 and rs.depth > rs.resolution ** 2
    assert short.depth == 1 and short.width == pytest.approx(rs.depth ** 0.5)
    assert rs.resolution < eff.resolution and rs.resolution == pytest.approx(8 ** (1 / 6))


@pytest.mark.parametrize("text,needle", [
    ("fast:1.5", "must be in [0, 1]"), ("fast:x", "must be a number"), ("exponents:0.5,0.5", "three numbers"),
    ("exponents:0.5,0.6,0.2", "sum to 1"), ("exponents:-0.2,0.6,0.6", "sum to 1"), ("dwr", "unknown scaling rule"),
])
def test_bad_rules_name_the_syntax(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_rule(text)


def test_a_rule_round_trips_through_toml_and_set(tmp_path) -> None:
    cfg = load_config("demo", overrides=["family.rule=fast:0.8"])
    assert cfg.family.rule == "fast:0.8"
    path = tmp_path / "exp.toml"
    path.write_text(cfg.to_toml())
    again = load_config(path)
    assert again.family.rule == "fast:0.8" and again == cfg
    base = plan.base_spec(again)
    members = plan.family_members(again, base, None)
    rule_rows = [m for m in members if m.method == "fast:0.8"]
    assert [m.phi for m in rule_rows] == list(again.family.phis)
    assert {m.method for m in members} - {"fast:0.8"} <= {"depth", "width", "resolution"}
    with pytest.raises(UserError, match="unknown scaling rule"):
        plan.family_members(load_config("demo", overrides=["family.rule=dwr"]), base, None)


def test_family_rule_flag_prints_the_rules_cost_table_without_coefficients(capsys) -> None:
    assert main(["family", "--rule", "fast:0.8", "--base", "tiny", "--phis", "0-2", "--no-baselines", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["method"], r["phi"], r["target_macs_ratio"]) for r in rows] == \
        [("fast:0.8", 0, 1.0), ("fast:0.8", 1, 2.0), ("fast:0.8", 2, 4.0)]
    assert rows[2]["width"] == pytest.approx(4 ** 0.4, abs=1e-4) and rows[2]["within_tolerance"]
    assert main(["family", "--rule", "fast:0.8", "--base", "tiny", "--phis", "0-1"]) == 0
    out = capsys.readouterr().out
    assert "fast:0.8 phi 1: cannot reach 2x" in out and "activations" in out.splitlines()[0]


def test_the_grid_over_fast_scaling_spends_like_the_rule() -> None:
    """grid.rule = "fast": A on 0, step, ..., 1 as the coefficients that scale exactly as fast:A
    (product = target; A = 1 is width-only; the members built from them are fast:A's)."""
    from effnas.scaling.rules import fast_points, parse_rule

    pts = fast_points(0.25, 2.0)
    assert [a for a, _ in pts] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for a, c in pts:
        assert c.product == pytest.approx(2.0, abs=1e-3) and min(c.alpha, c.beta, c.gamma) >= 1
        m = parse_rule(f"fast:{a:g}").multipliers(2.0**2)  # phi 2: the same depth, width and resolution
        assert (c.alpha**2, c.beta**2, c.gamma**2) == pytest.approx((m.depth, m.width, m.resolution), rel=1e-3)
    assert pts[-1][1].alpha == 1 and pts[-1][1].gamma == 1 and pts[-1][1].beta == pytest.approx(math.sqrt(2), abs=1e-4)


def test_grid_rule_fast_lists_its_points_with_their_rule(tmp_path, capsys) -> None:
    out = tmp_path / "g"
    assert main(["grid", "--base", "tiny", "--dataset", "shapes", "--rule", "fast", "--step", "0.5", "--epochs", "1",
                 "--dry-run", "--out", str(out)]) == 0
    assert "3 values of fast scaling's A, step 0.5, at phi 1" in capsys.readouterr().out
    table = pd.read_csv(out / "grid_candidates.csv")
    assert list(table["rule"]) == ["fast:0", "fast:0.5", "fast:1"]
