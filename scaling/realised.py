"""Realised cost: bring a scaled spec's counted MACs to the ratio it claims, in whole pixels.

A grid candidate or family member is *named* by its coefficients (alpha, beta, gamma and phi)
and *claims* a MACs ratio to the base (``target**phi`` in the grid, ``(alpha*beta^2*gamma^2)**phi``
in a family). Rounding repeats to integers, channels to multiples of 8 and the input to whole
pixels makes the counted ratio differ, and at small inputs by a lot: every stride-2 layer rounds
its output up, so B0 at 33 px has 2.2x the MACs of B0 at 32 px. Without a correction a grid
search ranks candidates by rounding luck (B0 at 32 px: realised 1.74-4.57x for a target of 2).

The rule (:func:`fit_resolution`):

1. Count the spec at its nominal resolution. If the realised ratio is within ``tolerance``
   (relative: ``|realised / target - 1| <= tolerance``) keep it unchanged.
2. Otherwise move the input to the whole pixel count whose realised ratio is closest to the
   target in log-ratio (``|log(realised / target)|``); between pixel counts of equal MACs take
   the one nearest the nominal resolution.
3. If even that pixel count misses the tolerance, keep it but report why: the pixel counts just
   below and just above the target and their ratios ("16 px gives 1.63x, 17 px gives 2.92x").

Why resolution: depth (whole repeats per stage) and width (multiples of 8 channels per layer)
change the network itself, and their steps at phi ~ 1 are large (one more block in a one-block
stage, 8 more channels on 16); the input size changes no weight, is the only dimension with
integer steps as fine as one pixel, and counted MACs never decrease as it grows, so the nearest
pixel count is found by bisection. alpha, beta, gamma stay the candidate's identity; the table
shows the nominal and the adjusted resolution side by side. At tiny inputs (16-32 px for
networks that downsample 32x) the one-pixel steps are themselves coarse, and some candidates
cannot be brought within tolerance at all: they are flagged, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from effnas.search_spaces import NetworkSpec
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

#: Tolerances of issue 9: grid candidates within 5 % of ``target**phi``, family members within 10 %
#: of their nominal ratio (relative, ``|realised / target - 1|``).
GRID_TOLERANCE = 0.05
FAMILY_TOLERANCE = 0.10

#: The pixel search gives up beyond this multiple of the nominal resolution.
MAX_RESOLUTION_MULTIPLE = 64


def check_tolerance(tolerance: float, name: str = "cost_tolerance") -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not math.isfinite(tolerance) \
            or not 0 <= tolerance < 1:
        raise UserError(f"{name} must be a number in [0, 1) (relative distance of realised from nominal MACs), "
                         f"got {tolerance!r}: e.g. 0.05 for +-5 %")


def within(ratio: float, target: float, tolerance: float) -> bool:
    """``|ratio / target - 1| <= tolerance`` (with 1e-9 slack for float noise).

    >>> within(2.09, 2.0, 0.05), within(2.11, 2.0, 0.05)
    (True, False)
    """
    return abs(ratio / target - 1) <= tolerance + 1e-9


def pixel_bracket(spec: NetworkSpec, target_macs: float) -> tuple[int | None, int]:
    """The largest pixel count whose MACs are below ``target_macs`` (None if 1 px already reaches
    it) and the smallest whose MACs reach it. Counted MACs never decrease with the input size
    (every layer's output side is ``ceil(size / stride)`` or ``size // stride + 1``), so bisection.

    >>> import effnas.search_spaces as ss
    >>> nano = ss.get("efficientnet_nano")
    >>> pixel_bracket(nano, 2 * count_macs(nano))
    (20, 21)
    """
    if not (math.isfinite(target_macs) and target_macs > 0):
        raise UserError(f"target MACs must be a finite number > 0, got {target_macs!r}")
    limit = spec.resolution * MAX_RESOLUTION_MULTIPLE
    hi = spec.resolution
    while count_macs(spec, hi) < target_macs:
        hi *= 2
        if hi > limit:
            raise UserError(f"no input size up to {limit} px gives {spec.name} {target_macs:.4g} MACs")
    lo = spec.resolution
    while count_macs(spec, lo) >= target_macs:
        if lo == 1:
            return None, 1
        hi, lo = lo, max(1, lo // 2)
    while hi - lo > 1:  # invariant: MACs(lo) < target <= MACs(hi)
        mid = (lo + hi) // 2
        if count_macs(spec, mid) >= target_macs:
            hi = mid
        else:
            lo = mid
    return lo, hi


@dataclass(frozen=True)
class CostFit:
    """Where :func:`fit_resolution` put a spec: the (possibly adjusted) spec, its MACs, the
    ratio it was held to, and why it misses that ratio when it does (``reason``, else "")."""

    spec: NetworkSpec
    resolution_nominal: int
    macs: int
    macs_unadjusted: int
    base_macs: int
    target_ratio: float
    tolerance: float
    reason: str

    @property
    def macs_ratio(self) -> float:
        return self.macs / self.base_macs

    @property
    def macs_ratio_unadjusted(self) -> float:
        return self.macs_unadjusted / self.base_macs

    @property
    def within_tolerance(self) -> bool:
        return within(self.macs_ratio, self.target_ratio, self.tolerance)

    @property
    def cost_adjusted(self) -> bool:
        return self.spec.resolution != self.resolution_nominal


def fit_resolution(spec: NetworkSpec, *, base_macs: int, target_ratio: float, tolerance: float) -> CostFit:
    """``spec`` at the whole-pixel input size that brings its MACs within ``tolerance`` of
    ``target_ratio * base_macs`` (the rule in the module docstring).

    >>> import effnas.search_spaces as ss
    >>> from effnas.scaling.compound import member
    >>> nano = ss.get("efficientnet_nano")
    >>> spec, _ = member(nano, 1, coefficients=(1.4, 1.2, 1.0))
    >>> f = fit_resolution(spec, base_macs=count_macs(nano), target_ratio=2.0, tolerance=0.05)
    >>> f.resolution_nominal, f.spec.resolution, round(f.macs_ratio_unadjusted, 2), round(f.macs_ratio, 2)
    (16, 14, 2.15, 2.06)
    >>> spec, _ = member(nano, 1, coefficients=(1.0, 1.2, 1.2))
    >>> fit_resolution(spec, base_macs=count_macs(nano), target_ratio=2.0, tolerance=0.05).reason
    'cannot reach 2x +-5% in whole pixels: 16 px gives 1.63x, 17 px gives 2.92x'
    """
    check_tolerance(tolerance)
    if not (math.isfinite(target_ratio) and target_ratio > 0):
        raise UserError(f"target MACs ratio must be a finite number > 0, got {target_ratio!r}")
    if base_macs <= 0:
        raise UserError(f"base MACs must be > 0, got {base_macs}")
    nominal = spec.resolution
    macs0 = count_macs(spec)
    target = target_ratio * base_macs

    def fit(px: int, macs: int, reason: str = "") -> CostFit:
        s = spec if px == nominal else dataclasses.replace(spec, resolution=px)
        return CostFit(s, nominal, macs, macs0, base_macs, target_ratio, tolerance, reason)

    if within(macs0 / base_macs, target_ratio, tolerance):
        return fit(nominal, macs0)
    below, above = pixel_bracket(spec, target)
    options = [px for px in (below, above) if px is not None]
    px = min(options, key=lambda p: (abs(math.log(count_macs(spec, p) / target)), abs(p - nominal)))
    macs = count_macs(spec, px)
    step = 1 if nominal > px else -1
    while px != nominal and count_macs(spec, px + step) == macs:  # equal MACs: nearest the nominal size
        px += step
    if within(macs / base_macs, target_ratio, tolerance):
        return fit(px, macs)
    sides = [f"{p} px gives {count_macs(spec, p) / base_macs:.3g}x" for p in options]
    if below is None:
        sides.insert(0, "even 1 px is above")
    why = f"cannot reach {target_ratio:.3g}x +-{tolerance * 100:g}% in whole pixels: " + ", ".join(sides)
    return fit(px, macs, why)


__all__ = ["FAMILY_TOLERANCE", "GRID_TOLERANCE", "CostFit", "check_tolerance", "fit_resolution", "pixel_bracket",
           "within"]
