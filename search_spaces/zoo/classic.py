"""The built-in models before EfficientNetV2, written as their papers' tables (block strings per stage).

Sources: EfficientNet-B0 paper Table 1 / tensorflow/tpu ``efficientnet_builder``;
MnasNet-A1/B1 tensorflow/tpu ``mnasnet_models`` (B1 = torchvision ``mnasnet1_0``);
MobileNetV1 (Howard et al. 2017, Table 1); MobileNetV2 (Sandler et al. 2018, Table 2 =
torchvision ``mobilenet_v2``); ResNet-18/50 (He et al. 2016, Table 1; torchvision v1.5, the
stride on the 3x3 conv); EfficientNet-Lite0-4 tensorflow/tpu ``efficientnet/lite/efficientnet_lite_builder``
(= timm ``tf_efficientnet_lite*``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from effnas.search_spaces.codec import decode_stages
from effnas.search_spaces.rules import OFFICIAL, scale, scale_official
from effnas.search_spaces.spec import NetworkSpec

B0_STAGES = (
    "r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)
#: EfficientNet-Lite: B0's stages without squeeze-excitation (ReLU6 is set network-wide).
LITE_STAGES = tuple(s.removesuffix("_se0.25") for s in B0_STAGES)
#: EfficientNet-Lite variants: (width, depth, resolution, dropout). Width and depth are TF
#: ``efficientnet_lite_builder``'s; resolutions are the released checkpoints' evaluation sizes as timm
#: lists them (TF's builder table trains Lite3 / Lite4 at 280 / 300; see docs/transfer.md). Only the resolution
#: differs: parameter counts do not depend on it.
LITE: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 300, 0.3),
    "lite4": (1.4, 1.8, 380, 0.3),
}
MNASNET_A1_STAGES = (
    "r1_k3_s11_e1_i32_o16_noskip", "r2_k3_s22_e6_i16_o24", "r3_k5_s22_e3_i24_o40_se0.25",
    "r4_k3_s22_e6_i40_o80", "r2_k3_s11_e6_i80_o112_se0.25", "r3_k5_s22_e6_i112_o160_se0.25",
    "r1_k3_s11_e6_i160_o320",
)
MNASNET_B1_STAGES = (
    "r1_k3_s11_e1_i32_o16_noskip", "r3_k3_s22_e3_i16_o24", "r3_k5_s22_e3_i24_o40",
    "r3_k5_s22_e6_i40_o80", "r2_k3_s11_e6_i80_o96", "r4_k5_s22_e6_i96_o192",
    "r1_k3_s11_e6_i192_o320_noskip",
)
MOBILENET_V1_STAGES = (
    "dsconv_r1_k3_s11_e1_i32_o64_noskip", "dsconv_r1_k3_s22_e1_i64_o128_noskip",
    "dsconv_r1_k3_s11_e1_i128_o128_noskip", "dsconv_r1_k3_s22_e1_i128_o256_noskip",
    "dsconv_r1_k3_s11_e1_i256_o256_noskip", "dsconv_r1_k3_s22_e1_i256_o512_noskip",
    "dsconv_r5_k3_s11_e1_i512_o512_noskip", "dsconv_r1_k3_s22_e1_i512_o1024_noskip",
    "dsconv_r1_k3_s11_e1_i1024_o1024_noskip",
)
MOBILENET_V2_STAGES = (
    "r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r3_k3_s22_e6_i24_o32", "r4_k3_s22_e6_i32_o64",
    "r3_k3_s11_e6_i64_o96", "r3_k3_s22_e6_i96_o160", "r1_k3_s11_e6_i160_o320",
)
RESNET18_STAGES = (
    "basic_r2_k3_s11_e1_i64_o64", "basic_r2_k3_s22_e1_i64_o128",
    "basic_r2_k3_s22_e1_i128_o256", "basic_r2_k3_s22_e1_i256_o512",
)
RESNET50_STAGES = (
    "bottleneck_r3_k3_s11_e4_i64_o256", "bottleneck_r4_k3_s22_e4_i256_o512",
    "bottleneck_r6_k3_s22_e4_i512_o1024", "bottleneck_r3_k3_s22_e4_i1024_o2048",
)
#: A narrow MBConv network for fast tests and CPU demos (32 px, 10 classes).
TINY_STAGES = (
    "r1_k3_s11_e1_i16_o16_se0.25", "r1_k3_s22_e4_i16_o24_se0.25", "r2_k5_s22_e4_i24_o32_se0.25",
    "r2_k3_s22_e4_i32_o48_se0.25", "r1_k3_s11_e4_i48_o64_se0.25",
)
#: A narrow B0-like base for CPU scaling demos (16 px, 10 classes): widths 16-24-32-48-64, MBConv e4/e6
#: with SE 0.25, 8x total downsampling counting the stem (16 px -> 2x2 before the head); meant as
#: the demo base of the scaling runs on the generated ``shapes`` set (``experiments/data/shapes.py``).
NANO_STAGES = (
    "r1_k3_s11_e1_i16_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o32_se0.25",
    "r2_k3_s11_e4_i32_o48_se0.25", "r1_k5_s11_e6_i48_o64_se0.25",
)


def efficientnet_b0() -> NetworkSpec:
    return NetworkSpec(name="efficientnet_b0", stem_channels=32, stages=decode_stages(B0_STAGES),
                       head_channels=1280)


def efficientnet_lite(key: str) -> NetworkSpec:
    """EfficientNet-Lite ``key`` ('lite0'...'lite4'): no SE, ReLU6, and the stem (32), the head (1280)
    and the repeats of the first and last stage are not scaled (TF ``fix_head_stem``)."""
    width, depth, resolution, dropout = LITE[key]
    base = NetworkSpec(name="efficientnet_lite0", stem_channels=32, stages=decode_stages(LITE_STAGES),
                       head_channels=1280, activation="relu6")
    scaled = scale(base, depth=depth, width=width, resolution=resolution, dropout=dropout,
                   name=f"efficientnet_{key}")
    stages = list(scaled.stages)
    stages[0] = dataclasses.replace(stages[0], in_channels=base.stem_channels, repeats=base.stages[0].repeats)
    stages[-1] = dataclasses.replace(stages[-1], repeats=base.stages[-1].repeats)
    return dataclasses.replace(scaled, stem_channels=base.stem_channels, head_channels=base.head_channels,
                               stages=tuple(stages))


def mnasnet_a1() -> NetworkSpec:
    return NetworkSpec(name="mnasnet_a1", stages=decode_stages(MNASNET_A1_STAGES), activation="relu",
                       drop_connect_rate=0.0)


def mnasnet_b1() -> NetworkSpec:
    return NetworkSpec(name="mnasnet_b1", stages=decode_stages(MNASNET_B1_STAGES), activation="relu",
                       drop_connect_rate=0.0, bn_momentum=0.0003, bn_eps=1e-5)


def mobilenet_v1() -> NetworkSpec:
    return NetworkSpec(name="mobilenet_v1", stages=decode_stages(MOBILENET_V1_STAGES), head_channels=0,
                       activation="relu6", dropout=0.001, drop_connect_rate=0.0)


def mobilenet_v2() -> NetworkSpec:
    return NetworkSpec(name="mobilenet_v2", stages=decode_stages(MOBILENET_V2_STAGES), activation="relu6",
                       drop_connect_rate=0.0, bn_momentum=0.1, bn_eps=1e-5)


def _resnet(name: str, stages: tuple[str, ...]) -> NetworkSpec:
    return NetworkSpec(name=name, stem_channels=64, stem_kernel=7, stem_pool=True,
                       stages=decode_stages(stages), head_channels=0, activation="relu", dropout=0.0,
                       drop_connect_rate=0.0, bn_momentum=0.1, bn_eps=1e-5)


def tiny() -> NetworkSpec:
    return NetworkSpec(name="tiny", stem_channels=16, stages=decode_stages(TINY_STAGES), head_channels=128,
                       num_classes=10, resolution=32, dropout=0.1, drop_connect_rate=0.1)


def efficientnet_nano() -> NetworkSpec:
    return NetworkSpec(name="efficientnet_nano", stem_channels=16, stages=decode_stages(NANO_STAGES),
                       head_channels=256, num_classes=10, resolution=16, dropout=0.2, drop_connect_rate=0.1)


def _official(key: str) -> Callable[[], NetworkSpec]:
    return lambda: scale_official(efficientnet_b0(), key)


#: This module's models, in the order ``effnas models list`` shows them: name -> a factory of a fresh spec
#: (:data:`effnas.search_spaces.zoo.BUILTIN` gathers every built-in model).
BUILTIN: dict[str, Callable[[], NetworkSpec]] = {
    "efficientnet_b0": efficientnet_b0,
    **{f"efficientnet_{key}": _official(key) for key in OFFICIAL if key != "b0"},
    **{f"efficientnet_{key}": functools.partial(efficientnet_lite, key) for key in LITE},
    "mnasnet_a1": mnasnet_a1,
    "mnasnet_b1": mnasnet_b1,
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "resnet18": lambda: _resnet("resnet18", RESNET18_STAGES),
    "resnet50": lambda: _resnet("resnet50", RESNET50_STAGES),
    "tiny": tiny,
    "efficientnet_nano": efficientnet_nano,
}
