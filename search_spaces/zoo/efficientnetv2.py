"""EfficientNetV2 (Tan & Le 2021, "EfficientNetV2: Smaller Models and Faster Training"), written as
google/automl ``efficientnetv2/effnetv2_configs.py`` writes it: the block strings below are that file's,
verbatim (``c1`` marks a Fused-MBConv stage; :mod:`effnas.search_spaces.codec`).

- S, M, L: the configs' own stage tables (``v2_s_block``, ``v2_m_block``, ``v2_l_block``) at width and
  depth 1.0. The stem has the first stage's input channels (24 / 24 / 32), the head 1280.
- B0-B3: ``v2_base_block`` scaled by EfficientNet-V1's (width, depth) pairs, every stage, the stem (32)
  and the head (1280) included, with V2's channel rounding (``effnetv2_model.round_filters``: nearest
  multiple of 8, without V1's 10 % bump; timm ``round_limit=0.``) and TF's ceil on repeats.

Resolution is the configs' evaluation size (training uses progressive sizes below it: 300 / 384 / 384 for
S / M / L, 192 / 192 / 208 / 240 for B0-B3); dropout is theirs; SiLU, BN epsilon 1e-3, BN decay 0.9 (PyTorch
momentum 0.1) and survival probability 0.8 (drop-connect 0.2) are ``hparams.base_config``'s. Parameter
counts equal timm's ``tf_efficientnetv2_*`` exactly (``tests/search_spaces/test_reference_counts.py``).
XL (ImageNet-21k only) is not registered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from effnas.search_spaces.codec import decode_stages
from effnas.search_spaces.rules import scale
from effnas.search_spaces.spec import NetworkSpec

V2_BASE_STAGES = (
    "r1_k3_s1_e1_i32_o16_c1", "r2_k3_s2_e4_i16_o32_c1", "r2_k3_s2_e4_i32_o48_c1",
    "r3_k3_s2_e4_i48_o96_se0.25", "r5_k3_s1_e6_i96_o112_se0.25", "r8_k3_s2_e6_i112_o192_se0.25",
)
V2_S_STAGES = (
    "r2_k3_s1_e1_i24_o24_c1", "r4_k3_s2_e4_i24_o48_c1", "r4_k3_s2_e4_i48_o64_c1",
    "r6_k3_s2_e4_i64_o128_se0.25", "r9_k3_s1_e6_i128_o160_se0.25", "r15_k3_s2_e6_i160_o256_se0.25",
)
V2_M_STAGES = (
    "r3_k3_s1_e1_i24_o24_c1", "r5_k3_s2_e4_i24_o48_c1", "r5_k3_s2_e4_i48_o80_c1",
    "r7_k3_s2_e4_i80_o160_se0.25", "r14_k3_s1_e6_i160_o176_se0.25", "r18_k3_s2_e6_i176_o304_se0.25",
    "r5_k3_s1_e6_i304_o512_se0.25",
)
V2_L_STAGES = (
    "r4_k3_s1_e1_i32_o32_c1", "r7_k3_s2_e4_i32_o64_c1", "r7_k3_s2_e4_i64_o96_c1",
    "r10_k3_s2_e4_i96_o192_se0.25", "r19_k3_s1_e6_i192_o224_se0.25", "r25_k3_s2_e6_i224_o384_se0.25",
    "r7_k3_s1_e6_i384_o640_se0.25",
)

#: ``effnetv2_configs.efficientnetv2_params``: name -> (stages, width, depth, evaluation size, dropout).
V2: dict[str, tuple[tuple[str, ...], float, float, int, float]] = {
    "s": (V2_S_STAGES, 1.0, 1.0, 384, 0.2),
    "m": (V2_M_STAGES, 1.0, 1.0, 480, 0.3),
    "l": (V2_L_STAGES, 1.0, 1.0, 480, 0.4),
    "b0": (V2_BASE_STAGES, 1.0, 1.0, 224, 0.2),
    "b1": (V2_BASE_STAGES, 1.0, 1.1, 240, 0.2),
    "b2": (V2_BASE_STAGES, 1.1, 1.2, 260, 0.3),
    "b3": (V2_BASE_STAGES, 1.2, 1.4, 300, 0.3),
}


def efficientnetv2(key: str) -> NetworkSpec:
    """EfficientNetV2 ``key`` (``s``, ``m``, ``l``, ``b0``...``b3``) for 1000 classes.

    >>> spec = efficientnetv2("b3")
    >>> spec.stem_channels, spec.head_channels, [s.out_channels for s in spec.stages]
    (40, 1536, [16, 40, 56, 112, 136, 232])
    """
    strings, width, depth, resolution, dropout = V2[key]
    stages = decode_stages(strings)
    base = NetworkSpec(name=f"efficientnetv2_{key}", stem_channels=stages[0].in_channels, stages=stages,
                       head_channels=1280, resolution=resolution, dropout=dropout, bn_momentum=0.1)
    return scale(base, width=width, depth=depth, round_limit=0.0)


BUILTIN: dict[str, Callable[[], NetworkSpec]] = {
    f"efficientnetv2_{key}": functools.partial(efficientnetv2, key) for key in V2
}
