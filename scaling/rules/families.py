"""The family of any scaling rule: :func:`rule_family` builds members ``phi`` of compound
(:func:`effnas.scaling.family.family`), of an exponent rule (:func:`effnas.scaling.rules.members.rule_member`)
or of ``nonuniform:MAX`` (:func:`effnas.scaling.rules.nonuniform.nonuniform_member`), every one claiming
``P**phi`` times the base's MACs and held to it within the realised-cost tolerance, or flagged."""

from __future__ import annotations

import math
from collections.abc import Iterable

from effnas.scaling.coefficients import PAPER, Coefficients
from effnas.scaling.family import Member, family
from effnas.scaling.realised import FAMILY_TOLERANCE, check_tolerance
from effnas.scaling.rules.members import rule_member
from effnas.scaling.rules.nonuniform import nonuniform_member
from effnas.scaling.rules.rule import Rule, compound_exponents
from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs


def rule_family(base: NetworkSpec, phis: Iterable[int], rule: Rule, *, coefficients: Coefficients | None = None,
                growth: float = 2.0, depth_rounding: str = "round",
                cost_tolerance: float = FAMILY_TOLERANCE) -> list[Member]:
    """Members ``phis`` of ``base`` scaled by ``rule``: compound's from
    :func:`effnas.scaling.family.family` (``coefficients``, the paper's by default); any other's
    spending ``P**phi`` times the base's MACs, ``P`` the coefficients' ``alpha * beta**2 * gamma**2``
    when given, else ``growth``; ``nonuniform:MAX`` splits it as the coefficients (the paper's by
    default) do.

    >>> import effnas.search_spaces as ss
    >>> from effnas.scaling.rules.rule import parse_rule
    >>> nano = ss.get("efficientnet_nano")
    >>> [(m.method, m.phi, m.within_tolerance) for m in rule_family(nano, [0, 1], parse_rule("width"))]
    [('width-only', 0, True), ('width-only', 1, True)]
    """
    phis = list(phis)
    check_tolerance(cost_tolerance)
    if rule.is_compound:
        return family(base, phis, coefficients=coefficients or PAPER, depth_rounding=depth_rounding,
                      cost_tolerance=cost_tolerance)
    if not phis:
        raise UserError("empty phi range: give at least one phi, e.g. --phis 0-3")
    for phi in phis:
        if isinstance(phi, bool) or not isinstance(phi, int) or phi < 0:
            raise UserError(f"phi must be a non-negative integer, got {phi!r}")
    p = coefficients.product if coefficients is not None else growth
    if not (math.isfinite(p) and p > 1):
        raise UserError(f"the MACs growth per phi must be a number > 1, got {p!r}: e.g. grid.target = 2")
    base_macs = count_macs(base)
    if rule.max_resolution is not None:
        c = coefficients or PAPER
        split = compound_exponents(c.alpha, c.beta, c.gamma)
        return [nonuniform_member(base, rule, phi, exponents=split, growth=p, base_macs=base_macs,
                                  depth_rounding=depth_rounding, cost_tolerance=cost_tolerance) for phi in phis]
    return [rule_member(base, rule, phi, growth=p, base_macs=base_macs, depth_rounding=depth_rounding,
                        cost_tolerance=cost_tolerance) for phi in phis]


__all__ = ["rule_family"]
