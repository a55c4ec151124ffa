"""Single-dimension scaling at matched MAC budgets (EfficientNet paper Fig. 3, Fig. 8, Table 7).

For each compound member, the depth-only, width-only and resolution-only multipliers whose
*realised* MACs come closest to that member's realised MACs. Depth and width are searched
numerically (bisection on the multiplier: counted MACs are non-decreasing in it, in steps,
because repeats and channels are rounded); resolution is searched over integer pixels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from effnas.scaling.compound import Multipliers
from effnas.scaling.family import Member, make_member
from effnas.scaling.realised import FAMILY_TOLERANCE, check_tolerance
from effnas.search_spaces import NetworkSpec, scale
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

DIMENSIONS = ("depth", "width", "resolution")

#: Largest multiplier the search tries before giving up (depth 1024x is far beyond any budget).
MAX_MULTIPLIER = 1024.0


def single_dimension(base: NetworkSpec, dimension: str, multiplier: float, *, depth_rounding: str = "round",
                     name: str | None = None) -> NetworkSpec:
    """``base`` scaled along one dimension only (resolution: ``round(base.resolution * m)``).

    >>> import effnas.search_spaces as ss
    >>> single_dimension(ss.get("efficientnet_b0"), "resolution", 1.5).resolution
    336
    """
    if dimension not in DIMENSIONS:
        raise UserError(f"unknown scaling dimension {dimension!r}: expected one of {', '.join(DIMENSIONS)}")
    if not (math.isfinite(multiplier) and multiplier > 0):
        raise UserError(f"{dimension} multiplier must be a finite number > 0, got {multiplier}")
    if dimension == "depth":
        return scale(base, depth=multiplier, depth_rounding=depth_rounding, name=name)
    if dimension == "width":
        return scale(base, width=multiplier, name=name)
    return scale(base, resolution=max(1, int(round(base.resolution * multiplier))), name=name)


def match_macs(base: NetworkSpec, dimension: str, target_macs: int, *, depth_rounding: str = "round",
               tolerance: float = 1e-4) -> tuple[NetworkSpec, float]:
    """The ``dimension``-only scaling of ``base`` whose MACs are closest (in ratio) to ``target_macs``,
    and its multiplier (``>= 1``; rounded to 4 decimals, resolution to whole pixels).

    >>> import effnas.search_spaces as ss
    >>> b0 = ss.get("efficientnet_b0")
    >>> spec, m = match_macs(b0, "resolution", 2 * count_macs(b0))
    >>> spec.resolution, m
    (309, 1.3795)

    At tiny inputs MACs jump with the ceil of every stride-2 layer: B0 at 33 px has twice the
    MACs of B0 at 32 px (deep feature maps 3x3 instead of 2x2).
    """
    if dimension not in DIMENSIONS:
        raise UserError(f"unknown scaling dimension {dimension!r}: expected one of {', '.join(DIMENSIONS)}")
    if dimension == "resolution":
        def at_pixels(px: int) -> NetworkSpec:
            return dataclasses.replace(base, resolution=px)

        lo, hi = base.resolution, base.resolution
        while count_macs(at_pixels(hi)) < target_macs:
            lo, hi = hi, hi * 2
            if hi > base.resolution * MAX_MULTIPLIER:
                raise UserError(f"no resolution up to {hi} px reaches {target_macs} MACs")
        while hi - lo > 1:  # smallest pixel count with MACs >= target
            mid = (lo + hi) // 2
            if count_macs(at_pixels(mid)) >= target_macs:
                hi = mid
            else:
                lo = mid
        best = min({lo, hi}, key=lambda px: abs(math.log(count_macs(at_pixels(px)) / target_macs)))
        return at_pixels(best), round(best / base.resolution, 4)

    def spec_at(m: float) -> NetworkSpec:
        return single_dimension(base, dimension, m, depth_rounding=depth_rounding)

    lo_m, hi_m = 1.0, 1.0
    while count_macs(spec_at(hi_m)) < target_macs:
        lo_m, hi_m = hi_m, hi_m * 2
        if hi_m > MAX_MULTIPLIER:
            raise UserError(f"no {dimension} multiplier up to {MAX_MULTIPLIER:g} reaches {target_macs} MACs")
    while hi_m - lo_m > tolerance:  # smallest multiplier with MACs >= target, to 1e-4
        mid_m = (lo_m + hi_m) / 2
        if count_macs(spec_at(mid_m)) >= target_macs:
            hi_m = mid_m
        else:
            lo_m = mid_m
    options = [max(1.0, math.floor(lo_m * 1e4) / 1e4), math.ceil(hi_m * 1e4) / 1e4]
    m = min(options, key=lambda v: abs(math.log(count_macs(spec_at(v)) / target_macs)))
    return spec_at(m), m


def matched_baselines(base: NetworkSpec, members: Sequence[Member], *, dimensions: Sequence[str] = DIMENSIONS,
                      depth_rounding: str = "round", cost_tolerance: float = FAMILY_TOLERANCE) -> list[Member]:
    """For every member with phi >= 1 (all of a family's, unless the caller passes fewer), one
    single-dimension member per ``dimension`` at its *realised* MACs.

    Each baseline is held to its member's realised ratio (``target_macs_ratio``) within
    ``cost_tolerance``; one whose nearest reachable cost misses it is kept and flagged with the
    reason (at tiny inputs whole pixels, whole repeats and multiples of 8 channels can all be
    too coarse). Each keeps the matched member's dropout, so the members of one budget differ
    only in how they spend it.

    >>> import effnas.search_spaces as ss
    >>> from effnas.scaling.family import family
    >>> nano = ss.get("efficientnet_nano")
    >>> [(b.method, b.phi, b.within_tolerance) for b in matched_baselines(nano, family(nano, [0, 1]))]
    [('depth', 1, True), ('width', 1, True), ('resolution', 1, True)]
    """
    check_tolerance(cost_tolerance)
    base_macs = count_macs(base)
    out = []
    for target in members:
        if target.phi == 0:
            continue
        for dim in dimensions:
            spec, m = match_macs(base, dim, target.macs, depth_rounding=depth_rounding)
            spec = dataclasses.replace(spec, name=f"{base.name}-{dim}{m:g}", dropout=target.spec.dropout)
            mult = Multipliers(m if dim == "depth" else 1.0, m if dim == "width" else 1.0,
                               spec.resolution / base.resolution)
            b = make_member(dim, target.phi, spec, mult, base_macs, target_ratio=target.macs_ratio,
                            tolerance=cost_tolerance)
            note = (f"nearest {dim}-only network ({dim} {m:g}) gives {b.macs_ratio:.3g}x for phi {target.phi}'s "
                    f"realised {target.macs_ratio:.3g}x (+-{cost_tolerance * 100:g}%)")
            out.append(dataclasses.replace(b, note=note))
    return out


__all__ = ["DIMENSIONS", "match_macs", "matched_baselines", "single_dimension"]
