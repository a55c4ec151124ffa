"""Compound scaling of other backbones (EfficientNet paper Table 3): ResNet-18/50,
MobileNetV1/V2, or any spec-described network.

Depth multiplies the blocks of every stage (``repeats``, rounded to nearest by default),
width multiplies every channel count with the same ``round_filters`` rule as EfficientNet
(stem, stages, head; ResNet bottleneck widths stay divisible by their expansion because the
rule rounds to multiples of 8), and resolution multiplies the input size. Dropout is kept as
the backbone's own (the paper's dropout schedule is EfficientNet's).

Example, scaling your own network::

    import effnas.search_spaces as ss
    from effnas.scaling import Coefficients, scale_backbone

    mine = ss.NetworkSpec(
        name="mynet", stem_channels=32, head_channels=0, resolution=64, num_classes=10,
        stages=ss.decode_stages(["basic_r2_k3_s11_e1_i32_o32", "basic_r2_k3_s22_e1_i32_o64"]),
    )
    m = scale_backbone(mine, coefficients=Coefficients(1.2, 1.1, 1.15), phi=2)
    print(m.spec.to_json(), m.params, m.macs, m.macs_ratio, m.multipliers.nominal_macs_ratio)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import effnas.search_spaces as ss
from effnas.scaling.baselines import DIMENSIONS, matched_baselines
from effnas.scaling.coefficients import PAPER, Coefficients
from effnas.scaling.compound import Multipliers, compound
from effnas.scaling.family import Member, make_member
from effnas.search_spaces import NetworkSpec, load_spec, scale, scale_resolution
from effnas.search_spaces.common.errors import UserError
from effnas.search_spaces.counts import count_macs

#: The backbones of the paper's Table 3.
BACKBONES = ("resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2")


def resolve_backbone(backbone: NetworkSpec | str, *, num_classes: int | None = None,
                     resolution: int | None = None) -> NetworkSpec:
    """A spec, a registered model name or a spec ``.json`` path, as a :class:`NetworkSpec`."""
    if isinstance(backbone, NetworkSpec):
        changes = {k: v for k, v in (("num_classes", num_classes), ("resolution", resolution)) if v is not None}
        return dataclasses.replace(backbone, **changes) if changes else backbone  # type: ignore[arg-type]
    if not isinstance(backbone, str) or not backbone:
        raise UserError(f"backbone must be a name or a spec file, got {backbone!r}")
    if not (backbone.endswith(".json") or Path(backbone).is_file()):
        if backbone not in ss.names():
            raise UserError(f"unknown backbone {backbone!r}: expected one of {', '.join(BACKBONES)}, "
                             "another registered model or a spec .json file")
    return load_spec(backbone, num_classes=num_classes, resolution=resolution)


def scale_backbone(
    backbone: NetworkSpec | str,
    *,
    coefficients: Coefficients = PAPER,
    phi: int = 1,
    depth_rounding: str = "round",
    num_classes: int | None = None,
    resolution: int | None = None,
) -> Member:
    """``backbone`` compound-scaled to ``phi``: depth ``alpha**phi`` (blocks per stage), width
    ``beta**phi`` (channels, ``round_filters``), resolution ``gamma**phi``.

    >>> m = scale_backbone("resnet50", phi=1)
    >>> [s.repeats for s in m.spec.stages], m.spec.stages[-1].out_channels, m.spec.resolution
    ([4, 5, 7, 4], 2256, 258)
    """
    if isinstance(phi, bool) or not isinstance(phi, int) or phi < 0:
        raise UserError(f"phi must be a non-negative integer, got {phi!r}")
    base = resolve_backbone(backbone, num_classes=num_classes, resolution=resolution)
    mult = compound(*coefficients.as_tuple(), phi)
    spec = scale(base, depth=mult.depth, width=mult.width, depth_rounding=depth_rounding,
                 resolution=scale_resolution(base.resolution, mult.resolution), name=f"{base.name}-phi{phi}")
    return make_member("compound", phi, spec, mult, count_macs(base))


def backbone_comparison(
    backbone: NetworkSpec | str,
    *,
    coefficients: Coefficients = PAPER,
    phi: int = 1,
    depth_rounding: str = "round",
    num_classes: int | None = None,
    resolution: int | None = None,
) -> list[Member]:
    """Table 3 in shape: the base, depth-only, width-only and resolution-only scaling at the
    compound member's MACs, and the compound member."""
    base = resolve_backbone(backbone, num_classes=num_classes, resolution=resolution)
    c = scale_backbone(base, coefficients=coefficients, phi=phi, depth_rounding=depth_rounding)
    b = make_member("base", 0, base, Multipliers(1.0, 1.0, 1.0), c.base_macs)
    singles = matched_baselines(base, [c], dimensions=DIMENSIONS, depth_rounding=depth_rounding)
    singles = [dataclasses.replace(s, spec=dataclasses.replace(s.spec, dropout=base.dropout)) for s in singles]
    return [b, *singles, c]


__all__ = ["BACKBONES", "backbone_comparison", "resolve_backbone", "scale_backbone"]
