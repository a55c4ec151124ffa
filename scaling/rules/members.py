"""The members of an exponent rule (:class:`effnas.scaling.rules.rule.Rule` with exponents; their family:
:func:`effnas.scaling.rules.families.rule_family`): member ``phi`` spends ``growth**phi`` times the base's
MACs the rule's way, rounded as compound members are, and is held to that ratio within the realised-cost
tolerance or flagged.

``growth`` is the MACs multiplier per phi: the compound coefficients' ``alpha * beta**2 * gamma**2``
when the family has coefficients (so member ``phi`` of every rule claims the cost of compound's
member ``phi``, and rules compare at equal MACs), else ``grid.target`` (2 by default).

Rounding is compound's (:func:`effnas.search_spaces.scale`): repeats to whole blocks (nearest by
default), channels to multiples of 8, the input to whole pixels. The realised-cost fit is too:

* a rule that scales resolution (``e_r > 0``) moves the input in whole pixels, as compound members
  do (:func:`effnas.scaling.realised.fit_resolution`);
* a rule that keeps the base's resolution (``e_r = 0``: width-only, depth-only, ``fast:1``) would
  stop being itself if its input moved, so it is fitted along its own direction instead: the MACs
  ratio ``s'`` it spends is moved (bisection: counted MACs never decrease in ``s'``, whose
  multipliers never decrease) until the realised MACs come closest to the target; its multipliers
  are those of ``s'``, its ``target_macs_ratio`` stays ``growth**phi``;
* a rule with ``e_r > 0`` whose whole pixels cannot land within the tolerance (at tiny inputs one
  pixel is a large step, and a width-heavy rule such as ``fast:0.8`` moves few of them) is also
  fitted along its direction, and the closer of the two is kept.

Either way a member that cannot land within the tolerance is kept and flagged with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

from effnas.scaling.compound import Multipliers
from effnas.scaling.family import Member, fitted_member
from effnas.scaling.realised import FAMILY_TOLERANCE, CostFit, fit_resolution, within
from effnas.scaling.rules.rule import Rule
from effnas.search_spaces import NetworkSpec, scale, scale_resolution
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

#: Dropout rises with phi as in compound members (0.2 at B0 to 0.5 at B7).
DROPOUT_STEP = 0.3 / 7
#: The directional fit gives up beyond this multiple of the target MACs ratio.
MAX_OVERSHOOT = 64.0


def bisect_to(target: float, lo: float, hi: float, macs_at: Callable[[float], float]) -> tuple[float, float]:
    """Narrow ``[lo, hi]`` geometrically (to a ratio of 1 + 1e-5) around the multiplier whose counted MACs
    reach ``target``; ``macs_at`` never decreases and MACs(lo) < target <= MACs(hi) holds throughout."""
    while hi / lo > 1 + 1e-5:
        mid = math.sqrt(lo * hi)
        if macs_at(mid) >= target:
            hi = mid
        else:
            lo = mid
    return lo, hi


def rule_name(rule: Rule) -> str:
    """The rule as a piece of a network name: ``fast:0.8`` -> ``fast0.8``.

    >>> from effnas.scaling.rules.rule import parse_rule
    >>> rule_name(parse_rule("exponents:0.2,0.6,0.2")), rule_name(parse_rule("resnet-rs:short"))
    ('exponents0.2-0.6-0.2', 'resnet-rs-short')
    >>> rule_name(parse_rule("nonuniform:480"))
    'nonuniform480'
    """
    name = re.sub(r"[:,]", "-", rule.label)
    return name.replace("fast-", "fast").replace("exponents-", "exponents").replace("nonuniform-", "nonuniform")


def rule_spec(base: NetworkSpec, rule: Rule, s: float, *, phi: int,
              depth_rounding: str) -> tuple[NetworkSpec, Multipliers]:
    """``base`` scaled by ``rule`` to spend ``s`` times its MACs (nominally; before any cost fit)."""
    mult = rule.multipliers(s)
    dropout = min(max(base.dropout, 0.5), base.dropout + DROPOUT_STEP * phi)
    spec = scale(base, depth=mult.depth, width=mult.width,
                 resolution=scale_resolution(base.resolution, mult.resolution), dropout=dropout,
                 name=f"{base.name}-{rule_name(rule)}-phi{phi}", depth_rounding=depth_rounding)
    return spec, mult


def _fit_along(base: NetworkSpec, rule: Rule, s: float, *, phi: int, base_macs: int, depth_rounding: str,
               tolerance: float) -> tuple[CostFit, Multipliers]:
    """The member of ``rule`` whose realised MACs ratio is closest to ``s`` in log-ratio, moving
    only the ratio ``s'`` it spends (module docstring)."""
    target = s * base_macs

    def at(v: float) -> tuple[NetworkSpec, Multipliers, int]:
        spec, mult = rule_spec(base, rule, v, phi=phi, depth_rounding=depth_rounding)
        return spec, mult, count_macs(spec)

    nominal = at(s)
    if within(nominal[2] / base_macs, s, tolerance):
        return CostFit(nominal[0], nominal[0].resolution, nominal[2], nominal[2], base_macs, s, tolerance, ""), \
            nominal[1]
    lo, hi = min(1.0, s), max(1.0, s)
    while at(lo)[2] >= target and lo > 1e-6:
        lo /= 2
    while at(hi)[2] < target:
        hi *= 2
        if hi > s * MAX_OVERSHOOT:
            raise UserError(f"no {rule.label} network up to {MAX_OVERSHOOT:g}x the target reaches {s:.4g}x the "
                             f"base's MACs")
    lo, hi = bisect_to(target, lo, hi, lambda v: at(v)[2])
    options = [at(lo), at(hi)]
    spec, mult, macs = min(options, key=lambda o: abs(math.log(o[2] / target)))
    reason = ""
    if not within(macs / base_macs, s, tolerance):
        reason = (f"cannot reach {s:.3g}x +-{tolerance * 100:g}% along {rule.label}: the nearest networks give "
                  f"{options[0][2] / base_macs:.3g}x and {options[1][2] / base_macs:.3g}x, one rounding step apart "
                  "(whole repeats, multiples of 8 channels)")
    return CostFit(spec, spec.resolution, macs, nominal[2], base_macs, s, tolerance, reason), mult


