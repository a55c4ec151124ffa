from __future__ import annotations

import dataclasses

import pytest

import effnas.search_spaces as ss
from effnas.search_spaces.cost import MAC_OPERATORS, Cost, cost, count_params, flop_analysis
from effnas.search_spaces.counts import breakdown, counts

#: REFERENCE.md, official family at 1000 classes and native resolution.
REFERENCE = {"efficientnet_b0": (5_288_548, 0.386e9), "efficientnet_b7": (66_347_960, 37.746e9),
             "efficientnet_b8": (87_413_142, 62.60e9), "efficientnet_l2": (480_309_308, 475.7e9)}
#: Scaled B0 variants share B0's block types; they run with the slow tests (fvcore traces take seconds).
SCALED_B0 = {f"efficientnet_b{i}" for i in range(1, 9)} | {"efficientnet_l2"}
#: EfficientNetV2 B1-B3 have B0's blocks and M, L S's: V2-B0 and V2-S run by default.
SCALED_V2 = {f"efficientnetv2_{k}" for k in ("b1", "b2", "b3", "m", "l")}
CASES = [pytest.param(n, marks=pytest.mark.slow) if n in SCALED_B0 | SCALED_V2 else n for n in ss.names()
         if n not in ("efficientnet_b6", "efficientnet_b7", "efficientnet_b8", "efficientnet_l2")]


@pytest.mark.parametrize("name", CASES)
def test_counts_equal_fvcore_cost_model(name: str) -> None:
    spec = ss.get(name)
    c, a = cost(spec, resolution=37), counts(spec, 37)
    assert (a.params, a.macs) == (c.params, c.macs)
    _assert_stages_equal(spec, c)


def test_counts_equal_fvcore_for_unusual_blocks() -> None:
    stages = ss.decode_stages([
        "conv_r1_k3_s22_e1_i24_o32_se0.25", "r2_k5_s22_e3_i32_o40_poolskip", "dsconv_r2_k3_s22_e1_i40_o48_se0.5",
        "r1_k3_s11_e1_i48_o48_poolskip", "basic_r2_k3_s22_e1_i48_o64", "bottleneck_r2_k3_s11_e2_i64_o64",
    ])
    for padding, stem_kernel in (("same", 3), ("symmetric", 4)):
        spec = ss.NetworkSpec(stem_channels=24, stem_kernel=stem_kernel, stem_pool=True, stages=stages,
                              head_channels=96, num_classes=7, padding=padding)
        for res in (29, 40):
            c, a = cost(spec, resolution=res), counts(spec, res)
            assert (a.params, a.macs) == (c.params, c.macs), (padding, res)
            _assert_stages_equal(spec, c)
        _assert_blocks_equal_fvcore(spec, 29)


#: Fused-MBConv in every form the builder has: expansion 1 (one kxk conv) with and without SE, a strided
#: expansion with SE, a 5x5 one, no skip, a pooling skip, and an MBConv stage after it (EfficientNetV2's mix).
FUSED = ["r2_k3_s11_e1_i24_o24_c1", "r1_k3_s22_e1_i24_o32_c1_se0.25", "r2_k3_s22_e4_i32_o40_c1_se0.25",
         "r2_k5_s11_e3_i40_o40_c1_noskip", "r1_k3_s22_e2_i40_o48_c1_poolskip", "r2_k3_s11_e4_i48_o48_se0.25"]


def test_fused_mbconv_counts_equal_fvcore() -> None:
    """Params, MACs and activations of Fused-MBConv blocks: the closed form against fvcore on the built model,
    per block and in total, for both paddings, at even and odd input sizes."""
    import torch
    from fvcore.nn import ActivationCountAnalysis

    stages = ss.decode_stages(FUSED)
    assert {b.op for b in stages} == {"fused_mbconv", "mbconv"}
    for padding in ("same", "symmetric"):
        spec = ss.NetworkSpec(stem_channels=24, stages=stages, head_channels=64, num_classes=5, padding=padding)
        for res in (29, 40):
            c, a = cost(spec, resolution=res), counts(spec, res)
            assert (a.params, a.macs) == (c.params, c.macs), (padding, res)
            _assert_stages_equal(spec, c)
            model = ss.build(spec).eval()
            with torch.no_grad():
                fa = ActivationCountAnalysis(model, torch.zeros(1, 3, res, res)).uncalled_modules_warnings(False)
                fa.unsupported_ops_warnings(False)
                assert a.activations == fa.total(), (padding, res)
                by_module = fa.by_module()
            blocks = [b for p in breakdown(spec, res) for b in p.blocks]
            assert [b.activations for b in blocks] == [by_module[b.name] for b in blocks]
        _assert_blocks_equal_fvcore(spec, 29)


def _assert_stages_equal(spec: ss.NetworkSpec, c: Cost) -> None:
    """``breakdown`` gives what ``cost`` gives per stage (what ``effnas models show`` prints)."""
    parts = breakdown(spec, c.resolution)
    assert [(p.name, p.params, p.macs, p.out_channels, p.out_resolution) for p in parts] == \
        [(s.name, s.params, s.macs, s.out_channels, s.out_resolution) for s in c.stages]


def _assert_blocks_equal_fvcore(spec: ss.NetworkSpec, res: int) -> None:
    """Every block of ``breakdown`` against fvcore's count of the built module ``stages.i.j``."""
    model = ss.build(spec).eval()
    by_module = flop_analysis(model, res).by_module_and_operator()
    modules = dict(model.named_modules())
    blocks = [b for p in breakdown(spec, res) for b in p.blocks]
    assert len(blocks) == spec.num_blocks
    for b in blocks:
        macs = sum(v for k, v in by_module.get(b.name, {}).items() if k in MAC_OPERATORS)
        assert (b.params, b.macs) == (count_params(modules[b.name]), macs), b.name


def test_breakdown_blocks_equal_fvcore_for_b0() -> None:
    _assert_blocks_equal_fvcore(ss.get("efficientnet_b0", num_classes=10), 45)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_params_exact_and_macs_within_half_percent(name: str) -> None:
    params, macs = REFERENCE[name]
    a = counts(ss.get(name))
    assert a.params == params
    assert abs(a.macs / macs - 1) < 0.005


def test_bad_resolution() -> None:
    with pytest.raises(ValueError, match="resolution must be a positive integer"):
        counts(dataclasses.replace(ss.get("tiny")), 0)
