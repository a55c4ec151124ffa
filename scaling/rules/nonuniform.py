"""Non-uniform scaling (``nonuniform:MAX``): EfficientNetV2's way of growing a network past a largest input.

Tan & Le, "EfficientNetV2" (ICML 2021), Section 4: V2-S is scaled up to V2-M and L "using similar compound
scaling as in (Tan & Le, 2019a), with a few additional optimizations: (1) we restrict the maximum
inference image size to 480, as very large images often lead to expensive memory and training speed
overhead; (2) as a heuristic, we also gradually add more layers to later stages (e.g., stage 5 and 6 in
Table 4) in order to increase the network capacity without adding much runtime overhead". google/automl's
``efficientnetv2/effnetv2_configs.py`` shows what that did: against V2's base table at V1's (width, depth)
pairs and TF's ceil, V2-M (depth 2.2) has 14 blocks in stage 5 where uniform depth gives 11, V2-L (3.1) 19
where it gives 16, both keep stage 6's ceil (18, 25) and add a seventh stage (5 and 7 blocks, 512 and 640
channels); their evaluation sizes stop at 480.

Member ``phi`` here, like every rule's, claims ``growth**phi`` times the base's MACs (the family's
``alpha * beta**2 * gamma**2``, else ``grid.target``), split as compound splits it (the coefficients'
shares of the log-MACs; the paper's 1.2, 1.1, 1.15 without coefficients):

1. depth and width as compound's member; the input ``round(base px * r)`` capped at ``MAX`` pixels;
2. uncapped, the member is compound's, moved in whole pixels (not past ``MAX``) to land within the family's
   cost tolerance (:func:`effnas.scaling.realised.fit_resolution`);
3. capped (or when landing needs pixels past ``MAX``), the input stays at ``MAX`` and the MACs the cap
   leaves go to the later stages only: their repeats (the last third of the stages, at least one; V2-S's
   stages 5 and 6 of 6) times ``k >= 1``, bisected until the realised MACs come closest to the target;
   a member that cannot land within the tolerance (one repeat too coarse) is kept and flagged.

What is taken and what is not: the cap and "more layers in later stages" are the paper's; *how many*
layers is ours (whatever spends the MACs the cap leaves: the paper names no rule, and automl's M and L are
hand-written tables); no stage is added (a new stage needs channels and a stride: an architecture choice,
not a scaling of the base). The member's multipliers are compound's depth and width and the capped
input's ratio; the deeper later stages show in its ``blocks``.
"""

from __future__ import annotations

import dataclasses
import math

from effnas.scaling.compound import Multipliers
from effnas.scaling.family import Member, fitted_member
from effnas.scaling.realised import CostFit, fit_resolution, within
from effnas.scaling.rules.members import MAX_OVERSHOOT, bisect_to, rule_spec
from effnas.scaling.rules.rule import Rule
from effnas.search_spaces import NetworkSpec, round_repeats
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

#: The later stages: this share of the stages, the last ones (V2-S: 2 of 6, its "stage 5 and 6").
LATER_SHARE = 1 / 3


def later_stages(n: int) -> range:
    """Indices of the last ``ceil(n * LATER_SHARE)`` of ``n`` stages (at least one).

    >>> list(later_stages(6)), list(later_stages(7)), list(later_stages(2))
    ([4, 5], [4, 5, 6], [1])
    """
    return range(n - max(1, math.ceil(n * LATER_SHARE)), n)


def deepen_later(spec: NetworkSpec, k: float, depth_rounding: str = "round") -> NetworkSpec:
    """``spec`` with the repeats of its later stages times ``k`` (:func:`round_repeats`), the rest unchanged."""
    later = set(later_stages(len(spec.stages)))
    return dataclasses.replace(spec, stages=tuple(
        dataclasses.replace(s, repeats=round_repeats(s.repeats, k, depth_rounding)) if i in later else s
        for i, s in enumerate(spec.stages)))


