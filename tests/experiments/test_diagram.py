from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.report.diagram import draw, op_name, rows
from effnas.search_spaces.cost import Cost, cost

#: A spec as a search might return it: every operator, pooling skips, mixed SE and activations.
SEARCHED = ss.NetworkSpec(
    name="searched", stem_channels=24, resolution=32, num_classes=10, head_channels=640,
    stages=ss.decode_stages((
        "conv_r1_k3_s11_e1_i24_o16_noskip", "dsconv_r2_k5_s22_e1_i16_o24", "r3_k5_s22_e3_i24_o40_se0.25_poolskip",
        "r4_k3_s22_e6_i40_o80_relu", "r2_k3_s11_e6_i80_o96_se0.25", "r1_k5_s22_e6_i96_o192_noskip",
    )),
)


@pytest.fixture(scope="module")
def b0_cost() -> Cost:
    return cost(ss.get("efficientnet_b0", resolution=32, num_classes=10))


@pytest.mark.parametrize("name", [
    "tiny", "efficientnet_nano", "mobilenet_v1",
    pytest.param("resnet50", marks=pytest.mark.slow), pytest.param("mnasnet_a1", marks=pytest.mark.slow),
])
def test_draw_writes_png_one_row_per_stage(name: str, tmp_path: Path) -> None:
    spec = ss.get(name)
    path = draw(spec, tmp_path / "sub" / f"{name}.png", resolution=32)
    _check_png(path, spec)


def test_draw_b0_with_precomputed_cost(b0_cost: Cost, tmp_path: Path) -> None:
    spec = ss.get("efficientnet_b0", resolution=32, num_classes=10)
    _check_png(draw(spec, tmp_path / "b0.png", precomputed=b0_cost), spec)


def _check_png(path: Path, spec: ss.NetworkSpec) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        w, h = im.size
        assert im.format == "PNG" and w == 1100
    n_rows = 2 + len(spec.stages) + (spec.head_channels > 0) + 1  # input, stem, stages, head, pool+FC
    assert h == pytest.approx((0.75 + 0.55 + 0.52 * n_rows) * 110, abs=2)
    assert 20_000 < path.stat().st_size < 400_000


def test_rows_show_stage_outputs_and_macs(b0_cost: Cost) -> None:
    spec = ss.get("efficientnet_b0", resolution=32, num_classes=10)
    r = rows(spec, b0_cost)
    assert [x.label for x in r][:3] == ["input", "stem", "stage 1"] and r[-1].label == "pool + FC"
    assert r[0].output == "32×32×3" and r[1].output == "16×16×32"
    assert r[3].title == "MBConv6  k3×3  s2  ×2" and r[3].detail == "SE 0.25 · residual" and r[3].output == "8×8×24"
    assert r[-2].output == "1×1×1280" and r[-1].output == "10"
    assert sum(x.macs or 0 for x in r) == b0_cost.macs
    assert b0_cost.macs == pytest.approx(8.47e6, rel=0.005)  # REFERENCE.md: B0 at 32 px, 10 classes


def test_searched_spec_labels(tmp_path: Path) -> None:
    c = cost(SEARCHED)
    r = rows(SEARCHED, c)
    titles = [x.title.split()[0] for x in r[2:-2]]
    assert titles == ["Conv", "DSConv", "MBConv3", "MBConv6", "MBConv6", "MBConv6"]
    assert r[4].detail == "SE 0.25 · pool skip" and r[5].detail == "no SE · residual · relu"
    _check_png(draw(SEARCHED, tmp_path / "s.png", precomputed=c), SEARCHED)


def test_efficientnetv2_rows_name_fused_stages(tmp_path: Path) -> None:
    spec = ss.get("efficientnetv2_b0", resolution=32, num_classes=10)
    c = cost(spec)
    r = rows(spec, c)
    assert [x.title.split()[0] for x in r[2:-2]] == ["Fused-MBConv1", "Fused-MBConv4", "Fused-MBConv4", "MBConv4",
                                                     "MBConv6", "MBConv6"]
    assert r[2].colour != r[5].colour
    _check_png(draw(spec, tmp_path / "v2.png", precomputed=c), spec)


def test_op_names() -> None:
    assert op_name(ss.decode_block("bottleneck_r3_k3_s11_e4_i64_o256")) == "Bottleneck"
    assert op_name(ss.decode_block("basic_r2_k3_s11_e1_i64_o64")) == "Basic"
    assert op_name(ss.decode_block("r2_k3_s1_e1_i24_o24_c1")) == "Fused-MBConv1"


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_resolution(bad: object, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="resolution must be a positive integer"):
        draw(ss.get("tiny"), tmp_path / "x.png", resolution=bad)  # type: ignore[arg-type]


def test_models_show_diagram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny.png"
    assert main(["models", "show", "tiny", "--diagram", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "tiny" in capsys.readouterr().out
