"""Rules compared on one base: family.rules trains each rule's family on the same base, data, epochs
and seeds (a network two rules share trains once), and 'effnas compare DIR --rules' compares each rule
with compound at equal MACs, activations and training time, not comparable beyond the tolerance."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from effnas.experiments.cli.main import main
from effnas.scaling.analysis.rules import compare_rules
from effnas.search_spaces.common.stats import NOT_COMPARABLE, VERDICTS

FAMILY = ["family", "--base", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--rules",
          "fast:0.8,resnet-rs", "--phis", "0-1", "--no-baselines", "--train", "--dataset", "digits", "--epochs", "1",
          "--data-fraction", "0.3", "--seeds", "2", "--latency-batch", "2", "--set", "train.threads=1",
          "--set", "train.batch_size=64", "--quiet"]


def test_a_rule_far_from_compound_on_a_cost_is_not_comparable_at_that_cost() -> None:
    rows = [{"method": m, "phi": phi, "seed": s, "macs": macs, "activations": acts, "train_seconds": 1.0,
             "test_accuracy": acc + 0.01 * s}
            for m, macs, acts, acc in (("compound", 100, 50, 0.6), ("fast:0.8", 104, 30, 0.5))
            for phi in (1,) for s in range(3)]
    t = compare_rules(pd.DataFrame(rows), tolerance=0.1)
    by = t.set_index("cost")
    assert list(t["cost"]) == ["macs", "activations", "train_seconds"]
    assert by.loc["macs", "verdict"] == "better" and by.loc["macs", "cost_gap"] == pytest.approx(0.04)
    assert by.loc["activations", "verdict"] == NOT_COMPARABLE and "-40.0 %" in by.loc["activations", "note"]
    assert by.loc["train_seconds", "verdict"] == "better"


@pytest.mark.slow
def test_rules_train_on_one_base_share_the_base_and_compare_at_three_costs(tmp_path, capsys) -> None:
    assert main([*FAMILY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rules against compound on test_accuracy" in out and "equal activations" in out
    fam = pd.read_csv(tmp_path / "family.csv")
    assert sorted(fam["method"].unique()) == ["compound", "fast:0.8", "resnet-rs"] and len(fam) == 12
    # every rule's phi 0 is the base: trained once per seed, its rows share the run
    base = fam[fam["phi"] == 0]
    assert base["run_dir"].nunique() == 2 and set(base["same_network_as"].fillna("")) == {"", "members/phi0-seed0",
                                                                                          "members/phi0-seed1"}
    assert not (tmp_path / "fast_0.8").exists() or not any((tmp_path / "fast_0.8").glob("*phi0*"))
    assert fam["latency_ms_b1"].notna().all() and fam["test_accuracy"].notna().all()

    assert main(["compare", str(tmp_path), "--rules", "--json", "-o", str(tmp_path / "rules.csv")]) == 0
    doc = json.loads(capsys.readouterr().out)["comparisons"]
    assert {(c["cost"], c["b"]) for c in doc} == {(c, r) for c in ("macs", "activations", "train_seconds")
                                                   for r in ("fast:0.8", "resnet-rs")}
    assert all(c["verdict"] in VERDICTS and c["phi"] == 1 and c["n_a"] == 2 for c in doc)
    for c in doc:
        assert (c["verdict"] == NOT_COMPARABLE) == (abs(c["cost_gap"]) > 0.1)
    # a tolerance no two networks meet: nothing is compared
    assert main(["compare", str(tmp_path), "--rules", "--tolerance", "0"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("equal")]
    assert len(lines) == 6 and all(NOT_COMPARABLE in ln for ln in lines)


def test_the_report_findings_state_the_rules_against_compound(tmp_path) -> None:
    """A family of several rules gets one Findings sentence: each rule against compound at the largest
    phi at every cost, with the verdict (or no verdict where the costs differ beyond the tolerance)."""
    from effnas.experiments.report.findings import findings

    rows = [{"method": m, "phi": phi, "seed": s, "macs": macs * 2**phi, "activations": acts * 2**phi,
             "train_seconds": 1.0, "test_accuracy": acc + 0.02 * phi + 0.01 * s, "status": "completed"}
            for m, macs, acts, acc in (("compound", 100, 50, 0.6), ("fast:0.8", 104, 30, 0.5))
            for phi in (0, 1, 2) for s in range(3)]
    (tmp_path / "family").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "family" / "family.csv", index=False)
    got = [f for f in findings(tmp_path, config={}, stages={}) if f.startswith("Rules against compound")]
    assert len(got) == 1 and got[0].startswith("Rules against compound at phi 2 (test accuracy")
    expected = compare_rules(pd.DataFrame(rows))
    top = expected[expected["phi"] == 2].set_index("cost")
    assert f"equal macs phi 2 compound - fast:0.8: {100 * top.loc['macs', 'diff']:+.1f}" in got[0]
    assert top.loc["activations", "verdict"] == NOT_COMPARABLE and f": {NOT_COMPARABLE} (activations" in got[0]
    # One rule only: no sentence.
    pd.DataFrame([r for r in rows if r["method"] == "compound"]).to_csv(tmp_path / "family" / "family.csv",
                                                                         index=False)
    assert not [f for f in findings(tmp_path, config={}, stages={}) if f.startswith("Rules against")]


def test_the_report_has_a_table_of_the_rules_at_every_cost(tmp_path) -> None:
    """The run report's verdicts carry, for a family of several rules, a table of each rule against
    compound at equal MACs, activations and training time with the realised costs beside them."""
    from effnas.experiments.report.verdicts import verdict_tables

    rows = [{"method": m, "phi": phi, "seed": s, "macs": macs * 2**phi, "activations": acts * 2**phi,
             "train_seconds": 1.0, "test_accuracy": acc + 0.02 * phi + 0.01 * s, "status": "completed"}
            for m, macs, acts, acc in (("compound", 100, 50, 0.6), ("fast:0.8", 104, 30, 0.5))
            for phi in (0, 1) for s in range(3)]
    path = tmp_path / "family.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    tables = dict(verdict_tables(path))
    rules = tables["Scaling rules against compound, at equal MACs, activations and training time"]
    assert isinstance(rules, pd.DataFrame)
    assert list(rules["cost"]) == ["macs", "activations", "train_seconds"]
    expected = compare_rules(pd.DataFrame(rows))
    assert list(rules["verdict"]) == list(expected["verdict"]) and NOT_COMPARABLE in list(rules["verdict"])
    assert rules["realised cost A / B"].iloc[1] == "100 / 60 (-40.0 %)"
    pd.DataFrame([r for r in rows if r["method"] == "compound"]).to_csv(path, index=False)
    assert not any(k.startswith("Scaling rules") for k, _ in verdict_tables(path))
