from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from effnas.experiments.cli.main import main

OFFICIAL_PARAMS = [5_288_548, 7_794_184, 9_109_994, 12_233_232, 19_341_616, 30_389_784, 43_040_704, 66_347_960]


def test_family_official_reproduces_reference_beside_the_coefficients(tmp_path, capsys) -> None:
    # An ImageFolder's class count is read with the data: until then the model's own (1000) counts.
    assert main(["family", "--base", "efficientnet_b0", "--official", "--phis", "0-7", "--no-baselines",
                 "--dataset", "imagefolder:/data/imagenet", "--out", str(tmp_path)]) == 0
    fam = pd.read_csv(tmp_path / "members.csv")
    assert fam.params.tolist() == OFFICIAL_PARAMS and set(fam.method) == {"official"}
    capsys.readouterr()
    assert {"phi", "depth", "width", "resolution", "params", "macs", "macs_ratio", "nominal_macs_ratio"} <= set(fam)
    # --official with coefficients: the published table is trained beside the coefficient family.
    assert main(["family", "--base", "efficientnet_b0", "--official", "--alpha", "1.2", "--beta", "1.1", "--gamma",
                 "1.15", "--phis", "0-3", "--no-baselines", "--json"]) == 0
    rows = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert sorted(rows.method.unique()) == ["compound", "official"] and len(rows) == 8
    comp = rows[rows.method == "compound"]
    assert ((comp.macs_ratio / comp.nominal_macs_ratio - 1).abs() <= 0.1 + 1e-9).all()


