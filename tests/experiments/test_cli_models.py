from __future__ import annotations

import json
import subprocess
import sys

import pytest

from effnas.experiments.cli.main import main


def test_models_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", "efficientnet_b0", "--json", "--resolution", "32", "--num-classes", "10"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"] == 4_020_358 and d["resolution"] == 32 and d["num_classes"] == 10
    assert sum(s["macs"] for s in d["stages"]) == d["macs"]
    assert all("params" in s for s in d["stages"])
    # fvcore's ActivationCountAnalysis gives 146,854 for this build (test_reference_counts checks the agreement)
    assert d["activations"] == 146_854 == sum(s["activations"] for s in d["stages"])


def test_models_show_table_has_activations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", "tiny"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[-1] == "activations"
    total = next(line for line in out if line.startswith("total"))
    assert total.split()[-1] == "54,768"
    assert "activations 0.05 M" in out[-1]


def test_models_show_efficientnetv2_s_prints_timms_count(capsys: pytest.CaptureFixture[str]) -> None:
    """21,458,488: timm 1.0.31 ``tf_efficientnetv2_s`` (tests/search_spaces/test_reference_counts.py says how)."""
    assert main(["models", "show", "efficientnetv2_s"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "efficientnetv2_s: 384x384 px, 1000 classes"
    assert out[3].split()[:2] == ["stages.0", "r2_k3_s11_e1_i24_o24_c1"]  # Fused-MBConv stages print as c1
    assert next(line for line in out if line.startswith("total")).split()[1] == "21,458,488"


def test_models_show_spec_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import effnas.search_spaces as ss

    p = tmp_path / "spec.json"
    ss.get("tiny").save(p)
    assert main(["models", "show", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 107_424


def test_models_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    assert {"efficientnet_l2", "efficientnetv2_s", "efficientnetv2_b3"} <= {
        r["name"] for r in json.loads(capsys.readouterr().out)}


@pytest.mark.parametrize(
    "args,needle",
    [
        (["models", "show", "nope"], "unknown model 'nope'"),
        (["models", "show", "missing.json"], "does not exist"),
        (["models", "show", "tiny", "--resolution", "0"], "--resolution"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    r = subprocess.run([sys.executable, "-m", "effnas", *args], capture_output=True, text=True)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
