"""EfficientNetV2 weights in timm's layout (``tf_efficientnetv2_*``): Fused-MBConv stages are timm ``ConvBnAct``
(expansion 1: ``conv``, ``bn1``) and ``EdgeResidual`` (``conv_exp``, ``bn1``, ``se.*``, ``conv_pwl``, ``bn2``).

``tests/data/timm_tf_efficientnetv2_b0_keys.json`` holds every key of timm's own ``tf_efficientnetv2_b0`` state
dict, in order, with its shape (timm 1.0.31; the file says how it was made); timm is not a dependency and is
never imported here. :func:`timm_efficientnetv2` writes such a state dict from timm's ``_gen_efficientnetv2_*``
definitions and block classes (``efficientnet.py``, ``_efficientnet_blocks.py``), independently of effnas's key
map; it reproduces the JSON exactly and then stands in for the larger models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.weights.convert import convert, import_weights, load_weights, to_layout
from effnas.experiments.weights.layouts import key_map

TIMM_B0 = json.loads((Path(__file__).resolve().parents[1] / "data" / "timm_tf_efficientnetv2_b0_keys.json").read_text())
_STATS = ("running_mean", "running_var", "num_batches_tracked")

#: timm ``_gen_efficientnetv2_*`` arch defs at their final widths: (stem, [(type, repeats, kernel, stride, exp,
#: out channels, se)], head). ``cn`` = ConvBnAct (with skip), ``er`` = EdgeResidual, ``ir`` = InvertedResidual.
TIMM_ARCH = {
    "tf_efficientnetv2_b0": (32, [("cn", 1, 3, 1, 1, 16, 0.0), ("er", 2, 3, 2, 4, 32, 0.0), ("er", 2, 3, 2, 4, 48, 0.0),
                                  ("ir", 3, 3, 2, 4, 96, 0.25), ("ir", 5, 3, 1, 6, 112, 0.25),
                                  ("ir", 8, 3, 2, 6, 192, 0.25)], 1280),
    "tf_efficientnetv2_s": (24, [("cn", 2, 3, 1, 1, 24, 0.0), ("er", 4, 3, 2, 4, 48, 0.0), ("er", 4, 3, 2, 4, 64, 0.0),
                                 ("ir", 6, 3, 2, 4, 128, 0.25), ("ir", 9, 3, 1, 6, 160, 0.25),
                                 ("ir", 15, 3, 2, 6, 256, 0.25)], 1280),
    # depth 1.4 (ceil per stage), width 1.2 with round_limit=0: 32 -> 40, 16 -> 16, 1280 -> 1536
    "tf_efficientnetv2_b3": (40, [("cn", 2, 3, 1, 1, 16, 0.0), ("er", 3, 3, 2, 4, 40, 0.0), ("er", 3, 3, 2, 4, 56, 0.0),
                                  ("ir", 5, 3, 2, 4, 112, 0.25), ("ir", 7, 3, 1, 6, 136, 0.25),
                                  ("ir", 12, 3, 2, 6, 232, 0.25)], 1536),
}


def timm_efficientnetv2(name: str) -> dict[str, torch.Tensor]:
    """A state dict with the key names, order and shapes of timm's ``name`` (random values)."""
    stem, stages, head = TIMM_ARCH[name]
    sd: dict[str, torch.Tensor] = {}

    def conv(key: str, cout: int, cin: int, k: int, groups: int = 1, bias: bool = False) -> None:
        sd[f"{key}.weight"] = torch.randn(cout, cin // groups, k, k)
        if bias:
            sd[f"{key}.bias"] = torch.randn(cout)

    def bn(key: str, c: int) -> None:
        for s in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{key}.{s}"] = torch.rand(c) + 0.5
        sd[f"{key}.num_batches_tracked"] = torch.tensor(3)

    conv("conv_stem", stem, 3, 3)
    bn("bn1", stem)
    cin = stem
    for si, (kind, repeats, k, _stride, e, cout, se) in enumerate(stages):
        for bi in range(repeats):
            p, mid = f"blocks.{si}.{bi}", cin * e
            if kind == "cn":
                conv(f"{p}.conv", cout, cin, k)
                bn(f"{p}.bn1", cout)
            elif kind == "er":
                conv(f"{p}.conv_exp", mid, cin, k)
                bn(f"{p}.bn1", mid)
                conv(f"{p}.conv_pwl", cout, mid, 1)
                bn(f"{p}.bn2", cout)
            else:
                conv(f"{p}.conv_pw", mid, cin, 1)
                bn(f"{p}.bn1", mid)
                conv(f"{p}.conv_dw", mid, mid, k, groups=mid)
                bn(f"{p}.bn2", mid)
                rd = round(mid * se / e)  # timm: se_ratio / exp_ratio of the expanded channels
                conv(f"{p}.se.conv_reduce", rd, mid, 1, bias=True)
                conv(f"{p}.se.conv_expand", mid, rd, 1, bias=True)
                conv(f"{p}.conv_pwl", cout, mid, 1)
                bn(f"{p}.bn3", cout)
            cin = cout
    conv("conv_head", head, cin, 1)
    bn("bn2", head)
    sd["classifier.weight"], sd["classifier.bias"] = torch.randn(1000, head), torch.randn(1000)
    return sd


def _params(sd: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() for k, v in sd.items() if not k.endswith(_STATS))


def test_the_generator_writes_timms_own_b0_keys() -> None:
    sd = timm_efficientnetv2("tf_efficientnetv2_b0")
    assert [[k, list(v.shape)] for k, v in sd.items()] == TIMM_B0["state_dict"]
    assert _params(sd) == TIMM_B0["params"] == 7_139_704 == ss.counts(ss.get("efficientnetv2_b0")).params


def test_timms_b0_keys_are_ours_renamed_in_order() -> None:
    """ours -> timm names: exactly timm's keys, in timm's order, with timm's shapes."""
    spec = ss.get("efficientnetv2_b0")
    ours = ss.build(spec).state_dict()
    theirs = to_layout(ours, spec, "timm")
    assert [[k, list(v.shape)] for k, v in theirs.items()] == TIMM_B0["state_dict"]
    back = convert(theirs, spec, "timm")  # and back: identical tensors under our names
    assert list(back) == list(ours) and all(torch.equal(back[k], ours[k]) for k in ours)


@pytest.mark.parametrize("name,params", [("efficientnetv2_b0", 7_139_704), ("efficientnetv2_s", 21_458_488),
                                         ("efficientnetv2_b3", 14_358_406)])
def test_timm_state_dicts_import_and_round_trip(name: str, params: int) -> None:
    torch.manual_seed(0)
    theirs = timm_efficientnetv2(f"tf_{name}")
    assert _params(theirs) == params  # timm 1.0.31's count (tests/search_spaces/test_reference_counts.py)
    w = import_weights(theirs, layout="timm", model=name, padding="same")  # timm's tf_ models pad "same"
    assert w.spec.padding == "same" and set(w.state) == set(ss.build(w.spec).state_dict())
    assert torch.equal(w.state["stages.0.0.project.0.weight"], theirs["blocks.0.0.conv.weight"])
    assert torch.equal(w.state["stages.1.0.expand.0.weight"], theirs["blocks.1.0.conv_exp.weight"])
    back = to_layout(w.state, w.spec, "timm")
    assert list(back) == list(theirs) and all(torch.equal(back[k], theirs[k]) for k in theirs)
    model = w.model()  # loads strictly
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_cli_imports_a_timm_v2_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(1)
    theirs = timm_efficientnetv2("tf_efficientnetv2_b0")
    torch.save(theirs, tmp_path / "tf_efficientnetv2_b0.pth")
    out = tmp_path / "v2b0.pt"
    assert main(["weights", "import", str(tmp_path / "tf_efficientnetv2_b0.pth"), "--layout", "timm", "--model",
                 "efficientnetv2_b0", "--padding", "same", "-o", str(out)]) == 0
    assert "efficientnetv2_b0, 420 tensors, 7,139,704 parameters, 1000 classes, padding same" in capsys.readouterr().out
    w = load_weights(out)
    assert w.spec == import_weights(theirs, layout="timm", model="efficientnetv2_b0", padding="same").spec
    assert all(torch.equal(w.state[ours], theirs[t]) for ours, t in key_map(w.spec, "timm"))


@pytest.mark.parametrize("layout", ["tfport", "torchvision"])
def test_other_layouts_have_no_names_for_fused_blocks(layout: str) -> None:
    with pytest.raises(ValueError, match="Fused-MBConv blocks of 'efficientnetv2_b0': use --layout timm"):
        key_map(ss.get("efficientnetv2_b0"), layout)


def test_a_fused_block_timm_cannot_hold_is_named() -> None:
    """timm's ConvBnAct (a Fused-MBConv of expansion 1) has no squeeze-excitation."""
    spec = ss.NetworkSpec(stem_channels=16, stages=ss.decode_stages(["r1_k3_s11_e1_i16_o16_c1_se0.25",
                                                                     "r1_k3_s22_e4_i16_o24_c1_se0.25"]))
    with pytest.raises(ValueError, match="no name for 'stages.0.0.se.reduce.weight'"):
        key_map(spec, "timm")
    spec = ss.NetworkSpec(stem_channels=16, stages=spec.stages[1:2], head_channels=64)
    assert ("stages.0.0.se.reduce.weight", "blocks.0.0.se.conv_reduce.weight") in key_map(spec, "timm")
