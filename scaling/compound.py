"""Compound scaling (EfficientNet paper, Eq. 3): depth ``alpha**phi``, width ``beta**phi``,
resolution ``gamma**phi``, under ``alpha * beta**2 * gamma**2 ~ 2`` so that MACs grow by about
``2**phi``. Family members come either from these coefficients or from the official,
hand-rounded B0-B8/L2 table, so both can be shown side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effnas.search_spaces import OFFICIAL, NetworkSpec, scale, scale_resolution
from effnas.search_spaces.common.errors import UserError

#: The paper's grid-search result at phi = 1 (EfficientNet paper, Section 4).
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)


@dataclass(frozen=True)
class Multipliers:
    """Depth, width and resolution multipliers of one family member."""

    depth: float
    width: float
    resolution: float

    @property
    def nominal_macs_ratio(self) -> float:
        """MACs ratio to the base predicted by the multipliers: ``d * w**2 * r**2``."""
        return self.depth * self.width**2 * self.resolution**2


def check_coefficients(alpha: float, beta: float, gamma: float) -> None:
    for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not (isinstance(v, int | float) and math.isfinite(v)) or v < 1.0:
            raise UserError(f"{name} must be a finite number >= 1 (compound scaling never shrinks), got {v}")


def compound(alpha: float, beta: float, gamma: float, phi: float) -> Multipliers:
    """Multipliers for compound coefficient ``phi``.

    >>> m = compound(1.2, 1.1, 1.15, 1)
    >>> (m.depth, m.width, m.resolution)
    (1.2, 1.1, 1.15)
    >>> round(compound(1.2, 1.1, 1.15, 7).resolution * 224)
    596
    """
    check_coefficients(alpha, beta, gamma)
    if phi < 0:
        raise UserError(f"phi must be >= 0, got {phi}")
    return Multipliers(alpha**phi, beta**phi, gamma**phi)


def member(
    base: NetworkSpec,
    phi: float,
    *,
    coefficients: tuple[float, float, float] | None = None,
    official: bool = False,
    dropout_step: float = 0.3 / 7,
    depth_rounding: str = "round",
) -> tuple[NetworkSpec, Multipliers]:
    """Family member ``phi`` of ``base``: from the official table (``official=True``, member
    ``phi`` is B``phi``) or from ``coefficients`` (alpha, beta, gamma; the paper's by default;
    ``phi`` may be fractional, e.g. a grid searched at phi = 0.5).

    Coefficient members get dropout rising linearly with phi (0.2 at B0 to 0.5 at B7, as the
    official table), capped at 0.5 above the base value's range. Their repeats round to
    nearest (``depth_rounding="round"``) so realised MACs track the nominal ratio; pass
    ``"ceil"`` for TF's rule (see :func:`effnas.search_spaces.rules.round_repeats`).
    """
    if official:
        key = f"b{phi}"
        if key not in OFFICIAL:
            raise UserError(f"the official table has B0...B8, not phi={phi}")
        v = OFFICIAL[key]
        mult = Multipliers(v.depth, v.width, v.resolution / 224)
        spec = scale(base, depth=v.depth, width=v.width, dropout=v.dropout,
                     resolution=scale_resolution(base.resolution, v.resolution / 224),
                     name=f"{base.name}-b{phi}")
        return spec, mult
    a, b, g = coefficients or PAPER_COEFFICIENTS
    mult = compound(a, b, g, phi)
    dropout = min(max(base.dropout, 0.5), base.dropout + dropout_step * phi)
    spec = scale(base, depth=mult.depth, width=mult.width,
                 resolution=scale_resolution(base.resolution, mult.resolution),
                 dropout=dropout, name=f"{base.name}-phi{phi:g}", depth_rounding=depth_rounding)
    return spec, mult