def rule_member(base: NetworkSpec, rule: Rule, phi: int, *, growth: float, base_macs: int,
                depth_rounding: str = "round", cost_tolerance: float = FAMILY_TOLERANCE) -> Member:
    """Member ``phi`` of ``rule`` (not compound): ``growth**phi`` times the base's MACs, held to it
    within ``cost_tolerance`` (module docstring).

    >>> import effnas.search_spaces as ss
    >>> from effnas.scaling.rules.rule import parse_rule
    >>> nano = ss.get("efficientnet_nano")
    >>> m = rule_member(nano, parse_rule("fast:0.8"), 2, growth=2.0, base_macs=count_macs(nano))
    >>> m.method, m.spec.resolution, round(m.macs_ratio, 2), m.within_tolerance
    ('fast:0.8', 17, 4.13, True)
    """
    if rule.exponents is None:
        raise UserError("rule_member builds exponent rules; compound members come from effnas.scaling.family")
    s = growth**phi
    if rule.exponents[2] > 0:
        spec, mult = rule_spec(base, rule, s, phi=phi, depth_rounding=depth_rounding)
        fit = fit_resolution(spec, base_macs=base_macs, target_ratio=s, tolerance=cost_tolerance)
        if fit.within_tolerance:
            return fitted_member(rule.label, phi, mult, fit)
    along, mult_along = _fit_along(base, rule, s, phi=phi, base_macs=base_macs, depth_rounding=depth_rounding,
                                   tolerance=cost_tolerance)
    if rule.exponents[2] == 0 or along.within_tolerance:
        return fitted_member(rule.label, phi, mult_along, along)
    both = f"{fit.reason}; {along.reason}"  # neither way lands: keep the closer, say why for both
    if abs(math.log(fit.macs_ratio / s)) <= abs(math.log(along.macs_ratio / s)):
        return fitted_member(rule.label, phi, mult, dataclasses.replace(fit, reason=both))
    return fitted_member(rule.label, phi, mult_along, dataclasses.replace(along, reason=both))


__all__ = ["DROPOUT_STEP", "MAX_OVERSHOOT", "bisect_to", "rule_member", "rule_name", "rule_spec"]
