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
from effnas.scaling.coefficients import PAPER
from effnas.scaling.compound import compound
from effnas.scaling.rules import compound_exponents, parse_rule, rule_family
from effnas.scaling.rules.nonuniform import later_stages
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

RULES = ("compound", "fast:0.8", "fast:1", "fast:0.333333", "resnet-rs", "resnet-rs:short", "depth", "width",
         "resolution", "exponents:0.2,0.6,0.2", "nonuniform")


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
    ("nonuniform:12.5", "whole pixels"), ("nonuniform:0", "whole pixels"), ("nonuniform:x", "must be a number"),
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


def test_nonuniform_is_compound_below_its_cap_and_deepens_only_the_later_stages_above_it() -> None:
    """EfficientNetV2 Section 4 on B0 with the paper's coefficients: below 300 px a member is compound's; past
    it the input stays at 300 and the MACs the cap leaves go to the last third of the stages (B0's last 3 of
    7), at compound's cost per phi."""
    b0 = ss.get("efficientnet_b0")
    nu = rule_family(b0, range(5), parse_rule("nonuniform:300"), coefficients=PAPER)
    co = rule_family(b0, range(5), parse_rule("compound"), coefficients=PAPER)
    assert [m.method for m in nu] == ["nonuniform:300"] * 5
    assert [m.spec.resolution for m in co] == [224, 258, 296, 341, 392]
    assert [m.spec.resolution for m in nu] == [224, 258, 296, 300, 300]
    later = set(later_stages(len(b0.stages)))
    assert later == {4, 5, 6}
    for n, c in zip(nu, co, strict=True):
        assert n.target_macs_ratio == pytest.approx(c.target_macs_ratio)  # compound's cost per phi
        assert n.within_tolerance and n.reason == "" and n.macs == count_macs(n.spec)
        assert (n.multipliers.depth, n.multipliers.width) == pytest.approx((c.multipliers.depth, c.multipliers.width))
        reps_n, reps_c = [s.repeats for s in n.spec.stages], [s.repeats for s in c.spec.stages]
        assert [s.out_channels for s in n.spec.stages] == [s.out_channels for s in c.spec.stages]
        if c.spec.resolution <= 300:
            assert reps_n == reps_c
        else:
            assert all(reps_n[i] == reps_c[i] for i in range(7) if i not in later)
            assert all(reps_n[i] >= reps_c[i] for i in later) and sum(reps_n) > sum(reps_c)
            assert n.resolution_nominal == c.spec.resolution and n.multipliers.resolution == pytest.approx(300 / 224)
    # the table in docs/scaling.md, "Non-uniform scaling"
    assert [([s.repeats for s in m.spec.stages], f"{m.macs_ratio:.2f}", f"{m.target_macs_ratio:.2f}") for m in nu[3:]] \
        == [([2, 3, 3, 5, 6, 9, 3], "7.07", "7.08"), ([2, 4, 4, 6, 13, 17, 4], "13.63", "13.60")]


def test_efficientnetv2_s_grown_with_the_papers_cap() -> None:
    """V2-S (6 stages, 384 px) grown by nonuniform (480 px, Section 4): never past 480 px, extra layers only in
    stages 5 and 6 (automl's V2-M: 14 and 18 blocks there, against S's 9 and 15)."""
    s = ss.get("efficientnetv2_s")
    members = rule_family(s, range(4), parse_rule("nonuniform"), coefficients=PAPER)
    assert list(later_stages(6)) == [4, 5]
    assert [m.spec.resolution for m in members] == [384, 442, 480, 480]
    for m in members:
        reps = [st.repeats for st in m.spec.stages]
        assert m.within_tolerance and m.spec.resolution <= 480
        assert reps[4:] >= [9, 15] and reps[:4] == [st.repeats for st in rule_family(
            s, [m.phi], parse_rule("compound"), coefficients=PAPER)[0].spec.stages][:4]
    assert [st.repeats for st in members[3].spec.stages][4] > 2 * 9


@pytest.mark.parametrize("base", ["tiny", "efficientnet_nano", "efficientnet_b0"])
def test_a_binding_cap_lands_within_tolerance_or_is_flagged(base: str) -> None:
    spec = ss.get(base)
    cap = spec.resolution + 4
    for m in rule_family(spec, range(5), parse_rule(f"nonuniform:{cap}"), cost_tolerance=0.1):
        assert m.spec.resolution <= cap and m.macs == count_macs(m.spec)
        assert (abs(m.macs_ratio / m.target_macs_ratio - 1) <= 0.1 + 1e-9) == m.within_tolerance
        assert (m.reason == "") == m.within_tolerance
    with pytest.raises(UserError, match=f"caps the input below the base's own {spec.resolution} px"):
        rule_family(spec, [1], parse_rule(f"nonuniform:{spec.resolution - 1}"))


def test_nonuniform_round_trips_through_toml_set_and_the_family_flag(tmp_path, capsys) -> None:
    cfg = load_config("demo", overrides=["family.rule=nonuniform:20", "family.rules=fast:0.8"])
    assert (cfg.family.rule, cfg.family.rules) == ("nonuniform:20", ("fast:0.8",))
    path = tmp_path / "exp.toml"
    path.write_text(cfg.to_toml())
    again = load_config(path)
    assert again == cfg
    members = plan.family_members(again, plan.base_spec(again), None)
    rows = [m for m in members if m.method == "nonuniform:20"]
    assert [m.phi for m in rows] == list(again.family.phis) and max(m.spec.resolution for m in rows) == 20
    assert main(["family", "--rule", "nonuniform:36", "--base", "tiny", "--phis", "0-3", "--no-baselines",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in out] == ["nonuniform:36"] * 4 and max(r["resolution"] for r in out) == 36
    assert out[3]["blocks"] > out[0]["blocks"] and all(r["within_tolerance"] for r in out)