def _fit_later(spec: NetworkSpec, s: float, *, base_macs: int, nominal_px: int, macs_unadjusted: int,
               depth_rounding: str, tolerance: float, cap: int) -> CostFit:
    """``spec`` (at the cap) with its later stages deepened by the ``k`` whose MACs come closest to
    ``s`` times the base's (bisection: counted MACs never decrease in ``k``)."""
    target = s * base_macs

    def at(k: float) -> tuple[NetworkSpec, int]:
        deeper = deepen_later(spec, k, depth_rounding)
        return deeper, count_macs(deeper)

    lo, hi = 1.0, 2.0
    assert at(lo)[1] < target, "called only when the capped spec falls short"
    while at(hi)[1] < target:
        lo, hi = hi, hi * 2
        if hi > MAX_OVERSHOOT * s:
            raise UserError(f"no deepening of the later stages up to {MAX_OVERSHOOT:g}x reaches {s:.4g}x the "
                             f"base's MACs at {cap} px")
    lo, hi = bisect_to(target, lo, hi, lambda k: at(k)[1])
    options = [at(lo), at(hi)]
    best, macs = min(options, key=lambda o: abs(math.log(o[1] / target)))
    reason = ""
    if not within(macs / base_macs, s, tolerance):
        sides = " and ".join(f"{m / base_macs:.3g}x" for _, m in options)
        reason = (f"cannot reach {s:.3g}x +-{tolerance * 100:g}% with the input capped at {cap} px: deeper later "
                  f"stages give {sides}, one repeat apart")
    return CostFit(best, nominal_px, macs, macs_unadjusted, base_macs, s, tolerance, reason)


def nonuniform_member(base: NetworkSpec, rule: Rule, phi: int, *, exponents: tuple[float, float, float],
                      growth: float, base_macs: int, depth_rounding: str = "round",
                      cost_tolerance: float = 0.1) -> Member:
    """Member ``phi`` of ``nonuniform:MAX`` (``rule``): compound's split (``exponents``) of ``growth**phi``
    times the base's MACs with the input capped at ``MAX`` and the rest spent on the later stages
    (module docstring).

    >>> import effnas.search_spaces as ss
    >>> from effnas.scaling.rules.rule import compound_exponents, parse_rule
    >>> nano, e = ss.get("efficientnet_nano"), compound_exponents(1.2, 1.1, 1.15)
    >>> m = nonuniform_member(nano, parse_rule("nonuniform:16"), 2, exponents=e, growth=2.0,
    ...                       base_macs=count_macs(nano))
    >>> m.spec.resolution, m.spec.num_blocks > nano.num_blocks, round(m.macs_ratio, 2), m.within_tolerance
    (16, True, 3.95, True)
    """
    cap = rule.max_resolution
    if cap is None:
        raise UserError(f"nonuniform_member builds nonuniform:MAX members, not {rule.text}")
    if base.resolution > cap:
        raise UserError(f"{rule.text} caps the input below the base's own {base.resolution} px: give a cap of at "
                         f"least {base.resolution}, e.g. nonuniform:{max(base.resolution, 480)}")
    s = growth**phi
    spec, mult = rule_spec(base, Rule(rule.text, exponents), s, phi=phi, depth_rounding=depth_rounding)
    nominal = spec.resolution
    if nominal <= cap:
        fit = fit_resolution(spec, base_macs=base_macs, target_ratio=s, tolerance=cost_tolerance)
        if fit.spec.resolution <= cap:
            return fitted_member(rule.label, phi, mult, fit)
    capped = dataclasses.replace(spec, resolution=cap)
    macs = count_macs(capped)
    capped_mult = Multipliers(mult.depth, mult.width, cap / base.resolution)
    if macs >= s * base_macs:  # rounding put the capped network above the target: fewer pixels, as compound's
        fit = fit_resolution(capped, base_macs=base_macs, target_ratio=s, tolerance=cost_tolerance)
        return fitted_member(rule.label, phi, capped_mult, dataclasses.replace(fit, resolution_nominal=nominal))
    fit = _fit_later(capped, s, base_macs=base_macs, nominal_px=nominal, macs_unadjusted=macs,
                     depth_rounding=depth_rounding, tolerance=cost_tolerance, cap=cap)
    return fitted_member(rule.label, phi, capped_mult, fit)


__all__ = ["LATER_SHARE", "deepen_later", "later_stages", "nonuniform_member"]
