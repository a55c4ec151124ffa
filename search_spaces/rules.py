"""What a scaled network *is*: the rounding rules and the official EfficientNet table.

Rules follow the TF reference (tensorflow/tpu ``efficientnet_model.round_filters`` /
``round_repeats``) so that scaled models match the published parameter counts exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.spec import NetworkSpec


def round_filters(channels: int, width: float, *, divisor: int = 8, min_depth: int | None = None,
                  round_limit: float = 0.9) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor``.

    Nearest multiple of 8 (at least 8); if that is below ``round_limit`` (default 0.9) times
    ``channels*width``, 8 more (TF ``round_filters``). EfficientNetV2 drops the bump: google/automl
    ``effnetv2_model.round_filters`` (timm's ``round_limit=0.``) is ``round_limit=0``.

    >>> round_filters(32, 1.1)
    32
    >>> round_filters(1280, 2.0)
    2560
    >>> round_filters(40, 1.4)
    56
    >>> round_filters(16, 1.2), round_filters(16, 1.2, round_limit=0)
    (24, 16)
    """
    if width <= 0:
        raise UserError(f"width multiplier must be > 0, got {width}")
    if width == 1.0:
        return channels
    scaled = channels * width
    min_depth = min_depth or divisor
    new = max(min_depth, int(scaled + divisor / 2) // divisor * divisor)
    if new < round_limit * scaled:
        new += divisor
    return int(new)


DEPTH_ROUNDINGS = ("ceil", "round")


def round_repeats(repeats: int, depth: float, mode: str = "ceil") -> int:
    """``ceil(depth * repeats)`` (TF ``round_repeats``, mode ``ceil``) or the nearest integer
    (mode ``round``, at least 1).

    TF's ceil doubles every one-block stage as soon as ``depth > 1``: B0 scaled with the
    paper's alpha = 1.2 at phi = 1 gets 23 blocks instead of 19, and 34 % more MACs than the
    nominal ``alpha * beta**2 * gamma**2``. Coefficient-derived families therefore round to
    nearest by default (realised MACs within 7 % of nominal for phi = 1...4); the official
    table uses ceil, which its published parameter counts require.

    >>> round_repeats(3, 1.2)
    4
    >>> round_repeats(1, 1.1)
    2
    >>> round_repeats(1, 1.2, "round")
    1
    """
    if depth <= 0:
        raise UserError(f"depth multiplier must be > 0, got {depth}")
    if mode not in DEPTH_ROUNDINGS:
        raise UserError(f"unknown depth rounding {mode!r}: expected one of {', '.join(DEPTH_ROUNDINGS)}")
    if depth == 1.0:
        return repeats
    if mode == "round":
        return max(1, int(math.floor(depth * repeats + 0.5)))
    return int(math.ceil(depth * repeats))


def scale_resolution(resolution: int, multiplier: float) -> int:
    """``round(resolution * multiplier)``: 224 * 1.15**7 -> 596 (REFERENCE.md).

    >>> scale_resolution(224, 1.15 ** 7)
    596
    """
    if multiplier <= 0:
        raise UserError(f"resolution multiplier must be > 0, got {multiplier}")
    return max(1, int(round(resolution * multiplier)))


def scale(
    spec: NetworkSpec,
    *,
    depth: float = 1.0,
    width: float = 1.0,
    resolution: int | None = None,
    dropout: float | None = None,
    name: str | None = None,
    depth_rounding: str = "ceil",
    round_limit: float = 0.9,
) -> NetworkSpec:
    """A new spec with repeats scaled by ``depth``, channels by ``width`` (stem, every stage
    and the head, with :func:`round_filters` and its ``round_limit``: 0 for EfficientNetV2) and
    the default input size set to ``resolution`` pixels (``None`` keeps it). The input spec is
    unchanged. ``depth_rounding`` is ``ceil`` (TF) or ``round``; see :func:`round_repeats`.
    """
    if resolution is not None and (not isinstance(resolution, int) or resolution < 1):
        raise UserError(f"resolution must be a positive integer of pixels, got {resolution!r}")

    def ch(c: int) -> int:
        return round_filters(c, width, round_limit=round_limit)

    stages = tuple(
        dataclasses.replace(
            s,
            in_channels=ch(s.in_channels),
            out_channels=ch(s.out_channels),
            repeats=round_repeats(s.repeats, depth, depth_rounding),
        )
        for s in spec.stages
    )
    return dataclasses.replace(
        spec,
        name=name or spec.name,
        stem_channels=ch(spec.stem_channels),
        stages=stages,
        head_channels=ch(spec.head_channels) if spec.head_channels else 0,
        resolution=spec.resolution if resolution is None else resolution,
        dropout=spec.dropout if dropout is None else dropout,
    )


@dataclass(frozen=True)
class Variant:
    """One row of the official EfficientNet table (TF ``efficientnet_params``)."""

    width: float
    depth: float
    resolution: int
    dropout: float


#: The published, hand-rounded family (tensorflow/tpu efficientnet_builder.efficientnet_params;
#: B8 and L2 from the Noisy Student / AdvProp releases). NOT exactly alpha**phi etc.
OFFICIAL: dict[str, Variant] = {
    "b0": Variant(1.0, 1.0, 224, 0.2),
    "b1": Variant(1.0, 1.1, 240, 0.2),
    "b2": Variant(1.1, 1.2, 260, 0.3),
    "b3": Variant(1.2, 1.4, 300, 0.3),
    "b4": Variant(1.4, 1.8, 380, 0.4),
    "b5": Variant(1.6, 2.2, 456, 0.4),
    "b6": Variant(1.8, 2.6, 528, 0.5),
    "b7": Variant(2.0, 3.1, 600, 0.5),
    "b8": Variant(2.2, 3.6, 672, 0.5),
    "l2": Variant(4.3, 5.3, 800, 0.5),
}


def scale_official(base: NetworkSpec, variant: str) -> NetworkSpec:
    """``base`` scaled as the official EfficientNet ``variant`` ('b0'...'b8', 'l2')."""
    key = variant.lower().removeprefix("efficientnet_").removeprefix("efficientnet-")
    if key not in OFFICIAL:
        raise UserError(f"unknown EfficientNet variant {variant!r}: expected one of {', '.join(OFFICIAL)}")
    v = OFFICIAL[key]
    return scale(base, depth=v.depth, width=v.width, resolution=v.resolution, dropout=v.dropout,
                 name=f"efficientnet_{key}")


__all__ = ["DEPTH_ROUNDINGS", "OFFICIAL", "Variant", "round_filters", "round_repeats", "scale", "scale_official",
           "scale_resolution"]