def test_family_with_baselines_at_every_phi_json(capsys) -> None:
    assert main(["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-2",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["compound"] * 3 + ["depth", "width", "resolution"] * 2
    assert [r["phi"] for r in rows[3:]] == [1, 1, 1, 2, 2, 2]
    # Equal MACs, unequal activations: width-only scaling adds fewer than resolution-only (Dollar et al. 2021).
    width, resolution = rows[4], rows[5]
    assert width["activations"] < resolution["activations"]


def test_coefficients_file_and_scale_backbone(tmp_path, capsys) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"alpha": 1.2, "beta": 1.1, "gamma": 1.15}))
    assert main(["scale-backbone", "--backbone", "resnet50", "--coefficients", str(f), "--phi", "1", "--no-compare",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    (net,) = d["networks"]
    assert net["resolution"] == 258 and [s.split("_")[1] for s in d["specs"][0]["stages"]] == ["r4", "r5", "r7", "r4"]
    assert main(["scale-backbone", "--backbone", "mobilenet_v1", "--phi", "2"]) == 0
    out = capsys.readouterr().out
    assert all(m in out for m in ("base", "depth", "width", "resolution", "compound"))


def test_grid_dry_run(tmp_path, capsys) -> None:
    assert main(["grid", "--base", "tiny", "--step", "0.1", "--dry-run", "--out", str(tmp_path)]) == 0
    g = pd.read_csv(tmp_path / "grid_candidates.csv")
    assert len(g) == 22 and ((g["product"] - 2).abs() <= 0.1 + 1e-9).all()
    assert {"macs_ratio", "nominal_macs_ratio", "within_tolerance"} <= set(g.columns)
    ok = g[g.within_tolerance]
    assert len(ok) and ((ok.macs_ratio / 2 - 1).abs() <= 0.05 + 1e-9).all()
    assert not (tmp_path / "grid.csv").exists()  # a table-only run never writes over trained results


@pytest.mark.parametrize("args,needle", [
    (["family", "--base", "tiny", "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.15"], "alpha must be"),
    (["family", "--base", "tiny", "--alpha", "1.5", "--beta", "1.3", "--gamma", "1.3"], "far from the target 2"),
    (["family", "--base", "tiny", "--official", "--phis", "3-1"], "empty phi range"),
    (["family", "--base", "tiny"], "--official"),
    (["family", "--base", "tiny", "--alpha", "1.2"], "--beta is missing"),
    (["scale-backbone", "--backbone", "resnet51"], "unknown backbone 'resnet51'"),
    (["grid", "--base", "tiny", "--step", "0.5", "--tolerance", "0.01", "--target", "2.1", "--dry-run"], "no grid"),
    (["grid", "--base", "tiny", "--dataset", "shapes"], "--out DIR is required"),
    (["grid", "--base", "tiny", "--epochs", "2", "--set", "grid.epochs=3", "--dry-run"], "given twice"),
    (["grid", "--base", "tiny", "--set", "grid.epocks=3", "--dry-run"], "did you mean 'grid.epochs'"),
    (["family", "--base", "tiny", "--official", "--seeds", "0,0"], "value 0 is given twice in '0,0'"),
    (["curves", "/nonexistent/dir", "--out", "/tmp/never"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("effnas: error: ") and needle in err and len(err.strip().splitlines()) == 1


def test_bad_input_in_a_real_process() -> None:
    r = subprocess.run([sys.executable, "-m", "effnas", "scale-backbone", "--backbone", "resnet51"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


class _ClosedForm:
    """A TEST evaluator standing in for effnas.experiments.train.loop.train_fn: accuracy is a closed-form,
    deterministic function of the network's MACs and the seed; nothing is trained."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, config: dict, *, on_epoch=None) -> dict:
        import math

        import effnas.search_spaces as ss
        from effnas.scaling import counts

        self.calls += 1
        c = counts(ss.NetworkSpec.from_dict(config["model"]), config["resolution"])
        acc = 1 - (0.6 * (c.macs / 1e6) ** -0.35 + 0.04 + 0.004 * math.sin(3 * config["seed"] + 1))
        return {"status": "completed", "val_accuracy": acc, "test_accuracy": acc, "params": c.params, "macs": c.macs}


def test_family_train_resume_and_curves_end_to_end(tmp_path, capsys, monkeypatch) -> None:
    from effnas.experiments.pipeline import stages, timing

    ev = _ClosedForm()
    monkeypatch.setattr(stages, "trainer", lambda cfg=None: ev)
    # latency stands in closed form too (the real protocol: tests/experiments/test_family_timing.py)
    monkeypatch.setattr(timing, "measure", lambda spec, p: {"latency_batch": p.batch, "latency_ms_b1": spec.resolution,
                                                            "latency_ms_bN": 16.0 * spec.resolution, "protocol": {}})
    args = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-3",
            "--train", "--dataset", "shapes", "--epochs", "1", "--seeds", "2", "--out", str(tmp_path)]
    assert main(args) == 0
    assert ev.calls == (4 + 9) * 2
    trained = capsys.readouterr().out.split("val_accuracy (%)")[1]
    assert "(mean [95 % t-interval over seeds])" in trained and "(n = 2)" in trained and "±" not in trained
    fam = pd.read_csv(tmp_path / "family.csv")
    assert len(fam) == 26 and fam.test_accuracy.notna().all()
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert ev.calls == 26  # nothing retrained
    assert main(["curves", str(tmp_path), "--out", str(tmp_path / "curves")]) == 0
    out = capsys.readouterr().out
    # The closed form gains ~10 points from phi 0 to 3 with +-0.4 points of seed noise: computed verdicts.
    assert re.search(r"compound phi 3 - base \(phi 0\): \+\d+\.\d \[\+[\d.]+, \+[\d.]+\] pts, p 0\.\d+, "
                     r"n 2/2: better", out)
    assert "phi 2  compound - width:" in out
    assert "test_accuracy (%): mean [95 % t-interval over seeds]" in out and "(n = 2)" in out
    fits = json.loads((tmp_path / "curves" / "fits.json").read_text())
    h = fits["macs"]["compound"]["holdout"]
    assert h["phi"] == 3 and abs(h["difference"]) < 0.01  # the closed-form law is a power law
    assert f"compound   fit to phi 0-2 predicts phi 3: {100 * h['predicted_accuracy']:.2f} %" in out
    assert (tmp_path / "curves" / "accuracy_vs_macs.png").stat().st_size > 10_000
    assert main(["compare", str(tmp_path), "-o", str(tmp_path / "cmp.csv"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cmp = pd.read_csv(tmp_path / "cmp.csv")
    assert len(cmp) == 3 * 3 + 4 == len(doc["comparisons"])  # 3 phis x 3 dimensions, 4 methods' largest vs base
    assert set(cmp["verdict"]) <= {"better", "worse", "tied within noise", "not comparable"}
    assert {c["claim"] for c in doc["claims"]} >= {"every method's largest member beats the base"}


class _DivergesAtPhi2(_ClosedForm):
    def __call__(self, config: dict, *, on_epoch=None) -> dict:
        m = super().__call__(config, on_epoch=on_epoch)
        if "/members/phi2-" in config["out_dir"]:
            m.update(status="diverged", val_accuracy=None, test_accuracy=None, error="non-finite loss at epoch 1")
        return m


def test_a_failing_member_exits_1_and_shows_in_the_report(tmp_path, capsys, monkeypatch) -> None:
    from effnas.experiments.pipeline import stages
    from effnas.experiments.report.markdown import write_report

    monkeypatch.setattr(stages, "trainer", lambda cfg=None: _DivergesAtPhi2())
    run = tmp_path / "run"
    args = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-2",
            "--train", "--dataset", "shapes", "--no-baselines", "--out", str(run / "family")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "1 of 3 runs did not complete" in out and "phi2-seed0: diverged" in out
    md, _ = write_report(run, config={"name": "t"}, stages={})
    text = md.read_text()
    assert "## Failures (1)" in text and "phi2-seed0" in text and "non-finite loss" in text


def test_a_file_that_does_not_parse_is_a_user_error_naming_it(tmp_path, capsys) -> None:
    """A library's parse error of a file the user named (pandas, JSON) is one line naming the file,
    not a traceback: the CLI prints only UserError."""
    (tmp_path / "family.csv").write_text("")
    assert main(["curves", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"effnas: error: cannot read results {str(tmp_path)!r} (EmptyDataError: ") and "\n" not in err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["models", "show", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("effnas: error: malformed spec JSON") and "\n" not in err
