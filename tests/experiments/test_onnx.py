"""ONNX export: onnxruntime gives PyTorch's logits for reference models and a searched spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
import torch

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.weights.convert import Weights, save_weights
from effnas.experiments.weights.onnx_export import compare_onnx, export_onnx, model_for_export, onnx_session
from effnas.nas.space import get_space

RES = 64  # small inputs keep the default tests fast; the exported graph does not depend on it otherwise


def _searched_spec() -> ss.NetworkSpec:
    """A sample of the MnasNet search space: mixed conv / dsconv / mbconv ops, SE, pool skips."""
    space = get_space("mnasnet")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    spec = space.to_spec(space.sample(study.ask()), resolution=RES, num_classes=10)
    assert len({s.op for s in spec.stages}) > 1 or any(s.skip == "pool" for s in spec.stages)
    return spec


SPECS = {
    "efficientnet_b0": lambda: ss.get("efficientnet_b0", num_classes=10, resolution=RES),
    "mobilenet_v2": lambda: ss.get("mobilenet_v2", num_classes=10, resolution=RES),
    "resnet18": lambda: ss.get("resnet18", num_classes=10, resolution=RES),
    "lite0_same_padding": lambda: dataclasses.replace(ss.get("efficientnet_lite0", num_classes=10, resolution=RES),
                                                      padding="same"),
    "searched": _searched_spec,
}


@pytest.mark.parametrize("name", list(SPECS))
def test_onnxruntime_matches_torch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = SPECS[name]()
    model = ss.build(spec).eval()
    # Random BN statistics, so that a mis-exported BatchNorm would show.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    out = export_onnx(model, tmp_path / f"{name}.onnx", resolution=RES)
    diff = compare_onnx(out, model, resolution=RES, batch=3)
    assert diff < 1e-4, diff
    # The batch dimension is dynamic.
    got = onnx_session(out).run(["logits"], {"images": torch.randn(5, 3, RES, RES).numpy()})[0]
    assert got.shape == (5, 10)


def test_cli_exports_a_model_name_and_a_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--onnx", str(tmp_path / "tiny.onnx"), "--model", "tiny", "--resolution", "32"]) == 0
    out = capsys.readouterr().out
    assert "tiny at 32 px ->" in out and "onnxruntime max |diff|" in out
    torch.manual_seed(1)
    spec = ss.get("tiny")
    w = Weights(spec, ss.build(spec).state_dict())
    save_weights(tmp_path / "w.pt", w)
    _, model = model_for_export(str(tmp_path / "w.pt"))
    assert torch.equal(model.state_dict()["classifier.weight"], w.state["classifier.weight"])
    assert main(["export", "--onnx", str(tmp_path / "w.onnx"), "--model", str(tmp_path / "w.pt")]) == 0
    assert compare_onnx(tmp_path / "w.onnx", w.model(), resolution=spec.resolution) < 1e-4
    assert main(["export", "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "--onnx needs --model" in capsys.readouterr().err
    assert main(["export", "--model", "tiny", "-o", str(tmp_path / "x.json")]) == 2
    assert "--model applies to ONNX export" in capsys.readouterr().err


def test_cli_exports_a_search_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="search", storage=storage)
    trial = study.ask()
    trial.set_user_attr("spec", _searched_spec().to_json())
    study.tell(trial, 0.5)
    out = tmp_path / "t0.onnx"
    assert main(["export", "--storage", storage, "--trial", "0", "--onnx", str(out), "--num-classes", "5"]) == 0
    assert f"-> {out}" in capsys.readouterr().out
    got = onnx_session(out).run(["logits"], {"images": torch.randn(2, 3, RES, RES).numpy()})[0]
    assert got.shape == (2, 5)
