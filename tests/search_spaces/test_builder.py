from __future__ import annotations

import dataclasses

import pytest
import torch

import effnas.search_spaces as ss
from effnas.search_spaces.builder import MBConv

BIG = ["efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_b8",
       "efficientnetv2_m", "efficientnetv2_l"]
SMALL = [n for n in ss.names() if n not in {*BIG, "efficientnet_l2"}]


@pytest.mark.parametrize("name", SMALL)
def test_forward_backward_without_nan(name: str) -> None:
    torch.manual_seed(0)
    model = ss.build(ss.get(name, num_classes=7))
    x = torch.randn(2, 3, 64, 64)
    y = model(x)
    assert y.shape == (2, 7)
    y.square().mean().backward()
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_big_forward_backward(name: str) -> None:
    model = ss.build(ss.get(name, num_classes=3))
    y = model(torch.randn(2, 3, 64, 64))
    y.sum().backward()
    assert torch.isfinite(y).all()


def test_same_padding_matches_symmetric_shapes_and_costs() -> None:
    spec = ss.get("efficientnet_b0", num_classes=10)
    same = dataclasses.replace(spec, padding="same")
    for res in (32, 57, 224):
        a = ss.build(spec).eval().forward_features(torch.zeros(1, 3, res, res))
        b = ss.build(same).eval().forward_features(torch.zeros(1, 3, res, res))
        assert a.shape == b.shape


def test_stochastic_depth_rises_linearly_and_only_on_residual_blocks() -> None:
    model = ss.build(ss.get("efficientnet_b0"))
    blocks = [b for stage in model.stages for b in stage]
    n = len(blocks)
    assert n == 16
    for i, b in enumerate(blocks):
        assert isinstance(b, MBConv)
        assert b.drop_rate == pytest.approx(0.2 * i / n)
    residual = [b.identity for b in blocks]
    # Residual only where stride 1 and in == out: the repeated blocks of each stage.
    assert residual == [False, False, True, False, True, False, True, True, False, True, True,
                        False, True, True, True, False]


def test_se_is_relative_to_block_input() -> None:
    model = ss.build(ss.get("efficientnet_b0"))
    block = model.stages[1][0]  # 16 -> 24, expansion 6: 96 expanded channels, SE to int(16*0.25) = 4
    assert block.se.reduce.out_channels == 4
    assert block.se.reduce.in_channels == 96


def test_pool_skip_projects() -> None:
    spec = ss.NetworkSpec(stages=(ss.decode_block("r2_k3_s22_e3_i32_o48_poolskip"),), head_channels=0,
                          num_classes=2, resolution=32)
    model = ss.build(spec)
    assert model.stages[0][0].shortcut is not None
    assert model.stages[0][1].identity
    assert model(torch.randn(2, 3, 33, 33)).shape == (2, 2)


def test_shortcut_kind_decides_the_built_shortcut() -> None:
    spec = ss.NetworkSpec(stem_channels=16, head_channels=0, num_classes=3, stages=ss.decode_stages([
        "basic_r2_k3_s22_e1_i16_o32", "r2_k3_s22_e3_i32_o40_poolskip", "r1_k3_s11_e1_i40_o40_poolskip",
        "r1_k3_s11_e1_i40_o40_noskip"]))
    kinds = [b.shortcut for s in spec.stages for b in s.layers()]
    assert kinds == ["projection", "identity", "pool", "identity", "identity", "none"]
    built = [b for stage in ss.build(spec).stages for b in stage]
    assert [b.identity for b in built] == [k == "identity" for k in kinds]
    projection, pool = built[0].shortcut, built[2].shortcut
    assert isinstance(projection[0], torch.nn.Conv2d) and projection[0].stride == (2, 2)
    assert isinstance(pool[0], torch.nn.AvgPool2d) and isinstance(pool[1], torch.nn.Conv2d)
    assert all(b.shortcut is None for i, b in enumerate(built) if kinds[i] in ("identity", "none"))
