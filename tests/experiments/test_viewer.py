"""The viewer's numbers are those ``effnas family`` and ``effnas models show`` print (same code);
the page is self-contained. The browser half is in ``tests/browser/``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import effnas.search_spaces as ss
from effnas.experiments.cli.main import main
from effnas.experiments.report.viewer import viewer_data


def _embedded(page: str) -> dict:
    m = re.search(r"<script type='application/json' id='viewer-data'>(.*?)</script>", page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.mark.parametrize("official", [False, True])
def test_viewer_equals_effnas_family_and_models_show(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     official: bool) -> None:
    how = ["--official"] if official else ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"]
    common = ["efficientnet_b0", "--resolution", "48", *how]
    out = tmp_path / "viewer.html"
    assert main(["view", *common, "--num-classes", "10", "-o", str(out)]) == 0
    assert f"wrote {out} (9 members" in capsys.readouterr().out
    data = _embedded(out.read_text())
    # family takes its class count from the data set: shapes has 10 classes.
    assert main(["family", "--base", *common, "--dataset", "shapes", "--no-baselines", "--phis", "0-8", "--json",
                 "--out", str(tmp_path / "fam")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [m["phi"] for m in data["members"]] == [r["phi"] for r in rows] == list(range(9))
    for m, r in zip(data["members"], rows, strict=True):
        assert (m["name"], m["params"], m["macs"], m["resolution"], m["blocks"]) == (
            r["name"], r["params"], r["macs"], r["resolution"], r["blocks"])
        for key in ("depth", "width", "resolution_mult", "macs_ratio", "nominal_macs_ratio"):
            assert float(m[key]) == pytest.approx(r[key], abs=6e-4), key
        assert sum(p["params"] for p in m["parts"]) == m["params"] and sum(p["macs"] for p in m["parts"]) == m["macs"]
    # Every stage of phi = 3 (B3) as 'effnas models show' prints it for the member's spec file.
    m3 = data["members"][3]
    assert main(["models", "show", str(tmp_path / "fam" / "specs" / f"{m3['name']}.json"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(p["name"], p["params"], p["macs"], p["out_channels"], p["out_resolution"]) for p in m3["parts"]] == [
        (s["name"], s["params"], s["macs"], s["out_channels"], s["out_resolution"]) for s in shown["stages"]]
    blocks = [b for p in m3["parts"] for b in p["blocks"]]
    assert [b["index"] for b in blocks] == list(range(m3["blocks"]))
    for p in m3["parts"]:
        if p["blocks"]:
            assert sum(b["params"] for b in p["blocks"]) == p["params"]


def test_page_is_self_contained_and_block_details_follow_the_spec(tmp_path: Path) -> None:
    out = tmp_path / "v.html"
    assert main(["view", "efficientnet_b0", "-o", str(out)]) == 0
    page = out.read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page), "the page must load nothing"
    assert "<script src" not in page and "<link" not in page and "fetch(" not in page
    data = _embedded(page)
    m0 = data["members"][0]
    assert (m0["resolution"], m0["params"], m0["depth"], m0["width"], m0["resolution_mult"]) == (
        224, 5_288_548, "1.000", "1.000", "1.000")
    assert data["members"][3]["resolution"] == round(224 * 1.15**3)
    blocks = [b for p in m0["parts"] for b in p["blocks"]]
    spec = ss.get("efficientnet_b0")
    assert [float(b["drop_rate"]) for b in blocks] == pytest.approx(list(spec.drop_rates()), abs=1e-4)
    assert [b["expansion"] for b in blocks[:3]] == [1, 6, 6] and {b["se_ratio"] for b in blocks} == {0.25}
    # The shortcuts are the builder's: a residual only on the repeated blocks of each stage.
    model = ss.build(spec)
    built = ["identity" if b.identity else "none" for stage in model.stages for b in stage]
    assert [b["shortcut"] for b in blocks] == built


@pytest.mark.parametrize("args,needle", [
    (["view", "efficientnet_b0", "--official", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"],
     "either --official or coefficients"),
    (["view", "efficientnet_b0", "--official", "--phis", "0-9"], "B0...B8"),
    (["view", "nope"], "unknown model 'nope'"),
    (["view", "tiny", "--resolution", "0"], "--resolution must be a positive integer"),
    (["view", "tiny", "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.1"], "alpha must be"),
])
def test_bad_input_is_one_line_error(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_viewer_data_phis_and_rounding() -> None:
    base = ss.get("efficientnet_nano")
    d = viewer_data(base, phis=[0, 4], depth_rounding="ceil")
    assert [m["label"] for m in d["members"]] == ["phi = 0", "phi = 4"] and d["depth_rounding"] == "ceil"
    assert d["members"][1]["blocks"] > viewer_data(base, phis=[4])["members"][0]["blocks"]
    assert [m["label"] for m in viewer_data(base, phis=[0, 7], official=True)["members"]] == ["B0", "B7"]
