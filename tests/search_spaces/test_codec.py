from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from effnas.search_spaces import BlockSpec, NetworkSpec, decode_block, encode_block, get, names

blocks = st.builds(
    BlockSpec,
    op=st.sampled_from(["mbconv", "fused_mbconv", "dsconv", "conv", "basic"]),
    kernel=st.sampled_from([1, 3, 5, 7]),
    stride=st.sampled_from([1, 2]),
    expansion=st.integers(1, 8),
    in_channels=st.integers(1, 2048),
    out_channels=st.integers(1, 2048),
    se_ratio=st.sampled_from([0.0, 0.25, 0.5, 0.125, 1.0]),
    skip=st.sampled_from(["identity", "pool", "none"]),
    repeats=st.integers(1, 12),
    activation=st.sampled_from([None, "silu", "relu", "relu6"]),
)


@given(blocks)
def test_block_string_round_trip(block: BlockSpec) -> None:
    assert decode_block(encode_block(block)) == block


@pytest.mark.parametrize("name", ["efficientnet_b0", "mnasnet_a1", "resnet50", "mobilenet_v1", "tiny"])
def test_network_json_round_trip(name: str) -> None:
    spec = get(name)
    assert NetworkSpec.from_json(spec.to_json()) == spec
    assert NetworkSpec.from_json(spec.to_json(block_strings=False)) == spec


def test_tf_strings_decode_as_the_paper_says() -> None:
    b = decode_block("r2_k3_s22_e6_i16_o24_se0.25")
    assert (b.repeats, b.kernel, b.stride, b.expansion, b.in_channels, b.out_channels, b.se_ratio) == (
        2, 3, 2, 6, 16, 24, 0.25)
    assert decode_block("r1_k3_s11_e1_i32_o16_noskip").skip == "none"
    assert encode_block(b) == "r2_k3_s22_e6_i16_o24_se0.25"


#: google/automl ``efficientnetv2/effnetv2_configs.py``, ``v2_s_block``, verbatim: single-digit strides, ``c1``
#: for Fused-MBConv.
AUTOML_V2_S = [
    "r2_k3_s1_e1_i24_o24_c1", "r4_k3_s2_e4_i24_o48_c1", "r4_k3_s2_e4_i48_o64_c1",
    "r6_k3_s2_e4_i64_o128_se0.25", "r9_k3_s1_e6_i128_o160_se0.25", "r15_k3_s2_e6_i160_o256_se0.25",
]


def test_automl_v2_strings_decode_as_their_decoder_reads_them() -> None:
    blocks = [decode_block(s) for s in AUTOML_V2_S]
    assert [(b.op, b.repeats, b.kernel, b.stride, b.expansion, b.in_channels, b.out_channels, b.se_ratio)
            for b in blocks[:2] + blocks[3:4]] == [
        ("fused_mbconv", 2, 3, 1, 1, 24, 24, 0.0), ("fused_mbconv", 4, 3, 2, 4, 24, 48, 0.0),
        ("mbconv", 6, 3, 2, 4, 64, 128, 0.25)]
    assert decode_block("r6_k3_s2_e4_i64_o128_c0_se0.25") == blocks[3]  # c0: MBConv, as TF's default
    # The encoder writes effnas's canonical form (two-digit strides, c1 after the channels as TF's encoder
    # does), which decodes to the same blocks and encodes to itself again.
    canonical = [encode_block(b) for b in blocks]
    assert canonical[:2] == ["r2_k3_s11_e1_i24_o24_c1", "r4_k3_s22_e4_i24_o48_c1"]
    assert [decode_block(s) for s in canonical] == blocks
    assert [encode_block(decode_block(s)) for s in canonical] == canonical
    assert encode_block(decode_block("r1_k5_s22_e6_i16_o24_c1_se0.25_noskip_relu")) == \
        "r1_k5_s22_e6_i16_o24_c1_se0.25_noskip_relu"


def test_efficientnetv2_specs_round_trip_through_json() -> None:
    for name in ("efficientnetv2_s", "efficientnetv2_b3"):
        spec = get(name)
        assert NetworkSpec.from_json(spec.to_json()) == spec
        assert NetworkSpec.from_json(spec.to_json(block_strings=False)) == spec
    assert get("efficientnetv2_s").stages == tuple(decode_block(s) for s in AUTOML_V2_S)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("r2_k3_s22_e6_i16_o24_c2", "expected c0 \\(MBConv\\) or c1"),
        ("r2_k3_s22_e6_i16_o24_c1_c1", "sets the conv type twice"),
        ("dsconv_r2_k3_s22_e6_i16_o24_c1", "MBConv blocks only: drop it or the leading 'dsconv'"),
        ("fused_mbconv_r2_k3_s22_e6_i16_o24", "'fused'"),
        ("r2_k3_s22_e6_i16_o24_zz9", "'zz9'"),
        ("r2_k3_s33_e6_i16_o24", "stride"),
        ("r2_k3_s22_e6_i0_o24", "in_channels"),
        ("r2_k3_s22_e6_i16_o-4", "'o-4'"),
        ("r2_k3_s22_e6_i16_o24_se1.5", "se_ratio"),
        ("r2_k3_s22_e6_o24", "in_channels"),
        ("", "empty"),
        ("r2_k4_s22_e6_i16_o24", "odd"),
    ],
)
def test_bad_strings_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as e:
        decode_block(text)
    assert "\n" not in str(e.value)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="op"):
        BlockSpec(op="transformer")
    with pytest.raises(ValueError, match="stride"):
        BlockSpec(stride=3)
    with pytest.raises(ValueError, match="se_ratio"):
        BlockSpec(se_ratio=-0.1)
    with pytest.raises(ValueError, match="out_channels"):
        BlockSpec(out_channels=0)
    with pytest.raises(ValueError, match="does not match"):
        NetworkSpec(stem_channels=32, stages=(BlockSpec(in_channels=16, out_channels=16),))
    with pytest.raises(ValueError, match="unknown network field 'colour'"):
        NetworkSpec.from_dict({"colour": 1})


def test_registry() -> None:
    from effnas.search_spaces.registry import register

    assert {"efficientnet_b0", "efficientnet_b8", "efficientnet_l2", "mnasnet_a1", "mnasnet_b1", "mobilenet_v1",
            "mobilenet_v2", "resnet18", "resnet50", "tiny", "efficientnetv2_s", "efficientnetv2_m", "efficientnetv2_l",
            "efficientnetv2_b0", "efficientnetv2_b1", "efficientnetv2_b2", "efficientnetv2_b3"} <= set(names())
    with pytest.raises(ValueError, match="already registered"):
        register("tiny", lambda: get("tiny"))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get("nope")
